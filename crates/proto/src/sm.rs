//! XEP-0198 stream management, sans-IO: the protocol's elements and the two counters with the queue of stanzas the
//! peer has not acknowledged yet.
//!
//! The connection task owns one [`StreamManagement`] per session that enabled it. It counts what it hands to the
//! router ([`StreamManagement::handled`]) and what it writes ([`StreamManagement::sent`]); acknowledgements drop
//! the acknowledged stanzas from the front of the queue. Counters are 32-bit and wrap, as §4 of the XEP says.

use std::collections::VecDeque;

use rookery_xml::{Element, ns};

/// XEP-0198's namespace (version 3; version 2 is obsolete and not offered).
pub const NS_SM: &str = "urn:xmpp:sm:3";

/// A stream-management element from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmRequest {
    /// `<enable/>`, asking for resumption or not.
    Enable { resume: bool },
    /// `<resume/>` of the session `previd`, the client having handled `h` stanzas of it.
    Resume { previd: String, h: u32 },
    /// `<r/>`: the client asks how many stanzas the server handled.
    AckRequest,
    /// `<a/>`: the client handled `h` stanzas.
    Ack { h: u32 },
}

/// Why a stream-management element could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmParseError {
    /// An `h` that is missing or not a 32-bit unsigned number.
    BadCount,
    /// `<resume/>` without a `previd`.
    MissingPrevid,
    /// An element of the namespace that a client does not send.
    Unknown(String),
}

impl SmRequest {
    /// Reads a stream-management element; `None` when `el` is not in the XEP's namespace.
    pub fn parse(el: &Element) -> Option<Result<Self, SmParseError>> {
        if el.ns() != NS_SM {
            return None;
        }
        let count = || {
            el.attr("h")
                .and_then(|h| h.parse::<u32>().ok())
                .ok_or(SmParseError::BadCount)
        };
        Some(match el.name() {
            "enable" => Ok(Self::Enable {
                resume: matches!(el.attr("resume"), Some("true" | "1")),
            }),
            "resume" => match el.attr("previd") {
                Some(previd) if !previd.is_empty() => count().map(|h| Self::Resume {
                    previd: previd.to_owned(),
                    h,
                }),
                _ => Err(SmParseError::MissingPrevid),
            },
            "r" => Ok(Self::AckRequest),
            "a" => count().map(|h| Self::Ack { h }),
            other => Err(SmParseError::Unknown(other.to_owned())),
        })
    }
}

/// The acknowledgement the client sent covers stanzas the server never sent (§4: `handled-count-too-high`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckTooHigh {
    /// The client's count.
    pub h: u32,
    /// How many the server sent.
    pub sent: u32,
}

/// The counters of one session and the stanzas sent but not acknowledged, oldest first. `T` is whatever the
/// connection keeps of a sent stanza (the stanza itself, so that it can be sent again or handed back).
#[derive(Debug)]
pub struct StreamManagement<T> {
    /// Stanzas received from the client and handled (the server's `h`), modulo 2^32.
    handled: u32,
    /// Stanzas sent to the client, modulo 2^32.
    sent: u32,
    unacked: VecDeque<T>,
    /// Whether an `<r/>` is out and not answered yet: at most one is, so that requests never cost a round-trip per
    /// stanza.
    ack_requested: bool,
    /// The sent count when the last `<r/>` went out: no new request until more was sent, so that a client that
    /// answers with a stale count cannot start a loop of requests.
    requested_at: u32,
}

impl<T> Default for StreamManagement<T> {
    fn default() -> Self {
        Self {
            handled: 0,
            sent: 0,
            unacked: VecDeque::new(),
            ack_requested: false,
            requested_at: 0,
        }
    }
}

impl<T> StreamManagement<T> {
    /// Counts a stanza from the client, handed to the router.
    pub fn handled(&mut self) {
        self.handled = self.handled.wrapping_add(1);
    }

    /// The server's `h`.
    pub fn handled_count(&self) -> u32 {
        self.handled
    }

    /// Counts a stanza written to the client and keeps it until it is acknowledged.
    pub fn sent(&mut self, item: T) {
        self.sent = self.sent.wrapping_add(1);
        self.unacked.push_back(item);
    }

    /// How many stanzas were sent, modulo 2^32.
    pub fn sent_count(&self) -> u32 {
        self.sent
    }

    /// Stanzas sent and not acknowledged.
    pub fn unacked(&self) -> &VecDeque<T> {
        &self.unacked
    }

