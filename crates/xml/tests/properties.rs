//! Property tests of the stream parser:
//!
//! 1. feeding a document in random fragments gives the same events (and error) as feeding it whole;
//! 2. with rxml as an oracle: whatever rxml rejects we reject too (we may reject more, such as text at stream
//!    level), and on valid documents both produce the same element structure;
//! 3. every element serialises to XML that parses back to an equal element.
//!
//! Documents come from a generator of namespace-well-formed XMPP-like streams, then some are mutated with hostile
//! fragments (comments, PIs, bad references, control characters, broken UTF-8, stray markup…).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;
use rookery_xml::{Element, Limits, Node, StreamEvent, StreamParser, XmlError};
use rxml::{Parse, WithOptions};

// ---------------------------------------------------------------------------------------------------------------
// Generator

/// Prefixes available to generated elements: none, two declared on the header, one each element declares itself
/// when it (or its attributes) use it.
const PREFIXES: [Option<&str>; 4] = [None, Some("a"), Some("b"), Some("c")];

#[derive(Clone, Debug)]
struct GenElement {
    prefix: usize,
    name: String,
    /// A default namespace declaration, if any.
    default_ns: Option<String>,
    /// (prefix index, with 4 meaning `xml`; name; value).
    attrs: Vec<(usize, String, String)>,
    children: Vec<GenNode>,
    double_quotes: bool,
}

#[derive(Clone, Debug)]
enum GenNode {
    Element(GenElement),
    Text(String),
    Cdata(String),
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9._-]{0,6}",
        1 => "[éüΩ][a-z·0-9]{0,3}",
    ]
    // Names starting with `xml` are reserved, and `xmlns` would be a declaration.
    .prop_filter("reserved name", |n| {
        !n.to_ascii_lowercase().starts_with("xml")
    })
}

fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => proptest::char::range('a', 'z'),
        2 => Just(' '),
        1 => prop::sample::select(vec!['<', '>', '&', '\'', '"', ']', '\t', '\n', '\r', '=', '/', ';', '#']),
        1 => prop::sample::select(vec!['é', '😀', '\u{85}', '\u{2028}', '\u{D7FF}', '\u{E000}', '\u{FFFD}', '\u{10000}']),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(text_char(), 0..12).prop_map(String::from_iter)
}

fn uri() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("jabber:client".to_owned()),
        Just("urn:xmpp:ping".to_owned()),
        Just(String::new()),
        "urn:[a-z]{1,4}",
        "http://e[.]org/[a-z&<é]{0,4}",
    ]
}

fn element() -> impl Strategy<Value = GenElement> {
    let leaf = (
        0..4usize,
        name(),
        prop::option::weighted(0.2, uri()),
        attrs(),
        any::<bool>(),
    )
        .prop_map(
            |(prefix, name, default_ns, attrs, double_quotes)| GenElement {
                prefix,
                name,
                default_ns,
                attrs,
                children: Vec::new(),
                double_quotes,
            },
        );
    leaf.prop_recursive(4, 24, 5, |inner| {
        (
            (0..4usize, name(), prop::option::weighted(0.2, uri()), attrs(), any::<bool>()),
            prop::collection::vec(
                prop_oneof![
                    3 => inner.prop_map(GenNode::Element),
                    2 => text().prop_map(GenNode::Text),
                    1 => text().prop_filter("]]> in CDATA", |t| !t.contains("]]>")).prop_map(GenNode::Cdata),
                ],
                0..5,
            ),
        )
            .prop_map(|((prefix, name, default_ns, attrs, double_quotes), children)| GenElement {
                prefix,
                name,
                default_ns,
                attrs,
                children,
                double_quotes,
            })
    })
}

fn attrs() -> impl Strategy<Value = Vec<(usize, String, String)>> {
    prop::collection::vec((0..5usize, name(), text()), 0..4).prop_map(|mut attrs| {
        // Unique raw names; distinct prefixes are bound to distinct namespaces, so that makes them unique.
        let mut seen = std::collections::HashSet::new();
        attrs.retain(|(p, n, _)| seen.insert((*p, n.clone())));
        attrs
    })
}

