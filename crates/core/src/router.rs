//! The router: where every stanza goes after its session has stamped it.
//!
//! The default behaviour here is RFC 6120's; modules change it through hooks (messages to accounts are the message
//! module's). The hot path (a message to a bound full JID) takes a read lock, one hash look-up and one queue push,
//! here or in the message module: the stanza is moved, never copied.

use std::sync::Arc;

use jid::Jid;
use rookery_proto::stanza::{MessageType, error_reply, is_error};
use rookery_proto::{
    IqType, StanzaCondition, StanzaError, StanzaKind, StreamCondition, StreamError,
};
use rookery_xml::{Element, ns};

use crate::Server;
use crate::hooks::{Handled, IqOutcome, IqRequest, StanzaEvent, StanzaHook, Target};
use crate::session::{DeliveryError, Session};

/// Who a stanza came from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// A bound client session of this server.
    Client(Arc<Session>),
    /// The server itself (replies, notifications).
    Local,
    /// The server, handing on a message that a session did not write before it ended (see
    /// [`Server::undeliverable`]). Sessions queue such a message marked as re-routed, so it is never re-routed
    /// twice.
    Rerouted,
}

impl Origin {
    /// How long a delivery from this origin may wait for room in `target`'s queue. A session's own task drains
    /// its own queue, so it must never wait on it; the server's own stanzas do not wait either.
    pub fn wait_for(&self, target: &Session, server: &Server) -> Option<std::time::Duration> {
        match self {
            Self::Client(sender) if sender.id != target.id => {
                Some(server.config.limits.slow_reader_timeout)
            }
            // Re-routing runs in the task of a session that ended and is unbound, so never the target's own task:
            // it waits like a sender rather than close a busy session.
            Self::Rerouted => Some(server.config.limits.slow_reader_timeout),
            _ => None,
        }
    }
}

/// Where a stanza is going, once its `to` has been read.
enum Destination {
    Local(Target),
    /// A domain this server does not serve.
    Remote,
    /// One of our own service subdomains that has no service yet.
    Unserved,
}

impl Server {
    /// Handles a stanza that an established client session sent. An `Err` is a stream error that ends the session.
    pub async fn handle_from_client(
        self: &Arc<Self>,
        session: &Arc<Session>,
        mut stanza: Element,
    ) -> Result<(), StreamError> {
        let Some(kind) = StanzaKind::of(&stanza, ns::CLIENT) else {
            return Err(StreamError::with_text(
                StreamCondition::UnsupportedStanzaType,
                format!(
                    "<{}/> is not a stanza this server understands",
                    stanza.name()
                ),
            ));
        };
        // RFC 6120 §8.1.2.1: the server stamps the full JID; a client may only claim its own JIDs.
        if let Some(claimed) = stanza.attr("from") {
            let ok =
                Jid::new(claimed).is_ok_and(|j| j == session.jid || j == session.jid.to_bare());
            if !ok {
                return Err(StreamError::with_text(
                    StreamCondition::InvalidFrom,
                    "that 'from' is not yours",
                ));
            }
        }
        stanza.set_attr("from", session.jid.as_str());
        let origin = Origin::Client(Arc::clone(session));
        let to = match stanza.attr("to") {
            None => None,
            Some(raw) => match Jid::new(raw) {
                Ok(jid) => {
                    // Recipients and replies see the normalised JID, whatever case the client wrote.
                    if jid.as_str() != raw {
                        stanza.set_attr("to", jid.as_str());
                    }
                    Some(jid)
                }
                Err(_) => {
                    let error =
                        StanzaError::with_text(StanzaCondition::JidMalformed, "invalid 'to'");
                    self.bounce(&stanza, error).await;
                    return Ok(());
                }
            },
        };
        let from = Jid::from(session.jid.clone());
        if self.hooks.has_stanza_handlers(StanzaHook::Pre(kind)) {
            let to_jid = to.unwrap_or_else(|| Jid::from(session.jid.to_bare()));
            let mut event = StanzaEvent {
                kind,
                stanza,
                from,
                to: to_jid,
                origin,
            };
            if self
                .hooks
                .run_stanza(self, StanzaHook::Pre(kind), &mut event)
                .await
                == Handled::Yes
            {
                return Ok(());
            }
            // A hook may have readdressed the stanza: route it where the event now says.
            let StanzaEvent {
                stanza,
                from,
                to,
                origin,
                ..
            } = event;
            self.route(kind, stanza, from, Some(to), origin).await;
        } else {
            self.route(kind, stanza, from, to, origin).await;
        }
        Ok(())
    }

