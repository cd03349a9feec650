//! Bound client sessions and the registry that finds them by JID.
//!
//! A session is one bound resource. Its connection task owns the socket; the rest of the server reaches it only
//! through its bounded queue of outgoing stanzas and its close signal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use jid::{BareJid, FullJid};
use rookery_proto::StreamCondition;
use rookery_proto::StreamError;
use rookery_proto::c2s::BindRefusal;
use rookery_xml::{Element, Node};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};
use tokio_util::sync::CancellationToken;

/// A stanza waiting in a session's queue, holding its share of the queue's byte budget until it is written.
#[derive(Debug)]
pub struct Queued {
    pub stanza: Element,
    /// Whether the stanza was already re-routed once, from a session that ended before writing it: if this session
    /// ends before writing it too, it must not be re-routed again (see `Server::undeliverable`).
    pub rerouted: bool,
    _budget: OwnedSemaphorePermit,
}

/// One bound resource.
#[derive(Debug)]
pub struct Session {
    /// Unique for the life of the process; tells a replaced session from its successor with the same JID.
    pub id: u64,
    pub jid: FullJid,
    queue: mpsc::UnboundedSender<Queued>,
    /// Bytes the queue may still take: the queue itself is bounded by this, not by its channel.
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    /// Extra room for what the session's own stanzas cause to be sent to itself (see [`Session::serving`]).
    own_overflow: Arc<Semaphore>,
    close_signal: CancellationToken,
    close_reason: Mutex<Option<StreamError>>,
    state: Mutex<SessionState>,
}

/// What the instant-messaging modules keep about a session. Behind a plain mutex: it is read and written in short
/// sections, never held across an `.await`.
#[derive(Debug, Default)]
pub struct SessionState {
    /// The client's last available presence broadcast (RFC 6121 §4.2), as received: `None` until its initial
    /// presence and again after it sends unavailable presence. A session without it is not "available" and gets no
    /// presence broadcasts or messages to the bare JID.
    pub presence: Option<Element>,
    /// The priority of that presence (RFC 6121 §4.7.2.3), -128..=127; 0 when it has none.
    pub priority: i8,
    /// Whether the client asked for its roster: only such sessions get roster pushes (RFC 6121 §2.1.6).
    pub roster_requested: bool,
    /// JIDs the client sent directed presence to (RFC 6121 §4.6) outside its subscriptions; they get unavailable
    /// presence when it goes offline.
    pub directed_presence: std::collections::HashSet<jid::Jid>,
    /// The XEP-0115 capabilities in its presence (`node#ver` and hash), kept for PEP notifications.
    pub caps: Option<Caps>,
    /// The XEP-0388 `<user-agent id/>` it logged in with (SASL2), so that revoking a client closes its sessions.
    pub client_id: Option<String>,
    /// Whether the client enabled XEP-0280 carbons. Changed only through `rookery_modules::carbons::set_enabled`,
    /// which keeps the server-wide count of such sessions with it.
    pub carbons: bool,
}

/// XEP-0115 entity capabilities announced in a presence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    pub node: String,
    pub ver: String,
    pub hash: String,
}

/// Why a stanza could not be queued for a session.
#[derive(Debug)]
pub enum DeliveryError {
    /// The session is gone (its connection closed); the stanza is handed back.
    Gone(Element),
    /// The session's queue stayed full: its client reads too slowly. The session is being closed.
    Overloaded(Element),
}

impl DeliveryError {
    /// The stanza that was not delivered.
    pub fn into_stanza(self) -> Element {
        match self {
            Self::Gone(s) | Self::Overloaded(s) => s,
        }
    }
}

tokio::task_local! {
    /// The id of the session whose own task is running (see [`Session::serving`]).
    static SERVING: u64;
}

/// How many times its queue budget a session's own stanza may make it queue for itself.
pub const OWN_OVERFLOW_FACTOR: usize = 8;

/// The least a queued stanza costs, so that the number of queued stanzas is bounded too.
const MIN_STANZA_COST: usize = 256;