/// How a generated document renders one character of text: raw where allowed, else one of its escapes.
fn escape_into(out: &mut String, c: char, variant: usize, in_attr: Option<char>) {
    let must = c == '<' || c == '&' || c == '>' || in_attr == Some(c);
    if !must && !variant.is_multiple_of(4) {
        out.push(c);
        return;
    }
    match (c, variant % 3) {
        ('<', 0) => out.push_str("&lt;"),
        ('>', 0) => out.push_str("&gt;"),
        ('&', 0) => out.push_str("&amp;"),
        ('\'', 0) => out.push_str("&apos;"),
        ('"', 0) => out.push_str("&quot;"),
        (_, 1) => out.push_str(&format!("&#{};", u32::from(c))),
        _ => out.push_str(&format!("&#x{:X};", u32::from(c))),
    }
}

fn escape(s: &str, in_attr: Option<char>) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        escape_into(&mut out, c, i * 7 + s.len(), in_attr);
    }
    out
}

fn render(el: &GenElement, c_declared: bool, out: &mut String) {
    let q = if el.double_quotes { '"' } else { '\'' };
    let qname = match PREFIXES[el.prefix] {
        Some(p) => format!("{p}:{}", el.name),
        None => el.name.clone(),
    };
    out.push('<');
    out.push_str(&qname);
    let uses_c = el.prefix == 3 || el.attrs.iter().any(|(p, _, _)| *p == 3);
    let declares_c = uses_c && !c_declared;
    if declares_c {
        out.push_str(&format!(" xmlns:c={q}urn:c{q}"));
    }
    if let Some(ns) = &el.default_ns {
        out.push_str(&format!(" xmlns={q}{}{q}", escape(ns, Some(q))));
    }
    for (p, n, v) in &el.attrs {
        let prefix = match p {
            0 => String::new(),
            4 => "xml:".to_owned(),
            p => format!("{}:", PREFIXES[*p].unwrap_or_default()),
        };
        out.push_str(&format!(" {prefix}{n}={q}{}{q}", escape(v, Some(q))));
    }
    if el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in &el.children {
        match child {
            GenNode::Element(e) => render(e, c_declared || declares_c, out),
            GenNode::Text(t) => out.push_str(&escape(t, None)),
            GenNode::Cdata(t) => out.push_str(&format!("<![CDATA[{t}]]>")),
        }
    }
    out.push_str(&format!("</{qname}>"));
}

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:a='urn:a' xmlns:b='urn:b' to='example.org' version='1.0'>";

/// A whole stream: header, stanzas with keep-alive whitespace between them, and the closing tag.
fn document() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            element(),
            prop::sample::select(vec!["", "", " ", "\n", "\r\n\t "]),
        ),
        0..5,
    )
    .prop_map(|stanzas| {
        let mut out = HEADER.to_owned();
        for (el, space) in &stanzas {
            render(el, false, &mut out);
            out.push_str(space);
        }
        out.push_str("</stream:stream>");
        out.into_bytes()
    })
}

/// Fragments that break documents in interesting ways.
const HOSTILE: &[&[u8]] = &[
    b"<!--",
    b"-->",
    b"<?pi x?>",
    b"<?xml version='1.0'?>",
    b"<!DOCTYPE x>",
    b"&foo;",
    b"&amp",
    b"&#0;",
    b"&#x10FFFF;",
    b"&#xFFFE;",
    b"&#65;",
    b"\x00",
    b"\x01",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbf\xbe",
    b"]]>",
    b"<![CDATA[",
    b"<",
    b">",
    b"'",
    b"\"",
    b"=",
    b":",
    b"/",
    b" ",
    b"\r\n",
    b"x",
    b" xmlns:z='urn:z'",
    b" xmlns=''",
    b" xmlns:p=''",
    b" z:q='1'",
    b" a:q='1' b:q='2'",
    b" xml:lang='x'",
    b" xmlns:xml='x'",
    b"</a>",
    b"<a>",
    b"/>",
    b"<b xmlns:p='u'/>",
    b"</stream:stream>",
    b"<stream:stream>",
    b"text",
    "é😀".as_bytes(),
];

