//! The `partnerhub` binary: parse the command line, start logging, dispatch.

use clap::Parser;

/// mimalloc instead of glibc's malloc, for Rust's allocations and (feature `override`) for
/// SQLite's: a page of rows copies every column value out of SQLite's worker thread and frees it
/// on another, where glibc spent a quarter of the instructions of a request (see the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
