//! Typed hooks: where modules plug into stanza processing.
//!
//! The keys follow Prosody's event names so that a Prosody module maps onto a Rookery module directly:
//! `iq/host/urn:xmpp:ping:ping` is `on_iq(Get, Host, "urn:xmpp:ping", "ping", …)`, `message/bare` is
//! [`StanzaHook::Deliver`]`(Message, Bare)`, `pre-message/...` is [`StanzaHook::Pre`]`(Message)`. Handlers of one
//! hook run in priority order, highest first, until one says it handled the stanza.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use jid::Jid;
use rookery_proto::{IqType, StanzaError, StanzaKind};
use rookery_xml::Element;

use crate::Server;
use crate::router::Origin;
use crate::session::Session;

/// A boxed future, the return type of hook handlers.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a stanza is addressed, relative to the local server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The server's own domain.
    Host,
    /// The sender's own account (no `to`, or `to` its own bare JID): the server answers on the account's behalf
    /// (RFC 6120 §10.3.3). Prosody's `iq/self`.
    Own,
    /// Another local account's bare JID.
    Bare,
    /// A local full JID.
    Full,
}

/// What a handler did with a stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The stanza is dealt with; no other handler and no default behaviour runs.
    Yes,
    /// Not for this handler: the next one (or the default behaviour) gets it.
    Pass,
}

/// An IQ request addressed to the server or to an account it answers for.
pub struct IqRequest<'a> {
    pub server: &'a Arc<Server>,
    /// The stanza, with `from` stamped by the server.
    pub stanza: &'a Element,
    pub from: &'a Jid,
    pub to: &'a Jid,
    pub origin: &'a Origin,
}

impl IqRequest<'_> {
    /// The request's payload (its first child element).
    pub fn payload(&self) -> Option<&Element> {
        self.stanza.first_child()
    }
}

/// The answer of an IQ handler.
#[derive(Debug)]
pub enum IqOutcome {
    /// A `type='result'` reply with this payload (or none).
    Result(Option<Element>),
    /// A `type='error'` reply.
    Error(StanzaError),
    /// The handler has sent its reply itself, because something had to follow the reply (pushes to the
    /// account's sessions, closing the session).
    Answered,
    /// Not handled here.
    Pass,
}

/// Handles IQ requests of one type and payload.
pub trait IqHandler: Send + Sync + 'static {
    fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome>;
}

/// An IQ handler that needs no waiting: a plain function.
pub struct SyncIq<F>(pub F);

impl<F> IqHandler for SyncIq<F>
where
    F: Fn(&IqRequest<'_>) -> IqOutcome + Send + Sync + 'static,
{
    fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome> {
        let outcome = (self.0)(&request);
        Box::pin(std::future::ready(outcome))
    }
}

/// A message or presence on its way.
pub struct StanzaEvent {
    pub kind: StanzaKind,
    /// The stanza, with `from` stamped. A handler that takes it over may replace it.
    pub stanza: Element,
    pub from: Jid,
    pub to: Jid,
    pub origin: Origin,
}

/// Handles messages or presences at one hook.
pub trait StanzaHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled>;
}

/// The hook points for messages and presences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StanzaHook {
    /// Every stanza of this kind a local client sends, before it is routed (Prosody's `pre-message` etc.).
    Pre(StanzaKind),
    /// Delivery to a local target (Prosody's `message/bare`, `presence/full`, ...). For IQs only `Bare` and
    /// `Full` are run, before the IQ handlers and the delivery to the client (Prosody's `iq/bare`, `iq/full`).
    Deliver(StanzaKind, Target),
    /// A chat or normal message for a local account that no resource can take now (Prosody's
    /// `message/offline/handle`): the offline store keeps it; push notifications hook here too. The event's `to`
    /// is the account's JID (bare, or the full JID the message was sent to). When no handler takes it, the sender
    /// gets `service-unavailable` (see `Server::offline`).
    Offline,
}

/// Moments in a session's life that modules act on (Prosody's `resource-bind`, `pre-resource-unbind` and the
/// initial presence of mod_presence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionHook {
    /// A resource was bound; the session can receive stanzas.
    Started,
    /// The session sent its initial presence (fired by the presence module, after it has broadcast it): offline
    /// messages and pending subscription requests are delivered now.
    Available,
    /// The connection ended and the session is already unbound: nothing can be delivered to it any more.
    Ended,
}

