//! Command line and environment, the one source of settings: every option is
//! also an `INVITEGATE_*` (or, for Cognito, `AWS_COGNITO_*`) variable, and
//! `invitegate --help` lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use backend_aws::{
    AwsConfig, ENV_CLIENT, ENV_CODE_KEY, ENV_ISSUER, ENV_JWKS_URL, ENV_MAIL_FROM, ENV_POLICY, ENV_POOL, ENV_SECRET,
    ENV_TABLE,
};
use clap::{Args, Parser, Subcommand};
use domain::messages::Branding;
use domain::{InvitationStatus, PasswordPolicy, SecretString, SignUpPolicy};

use crate::client_address::TrustedProxies;
use crate::limits::AttemptLimits;
use crate::serve::ConnectionLimits;
use crate::service::ServiceSettings;
use crate::startup::{AdminTokenSource, AppConfig, Backend, EmbeddedSettings};

/// The embedded backend's sender when none is set.
pub const DEFAULT_MAIL_FROM: &str = "invitegate <no-reply@invitegate.localhost>";
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;

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
    /// Cognito, DynamoDB and SES (see the AWS backend options), with the AWS SDK's usual variables.
    Aws,
}

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Where users and invitations live.
    #[arg(long, env = "INVITEGATE_BACKEND", value_enum, default_value = "embedded", global = true)]
    pub backend: BackendKind,
    /// Address to listen on (`serve`); also the default public URL.
    #[arg(long, env = "INVITEGATE_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// Base URL used in invitation links and as the token issuer.
    #[arg(long, env = "INVITEGATE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// The app's name, in page titles and emails.
    #[arg(long, env = "INVITEGATE_APP_NAME", default_value = Branding::DEFAULT_APP_NAME, global = true)]
    pub app_name: String,
    /// The sign-up page invitation emails link to, for apps that host their own
    /// (it gets `email` and `code` in its query); default: <public url>/signup.
    #[arg(long, env = "INVITEGATE_SIGNUP_URL", value_parser = parse_http_url, global = true)]
    pub signup_url: Option<String>,
    /// `invite_only`, or `open` (anyone may sign up and confirms their email with a code).
    #[arg(long, env = ENV_POLICY, default_value = "invite_only", value_parser = parse_policy, global = true)]
    pub policy: SignUpPolicy,
    /// Invitations each new user may send.
    #[arg(long, env = "INVITEGATE_INVITE_QUOTA", default_value_t = 5, global = true)]
    pub invite_quota: u32,
    /// How long an invitation stays usable, in hours.
    #[arg(long, env = "INVITEGATE_INVITATION_TTL_HOURS", default_value_t = 168, global = true,
          value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub invitation_ttl_hours: u32,
    /// The sender of invitation and confirmation emails (required on AWS: an SES-verified
    /// identity; embedded default: "invitegate <no-reply@invitegate.localhost>").
    #[arg(long, env = ENV_MAIL_FROM, global = true)]
    pub mail_from: Option<String>,
    /// How log lines are written to standard error (`RUST_LOG` filters them).
    #[arg(long, env = "INVITEGATE_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: crate::telemetry::LogFormat,
    #[command(flatten, next_help_heading = "Embedded backend")]
    pub embedded: EmbeddedArgs,
    #[command(flatten, next_help_heading = "AWS backend (--backend aws)")]
    pub aws: AwsArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EmbeddedArgs {
    /// Where the database, keys and outbox live.
    #[arg(long, env = "INVITEGATE_DATA_DIR", default_value = "./invitegate-data", global = true)]
    pub data_dir: PathBuf,
    /// Send mail by SMTP (`smtps://user:pass@host`, `smtp://host:587?tls=required`) instead of the
    /// outbox folder. Prefer the environment variable: flags show up in `ps`.
    #[arg(long, env = "INVITEGATE_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<SecretString>,
    /// Threads that hash passwords (argon2id, 19 MiB each while busy; default: one per core).
    #[arg(long, env = "INVITEGATE_HASHING_THREADS", global = true,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub hashing_threads: Option<u16>,
    /// Sign-ups and sign-ins that may wait for a hashing thread; beyond this they are refused at
    /// once with 503 `unavailable` and `Retry-After` (default: 24 per hashing thread).
    #[arg(long, env = "INVITEGATE_MAX_QUEUED_HASHES", global = true,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_queued_hashes: Option<u32>,
}

