//! Workload W1: 1:1 chat between logged-in sessions.
//!
//! N pairs of sessions; each sender sends `<message type='chat'>` with a B-byte body to its receiver's full JID,
//! keeping at most W messages in flight (sent, not yet received) per pair. After a warm-up, the delivered messages
//! are counted for a fixed window, together with the server's CPU time and memory over the same window.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout};

use crate::conn::{self, Auth, Session, Target};
use crate::hist::Histogram;
use crate::procstat::{Memory, Proc};
use crate::scan::{self, MessageCounter};

/// The parameters of a W1 run.
#[derive(Debug, Clone)]
pub struct Params {
    pub pairs: usize,
    pub body_len: usize,
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// How long to wait for in-flight messages after the window before closing.
    pub drain: Duration,
    /// A pair that receives nothing for this long while sending is a failure.
    pub stall_timeout: Duration,
    pub login_concurrency: usize,
    /// The whole login phase must finish within this.
    pub login_timeout: Duration,
    /// Send initial presence after binding.
    pub presence: bool,
    /// The server process, for CPU and memory figures.
    pub server: Option<Proc>,
    /// Keep the first message the first receiver gets, to show what the server delivers.
    pub show_sample: bool,
}

/// The accounts: the i-th session (0-based) logs in with `accounts(i)`.
pub type Accounts<'a> = dyn Fn(usize) -> Auth + 'a;

/// The outcome of a W1 run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub sessions: usize,
    pub login_wall: Duration,
    pub login_server_cpu: Option<Duration>,
    pub mem_before_login: Option<Memory>,
    pub mem_after_login: Option<Memory>,
    pub window: Duration,
    pub delivered: u64,
    pub server_cpu: Option<Duration>,
    /// Time the server was runnable but waited for its CPU, over the window.
    pub server_wait: Option<Duration>,
    pub mem_before: Option<Memory>,
    pub mem_after: Option<Memory>,
    pub loadgen_cpu: Duration,
    pub loadgen_wait: Duration,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    pub latency_samples: u64,
    /// Messages sent and received over the whole run, including warm-up and drain.
    pub total_sent: u64,
    pub total_received: u64,
    /// Error stanzas the senders got back.
    pub error_stanzas: u64,
    pub min_pair_received: u64,
    pub max_pair_received: u64,
    /// The first message delivered to the first receiver (with `show_sample`).
    pub sample: Option<String>,
}

impl Report {
    pub fn msgs_per_sec(&self) -> f64 {
        self.delivered as f64 / self.window.as_secs_f64()
    }

