//! `mambench`: the message archive benchmark (workload W6). `mambench --help`; `benches/mam/run.sh` drives it.
//!
//! - `seed`: fills one account's archive in Rookery's database directly, in bulk (the server is stopped);
//! - `send`: contacts send chat messages to the account, which is online: fills Prosody's archive through the
//!   protocol, and measures the server CPU per message, which is what archiving adds to delivery (each message is
//!   archived twice: in the sender's and in the recipient's archive);
//! - `query`: the account asks for 50-message pages, timed from the request to the `<fin/>`: the last page, the
//!   last page with one contact, a date range at a random place, and the page after a random message.
//!
//! Account `{prefix}1` owns the archive; its contacts are `{prefix}2` … `{prefix}{peers + 1}`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rand::{Rng as _, SeedableRng as _};
use rookery_benches::cli::ConnArgs;
use rookery_benches::client::{Client, Stanza, is_reply_to};
use rookery_benches::hist::Histogram;
use rookery_benches::procstat::Proc;
use rookery_benches::scan::{self, TagKind};

const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
/// The page every query asks for.
const PAGE: usize = 50;

#[derive(Parser, Debug)]
#[command(name = "mambench", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
    #[command(flatten)]
    conn: ConnArgs,
    /// Contacts of the archive's owner.
    #[arg(long, default_value_t = 10)]
    peers: usize,
    /// A label for the RESULT lines (the server's name).
    #[arg(long, default_value = "server")]
    label: String,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Fills the owner's archive in Rookery's SQLite database (stopped server), through the store's bulk append:
    /// messages alternately from and to its contacts, spread evenly over the last `span-hours`.
    Seed {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        messages: usize,
        /// Must stay within the server's retention (Snikket's default: 7 days).
        #[arg(long, default_value_t = 144.0)]
        span_hours: f64,
    },
    /// The contacts send `messages` chat messages (100-byte bodies) to the owner, who is online.
    Send {
        #[arg(long)]
        messages: usize,
        /// The server's PID, for its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Times `reps` queries of each kind.
    Query {
        #[arg(long, default_value_t = 200)]
        reps: usize,
        #[arg(long)]
        server_pid: Option<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mambench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.bench {
        Bench::Seed {
            db,
            messages,
            span_hours,
        } => seed(&cli, db, *messages, *span_hours).await,
        Bench::Send {
            messages,
            server_pid,
        } => send(&cli, *messages, *server_pid).await,
        Bench::Query { reps, server_pid } => query(&cli, *reps, *server_pid).await,
    }
}

fn username(cli: &Cli, i: usize) -> String {
    format!("{}{}", cli.conn.user_prefix, cli.conn.first_user + i)
}

fn body(i: usize) -> String {
    // 100 bytes, like the other benchmarks' messages.
    format!("{i:>10} {}", "m".repeat(89))
}

async fn seed(
    cli: &Cli,
    db: &std::path::Path,
    messages: usize,
    span_hours: f64,
) -> anyhow::Result<()> {
    let store = rookery_store::Store::open_sqlite(db)
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    let owner = username(cli, 0);
    let domain = &cli.conn.domain;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let span_ms = (span_hours * 3_600_000.0) as i64;
    let spacing = (span_ms / i64::try_from(messages.max(1))?).max(1);
    let first_ms = now_ms - 60_000 - spacing * i64::try_from(messages)?;
    let started = Instant::now();
    const BATCH: usize = 10_000;
    let mut done = 0;
    while done < messages {
        let n = BATCH.min(messages - done);
        let rows: Vec<(String, String, String)> = (done..done + n)
            .map(|i| {
                let peer = format!("{}@{domain}", username(cli, 1 + i % cli.peers));
                let stanza = if i % 2 == 0 {
                    format!(
                        "<message xmlns='jabber:client' type='chat' id='m{i}' from='{peer}/phone' to='{owner}@{domain}'><body>{}</body></message>",
                        body(i)
                    )
                } else {
                    format!(
                        "<message xmlns='jabber:client' type='chat' id='m{i}' from='{owner}@{domain}/phone' to='{peer}'><body>{}</body></message>",
                        body(i)
                    )
                };
                let resource = if i % 2 == 0 { "phone" } else { "" };
                (peer, resource.to_owned(), stanza)
            })
            .collect();
        let batch: Vec<rookery_store::NewArchived<'_>> = rows
            .iter()
            .enumerate()
            .map(|(k, (peer, resource, stanza))| rookery_store::NewArchived {
                owner: &owner,
                with_bare: peer,
                with_resource: (!resource.is_empty()).then_some(resource.as_str()),
                stanza,
                archived_at: first_ms + spacing * i64::try_from(done + k).unwrap_or(0),
            })
            .collect();
        store.archive().append_all(&batch).await?;
        done += n;
    }
    let elapsed = started.elapsed();
    store.close().await;
    println!(
        "RESULT bench=seed label={} messages={messages} seconds={:.1} us_per_msg={:.2}",
        cli.label,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / messages.max(1) as f64
    );
    Ok(())
}

async fn login(cli: &Cli, i: usize) -> anyhow::Result<Client> {
    let target = cli.conn.target()?;
    Client::login(&target, &cli.conn.auth(i), "mambench")
        .await
        .with_context(|| format!("login of {}", username(cli, i)))
}

fn cpu(pid: Option<u32>) -> anyhow::Result<Option<Duration>> {
    pid.map(|p| Proc::Pid(p).cpu_time_precise()).transpose()
}

/// How long the server's threads have waited for a CPU (other processes on its core): what a latency tail on a
/// shared machine is made of.
fn waited(pid: Option<u32>) -> anyhow::Result<Option<Duration>> {
    pid.map(|p| Proc::Pid(p).run_queue_wait()).transpose()
}

async fn send(cli: &Cli, messages: usize, server_pid: Option<u32>) -> anyhow::Result<()> {
    let mut owner = login(cli, 0).await?;
    owner.send(b"<presence/>").await?;
    owner.barrier().await?;
    let mut peers = Vec::new();
    for i in 1..=cli.peers {
        peers.push(login(cli, i).await?);
    }
    let to = owner.bare.clone();
    let cpu_before = cpu(server_pid)?;
    let started = Instant::now();
    // Rounds of one message per contact; each round is received whole before the next, so that nothing queues up.
    let mut sent = 0;
    while sent < messages {
        let round = cli.peers.min(messages - sent);
        for (k, peer) in peers.iter_mut().take(round).enumerate() {
            let i = sent + k;
            let stanza = format!(
                "<message type='chat' id='m{i}' to='{to}'><body>{}</body></message>",
                body(i)
            );
            peer.send(stanza.as_bytes()).await?;
        }
        for _ in 0..round {
            let deadline = tokio::time::Instant::now() + owner.step_timeout();
            owner
                .wait_for("a message", deadline, |s| {
                    scan::element_name(s) == b"message" && scan::has(s, "body")
                })
                .await?;
        }
        owner.discard(|_| true);
        sent += round;
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu(server_pid)?;
    let per_msg = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => format!("{:.2}", (a - b).as_secs_f64() * 1e6 / messages as f64),
        _ => "NA".to_owned(),
    };
    println!(
        "RESULT bench=send label={} messages={messages} seconds={:.2} server_cpu_us_per_msg={per_msg}",
        cli.label,
        elapsed.as_secs_f64()
    );
    for peer in peers {
        peer.close().await;
    }
    owner.close().await;
    Ok(())
}

/// The `id` and `timestamp` of `<name/>` in a metadata reply, the timestamp as unix milliseconds.
fn metadata_point(reply: &[u8], name: &str) -> anyhow::Result<i64> {
    let tag = scan::tags(reply)
        .find(|t| t.kind != TagKind::End && t.local_name() == name.as_bytes())
        .with_context(|| format!("no <{name}/> in the metadata: {}", scan::excerpt(reply)))?;
    let stamp = scan::attr(tag.raw, "timestamp").context("no timestamp")?;
    let t = time::OffsetDateTime::parse(&stamp, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("bad timestamp {stamp}"))?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?)
}