impl EmbeddedArgs {
    fn hashing_capacity(&self) -> backend_embedded::HashingCapacity {
        let mut capacity = backend_embedded::HashingCapacity::for_this_machine();
        if let Some(threads) = self.hashing_threads {
            capacity = backend_embedded::HashingCapacity::with_threads(usize::from(threads));
        }
        if let Some(max_queued) = self.max_queued_hashes {
            capacity.max_queued = max_queued as usize;
        }
        capacity
    }
}

/// Required on AWS unless marked optional; `deploy/env-from-stack.sh` prints them from the stack.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The Cognito user pool.
    #[arg(long, env = ENV_POOL, global = true)]
    pub cognito_user_pool_id: Option<String>,
    /// The pool's confidential app client.
    #[arg(long, env = ENV_CLIENT, global = true)]
    pub cognito_app_client_id: Option<String>,
    /// That client's secret. Prefer the environment variable: flags show up in `ps`.
    #[arg(long, env = ENV_SECRET, hide_env_values = true, global = true)]
    pub cognito_app_client_secret: Option<SecretString>,
    /// The DynamoDB invitation table.
    #[arg(long, env = ENV_TABLE, global = true)]
    pub table: Option<String>,
    /// 32 random bytes, base64, that access codes are hashed under; the same on every
    /// instance. Prefer the environment variable.
    #[arg(long, env = ENV_CODE_KEY, hide_env_values = true, global = true)]
    pub code_key: Option<SecretString>,
    /// Optional: the tokens' issuer (default: Cognito's URL for the pool).
    #[arg(long, env = ENV_ISSUER, global = true)]
    pub cognito_issuer: Option<String>,
    /// Optional: where the pool's JWKS is (default: under the issuer, or the emulator's endpoint).
    #[arg(long, env = ENV_JWKS_URL, global = true)]
    pub cognito_jwks_url: Option<String>,
    /// Optional: where to reach AWS (an emulator; default: the SDK's `AWS_ENDPOINT_URL`, else AWS).
    #[arg(long, env = "INVITEGATE_AWS_ENDPOINT_URL", global = true)]
    pub aws_endpoint_url: Option<String>,
}

