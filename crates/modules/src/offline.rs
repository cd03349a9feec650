//! XEP-0160 offline messages. What the message module cannot deliver ([`StanzaHook::Offline`]) is kept, and
//! handed over when one of the account's sessions sends initial presence with a non-negative priority (as Prosody's
//! mod_offline and mod_presence do): oldest first, each with a XEP-0203 `<delay/>` saying when it was stored.
//!
//! - Not kept, and dropped without an answer: standalone chat-state notifications (XEP-0160 §3, and XEP-0085 asks
//!   the same; an error for a typing notification would only alarm the sender) and messages marked `<no-store/>`
//!   (XEP-0334).
//! - Bounded: `offline_messages_per_user` messages per account, each at most `c2s_stanza_size` bytes. Beyond that
//!   the sender gets `service-unavailable` with a text (RFC 6121 §8.5.2.1.1).
//! - At-least-once: a message leaves the store only after it was queued for a session. A crash in between can
//!   deliver it twice, never lose it; a session that ends before writing it hands it back (it is stored again with
//!   its first delay stamp, after the messages still waiting).
//! - Delivery runs in a task of its own that reads [`BATCH`] messages at a time and waits for the session to read,
//!   as any sender does, so thousands of waiting messages neither sit in memory at once nor overflow the session's
//!   queue. Messages sent to the account meanwhile go straight to it and may arrive between stored ones; the delay
//!   stamps keep their order readable.
//! - One delivery per account at a time, to the account's top resources as each batch is read (normally the session
//!   that came online), so two sessions coming online together do not both take the same messages. A message that
//!   was being stored just as the account came online is not left behind: after storing, if the account has top
//!   resources by then, a delivery runs again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rookery_core::{
    BoxFuture, Handled, Module, Registry, Server, Session, SessionHandler, SessionHook,
    StanzaEvent, StanzaHandler, StanzaHook,
};
use rookery_proto::{StanzaCondition, StanzaError};
use rookery_store::{OfflineMessage, StoreOutcome};
use rookery_xml::{Element, StreamEvent, StreamParser, ns};
use tracing::{debug, warn};

use crate::message::top_resources;

const NS_DELAY: &str = "urn:xmpp:delay";
const NS_CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";
const NS_HINTS: &str = "urn:xmpp:hints";
/// XEP-0359 ids (`<origin-id/>`), which clients add to chat states too.
const NS_STANZA_ID: &str = "urn:xmpp:sid:0";

/// Stored messages read at a time: a few dozen small messages per query, and at most 50 × the stanza size limit in
/// memory even when every one is as large as allowed.
const BATCH: usize = 50;

#[derive(Default)]
pub struct OfflineModule {
    turns: DeliveryTurns,
}

impl Module for OfflineModule {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature("msgoffline");
        registry
            .hooks
            .on_stanza(StanzaHook::Offline, 0, Arc::new(Keep(Arc::clone(&self))));
        registry
            .hooks
            .on_session(SessionHook::Available, 0, Arc::new(HandOver(self)));
    }
}

struct Keep(Arc<OfflineModule>);

impl StanzaHandler for Keep {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(self.0.keep(server, event))
    }
}

struct HandOver(Arc<OfflineModule>);

impl SessionHandler for HandOver {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // As Prosody: a session that comes online with a negative priority takes no stored messages.
            if session.available_priority().is_some_and(|p| p >= 0) {
                self.0.start_delivery(server, session.username());
            }
        })
    }
}

impl OfflineModule {
    /// Stores a message for the account of `event.to`, or answers why not.
    async fn keep(self: &Arc<Self>, server: &Arc<Server>, event: &mut StanzaEvent) -> Handled {
        let Some(owner) = event.to.node().map(|n| n.as_str().to_owned()) else {
            return Handled::Pass;
        };
        if !worth_keeping(&event.stanza) {
            debug!(%owner, "not keeping a chat state or no-store message offline");
            return Handled::Yes;
        }
        let limits = &server.config.limits;
        let xml = event.stanza.to_xml_string();
        if xml.len() > limits.c2s_stanza_size {
            let error = StanzaError::with_text(
                StanzaCondition::ServiceUnavailable,
                "the message is too large to keep for a recipient who is offline",
            );
            server.bounce(&event.stanza, error).await;
            return Handled::Yes;
        }
        let stored = server
            .store
            .offline()
            .store(&owner, &xml, limits.offline_messages_per_user)
            .await;
        match stored {
            Ok(StoreOutcome::Stored) => {
                debug!(%owner, "message stored offline");
                // The account may have come online while this was being stored, after its stored messages were
                // handed over: then this one goes now, not at its next login.
                if !top_resources(server, &owner).is_empty() {
                    self.start_delivery(server, &owner);
                }
            }
            Ok(StoreOutcome::Full) => {
                let error = StanzaError::with_text(
                    StanzaCondition::ServiceUnavailable,
                    "the recipient is offline and has too many messages waiting",
                );
                server.bounce(&event.stanza, error).await;
            }
            // No such account: the router answers service-unavailable.
            Ok(StoreOutcome::NoSuchAccount) => return Handled::Pass,
            Err(err) => {
                warn!(%err, %owner, "cannot store an offline message");
                let error = StanzaError::with_text(
                    StanzaCondition::InternalServerError,
                    "the message could not be kept for the recipient",
                );
                server.bounce(&event.stanza, error).await;
            }
        }
        Handled::Yes
    }

