//! Instant-messaging benchmarks (issue 3): presence fan-out, a large roster, offline storage. Every account, roster
//! item and subscription is made through the protocol by [`provision`], the same way for every server.
//!
//! Accounts, numbered from `--first-user` (`<prefix><n>`, password pattern as in `loadgen`):
//! - `n + 0`: the fan-out user ("hub"), `n + 1 ..= n + contacts`: its contacts, all mutual (`both`);
//! - `n + contacts + 1`: the owner of the large roster (`roster_items` items, none of them subscribed);
//! - `n + contacts + 2`, `n + contacts + 3`: the offline sender and receiver.
//!
//! Server CPU is the sum over the server's threads of `/proc/<pid>/task/*/schedstat` (nanoseconds), read just
//! before the first stanza of the measured work is sent and just after the last expected stanza is received; the
//! clock-tick total from `/proc/<pid>/stat` over the whole run is reported beside it as a cross-check.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::client::{self, Client, escape, presence_type};
use crate::conn::{Auth, Target};
use crate::procstat::Proc;
use crate::scan::{self, MessageCounter};

/// The accounts: `accounts(i)` is the account with index `i` (0-based, see the module documentation).
pub type Accounts<'a> = dyn Fn(usize) -> Auth + Sync + 'a;

/// The sizes of the three workloads.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub contacts: usize,
    pub roster_items: usize,
    pub offline_messages: usize,
}

impl Sizes {
    pub fn hub(&self) -> usize {
        0
    }
    pub fn contact(&self, i: usize) -> usize {
        1 + i
    }
    pub fn roster_owner(&self) -> usize {
        self.contacts + 1
    }
    pub fn offline_sender(&self) -> usize {
        self.contacts + 2
    }
    pub fn offline_receiver(&self) -> usize {
        self.contacts + 3
    }
    /// How many accounts the benchmarks use.
    pub fn accounts(&self) -> usize {
        self.contacts + 4
    }
}

/// Settings shared by every workload.
pub struct Env<'a> {
    pub target: &'a Target,
    pub accounts: &'a Accounts<'a>,
    pub sizes: Sizes,
    pub server: Option<Proc>,
    pub login_concurrency: usize,
    /// The longest any one measured operation (a fan-out, a roster fetch, storing or delivering the offline
    /// messages) may take.
    pub op_timeout: Duration,
}

impl Env<'_> {
    async fn login(&self, index: usize, resource: &str) -> anyhow::Result<Client> {
        Client::login(self.target, &(self.accounts)(index), resource).await
    }

    /// Logs in accounts `indexes` concurrently (at most `login_concurrency` at a time), in that order.
    async fn login_many(&self, indexes: &[usize], resource: &str) -> anyhow::Result<Vec<Client>> {
        let gate = Arc::new(Semaphore::new(self.login_concurrency.max(1)));
        let mut set = JoinSet::new();
        for (slot, &index) in indexes.iter().enumerate() {
            let (gate, target, auth) = (
                Arc::clone(&gate),
                self.target.clone(),
                (self.accounts)(index),
            );
            let resource = format!("{resource}-{slot}");
            set.spawn(async move {
                let _permit = gate.acquire_owned().await?;
                anyhow::Ok((slot, Client::login(&target, &auth, &resource).await?))
            });
        }
        let mut out: Vec<Option<Client>> = indexes.iter().map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (slot, client) = joined.context("a login task panicked")??;
            out[slot] = Some(client);
        }
        Ok(out
            .into_iter()
            .map(|c| c.expect("every login finished"))
            .collect())
    }

    fn cpu(&self) -> anyhow::Result<Option<Duration>> {
        self.server.map(Proc::cpu_time_precise).transpose()
    }
}

/// CPU used between two readings, if the server is measured.
fn used(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    Some(after?.saturating_sub(before?))
}

// ---- provisioning -------------------------------------------------------------------------------------------------

