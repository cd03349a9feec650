//! `imbench`: instant-messaging benchmarks against an XMPP server (issue 3). `imbench --help`; see
//! `benches/im/README.md`.
//!
//! - `provision`: rosters and subscriptions for the others, made through the protocol;
//! - `fanout`: a user with N mutual contacts, all online, comes online;
//! - `roster`: login, then a roster get of a large roster;
//! - `offline`: N messages to an offline account, then it logs in.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rookery_benches::cli::{ConnArgs, secs};
use rookery_benches::im::{self, Env, Sizes, median, median_opt, ms};
use rookery_benches::procstat::Proc;

/// Instant-messaging benchmarks: presence fan-out, a large roster, offline storage.
#[derive(Parser, Debug)]
#[command(name = "imbench", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Makes the rosters and subscriptions the benchmarks need, through the protocol (idempotent).
    Provision,
    /// A user with --contacts mutual contacts, all online, sends initial presence; time until every contact has
    /// it and the user has every contact's presence, and the server CPU for it.
    Fanout {
        /// Times the user logs in and comes online.
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Logs in the owner of the --roster-items roster and fetches it; latency and server CPU of the fetch.
    Roster {
        /// Logins and fetches.
        #[arg(long, default_value_t = 10)]
        reps: usize,
    },
    /// Sends --offline-messages messages to an offline account, which then logs in and sends initial presence:
    /// time and server CPU to store them and to deliver them.
    Offline {
        /// Rounds of storing and delivering.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Message body length in bytes.
        #[arg(long, default_value_t = 100)]
        body: usize,
    },
}

#[derive(Parser, Debug)]
struct Common {
    #[command(flatten)]
    conn: ConnArgs,
    /// Contacts of the fan-out user.
    #[arg(long, global = true, default_value_t = 200)]
    contacts: usize,
    /// Items in the large roster.
    #[arg(long, global = true, default_value_t = 1000)]
    roster_items: usize,
    /// Messages stored for the offline account.
    #[arg(long, global = true, default_value_t = 10_000)]
    offline_messages: usize,
    /// PID of the server process, for its CPU time (from /proc).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Concurrent logins.
    #[arg(long, global = true, default_value_t = 50)]
    login_concurrency: usize,
    /// Seconds any one measured operation may take (a fan-out, a fetch, storing or delivering the messages).
    #[arg(long, global = true, default_value_t = 300.0)]
    op_timeout: f64,
    /// Seconds the whole run may take before the process gives up.
    #[arg(long, global = true, default_value_t = 3600.0)]
    max_runtime: f64,
    /// A label for the RESULT line.
    #[arg(long, global = true, default_value = "im")]
    label: String,
}

fn f(v: Option<Duration>) -> String {
    v.map_or_else(|| "NA".to_owned(), |d| format!("{:.3}", ms(d)))
}