fn stamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn form(fields: &[(&str, String)]) -> String {
    let mut x = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{NS_MAM}</value></field>"
    );
    for (var, value) in fields {
        x.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    x.push_str("</x>");
    x
}

/// Sends a query and reads its results and `<fin/>`; returns the result ids and the reply.
async fn ask(client: &mut Client, inner: &str) -> anyhow::Result<(Vec<String>, Stanza)> {
    let id = client.id("mam");
    let iq = format!(
        "<iq type='set' id='{id}'><query xmlns='{NS_MAM}' queryid='{id}'>{inner}</query></iq>"
    );
    client.send(iq.as_bytes()).await?;
    let deadline = tokio::time::Instant::now() + client.step_timeout();
    let reply = client
        .wait_for("the query's reply", deadline, |s| is_reply_to(s, &id))
        .await?;
    if scan::attr(&reply, "type").as_deref() != Some("result") {
        bail!("query {inner:.120} failed: {}", scan::excerpt(&reply));
    }
    let mut ids = Vec::new();
    for kept in client.kept() {
        if let Some(result) =
            scan::tags(kept).find(|t| t.kind != TagKind::End && t.local_name() == b"result")
            && scan::attr(result.raw, "queryid").as_deref() == Some(id.as_str())
        {
            ids.push(scan::attr(result.raw, "id").unwrap_or_default());
        }
    }
    client.discard(|_| true);
    Ok((ids, reply))
}

