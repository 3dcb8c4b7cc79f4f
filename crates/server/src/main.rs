use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = server::config::Cli::parse();
    server::telemetry::init("info", cli.common.log_format);
    server::cli::run(cli).await
}
