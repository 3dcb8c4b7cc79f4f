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
    /// Write users, refresh tokens and invitations straight into an embedded data dir
    /// (scripts/bench.sh); the invitations' codes go to --invitations-out.
    BenchSeed {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        users: u64,
        #[arg(long, default_value_t = 0)]
        refresh_tokens: u64,
        #[arg(long, default_value_t = 0)]
        invitations: u64,
        #[arg(long)]
        invitations_out: Option<PathBuf>,
    },
    /// Write a `firebase auth:export` JSON document of generated users, hashed
    /// with Firebase's published example parameters (scripts/bench-import.sh).
    FirebaseExport {
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        #[arg(long, default_value = "bench")]
        prefix: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Password verifications per second through the service's hashing code (JSON).
    BenchBound {
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Load a hashing endpoint; admitted and refused latencies apart (JSON).
    BenchLoad {
        #[arg(long)]
        url: String,
        #[arg(long, value_enum)]
        scenario: xtask::bench::Scenario,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Seeded users to sign in as (`user0…@bench.test`).
        #[arg(long, default_value_t = 1000)]
        users: u64,
        /// The file bench-seed wrote, for sign-up.
        #[arg(long)]
        invitations: Option<PathBuf>,
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
        Command::FirebaseExport { users, prefix, out } => {
            let started = std::time::Instant::now();
            let document = xtask::firebase::firebase_export(&prefix, users);
            // Four hashes at Firebase's usual cost are most of that time.
            eprintln!("generated {users} users in {:.2} s", started.elapsed().as_secs_f64());
            std::fs::write(&out, serde_json::to_vec(&document)?)?;
            Ok(())
        }
        Command::BenchSeed { data_dir, users, refresh_tokens, invitations, invitations_out } => {
            xtask::bench::seed(&data_dir, users, refresh_tokens, invitations, invitations_out.as_deref()).await
        }
        Command::BenchBound { threads, concurrency, seconds } => {
            xtask::bench::bound(threads, concurrency, seconds).await
        }
        Command::BenchLoad { url, scenario, concurrency, seconds, users, invitations } => {
            xtask::bench::load(xtask::bench::Load {
                url: &url,
                scenario,
                concurrency,
                seconds,
                users,
                invitations: invitations.as_deref(),
            })
            .await
        }
    }
}
