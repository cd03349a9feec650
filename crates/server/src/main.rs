//! `rookery`: the server and its command-line tool.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use rookery::cli::{
    Cli, Command, load_config, run_check, run_circle, run_create_invite, run_invite, run_user,
};
use rookery_config::{Config, LogLevel};
use tracing_subscriber::EnvFilter;

// Stanzas are many small, short-lived allocations spread over threads; mimalloc handles that pattern with a
// fraction of glibc malloc's CPU (a quarter of the server's CPU under load was in malloc and free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                init_logging(&config);
                serve(config).await.map(|()| true)
            }
            Command::User(cmd) => run_user(&config, cmd).await.map(|()| true),
            Command::CreateInvite(args) => run_create_invite(&config, args).await.map(|()| true),
            Command::Invite(cmd) => run_invite(&config, cmd).await.map(|()| true),
            Command::Circle(cmd) => run_circle(&config, cmd).await.map(|()| true),
            Command::Check => run_check(&config).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard output at SNIKKET_LOGLEVEL. Chatty dependencies are held to warnings unless debugging.
fn init_logging(config: &Config) {
    let level = match config.log_level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let deps = if matches!(config.log_level, LogLevel::Debug | LogLevel::Trace) {
        level
    } else {
        "warn"
    };
    let filter = EnvFilter::new(format!(
        "{level},sqlx={deps},rustls={deps},tokio_rustls={deps}"
    ));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listeners = rookery::Listeners::bind(&config)?;
    let running = rookery::start(config, listeners).await?;
    wait_for_stop_signal().await;
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM (what `docker stop` and systemd send).
async fn wait_for_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