/// Makes the rosters and subscriptions the workloads need, through the protocol: the hub and each contact
/// subscribe to each other (subscribe / subscribed both ways), and the roster owner sets its items with roster
/// sets. Idempotent: what is already there is left alone.
pub async fn provision(env: &Env<'_>) -> anyhow::Result<String> {
    let mut log = String::new();
    let started = Instant::now();
    let s = env.sizes;
    let contacts_done = provision_fanout(env)
        .await
        .context("provisioning the fan-out contacts")?;
    let _ = writeln!(
        log,
        "fan-out: {} contacts with mutual subscriptions ({contacts_done} new) in {:.1} s",
        s.contacts,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let added = provision_roster(env)
        .await
        .context("provisioning the large roster")?;
    let _ = writeln!(
        log,
        "roster: {} items ({added} new) in {:.1} s",
        s.roster_items,
        started.elapsed().as_secs_f64()
    );
    Ok(log)
}

/// The subscription of `contact` in a roster result, if there is an item for it.
fn subscription_of(roster: &[u8], contact: &str) -> Option<String> {
    scan::tags(roster)
        .filter(|t| t.local_name() == b"item" && t.kind != scan::TagKind::End)
        .find(|t| scan::attr(t.raw, "jid").as_deref() == Some(contact))
        .map(|t| scan::attr(t.raw, "subscription").unwrap_or_else(|| "none".to_owned()))
}

async fn provision_fanout(env: &Env<'_>) -> anyhow::Result<usize> {
    let s = env.sizes;
    let mut hub = env.login(s.hub(), "provision").await?;
    let roster = hub
        .iq("get", None, "<query xmlns='jabber:iq:roster'/>")
        .await?;
    let indexes: Vec<usize> = (0..s.contacts).map(|i| s.contact(i)).collect();
    let contacts = env.login_many(&indexes, "provision").await?;
    let (done, todo): (Vec<Client>, Vec<Client>) = contacts
        .into_iter()
        .partition(|c| subscription_of(&roster, &c.bare).as_deref() == Some("both"));
    for c in done {
        c.close().await;
    }
    if todo.is_empty() {
        hub.close().await;
        return Ok(0);
    }
    let new = todo.len();
    // Everyone available, so that approvals are delivered at once.
    hub.send(b"<presence/>").await?;
    let deadline = Instant::now() + env.op_timeout;
    let hub_bare = hub.bare.clone();
    let mut set = JoinSet::new();
    for mut c in todo {
        let hub_bare = hub_bare.clone();
        set.spawn(async move {
            // Interested (RFC 6121 §2.1.6: subscription notifications go to resources that asked for the roster)
            // and available.
            c.iq("get", None, "<query xmlns='jabber:iq:roster'/>").await?;
            c.send(b"<presence/>").await?;
            // The hub's request arrives; approve it and ask back.
            let is_request = |st: &[u8]| {
                presence_type(st).flatten().as_deref() == Some("subscribe")
                    && client::from(st).as_deref() == Some(hub_bare.as_str())
            };
            c.wait_for("the hub's subscription request", deadline, is_request).await?;
            let hub_attr = escape(&hub_bare);
            c.send(format!("<presence to='{hub_attr}' type='subscribed'/><presence to='{hub_attr}' type='subscribe'/>").as_bytes())
                .await?;
            let is_approval = |st: &[u8]| {
                presence_type(st).flatten().as_deref() == Some("subscribed")
                    && client::from(st).as_deref() == Some(hub_bare.as_str())
            };
            c.wait_for("the hub's approval", deadline, is_approval).await?;
            let roster = c.iq("get", None, "<query xmlns='jabber:iq:roster'/>").await?;
            ensure!(
                subscription_of(&roster, &hub_bare).as_deref() == Some("both"),
                "{}: the hub is not 'both' after the handshakes: {}",
                c.jid,
                scan::excerpt(&roster)
            );
            c.close().await;
            anyhow::Ok(())
        });
    }
    // The hub asks every new contact, then approves each request that comes back.
    let mut requests = String::new();
    let mut pending = std::collections::HashSet::new();
    for i in 0..s.contacts {
        let contact = match &(env.accounts)(s.contact(i)) {
            Auth::Scram { username, .. } | Auth::Plain { username, .. } => {
                format!("{username}@{}", env.target.domain)
            }
            Auth::Anonymous => bail!("provisioning needs named accounts, not ANONYMOUS"),
        };
        if subscription_of(&roster, &contact).as_deref() != Some("both") {
            let _ = write!(
                requests,
                "<presence to='{}' type='subscribe'/>",
                escape(&contact)
            );
            pending.insert(contact);
        }
    }
    hub.send(requests.as_bytes()).await?;
    while !pending.is_empty() {
        let request = hub
            .wait_for("the contacts' subscription requests", deadline, |st| {
                presence_type(st).flatten().as_deref() == Some("subscribe")
            })
            .await?;
        let from = client::from(&request).unwrap_or_default();
        if pending.remove(&from) {
            hub.send(format!("<presence to='{}' type='subscribed'/>", escape(&from)).as_bytes())
                .await?;
        }
    }
    while let Some(joined) = set.join_next().await {
        joined.context("a contact task panicked")??;
    }
    let roster = hub
        .iq("get", None, "<query xmlns='jabber:iq:roster'/>")
        .await?;
    let both = scan::tags(&roster)
        .filter(|t| t.local_name() == b"item" && t.kind != scan::TagKind::End)
        .filter(|t| scan::attr(t.raw, "subscription").as_deref() == Some("both"))
        .count();
    ensure!(
        both >= s.contacts,
        "the hub has {both} contacts with 'both', not {}",
        s.contacts
    );
    hub.close().await;
    Ok(new)
}

fn roster_item_jid(env: &Env<'_>, i: usize) -> String {
    format!("rcontact{i}@{}", env.target.domain)
}

/// The roster owner's roster sets, at most `WINDOW` in flight.
async fn provision_roster(env: &Env<'_>) -> anyhow::Result<usize> {
    const WINDOW: usize = 50;
    let mut owner = env.login(env.sizes.roster_owner(), "provision").await?;
    let roster = owner
        .iq("get", None, "<query xmlns='jabber:iq:roster'/>")
        .await?;
    let have = count_items(&roster);
    // Having asked for the roster, this session is interested and gets a push per set: read and drop them.
    let deadline = Instant::now() + env.op_timeout;
    let mut in_flight = std::collections::VecDeque::new();
    let mut added = 0;
    for i in have..env.sizes.roster_items {
        let id = owner.id("rs");
        let jid = roster_item_jid(env, i);
        let set = format!(
            "<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='{jid}' name='Contact {i}'><group>Group {}</group></item></query></iq>",
            i % 20
        );
        owner.send(set.as_bytes()).await?;
        in_flight.push_back(id);
        added += 1;
        if in_flight.len() >= WINDOW {
            wait_set_result(
                &mut owner,
                in_flight.pop_front().expect("not empty"),
                deadline,
            )
            .await?;
        }
    }
    while let Some(id) = in_flight.pop_front() {
        wait_set_result(&mut owner, id, deadline).await?;
    }
    owner.discard(|_| true);
    let roster = owner
        .iq("get", None, "<query xmlns='jabber:iq:roster'/>")
        .await?;
    let n = count_items(&roster);
    ensure!(
        n == env.sizes.roster_items,
        "the roster has {n} items after provisioning, not {}",
        env.sizes.roster_items
    );
    owner.close().await;
    Ok(added)
}

async fn wait_set_result(owner: &mut Client, id: String, deadline: Instant) -> anyhow::Result<()> {
    let reply = owner
        .wait_for("a roster set result", deadline, |st| {
            client::is_reply_to(st, &id)
        })
        .await?;
    ensure!(
        scan::attr(&reply, "type").as_deref() == Some("result"),
        "a roster set failed: {}",
        scan::excerpt(&reply)
    );
    // Drop the pushes read so far (a server may push to this session if it counts it as interested).
    owner.discard(|st| {
        scan::element_name(st) == b"iq" && scan::attr(st, "type").as_deref() == Some("set")
    });
    Ok(())
}

fn count_items(roster: &[u8]) -> usize {
    scan::tags(roster)
        .filter(|t| t.local_name() == b"item" && t.kind != scan::TagKind::End)
        .count()
}

// ---- presence fan-out ---------------------------------------------------------------------------------------------

/// One fan-out: times from the hub's initial presence.
#[derive(Debug, Clone, Copy)]
pub struct FanoutRun {
    /// Until every contact has the hub's presence.
    pub contacts_done: Duration,
    /// Until the hub has the presence of every contact (the answers to its probes).
    pub probes_done: Duration,
    /// The later of the two.
    pub all_done: Duration,
    pub server_cpu: Option<Duration>,
}

/// All contacts online and available; the hub logs in `reps` times and sends initial presence each time.
pub async fn fanout(env: &Env<'_>, reps: usize) -> anyhow::Result<Vec<FanoutRun>> {
    let s = env.sizes;
    let indexes: Vec<usize> = (0..s.contacts).map(|i| s.contact(i)).collect();
    let mut contacts = env.login_many(&indexes, "fan").await?;
    for c in &mut contacts {
        c.send(b"<presence/>").await?;
    }
    // Everyone's initial presence has been handled (and broadcast among them, which they do not share).
    for c in &mut contacts {
        c.barrier().await?;
        c.discard(|_| true);
    }
    let mut runs = Vec::new();
    for rep in 0..reps {
        let mut hub = env.login(s.hub(), &format!("hub-{rep}")).await?;
        let hub_jid = hub.jid.clone();
        // Each contact waits for the hub's available presence from this session.
        let mut set = JoinSet::new();
        let started = Instant::now();
        let deadline = started + env.op_timeout;
        for mut c in contacts.drain(..) {
            let hub_jid = hub_jid.clone();
            set.spawn(async move {
                let got = c
                    .wait_for("the hub's presence", deadline, |st| {
                        presence_type(st) == Some(None)
                            && client::from(st).as_deref() == Some(hub_jid.as_str())
                    })
                    .await;
                let at = Instant::now();
                // Presence from the hub's previous sessions (unavailable) is of no interest.
                c.discard(|_| true);
                anyhow::Ok((c, got.map(|_| at)))
            });
        }
        let cpu_before = env.cpu()?;
        let t0 = Instant::now();
        hub.send(b"<presence/>").await?;
        let mut answered = std::collections::HashSet::new();
        while answered.len() < s.contacts {
            let st = hub
                .wait_for("the contacts' presence", deadline, |st| {
                    presence_type(st) == Some(None)
                })
                .await?;
            // Servers also send the user's own presence to its resources; only the contacts' answers count.
            if let Some(from) = client::from(&st).filter(|f| client::bare(f) != hub.bare) {
                answered.insert(client::bare(&from).to_owned());
            }
        }
        let probes_done = t0.elapsed();
        let mut contacts_done = Duration::ZERO;
        while let Some(joined) = set.join_next().await {
            let (c, got) = joined.context("a contact task panicked")??;
            let at = got.with_context(|| format!("contact {}", c.jid))?;
            contacts_done = contacts_done.max(at.duration_since(t0));
            contacts.push(c);
        }
        let cpu_after = env.cpu()?;
        runs.push(FanoutRun {
            contacts_done,
            probes_done,
            all_done: contacts_done.max(probes_done),
            server_cpu: used(cpu_before, cpu_after),
        });
        hub.close().await;
        // The contacts see the hub leave before the next round.
        for c in &mut contacts {
            c.wait_for(
                "the hub's unavailable presence",
                Instant::now() + env.op_timeout,
                |st| {
                    presence_type(st).flatten().as_deref() == Some("unavailable")
                        && client::from(st).as_deref() == Some(hub_jid.as_str())
                },
            )
            .await?;
            c.discard(|_| true);
        }
    }
    for c in contacts {
        c.close().await;
    }
    Ok(runs)
}

// ---- roster of many items -----------------------------------------------------------------------------------------

/// One login and roster fetch.
#[derive(Debug, Clone, Copy)]
pub struct RosterRun {
    /// From sending the roster get to the whole result.
    pub fetch: Duration,
    /// From opening the TCP connection to the whole result (STARTTLS, SASL, bind, fetch).
    pub login_to_roster: Duration,
    pub server_cpu: Option<Duration>,
    pub items: usize,
}

pub async fn roster(env: &Env<'_>, reps: usize) -> anyhow::Result<Vec<RosterRun>> {
    let mut runs = Vec::new();
    for rep in 0..reps {
        let connect = Instant::now();
        let mut owner = env
            .login(env.sizes.roster_owner(), &format!("roster-{rep}"))
            .await?;
        let cpu_before = env.cpu()?;
        let t0 = Instant::now();
        owner
            .send(b"<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>")
            .await?;
        let deadline = t0 + env.op_timeout;
        let reply = owner
            .wait_for("the roster", deadline, |st| {
                client::is_reply_to(st, "roster-1")
            })
            .await?;
        let fetch = t0.elapsed();
        let login_to_roster = connect.elapsed();
        let cpu_after = env.cpu()?;
        let items = count_items(&reply);
        ensure!(
            items == env.sizes.roster_items,
            "the roster has {items} items, not {} (provision first): {}",
            env.sizes.roster_items,
            scan::excerpt(&reply)
        );
        runs.push(RosterRun {
            fetch,
            login_to_roster,
            server_cpu: used(cpu_before, cpu_after),
            items,
        });
        owner.close().await;
    }
    Ok(runs)
}

// ---- offline storage ----------------------------------------------------------------------------------------------

/// One round: the sender stores `offline_messages` messages for the offline receiver, who then logs in.
#[derive(Debug, Clone, Copy)]
pub struct OfflineRun {
    /// From the first message sent to the reply to a ping sent after the last (all handled by the server).
    pub store: Duration,
    pub store_cpu: Option<Duration>,
    /// From the receiver's initial presence to the last message received.
    pub deliver: Duration,
    pub deliver_cpu: Option<Duration>,
    pub delivered: u64,
}

pub async fn offline(
    env: &Env<'_>,
    reps: usize,
    body_len: usize,
) -> anyhow::Result<Vec<OfflineRun>> {
    let s = env.sizes;
    let receiver_bare = match &(env.accounts)(s.offline_receiver()) {
        Auth::Scram { username, .. } | Auth::Plain { username, .. } => {
            format!("{username}@{}", env.target.domain)
        }
        Auth::Anonymous => bail!("the offline benchmark needs named accounts"),
    };
    // Nothing left over from an earlier run: log the receiver in once, take what is there, leave.
    drain_receiver(env, "offline-clean").await?;
    let body = "x".repeat(body_len);
    let mut runs = Vec::new();
    for rep in 0..reps {
        let mut sender = env
            .login(s.offline_sender(), &format!("offline-sender-{rep}"))
            .await?;
        sender.barrier().await?;
        let mut batch = Vec::with_capacity(100 * (body_len + 120));
        let cpu_before = env.cpu()?;
        let t0 = Instant::now();
        let deadline = t0 + env.op_timeout;
        for i in 0..s.offline_messages {
            let message = format!(
                "<message to='{}' type='chat' id='off-{rep}-{i}'><body>{body}</body></message>",
                escape(&receiver_bare)
            );
            batch.extend_from_slice(message.as_bytes());
            if batch.len() >= 64 * 1024 || i + 1 == s.offline_messages {
                timeout_at(deadline, sender.send(&batch))
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "storing the offline messages took longer than {:?}",
                            env.op_timeout
                        )
                    })??;
                batch.clear();
            }
        }
        timeout_at(deadline, sender.barrier()).await.map_err(|_| {
            anyhow!(
                "storing the offline messages took longer than {:?}",
                env.op_timeout
            )
        })??;
        let store = t0.elapsed();
        let store_cpu = used(cpu_before, env.cpu()?);
        let bounced = sender
            .kept()
            .filter(|st| scan::attr(st, "type").as_deref() == Some("error"))
            .count();
        ensure!(
            bounced == 0,
            "{bounced} messages to the offline account were bounced, e.g. {}",
            sender
                .kept()
                .find(|st| scan::attr(st, "type").as_deref() == Some("error"))
                .map(|st| scan::excerpt(st))
                .unwrap_or_default()
        );
        sender.close().await;

        let receiver = env
            .login(s.offline_receiver(), &format!("offline-receiver-{rep}"))
            .await?;
        let (delivered, deliver, deliver_cpu) =
            receive_offline(env, receiver, s.offline_messages as u64).await?;
        runs.push(OfflineRun {
            store,
            store_cpu,
            deliver,
            deliver_cpu,
            delivered,
        });
    }
    Ok(runs)
}