async fn query(cli: &Cli, reps: usize, server_pid: Option<u32>) -> anyhow::Result<()> {
    let mut client = login(cli, 0).await?;
    let meta = client
        .iq("get", None, &format!("<metadata xmlns='{NS_MAM}'/>"))
        .await?;
    let (first_ms, last_ms) = (
        metadata_point(&meta, "start")?,
        metadata_point(&meta, "end")?,
    );
    let (total, _) = ask(
        &mut client,
        &format!("<set xmlns='{NS_RSM}'><max>1</max><before/></set>"),
    )
    .await?;
    if total.is_empty() {
        bail!("the archive is empty");
    }
    let peer = format!("{}@{}", username(cli, 3.min(cli.peers)), cli.conn.domain);
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let span = (last_ms - first_ms).max(1);
    for kind in ["last", "with", "range", "page"] {
        let mut hist = Histogram::default();
        let mut cpu_total = Duration::ZERO;
        let mut wait_total = Duration::ZERO;
        let mut slowest_waited = Duration::ZERO;
        let mut slowest_elapsed = Duration::ZERO;
        for _ in 0..reps {
            // Where a range or page starts: anywhere but the last tenth, so that a full page follows.
            let at = first_ms + rng.random_range(0..span * 9 / 10);
            let inner = match kind {
                "last" => format!("<set xmlns='{NS_RSM}'><max>{PAGE}</max><before/></set>"),
                "with" => format!(
                    "{}<set xmlns='{NS_RSM}'><max>{PAGE}</max><before/></set>",
                    form(&[("with", peer.clone())])
                ),
                "range" => format!(
                    "{}<set xmlns='{NS_RSM}'><max>{PAGE}</max></set>",
                    form(&[("start", stamp(at)), ("end", stamp(last_ms))])
                ),
                _ => {
                    // An id somewhere in the archive (not timed), then the page after it.
                    let (ids, _) = ask(
                        &mut client,
                        &format!(
                            "{}<set xmlns='{NS_RSM}'><max>1</max></set>",
                            form(&[("start", stamp(at))])
                        ),
                    )
                    .await?;
                    let after = ids.first().context("no message after a random time")?;
                    format!("<set xmlns='{NS_RSM}'><max>{PAGE}</max><after>{after}</after></set>")
                }
            };
            let (cpu_before, wait_before) = (cpu(server_pid)?, waited(server_pid)?);
            let started = Instant::now();
            let (ids, _) = ask(&mut client, &inner).await?;
            let elapsed = started.elapsed();
            if let (Some(b), Some(a)) = (cpu_before, cpu(server_pid)?) {
                cpu_total += a - b;
            }
            if let (Some(b), Some(a)) = (wait_before, waited(server_pid)?) {
                wait_total += a - b;
                if elapsed > slowest_elapsed {
                    slowest_elapsed = elapsed;
                    slowest_waited = a - b;
                }
            }
            if ids.len() != PAGE {
                bail!("a {kind} query returned {} messages, not {PAGE}", ids.len());
            }
            hist.record(u64::try_from(elapsed.as_micros())?);
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let cpu_per = if server_pid.is_some() {
            format!("{:.3}", cpu_total.as_secs_f64() * 1000.0 / reps as f64)
        } else {
            "NA".to_owned()
        };
        let wait_per = if server_pid.is_some() {
            format!("{:.3}", wait_total.as_secs_f64() * 1000.0 / reps as f64)
        } else {
            "NA".to_owned()
        };
        println!(
            "RESULT bench=query kind={kind} label={} reps={reps} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} server_cpu_ms_per_query={cpu_per} server_cpu_wait_ms_per_query={wait_per} slowest_server_cpu_wait_ms={:.3}",
            cli.label,
            ms(hist.quantile(0.5)),
            ms(hist.quantile(0.99)),
            ms(hist.max()),
            slowest_waited.as_secs_f64() * 1000.0,
        );
    }
    client.close().await;
    Ok(())
}
