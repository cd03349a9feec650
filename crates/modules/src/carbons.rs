//! XEP-0280: Message Carbons (`urn:xmpp:carbons:2`), with the XEP-0334 `<no-copy/>` hint, following the rules of
//! Prosody's mod_carbons.
//!
//! A client enables carbons for its session; from then on it gets a copy of the messages its account's other
//! resources send (`<sent/>`, from the `Pre` hook) and of those delivered to the account that it did not get itself
//! (`<received/>`, from the delivery hooks). Copies are wrapped in XEP-0297 `<forwarded/>`, come from the account's
//! bare JID and keep the original's type.
//!
//! Which messages are copied ([`verdict`]): chat; normal with a body; errors coming back from a bare JID (the
//! bounce of a message sent to a bare JID); XEP-0353 call signalling; anything the account's archive stamped
//! (XEP-0359 `<stanza-id by=account>`, so receipts and markers are copied once the archive keeps them). Never: a
//! message with `<private/>` (which is also taken out before delivery, XEP-0280 §8) or `<no-copy/>`, a private
//! message from a MUC occupant, a carbon or an archive result the server sent the account itself.
//!
//! Spoofing (XEP-0280 §11): only the server makes carbons. A client sending a message that carries a
//! `<sent/>`/`<received/>` wrapper gets `not-allowed`; a wrapper in a message from anyone but the account's own
//! bare JID is just content, never taken for a carbon.
//!
//! The hooks run at priority 0: after the archive (10), which stamps its stanza-id first, so copies carry what the
//! stanza holds at that point; before the message module delivers (-1). A re-routed message passed them once
//! already and is not copied again. While no session of the server has carbons enabled, a message costs one
//! atomic load here.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jid::Jid;
use rookery_core::{
    BoxFuture, Handled, IqOutcome, IqRequest, Module, Origin, Registry, Server, Session,
    SessionHandler, SessionHook, StanzaEvent, StanzaHandler, StanzaHook, SyncIq, Target,
};
use rookery_proto::stanza::MessageType;
use rookery_proto::{IqType, StanzaCondition, StanzaError, StanzaKind};
use rookery_xml::{Element, ns};

pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
/// Prosody's marker that the server applies the XEP-0280 rules of version 0.13 and later (MUC private messages).
pub const NS_CARBONS_RULES: &str = "urn:xmpp:carbons:rules:0";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_HINTS: &str = "urn:xmpp:hints";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_STANZA_ID: &str = "urn:xmpp:sid:0";
const NS_JINGLE_MESSAGE: [&str; 2] = ["urn:xmpp:jingle-message:0", "urn:xmpp:jingle-message:1"];

/// After the archive (10), before the message module's delivery (-1).
const PRIORITY: i32 = 0;

/// The module's shared state, kept in the server's extensions so that [`set_enabled`] reaches it.
#[derive(Default)]
pub struct CarbonsState {
    inner: Arc<EnabledSessions>,
}

/// How many sessions of the server have carbons enabled. Changed together with each session's flag, under the
/// session's state lock.
#[derive(Default)]
struct EnabledSessions(AtomicUsize);