/// Sends the receiver's initial presence and counts messages until `expected` have arrived.
async fn receive_offline(
    env: &Env<'_>,
    receiver: Client,
    expected: u64,
) -> anyhow::Result<(u64, Duration, Option<Duration>)> {
    let jid = receiver.jid.clone();
    let (mut conn, pending) = receiver.into_parts();
    let mut counter = MessageCounter::new(512 * 1024, &pending);
    let mut received = counter.commit(0, |_| {});
    let mut saw_delay = false;
    let cpu_before = env.cpu()?;
    let t0 = Instant::now();
    conn.write_all(b"<presence/>").await?;
    conn.flush().await?;
    let deadline = t0 + env.op_timeout;
    while received < expected {
        let n = timeout_at(deadline, conn.read(counter.spare()))
            .await
            .map_err(|_| {
                anyhow!(
                    "{jid}: {received} of {expected} offline messages after {:?}",
                    env.op_timeout
                )
            })?
            .context("read error")?;
        if n == 0 {
            bail!(
                "{jid}: the server closed the connection after {received} of {expected} messages"
            );
        }
        if !saw_delay {
            saw_delay = memchr::memmem::find(counter.peek(n), b"urn:xmpp:delay").is_some();
        }
        received += counter.commit(n, |_| {});
    }
    let deliver = t0.elapsed();
    let cpu = used(cpu_before, env.cpu()?);
    ensure!(
        saw_delay,
        "{jid}: the offline messages carry no urn:xmpp:delay stamp"
    );
    ensure!(
        received == expected,
        "{jid}: {received} messages delivered, {expected} stored"
    );
    let _ = timeout_at(Instant::now() + Duration::from_secs(2), async {
        conn.write_all(b"</stream:stream>").await?;
        conn.shutdown().await
    })
    .await;
    Ok((received, deliver, cpu))
}