impl AwsArgs {
    /// The AWS settings, or an error naming the first missing one.
    pub fn to_config(&self, mail_from: Option<&str>) -> anyhow::Result<AwsConfig> {
        fn required(value: Option<&str>, variable: &str, flag: &str) -> anyhow::Result<String> {
            value
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
                .with_context(|| format!("the AWS backend needs {variable} (or --{flag}) to be set"))
        }
        let secret = |value: &Option<SecretString>, variable: &str, flag: &str| {
            required(value.as_ref().map(SecretString::expose), variable, flag).map(SecretString::new)
        };
        let optional = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        Ok(AwsConfig {
            user_pool_id: required(self.cognito_user_pool_id.as_deref(), ENV_POOL, "cognito-user-pool-id")?,
            client_id: required(self.cognito_app_client_id.as_deref(), ENV_CLIENT, "cognito-app-client-id")?,
            client_secret: secret(&self.cognito_app_client_secret, ENV_SECRET, "cognito-app-client-secret")?,
            table: required(self.table.as_deref(), ENV_TABLE, "table")?,
            mail_from: required(mail_from, ENV_MAIL_FROM, "mail-from")?,
            code_key: secret(&self.code_key, ENV_CODE_KEY, "code-key")?,
            issuer: optional(&self.cognito_issuer),
            jwks_url: optional(&self.cognito_jwks_url),
            endpoint_url: optional(&self.aws_endpoint_url),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Create, list, revoke and re-send invitations as the operator.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Inspect and manage accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Requests for an invitation (invite-only mode).
    #[command(subcommand)]
    Requests(RequestsCommand),
    /// Copy the database (consistent, while the service runs) and its keys into one
    /// archive readable by you only (embedded backend).
    Backup {
        /// The archive to write (a tar file); replaced only once complete.
        file: PathBuf,
    },
    /// Unpack a backup into --data-dir, which must hold no database yet (embedded backend).
    Restore {
        /// An archive written by `invitegate backup`.
        file: PathBuf,
    },
    /// Show the newest messages in the outbox folder (embedded backend).
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
    #[arg(long, env = "INVITEGATE_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS)]
    pub request_timeout_secs: u64,
    /// Largest accepted request body.
    #[arg(long, env = "INVITEGATE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// A client must send a request's headers within this many seconds; idle kept-alive
    /// connections close after it too.
    #[arg(long, env = "INVITEGATE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Open connections at most; more are closed at once (default: the file-descriptor
    /// limit less 64).
    #[arg(long, env = "INVITEGATE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections from one client network (IPv4 address, IPv6 /64) at most
    /// (default: an eighth of --max-connections).
    #[arg(long, env = "INVITEGATE_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<usize>,
    /// Reverse proxies (CIDRs, comma-separated) whose `X-Forwarded-For` or `Forwarded`
    /// header names the client for attempt limits; other peers' headers are ignored.
    #[arg(long, env = "INVITEGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve `GET /metrics` on this address only (a private port for the scraper) instead
    /// of beside the API.
    #[arg(long, env = "INVITEGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The admin API's bearer token (default on the embedded backend: the `admin-token` file
    /// in the data dir, created on first start; on AWS none, and /admin answers 401).
    /// Prefer --admin-token-file or the environment variable: flags show up in `ps`.
    #[arg(long, env = "INVITEGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<SecretString>,
    /// A file (readable by its owner only) holding the admin API's bearer token.
    #[arg(long, env = "INVITEGATE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

impl ServeArgs {
    fn connection_limits(&self) -> ConnectionLimits {
        let auto = ConnectionLimits::for_this_process();
        let max_connections = self.max_connections.unwrap_or(auto.max_connections).max(1);
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            max_connections,
            max_per_client: self.max_connections_per_client.unwrap_or((max_connections / 8).max(4)).max(1),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Invite an email address; the access code goes to it by email (or, with
    /// --no-email, to you, once, as a sign-up link).
    Create {
        email: String,
        /// Invitations the invitee may send once signed up (default: --invite-quota).
        #[arg(long)]
        quota: Option<u32>,
        /// How long this invitation stays usable (default: --invitation-ttl-hours).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8760))]
        expires_in_hours: Option<u32>,
        /// Send no email: print the sign-up link (it holds the code) for you to deliver.
        #[arg(long)]
        no_email: bool,
    },
    /// List invitations (embedded: newest first; AWS: in table order).
    List {
        /// Only those with this status: pending, redeemed, revoked, expired.
        #[arg(long, value_parser = parse_status)]
        status: Option<InvitationStatus>,
    },
    /// Revoke the pending invitation of an email address.
    Revoke { email: String },
    /// Send a new code to an email address (the old code stops working; expiry restarts).
    Resend { email: String },
    /// Bring over invitations another system sent (email and access code):
    /// the old codes keep working for their email, stored only as HMACs,
    /// and nothing is mailed. From a file, or straight from the old
    /// DynamoDB table. Safe to run again: what is there already is skipped.
    Import(InviteImportArgs),
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "from_dynamodb"])))]
pub struct InviteImportArgs {
    /// CSV with a header row (`email`, `code`, optional `expires_at`,
    /// `inviter`) or JSON lines with the same names. Expiry: RFC 3339 or
    /// Unix seconds; default: --invitation-ttl-hours from now. Inviter: an
    /// account's email; default: the operator.
    pub file: Option<PathBuf>,
    /// Scan this DynamoDB table instead (with the AWS SDK's usual credentials and region).
    #[arg(long, value_name = "TABLE")]
    pub from_dynamodb: Option<String>,
    /// With --from-dynamodb: the attribute holding the email.
    #[arg(long, default_value = "email", requires = "from_dynamodb")]
    pub email_attr: String,
    /// With --from-dynamodb: the attribute holding the access code.
    #[arg(long, default_value = "accessCode", requires = "from_dynamodb")]
    pub code_attr: String,
    /// With --from-dynamodb: the attribute holding the expiry, if any.
    #[arg(long, requires = "from_dynamodb")]
    pub expiry_attr: Option<String>,
    /// With --from-dynamodb: the attribute holding the inviter's email, if any.
    #[arg(long, requires = "from_dynamodb")]
    pub inviter_attr: Option<String>,
    /// Send a new code of ours instead to invitees whose old code is guessable
    /// (under 40 bits: short, or from a small alphabet).
    #[arg(long)]
    pub rotate_weak: bool,
    /// Check everything and print the summary; write and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the rejected records go, with their reasons (default: FILE.rejected.csv,
    /// or TABLE.rejected.csv in the current folder).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// List requests, newest first.
    List {
        /// Only those with this status: open, approved, rejected.
        #[arg(long)]
        status: Option<String>,
    },
    /// Approve an email's open request: it is sent an invitation.
    Approve { email: String },
    /// Reject an email's open request (they are not told).
    Reject { email: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users, oldest first.
    List,
    /// One account: status, created, invited by, invitations sent and their state, invitees.
    Show { email: String },
    /// Disable an account: it cannot sign in, refresh or use its tokens.
    Disable { email: String },
    /// Enable a disabled account again.
    Enable { email: String },
    /// Delete an account; its unused invitations are revoked.
    Delete { email: String },
    /// End every session of an account (refresh tokens revoked, access tokens refused).
    SignOut { email: String },
    /// Email the account a password-recovery code.
    ResetPassword { email: String },
    /// Bring users over from another system, passwords included.
    #[command(subcommand)]
    Import(UserImport),
}

#[derive(Debug, Subcommand)]
pub enum UserImport {
    /// Users from what `firebase auth:export` writes (JSON or CSV), with the
    /// project's password-hash parameters as `firebase auth:import` takes
    /// them (console: Authentication → Users → ⋮ → Password hash parameters).
    /// Each user signs in with their Firebase password, which is then
    /// replaced by this service's own hash. Safe to run again: what is
    /// already there is skipped, and an interrupted run resumes.
    Firebase(FirebaseImportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct FirebaseImportArgs {
    /// The export: `.json` or `.csv`.
    pub file: PathBuf,
    /// Only SCRYPT (Firebase's own, the default for its projects) is supported.
    #[arg(long, default_value = "SCRYPT")]
    pub hash_algo: String,
    /// base64_signer_key.
    #[arg(long, env = "INVITEGATE_FIREBASE_HASH_KEY", hide_env_values = true)]
    pub hash_key: String,
    /// base64_salt_separator.
    #[arg(long, default_value = "")]
    pub salt_separator: String,
    #[arg(long)]
    pub rounds: u32,
    #[arg(long)]
    pub mem_cost: u32,
    /// Check everything and print the summary; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the rejected records go, with their reasons (default: FILE.rejected.csv).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
}

/// An absolute http(s) address: it is put in emails as it is.
fn parse_http_url(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !s.contains(char::is_whitespace) => {
            Ok(s.to_owned())
        }
        _ => Err(format!("{s:?} is not an absolute http:// or https:// address")),
    }
}

fn parse_policy(s: &str) -> Result<SignUpPolicy, String> {
    SignUpPolicy::parse(s).ok_or_else(|| format!("unknown policy {s:?}: expected invite_only or open"))
}

fn parse_status(s: &str) -> Result<InvitationStatus, String> {
    InvitationStatus::parse(s)
        .ok_or_else(|| format!("unknown status {s:?}: expected pending, redeemed, revoked or expired"))
}

/// The service's configuration from the command line; `serve` is `None` for operator commands.
pub fn app_config(common: &CommonArgs, serve: Option<&ServeArgs>) -> anyhow::Result<AppConfig> {
    let backend = match common.backend {
        BackendKind::Embedded => Backend::Embedded(EmbeddedSettings {
            data_dir: common.embedded.data_dir.clone(),
            smtp_url: common.embedded.smtp_url.clone(),
            mail_from: common.mail_from.clone().unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned()),
            hashing_cost: backend_embedded::HashingCost::OWASP,
            hashing_capacity: common.embedded.hashing_capacity(),
        }),
        BackendKind::Aws => Backend::Aws(common.aws.to_config(common.mail_from.as_deref())?),
    };
    Ok(AppConfig {
        backend,
        listen: common.listen,
        public_url: common.public_url.clone(),
        app_name: common.app_name.clone(),
        signup_url: common.signup_url.clone(),
        service: ServiceSettings {
            policy: common.policy,
            default_invite_quota: common.invite_quota,
            invitation_ttl: time::Duration::hours(i64::from(common.invitation_ttl_hours)),
            password_policy: PasswordPolicy::default(),
        },
        attempt_limits: AttemptLimits::default(),
        cors_origins: serve.map(|s| s.cors_origins.clone()).unwrap_or_default(),
        request_timeout: Duration::from_secs(serve.map_or(DEFAULT_REQUEST_TIMEOUT_SECS, |s| s.request_timeout_secs)),
        max_body_bytes: serve.map_or(DEFAULT_MAX_BODY_BYTES, |s| s.max_body_bytes),
        connection_limits: serve.map_or_else(ConnectionLimits::for_this_process, ServeArgs::connection_limits),
        trusted_proxies: TrustedProxies::new(serve.map(|s| s.trusted_proxies.clone()).unwrap_or_default()),
        metrics_listen: serve.and_then(|s| s.metrics_listen),
        admin_token: match serve {
            Some(ServeArgs { admin_token: Some(token), .. }) => AdminTokenSource::Given(token.clone()),
            Some(ServeArgs { admin_token_file: Some(file), .. }) => AdminTokenSource::File(file.clone()),
            Some(_) => AdminTokenSource::DataDir,
            None => AdminTokenSource::None,
        },
    })
}
