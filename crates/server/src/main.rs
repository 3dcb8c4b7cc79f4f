use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::telemetry::init("info");
    server::cli::run(server::config::Cli::parse()).await
}
