//! The `mcp-scout` binary: parse arguments, set up logging, run, map the result to an exit
//! code (0 found, 1 nothing found, 2 error).

use std::process::ExitCode;

use clap::Parser;
use mcp_scout::cli::{Cli, Command, LogFormat};
use mcp_scout::probe;
use mcp_scout::scan::{self, ScanOutcome};
use tokio_util::sync::CancellationToken;

/// Threads for blocking work (store reads, DNS lookups). Bounded: each thread that ever built
/// a large API response keeps its own malloc arena, so 512 (tokio's default) let the daemon's
/// resident memory grow to gigabytes under 50 concurrent list requests.
const MAX_BLOCKING_THREADS: usize = 32;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-scout: error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(ScanOutcome::Found) => ExitCode::SUCCESS,
        Ok(ScanOutcome::NothingFound) => ExitCode::from(1),
        Err(e) => {
            eprintln!("mcp-scout: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ScanOutcome> {
    let shutdown = CancellationToken::new();
    if matches!(cli.command, Command::Daemon(_)) {
        mcp_scout::shutdown::cancel_on_signal_saying(
            shutdown.clone(),
            "stopping: interrupting runs and finishing writes (again to quit at once)",
        );
    } else {
        mcp_scout::shutdown::cancel_on_signal(shutdown.clone());
    }
    match cli.command {
        Command::Scan(args) => Ok(scan::run(args, shutdown).await?),
        Command::Watch(args) => {
            mcp_scout::watch::run(args, shutdown).await?;
            Ok(ScanOutcome::Found)
        }
        Command::Probe(args) => Ok(outcome(probe::run(args, shutdown).await?)),
        Command::Config(cmd) => {
            mcp_scout::commands::config::run(&cmd)?;
            Ok(ScanOutcome::Found)
        }
        Command::Daemon(args) => {
            mcp_scout::daemon::run(args.config, shutdown).await?;
            Ok(ScanOutcome::Found)
        }
        Command::Servers(args) => Ok(outcome(
            mcp_scout::commands::inventory::servers(&args).await?,
        )),
        Command::Changes(args) => Ok(outcome(
            mcp_scout::commands::inventory::changes(&args, shutdown).await?,
        )),
        Command::Check(args) => Ok(outcome(
            mcp_scout::commands::check::run(&args, shutdown).await?,
        )),
        Command::Export(args) => {
            let n = mcp_scout::commands::export::run(&args)?;
            Ok(if n > 0 {
                ScanOutcome::Found
            } else {
                ScanOutcome::NothingFound
            })
        }
    }
}

fn outcome(found: bool) -> ScanOutcome {
    if found {
        ScanOutcome::Found
    } else {
        ScanOutcome::NothingFound
    }
}

fn init_tracing(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCP_SCOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("mcp_scout={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.without_time().init(),
    }
}
