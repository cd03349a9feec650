//! XEP-0352: Client State Indication, as Prosody's mod_csi_simple does it.
//!
//! A client tells the server with `<inactive/>` that nobody is looking at it (a phone in a pocket). Until it says
//! `<active/>` again, stanzas that can wait (presence updates, chat states, receipts and markers without a body,
//! headlines such as PEP notifications) are held back instead of waking the phone's radio for each one. Everything
//! held is written, in order, as soon as something important comes (a message with a body, an error, a call, an
//! IQ, ...), the client becomes active, or the hold is full.
//!
//! [`CsiQueue`] is the connection's side of this, without I/O: the connection offers each stanza on its way out
//! and writes what the queue gives back. What is still held when the connection ends is handed back
//! ([`CsiQueue::take_held`]) to be treated like the rest of the session's queue, never dropped.

use std::mem;

use jid::BareJid;
use rookery_core::session::estimated_size;
use rookery_proto::stanza::MessageType;
use rookery_xml::{Element, ns};

pub const NS_CSI: &str = "urn:xmpp:csi:0";
/// At most this many stanzas are held: Snikket's `csi_queue_size`, Prosody's default.
pub const HOLD_LIMIT: usize = 256;

const NS_CARBONS: &str = "urn:xmpp:carbons:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_EME: &str = "urn:xmpp:eme:0";
const NS_CONFERENCE: &str = "jabber:x:conference";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_JINGLE_MESSAGE: [&str; 2] = ["urn:xmpp:jingle-message:0", "urn:xmpp:jingle-message:1"];

/// The `<csi/>` stream feature, offered after login.
pub fn stream_feature() -> Element {
    Element::new("csi", NS_CSI)
}

/// Whether a top-level element is a CSI state change the connection handles itself.
pub fn is_state_change(el: &Element) -> bool {
    el.ns() == NS_CSI && matches!(el.name(), "active" | "inactive")
}

/// A stanza held back while the client is inactive.
#[derive(Debug)]
pub struct Held {
    pub stanza: Element,
    /// Passed on from the session's queue (see `rookery_core::Queued::rerouted`).
    pub rerouted: bool,
}

/// The stanzas a connection holds back while its client is inactive.
#[derive(Debug)]
pub struct CsiQueue {
    /// While the client is inactive: its account's bare JID, to recognise the carbons the server sends it.
    inactive_account: Option<String>,
    held: Vec<Held>,
    held_bytes: usize,
    /// The most the held stanzas may take (estimated as the session queue estimates them).
    byte_limit: usize,
}

impl CsiQueue {
    /// A queue for an active client, holding at most [`HOLD_LIMIT`] stanzas and `byte_limit` bytes once it is
    /// inactive.
    pub fn new(byte_limit: usize) -> Self {
        Self {
            inactive_account: None,
            held: Vec::new(),
            held_bytes: 0,
            byte_limit,
        }
    }

    /// Whether the client said it is inactive.
    pub fn is_inactive(&self) -> bool {
        self.inactive_account.is_some()
    }

    /// Handles `<active/>` or `<inactive/>` from the client of `account`: becoming active writes out everything
    /// held.
    pub fn state_change(&mut self, nonza: &Element, account: &BareJid, write: impl FnMut(Held)) {
        if nonza.name() == "inactive" {
            self.inactive_account = Some(account.to_string());
        } else {
            self.inactive_account = None;
            self.flush(write);
        }
    }

    /// Takes a stanza on its way to the client: writes it at once (after everything held) unless the client is
    /// inactive and it can wait, in which case it is held.
    pub fn offer(&mut self, stanza: Element, rerouted: bool, mut write: impl FnMut(Held)) {
        let Some(account) = &self.inactive_account else {
            write(Held { stanza, rerouted });
            return;
        };
        let size = estimated_size(&stanza);
        let full =
            self.held.len() >= HOLD_LIMIT || self.held_bytes.saturating_add(size) > self.byte_limit;
        if full || is_important(&stanza, account) {
            self.flush(&mut write);
            write(Held { stanza, rerouted });
        } else {
            self.held_bytes += size;
            self.held.push(Held { stanza, rerouted });
        }
    }

    /// Everything still held, oldest first: for a connection that ended before writing it.
    pub fn take_held(&mut self) -> Vec<Held> {
        self.held_bytes = 0;
        mem::take(&mut self.held)
    }

    /// Writes everything held, oldest first.
    pub fn flush(&mut self, mut write: impl FnMut(Held)) {
        for held in self.take_held() {
            write(held);
        }
    }
}

