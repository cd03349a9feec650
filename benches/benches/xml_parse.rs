//! Parse throughput of the XMPP stream parser against the parsers it is built on and compared with.
//!
//! The input is a synthetic client stream of the shape the project's performance notes (§5, XML parsing) used to
//! measure other parsers on this kind of machine. Each round is a chat message (body with escapes, chat state,
//! origin-id, receipt request), a presence with caps, a PEP avatar-metadata publish, and a stream-management
//! request/ack pair: 25 000 rounds make 26 MB with 125 000 top-level and 450 000 start elements. Set
//! `XML_BENCH_ROUNDS` for another size.
//!
//! Run with `cargo bench -p rookery-benches --bench xml_parse`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quick_xml::events::Event;
use rookery_benches::xml_corpus::corpus;
use rookery_xml::{Limits, StreamEvent, StreamParser};
use rxml::Parse;

/// Bytes per `feed`, as a socket read would deliver them.
const CHUNK: usize = 4096;

/// Our parser with every check on, fed as a socket would, building every element. Returns the elements built.
fn rookery(doc: &[u8]) -> usize {
    let mut parser = StreamParser::new(Limits::CLIENT);
    let mut elements = 0;
    for chunk in doc.chunks(CHUNK) {
        parser.feed(chunk);
        while let Some(event) = parser.next_event().expect("the corpus is valid") {
            if let StreamEvent::Element(el) = event {
                black_box(&el);
                elements += 1;
            }
        }
    }
    elements
}

/// quick-xml's bare lexer: no namespaces, no attribute parsing, no validation.
fn quick_xml_reader(doc: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut starts = 0;
    loop {
        match reader.read_event().expect("the corpus is valid") {
            Event::Start(_) | Event::Empty(_) => starts += 1,
            Event::Eof => return starts,
            _ => {}
        }
    }
}

/// quick-xml with namespace resolution, every attribute iterated and text decoded.
fn quick_xml_ns_reader(doc: &str) -> usize {
    let mut reader = quick_xml::NsReader::from_str(doc);
    let mut starts = 0;
    loop {
        match reader.read_resolved_event().expect("the corpus is valid") {
            (ns, Event::Start(e) | Event::Empty(e)) => {
                black_box(ns);
                for attr in e.attributes() {
                    black_box(attr.expect("the corpus is valid").value);
                }
                starts += 1;
            }
            (_, Event::Text(text)) => {
                black_box(text.xml10_content());
            }
            (_, Event::Eof) => return starts,
            _ => {}
        }
    }
}

/// rxml, fully validating and namespace-aware, fed in the same chunks.
fn rxml_parser(doc: &[u8]) -> usize {
    let mut parser = rxml::Parser::new();
    let mut starts = 0;
    let mut chunks = doc.chunks(CHUNK).peekable();
    while let Some(mut chunk) = chunks.next() {
        let at_eof = chunks.peek().is_none();
        match parser.parse_all(&mut chunk, at_eof, |event| {
            if let rxml::Event::StartElement(..) = event {
                starts += 1;
            }
        }) {
            Ok(()) | Err(rxml::error::EndOrError::NeedMoreData) => {}
            Err(e) => panic!("rxml rejects the corpus: {e:?}"),
        }
    }
    starts
}

fn xml_parse(c: &mut Criterion) {
    let rounds = std::env::var("XML_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(25_000);
    let doc = corpus(rounds);
    assert_eq!(rookery(doc.as_bytes()), rounds * 5);
    assert_eq!(quick_xml_reader(&doc), rxml_parser(doc.as_bytes()));

    let mut group = c.benchmark_group("xml_parse");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(
        "rookery StreamParser, 4 KiB chunks, all checks, Elements",
        |b| {
            b.iter(|| rookery(black_box(doc.as_bytes())));
        },
    );
    group.bench_function("quick-xml 0.42 Reader (no namespaces)", |b| {
        b.iter(|| quick_xml_reader(black_box(&doc)))
    });
    group.bench_function("quick-xml 0.42 NsReader + attributes", |b| {
        b.iter(|| quick_xml_ns_reader(black_box(&doc)));
    });
    group.bench_function("rxml 0.14 Parser, 4 KiB chunks", |b| {
        b.iter(|| rxml_parser(black_box(doc.as_bytes())))
    });
    group.finish();
}

criterion_group!(benches, xml_parse);
criterion_main!(benches);