/// Acts on a session event. Every handler of the hook runs, in priority order.
pub trait SessionHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()>;
}

struct Prioritised<H: ?Sized> {
    priority: i32,
    handler: Arc<H>,
}

/// IQ handlers by payload namespace, then payload name: nested so that a look-up borrows the payload's strings
/// instead of building a key for every IQ.
type IqHandlersByPayload = HashMap<String, HashMap<String, Vec<Prioritised<dyn IqHandler>>>>;

/// Every hook of the server. Built once at start-up by the modules, read-only afterwards.
#[derive(Default)]
pub struct Hooks {
    iq: HashMap<(IqType, Target), IqHandlersByPayload>,
    stanza: HashMap<StanzaHook, Vec<Prioritised<dyn StanzaHandler>>>,
    session: HashMap<SessionHook, Vec<Prioritised<dyn SessionHandler>>>,
}

impl Hooks {
    /// Registers an IQ handler for `iq_type` requests to `target` whose payload is `<name xmlns=ns>` (Prosody's
    /// `iq-get/host/urn:xmpp:ping:ping` is `Get, Host, "urn:xmpp:ping", "ping"`).
    pub fn on_iq(
        &mut self,
        iq_type: IqType,
        target: Target,
        ns: &str,
        name: &str,
        priority: i32,
        handler: Arc<dyn IqHandler>,
    ) {
        let list = self
            .iq
            .entry((iq_type, target))
            .or_default()
            .entry(ns.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default();
        list.push(Prioritised { priority, handler });
        list.sort_by_key(|p| std::cmp::Reverse(p.priority));
    }

    /// Registers a message or presence handler.
    pub fn on_stanza(&mut self, hook: StanzaHook, priority: i32, handler: Arc<dyn StanzaHandler>) {
        let list = self.stanza.entry(hook).or_default();
        list.push(Prioritised { priority, handler });
        list.sort_by_key(|p| std::cmp::Reverse(p.priority));
    }

    /// Registers a session-event handler.
    pub fn on_session(
        &mut self,
        hook: SessionHook,
        priority: i32,
        handler: Arc<dyn SessionHandler>,
    ) {
        let list = self.session.entry(hook).or_default();
        list.push(Prioritised { priority, handler });
        list.sort_by_key(|p| std::cmp::Reverse(p.priority));
    }

    /// Runs every handler of a session hook, highest priority first.
    pub async fn run_session(
        &self,
        server: &Arc<Server>,
        hook: SessionHook,
        session: &Arc<Session>,
    ) {
        let Some(list) = self.session.get(&hook) else {
            return;
        };
        for p in list {
            p.handler.handle(server, session).await;
        }
    }

    /// Whether anything listens at a stanza hook; lets the router skip building events on its fast path.
    pub fn has_stanza_handlers(&self, hook: StanzaHook) -> bool {
        self.stanza.get(&hook).is_some_and(|l| !l.is_empty())
    }

    /// Runs the IQ handlers for this type, target and payload until one answers.
    pub(crate) async fn run_iq(
        &self,
        iq_type: IqType,
        target: Target,
        ns: &str,
        name: &str,
        request: IqRequest<'_>,
    ) -> IqOutcome {
        let list = self
            .iq
            .get(&(iq_type, target))
            .and_then(|by_ns| by_ns.get(ns))
            .and_then(|by_name| by_name.get(name));
        let Some(list) = list else {
            return IqOutcome::Pass;
        };
        for p in list {
            let req = IqRequest {
                server: request.server,
                stanza: request.stanza,
                from: request.from,
                to: request.to,
                origin: request.origin,
            };
            match p.handler.handle(req).await {
                IqOutcome::Pass => continue,
                outcome => return outcome,
            }
        }
        IqOutcome::Pass
    }

    /// Runs the handlers of a stanza hook until one handles the event.
    pub(crate) async fn run_stanza(
        &self,
        server: &Arc<Server>,
        hook: StanzaHook,
        event: &mut StanzaEvent,
    ) -> Handled {
        let Some(list) = self.stanza.get(&hook) else {
            return Handled::Pass;
        };
        for p in list {
            if p.handler.handle(server, event).await == Handled::Yes {
                return Handled::Yes;
            }
        }
        Handled::Pass
    }
}
