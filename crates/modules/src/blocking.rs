//! XEP-0191: Blocking Command, as Prosody's mod_blocklist does it.
//!
//! A blocklist holds full JIDs, bare JIDs and domains. Following the XEP's matching rules, a bare JID covers all of
//! its full JIDs and a domain covers every address at it. Once the user blocked a JID:
//!
//! - stanzas from it do not reach the user (XEP-0191 §3.3): presence is dropped, messages (chat and normal) and IQ
//!   requests are answered with `service-unavailable`, as if the user were offline, and anything else is dropped;
//! - stanzas the user sends to it are refused with `not-acceptable` and `<blocked xmlns='urn:xmpp:blocking:errors'/>`
//!   (IQ results and errors are dropped, since nobody may answer them); what the server sends on the user's
//!   behalf, such as presence broadcasts, is dropped, so the user appears offline to it;
//! - the user's available sessions send it unavailable presence, and their current presence again when it is
//!   unblocked, if it may see the user's presence (§3.3, §3.4).
//!
//! The check runs for every stanza, so blocklists live in memory ([`BlocklistCache`]): a change writes the
//! database and then the cache, and a stanza never waits for the database once an account's list is loaded.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jid::Jid;
use rookery_core::{
    BoxFuture, Handled, IqHandler, IqOutcome, IqRequest, Module, Origin, Registry, Server, Session,
    SessionHandler, SessionHook, StanzaEvent, StanzaHandler, StanzaHook, Target,
};
use rookery_proto::stanza::{error_reply, iq_result, is_error};
use rookery_proto::{ErrorType, IqType, StanzaCondition, StanzaError, StanzaKind};
use rookery_store::{StoreError, Subscription};
use rookery_xml::{Element, ns};
use tracing::warn;

/// The protocol's namespace.
pub const NS: &str = "urn:xmpp:blocking";
/// The namespace of the `<blocked/>` error condition.
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

/// Blocking runs before delivery and before the other instant-messaging modules (priority 0), as in Prosody.
const PRIORITY: i32 = 100;

/// Lists of accounts without a session kept in memory, for stanzas to offline accounts (presence broadcasts, in
/// the main). Prosody keeps 256 lists in all.
const OFFLINE_KEPT: usize = 256;
/// How long the list of an account without a session is trusted before it is read again. Only this server changes
/// blocklists, so this matters only for an account deleted and created again by another process (the CLI).
const OFFLINE_FRESH_FOR: Duration = Duration::from_secs(600);

/// One account's blocklist: normalised JIDs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Blocklist {
    jids: HashSet<String>,
}

impl Blocklist {
    /// Whether stanzas from (or to) `jid` are blocked: XEP-0191's matching rules, by the JID itself, its bare JID,
    /// then its domain.
    fn blocks(&self, jid: &Jid) -> bool {
        !self.jids.is_empty() && match_keys(jid).any(|key| self.jids.contains(key))
    }

    /// The blocked JIDs, ordered.
    fn jids(&self) -> Vec<&str> {
        let mut jids: Vec<&str> = self.jids.iter().map(String::as_str).collect();
        jids.sort_unstable();
        jids
    }

    fn contains(&self, jid: &str) -> bool {
        self.jids.contains(jid)
    }
}

/// What a blocklist entry must equal to cover `jid`: the JID, its bare JID, its domain (without repeats).
fn match_keys(jid: &Jid) -> impl Iterator<Item = &str> {
    let full = jid.as_str();
    // Neither a node nor a domain can hold '/', so the bare JID is everything before the first one.
    let bare = full.split_once('/').map_or(full, |(bare, _)| bare);
    let domain = jid.domain().as_str();
    [
        Some(full),
        (bare != full).then_some(bare),
        (domain != bare).then_some(domain),
    ]
    .into_iter()
    .flatten()
}

/// Whether the blocklist entry `entry` covers `jid`.
fn covers(entry: &str, jid: &Jid) -> bool {
    match_keys(jid).any(|key| key == entry)
}

/// A change to a blocklist.
enum Change {
    Block(Vec<String>),
    Unblock(Vec<String>),
    UnblockAll,
}

struct Entry {
    list: Arc<Blocklist>,
    /// `None` while the account has sessions; otherwise since when it has none.
    offline_since: Option<Instant>,
}