    /// Hands the account's stored messages over in a task of its own: it waits for the recipient to read, which
    /// the session's own task (running the hook that got here) must never do.
    fn start_delivery(self: &Arc<Self>, server: &Arc<Server>, username: &str) {
        let (module, server, username) =
            (Arc::clone(self), Arc::clone(server), username.to_owned());
        tokio::spawn(async move { module.deliver_stored(&server, &username).await });
    }

    /// Delivers stored messages, oldest first, to the account's top resources, and removes each batch once queued.
    /// Stops (leaving the rest stored) when no top resource is left or none takes a message.
    async fn deliver_stored(&self, server: &Server, username: &str) {
        let _turn = self.turns.take(username).await;
        let store = server.store.offline();
        let wait = server.config.limits.slow_reader_timeout;
        loop {
            let recipients = top_resources(server, username);
            if recipients.is_empty() {
                return;
            }
            let batch = match store.oldest(username, BATCH).await {
                Ok(batch) if batch.is_empty() => return,
                Ok(batch) => batch,
                Err(err) => {
                    warn!(%err, %username, "cannot read offline messages");
                    return;
                }
            };
            let mut handled_through = None;
            let mut stopped = false;
            for message in batch {
                if let Some(stanza) = stored_stanza(&message, &server.domain)
                    && !deliver_waiting(&recipients, stanza, wait).await
                {
                    stopped = true;
                    break;
                }
                handled_through = Some(message.id);
            }
            if let Some(last) = handled_through
                && let Err(err) = store.remove_through(username, last).await
            {
                // They stay stored and come again next time: twice rather than never.
                warn!(%err, %username, "cannot remove delivered offline messages");
                return;
            }
            if stopped {
                return;
            }
        }
    }
}

/// Queues a copy for each recipient, waiting for room as a sender does. Whether any took it.
async fn deliver_waiting(recipients: &[Arc<Session>], stanza: Element, wait: Duration) -> bool {
    let mut delivered = false;
    for session in recipients {
        delivered |= session.deliver(stanza.clone(), Some(wait)).await.is_ok();
    }
    delivered
}

/// Whether a message is worth keeping for later: not a standalone chat-state notification (only a chat state,
/// with at most a thread, hints and ids beside it), and not marked `<no-store/>`.
fn worth_keeping(message: &Element) -> bool {
    if message.has_child("no-store", NS_HINTS) {
        return false;
    }
    let mut chat_state = false;
    let only_a_chat_state = message.children().all(|child| {
        if child.ns() == NS_CHAT_STATES {
            chat_state = true;
            return true;
        }
        child.is("thread", ns::CLIENT) || child.ns() == NS_HINTS || child.ns() == NS_STANZA_ID
    });
    !(chat_state && only_a_chat_state)
}

/// A stored message as it is delivered: with a delay stamp from this server saying when it was stored, unless it
/// already has one (it was stored before, delivered, and handed back by a session that ended).
fn stored_stanza(message: &OfflineMessage, domain: &str) -> Option<Element> {
    let Some(mut stanza) = parse_stored(&message.stanza) else {
        warn!(id = message.id, "unreadable offline message; dropped");
        return None;
    };
    let stamped = stanza
        .children()
        .any(|c| c.is("delay", NS_DELAY) && c.attr("from") == Some(domain));
    if !stamped {
        let stamp = rookery_proto::datetime::xep0082(message.stored_at);
        stanza.append_child(
            Element::new("delay", NS_DELAY)
                .with_attr("from", domain)
                .with_attr("stamp", stamp),
        );
    }
    Some(stanza)
}

/// Parses a stanza stored with [`Element::to_xml_string`].
pub(crate) fn parse_stored(xml: &str) -> Option<Element> {
    let mut parser = StreamParser::new(rookery_xml::Limits {
        max_stanza_bytes: xml.len(),
        max_depth: rookery_xml::Limits::CLIENT.max_depth,
    });
    parser.feed(b"<stream>");
    parser.feed(xml.as_bytes());
    match (parser.next_event(), parser.next_event()) {
        (Ok(Some(StreamEvent::Open(_))), Ok(Some(StreamEvent::Element(stanza)))) => Some(stanza),
        _ => None,
    }
}