impl Session {
    /// Queues a stanza for the client. When the queue is full, a sender that may wait (`wait_for` is Some) waits
    /// up to that long for room, which slows a flooding sender down to what the recipient reads; if there is still
    /// no room, or the sender may not wait (the session's own task must never wait on its own queue), the
    /// session is closed as stalled.
    pub async fn deliver(
        &self,
        stanza: Element,
        wait_for: Option<std::time::Duration>,
    ) -> Result<(), DeliveryError> {
        self.enqueue(stanza, wait_for, false).await
    }

    /// Like [`deliver`](Self::deliver), for a stanza re-routed from a session that ended before writing it: marked
    /// so that it is not re-routed a second time.
    pub async fn deliver_rerouted(
        &self,
        stanza: Element,
        wait_for: Option<std::time::Duration>,
    ) -> Result<(), DeliveryError> {
        self.enqueue(stanza, wait_for, true).await
    }

    async fn enqueue(
        &self,
        stanza: Element,
        wait_for: Option<std::time::Duration>,
        rerouted: bool,
    ) -> Result<(), DeliveryError> {
        if self.is_closing() {
            return Err(DeliveryError::Gone(stanza));
        }
        let cost = estimated_size(&stanza).clamp(MIN_STANZA_COST, self.budget_bytes);
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        let permit = match Arc::clone(&self.budget).try_acquire_many_owned(cost) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(DeliveryError::Gone(stanza)),
            Err(TryAcquireError::NoPermits) => {
                // The session's own task is handling one of its stanzas (initial presence, say) and cannot drain
                // its queue until that is done: it may not wait on itself, so it takes the extra room instead.
                let own = SERVING.try_with(|id| *id == self.id).unwrap_or(false);
                let overflow = if own {
                    Arc::clone(&self.own_overflow)
                        .try_acquire_many_owned(cost)
                        .ok()
                } else {
                    None
                };
                let waited = match (overflow, wait_for) {
                    (Some(permit), _) => Some(Ok(permit)),
                    (None, Some(limit)) if !own => tokio::time::timeout(
                        limit,
                        Arc::clone(&self.budget).acquire_many_owned(cost),
                    )
                    .await
                    .ok(),
                    _ => None,
                };
                match waited {
                    Some(Ok(permit)) => permit,
                    Some(Err(_)) => return Err(DeliveryError::Gone(stanza)),
                    None => {
                        self.close(StreamError::with_text(
                            StreamCondition::PolicyViolation,
                            "too many unread stanzas",
                        ));
                        return Err(DeliveryError::Overloaded(stanza));
                    }
                }
            }
        };
        self.queue
            .send(Queued {
                stanza,
                rerouted,
                _budget: permit,
            })
            .map_err(|mpsc::error::SendError(q)| DeliveryError::Gone(q.stanza))
    }

    /// Runs `work` as this session's own task handling one of its stanzas. What that work sends to this same
    /// session cannot wait for room (the task that would make room is busy with it), so it may use extra room up
    /// to [`OWN_OVERFLOW_FACTOR`] times the queue budget: a login's probe answers, sibling presences and pending
    /// requests arrive whole even when they outgrow the queue, and still within a bound.
    pub async fn serving<F: Future>(&self, work: F) -> F::Output {
        SERVING.scope(self.id, work).await
    }

    /// Asks the session's connection to close with this stream error. The first reason given wins.
    pub fn close(&self, reason: StreamError) {
        {
            let mut slot = self
                .close_reason
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(reason);
            }
        }
        self.close_signal.cancel();
    }

    /// Resolves when someone asked the session to close.
    pub async fn closed(&self) {
        self.close_signal.cancelled().await;
    }

    /// Whether someone asked the session to close: its connection must not act for it any more.
    pub fn is_closing(&self) -> bool {
        self.close_signal.is_cancelled()
    }

    /// The stream error to close with, once [`Session::closed`] resolved.
    pub fn close_reason(&self) -> Option<StreamError> {
        self.close_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The instant-messaging state of the session. Hold the guard briefly and never across an `.await`.
    pub fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The priority of the session's available presence, or `None` while it is not available.
    pub fn available_priority(&self) -> Option<i8> {
        let state = self.state();
        state.presence.as_ref().map(|_| state.priority)
    }

    /// The session's account.
    pub fn username(&self) -> &str {
        self.jid.node().map_or("", |n| n.as_str())
    }

    pub fn bare_jid(&self) -> BareJid {
        self.jid.to_bare()
    }
}