#[derive(Clone, Debug)]
enum Mutation {
    Insert(usize, usize),
    Delete(usize, usize),
    Replace(usize, u8),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..HOSTILE.len()).prop_map(|(at, i)| Mutation::Insert(at, i)),
        2 => (any::<usize>(), 1..8usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        1 => (any::<usize>(), 1..16usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut doc: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = doc.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *m {
            Mutation::Insert(i, which) => {
                let at = at(i);
                doc.splice(at..at, HOSTILE[which].iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = at(i);
                doc.drain(at..(at + n).min(len));
            }
            Mutation::Replace(i, b) => {
                if len > 0 {
                    doc[i % len] = b;
                }
            }
            Mutation::Duplicate(i, n) => {
                let at = at(i);
                let piece = doc[at..(at + n).min(len)].to_vec();
                doc.splice(at..at, piece);
            }
            Mutation::Truncate(i) => doc.truncate(at(i)),
        }
    }
    doc
}

/// Generated documents, half of them mutated.
fn any_document() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => document(),
        1 => (document(), prop::collection::vec(mutation(), 1..4)).prop_map(|(doc, ms)| mutate(doc, &ms)),
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// Running the parsers

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<StreamEvent>,
    error: Option<XmlError>,
}

impl Outcome {
    /// A complete, closed stream without error.
    fn accepted(&self) -> bool {
        self.error.is_none() && matches!(self.events.last(), Some(StreamEvent::Close))
    }
}

fn feed_in(input: &[u8], cuts: &[usize], limits: Limits) -> Outcome {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut parser = StreamParser::new(limits);
    let mut events = Vec::new();
    let mut from = 0;
    for to in points {
        parser.feed(&input[from..to]);
        from = to;
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        events,
                        error: Some(error),
                    };
                }
            }
        }
    }
    Outcome {
        events,
        error: None,
    }
}

/// A tree in a form both parsers' output converts to: attributes unordered, adjacent text merged.
#[derive(Debug, PartialEq)]
struct Tree {
    ns: String,
    name: String,
    attrs: BTreeMap<(String, String), String>,
    children: Vec<TreeNode>,
}

#[derive(Debug, PartialEq)]
enum TreeNode {
    Element(Tree),
    Text(String),
}

fn push_text(children: &mut Vec<TreeNode>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(TreeNode::Text(last)) = children.last_mut() {
        last.push_str(text);
    } else {
        children.push(TreeNode::Text(text.to_owned()));
    }
}

fn ours_to_tree(el: &Element) -> Tree {
    let mut children = Vec::new();
    for node in el.nodes() {
        match node {
            Node::Element(child) => children.push(TreeNode::Element(ours_to_tree(child))),
            Node::Text(text) => push_text(&mut children, text),
        }
    }
    Tree {
        ns: el.ns().to_owned(),
        name: el.name().to_owned(),
        attrs: el
            .attributes()
            .iter()
            .map(|a| ((a.ns.to_string(), a.name.clone()), a.value.clone()))
            .collect(),
        children,
    }
}

/// The whole document per rxml, or `None` if rxml rejects it. Text directly inside the root (whitespace between
/// stanzas) is dropped, as our parser drops it.
fn rxml_tree(doc: &[u8]) -> Option<Tree> {
    let options = rxml::Options {
        max_token_length: 1 << 16,
        ..Default::default()
    };
    let mut parser = rxml::Parser::with_options(options);
    let mut input = doc;
    let mut stack: Vec<Tree> = Vec::new();
    let mut root = None;
    loop {
        match parser.parse(&mut input, true) {
            Ok(Some(rxml::Event::StartElement(_, (ns, name), attrs))) => stack.push(Tree {
                ns: ns.to_string(),
                name: name.to_string(),
                attrs: attrs
                    .iter()
                    .map(|((ns, n), v)| ((ns.to_string(), n.to_string()), v.clone()))
                    .collect(),
                children: Vec::new(),
            }),
            Ok(Some(rxml::Event::EndElement(_))) => {
                let done = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(TreeNode::Element(done)),
                    None => root = Some(done),
                }
            }
            Ok(Some(rxml::Event::Text(_, text))) => {
                if stack.len() > 1 {
                    push_text(&mut stack.last_mut()?.children, &text);
                }
            }
            Ok(Some(rxml::Event::XmlDeclaration(..))) => {}
            Ok(None) => return root,
            Err(_) => return None,
        }
    }
}