/// One delivery of stored messages at a time per account. An account's entry lives only while a delivery runs or
/// waits for its turn.
#[derive(Default)]
struct DeliveryTurns(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl DeliveryTurns {
    async fn take(&self, username: &str) -> Turn<'_> {
        let lock = Arc::clone(self.map().entry(username.to_owned()).or_default());
        let guard = Arc::clone(&lock).lock_owned().await;
        Turn {
            turns: self,
            username: username.to_owned(),
            lock,
            guard: Some(guard),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An account's turn to deliver; the next waiting delivery goes when it is dropped.
struct Turn<'a> {
    turns: &'a DeliveryTurns,
    username: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.turns.map();
        // Held by the map and by this turn only: nobody waits, so the entry goes. (Clones are only made with the
        // map locked, so none can appear meanwhile.)
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.username);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(children: Vec<Element>) -> Element {
        let mut m = Element::new("message", ns::CLIENT).with_attr("type", "chat");
        for c in children {
            m.append_child(c);
        }
        m
    }

    #[test]
    fn standalone_chat_states_and_no_store_messages_are_not_kept() {
        let composing = || Element::new("composing", NS_CHAT_STATES);
        let body = || Element::new("body", ns::CLIENT).with_text("hi");
        let thread = || Element::new("thread", ns::CLIENT).with_text("t1");
        let origin_id = || Element::new("origin-id", NS_STANZA_ID).with_attr("id", "x");
        assert!(!worth_keeping(&message(vec![composing()])));
        assert!(!worth_keeping(&message(vec![
            thread(),
            composing(),
            origin_id(),
            Element::new("no-permanent-store", NS_HINTS),
        ])));
        assert!(!worth_keeping(&message(vec![
            body(),
            Element::new("no-store", NS_HINTS)
        ])));
        // A chat state beside content is kept, as is anything else without a body (a receipt, an invitation).
        assert!(worth_keeping(&message(vec![
            body(),
            Element::new("active", NS_CHAT_STATES)
        ])));
        assert!(worth_keeping(&message(vec![body()])));
        assert!(worth_keeping(&message(vec![
            Element::new("received", "urn:xmpp:receipts").with_attr("id", "m1")
        ])));
        assert!(worth_keeping(&message(vec![])));
    }

    #[test]
    fn stored_messages_come_back_with_one_delay_stamp() {
        let original = message(vec![
            Element::new("body", ns::CLIENT).with_text("a < b & ü"),
        ])
        .with_attr("from", "alice@example.com/phone")
        .with_attr("to", "bob@example.com");
        let stored = OfflineMessage {
            id: 7,
            stanza: original.to_xml_string(),
            stored_at: 1_031_699_305,
        };
        let delivered = stored_stanza(&stored, "example.com").unwrap();
        let delay = delivered.get_child("delay", NS_DELAY).unwrap();
        assert_eq!(delay.attr("from"), Some("example.com"));
        assert_eq!(delay.attr("stamp"), Some("2002-09-10T23:08:25Z"));
        let mut without_delay = delivered.clone();
        without_delay.remove_child("delay", NS_DELAY);
        assert_eq!(without_delay, original);

        // Stored again (handed back by a session that ended), it keeps its first stamp only.
        let again = OfflineMessage {
            id: 8,
            stanza: delivered.to_xml_string(),
            stored_at: 1_031_699_999,
        };
        let redelivered = stored_stanza(&again, "example.com").unwrap();
        let stamps: Vec<_> = redelivered
            .children()
            .filter(|c| c.is("delay", NS_DELAY))
            .filter_map(|c| c.attr("stamp"))
            .collect();
        assert_eq!(stamps, ["2002-09-10T23:08:25Z"]);
    }

    #[test]
    fn unreadable_rows_are_skipped() {
        let broken = OfflineMessage {
            id: 1,
            stanza: "<message><body>cut".to_owned(),
            stored_at: 0,
        };
        assert!(stored_stanza(&broken, "example.com").is_none());
        assert!(parse_stored("").is_none());
    }

    #[tokio::test]
    async fn turns_are_taken_one_at_a_time_and_forgotten() {
        let turns = Arc::new(DeliveryTurns::default());
        let first = turns.take("bob").await;
        let waiting = {
            let turns = Arc::clone(&turns);
            tokio::spawn(async move {
                let _second = turns.take("bob").await;
            })
        };
        // Another account is not held up.
        drop(turns.take("carol").await);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
        assert!(turns.map().is_empty());
    }
}