/// Roughly how many bytes a stanza takes written out: enough to bound queues by memory, cheap enough for every
/// stanza (one pass over its nodes, no writing).
pub fn estimated_size(el: &Element) -> usize {
    let mut size = 2 * el.name().len() + 5;
    for a in el.attributes() {
        size += a.name.len() + a.value.len() + 4;
    }
    for node in el.nodes() {
        size += match node {
            Node::Element(child) => estimated_size(child),
            Node::Text(text) => text.len(),
        };
    }
    size
}

/// All bound sessions of the local domain, by account.
#[derive(Debug)]
pub struct SessionRegistry {
    by_account: RwLock<HashMap<String, Vec<Arc<Session>>>>,
    next_id: AtomicU64,
    queue_bytes: usize,
}

impl SessionRegistry {
    /// `queue_bytes` bounds each session's queue of stanzas waiting to be written.
    pub fn new(queue_bytes: usize) -> Self {
        Self {
            by_account: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            queue_bytes: queue_bytes.clamp(MIN_STANZA_COST, Semaphore::MAX_PERMITS),
        }
    }

    /// Binds a resource for `bare` (the server picks one when `resource` is None). A session already bound to the
    /// same full JID is replaced and told to close with `<conflict/>`; beyond `max_resources` the bind is refused.
    pub fn bind(
        &self,
        bare: &BareJid,
        resource: Option<&str>,
        max_resources: usize,
    ) -> Result<(Arc<Session>, mpsc::UnboundedReceiver<Queued>), BindRefusal> {
        let username = bare.node().map_or("", |n| n.as_str()).to_owned();
        let mut map = self
            .by_account
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sessions = map.entry(username).or_default();
        let resource = match resource {
            Some(r) => r.to_owned(),
            None => loop {
                let candidate = random_resource();
                if !sessions
                    .iter()
                    .any(|s| s.jid.resource().as_str() == candidate)
                {
                    break candidate;
                }
            },
        };
        let jid = bare.with_resource_str(&resource).map_err(|_| {
            BindRefusal::Error(rookery_proto::StanzaError::new(
                rookery_proto::StanzaCondition::BadRequest,
            ))
        })?;
        if let Some(pos) = sessions.iter().position(|s| s.jid == jid) {
            let old = sessions.remove(pos);
            old.close(StreamError::with_text(
                StreamCondition::Conflict,
                "replaced by a new connection",
            ));
        }
        if sessions.len() >= max_resources {
            return Err(BindRefusal::TooManyResources);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            jid,
            queue: tx,
            budget: Arc::new(Semaphore::new(self.queue_bytes)),
            budget_bytes: self.queue_bytes,
            own_overflow: Arc::new(Semaphore::new(
                (self.queue_bytes * OWN_OVERFLOW_FACTOR).min(Semaphore::MAX_PERMITS),
            )),
            close_signal: CancellationToken::new(),
            close_reason: Mutex::new(None),
            state: Mutex::new(SessionState::default()),
        });
        sessions.push(Arc::clone(&session));
        Ok((session, rx))
    }

    /// Removes a session when its connection ends. A session that was already replaced is not in the registry,
    /// and its successor stays.
    pub fn unbind(&self, session: &Session) {
        let mut map = self
            .by_account
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sessions) = map.get_mut(session.username()) {
            sessions.retain(|s| s.id != session.id);
            if sessions.is_empty() {
                map.remove(session.username());
            }
        }
    }

    /// The session bound to this full JID.
    pub fn get(&self, jid: &FullJid) -> Option<Arc<Session>> {
        let username = jid.node()?.as_str();
        let map = self
            .by_account
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(username)?
            .iter()
            .find(|s| s.jid.resource() == jid.resource())
            .cloned()
    }

    /// Every session of an account.
    pub fn sessions_of(&self, username: &str) -> Vec<Arc<Session>> {
        let map = self
            .by_account
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(username).cloned().unwrap_or_default()
    }

    /// How many accounts have at least one session bound.
    pub fn accounts_online(&self) -> usize {
        self.by_account
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// How many sessions are bound.
    pub fn count(&self) -> usize {
        let map = self
            .by_account
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.values().map(Vec::len).sum()
    }
}