/// The blocklists in memory: every account with a session (loaded when its first session starts), and the most
/// recently used lists of accounts without one (bounded, and read again after a while).
#[derive(Default)]
struct BlocklistCache {
    entries: RwLock<HashMap<String, Entry>>,
    /// Serialises loads and changes, so that a load never puts back a list older than a change.
    writer: tokio::sync::Mutex<()>,
    /// Set once the database was found to hold no blocklist at all, and cleared for good by the first block. While
    /// set, no stanza needs a look-up: on a server where nobody blocked anyone, the check is one atomic load.
    nobody_blocks: AtomicBool,
    /// Whether the database was asked yet (at the first session start).
    asked_if_anybody_blocks: AtomicBool,
}

impl BlocklistCache {
    /// The account's blocklist, read from the database only if it is not in memory.
    async fn get(&self, server: &Server, username: &str) -> Result<Arc<Blocklist>, StoreError> {
        if let Some(list) = self.fresh(username) {
            return Ok(list);
        }
        let _writing = self.writer.lock().await;
        if let Some(list) = self.fresh(username) {
            return Ok(list);
        }
        let online = !server.sessions.sessions_of(username).is_empty();
        self.load(server, username, online).await
    }

    fn fresh(&self, username: &str) -> Option<Arc<Blocklist>> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = entries.get(username)?;
        match entry.offline_since {
            Some(since) if since.elapsed() > OFFLINE_FRESH_FOR => None,
            _ => Some(Arc::clone(&entry.list)),
        }
    }

    /// Reads the list from the database into memory. The caller holds `writer`.
    async fn load(
        &self,
        server: &Server,
        username: &str,
        online: bool,
    ) -> Result<Arc<Blocklist>, StoreError> {
        let jids = server.store.blocklist().get(username).await?;
        let list = Arc::new(Blocklist {
            jids: jids.into_iter().collect(),
        });
        self.put(username, Arc::clone(&list), online);
        Ok(list)
    }

    fn put(&self, username: &str, list: Arc<Blocklist>, online: bool) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let offline_since = (!online).then(Instant::now);
        entries.insert(
            username.to_owned(),
            Entry {
                list,
                offline_since,
            },
        );
        if !online {
            evict_offline(&mut entries);
        }
    }

    /// A session started: the account's list is loaded, unless it is in memory for another session already.
    /// Whether no account has blocked anyone (see `nobody_blocks`).
    fn nobody_blocks(&self) -> bool {
        self.nobody_blocks.load(Ordering::Acquire)
    }

    async fn session_started(&self, server: &Server, username: &str) -> Result<(), StoreError> {
        let _writing = self.writer.lock().await;
        // Under the writer lock, so no block can be half-way between the database and memory meanwhile.
        if !self.asked_if_anybody_blocks.swap(true, Ordering::AcqRel)
            && !server.store.blocklist().any().await?
        {
            self.nobody_blocks.store(true, Ordering::Release);
        }
        let online = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(username)
            .is_some_and(|e| e.offline_since.is_none());
        if !online {
            self.load(server, username, true).await?;
        }
        Ok(())
    }

    /// A session ended: if it was the account's last, its list becomes one of the bounded offline ones.
    async fn session_ended(&self, server: &Server, username: &str) {
        let _writing = self.writer.lock().await;
        if !server.sessions.sessions_of(username).is_empty() {
            return;
        }
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(username) {
            entry.offline_since = Some(Instant::now());
            evict_offline(&mut entries);
        }
    }

    /// Applies a change to the database, then to memory. Returns the list before and after.
    async fn change(
        &self,
        server: &Server,
        username: &str,
        change: Change,
    ) -> Result<(Arc<Blocklist>, Arc<Blocklist>), StoreError> {
        let _writing = self.writer.lock().await;
        let before = match self.fresh(username) {
            Some(list) => list,
            None => self.load(server, username, true).await?,
        };
        let store = server.store.blocklist();
        let mut after = Blocklist::clone(&before);
        match change {
            Change::Block(jids) => {
                // Before the write: from now on every stanza is checked.
                self.nobody_blocks.store(false, Ordering::Release);
                store
                    .block(username, &jids, server.config.limits.max_blocklist_items)
                    .await?;
                after.jids.extend(jids);
            }
            Change::Unblock(jids) => {
                store.unblock(username, &jids).await?;
                for jid in &jids {
                    after.jids.remove(jid);
                }
            }
            Change::UnblockAll => {
                store.unblock_all(username).await?;
                after.jids.clear();
            }
        }
        let after = Arc::new(after);
        // Only a session of the account changes its list, so the account is online.
        self.put(username, Arc::clone(&after), true);
        Ok((before, after))
    }
}

