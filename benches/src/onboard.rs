//! Onboarding benchmarks (issue 4): registration by invite as the Snikket app does it, and a login storm of the
//! accounts made that way.
//!
//! - [`register`]: for each account a fresh connection: STARTTLS, the stream features, `<preauth/>` with the
//!   invite's token (XEP-0401), a `jabber:iq:register` get, then the register set with username and password; then
//!   the stream is closed.
//! - [`login_storm`]: for each account a fresh connection: STARTTLS, SASL, bind, a roster get; then closed.
//!
//! Both run `concurrency` connections at a time, so that the server rather than the client is the bottleneck.
//! Server CPU comes from `/proc`: the sum of `/proc/<pid>/task/*/schedstat` (nanoseconds, threads alive at the
//! end) and, as a cross-check that also counts threads that ended, the clock ticks of `/proc/<pid>/stat`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{Client, escape};
use crate::conn::{Auth, Target, Unauthenticated};
use crate::procstat::Proc;
use crate::scan;

/// One account to register: its invite token and credentials.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub token: String,
    pub username: String,
    pub password: String,
}

/// What a run of many connections measured.
#[derive(Debug, Clone)]
pub struct Storm {
    /// Connections completed (all of them: any failure fails the run).
    pub done: usize,
    pub wall: Duration,
    /// Connect to close, per connection, sorted.
    pub latencies: Vec<Duration>,
    /// Server CPU from schedstat (threads alive at the end).
    pub server_cpu: Option<Duration>,
    /// Server CPU from clock ticks (every thread).
    pub server_cpu_ticks: Option<Duration>,
    /// Roster items received, summed over the logins (0 for registration).
    pub roster_items: usize,
}

impl Storm {
    /// Connections per second.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1).
    pub fn latency(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

/// Runs `work(i)` for every `i` in `0..count`, at most `concurrency` at a time, measuring the server around it.
/// Each task returns the roster items it saw.
async fn storm<F, Fut>(
    count: usize,
    concurrency: usize,
    server: Option<Proc>,
    work: F,
) -> anyhow::Result<Storm>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<usize>> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let cpu_before = server.map(Proc::cpu_time_precise).transpose()?;
    let ticks_before = server.map(Proc::cpu_time).transpose()?;
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..count {
        let gate = Arc::clone(&gate);
        let job = work(i);
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let t = Instant::now();
            let items = job.await?;
            anyhow::Ok((t.elapsed(), items))
        });
    }
    let mut latencies = Vec::with_capacity(count);
    let mut roster_items = 0;
    while let Some(joined) = set.join_next().await {
        let (latency, items) = joined.context("a connection task panicked")??;
        latencies.push(latency);
        roster_items += items;
    }
    let wall = started.elapsed();
    let cpu_after = server.map(Proc::cpu_time_precise).transpose()?;
    let ticks_after = server.map(Proc::cpu_time).transpose()?;
    latencies.sort();
    Ok(Storm {
        done: latencies.len(),
        wall,
        latencies,
        server_cpu: cpu_after.zip(cpu_before).map(|(a, b)| a.saturating_sub(b)),
        server_cpu_ticks: ticks_after
            .zip(ticks_before)
            .map(|(a, b)| a.saturating_sub(b)),
        roster_items,
    })
}

/// Registers every account by invite, `concurrency` connections at a time.
pub async fn register(
    target: &Target,
    accounts: Vec<NewAccount>,
    concurrency: usize,
    server: Option<Proc>,
) -> anyhow::Result<Storm> {
    let accounts = Arc::new(accounts);
    storm(accounts.len(), concurrency, server, |i| {
        let (target, accounts) = (target.clone(), Arc::clone(&accounts));
        async move {
            let account = &accounts[i];
            register_one(&target, account)
                .await
                .with_context(|| format!("registration of {} failed", account.username))?;
            Ok(0)
        }
    })
    .await
}

async fn register_one(target: &Target, account: &NewAccount) -> anyhow::Result<()> {
    const NS_REGISTER: &str = "jabber:iq:register";
    let mut stream = Unauthenticated::connect(target).await?;
    let reply = stream
        .iq(
            "set",
            "preauth",
            &format!(
                "<preauth xmlns='urn:xmpp:pars:0' token='{}'/>",
                escape(&account.token)
            ),
        )
        .await?;
    ensure_result(&reply, "the <preauth/> token")?;
    let form = stream
        .iq("get", "reg-get", &format!("<query xmlns='{NS_REGISTER}'/>"))
        .await?;
    ensure_result(&form, "the registration form")?;
    ensure!(
        scan::has(&form, "username") && scan::has(&form, "password"),
        "the registration form asks for no username and password: {}",
        scan::excerpt(&form)
    );
    let set = format!(
        "<query xmlns='{NS_REGISTER}'><username>{}</username><password>{}</password></query>",
        escape(&account.username),
        escape(&account.password)
    );
    let reply = stream.iq("set", "reg-set", &set).await?;
    ensure_result(&reply, "the registration")?;
    stream.close().await;
    Ok(())
}