/// A server-chosen resource: 64 random bits, enough that two never meet within one account.
fn random_resource() -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn bind_replace_and_limit() {
        let reg = SessionRegistry::new(8);
        let alice = bare("alice@example.com");
        let (s1, _rx1) = reg.bind(&alice, Some("phone"), 2).unwrap();
        let (s2, _rx2) = reg.bind(&alice, Some("phone"), 2).unwrap();
        assert_ne!(s1.id, s2.id);
        assert_eq!(
            s1.close_reason().unwrap().condition,
            StreamCondition::Conflict
        );
        assert_eq!(reg.count(), 1);
        let (_s3, _rx3) = reg.bind(&alice, None, 2).unwrap();
        assert_eq!(
            reg.bind(&alice, Some("third"), 2).unwrap_err(),
            BindRefusal::TooManyResources
        );
        // The replaced session's unbind must not remove its successor.
        reg.unbind(&s1);
        assert_eq!(reg.count(), 2);
        assert!(reg.get(&s2.jid).is_some());
        reg.unbind(&s2);
        assert!(reg.get(&s2.jid).is_none());
    }

    #[tokio::test]
    async fn a_full_queue_makes_senders_wait_then_closes_a_stalled_session() {
        let reg = SessionRegistry::new(600);
        let (s, mut rx) = reg.bind(&bare("bob@example.com"), Some("r"), 10).unwrap();
        let msg = || Element::new("message", rookery_xml::ns::CLIENT).with_text("x".repeat(250));
        s.deliver(msg(), None).await.unwrap();
        s.deliver(msg(), None).await.unwrap();
        // Full: a sender that may wait gets room as soon as the reader takes a stanza.
        let reader = async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            // Written out: its share of the budget comes back.
            drop(rx.recv().await.unwrap());
        };
        let (sent, _) = tokio::join!(
            s.deliver(msg(), Some(std::time::Duration::from_secs(20))),
            reader
        );
        sent.unwrap();
        assert!(!s.is_closing());
        // Nobody reads: after the wait the session is closed as stalled.
        let err = s
            .deliver(msg(), Some(std::time::Duration::from_millis(10)))
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Overloaded(_)));
        assert_eq!(
            s.close_reason().unwrap().condition,
            StreamCondition::PolicyViolation
        );
    }

    #[tokio::test]
    async fn a_sessions_own_work_may_outgrow_its_queue_within_a_bound() {
        let reg = SessionRegistry::new(600);
        let (s, _rx) = reg.bind(&bare("carol@example.com"), Some("r"), 10).unwrap();
        let msg = || Element::new("message", rookery_xml::ns::CLIENT).with_text("x".repeat(250));
        // Its own task, busy handling its own stanza, queues past the budget without closing it...
        let queued = s
            .serving(async {
                let mut queued = 0;
                while s.deliver(msg(), None).await.is_ok() {
                    queued += 1;
                    assert!(queued < 100, "no bound");
                }
                queued
            })
            .await;
        // Two fit the budget; the extra room holds about eight budgets more, and then the session is closed.
        assert!(queued > 2 * OWN_OVERFLOW_FACTOR, "{queued}");
        assert!(s.is_closing());
    }

    #[tokio::test]
    async fn others_get_no_extra_room() {
        let reg = SessionRegistry::new(600);
        let (s, _rx) = reg.bind(&bare("dave@example.com"), Some("r"), 10).unwrap();
        let (other, _rx2) = reg.bind(&bare("erin@example.com"), Some("r"), 10).unwrap();
        let msg = || Element::new("message", rookery_xml::ns::CLIENT).with_text("x".repeat(250));
        other
            .serving(async {
                s.deliver(msg(), None).await.unwrap();
                s.deliver(msg(), None).await.unwrap();
                assert!(s.deliver(msg(), None).await.is_err());
            })
            .await;
        assert!(s.is_closing());
    }

    #[test]
    fn sizes_are_estimated() {
        let el = Element::new("message", rookery_xml::ns::CLIENT)
            .with_attr("to", "a@b")
            .with_child(Element::new("body", rookery_xml::ns::CLIENT).with_text("hello"));
        let written = el.to_xml_string().len();
        let estimate = estimated_size(&el);
        assert!(
            estimate + 40 >= written && estimate <= written * 2,
            "{estimate} for {written}"
        );
    }
}