impl EnabledSessions {
    fn none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// Turns carbons on or off for a session: what the enable/disable IQs do, and what SASL2/Bind2's inline enable
/// calls. The one place a session's carbons flag changes. Does nothing when the carbons module is not loaded.
pub fn set_enabled(server: &Server, session: &Session, enabled: bool) {
    let Some(state) = server.extensions.get::<CarbonsState>() else {
        return;
    };
    set_flag(&state.inner, session, enabled);
}

fn set_flag(count: &EnabledSessions, session: &Session, enabled: bool) {
    let mut state = session.state();
    if state.carbons == enabled {
        return;
    }
    state.carbons = enabled;
    if enabled {
        count.0.fetch_add(1, Ordering::Relaxed);
    } else {
        count.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Carbons;

impl Module for Carbons {
    fn name(&self) -> &'static str {
        "carbons"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let count = Arc::clone(&registry.extensions.get_or_default::<CarbonsState>().inner);
        for (name, enabled) in [("enable", true), ("disable", false)] {
            let count = Arc::clone(&count);
            let toggle = SyncIq(move |req: &IqRequest<'_>| match req.origin {
                // Multiple enables or disables in a row are fine (XEP-0280 §9.1).
                Origin::Client(session) => {
                    set_flag(&count, session, enabled);
                    IqOutcome::Result(None)
                }
                // Only a client of this server has carbons (XEP-0280 §4.1).
                _ => IqOutcome::Error(StanzaError::new(StanzaCondition::NotAllowed)),
            });
            registry.hooks.on_iq(
                IqType::Set,
                Target::Own,
                NS_CARBONS,
                name,
                PRIORITY,
                Arc::new(toggle),
            );
        }
        registry.hooks.on_stanza(
            StanzaHook::Pre(StanzaKind::Message),
            PRIORITY,
            Arc::new(Sent(Arc::clone(&count))),
        );
        for target in [Target::Full, Target::Bare, Target::Own] {
            registry.hooks.on_stanza(
                StanzaHook::Deliver(StanzaKind::Message, target),
                PRIORITY,
                Arc::new(Received(Arc::clone(&count))),
            );
        }
        registry.hooks.on_session(
            SessionHook::Ended,
            PRIORITY,
            Arc::new(Ended(Arc::clone(&count))),
        );
        registry.disco.add_feature(NS_CARBONS);
        registry.disco.add_feature(NS_CARBONS_RULES);
        registry
            .extensions
            .get_or_default::<rookery_core::Bind2Features>()
            .add(Arc::new(InlineEnable(count)));
    }
}

/// Which way a message passes the account whose resources may get copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by one of the account's clients.
    Sent,
    /// About to be delivered to the account.
    Received,
}

impl Direction {
    fn wrapper(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Received => "received",
        }
    }
}

/// What to do with a message for carbons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Copy it to the account's other carbon-enabled resources.
    Copy,
    /// Never copied: it has `<private/>`, which is taken out before delivery to the recipient.
    Private,
    /// Not copied.
    Skip,
}

/// Decides whether `message` is copied to `account`'s resources (see the module documentation for the rules).
/// `account` is the account's bare JID; `to` is where the message is going.
pub fn verdict(message: &Element, direction: Direction, account: &str, to: &Jid) -> Verdict {
    if message.has_child("private", NS_CARBONS) {
        return Verdict::Private;
    }
    if message.has_child("no-copy", NS_HINTS) {
        return Verdict::Skip;
    }
    // What the server itself sent the account (a carbon, an archive result) is not copied again. The same
    // elements in a message from anyone else are that sender's content, not a carbon.
    let from_account = message.attr("from") == Some(account);
    if from_account
        && (message.has_child("sent", NS_CARBONS)
            || message.has_child("received", NS_CARBONS)
            || message.has_child("result", NS_MAM))
    {
        return Verdict::Skip;
    }
    // A MUC occupant's private message reaches a full JID; the other resources are not in the room
    // (XEP-0280 §6). One sent by the account's own client is copied, as Prosody does.
    if direction == Direction::Received
        && to.resource().is_some()
        && message.has_child("x", NS_MUC_USER)
    {
        return Verdict::Skip;
    }
    match MessageType::of(message) {
        MessageType::Chat => return Verdict::Copy,
        MessageType::Normal if message.has_child("body", ns::CLIENT) => return Verdict::Copy,
        // The bounce of a message sent to a bare JID comes back from that bare JID.
        MessageType::Error
            if direction == Direction::Received
                && message
                    .attr("from")
                    .and_then(|f| Jid::new(f).ok())
                    .is_some_and(|f| f.resource().is_none()) =>
        {
            return Verdict::Copy;
        }
        _ => {}
    }
    let copied_payload = message.children().any(|child| {
        NS_JINGLE_MESSAGE.contains(&child.ns())
            || (child.is("stanza-id", NS_STANZA_ID) && child.attr("by") == Some(account))
    });
    if copied_payload {
        Verdict::Copy
    } else {
        Verdict::Skip
    }
}

/// Whether a message from a client carries a carbon wrapper, which only the server may make.
fn carries_carbon_wrapper(message: &Element) -> bool {
    message
        .children()
        .any(|c| c.ns() == NS_CARBONS && matches!(c.name(), "sent" | "received"))
}