    /// Routes a stanza whose `from` is already stamped. `to` is None when the stanza had no `to` (it is then for
    /// the sender's own account).
    pub async fn route(
        self: &Arc<Self>,
        kind: StanzaKind,
        stanza: Element,
        from: Jid,
        to: Option<Jid>,
        origin: Origin,
    ) {
        let (destination, to) = match to {
            None => (Destination::Local(Target::Own), Jid::from(from.to_bare())),
            Some(to) => (self.destination(&from, &to), to),
        };
        let target = match destination {
            Destination::Local(target) => target,
            Destination::Remote => {
                // Federation arrives with its own issue; until then remote domains are unreachable. Presence goes
                // unanswered: broadcasts to remote contacts would otherwise bring the user one error per contact
                // at every status change.
                if kind == StanzaKind::Presence {
                    return;
                }
                let error = StanzaError::with_text(
                    StanzaCondition::RemoteServerNotFound,
                    "federation is not available yet",
                );
                self.bounce(&stanza, error).await;
                return;
            }
            Destination::Unserved => {
                self.bounce(
                    &stanza,
                    StanzaError::new(StanzaCondition::ServiceUnavailable),
                )
                .await;
                return;
            }
        };
        match kind {
            StanzaKind::Iq => self.route_iq(stanza, target, from, to, origin).await,
            StanzaKind::Message | StanzaKind::Presence => {
                let hook = StanzaHook::Deliver(kind, target);
                if self.hooks.has_stanza_handlers(hook) {
                    let mut event = StanzaEvent {
                        kind,
                        stanza,
                        from,
                        to,
                        origin,
                    };
                    if self.hooks.run_stanza(self, hook, &mut event).await == Handled::Yes {
                        return;
                    }
                    self.deliver_default(kind, target, event.stanza, &event.to, &event.origin)
                        .await;
                } else {
                    self.deliver_default(kind, target, stanza, &to, &origin)
                        .await;
                }
            }
        }
    }

    fn destination(&self, from: &Jid, to: &Jid) -> Destination {
        let domain = to.domain().as_str();
        if domain != self.domain {
            if domain == self.groups_domain || domain == self.share_domain {
                return Destination::Unserved;
            }
            return Destination::Remote;
        }
        match (to.node(), to.resource()) {
            (None, None) => Destination::Local(Target::Host),
            // A domain with a resource (`example.com/x`) has no session behind it.
            (None, Some(_)) => Destination::Unserved,
            (Some(_), Some(_)) => Destination::Local(Target::Full),
            (Some(node), None) => {
                if from.domain() == to.domain() && from.node() == Some(node) {
                    Destination::Local(Target::Own)
                } else {
                    Destination::Local(Target::Bare)
                }
            }
        }
    }

    async fn route_iq(
        self: &Arc<Self>,
        mut stanza: Element,
        target: Target,
        mut from: Jid,
        mut to: Jid,
        mut origin: Origin,
    ) {
        let Some(iq_type) = IqType::of(&stanza) else {
            let error =
                StanzaError::with_text(StanzaCondition::BadRequest, "an IQ needs a valid type");
            self.bounce(&stanza, error).await;
            return;
        };
        // IQs to another account or one of its clients, whatever their payload: blocking, for one, acts on them.
        let hook = StanzaHook::Deliver(StanzaKind::Iq, target);
        if matches!(target, Target::Bare | Target::Full) && self.hooks.has_stanza_handlers(hook) {
            let mut event = StanzaEvent {
                kind: StanzaKind::Iq,
                stanza,
                from,
                to,
                origin,
            };
            if self.hooks.run_stanza(self, hook, &mut event).await == Handled::Yes {
                return;
            }
            StanzaEvent {
                stanza,
                from,
                to,
                origin,
                ..
            } = event;
        }
        if target == Target::Full {
            // IQs to a full JID go to that client, requests and responses alike.
            self.deliver_to_full(stanza, &to, &origin).await;
            return;
        }
        if !iq_type.is_request() {
            // A response addressed to the server: the answer to one of its own requests, if it matches one.
            // Responses to an account (the server never asks in an account's name) and strays are dropped.
            if target == Target::Host {
                self.requests.resolve(stanza, &from);
            }
            return;
        }
        let Some(payload) = stanza.first_child() else {
            let error = StanzaError::with_text(
                StanzaCondition::BadRequest,
                "an IQ request needs a payload",
            );
            self.bounce(&stanza, error).await;
            return;
        };
        let request = IqRequest {
            server: self,
            stanza: &stanza,
            from: &from,
            to: &to,
            origin: &origin,
        };
        let outcome = self
            .hooks
            .run_iq(iq_type, target, payload.ns(), payload.name(), request)
            .await;
        let reply = match outcome {
            IqOutcome::Result(payload) => {
                let mut reply = rookery_proto::stanza::iq_result(&stanza);
                if let Some(payload) = payload {
                    reply.append_child(payload);
                }
                reply
            }
            IqOutcome::Error(err) => error_reply(&stanza, &err),
            IqOutcome::Answered => return,
            IqOutcome::Pass => error_reply(
                &stanza,
                &StanzaError::new(StanzaCondition::ServiceUnavailable),
            ),
        };
        self.send_local(reply, &origin).await;
    }