fn our_tree(outcome: &Outcome) -> Tree {
    let mut events = outcome.events.iter();
    let Some(StreamEvent::Open(header)) = events.next() else {
        panic!("no header: {outcome:?}")
    };
    let mut root = ours_to_tree(&header.element);
    for event in events {
        if let StreamEvent::Element(el) = event {
            root.children.push(TreeNode::Element(ours_to_tree(el)));
        }
    }
    root
}

fn check_round_trip(el: &Element) {
    let mut doc = b"<stream>".to_vec();
    el.write_to(&mut doc, "");
    let outcome = feed_in(
        &doc,
        &[],
        Limits {
            max_stanza_bytes: usize::MAX,
            max_depth: 1000,
        },
    );
    match &outcome.events[..] {
        [StreamEvent::Open(_), StreamEvent::Element(again)] if outcome.error.is_none() => {
            assert_eq!(again, el)
        }
        _ => panic!(
            "does not parse back: {}\n{outcome:?}",
            String::from_utf8_lossy(&doc)
        ),
    }
}

/// `doc` with every lone CR turned into LF, which XML's line-end normalisation makes equivalent everywhere. rxml
/// 0.14 mishandles a lone CR in attribute values and before `]` in CDATA sections, so it is no oracle for them;
/// the unit tests cover our handling.
fn without_lone_cr(mut doc: Vec<u8>) -> Vec<u8> {
    for i in 0..doc.len() {
        if doc[i] == b'\r' && doc.get(i + 1) != Some(&b'\n') {
            doc[i] = b'\n';
        }
    }
    doc
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

proptest! {
    // PROPTEST_CASES raises the count for a longer local run.
    #![proptest_config(Config {
        cases: Config::default().cases.max(300),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn fragments_do_not_matter(doc in any_document(), cuts in prop::collection::vec(any::<usize>(), 1..40)) {
        let small = Limits { max_stanza_bytes: 400, max_depth: 4 };
        for limits in [Limits::CLIENT, small] {
            let whole = feed_in(&doc, &[], limits);
            let fragmented = feed_in(&doc, &cuts, limits);
            prop_assert_eq!(&whole, &fragmented, "{}", String::from_utf8_lossy(&doc));
        }
    }

    #[test]
    fn rejects_whatever_rxml_rejects(doc in any_document()) {
        let doc = without_lone_cr(doc);
        let ours = feed_in(&doc, &[], Limits::CLIENT);
        let theirs = rxml_tree(&doc);
        if theirs.is_none() {
            prop_assert!(!ours.accepted(), "rxml rejects, we accept: {}\n{:?}", String::from_utf8_lossy(&doc), ours);
        }
        if let (true, Some(theirs)) = (ours.accepted(), theirs) {
            prop_assert_eq!(our_tree(&ours), theirs, "{}", String::from_utf8_lossy(&doc));
        }
    }

    #[test]
    fn valid_documents_match_rxml(doc in document()) {
        let doc = without_lone_cr(doc);
        let ours = feed_in(&doc, &[], Limits::CLIENT);
        prop_assert!(ours.accepted(), "{}\n{:?}", String::from_utf8_lossy(&doc), ours);
        let theirs = rxml_tree(&doc);
        prop_assert!(theirs.is_some(), "rxml rejects a generated document: {}", String::from_utf8_lossy(&doc));
        prop_assert_eq!(our_tree(&ours), theirs.unwrap_or_else(|| unreachable!()));
    }

    #[test]
    fn serialised_elements_parse_back(doc in any_document()) {
        let ours = feed_in(&doc, &[], Limits::CLIENT);
        for event in &ours.events {
            match event {
                StreamEvent::Open(header) => check_round_trip(&header.element),
                StreamEvent::Element(el) => check_round_trip(el),
                StreamEvent::Close => {}
            }
        }
    }

    #[test]
    fn fuzz_entry_holds(control in any::<u8>(), doc in any_document()) {
        let mut data = vec![control];
        data.extend_from_slice(&doc);
        rookery_xml::fuzzing::stream_parser(&data);
    }
}
