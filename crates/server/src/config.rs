//! Command line and environment: every option is also an `INVITEGATE_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use domain::{InvitationStatus, SecretString, SignUpPolicy};

#[derive(Debug, Parser)]
#[command(
    name = "invitegate",
    version,
    about = "Invite-only sign-up: invitations by email, sign-up with an access code, sign-in."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// SQLite, a local user pool and an outbox folder under --data-dir.
    Embedded,
    /// Cognito, DynamoDB and SES, configured by AWS_COGNITO_USER_POOL_ID,
    /// AWS_COGNITO_APP_CLIENT_ID, AWS_COGNITO_APP_CLIENT_SECRET, INVITEGATE_TABLE,
    /// INVITEGATE_MAIL_FROM, INVITEGATE_CODE_KEY and the AWS SDK's usual variables.
    Aws,
}

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Where users and invitations live.
    #[arg(long, env = "INVITEGATE_BACKEND", value_enum, default_value = "embedded", global = true)]
    pub backend: BackendKind,
    /// Where the database, keys and outbox live.
    #[arg(long, env = "INVITEGATE_DATA_DIR", default_value = "./invitegate-data", global = true)]
    pub data_dir: PathBuf,
    /// Address to listen on (`serve`); also the default public URL.
    #[arg(long, env = "INVITEGATE_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// Base URL used in invitation links and as the token issuer.
    #[arg(long, env = "INVITEGATE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// `invite_only`, or `open` (anyone may sign up and confirms their email with a code).
    #[arg(long, env = "INVITEGATE_POLICY", default_value = "invite_only", value_parser = parse_policy, global = true)]
    pub policy: SignUpPolicy,
    /// Invitations each new user may send.
    #[arg(long, env = "INVITEGATE_INVITE_QUOTA", default_value_t = 5, global = true)]
    pub invite_quota: u32,
    /// How long an invitation stays usable, in hours.
    #[arg(long, env = "INVITEGATE_INVITATION_TTL_HOURS", default_value_t = 168, global = true,
          value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub invitation_ttl_hours: u32,
    /// Send mail by SMTP (`smtps://user:pass@host`, `smtp://host:587?tls=required`) instead of the
    /// outbox folder. Prefer the environment variable: flags show up in `ps`.
    #[arg(long, env = "INVITEGATE_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<SecretString>,
    /// The sender of invitation and confirmation emails.
    #[arg(
        long,
        env = "INVITEGATE_MAIL_FROM",
        default_value = "invitegate <no-reply@invitegate.localhost>",
        global = true
    )]
    pub mail_from: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Create, list, revoke and re-send invitations as the operator.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Inspect users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// AWS helpers for development and tests.
    #[command(subcommand)]
    Aws(AwsCommand),
    /// Show the newest messages in the outbox folder.
    Outbox {
        /// How many messages to show.
        #[arg(long, default_value_t = 3)]
        count: usize,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Origins allowed to call the API from a browser, comma-separated (default: none).
    #[arg(long, env = "INVITEGATE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Requests taking longer are answered 408.
    #[arg(long, env = "INVITEGATE_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Largest accepted request body.
    #[arg(long, env = "INVITEGATE_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Invite an email address; the access code goes to it by email only.
    Create {
        email: String,
        /// Invitations the invitee may send once signed up (default: --invite-quota).
        #[arg(long)]
        quota: Option<u32>,
    },
    /// List invitations, newest first.
    List {
        /// Only those with this status: pending, redeemed, revoked, expired.
        #[arg(long, value_parser = parse_status)]
        status: Option<InvitationStatus>,
    },
    /// Revoke the pending invitation of an email address.
    Revoke { email: String },
    /// Send a new code to an email address (the old code stops working; expiry restarts).
    Resend { email: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users, oldest first.
    List,
}

fn parse_policy(s: &str) -> Result<SignUpPolicy, String> {
    SignUpPolicy::parse(s).ok_or_else(|| format!("unknown policy {s:?}: expected invite_only or open"))
}

fn parse_status(s: &str) -> Result<InvitationStatus, String> {
    InvitationStatus::parse(s)
        .ok_or_else(|| format!("unknown status {s:?}: expected pending, redeemed, revoked or expired"))
}

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Create, at AWS_ENDPOINT_URL (an emulator) or in the configured account, a user pool
    /// with a confidential client, the invitation table, the SES sender and the PreSignUp
    /// Lambda; print the environment the service needs.
    Provision {
        /// Prefix for every resource name.
        #[arg(long, default_value = "invitegate")]
        name: String,
        /// The Lambda zip (a `bootstrap` built from lambda-presignup): see scripts/lambda-zip.sh.
        #[arg(long)]
        lambda_zip: std::path::PathBuf,
    },
}
