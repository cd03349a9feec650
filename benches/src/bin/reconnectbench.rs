//! `reconnectbench`: what a phone's reconnection costs an XMPP server (issue 5): a full login, SASL2 + FAST +
//! Bind2, or XEP-0198 resumption. `reconnectbench --help`; see `benches/reconnect/run.sh` and
//! `benches/src/reconnect.rs`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use clap::Parser;
use rookery_benches::cli::{ConnArgs, secs};
use rookery_benches::procstat::Proc;
use rookery_benches::reconnect::{self, Mode, Phone, Run, Unsupported};

/// Reconnect cost: many phones reconnecting over and over, the server's CPU per reconnect and the round trips.
#[derive(Parser, Debug)]
#[command(name = "reconnectbench", version)]
struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    /// How each reconnect logs in: full (SASL1 + bind + enable), fast (SASL2 + FAST + Bind2 + enable), resume
    /// (SASL1 + XEP-0198 <resume/>), fast-resume (SASL2 + FAST with <resume/> inline).
    #[arg(long, value_enum)]
    mode: Mode,
    /// Timed reconnects, shared among the phones.
    #[arg(long, default_value_t = 1000)]
    reconnects: usize,
    /// Phones (accounts --first-user, the next, ...) reconnecting at the same time.
    #[arg(long, default_value_t = 4)]
    phones: usize,
    /// Untimed reconnects of each phone before the timed ones.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// PID of the server process, for its CPU time (from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// If the server does not offer what --mode needs (SASL2, FAST, inline resumption), print a RESULT line with
    /// skipped=1 and succeed instead of failing.
    #[arg(long)]
    skip_if_unsupported: bool,
    /// Seconds the whole run may take before the process gives up.
    #[arg(long, default_value_t = 3600.0)]
    max_runtime: f64,
    /// A label for the RESULT line.
    #[arg(long, default_value = "reconnect")]
    label: String,
}

fn range((lo, hi): (u32, u32)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

fn report(cli: &Cli, run: &Run) {
    let n = run.reconnects.len();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us_per = |d: Option<Duration>| {
        d.map_or_else(
            || "NA".to_owned(),
            |d| format!("{:.1}", d.as_secs_f64() * 1e6 / n.max(1) as f64),
        )
    };
    let secs = |d: Option<Duration>| {
        d.map_or_else(|| "NA".to_owned(), |d| format!("{:.3}", d.as_secs_f64()))
    };
    let mode = cli.mode.name();
    println!(
        "{mode}: {n} reconnects, {} phones at a time, in {:.2} s: {:.1}/s; latency p50 {:.2} ms, mean {:.2} ms, \
         p99 {:.2} ms; server CPU {} µs per reconnect (clock ticks), {} µs (schedstat); round trips after TLS {}, \
         before {}",
        cli.phones,
        run.wall.as_secs_f64(),
        run.rate(),
        ms(run.latency(0.5)),
        ms(run.mean_latency()),
        ms(run.latency(0.99)),
        us_per(run.server_cpu_ticks),
        us_per(run.server_cpu),
        range(run.round_trips_after_tls()),
        range(run.round_trips_before_tls()),
    );
    println!(
        "RESULT bench=reconnect mode={mode} label={} n={n} phones={} wall_s={:.3} per_s={:.2} p50_ms={:.3} \
         mean_ms={:.3} p99_ms={:.3} cpu_s={} cpu_ticks_s={} cpu_us_per={} cpu_ticks_us_per={} rtt_after_tls={} \
         rtt_before_tls={}",
        cli.label,
        cli.phones,
        run.wall.as_secs_f64(),
        run.rate(),
        ms(run.latency(0.5)),
        ms(run.mean_latency()),
        ms(run.latency(0.99)),
        secs(run.server_cpu),
        secs(run.server_cpu_ticks),
        us_per(run.server_cpu),
        us_per(run.server_cpu_ticks),
        range(run.round_trips_after_tls()),
        range(run.round_trips_before_tls()),
    );
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    ensure!(cli.phones >= 1, "--phones must be at least 1");
    ensure!(cli.reconnects >= 1, "--reconnects must be at least 1");
    let server = cli.server_pid.map(Proc::Pid);
    if let Some(p) = server {
        p.cpu_time_precise()
            .with_context(|| format!("--server-pid {}", cli.server_pid.unwrap_or_default()))?;
    }
    let target = cli.conn.target()?;
    let phones = (0..cli.phones)
        .map(|i| Phone::new(cli.conn.auth(i)))
        .collect();
    let result = reconnect::run(
        &target,
        cli.mode,
        phones,
        cli.reconnects,
        cli.warmup,
        server,
    )
    .await;
    match result {
        Ok(run) => report(cli, &run),
        Err(err) if cli.skip_if_unsupported && err.downcast_ref::<Unsupported>().is_some() => {
            eprintln!("reconnectbench: skipping {}: {err:#}", cli.mode.name());
            println!(
                "RESULT bench=reconnect mode={} label={} skipped=1",
                cli.mode.name(),
                cli.label
            );
        }
        Err(err) => return Err(err),
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
            eprintln!("reconnectbench: still running after {budget:?}; giving up");
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
            eprintln!("reconnectbench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
