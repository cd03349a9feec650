//! Reading back one element that was written out with [`Element::to_xml_string`] and kept somewhere (a database
//! column, say): the same hardened parser as the stream, without a stream around it.

use crate::{Element, Limits, StreamEvent, StreamParser, XmlError};

/// A stream header that declares no default namespace, so that the element keeps exactly the namespaces it
/// declares itself (as `to_xml_string` always writes them).
const WRAPPER: &str = "<s:stream xmlns:s='http://etherx.jabber.org/streams'>";

/// Parses one standalone element. Anything before or after it, other than whitespace, is an error, as is anything
/// the stream parser refuses (RFC 6120 §11 restricted XML, nesting deeper than [`Limits::CLIENT`] allows).
pub fn parse_element(xml: &str) -> Result<Element, XmlError> {
    let mut parser = StreamParser::new(Limits {
        max_stanza_bytes: xml.len().max(1),
        max_depth: Limits::CLIENT.max_depth,
    });
    parser.feed(WRAPPER.as_bytes());
    parser.feed(xml.as_bytes());
    let Some(StreamEvent::Open(_)) = parser.next_event()? else {
        return Err(not_one_element());
    };
    let Some(StreamEvent::Element(element)) = parser.next_event()? else {
        return Err(not_one_element());
    };
    if parser.has_pending_input() {
        return Err(not_one_element());
    }
    Ok(element)
}

fn not_one_element() -> XmlError {
    XmlError::NotWellFormed("expected exactly one element".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_the_serialiser_wrote() {
        let el = Element::new("vCard", "vcard-temp")
            .with_child(Element::new("FN", "vcard-temp").with_text("Ann & <Bob>"))
            .with_child(Element::new("x", "urn:example").with_attr("a", "'\""));
        assert_eq!(parse_element(&el.to_xml_string()).unwrap(), el);
    }

    #[test]
    fn refuses_anything_but_one_element() {
        for bad in [
            "",
            "text",
            "<a xmlns='x'/><b xmlns='x'/>",
            "<a xmlns='x'>",
            "<a xmlns='x'/>junk",
            "<!-- c --><a xmlns='x'/>",
            "</s:stream>",
        ] {
            assert!(parse_element(bad).is_err(), "{bad:?}");
        }
    }
}