/// Drops the lists of accounts without sessions beyond [`OFFLINE_KEPT`], those offline longest first.
fn evict_offline(entries: &mut HashMap<String, Entry>) {
    loop {
        let mut offline = entries
            .iter()
            .filter_map(|(name, e)| e.offline_since.map(|since| (since, name)));
        let Some(first) = offline.next() else { return };
        let (count, oldest) = offline.fold((1, first), |(n, oldest), e| (n + 1, oldest.min(e)));
        if count <= OFFLINE_KEPT {
            return;
        }
        let oldest = oldest.1.clone();
        entries.remove(&oldest);
    }
}

/// The blocking module.
pub struct Blocking {
    lists: BlocklistCache,
    /// Sessions (by id) that asked for the blocklist: only they get pushes (XEP-0191 §3.3).
    interested: Mutex<HashSet<u64>>,
}

impl Blocking {
    pub fn new() -> Self {
        Self {
            lists: BlocklistCache::default(),
            interested: Mutex::new(HashSet::new()),
        }
    }

    fn interested(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.interested
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for Blocking {
    fn default() -> Self {
        Self::new()
    }
}

impl Module for Blocking {
    fn name(&self) -> &'static str {
        "blocklist"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        // Clients look for it on the server's domain (Conversations, Siskin), where Prosody announces it.
        registry.disco.add_feature(NS);
        for (iq_type, name) in [
            (IqType::Get, "blocklist"),
            (IqType::Set, "block"),
            (IqType::Set, "unblock"),
        ] {
            registry.hooks.on_iq(
                iq_type,
                Target::Own,
                NS,
                name,
                0,
                Arc::new(Command(Arc::clone(&self))),
            );
        }
        for kind in [StanzaKind::Message, StanzaKind::Presence, StanzaKind::Iq] {
            registry.hooks.on_stanza(
                StanzaHook::Pre(kind),
                PRIORITY,
                Arc::new(Outbound(Arc::clone(&self))),
            );
            // Stanzas between an account's own resources are never blocked (XEP-0191 §5), so `Own` needs no
            // check.
            for target in [Target::Bare, Target::Full] {
                registry.hooks.on_stanza(
                    StanzaHook::Deliver(kind, target),
                    PRIORITY,
                    Arc::new(Inbound(Arc::clone(&self))),
                );
            }
        }
        registry.hooks.on_session(
            SessionHook::Started,
            PRIORITY,
            Arc::new(SessionEvents(Arc::clone(&self), SessionHook::Started)),
        );
        registry.hooks.on_session(
            SessionHook::Ended,
            PRIORITY,
            Arc::new(SessionEvents(self, SessionHook::Ended)),
        );
    }
}

/// The blocklist requests: get, block, unblock.
struct Command(Arc<Blocking>);

impl IqHandler for Command {
    fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome> {
        Box::pin(async move {
            let Origin::Client(session) = request.origin else {
                return IqOutcome::Pass;
            };
            let Some(payload) = request.payload() else {
                return IqOutcome::Pass;
            };
            match payload.name() {
                "blocklist" => self.0.send_list(request.server, session).await,
                "block" | "unblock" => {
                    self.0
                        .edit(request.server, session, request.stanza, payload)
                        .await
                }
                _ => IqOutcome::Pass,
            }
        })
    }
}

impl Blocking {
    async fn send_list(&self, server: &Arc<Server>, session: &Arc<Session>) -> IqOutcome {
        let list = match self.lists.get(server, session.username()).await {
            Ok(list) => list,
            Err(err) => return store_failed(&err),
        };
        self.interested().insert(session.id);
        let mut reply = Element::new("blocklist", NS);
        for jid in list.jids() {
            reply.append_child(Element::new("item", NS).with_attr("jid", jid));
        }
        IqOutcome::Result(Some(reply))
    }