    /// The client handled `h` stanzas: those drop from the queue. An `h` behind an earlier acknowledgement acknowledges
    /// nothing new (the XEP does not forbid a stale `<a/>`); one beyond what was sent is an error, and nothing changes.
    pub fn ack(&mut self, h: u32) -> Result<std::collections::vec_deque::Drain<'_, T>, AckTooHigh> {
        let acked_before = self.sent.wrapping_sub(self.unacked.len() as u32);
        let newly = h.wrapping_sub(acked_before);
        if newly as usize > self.unacked.len() {
            // Either more than was sent, or an old count (which wraps to a huge number): tell them apart by
            // distance, as counters that wrap must be compared.
            if newly > u32::MAX / 2 {
                return Ok(self.unacked.drain(..0));
            }
            return Err(AckTooHigh { h, sent: self.sent });
        }
        Ok(self.unacked.drain(..newly as usize))
    }

    /// Whether to send an `<r/>` now: stanzas wait for an acknowledgement, none is asked for, and more was sent
    /// since the last request.
    pub fn should_request_ack(&self) -> bool {
        !self.ack_requested && !self.unacked.is_empty() && self.sent != self.requested_at
    }

    /// Records that an `<r/>` was sent.
    pub fn ack_request_sent(&mut self) {
        self.ack_requested = true;
        self.requested_at = self.sent;
    }

    /// Whether an `<r/>` is out.
    pub fn ack_requested(&self) -> bool {
        self.ack_requested
    }

    /// An `<a/>` arrived: another `<r/>` may be sent.
    pub fn ack_received(&mut self) {
        self.ack_requested = false;
    }

    /// Resumption: the client handled `h` of the stanzas sent. Returns the rest, to be sent again (each counted again
    /// by [`sent`](Self::sent) as it is written, so the counter goes back to `h` first).
    pub fn resume(&mut self, h: u32) -> Result<VecDeque<T>, AckTooHigh> {
        self.ack(h)?;
        self.sent = h;
        self.ack_requested = false;
        self.requested_at = h;
        Ok(std::mem::take(&mut self.unacked))
    }

    /// Everything not acknowledged, for a session that ends: the caller hands it back to the router.
    pub fn take_unacked(&mut self) -> VecDeque<T> {
        std::mem::take(&mut self.unacked)
    }
}

/// `<enabled/>`, with the resumption id and how long the session waits for a resumption, when resumable.
pub fn enabled(resumption: Option<(&str, u64)>) -> Element {
    let mut el = Element::new("enabled", NS_SM);
    if let Some((id, max_seconds)) = resumption {
        el.set_attr("id", id);
        // `true` and not `1`: some clients only read the former.
        el.set_attr("resume", "true");
        el.set_attr("max", max_seconds.to_string());
    }
    el
}

/// `<resumed/>` for the session `previd`, with the server's `h`.
pub fn resumed(previd: &str, h: u32) -> Element {
    Element::new("resumed", NS_SM)
        .with_attr("previd", previd)
        .with_attr("h", h.to_string())
}

/// `<failed/>` with a stanza error condition, and the server's `h` when it knows it.
pub fn failed(condition: &str, h: Option<u32>) -> Element {
    let mut el =
        Element::new("failed", NS_SM).with_child(Element::new(condition, ns::STANZA_ERRORS));
    if let Some(h) = h {
        el.set_attr("h", h.to_string());
    }
    el
}

/// `<a/>` with the server's `h`.
pub fn ack(h: u32) -> Element {
    Element::new("a", NS_SM).with_attr("h", h.to_string())
}

/// `<r/>`.
pub fn ack_request() -> Element {
    Element::new("r", NS_SM)
}

/// The stream feature.
pub fn feature() -> Element {
    Element::new("sm", NS_SM)
}