/// Whether a stanza for an inactive client must go out now (Prosody's mod_csi_simple rules): everything but
/// presence updates, headlines and messages with nothing a user would be told about. `account` is the client's
/// bare JID: only what comes from it can be a carbon.
pub fn is_important(stanza: &Element, account: &str) -> bool {
    if stanza.ns() != ns::CLIENT {
        // Not a stanza (stream errors, stream management): never held.
        return true;
    }
    match stanza.name() {
        // Available, unavailable and error presence can wait; subscription requests and answers cannot.
        "presence" => !matches!(stanza.attr("type"), None | Some("unavailable" | "error")),
        "message" => is_important_message(stanza, account),
        _ => true,
    }
}

fn is_important_message(message: &Element, account: &str) -> bool {
    match MessageType::of(message) {
        // Ephemeral by definition: PEP notifications and the like.
        MessageType::Headline => return false,
        // A delivery failure the user should hear about.
        MessageType::Error => return true,
        _ => {}
    }
    let mut content = message;
    if message.attr("from") == Some(account) {
        // What the client's other resources sent is the user's own doing: not waiting is what they expect. A
        // received carbon is judged by the message inside it.
        if message.has_child("sent", NS_CARBONS) {
            return true;
        }
        if let Some(inner) = message
            .get_child("received", NS_CARBONS)
            .and_then(|r| r.get_child("forwarded", NS_FORWARD))
            .and_then(|f| f.get_child("message", ns::CLIENT))
        {
            content = inner;
        }
    }
    content.children().any(|child| {
        let child_ns = child.ns();
        (child_ns == ns::CLIENT && matches!(child.name(), "body" | "subject"))
            // Encrypted: nobody can tell what is inside, so it is treated as important.
            || child.is("encryption", NS_EME)
            || child.is("x", NS_CONFERENCE)
            || (child.is("x", NS_MUC_USER) && child.has_child("invite", NS_MUC_USER))
            // A call (XEP-0353).
            || NS_JINGLE_MESSAGE.contains(&child_ns)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "alice@example.com";

    fn bare() -> BareJid {
        BareJid::new(ACCOUNT).unwrap()
    }

    fn presence(kind: Option<&str>) -> Element {
        let mut p = Element::new("presence", ns::CLIENT).with_attr("from", "bob@example.com/x");
        if let Some(kind) = kind {
            p.set_attr("type", kind);
        }
        p
    }

    fn message_with(child: Element) -> Element {
        Element::new("message", ns::CLIENT)
            .with_attr("from", "bob@example.com/x")
            .with_attr("type", "chat")
            .with_child(child)
    }

    fn chat_state() -> Element {
        message_with(Element::new(
            "composing",
            "http://jabber.org/protocol/chatstates",
        ))
    }

    fn body(text: &str) -> Element {
        message_with(Element::new("body", ns::CLIENT).with_text(text))
    }

    fn important(stanza: &Element) -> bool {
        is_important(stanza, ACCOUNT)
    }

    #[test]
    fn presence_updates_wait_subscriptions_do_not() {
        assert!(!important(&presence(None)));
        assert!(!important(&presence(Some("unavailable"))));
        assert!(!important(&presence(Some("error"))));
        assert!(important(&presence(Some("subscribe"))));
        assert!(important(&presence(Some("subscribed"))));
    }

    #[test]
    fn messages_matter_when_a_user_would_be_told() {
        assert!(important(&body("hi")));
        assert!(!important(&chat_state()));
        let receipt = message_with(Element::new("received", "urn:xmpp:receipts"));
        assert!(!important(&receipt));
        let marker = message_with(Element::new("displayed", "urn:xmpp:chat-markers:0"));
        assert!(!important(&marker));
        assert!(important(&message_with(Element::new(
            "subject",
            ns::CLIENT
        ))));
        assert!(important(&message_with(Element::new("encryption", NS_EME))));
        assert!(important(&message_with(Element::new(
            "propose",
            "urn:xmpp:jingle-message:0"
        ))));
        assert!(important(&message_with(Element::new("x", NS_CONFERENCE))));
        let mediated =
            Element::new("x", NS_MUC_USER).with_child(Element::new("invite", NS_MUC_USER));
        assert!(important(&message_with(mediated)));
        let mut headline = body("news");
        headline.set_attr("type", "headline");
        assert!(!important(&headline));
        let mut error = chat_state();
        error.set_attr("type", "error");
        assert!(important(&error));
        assert!(important(&Element::new("iq", ns::CLIENT)));
        assert!(important(&Element::new("a", "urn:xmpp:sm:3")));
    }

    #[test]
    fn carbons_count_only_from_the_account() {
        let carbon = |wrapper: &str, inner: Element, from: &str| {
            Element::new("message", ns::CLIENT)
                .with_attr("from", from)
                .with_child(
                    Element::new(wrapper, NS_CARBONS)
                        .with_child(Element::new("forwarded", NS_FORWARD).with_child(inner)),
                )
        };
        assert!(important(&carbon("sent", chat_state(), ACCOUNT)));
        assert!(important(&carbon("received", body("hi"), ACCOUNT)));
        assert!(!important(&carbon("received", chat_state(), ACCOUNT)));
        // From anyone else a wrapper means nothing.
        assert!(!important(&carbon(
            "sent",
            chat_state(),
            "mallory@example.com"
        )));
        assert!(!important(&carbon(
            "received",
            body("hi"),
            "mallory@example.com"
        )));
    }

    /// Offers each stanza and returns what was written.
    fn offer_all(queue: &mut CsiQueue, stanzas: Vec<Element>) -> Vec<Element> {
        let mut written = Vec::new();
        for stanza in stanzas {
            queue.offer(stanza, false, |s| written.push(s.stanza));
        }
        written
    }

    fn inactive(queue: &mut CsiQueue) {
        let nonza = Element::new("inactive", NS_CSI);
        queue.state_change(&nonza, &bare(), |_| panic!("nothing to write"));
    }

    #[test]
    fn an_active_client_gets_everything_at_once() {
        let mut queue = CsiQueue::new(1 << 20);
        let written = offer_all(&mut queue, vec![presence(None), chat_state()]);
        assert_eq!(written, vec![presence(None), chat_state()]);
    }

    #[test]
    fn held_stanzas_go_out_in_order_before_an_important_one() {
        let mut queue = CsiQueue::new(1 << 20);
        inactive(&mut queue);
        assert!(queue.is_inactive());
        let written = offer_all(&mut queue, vec![presence(None), chat_state()]);
        assert!(written.is_empty());
        let written = offer_all(&mut queue, vec![body("wake up")]);
        assert_eq!(written, vec![presence(None), chat_state(), body("wake up")]);
        // Still inactive: the next update waits again.
        assert!(offer_all(&mut queue, vec![presence(None)]).is_empty());
    }

    #[test]
    fn becoming_active_flushes() {
        let mut queue = CsiQueue::new(1 << 20);
        inactive(&mut queue);
        offer_all(&mut queue, vec![presence(None), chat_state()]);
        let mut written = Vec::new();
        queue.state_change(&Element::new("active", NS_CSI), &bare(), |s| {
            written.push(s.stanza);
        });
        assert_eq!(written, vec![presence(None), chat_state()]);
        assert!(!queue.is_inactive());
        assert_eq!(offer_all(&mut queue, vec![presence(None)]).len(), 1);
    }

    #[test]
    fn the_hold_is_bounded_by_count() {
        let mut queue = CsiQueue::new(usize::MAX);
        inactive(&mut queue);
        let updates: Vec<_> = (0..HOLD_LIMIT)
            .map(|i| presence(None).with_attr("id", i.to_string()))
            .collect();
        assert!(offer_all(&mut queue, updates).is_empty());
        // One more than the limit: everything goes, in order, the newest last.
        let last = presence(None).with_attr("id", "last");
        let written = offer_all(&mut queue, vec![last.clone()]);
        assert_eq!(written.len(), HOLD_LIMIT + 1);
        assert_eq!(written[0].attr("id"), Some("0"));
        assert_eq!(written[HOLD_LIMIT], last);
        assert!(queue.take_held().is_empty());
    }

    #[test]
    fn the_hold_is_bounded_by_size() {
        let update = presence(None);
        let size = estimated_size(&update);
        let mut queue = CsiQueue::new(size * 3);
        inactive(&mut queue);
        assert!(
            offer_all(
                &mut queue,
                vec![update.clone(), update.clone(), update.clone()]
            )
            .is_empty()
        );
        assert_eq!(offer_all(&mut queue, vec![update.clone()]).len(), 4);
    }

    #[test]
    fn what_is_held_is_handed_back_with_its_routing_mark() {
        let mut queue = CsiQueue::new(1 << 20);
        inactive(&mut queue);
        queue.offer(chat_state(), true, |_| panic!("held"));
        queue.offer(presence(None), false, |_| panic!("held"));
        let held = queue.take_held();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].stanza, chat_state());
        assert!(held[0].rerouted);
        assert!(!held[1].rerouted);
    }
}