    /// What happens to a message or presence that no module took. Messages to accounts (RFC 6121 §8.5) are the
    /// message module's; what is here is the least a server without it does.
    async fn deliver_default(
        self: &Arc<Self>,
        kind: StanzaKind,
        target: Target,
        stanza: Element,
        to: &Jid,
        origin: &Origin,
    ) {
        match (kind, target) {
            (StanzaKind::Message, Target::Full) => self.deliver_to_full(stanza, to, origin).await,
            (StanzaKind::Presence, Target::Full) => {
                // Presence to an unavailable resource is dropped (RFC 6121 §8.5.3.2.2, §8.5.3.2.3).
                let session = to
                    .try_as_full()
                    .ok()
                    .and_then(|full| self.sessions.get(full));
                if let Some(session) = session {
                    let _ = session
                        .deliver(stanza, origin.wait_for(&session, self))
                        .await;
                }
            }
            // Nothing delivers messages to accounts.
            (StanzaKind::Message, Target::Bare | Target::Own) => {
                self.bounce(
                    &stanza,
                    StanzaError::new(StanzaCondition::ServiceUnavailable),
                )
                .await;
            }
            // Presence broadcast and subscriptions come with the instant-messaging modules; messages and presence
            // to the server itself have nothing to do here.
            _ => {}
        }
    }

    /// Delivers to a bound full JID; what it cannot deliver is [undeliverable](Self::undeliverable).
    async fn deliver_to_full(self: &Arc<Self>, stanza: Element, to: &Jid, origin: &Origin) {
        let session = to
            .try_as_full()
            .ok()
            .and_then(|full| self.sessions.get(full));
        let undelivered = match session {
            Some(session) => match self.deliver_to_session(&session, stanza, origin).await {
                Ok(()) => return,
                Err(err) => err.into_stanza(),
            },
            None => stanza,
        };
        self.undeliverable(undelivered, matches!(origin, Origin::Rerouted))
            .await;
    }

    /// Queues a stanza for a session on behalf of `origin`: a client sender waits for room in a full queue (see
    /// [`Session::deliver`]), and a re-routed message stays marked as such.
    pub async fn deliver_to_session(
        &self,
        session: &Session,
        stanza: Element,
        origin: &Origin,
    ) -> Result<(), DeliveryError> {
        let wait_for = origin.wait_for(session, self);
        if matches!(origin, Origin::Rerouted) {
            session.deliver_rerouted(stanza, wait_for).await
        } else {
            session.deliver(stanza, wait_for).await
        }
    }