/// The carbon of `message` for `account`'s resources (XEP-0297 forwarded), addressed when it is delivered.
pub fn wrap(message: &Element, direction: Direction, account: &str) -> Element {
    let mut copy = message.clone();
    copy.set_namespace(ns::CLIENT);
    Element::new("message", ns::CLIENT)
        .with_attr("from", account)
        .with_attr("type", message.attr("type").unwrap_or("normal"))
        .with_child(
            Element::new(direction.wrapper(), NS_CARBONS)
                .with_child(Element::new("forwarded", NS_FORWARD).with_child(copy)),
        )
}

/// Sends the copy of `message` to each of `sessions` that has carbons enabled and `skip` does not exclude.
async fn send_copies(
    server: &Server,
    sessions: Vec<Arc<Session>>,
    skip: impl Fn(&Session) -> bool,
    message: &Element,
    direction: Direction,
    account: &str,
    origin: &Origin,
) {
    let mut carbon: Option<Element> = None;
    for session in sessions {
        if !session.state().carbons || skip(&session) {
            continue;
        }
        let mut copy = carbon
            .get_or_insert_with(|| wrap(message, direction, account))
            .clone();
        copy.set_attr("to", session.jid.as_str());
        // A copy that cannot be queued is dropped: the original went its way, and the archive has it.
        let _ = server.deliver_to_session(&session, copy, origin).await;
    }
}

/// `<sent/>` copies of what a client sends, to its account's other carbon-enabled resources (XEP-0280 §7).
struct Sent(Arc<EnabledSessions>);

impl StanzaHandler for Sent {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        let Origin::Client(sender) = &event.origin else {
            return Box::pin(std::future::ready(Handled::Pass));
        };
        let spoofed = carries_carbon_wrapper(&event.stanza);
        // The common case, decided without building the rest of this future.
        if !spoofed && self.0.none() {
            return Box::pin(std::future::ready(Handled::Pass));
        }
        let sender = Arc::clone(sender);
        Box::pin(async move {
            if spoofed {
                let error = StanzaError::with_text(
                    StanzaCondition::NotAllowed,
                    "only the server sends carbon copies",
                );
                server.bounce(&event.stanza, error).await;
                return Handled::Yes;
            }
            let account = sender.bare_jid().to_string();
            if verdict(&event.stanza, Direction::Sent, &account, &event.to) != Verdict::Copy {
                return Handled::Pass;
            }
            // A message without `to` is for the sender's own account: the copy says so.
            let message = if event.stanza.attr("to").is_none() {
                Cow::Owned(event.stanza.clone().with_attr("to", account.as_str()))
            } else {
                Cow::Borrowed(&event.stanza)
            };
            let sessions = server.sessions.sessions_of(sender.username());
            send_copies(
                server,
                sessions,
                |s| s.id == sender.id,
                &message,
                Direction::Sent,
                &account,
                &event.origin,
            )
            .await;
            Handled::Pass
        })
    }
}

/// `<received/>` copies of what is delivered to an account, to its carbon-enabled resources that do not get the
/// message itself (XEP-0280 §6).
struct Received(Arc<EnabledSessions>);

impl StanzaHandler for Received {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        // A re-routed message was copied the first time.
        if matches!(event.origin, Origin::Rerouted) {
            return Box::pin(std::future::ready(Handled::Pass));
        }
        // The common case, decided without building the rest of this future.
        if self.0.none() {
            // Nobody to copy to; `<private/>` still goes (XEP-0280 §8).
            event.stanza.remove_child("private", NS_CARBONS);
            return Box::pin(std::future::ready(Handled::Pass));
        }
        Box::pin(async move {
            let Some(username) = event.to.node().map(|n| n.as_str().to_owned()) else {
                return Handled::Pass;
            };
            let account = format!("{username}@{}", server.domain);
            match verdict(&event.stanza, Direction::Received, &account, &event.to) {
                Verdict::Copy => {}
                Verdict::Private => {
                    // Not for the recipient's client (XEP-0280 §8).
                    event.stanza.remove_child("private", NS_CARBONS);
                    return Handled::Pass;
                }
                Verdict::Skip => return Handled::Pass,
            }
            let sessions = server.sessions.sessions_of(&username);
            // Whoever gets the message itself gets no copy: the bound resource it is addressed to, or else the
            // top resources the message module gives a message for the account to (Prosody's rule).
            let target = event
                .to
                .try_as_full()
                .ok()
                .and_then(|full| sessions.iter().find(|s| &s.jid == full))
                .map(|s| s.id);
            let top: Vec<u64> = match target {
                Some(_) => Vec::new(),
                None => crate::message::top_resources(server, &username)
                    .iter()
                    .map(|s| s.id)
                    .collect(),
            };
            let skip = |s: &Session| Some(s.id) == target || top.contains(&s.id);
            send_copies(
                server,
                sessions,
                skip,
                &event.stanza,
                Direction::Received,
                &account,
                &event.origin,
            )
            .await;
            Handled::Pass
        })
    }
}

