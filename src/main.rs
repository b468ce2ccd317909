//! The `partnerhub` binary: parse the command line, start logging, dispatch.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    partnerhub::telemetry::init();
    let cli = partnerhub::cli::Cli::parse();
    match partnerhub::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