    /// `<block/>` or `<unblock/>`. The reply goes first, then the presence the change calls for and the pushes.
    async fn edit(
        &self,
        server: &Arc<Server>,
        session: &Arc<Session>,
        stanza: &Element,
        payload: &Element,
    ) -> IqOutcome {
        let blocking = payload.name() == "block";
        let max = server.config.limits.max_blocklist_items;
        let too_many = || {
            IqOutcome::Error(StanzaError::with_text(
                StanzaCondition::PolicyViolation,
                format!("a blocklist holds at most {max} JIDs"),
            ))
        };
        let mut jids = Vec::new();
        let mut seen = HashSet::new();
        for item in payload.children().filter(|c| c.is("item", NS)) {
            let Some(jid) = item.attr("jid").and_then(|j| Jid::new(j).ok()) else {
                return IqOutcome::Error(StanzaError::with_text(
                    StanzaCondition::JidMalformed,
                    "an item's 'jid' is not a valid JID",
                ));
            };
            if seen.insert(jid.as_str().to_owned()) {
                jids.push(jid);
            }
            // More than a list can hold is refused before any work (unblocking that many is pointless too).
            if jids.len() > max {
                return too_many();
            }
        }
        if blocking && jids.is_empty() {
            return IqOutcome::Error(StanzaError::with_text(
                StanzaCondition::BadRequest,
                "<block/> needs at least one <item/>",
            ));
        }
        let stored: Vec<String> = jids.iter().map(|j| j.as_str().to_owned()).collect();
        let change = match (blocking, stored.is_empty()) {
            (true, _) => Change::Block(stored),
            (false, false) => Change::Unblock(stored),
            (false, true) => Change::UnblockAll,
        };
        let username = session.username();
        let (before, after) = match self.lists.change(server, username, change).await {
            Ok(lists) => lists,
            Err(StoreError::LimitReached(_)) => return too_many(),
            Err(err) => return store_failed(&err),
        };
        server
            .send_local(iq_result(stanza), &Origin::Client(Arc::clone(session)))
            .await;

        // Only what really changed affects presence: blocking a JID twice sends nothing the second time.
        let changed: Vec<&str> = if blocking {
            after
                .jids()
                .into_iter()
                .filter(|j| !before.contains(j))
                .collect()
        } else {
            before
                .jids()
                .into_iter()
                .filter(|j| !after.contains(j))
                .collect()
        };
        for entry in changed {
            update_presence(server, username, entry, blocking).await;
        }

        // The push carries the items as stored (normalised), or nothing for "unblock all".
        let mut push_payload = Element::new(payload.name(), NS);
        for jid in &jids {
            push_payload.append_child(Element::new("item", NS).with_attr("jid", jid.as_str()));
        }
        for target in server.sessions.sessions_of(username) {
            if !self.interested().contains(&target.id) {
                continue;
            }
            let push = Element::new("iq", ns::CLIENT)
                .with_attr("type", "set")
                .with_attr("id", "blocklist-push")
                .with_attr("to", target.jid.as_str())
                .with_child(push_payload.clone());
            server.send_local(push, &Origin::Local).await;
        }
        IqOutcome::Answered
    }
}

/// XEP-0191 §3.3/§3.4: when `entry` is blocked, each available session of the user sends it unavailable presence;
/// when it is unblocked, the session's current presence. Only where it may see the user's presence: a roster
/// subscription, or directed presence the session sent it (RFC 6121 §4.6), which the block takes back too.
async fn update_presence(server: &Arc<Server>, username: &str, entry: &str, blocking: bool) {
    let Ok(entry_jid) = Jid::new(entry) else {
        return;
    };
    let subscription = roster_subscription(server, username, &entry_jid).await;
    let subscribed = subscription.has_from();
    let mut any_available = false;
    for session in server.sessions.sessions_of(username) {
        let (presence, mut recipients) = {
            let state = session.state();
            let Some(presence) = state.presence.clone() else {
                continue;
            };
            any_available = true;
            let directed: Vec<Jid> = state
                .directed_presence
                .iter()
                .filter(|j| covers(entry, j))
                .cloned()
                .collect();
            (presence, directed)
        };
        if subscribed && !recipients.contains(&entry_jid) {
            recipients.push(entry_jid.clone());
        }
        for to in recipients {
            let mut stanza = if blocking {
                Element::new("presence", ns::CLIENT).with_attr("type", "unavailable")
            } else {
                presence.clone()
            };
            stanza.set_attr("from", session.jid.as_str());
            stanza.set_attr("to", to.as_str());
            let from = Jid::from(session.jid.clone());
            let origin = Origin::Client(Arc::clone(&session));
            // Routed like any presence, so every rule (including this module's) applies.
            server
                .route(StanzaKind::Presence, stanza, from, Some(to), origin)
                .await;
        }
    }
    if !blocking && any_available && subscription.has_to() {
        // The contact's presence was dropped while blocked: ask for it again (as Prosody does on unblock).
        let Ok(bare) = Jid::new(&format!("{username}@{}", server.domain)) else {
            return;
        };
        let probe = Element::new("presence", ns::CLIENT)
            .with_attr("type", "probe")
            .with_attr("from", bare.as_str())
            .with_attr("to", entry_jid.to_bare().as_str());
        let to = Jid::from(entry_jid.to_bare());
        server
            .route(StanzaKind::Presence, probe, bare, Some(to), Origin::Local)
            .await;
    }
}

/// The user's subscription with `contact` (none when there is no roster item or the roster cannot be read).
async fn roster_subscription(server: &Server, username: &str, contact: &Jid) -> Subscription {
    server
        .store
        .roster()
        .item(username, contact.to_bare().as_str())
        .await
        .ok()
        .flatten()
        .map_or(Subscription::None, |i| i.subscription)
}

/// The IQ error for a storage failure (logged here; the client learns only that it failed).
fn store_failed(err: &StoreError) -> IqOutcome {
    warn!(%err, "blocklist storage failed");
    IqOutcome::Error(StanzaError::new(StanzaCondition::InternalServerError))
}

/// Stanzas a user sends to a JID they blocked.
struct Outbound(Arc<Blocking>);

impl StanzaHandler for Outbound {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            if self.0.lists.nobody_blocks() {
                return Handled::Pass;
            }
            let Some(username) = event.from.node().map(|n| n.as_str()) else {
                return Handled::Pass;
            };
            // No 'to', or the user's own account: never blocked.
            if event.to.node().map(|n| n.as_str()) == Some(username)
                && event.to.domain() == event.from.domain()
            {
                return Handled::Pass;
            }
            let list = match self.0.lists.get(server, username).await {
                Ok(list) => list,
                Err(err) => {
                    warn!(%err, "blocklist unavailable; refusing the stanza");
                    let error = StanzaError::new(StanzaCondition::InternalServerError);
                    server.bounce(&event.stanza, error).await;
                    return Handled::Yes;
                }
            };
            if !list.blocks(&event.to) {
                return Handled::Pass;
            }
            // An error or an IQ response may not be answered (RFC 6120 §8.3.1): those are dropped silently.
            let is_response = is_error(&event.stanza)
                || (event.kind == StanzaKind::Iq && event.stanza.attr("type") == Some("result"));
            if !is_response {
                server
                    .send_local(blocked_error(&event.stanza), &Origin::Local)
                    .await;
            }
            Handled::Yes
        })
    }
}

