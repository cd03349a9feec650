//! `loadgen`: Rookery's XMPP load generator. `loadgen w1 --help` for workload W1 (1:1 chat).
#![forbid(unsafe_code)]

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rookery_benches::conn::{Auth, Security, Target};
use rookery_benches::procstat::Proc;
use rookery_benches::scram::ScramHash;
use rookery_benches::{tls, w1};

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

#[derive(Parser, Debug)]
struct ConnArgs {
    /// The server's c2s address.
    #[arg(long, default_value = "127.0.0.1:5222")]
    server: String,
    /// The XMPP domain.
    #[arg(long, default_value = "bench.local")]
    domain: String,
    /// STARTTLS (required) or no TLS at all.
    #[arg(long, value_enum, default_value_t = TlsMode::Starttls)]
    tls: TlsMode,
    /// Accept any server certificate (benchmark servers have self-signed ones).
    #[arg(long, conflicts_with = "ca_file")]
    insecure: bool,
    /// Trust the CA certificates in this PEM file.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// SASL mechanism.
    #[arg(long, value_enum, default_value_t = Mechanism::ScramSha1)]
    auth: Mechanism,
    /// Account names are this prefix followed by a number.
    #[arg(long, default_value = "bench")]
    user_prefix: String,
    /// The number of the first account.
    #[arg(long, default_value_t = 1)]
    first_user: usize,
    /// The password pattern: `{n}` becomes the account number, `{user}` the account name.
    #[arg(long, default_value = "benchpass-{n}")]
    password: String,
    /// Seconds to wait for any single network step.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TlsMode {
    Starttls,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mechanism {
    #[value(name = "scram-sha-1")]
    ScramSha1,
    #[value(name = "scram-sha-256")]
    ScramSha256,
    Plain,
    Anonymous,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| anyhow!("--{name} must be a non-negative number of seconds"))
}

impl ConnArgs {
    fn target(&self) -> anyhow::Result<Target> {
        let addr: SocketAddr = self
            .server
            .to_socket_addrs()
            .with_context(|| format!("bad --server {:?}", self.server))?
            .next()
            .ok_or_else(|| anyhow!("--server {:?} has no address", self.server))?;
        let security = match self.tls {
            TlsMode::None => Security::Plain,
            TlsMode::Starttls => {
                let trust = match (&self.ca_file, self.insecure) {
                    (Some(path), _) => tls::Trust::CaFile(path),
                    (None, true) => tls::Trust::Insecure,
                    (None, false) => bail!("STARTTLS needs --ca-file <PEM> or --insecure"),
                };
                Security::StartTls(tls::client_config(&trust)?)
            }
        };
        Ok(Target {
            addr,
            domain: self.domain.clone(),
            security,
            step_timeout: secs("timeout", self.timeout)?,
        })
    }

    /// The credentials of session `i` (0-based).
    fn auth(&self, i: usize) -> Auth {
        let n = self.first_user + i;
        let username = format!("{}{n}", self.user_prefix);
        let password = self
            .password
            .replace("{n}", &n.to_string())
            .replace("{user}", &username);
        match self.auth {
            Mechanism::ScramSha1 => Auth::Scram {
                hash: ScramHash::Sha1,
                username,
                password,
            },
            Mechanism::ScramSha256 => Auth::Scram {
                hash: ScramHash::Sha256,
                username,
                password,
            },
            Mechanism::Plain => Auth::Plain { username, password },
            Mechanism::Anonymous => Auth::Anonymous,
        }
    }
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
