use std::path::PathBuf;

use clap::{Parser, Subcommand};
use domain::SignUpPolicy;

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "invitegate development tasks (not shipped).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, at AWS_ENDPOINT_URL (an emulator) or in the configured account, a user pool
    /// with a confidential client, the invitation table, the SES sender and the PreSignUp
    /// Lambda; print the environment the service needs as `export` lines.
    Provision {
        /// Prefix for every resource name.
        #[arg(long, default_value = "invitegate")]
        name: String,
        /// The Lambda zip (a `bootstrap` built from lambda-presignup): see scripts/lambda-zip.sh.
        #[arg(long)]
        lambda_zip: PathBuf,
        /// The trigger's sign-up policy: `invite_only`, or `open`.
        #[arg(long, env = "INVITEGATE_POLICY", default_value = "invite_only", value_parser = parse_policy)]
        policy: SignUpPolicy,
    },
}

fn parse_policy(s: &str) -> Result<SignUpPolicy, String> {
    SignUpPolicy::parse(s).ok_or_else(|| format!("unknown policy {s:?}: expected invite_only or open"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Provision { name, lambda_zip, policy } => {
            xtask::provision::provision_and_export(&name, &lambda_zip, policy, &mut std::io::stdout()).await
        }
    }
}
