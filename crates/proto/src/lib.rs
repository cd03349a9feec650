//! Sans-IO XMPP: stream and stanza errors, stanza helpers, and the stream negotiation state machines.
//!
//! Nothing here touches a socket, a runtime or the clock: events go in, actions come out.
#![forbid(unsafe_code)]

pub mod c2s;
pub mod datetime;
pub mod errors;
pub mod sasl2;
pub mod sm;
pub mod stanza;

pub use errors::{ErrorType, StanzaCondition, StanzaError, StreamCondition, StreamError};
pub use stanza::{IqType, StanzaKind};

use rookery_xml::{Element, Node, ns};

/// Appends a top-level element of a stream to `out`. Elements in the streams namespace (`features`, `error`) are
/// written with the `stream:` prefix that the stream header declared, as every client expects; everything else is
/// written relative to the stream's content namespace.
pub fn write_top_level(el: &Element, out: &mut Vec<u8>, content_ns: &str) {
    if el.ns() != ns::STREAMS {
        el.write_to(out, content_ns);
        return;
    }
    out.extend_from_slice(b"<stream:");
    out.extend_from_slice(el.name().as_bytes());
    for a in el.attributes() {
        out.push(b' ');
        out.extend_from_slice(a.name.as_bytes());
        out.extend_from_slice(b"='");
        rookery_xml::escape_attr(out, &a.value);
        out.push(b'\'');
    }
    if el.nodes().is_empty() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    for node in el.nodes() {
        match node {
            Node::Element(child) => child.write_to(out, content_ns),
            Node::Text(t) => rookery_xml::escape_text(out, t),
        }
    }
    out.extend_from_slice(b"</stream:");
    out.extend_from_slice(el.name().as_bytes());
    out.push(b'>');
}

/// The closing tag of a stream.
pub const STREAM_CLOSE: &[u8] = b"</stream:stream>";