/// A session that ends no longer counts as carbon-enabled.
struct Ended(Arc<EnabledSessions>);

impl SessionHandler for Ended {
    fn handle<'a>(
        &'a self,
        _server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()> {
        set_flag(&self.0, session, false);
        Box::pin(std::future::ready(()))
    }
}

/// XEP-0280 inside Bind2 (XEP-0386): `<enable xmlns='urn:xmpp:carbons:2'/>` among the bind request's children
/// turns carbons on for the session just bound, with no IQ round-trip. Nothing goes into `<bound/>`.
struct InlineEnable(Arc<EnabledSessions>);

impl rookery_core::Bind2Inline for InlineEnable {
    fn namespace(&self) -> &'static str {
        NS_CARBONS
    }

    fn enable<'a>(
        &'a self,
        _server: &'a Arc<Server>,
        session: &'a Arc<Session>,
        request: Element,
    ) -> BoxFuture<'a, Option<Element>> {
        if request.name() == "enable" {
            set_flag(&self.0, session, true);
        }
        Box::pin(std::future::ready(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice@example.com";

    fn message(kind: Option<&str>, from: &str) -> Element {
        let mut m = Element::new("message", ns::CLIENT).with_attr("from", from);
        if let Some(kind) = kind {
            m.set_attr("type", kind);
        }
        m
    }

    fn body(text: &str) -> Element {
        Element::new("body", ns::CLIENT).with_text(text)
    }

    fn to_full() -> Jid {
        Jid::new("alice@example.com/phone").unwrap()
    }

    fn received(m: &Element) -> Verdict {
        verdict(m, Direction::Received, ALICE, &to_full())
    }

    #[test]
    fn chat_and_normal_with_a_body_are_copied() {
        let bob = "bob@example.com/x";
        assert_eq!(received(&message(Some("chat"), bob)), Verdict::Copy);
        assert_eq!(
            received(&message(None, bob).with_child(body("hi"))),
            Verdict::Copy
        );
        assert_eq!(received(&message(Some("normal"), bob)), Verdict::Skip);
        assert_eq!(
            received(&message(Some("headline"), bob).with_child(body("news"))),
            Verdict::Skip
        );
        assert_eq!(
            received(&message(Some("groupchat"), bob).with_child(body("room"))),
            Verdict::Skip
        );
    }

    #[test]
    fn only_bounces_from_a_bare_jid_are_copied() {
        assert_eq!(
            received(&message(Some("error"), "bob@example.com")),
            Verdict::Copy
        );
        assert_eq!(
            received(&message(Some("error"), "bob@example.com/x")),
            Verdict::Skip
        );
        // A client's own error is not a bounce.
        let sent = verdict(
            &message(Some("error"), "alice@example.com/phone"),
            Direction::Sent,
            ALICE,
            &Jid::new("bob@example.com").unwrap(),
        );
        assert_eq!(sent, Verdict::Skip);
    }

    #[test]
    fn archived_and_call_messages_are_copied() {
        let marker = message(None, "bob@example.com/x").with_child(
            Element::new("stanza-id", NS_STANZA_ID)
                .with_attr("by", ALICE)
                .with_attr("id", "1"),
        );
        assert_eq!(received(&marker), Verdict::Copy);
        let someone_elses = message(None, "bob@example.com/x").with_child(
            Element::new("stanza-id", NS_STANZA_ID)
                .with_attr("by", "bob@example.com")
                .with_attr("id", "1"),
        );
        assert_eq!(received(&someone_elses), Verdict::Skip);
        let propose = message(None, "bob@example.com/x")
            .with_child(Element::new("propose", "urn:xmpp:jingle-message:0"));
        assert_eq!(received(&propose), Verdict::Copy);
    }

    #[test]
    fn private_and_no_copy_are_not_copied() {
        let private = message(Some("chat"), "bob@example.com/x")
            .with_child(Element::new("private", NS_CARBONS));
        assert_eq!(received(&private), Verdict::Private);
        let no_copy = message(Some("chat"), "bob@example.com/x")
            .with_child(Element::new("no-copy", NS_HINTS));
        assert_eq!(received(&no_copy), Verdict::Skip);
    }

    #[test]
    fn muc_private_messages_are_copied_only_when_sent() {
        let pm = message(Some("chat"), "room@groups.example.com/nick")
            .with_child(Element::new("x", NS_MUC_USER));
        assert_eq!(received(&pm), Verdict::Skip);
        // To the bare JID it is not a private message (a mediated invitation, say).
        let bare = Jid::new(ALICE).unwrap();
        assert_eq!(
            verdict(&pm, Direction::Received, ALICE, &bare),
            Verdict::Copy
        );
        let sent = message(Some("chat"), "alice@example.com/phone")
            .with_child(Element::new("x", NS_MUC_USER));
        let to = Jid::new("room@groups.example.com/nick").unwrap();
        assert_eq!(verdict(&sent, Direction::Sent, ALICE, &to), Verdict::Copy);
    }

    #[test]
    fn carbons_are_recognised_only_from_the_account_itself() {
        let wrapper = || Element::new("received", NS_CARBONS);
        let own = message(Some("chat"), ALICE).with_child(wrapper());
        assert_eq!(received(&own), Verdict::Skip);
        let mam = message(None, ALICE)
            .with_child(Element::new("result", NS_MAM))
            .with_child(body("archived"));
        assert_eq!(received(&mam), Verdict::Skip);
        // From someone else it is just a chat message.
        let spoofed = message(Some("chat"), "mallory@example.com").with_child(wrapper());
        assert_eq!(received(&spoofed), Verdict::Copy);
        assert!(carries_carbon_wrapper(&spoofed));
        assert!(!carries_carbon_wrapper(&message(Some("chat"), ALICE)));
    }

    #[test]
    fn the_count_follows_the_flags() {
        let sessions = rookery_core::SessionRegistry::new(1024);
        let alice = jid::BareJid::new(ALICE).unwrap();
        let (phone, _queue) = sessions.bind(&alice, Some("phone"), 10).unwrap();
        let (laptop, _queue2) = sessions.bind(&alice, Some("laptop"), 10).unwrap();
        let count = EnabledSessions::default();
        assert!(count.none());
        // Enabling twice counts once; disabling what is not enabled changes nothing.
        set_flag(&count, &phone, true);
        set_flag(&count, &phone, true);
        set_flag(&count, &laptop, false);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(phone.state().carbons);
        set_flag(&count, &laptop, true);
        set_flag(&count, &phone, false);
        set_flag(&count, &phone, false);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        set_flag(&count, &laptop, false);
        assert!(count.none());
    }

    #[test]
    fn copies_are_wrapped_from_the_bare_jid_with_the_same_type() {
        let original = message(Some("chat"), "bob@example.com/x")
            .with_attr("to", "alice@example.com/phone")
            .with_child(body("hi"));
        let carbon = wrap(&original, Direction::Received, ALICE);
        assert_eq!(carbon.attr("from"), Some(ALICE));
        assert_eq!(carbon.attr("type"), Some("chat"));
        let forwarded = carbon
            .get_child("received", NS_CARBONS)
            .and_then(|r| r.get_child("forwarded", NS_FORWARD))
            .and_then(|f| f.get_child("message", ns::CLIENT))
            .unwrap();
        assert_eq!(forwarded, &original);
        let normal = wrap(&message(None, "bob@example.com/x"), Direction::Sent, ALICE);
        assert_eq!(normal.attr("type"), Some("normal"));
        assert!(normal.has_child("sent", NS_CARBONS));
    }
}