fn ensure_result(reply: &[u8], what: &str) -> anyhow::Result<()> {
    if scan::attr(reply, "type").as_deref() != Some("result") {
        bail!("{what} was refused: {}", scan::excerpt(reply));
    }
    Ok(())
}

/// Logs every account in (STARTTLS, SASL, bind), fetches its roster and closes, `concurrency` at a time. Each
/// roster must have at least `min_roster_items` items, so that a run without the circles' contacts cannot pass
/// unnoticed.
pub async fn login_storm(
    target: &Target,
    accounts: Vec<Auth>,
    concurrency: usize,
    min_roster_items: usize,
    server: Option<Proc>,
) -> anyhow::Result<Storm> {
    let accounts = Arc::new(accounts);
    storm(accounts.len(), concurrency, server, |i| {
        let (target, accounts) = (target.clone(), Arc::clone(&accounts));
        async move {
            let auth = &accounts[i];
            let mut client = Client::login(&target, auth, "storm").await?;
            let roster = client
                .iq("get", None, "<query xmlns='jabber:iq:roster'/>")
                .await?;
            let items = scan::tags(&roster)
                .filter(|t| t.local_name() == b"item" && t.kind != scan::TagKind::End)
                .count();
            ensure!(
                items >= min_roster_items,
                "{}: the roster has {items} items, fewer than {min_roster_items}",
                client.jid
            );
            client.close().await;
            Ok(items)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Security;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// A server that answers as an invite-only server does, failing the registration set when its username is
    /// `refused`; returns what the client sent.
    async fn serve_once(listener: TcpListener) -> String {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let mut replies = 0;
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
            if seen.ends_with("</stream:stream>") {
                sock.write_all(b"</stream:stream>").await.unwrap();
                break;
            }
            if replies == 0 && seen.contains("<stream:stream") {
                sock.write_all(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:features><register xmlns='urn:xmpp:ibr-token:0'/></stream:features>").await.unwrap();
                replies += 1;
            }
            for (id, body) in [
                ("preauth", ""),
                (
                    "reg-get",
                    "<query xmlns='jabber:iq:register'><username/><password/></query>",
                ),
                ("reg-set", ""),
            ] {
                let asked = format!("id='{id}'");
                let answered = format!("answered {id}");
                if seen.contains(&asked) && !seen.contains(&answered) {
                    let kind = if id == "reg-set" && seen.contains("<username>refused<") {
                        "error"
                    } else {
                        "result"
                    };
                    sock.write_all(format!("<iq type='{kind}' id='{id}'>{body}</iq>").as_bytes())
                        .await
                        .unwrap();
                    seen.push_str(&answered);
                }
            }
        }
        seen
    }

    async fn run(username: &str) -> (anyhow::Result<()>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap(),
            domain: "x".to_owned(),
            security: Security::Plain,
            step_timeout: Duration::from_secs(5),
        };
        let server = tokio::spawn(serve_once(listener));
        let account = NewAccount {
            token: "t0k'en".to_owned(),
            username: username.to_owned(),
            password: "pass<word".to_owned(),
        };
        let result = register_one(&target, &account).await;
        (result, server.await.unwrap())
    }

    #[tokio::test]
    async fn registers_as_the_app_does() {
        let (result, seen) = run("alice").await;
        result.unwrap();
        let preauth = seen
            .find("<preauth xmlns='urn:xmpp:pars:0' token='t0k&apos;en'/>")
            .unwrap();
        let get = seen.find("<iq type='get' id='reg-get'>").unwrap();
        let set = seen
            .find("<username>alice</username><password>pass&lt;word</password>")
            .unwrap();
        assert!(preauth < get && get < set, "{seen}");
        assert!(seen.ends_with("</stream:stream>"), "{seen}");
    }

    #[tokio::test]
    async fn a_refused_registration_fails() {
        let (result, _) = run("refused").await;
        let err = result.unwrap_err();
        assert!(
            err.to_string().contains("the registration was refused"),
            "{err}"
        );
    }

    #[test]
    fn latency_quantiles() {
        let s = Storm {
            done: 3,
            wall: Duration::from_secs(1),
            latencies: [1, 2, 3].map(Duration::from_millis).to_vec(),
            server_cpu: None,
            server_cpu_ticks: None,
            roster_items: 0,
        };
        assert_eq!(s.latency(0.5), Duration::from_millis(2));
        assert_eq!(s.latency(1.0), Duration::from_millis(3));
        assert!((s.rate() - 3.0).abs() < 1e-9);
    }
}