    /// Server CPU microseconds per delivered message.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() * 1e6 / self.delivered.max(1) as f64)
    }

    /// Server CPU time as a fraction of one core over the window.
    pub fn server_core_share(&self) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() / self.window.as_secs_f64())
    }

    /// The share of the window the server spent runnable but waiting for a CPU (summed over its threads).
    pub fn server_wait_share(&self) -> Option<f64> {
        Some(self.server_wait?.as_secs_f64() / self.window.as_secs_f64())
    }

    pub fn loadgen_core_share(&self) -> f64 {
        self.loadgen_cpu.as_secs_f64() / self.window.as_secs_f64()
    }

    /// A human-readable summary, several lines.
    pub fn human(&self, p: &Params) -> String {
        let mut s = String::new();
        let mb = |m: Option<Memory>| {
            m.map_or("?".to_owned(), |m| {
                format!("{:.1} MB", m.rss_kb as f64 / 1024.0)
            })
        };
        let _ = writeln!(
            s,
            "W1: {} pairs, {} B bodies, window {}, warm-up {:.1} s, measured {:.2} s",
            p.pairs,
            p.body_len,
            p.window,
            p.warmup.as_secs_f64(),
            self.window.as_secs_f64()
        );
        let _ = write!(
            s,
            "logins: {} in {:.2} s ({:.0}/s)",
            self.sessions,
            self.login_wall.as_secs_f64(),
            self.sessions as f64 / self.login_wall.as_secs_f64()
        );
        if let Some(cpu) = self.login_server_cpu {
            let _ = write!(
                s,
                ", server CPU {:.2} s ({:.2} ms/login)",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e3 / self.sessions as f64
            );
        }
        if let (Some(a), Some(b)) = (self.mem_before_login, self.mem_after_login) {
            let _ = write!(
                s,
                ", RSS {} -> {} ({:.1} kB/session)",
                mb(Some(a)),
                mb(Some(b)),
                (b.rss_kb as f64 - a.rss_kb as f64) / self.sessions as f64
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "delivered: {} messages in {:.2} s = {:.0} msg/s",
            self.delivered,
            self.window.as_secs_f64(),
            self.msgs_per_sec()
        );
        if let (Some(cpu), Some(per), Some(share)) = (
            self.server_cpu,
            self.cpu_us_per_msg(),
            self.server_core_share(),
        ) {
            let _ = write!(
                s,
                "server CPU: {:.2} s ({:.0}% of a core) = {per:.2} us/msg",
                cpu.as_secs_f64(),
                share * 100.0
            );
            if let Some(wait) = self.server_wait_share() {
                let _ = write!(
                    s,
                    "; runnable but waiting for a CPU {:.0}% of the time",
                    wait * 100.0
                );
            }
            let _ = writeln!(s);
        }
        if let (Some(a), Some(b)) = (self.mem_before, self.mem_after) {
            let _ = writeln!(
                s,
                "server RSS: {} before, {} after (peak {:.1} MB)",
                mb(Some(a)),
                mb(Some(b)),
                b.peak_kb as f64 / 1024.0
            );
        }
        let _ = writeln!(
            s,
            "latency (send to receipt, measured window): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
            self.latency_p50_us as f64 / 1e3,
            self.latency_p99_us as f64 / 1e3,
            self.latency_max_us as f64 / 1e3,
            self.latency_samples
        );
        let _ = writeln!(
            s,
            "load generator CPU: {:.2} s ({:.0}% of a core, waiting for a CPU {:.0}% of the time); whole run: {} sent, {} received, {} error stanzas; per pair {}..{} received",
            self.loadgen_cpu.as_secs_f64(),
            self.loadgen_core_share() * 100.0,
            self.loadgen_wait.as_secs_f64() * 100.0 / self.window.as_secs_f64(),
            self.total_sent,
            self.total_received,
            self.error_stanzas,
            self.min_pair_received,
            self.max_pair_received
        );
        if let Some(sample) = &self.sample {
            let _ = writeln!(
                s,
                "first message delivered to the first receiver: {}",
                sample.trim()
            );
        }
        if let Some(core) = self.server_core_share()
            && core < 0.9
        {
            let cause = if self.loadgen_core_share() > 0.9 {
                format!(
                    "the load generator used {:.0}% of its core",
                    self.loadgen_core_share() * 100.0
                )
            } else if self.server_wait_share().is_some_and(|w| w > 0.05) {
                "other processes took part of its core".to_owned()
            } else {
                "the closed loop (latency x window), not the server's CPU".to_owned()
            };
            let _ = writeln!(
                s,
                "note: the server used {:.0}% of a core, so msg/s is not its capacity; the limit was {cause}",
                core * 100.0
            );
        }
        let loadgen_wait = self.loadgen_wait.as_secs_f64() / self.window.as_secs_f64();
        if loadgen_wait > 0.25 {
            let _ = writeln!(
                s,
                "note: the load generator waited for its CPU {:.0}% of the time (other processes on its core); \
                 it may have held msg/s back",
                loadgen_wait * 100.0
            );
        }
        s
    }

    /// One line of `key=value` pairs for scripts.
    pub fn machine(&self, label: &str) -> String {
        let opt =
            |v: Option<f64>, prec: usize| v.map_or("NA".to_owned(), |v| format!("{v:.prec$}"));
        let kb = |m: Option<Memory>| m.map_or("NA".to_owned(), |m| m.rss_kb.to_string());
        format!(
            "RESULT label={label} sessions={} msgs={} secs={:.3} msgs_per_s={:.0} cpu_us_per_msg={} server_cpu_s={} \
             server_core={} rss_before_kb={} rss_after_kb={} rss_peak_kb={} rss_login_kb={} login_ms_cpu={} p50_us={} \
             p99_us={} max_us={} loadgen_core={:.3} server_wait={} loadgen_wait={:.3} errors={}",
            self.sessions,
            self.delivered,
            self.window.as_secs_f64(),
            self.msgs_per_sec(),
            opt(self.cpu_us_per_msg(), 3),
            opt(self.server_cpu.map(|c| c.as_secs_f64()), 3),
            opt(self.server_core_share(), 3),
            kb(self.mem_before),
            kb(self.mem_after),
            self.mem_after
                .map_or("NA".to_owned(), |m| m.peak_kb.to_string()),
            kb(self.mem_after_login),
            opt(
                self.login_server_cpu
                    .map(|c| c.as_secs_f64() * 1e3 / self.sessions as f64),
                3
            ),
            self.latency_p50_us,
            self.latency_p99_us,
            self.latency_max_us,
            self.loadgen_core_share(),
            opt(self.server_wait_share(), 3),
            self.loadgen_wait.as_secs_f64() / self.window.as_secs_f64(),
            self.error_stanzas,
        )
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// State shared by the pairs and the controller.
struct Shared {
    phase: AtomicU8,
    delivered: AtomicU64,
    /// The time origin of the timestamps in message ids.
    epoch: Instant,
}

impl Shared {
    fn micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// What one pair did.
struct PairOutcome {
    sent: u64,
    received: u64,
    errors: u64,
    latency: Histogram,
    sample: Option<Vec<u8>>,
}

/// Logs in every session, runs the flood, and reports.
pub async fn run(target: &Target, accounts: &Accounts<'_>, p: &Params) -> anyhow::Result<Report> {
    let sessions = 2 * p.pairs;
    let mut report = Report {
        sessions,
        ..Report::default()
    };
    let server_cpu = || p.server.map(Proc::cpu_time).transpose();
    let server_mem = || p.server.map(Proc::memory_kb).transpose();
    let server_wait = || p.server.map(Proc::run_queue_wait).transpose();

    // ---- login ----
    report.mem_before_login = server_mem()?;
    let cpu0 = server_cpu()?;
    let t0 = Instant::now();
    let logged_in = timeout(p.login_timeout, login_all(target, accounts, sessions, p))
        .await
        .map_err(|_| {
            anyhow!(
                "the {sessions} logins did not finish within {:?}",
                p.login_timeout
            )
        })??;
    report.login_wall = t0.elapsed();
    report.login_server_cpu = server_cpu()?.zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    report.mem_after_login = server_mem()?;

    // ---- flood ----
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(WARMUP),
        delivered: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let mut pairs = JoinSet::new();
    let mut it = logged_in.into_iter();
    for i in 0..p.pairs {
        let (Some(tx), Some(rx)) = (it.next(), it.next()) else {
            unreachable!("two sessions per pair")
        };
        let (shared, p) = (Arc::clone(&shared), p.clone());
        pairs.spawn(async move { run_pair(i, tx, rx, &shared, &p).await });
    }

    let start = Instant::now();
    wait_or_fail(&mut pairs, start + p.warmup).await?;
    let d0 = shared.delivered.load(Ordering::Relaxed);
    let cpu0 = server_cpu()?;
    let own0 = Proc::SelfProc.cpu_time()?;
    let wait0 = server_wait()?;
    let own_wait0 = Proc::SelfProc.run_queue_wait()?;
    report.mem_before = server_mem()?;
    let m0 = Instant::now();
    shared.phase.store(MEASURE, Ordering::Relaxed);

    wait_or_fail(&mut pairs, m0 + p.duration).await?;
    let d1 = shared.delivered.load(Ordering::Relaxed);
    let cpu1 = server_cpu()?;
    let own1 = Proc::SelfProc.cpu_time()?;
    let wait1 = server_wait()?;
    let own_wait1 = Proc::SelfProc.run_queue_wait()?;
    report.window = m0.elapsed();
    shared.phase.store(STOP, Ordering::Relaxed);
    report.mem_after = server_mem()?;
    report.delivered = d1 - d0;
    report.server_cpu = cpu1.zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    report.loadgen_cpu = own1.saturating_sub(own0);
    report.server_wait = wait1.zip(wait0).map(|(b, a)| b.saturating_sub(a));
    report.loadgen_wait = own_wait1.saturating_sub(own_wait0);
    if let Some(server) = p.server
        && !server.alive()
    {
        bail!("the server process is gone");
    }

    // ---- drain and close ----
    let mut latency = Histogram::default();
    report.min_pair_received = u64::MAX;
    let deadline = tokio::time::Instant::now() + p.drain + p.stall_timeout;
    while let Some(joined) = timeout_at_opt(deadline, pairs.join_next()).await? {
        let outcome = joined.context("a pair task panicked")??;
        report.total_sent += outcome.sent;
        report.total_received += outcome.received;
        report.error_stanzas += outcome.errors;
        report.min_pair_received = report.min_pair_received.min(outcome.received);
        report.max_pair_received = report.max_pair_received.max(outcome.received);
        latency.merge(&outcome.latency);
        if let Some(sample) = outcome.sample {
            report.sample = Some(String::from_utf8_lossy(&sample).into_owned());
        }
    }
    report.latency_p50_us = latency.quantile(0.5);
    report.latency_p99_us = latency.quantile(0.99);
    report.latency_max_us = latency.max();
    report.latency_samples = latency.count();
    Ok(report)
}

async fn timeout_at_opt<T>(
    deadline: tokio::time::Instant,
    f: impl Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::time::timeout_at(deadline, f)
        .await
        .map_err(|_| anyhow!("the sessions did not close in time"))
}

/// Sleeps until `until`, failing early if a pair ends (pairs only end after the stop signal, or on error).
async fn wait_or_fail(
    pairs: &mut JoinSet<anyhow::Result<PairOutcome>>,
    until: Instant,
) -> anyhow::Result<()> {
    tokio::select! {
        () = sleep_until(until.into()) => Ok(()),
        joined = pairs.join_next() => match joined {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(anyhow!("a pair task failed: {e}")),
            Some(Ok(Ok(_))) => Err(anyhow!("a pair stopped early")),
            None => Err(anyhow!("no pairs")),
        },
    }
}

async fn login_all(
    target: &Target,
    accounts: &Accounts<'_>,
    n: usize,
    p: &Params,
) -> anyhow::Result<Vec<Session>> {
    let gate = Arc::new(Semaphore::new(p.login_concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let (gate, target, auth, presence) =
            (Arc::clone(&gate), target.clone(), accounts(i), p.presence);
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut session = conn::login(&target, &auth, &format!("loadgen-{i}")).await?;
            if presence {
                timeout(target.step_timeout, session.conn.write_all(b"<presence/>"))
                    .await
                    .map_err(|_| anyhow!("timed out sending presence"))??;
                session.conn.flush().await?;
            }
            anyhow::Ok((i, session))
        });
    }
    let mut sessions: Vec<Option<Session>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, session) = joined.context("a login task panicked")??;
        sessions[i] = Some(session);
    }
    Ok(sessions
        .into_iter()
        .map(|s| s.expect("every login finished"))
        .collect())
}

