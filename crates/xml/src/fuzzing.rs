//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the stable test that replays their corpora.
//!
//! Not part of the API: the functions panic when they find a bug, which is what a fuzzer wants.

use crate::{Element, Limits, StreamEvent, StreamParser, XmlError};

/// The largest budget any construct may use; after `Ok(None)` the parser may hold no more than this.
const MAX_HELD: usize = 16 * 1024;

/// Everything a parser produced from one input.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<StreamEvent>,
    error: Option<XmlError>,
    buffered: usize,
    pending: bool,
}

/// What a parser goes through before it sees the input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prelude {
    /// Nothing: a new parser.
    None,
    /// Half a stanza of another stream, then [`StreamParser::reset`].
    Reset,
    /// A whole stanza of another stream parsed under tiny limits, the first bytes of the input fed, then
    /// [`StreamParser::restart`] and [`StreamParser::set_limits`], as at SASL success.
    Restart,
}

/// The limits a restart run parses its prelude under; the input is parsed under the real ones.
const PRE_AUTH_LIMITS: Limits = Limits {
    max_stanza_bytes: 100,
    max_depth: 1,
};

/// The stanza a restart run's prelude ends with.
const PRELUDE_STANZA: &[u8] =
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth>";

/// Runs the stream parser over `data` in several ways and checks that they agree, and that every element it
/// produces survives serialisation.
///
/// The first byte is a control byte: bit 0 picks small limits (so that budgets are hit), bit 1 adds a run fed one
/// byte at a time, bit 2 a run after a reset, bit 3 a run after a restart, and all of it seeds the fragment sizes of
/// the main comparison.
pub fn stream_parser(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let limits = if control & 1 == 0 {
        Limits::SERVER
    } else {
        Limits {
            max_stanza_bytes: 300,
            max_depth: 4,
        }
    };

    let whole = run(limits, input, &mut || usize::MAX, Prelude::None);

    // Fragment sizes from a xorshift generator seeded by the control byte: mostly a few bytes, now and then up to 128.
    let mut state = 0x9E37_79B9_u32 ^ u32::from(control);
    let mut next_size = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        1 + ((state as usize) >> 8) % (1 << (state % 8))
    };
    let fragmented = run(limits, input, &mut next_size, Prelude::None);
    assert_eq!(whole, fragmented, "feeding in fragments changed the result");

    if control & 2 != 0 && input.len() <= 64 * 1024 {
        let bytewise = run(limits, input, &mut || 1, Prelude::None);
        assert_eq!(whole, bytewise, "feeding byte by byte changed the result");
    }
    if control & 4 != 0 {
        let after_reset = run(limits, input, &mut || 7, Prelude::Reset);
        assert_eq!(whole, after_reset, "reset did not forget everything");
    }
    if control & 8 != 0 {
        let after_restart = run(limits, input, &mut || 11, Prelude::Restart);
        // The restart drops the whitespace that the first chunk starts with, as belonging to the old stream.
        let dropped = input
            .iter()
            .take(11)
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        if dropped == 0 {
            assert_eq!(whole, after_restart, "restart changed the result");
        } else {
            let expected = run(limits, &input[dropped..], &mut || usize::MAX, Prelude::None);
            assert_eq!(expected, after_restart, "restart changed the result");
        }
    }

    for event in &whole.events {
        match event {
            StreamEvent::Open(header) => check_round_trip(&header.element, limits.max_depth.max(1)),
            StreamEvent::Element(element) => check_round_trip(element, limits.max_depth),
            StreamEvent::Close => {}
        }
    }
}

/// Feeds `input` in chunks of the sizes `next_size` gives and collects what comes out, after `prelude`.
fn run(
    limits: Limits,
    input: &[u8],
    next_size: &mut dyn FnMut() -> usize,
    prelude: Prelude,
) -> Outcome {
    let mut parser = StreamParser::new(limits);
    let mut rest = input;
    match prelude {
        Prelude::None => {}
        Prelude::Reset => {
            parser.feed(
                b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' ",
            );
            parser.feed(b"xmlns='jabber:client' xmlns:p='urn:p'><message><body>half");
            while let Ok(Some(_)) = parser.next_event() {}
            parser.reset();
            assert_eq!(parser.buffered(), 0);
            assert!(!parser.has_pending_input());
        }
        Prelude::Restart => {
            parser.set_limits(PRE_AUTH_LIMITS);
            parser.feed(
                b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns:p='urn:p'>",
            );
            parser.feed(PRELUDE_STANZA);
            assert!(matches!(
                parser.next_event(),
                Ok(Some(StreamEvent::Open(_)))
            ));
            assert!(matches!(
                parser.next_event(),
                Ok(Some(StreamEvent::Element(_)))
            ));
            // What the client sent right after its last stanza of the old stream.
            let (chunk, tail) = rest.split_at(next_size().min(rest.len()));
            rest = tail;
            parser.feed(chunk);
            parser.restart();
            parser.set_limits(limits);
        }
    }
    let mut events = Vec::new();
    loop {
        let (chunk, tail) = rest.split_at(next_size().min(rest.len()));
        rest = tail;
        parser.feed(chunk);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(error) => {
                    assert_eq!(parser.next_event(), Err(error.clone()), "error not sticky");
                    assert!(
                        error.to_string().len() < 200,
                        "error message too long: {error}"
                    );
                    assert!(!parser.has_pending_input(), "a dead parser holds input");
                    return Outcome {
                        events,
                        error: Some(error),
                        buffered: 0,
                        pending: false,
                    };
                }
            }
        }
        let held = parser.buffered();
        assert!(
            held <= limits.max_stanza_bytes.max(MAX_HELD),
            "parser holds {held} bytes"
        );
        let pending = parser.has_pending_input();
        assert!(held > 0 || !pending, "pending input in an empty buffer");
        if rest.is_empty() {
            return Outcome {
                events,
                error: None,
                buffered: held,
                pending,
            };
        }
    }
}

/// Serialises `element`, parses it back and checks that the same tree, and the same bytes, come out.
fn check_round_trip(element: &Element, max_depth: usize) {
    let mut doc = b"<stream>".to_vec();
    let from = doc.len();
    element.write_to(&mut doc, "");
    let serialized = doc.get(from..).unwrap_or_default().to_vec();

    let mut parser = StreamParser::new(Limits {
        max_stanza_bytes: usize::MAX,
        max_depth,
    });
    parser.feed(&doc);
    let events = (
        parser.next_event(),
        parser.next_event(),
        parser.next_event(),
    );
    let (Ok(Some(StreamEvent::Open(_))), Ok(Some(StreamEvent::Element(reparsed))), Ok(None)) =
        events
    else {
        panic!(
            "serialised element does not parse back: {events:?}\n{}",
            String::from_utf8_lossy(&serialized)
        );
    };
    assert_eq!(&reparsed, element, "round trip changed the element");
    let mut again = Vec::new();
    reparsed.write_to(&mut again, "");
    assert_eq!(again, serialized, "serialisation is not stable");
}
