//! The `partnerhub` binary: parse the command line, start logging, dispatch.

use clap::Parser;

/// mimalloc instead of the C library's malloc for Rust's allocations (a request allocates and
/// frees thousands of small values, many on another thread than the one that allocated them).
/// SQLite's own allocations stay on the C library's malloc: routed to mimalloc too (its `override`
/// feature), the SQLite server's peak memory under load grew from 42 to 110 MB. See the README.
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
