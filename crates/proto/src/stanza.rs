//! Small views over the three stanza kinds and the replies a server builds from them.

use rookery_xml::{Element, ns};

use crate::errors::StanzaError;

/// The three kinds of stanza (RFC 6120 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    Message,
    Presence,
    Iq,
}

impl StanzaKind {
    /// The kind of a top-level element in the stream's content namespace, or None for anything else (a nonza
    /// such as a stream-management `<r/>`, or garbage).
    pub fn of(el: &Element, content_ns: &str) -> Option<Self> {
        if el.ns() != content_ns {
            return None;
        }
        match el.name() {
            "message" => Some(Self::Message),
            "presence" => Some(Self::Presence),
            "iq" => Some(Self::Iq),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Presence => "presence",
            Self::Iq => "iq",
        }
    }
}

/// The `type` of an IQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IqType {
    Get,
    Set,
    Result,
    Error,
}

impl IqType {
    /// The type of an IQ element; None when missing or not one of the four.
    pub fn of(iq: &Element) -> Option<Self> {
        match iq.attr("type")? {
            "get" => Some(Self::Get),
            "set" => Some(Self::Set),
            "result" => Some(Self::Result),
            "error" => Some(Self::Error),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Result => "result",
            Self::Error => "error",
        }
    }

    /// Whether this is a request (get/set) that must be answered.
    pub fn is_request(self) -> bool {
        matches!(self, Self::Get | Self::Set)
    }
}

/// The `type` of a message (RFC 6121 §5.2.2). A missing or unknown type is `normal`, as the RFC says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Chat,
    Error,
    Groupchat,
    Headline,
    Normal,
}

impl MessageType {
    pub fn of(message: &Element) -> Self {
        match message.attr("type") {
            Some("chat") => Self::Chat,
            Some("error") => Self::Error,
            Some("groupchat") => Self::Groupchat,
            Some("headline") => Self::Headline,
            _ => Self::Normal,
        }
    }
}

/// Whether a stanza is itself an error, to which no error may be sent back (RFC 6120 §8.3.1).
pub fn is_error(stanza: &Element) -> bool {
    stanza.attr("type") == Some("error")
}

/// A reply addressed back to the sender: same name, namespace and id, `to` and `from` swapped.
fn reply_skeleton(stanza: &Element, reply_type: &str) -> Element {
    let mut reply = Element::new(stanza.name(), stanza.namespace());
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = stanza.attr("from") {
        reply.set_attr("to", from);
    }
    if let Some(to) = stanza.attr("to") {
        reply.set_attr("from", to);
    }
    reply.set_attr("type", reply_type);
    reply
}

/// An empty `type='result'` reply to an IQ request.
pub fn iq_result(request: &Element) -> Element {
    reply_skeleton(request, "result")
}

/// A `type='result'` reply carrying one payload element.
pub fn iq_result_with(request: &Element, payload: Element) -> Element {
    reply_skeleton(request, "result").with_child(payload)
}

/// The error reply to a stanza (RFC 6120 §8.3.1). The caller must not answer an error with an error.
pub fn error_reply(stanza: &Element, error: &StanzaError) -> Element {
    let mut reply = reply_skeleton(stanza, "error");
    // An IQ error may carry the request's payload; keeping it helps clients match the failure to the request.
    if stanza.name() == "iq"
        && let Some(payload) = stanza.first_child()
    {
        reply.append_child(payload.clone());
    }
    reply.append_child(error.to_element(stanza.ns()));
    reply
}

/// A `<iq type='…'>` element in the client namespace with the given id, for tests and server-originated requests.
pub fn new_iq(iq_type: IqType, id: &str) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", iq_type.name())
        .with_attr("id", id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::StanzaCondition;

    #[test]
    fn error_reply_swaps_addresses() {
        let iq = new_iq(IqType::Get, "a1")
            .with_attr("from", "alice@example.com/phone")
            .with_attr("to", "example.com")
            .with_child(Element::new("query", "urn:unknown"));
        let reply = error_reply(&iq, &StanzaError::new(StanzaCondition::ServiceUnavailable));
        assert_eq!(reply.attr("to"), Some("alice@example.com/phone"));
        assert_eq!(reply.attr("from"), Some("example.com"));
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("id"), Some("a1"));
        let err = reply.get_child("error", ns::CLIENT).unwrap();
        assert!(err.has_child("service-unavailable", ns::STANZA_ERRORS));
    }

    #[test]
    fn kinds() {
        assert_eq!(
            StanzaKind::of(&Element::new("iq", ns::CLIENT), ns::CLIENT),
            Some(StanzaKind::Iq)
        );
        assert_eq!(
            StanzaKind::of(&Element::new("iq", ns::SERVER), ns::CLIENT),
            None
        );
        assert_eq!(
            StanzaKind::of(&Element::new("r", "urn:xmpp:sm:3"), ns::CLIENT),
            None
        );
    }

    #[test]
    fn message_types() {
        let with = |t: Option<&str>| {
            let mut m = Element::new("message", ns::CLIENT);
            if let Some(t) = t {
                m.set_attr("type", t);
            }
            MessageType::of(&m)
        };
        assert_eq!(with(Some("chat")), MessageType::Chat);
        assert_eq!(with(Some("error")), MessageType::Error);
        assert_eq!(with(Some("groupchat")), MessageType::Groupchat);
        assert_eq!(with(Some("headline")), MessageType::Headline);
        assert_eq!(with(Some("normal")), MessageType::Normal);
        assert_eq!(with(None), MessageType::Normal);
        assert_eq!(with(Some("CHAT")), MessageType::Normal);
    }
}