/// The stream error condition's extra element for an acknowledgement beyond what was sent (§4).
pub fn handled_count_too_high(err: AckTooHigh) -> Element {
    Element::new("handled-count-too-high", NS_SM)
        .with_attr("h", err.h.to_string())
        .with_attr("send-count", err.sent.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        rookery_xml::parse_element(xml).unwrap()
    }

    #[test]
    fn parses_what_clients_send() {
        let sm = |xml: &str| SmRequest::parse(&el(xml)).unwrap();
        assert_eq!(
            sm("<enable xmlns='urn:xmpp:sm:3' resume='true'/>"),
            Ok(SmRequest::Enable { resume: true })
        );
        assert_eq!(
            sm("<enable xmlns='urn:xmpp:sm:3' resume='1'/>"),
            Ok(SmRequest::Enable { resume: true })
        );
        assert_eq!(
            sm("<enable xmlns='urn:xmpp:sm:3'/>"),
            Ok(SmRequest::Enable { resume: false })
        );
        assert_eq!(
            sm("<resume xmlns='urn:xmpp:sm:3' previd='abc' h='4294967295'/>"),
            Ok(SmRequest::Resume {
                previd: "abc".into(),
                h: u32::MAX
            })
        );
        assert_eq!(sm("<r xmlns='urn:xmpp:sm:3'/>"), Ok(SmRequest::AckRequest));
        assert_eq!(
            sm("<a xmlns='urn:xmpp:sm:3' h='7'/>"),
            Ok(SmRequest::Ack { h: 7 })
        );
        for bad in [
            "<a xmlns='urn:xmpp:sm:3'/>",
            "<a xmlns='urn:xmpp:sm:3' h='-1'/>",
            "<a xmlns='urn:xmpp:sm:3' h='4294967296'/>",
            "<a xmlns='urn:xmpp:sm:3' h='x'/>",
            "<resume xmlns='urn:xmpp:sm:3' previd='abc'/>",
        ] {
            assert_eq!(sm(bad), Err(SmParseError::BadCount), "{bad}");
        }
        assert_eq!(
            sm("<resume xmlns='urn:xmpp:sm:3' h='1'/>"),
            Err(SmParseError::MissingPrevid)
        );
        assert_eq!(
            sm("<enabled xmlns='urn:xmpp:sm:3'/>"),
            Err(SmParseError::Unknown("enabled".into()))
        );
        assert!(SmRequest::parse(&el("<r xmlns='urn:xmpp:sm:2'/>")).is_none());
    }

    #[test]
    fn acks_drop_from_the_front() {
        let mut sm = StreamManagement::default();
        for i in 0..5 {
            sm.sent(i);
        }
        assert_eq!(sm.ack(2).unwrap().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(sm.unacked().iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        // The same count again, or an older one, acknowledges nothing new.
        assert_eq!(sm.ack(2).unwrap().count(), 0);
        assert_eq!(sm.ack(1).unwrap().count(), 0);
        assert_eq!(sm.unacked().len(), 3);
        assert_eq!(sm.ack(6).err(), Some(AckTooHigh { h: 6, sent: 5 }));
        assert_eq!(sm.unacked().len(), 3);
        sm.ack(5).unwrap();
        assert!(sm.unacked().is_empty());
    }

    #[test]
    fn counters_wrap() {
        let mut sm = StreamManagement {
            sent: u32::MAX - 1,
            handled: u32::MAX,
            ..StreamManagement::default()
        };
        sm.handled();
        assert_eq!(sm.handled_count(), 0);
        for i in 0..4 {
            sm.sent(i);
        }
        assert_eq!(sm.sent_count(), 2);
        // u32::MAX - 1 was acknowledged before; the client now handled two more, across the wrap.
        assert_eq!(sm.ack(0).unwrap().count(), 2);
        assert_eq!(sm.unacked().iter().copied().collect::<Vec<_>>(), [2, 3]);
        assert!(sm.ack(3).is_err());
        assert_eq!(sm.ack(2).unwrap().count(), 2);
        assert!(sm.unacked().is_empty());
    }

    #[test]
    fn resumption_resends_the_rest_and_recounts_it() {
        let mut sm = StreamManagement::default();
        for i in 0..4 {
            sm.sent(i);
        }
        assert!(sm.should_request_ack());
        sm.ack_request_sent();
        assert!(!sm.should_request_ack());
        assert!(sm.resume(9).is_err());
        let rest = sm.resume(1).unwrap();
        assert_eq!(rest, [1, 2, 3]);
        assert_eq!(sm.sent_count(), 1);
        assert!(!sm.ack_requested());
        for i in rest {
            sm.sent(i);
        }
        assert_eq!(sm.sent_count(), 4);
        assert_eq!(sm.unacked().len(), 3);
        assert!(sm.should_request_ack());
    }

    #[test]
    fn ack_requests_wait_for_new_stanzas() {
        let mut sm = StreamManagement::default();
        assert!(!sm.should_request_ack(), "nothing to acknowledge");
        sm.sent(1);
        sm.sent(2);
        assert!(sm.should_request_ack());
        sm.ack_request_sent();
        assert!(!sm.should_request_ack(), "one request at a time");
        // A stale answer: nothing new was sent since the request, so no new request.
        sm.ack_received();
        assert_eq!(sm.ack(1).unwrap().count(), 1);
        assert!(!sm.should_request_ack());
        sm.sent(3);
        assert!(sm.should_request_ack());
    }

    #[test]
    fn elements() {
        assert_eq!(
            enabled(Some(("id1", 600))).to_xml_string(),
            "<enabled xmlns='urn:xmpp:sm:3' id='id1' resume='true' max='600'/>"
        );
        assert_eq!(
            enabled(None).to_xml_string(),
            "<enabled xmlns='urn:xmpp:sm:3'/>"
        );
        assert_eq!(
            failed("item-not-found", Some(3)).to_xml_string(),
            "<failed xmlns='urn:xmpp:sm:3' h='3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
        );
    }
}