/// The bytes of one message, split around the id so that a timestamp can go in between.
struct MessageTemplate {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl MessageTemplate {
    fn new(to: &str, body_len: usize) -> Self {
        let head = format!("<message to='{}' type='chat' id='", escape_attr(to)).into_bytes();
        let mut tail = b"'><body>".to_vec();
        tail.extend(std::iter::repeat_n(b'x', body_len));
        tail.extend_from_slice(b"</body></message>");
        Self { head, tail }
    }

    fn push(&self, out: &mut Vec<u8>, stamp: &[u8]) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(stamp);
        out.extend_from_slice(&self.tail);
    }
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

/// Decimal digits of `n` at the end of `buf`; returns the slice.
fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

async fn run_pair(
    index: usize,
    mut tx: Session,
    rx: Session,
    shared: &Shared,
    p: &Params,
) -> anyhow::Result<PairOutcome> {
    let receiver = rx.jid.clone();
    let result = flood(&mut tx, rx, shared, p, p.show_sample && index == 0).await;
    result.with_context(|| format!("pair {index} ({} -> {receiver})", tx.jid))
}

async fn flood(
    tx: &mut Session,
    mut rx: Session,
    shared: &Shared,
    p: &Params,
    mut want_sample: bool,
) -> anyhow::Result<PairOutcome> {
    let template = MessageTemplate::new(&rx.jid, p.body_len);
    let window = p.window.max(1) as u64;
    let mut out = Vec::with_capacity(p.window * (template.head.len() + template.tail.len() + 20));
    let mut counter = MessageCounter::new(256 * 1024, &rx.leftover);
    let mut sender_in = vec![0u8; 16 * 1024];
    let mut sender_pending: Vec<u8> = std::mem::take(&mut tx.leftover);
    let mut outcome = PairOutcome {
        sent: 0,
        received: 0,
        errors: 0,
        latency: Histogram::default(),
        sample: None,
    };
    let end_tag = memchr::memmem::Finder::new(b"</message>");
    let mut last_progress = Instant::now();
    let mut drain_until: Option<Instant> = None;
    let stall = tokio::time::sleep(p.stall_timeout);
    tokio::pin!(stall);

    // Messages that were already read during login (unlikely) are counted first.
    outcome.received += counter.commit(0, |_| {});

    loop {
        let phase = shared.phase.load(Ordering::Relaxed);
        if phase == STOP {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + p.drain);
            if outcome.received >= outcome.sent || Instant::now() >= until {
                break;
            }
            stall.as_mut().reset(until.into());
        } else {
            let room = window.saturating_sub(outcome.sent - outcome.received.min(outcome.sent));
            if room > 0 {
                out.clear();
                let mut digits = [0u8; 20];
                let stamp = decimal(shared.micros(), &mut digits);
                for _ in 0..room {
                    template.push(&mut out, stamp);
                }
                let write = async {
                    tx.conn.write_all(&out).await?;
                    tx.conn.flush().await
                };
                timeout(p.stall_timeout, write)
                    .await
                    .map_err(|_| anyhow!("the server accepted no data for {:?}", p.stall_timeout))?
                    .context("cannot send")?;
                outcome.sent += room;
            }
        }

        tokio::select! {
            read = rx.conn.read(counter.spare()) => {
                let n = read.context("receiver read error")?;
                if n == 0 {
                    bail!("the server closed the receiver's connection; it sent: {:?}", scan::excerpt(counter.pending()));
                }
                if want_sample && let Some(end) = end_tag.find(counter.peek(n)) {
                    outcome.sample = Some(counter.peek(n)[..end + b"</message>".len()].to_vec());
                    want_sample = false;
                }
                let measuring = shared.phase.load(Ordering::Relaxed) == MEASURE;
                let now = shared.micros();
                let latency = &mut outcome.latency;
                let got = counter.commit(n, |id| {
                    if measuring && let Some(sent_at) = id {
                        latency.record(now.saturating_sub(sent_at));
                    }
                });
                if got > 0 {
                    outcome.received += got;
                    shared.delivered.fetch_add(got, Ordering::Relaxed);
                    last_progress = Instant::now();
                } else if counter.pending().windows(13).any(|w| w == b"<stream:error") {
                    bail!("stream error on the receiver: {:?}", scan::excerpt(counter.pending()));
                }
            }
            read = tx.conn.read(&mut sender_in) => {
                // Senders normally get nothing: anything here is an error bounce, a ping or a stream error.
                let n = read.context("sender read error")?;
                if n == 0 {
                    bail!("the server closed the sender's connection: {:?}", scan::excerpt(&sender_pending));
                }
                sender_pending.extend_from_slice(&sender_in[..n]);
                outcome.errors += handle_sender_input(&mut sender_pending, &mut tx.conn, p.stall_timeout).await?;
            }
            () = &mut stall => {
                if phase != STOP {
                    if last_progress.elapsed() >= p.stall_timeout {
                        bail!(
                            "no message received for {:?} ({} sent, {} received)",
                            p.stall_timeout, outcome.sent, outcome.received
                        );
                    }
                    stall.as_mut().reset((last_progress + p.stall_timeout).into());
                }
            }
        }
    }

