//! `onboardbench`: onboarding benchmarks against an XMPP server (issue 4). `onboardbench --help`; see
//! `benches/onboarding/run.sh`.
//!
//! - `register`: registration by invite of one account per token, as the Snikket app does it;
//! - `login`: a login storm of those accounts, each fetching its roster.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rookery_benches::cli::{ConnArgs, secs};
use rookery_benches::conn::Auth;
use rookery_benches::onboard::{self, NewAccount, Storm};
use rookery_benches::procstat::Proc;

/// Onboarding benchmarks: registration by invite, and a login storm.
#[derive(Parser, Debug)]
#[command(name = "onboardbench", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
    #[command(flatten)]
    conn: ConnArgs,
    /// Connections at a time.
    #[arg(long, global = true, default_value_t = 4)]
    concurrency: usize,
    /// PID of the server process, for its CPU time (from /proc).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Seconds the whole run may take before the process gives up.
    #[arg(long, global = true, default_value_t = 3600.0)]
    max_runtime: f64,
    /// A label for the RESULT line.
    #[arg(long, global = true, default_value = "onboard")]
    label: String,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Registers one account per invite token in --tokens (one a line): the accounts --first-user, the next, ...,
    /// with the --password pattern.
    Register {
        #[arg(long)]
        tokens: PathBuf,
    },
    /// Logs in --count accounts from --first-user on, each fetching its roster, which must have at least
    /// --min-roster-items items.
    Login {
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        min_roster_items: usize,
    },
}

fn username(auth: &Auth) -> anyhow::Result<(String, String)> {
    match auth {
        Auth::Scram {
            username, password, ..
        }
        | Auth::Plain { username, password } => Ok((username.clone(), password.clone())),
        Auth::Anonymous => bail!("registration needs named accounts, not ANONYMOUS"),
    }
}

fn report(bench: &str, label: &str, concurrency: usize, s: &Storm) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let per = |d: Option<Duration>| {
        d.map_or_else(
            || "NA".to_owned(),
            |d| format!("{:.3}", ms(d) / s.done.max(1) as f64),
        )
    };
    let total = |d: Option<Duration>| {
        d.map_or_else(|| "NA".to_owned(), |d| format!("{:.3}", d.as_secs_f64()))
    };
    println!(
        "{bench}: {} connections, {concurrency} at a time, in {:.2} s: {:.1}/s; latency p50 {:.1} ms, p99 {:.1} ms; \
         server CPU {} s (schedstat), {} s (clock ticks); roster items {}",
        s.done,
        s.wall.as_secs_f64(),
        s.rate(),
        ms(s.latency(0.5)),
        ms(s.latency(0.99)),
        total(s.server_cpu),
        total(s.server_cpu_ticks),
        s.roster_items
    );
    println!(
        "RESULT bench={bench} label={label} n={} concurrency={concurrency} wall_s={:.3} per_s={:.2} p50_ms={:.2} p99_ms={:.2} cpu_s={} cpu_ticks_s={} cpu_ms_per={} cpu_ticks_ms_per={} roster_items_per={:.1}",
        s.done,
        s.wall.as_secs_f64(),
        s.rate(),
        ms(s.latency(0.5)),
        ms(s.latency(0.99)),
        total(s.server_cpu),
        total(s.server_cpu_ticks),
        per(s.server_cpu),
        per(s.server_cpu_ticks),
        s.roster_items as f64 / s.done.max(1) as f64
    );
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let server = cli.server_pid.map(Proc::Pid);
    if let Some(p) = server {
        p.cpu_time_precise()
            .with_context(|| format!("--server-pid {}", cli.server_pid.unwrap_or_default()))?;
    }
    let target = cli.conn.target()?;
    match &cli.bench {
        Bench::Register { tokens } => {
            let text = std::fs::read_to_string(tokens)
                .with_context(|| format!("cannot read {}", tokens.display()))?;
            let mut accounts = Vec::new();
            for (i, token) in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .enumerate()
            {
                let (username, password) = username(&cli.conn.auth(i))?;
                accounts.push(NewAccount {
                    token: token.to_owned(),
                    username,
                    password,
                });
            }
            if accounts.is_empty() {
                bail!("no tokens in {}", tokens.display());
            }
            let s = onboard::register(&target, accounts, cli.concurrency, server).await?;
            report("register", &cli.label, cli.concurrency, &s);
        }
        Bench::Login {
            count,
            min_roster_items,
        } => {
            if *count == 0 {
                bail!("--count must be at least 1");
            }
            let accounts = (0..*count).map(|i| cli.conn.auth(i)).collect();
            let s = onboard::login_storm(
                &target,
                accounts,
                cli.concurrency,
                *min_roster_items,
                server,
            )
            .await?;
            report("login", &cli.label, cli.concurrency, &s);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = (|| {
        // Whatever happens inside the runtime, the process ends in bounded time.
        let budget = secs("max-runtime", cli.max_runtime)?;
        std::thread::spawn(move || {
            std::thread::sleep(budget);
            eprintln!("onboardbench: still running after {budget:?}; giving up");
            std::process::exit(3);
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let result = runtime.block_on(run(&cli));
        runtime.shutdown_timeout(Duration::from_secs(1));
        result
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("onboardbench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