fn per(v: Option<Duration>, units: usize) -> String {
    v.map_or_else(
        || "NA".to_owned(),
        |d| format!("{:.2}", d.as_secs_f64() * 1e6 / units.max(1) as f64),
    )
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let c = &cli.common;
    let server = c.server_pid.map(Proc::Pid);
    if let Some(p) = server {
        p.cpu_time_precise()
            .with_context(|| format!("--server-pid {}", c.server_pid.unwrap_or_default()))?;
    }
    let target = c.conn.target()?;
    let accounts = |i: usize| c.conn.auth(i);
    let env = Env {
        target: &target,
        accounts: &accounts,
        sizes: Sizes {
            contacts: c.contacts,
            roster_items: c.roster_items,
            offline_messages: c.offline_messages,
        },
        server,
        login_concurrency: c.login_concurrency,
        op_timeout: secs("op-timeout", c.op_timeout)?,
    };
    let ticks_before = server.map(Proc::cpu_time).transpose()?;
    let label = &c.label;
    match &cli.bench {
        Bench::Provision => {
            print!("{}", im::provision(&env).await?);
        }
        Bench::Fanout { reps } => {
            let runs = im::fanout(&env, *reps).await?;
            for (i, r) in runs.iter().enumerate() {
                println!(
                    "fan-out #{}: contacts have it in {:.2} ms, probes answered in {:.2} ms; server CPU {} ms",
                    i + 1,
                    ms(r.contacts_done),
                    ms(r.probes_done),
                    f(r.server_cpu)
                );
            }
            let all = median(&runs.iter().map(|r| r.all_done).collect::<Vec<_>>());
            let cpu = median_opt(runs.iter().map(|r| r.server_cpu));
            println!(
                "RESULT bench=fanout label={label} contacts={} reps={} all_ms={:.3} contacts_ms={:.3} probes_ms={:.3} cpu_ms={} cpu_us_per_contact={}",
                c.contacts,
                runs.len(),
                ms(all),
                ms(median(
                    &runs.iter().map(|r| r.contacts_done).collect::<Vec<_>>()
                )),
                ms(median(
                    &runs.iter().map(|r| r.probes_done).collect::<Vec<_>>()
                )),
                f(cpu),
                per(cpu, c.contacts)
            );
        }
        Bench::Roster { reps } => {
            let runs = im::roster(&env, *reps).await?;
            for (i, r) in runs.iter().enumerate() {
                println!(
                    "roster #{}: {} items fetched in {:.2} ms ({:.2} ms from connect); server CPU {} ms",
                    i + 1,
                    r.items,
                    ms(r.fetch),
                    ms(r.login_to_roster),
                    f(r.server_cpu)
                );
            }
            let cpu = median_opt(runs.iter().map(|r| r.server_cpu));
            println!(
                "RESULT bench=roster label={label} items={} reps={} fetch_ms={:.3} first_fetch_ms={:.3} login_to_roster_ms={:.3} cpu_ms={} cpu_us_per_item={}",
                c.roster_items,
                runs.len(),
                ms(median(&runs.iter().map(|r| r.fetch).collect::<Vec<_>>())),
                runs.first().map_or(0.0, |r| ms(r.fetch)),
                ms(median(
                    &runs.iter().map(|r| r.login_to_roster).collect::<Vec<_>>()
                )),
                f(cpu),
                per(cpu, c.roster_items)
            );
        }
        Bench::Offline { reps, body } => {
            let runs = im::offline(&env, *reps, *body).await?;
            for (i, r) in runs.iter().enumerate() {
                println!(
                    "offline #{}: stored in {:.1} ms (server CPU {} ms), {} delivered in {:.1} ms (server CPU {} ms)",
                    i + 1,
                    ms(r.store),
                    f(r.store_cpu),
                    r.delivered,
                    ms(r.deliver),
                    f(r.deliver_cpu)
                );
            }
            let store_cpu = median_opt(runs.iter().map(|r| r.store_cpu));
            let deliver_cpu = median_opt(runs.iter().map(|r| r.deliver_cpu));
            println!(
                "RESULT bench=offline label={label} messages={} reps={} store_ms={:.3} deliver_ms={:.3} store_cpu_ms={} deliver_cpu_ms={} store_cpu_us_per_msg={} deliver_cpu_us_per_msg={}",
                c.offline_messages,
                runs.len(),
                ms(median(&runs.iter().map(|r| r.store).collect::<Vec<_>>())),
                ms(median(&runs.iter().map(|r| r.deliver).collect::<Vec<_>>())),
                f(store_cpu),
                f(deliver_cpu),
                per(store_cpu, c.offline_messages),
                per(deliver_cpu, c.offline_messages)
            );
        }
    }
    if let (Some(p), Some(before)) = (server, ticks_before) {
        let total = p.cpu_time()?.saturating_sub(before);
        println!(
            "server CPU over the whole run, from clock ticks (cross-check; includes set-up and logins): {:.2} s",
            total.as_secs_f64()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = (|| {
        if cli.common.contacts == 0
            || cli.common.roster_items == 0
            || cli.common.offline_messages == 0
        {
            bail!("--contacts, --roster-items and --offline-messages must be at least 1");
        }
        // Whatever happens inside the runtime, the process ends in bounded time.
        let budget = secs("max-runtime", cli.common.max_runtime)?;
        std::thread::spawn(move || {
            std::thread::sleep(budget);
            eprintln!("imbench: still running after {budget:?}; giving up");
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
            eprintln!("imbench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