/// Logs the offline receiver in with initial presence and takes whatever was stored, until a ping returns.
async fn drain_receiver(env: &Env<'_>, resource: &str) -> anyhow::Result<()> {
    let mut receiver = env.login(env.sizes.offline_receiver(), resource).await?;
    receiver.send(b"<presence/>").await?;
    receiver.barrier().await?;
    receiver.close().await;
    Ok(())
}

// ---- summaries ----------------------------------------------------------------------------------------------------

/// The median of some durations (the mean of the middle two for an even count).
pub fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Medians of the optional CPU figures (NA when the server is not measured).
pub fn median_opt(values: impl Iterator<Item = Option<Duration>>) -> Option<Duration> {
    let v: Option<Vec<Duration>> = values.collect();
    v.map(|v| median(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let d = |ms: u64| Duration::from_millis(ms);
        assert_eq!(median(&[d(3), d(1), d(2)]), d(2));
        assert_eq!(
            median(&[d(4), d(1), d(2), d(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(median_opt([Some(d(1)), None].into_iter()), None);
    }

    #[test]
    fn finds_subscriptions_and_counts_items() {
        let roster = b"<iq type='result' id='r'><query xmlns='jabber:iq:roster' ver='3'>\
            <item jid='a@x' subscription='both'/><item jid='b@x' name='B'><group>G</group></item></query></iq>";
        assert_eq!(subscription_of(roster, "a@x").as_deref(), Some("both"));
        assert_eq!(subscription_of(roster, "b@x").as_deref(), Some("none"));
        assert_eq!(subscription_of(roster, "c@x"), None);
        assert_eq!(count_items(roster), 2);
    }
}