/// `not-acceptable` with XEP-0191's `<blocked/>` condition, as Prosody words it.
fn blocked_error(stanza: &Element) -> Element {
    let error = StanzaError::with_text(StanzaCondition::NotAcceptable, "You have blocked this JID")
        .with_type(ErrorType::Cancel)
        .with_app_condition(Element::new("blocked", NS_ERRORS));
    error_reply(stanza, &error)
}

/// Stanzas on their way to a local account.
struct Inbound(Arc<Blocking>);

impl StanzaHandler for Inbound {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            if self.0.lists.nobody_blocks() {
                return Handled::Pass;
            }
            let Some(recipient) = event.to.node().map(|n| n.as_str()) else {
                return Handled::Pass;
            };
            let sender = event
                .from
                .node()
                .filter(|_| event.from.domain().as_str() == server.domain)
                .map(|n| n.as_str());
            if sender == Some(recipient) {
                return Handled::Pass;
            }
            match self.0.lists.get(server, recipient).await {
                Ok(list) if list.blocks(&event.from) => {
                    refuse_inbound(server, event).await;
                    return Handled::Yes;
                }
                Ok(_) => {}
                Err(err) => {
                    warn!(%err, "blocklist unavailable; refusing the stanza");
                    refuse_inbound(server, event).await;
                    return Handled::Yes;
                }
            }
            // What the server routes on a local user's behalf (presence broadcasts, probe answers) to a JID the
            // user blocked. Unavailable presence passes: it only says what the block means, that the user is
            // offline, and it is what blocking sends (§3.3).
            let Some(sender) = sender else {
                return Handled::Pass;
            };
            if is_unavailable_presence(event) {
                return Handled::Pass;
            }
            match self.0.lists.get(server, sender).await {
                Ok(list) if list.blocks(&event.to) => Handled::Yes,
                Ok(_) => Handled::Pass,
                Err(err) => {
                    warn!(%err, "blocklist unavailable; dropping the stanza");
                    Handled::Yes
                }
            }
        })
    }
}