    // Close both streams politely; the server's reply is not awaited for long.
    for conn in [&mut tx.conn, &mut rx.conn] {
        let _ = timeout(Duration::from_secs(1), async {
            conn.write_all(b"</stream:stream>").await?;
            conn.flush().await?;
            conn.shutdown().await
        })
        .await;
    }
    Ok(outcome)
}

/// Handles complete stanzas received by a sender: answers pings, counts error stanzas, fails on stream errors.
async fn handle_sender_input(
    pending: &mut Vec<u8>,
    conn: &mut conn::Conn,
    wait: Duration,
) -> anyhow::Result<u64> {
    let mut errors = 0;
    let mut in_stream = true;
    while let Some((top, used)) = scan::next_top(pending, &mut in_stream) {
        match top {
            scan::Top::StreamOpen => {}
            scan::Top::StreamClose => bail!("the server closed the sender's stream"),
            scan::Top::Element(elem) => {
                let name = scan::element_name(elem);
                let kind = scan::attr(elem, "type");
                if name == b"error" && elem.starts_with(b"<stream:") {
                    bail!("stream error on the sender: {}", scan::excerpt(elem));
                } else if name == b"iq"
                    && matches!(kind.as_deref(), Some("get"))
                    && scan::has(elem, "ping")
                {
                    let id = scan::attr(elem, "id").unwrap_or_default();
                    let from = scan::attr(elem, "from")
                        .map(|f| format!(" to='{}'", escape_attr(&f)))
                        .unwrap_or_default();
                    let pong = format!("<iq type='result' id='{}'{from}/>", escape_attr(&id));
                    timeout(wait, conn.write_all(pong.as_bytes()))
                        .await
                        .map_err(|_| anyhow!("timed out answering a ping"))??;
                } else if kind.as_deref() == Some("error") {
                    if errors == 0 {
                        eprintln!("error stanza received by a sender: {}", scan::excerpt(elem));
                    }
                    errors += 1;
                }
            }
        }
        pending.drain(..used);
    }
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        let mut b = [0; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(1_234_567_890, &mut b), b"1234567890");
        assert_eq!(decimal(u64::MAX, &mut b), b"18446744073709551615");
    }

    #[test]
    fn template_and_counter_agree() {
        let t = MessageTemplate::new("b@x/r'1", 5);
        let mut out = Vec::new();
        t.push(&mut out, b"77");
        t.push(&mut out, b"78");
        assert!(out.starts_with(
            b"<message to='b@x/r&apos;1' type='chat' id='77'><body>xxxxx</body></message>"
        ));
        let mut c = MessageCounter::new(1024, &out);
        let mut ids = vec![];
        assert_eq!(c.commit(0, |id| ids.push(id)), 2);
        assert_eq!(ids, [Some(77), Some(78)]);
    }
}
