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
}

/// Runs the stream parser over `data` in several ways and checks that they agree, and that every element it
/// produces survives serialisation.
///
/// The first byte is a control byte: bit 0 picks small limits (so that budgets are hit), bit 1 adds a run fed one
/// byte at a time, bit 2 a run after a reset, and all of it seeds the fragment sizes of the main comparison.
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

    let whole = run(limits, input, &mut || usize::MAX, false);

    // Fragment sizes from a xorshift generator seeded by the control byte: mostly a few bytes, now and then up to 128.
    let mut state = 0x9E37_79B9_u32 ^ u32::from(control);
    let mut next_size = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        1 + ((state as usize) >> 8) % (1 << (state % 8))
    };
    let fragmented = run(limits, input, &mut next_size, false);
    assert_eq!(whole, fragmented, "feeding in fragments changed the result");

    if control & 2 != 0 && input.len() <= 64 * 1024 {
        let bytewise = run(limits, input, &mut || 1, false);
        assert_eq!(whole, bytewise, "feeding byte by byte changed the result");
    }
    if control & 4 != 0 {
        let after_reset = run(limits, input, &mut || 7, true);
        assert_eq!(whole, after_reset, "reset did not forget everything");
    }

    for event in &whole.events {
        match event {
            StreamEvent::Open(header) => check_round_trip(&header.element, limits.max_depth.max(1)),
            StreamEvent::Element(element) => check_round_trip(element, limits.max_depth),
            StreamEvent::Close => {}
        }
    }
}

/// Feeds `input` in chunks of the sizes `next_size` gives and collects what comes out. With `reset_first`, the
/// parser first chews on a stream in progress and is then reset.
fn run(
    limits: Limits,
    input: &[u8],
    next_size: &mut dyn FnMut() -> usize,
    reset_first: bool,
) -> Outcome {
    let mut parser = StreamParser::new(limits);
    if reset_first {
        parser.feed(
            b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' ",
        );
        parser.feed(b"xmlns='jabber:client' xmlns:p='urn:p'><message><body>half");
        while let Ok(Some(_)) = parser.next_event() {}
        parser.reset();
        assert_eq!(parser.buffered(), 0);
    }
    let mut events = Vec::new();
    let mut rest = input;
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
                    return Outcome {
                        events,
                        error: Some(error),
                        buffered: 0,
                    };
                }
            }
        }
        let held = parser.buffered();
        assert!(
            held <= limits.max_stanza_bytes.max(MAX_HELD),
            "parser holds {held} bytes"
        );
        if rest.is_empty() {
            return Outcome {
                events,
                error: None,
                buffered: held,
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