    /// A stanza that did not reach the session it was queued for: the session ended before writing it (its
    /// connection hands back what is left in its queue, after unbinding it) or could not take it. `rerouted` says
    /// whether the stanza had already been re-routed once.
    ///
    /// IQ requests are answered with `service-unavailable`; presence and IQ responses are dropped. A message is not
    /// answered while it can still arrive (at-least-once): the first time, it is routed again to its own address,
    /// where the message module's rules find the account's other resources or the offline store (the session that
    /// failed is gone or closing, so it is not chosen again); the second time, a chat or normal message goes
    /// straight to the offline store. Errors are never answered (RFC 6120 §8.3.1), so nothing can bounce back and
    /// forth.
    ///
    /// Re-routing waits for room in other sessions' queues, so this must not run in the task of a session that is
    /// still bound (it could wait on its own queue): the connection task of an ended session calls it, and the
    /// router's own delivery only for the session that failed.
    pub async fn undeliverable(self: &Arc<Self>, stanza: Element, rerouted: bool) {
        match StanzaKind::of(&stanza, ns::CLIENT) {
            Some(StanzaKind::Iq) => {
                if IqType::of(&stanza).is_some_and(IqType::is_request) {
                    self.bounce(
                        &stanza,
                        StanzaError::new(StanzaCondition::ServiceUnavailable),
                    )
                    .await;
                }
            }
            Some(StanzaKind::Message) => {
                // The router stamped `from` on everything it queued; without one there is nobody to answer.
                let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
                    return;
                };
                // An archive result or a carbon copy was made for that one session; the message it carries went
                // where it had to go on its own.
                if is_session_copy(&stanza) {
                    return;
                }
                let to = stanza.attr("to").and_then(|t| Jid::new(t).ok());
                if !rerouted {
                    // Boxed: routing can come back here (once, with `rerouted` set).
                    Box::pin(self.route(StanzaKind::Message, stanza, from, to, Origin::Rerouted))
                        .await;
                    return;
                }
                match MessageType::of(&stanza) {
                    MessageType::Chat | MessageType::Normal => {
                        let to = to.unwrap_or_else(|| Jid::from(from.to_bare()));
                        let mut event = StanzaEvent {
                            kind: StanzaKind::Message,
                            stanza,
                            from,
                            to,
                            origin: Origin::Rerouted,
                        };
                        self.offline(&mut event).await;
                    }
                    // As to a resource that is not available (RFC 6121 §8.5.3.2.1).
                    MessageType::Groupchat => {
                        self.bounce(
                            &stanza,
                            StanzaError::new(StanzaCondition::ServiceUnavailable),
                        )
                        .await;
                    }
                    MessageType::Headline | MessageType::Error => {}
                }
            }
            Some(StanzaKind::Presence) | None => {}
        }
    }

    /// A chat or normal message for a local account that none of its resources can take now: the
    /// [`StanzaHook::Offline`] handlers get it (the offline store keeps it). When none takes it, the sender gets
    /// `service-unavailable` (RFC 6121 §8.5.2.1.1: no such account, or nowhere to keep it).
    pub async fn offline(self: &Arc<Self>, event: &mut StanzaEvent) {
        if self
            .hooks
            .run_stanza(self, StanzaHook::Offline, event)
            .await
            == Handled::Pass
        {
            self.bounce(
                &event.stanza,
                StanzaError::new(StanzaCondition::ServiceUnavailable),
            )
            .await;
        }
    }

    /// Sends a stanza the server made (a reply, an error, a notification) to a local JID.
    pub async fn send_local(&self, stanza: Element, origin: &Origin) {
        let Some(to) = stanza.attr("to").and_then(|t| Jid::new(t).ok()) else {
            return;
        };
        if to.domain().as_str() != self.domain {
            return;
        }
        match to.try_as_full() {
            Ok(full) => {
                if let Some(session) = self.sessions.get(full) {
                    let _ = session
                        .deliver(stanza, origin.wait_for(&session, self))
                        .await;
                }
            }
            Err(bare) => {
                let username = bare.node().map_or("", |n| n.as_str());
                for session in self.sessions.sessions_of(username) {
                    let _ = session
                        .deliver(stanza.clone(), origin.wait_for(&session, self))
                        .await;
                }
            }
        }
    }

    /// Answers a stanza with an error, unless it is an error itself (RFC 6120 §8.3.1: never answer an error).
    pub async fn bounce(&self, stanza: &Element, error: StanzaError) {
        if is_error(stanza) || stanza.attr("from").is_none() {
            return;
        }
        self.send_local(error_reply(stanza, &error), &Origin::Local)
            .await;
    }
}

/// Whether a message is a copy made for one session: a XEP-0313 archive result or a XEP-0280 carbon.
fn is_session_copy(message: &Element) -> bool {
    message.children().any(|c| {
        (c.name() == "result" && c.ns() == "urn:xmpp:mam:2")
            || ((c.name() == "sent" || c.name() == "received") && c.ns() == "urn:xmpp:carbons:2")
    })
}
