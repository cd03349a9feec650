//! rxml as an oracle for the stream parser: the input is the body of a client stream (a fixed header before it,
//! the closing tag after it); whatever rxml rejects must not be accepted as a complete stream, and where both
//! accept, both must build the same tree.
//!
//! A lone CR is turned into LF first: XML makes them equivalent, and rxml 0.14 mishandles a lone CR inside
//! attribute values and CDATA sections.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use rookery_xml::{Element, Limits, Node, StreamEvent, StreamParser};
use rxml::{Parse, WithOptions};

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:a='urn:a' to='example.org' version='1.0'>";

#[derive(Debug, PartialEq)]
struct Tree {
    ns: String,
    name: String,
    attrs: BTreeMap<(String, String), String>,
    children: Vec<Child>,
}

#[derive(Debug, PartialEq)]
enum Child {
    Element(Tree),
    Text(String),
}

fn push_text(children: &mut Vec<Child>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Child::Text(last)) = children.last_mut() {
        last.push_str(text);
    } else {
        children.push(Child::Text(text.to_owned()));
    }
}

fn tree(el: &Element) -> Tree {
    let mut children = Vec::new();
    for node in el.nodes() {
        match node {
            Node::Element(child) => children.push(Child::Element(tree(child))),
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

/// Our tree of the whole stream, if we accept it as complete and closed.
fn ours(doc: &[u8]) -> Option<Tree> {
    let mut parser = StreamParser::new(Limits {
        max_stanza_bytes: 1 << 20,
        max_depth: 1000,
    });
    parser.feed(doc);
    let mut root: Option<Tree> = None;
    loop {
        match parser.next_event() {
            Ok(Some(StreamEvent::Open(header))) => root = Some(tree(&header.element)),
            Ok(Some(StreamEvent::Element(el))) => {
                root.as_mut()?.children.push(Child::Element(tree(&el)))
            }
            Ok(Some(StreamEvent::Close)) => {
                return if parser.next_event() == Ok(None) {
                    root
                } else {
                    None
                };
            }
            Ok(None) | Err(_) => return None,
        }
    }
}

/// rxml's tree of the whole document, without text directly inside the root.
fn theirs(doc: &[u8]) -> Option<Tree> {
    let options = rxml::Options {
        max_token_length: 1 << 20,
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
                    Some(parent) => parent.children.push(Child::Element(done)),
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

fuzz_target!(|body: &[u8]| {
    let mut doc = HEADER.to_vec();
    doc.extend_from_slice(body);
    doc.extend_from_slice(b"</stream:stream>");
    for i in 0..doc.len() {
        if doc[i] == b'\r' && doc.get(i + 1) != Some(&b'\n') {
            doc[i] = b'\n';
        }
    }
    let ours = ours(&doc);
    let theirs = theirs(&doc);
    match (&ours, &theirs) {
        (Some(_), None) => panic!(
            "rxml rejects, we accept: {:?}",
            String::from_utf8_lossy(&doc)
        ),
        (Some(a), Some(b)) => assert_eq!(a, b, "trees differ: {:?}", String::from_utf8_lossy(&doc)),
        _ => {}
    }
});
