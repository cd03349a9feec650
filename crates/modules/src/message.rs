//! Delivery of messages to local accounts (RFC 6121 §8.5), with the policy of Prosody's mod_message.
//!
//! - To a full JID: the session bound to it. When there is none, or it cannot take the message (§8.5.3.2.1):
//!   chat and normal are treated as sent to the bare JID, groupchat gets `service-unavailable`, headline and error
//!   are dropped.
//! - To a bare JID (another account's, or one's own):
//!   - chat and normal go to the account's *top resources*: every available resource with the highest
//!     non-negative priority. §8.5.2.1.1 lets a server pick between its own idea of "most available" and every
//!     non-negative resource; this is Prosody's choice, and what Snikket's clients are used to. With no such
//!     resource (none available, or only negative priorities) the message goes offline ([`StanzaHook::Offline`]:
//!     the offline store keeps it, or the sender gets `service-unavailable`, also when there is no such account);
//!   - headline goes to every available resource with a non-negative priority, and is dropped if there is none;
//!   - groupchat gets `service-unavailable`; error is dropped, never answered.
//!
//! The handlers take every message, so they run at priority -1, after the modules that only watch messages at 0
//! (archiving, carbons), as Prosody's mod_message does.
//!
//! A message handed on by [`Origin::Rerouted`] (from a session that ended before writing it) follows the same rules;
//! the sessions it reaches queue it marked, so that it is never re-routed a second time.

use std::sync::Arc;

use rookery_core::{
    BoxFuture, Handled, Module, Origin, Registry, Server, Session, StanzaEvent, StanzaHandler,
    StanzaHook, Target,
};
use rookery_proto::stanza::MessageType;
use rookery_proto::{StanzaCondition, StanzaError, StanzaKind};
use rookery_xml::Element;

/// Prosody's mod_message runs at -1 for the same reason: it takes every message it sees.
const PRIORITY: i32 = -1;

pub struct MessageModule;

impl Module for MessageModule {
    fn name(&self) -> &'static str {
        "message"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let message = StanzaKind::Message;
        registry.hooks.on_stanza(
            StanzaHook::Deliver(message, Target::Full),
            PRIORITY,
            Arc::new(ToFullJid),
        );
        for target in [Target::Bare, Target::Own] {
            registry.hooks.on_stanza(
                StanzaHook::Deliver(message, target),
                PRIORITY,
                Arc::new(ToAccount),
            );
        }
    }
}

struct ToFullJid;

impl StanzaHandler for ToFullJid {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            // The common case costs what the router's own delivery does: one look-up, one queue push.
            let session = event
                .to
                .try_as_full()
                .ok()
                .and_then(|full| server.sessions.get(full));
            if let Some(session) = session {
                let stanza = std::mem::replace(&mut event.stanza, placeholder());
                match server
                    .deliver_to_session(&session, stanza, &event.origin)
                    .await
                {
                    Ok(()) => return Handled::Yes,
                    // Gone, or closed for not reading: as if it were not bound.
                    Err(err) => event.stanza = err.into_stanza(),
                }
            }
            match MessageType::of(&event.stanza) {
                MessageType::Chat | MessageType::Normal => to_account(server, event).await,
                MessageType::Groupchat => {
                    server
                        .bounce(
                            &event.stanza,
                            StanzaError::new(StanzaCondition::ServiceUnavailable),
                        )
                        .await;
                }
                MessageType::Headline | MessageType::Error => {}
            }
            Handled::Yes
        })
    }
}

struct ToAccount;

impl StanzaHandler for ToAccount {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            to_account(server, event).await;
            Handled::Yes
        })
    }
}

/// A message for the account of `event.to` (whose full JID, if it has one, is not available).
async fn to_account(server: &Arc<Server>, event: &mut StanzaEvent) {
    let username = event.to.node().map_or("", |n| n.as_str());
    match MessageType::of(&event.stanza) {
        MessageType::Chat | MessageType::Normal => {
            let recipients = top_resources(server, username);
            let stanza = std::mem::replace(&mut event.stanza, placeholder());
            if let Err(undelivered) =
                deliver_to_all(server, &recipients, stanza, &event.origin).await
            {
                event.stanza = undelivered;
                server.offline(event).await;
            }
        }
        MessageType::Headline => {
            let recipients: Vec<_> = server
                .sessions
                .sessions_of(username)
                .into_iter()
                .filter(|s| bare_jid_priority(s).is_some())
                .collect();
            let stanza = std::mem::replace(&mut event.stanza, placeholder());
            // With no recipient a headline is dropped: it is not worth keeping (XEP-0160 §3).
            let _ = deliver_to_all(server, &recipients, stanza, &event.origin).await;
        }
        MessageType::Groupchat => {
            // Nobody can be in a room as a bare JID (RFC 6121 §8.5.2.1.2).
            server
                .bounce(
                    &event.stanza,
                    StanzaError::new(StanzaCondition::ServiceUnavailable),
                )
                .await;
        }
        MessageType::Error => {}
    }
}

/// The account's available resources with the highest non-negative priority (Prosody's `top_resources`): the ones
/// a chat or normal message to the bare JID goes to. Empty when none is available or all have negative
/// priorities.
pub(crate) fn top_resources(server: &Server, username: &str) -> Vec<Arc<Session>> {
    let mut top = Vec::new();
    let mut highest = 0;
    for session in server.sessions.sessions_of(username) {
        let Some(priority) = bare_jid_priority(&session) else {
            continue;
        };
        if priority > highest {
            highest = priority;
            top.clear();
        }
        if priority == highest {
            top.push(session);
        }
    }
    top
}

/// The priority of a session that messages to its bare JID may reach: available with a non-negative priority, and
/// not closing (a closing session takes nothing).
fn bare_jid_priority(session: &Session) -> Option<i8> {
    session
        .available_priority()
        .filter(|&p| p >= 0 && !session.is_closing())
}

/// Queues the stanza for every session (a copy each). `Err` gives it back when none took it.
async fn deliver_to_all(
    server: &Server,
    sessions: &[Arc<Session>],
    stanza: Element,
    origin: &Origin,
) -> Result<(), Element> {
    let Some((last, others)) = sessions.split_last() else {
        return Err(stanza);
    };
    let mut delivered = false;
    for session in others {
        delivered |= server
            .deliver_to_session(session, stanza.clone(), origin)
            .await
            .is_ok();
    }
    match server.deliver_to_session(last, stanza, origin).await {
        Ok(()) => Ok(()),
        Err(_) if delivered => Ok(()),
        Err(err) => Err(err.into_stanza()),
    }
}

/// What an event holds while its stanza is out being delivered (the stanza comes back if it was not). Allocates
/// nothing.
fn placeholder() -> Element {
    Element::new(String::new(), rookery_xml::Namespace::NONE)
}
