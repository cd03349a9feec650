//! `loadgen`: Rookery's XMPP load generator. `loadgen w1 --help` for workload W1 (1:1 chat).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rookery_benches::cli::{ConnArgs, secs};
use rookery_benches::procstat::Proc;
use rookery_benches::w1;

/// Rookery's XMPP load generator.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version)]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// W1: 1:1 chat between logged-in sessions; reports delivered msg/s and server CPU per message.
    W1(W1Args),
}

#[derive(Parser, Debug)]
struct W1Args {
    #[command(flatten)]
    conn: ConnArgs,
    /// Pairs of sessions (sender, receiver); 2 × this many accounts are used.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Message body length in bytes.
    #[arg(long, default_value_t = 100)]
    body: usize,
    /// Most messages in flight (sent, not yet received) per pair. Keep window × message size well below the
    /// socket buffers (hundreds of kB): a pair does not read while its write is blocked.
    #[arg(long, default_value_t = 20)]
    window: usize,
    /// Seconds of flooding before the measured window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds in the measured window.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait for in-flight messages after the window.
    #[arg(long, default_value_t = 3.0)]
    drain: f64,
    /// Concurrent logins.
    #[arg(long, default_value_t = 50)]
    login_concurrency: usize,
    /// Seconds all logins together may take.
    #[arg(long, default_value_t = 120.0)]
    login_timeout: f64,
    /// Send initial presence after binding.
    #[arg(long)]
    presence: bool,
    /// PID of the server process, for CPU time and memory (from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Tokio worker threads; 1 means a current-thread runtime (the fastest on one pinned core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the first message the first receiver got (to check what the server delivers).
    #[arg(long)]
    show_sample: bool,
    /// A label for the RESULT line.
    #[arg(long, default_value = "w1")]
    label: String,
}

fn run_w1(args: W1Args) -> anyhow::Result<()> {
    if args.pairs == 0 || args.window == 0 {
        bail!("--pairs and --window must be at least 1");
    }
    let server = args.server_pid.map(Proc::Pid);
    if let Some(proc) = server {
        proc.cpu_time()
            .with_context(|| format!("--server-pid {}", args.server_pid.unwrap_or_default()))?;
    }
    let params = w1::Params {
        pairs: args.pairs,
        body_len: args.body,
        window: args.window,
        warmup: secs("warmup", args.warmup)?,
        duration: secs("duration", args.duration)?.max(Duration::from_millis(100)),
        drain: secs("drain", args.drain)?,
        stall_timeout: secs("timeout", args.conn.timeout)?,
        login_concurrency: args.login_concurrency,
        login_timeout: secs("login-timeout", args.login_timeout)?,
        presence: args.presence,
        server,
        show_sample: args.show_sample,
    };
    let target = args.conn.target()?;

    // Whatever happens inside the runtime, the process ends in bounded time.
    let budget = params.login_timeout
        + params.warmup
        + params.duration
        + params.drain
        + 3 * params.stall_timeout;
    let budget = budget + Duration::from_secs(15);
    std::thread::spawn(move || {
        std::thread::sleep(budget);
        eprintln!("loadgen: still running after {budget:?}; giving up");
        std::process::exit(3);
    });

    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let conn = &args.conn;
    let accounts = |i: usize| conn.auth(i);
    let report = runtime.block_on(w1::run(&target, &accounts, &params))?;
    print!("{}", report.human(&params));
    println!("{}", report.machine(&args.label));
    // Do not wait for tasks left in the runtime (there should be none).
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.workload {
        Workload::W1(args) => run_w1(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