fn is_unavailable_presence(event: &StanzaEvent) -> bool {
    event.kind == StanzaKind::Presence && event.stanza.attr("type") == Some("unavailable")
}

/// XEP-0191 §3.3: presence is dropped without a word; messages (chat, normal) and IQ requests get
/// `service-unavailable`, as for an account that is offline; other messages and IQ responses are dropped.
async fn refuse_inbound(server: &Server, event: &StanzaEvent) {
    let answer = match event.kind {
        StanzaKind::Presence => false,
        StanzaKind::Message => matches!(event.stanza.attr("type"), None | Some("chat" | "normal")),
        StanzaKind::Iq => matches!(event.stanza.attr("type"), Some("get" | "set")),
    };
    if answer {
        server
            .bounce(
                &event.stanza,
                StanzaError::new(StanzaCondition::ServiceUnavailable),
            )
            .await;
    }
}

/// Loads a list when an account's first session starts; forgets who asked for pushes when a session ends.
struct SessionEvents(Arc<Blocking>, SessionHook);

impl SessionHandler for SessionEvents {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let username = session.username();
            match self.1 {
                SessionHook::Started => {
                    if let Err(err) = self.0.lists.session_started(server, username).await {
                        // Not fatal: the list is read at its first use instead.
                        warn!(%err, "cannot load the blocklist");
                    }
                }
                SessionHook::Ended => {
                    self.0.interested().remove(&session.id);
                    self.0.lists.session_ended(server, username).await;
                }
                SessionHook::Available => {}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(jids: &[&str]) -> Blocklist {
        Blocklist {
            jids: jids.iter().map(|j| (*j).to_owned()).collect(),
        }
    }

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn matching_follows_the_xep() {
        let full = list(&["romeo@montague.example/orchard"]);
        assert!(full.blocks(&jid("romeo@montague.example/orchard")));
        assert!(!full.blocks(&jid("romeo@montague.example/balcony")));
        assert!(!full.blocks(&jid("romeo@montague.example")));

        let bare = list(&["romeo@montague.example"]);
        assert!(bare.blocks(&jid("romeo@montague.example")));
        assert!(bare.blocks(&jid("romeo@montague.example/balcony")));
        assert!(!bare.blocks(&jid("juliet@montague.example")));
        assert!(!bare.blocks(&jid("montague.example")));

        let domain_resource = list(&["montague.example/gate"]);
        assert!(domain_resource.blocks(&jid("montague.example/gate")));
        assert!(!domain_resource.blocks(&jid("montague.example")));
        assert!(!domain_resource.blocks(&jid("romeo@montague.example/gate")));

        let domain = list(&["montague.example"]);
        for covered in [
            "montague.example",
            "montague.example/gate",
            "romeo@montague.example",
            "romeo@montague.example/orchard",
        ] {
            assert!(domain.blocks(&jid(covered)), "{covered}");
            assert!(covers("montague.example", &jid(covered)), "{covered}");
        }
        // A subdomain is another domain; so is a domain that merely ends the same way.
        assert!(!domain.blocks(&jid("groups.montague.example")));
        assert!(!domain.blocks(&jid("romeo@notmontague.example")));
        assert!(!Blocklist::default().blocks(&jid("anyone@example.com")));
    }

    #[test]
    fn jids_are_listed_in_order() {
        assert_eq!(list(&["b@x", "a@x", "x"]).jids(), ["a@x", "b@x", "x"]);
    }

    #[test]
    fn offline_lists_are_bounded_oldest_first() {
        let mut entries = HashMap::new();
        let start = Instant::now();
        for i in 0..OFFLINE_KEPT + 5 {
            entries.insert(
                format!("offline{i}"),
                Entry {
                    list: Arc::default(),
                    offline_since: Some(start + Duration::from_millis(i as u64)),
                },
            );
        }
        entries.insert(
            "online".to_owned(),
            Entry {
                list: Arc::default(),
                offline_since: None,
            },
        );
        evict_offline(&mut entries);
        assert_eq!(entries.len(), OFFLINE_KEPT + 1);
        assert!(entries.contains_key("online"));
        for i in 0..5 {
            assert!(!entries.contains_key(&format!("offline{i}")), "offline{i}");
        }
        assert!(entries.contains_key(&format!("offline{}", OFFLINE_KEPT + 4)));
    }
}
