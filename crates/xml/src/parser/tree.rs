//! Builds [`Element`]s from the bytes of one complete top-level element (or the stream header), using quick-xml's
//! reader for tokens and doing everything it does not: character and name validation, reference resolution,
//! normalisation, and namespace resolution with the stream header's declarations in scope.

use std::collections::HashSet;

use quick_xml::errors::{Error as QxError, IllFormedError};
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::chars::{
    attr_value, attr_value_if_changed, check_forbidden_chars, is_ncname, push_normalized,
    push_text, resolve_reference, split_qname,
};
use super::{not_well_formed, too_large};
use crate::{Attribute, Element, Namespace, Node, XmlError, ns};

/// How many distinct namespaces read off the wire a parser keeps for reuse by later stanzas.
const INTERNED_MAX: usize = 32;

/// Most prefixes bound at once (stream header and open elements together). Resolving a prefix scans the bindings,
/// so without a cap a stanza full of declarations and prefixed names would cost quadratic time; real XMPP uses a
/// handful.
const MAX_PREFIX_BINDINGS: usize = 128;

/// Past this many prefixed attributes on one element, duplicates are found with a hash set instead of pairwise.
const PAIRWISE_MAX: usize = 8;

/// The element being built, and what its start tag put in scope.
struct Level {
    /// The default namespace inside the element.
    default: Namespace,
    /// Length of `TreeBuilder::prefixes` before the element's own declarations.
    prefixes_len: usize,
}

/// The stream header as parsed.
pub(super) struct Header {
    pub(super) element: Element,
    pub(super) default_ns: String,
    /// The header's name as written, e.g. `stream:stream`, which the closing tag must repeat.
    pub(super) raw_name: String,
}

pub(super) struct TreeBuilder {
    /// The default namespace declared on the stream header, in scope for every stanza.
    header_default: Namespace,
    /// Prefixes declared on the stream header.
    header_prefixes: Vec<(String, Namespace)>,
    /// Prefixes declared inside the element being built, innermost last.
    prefixes: Vec<(String, Namespace)>,
    /// Kept between stanzas so that building one allocates only what it returns.
    levels: Vec<Level>,
    stack: Vec<Element>,
    text: String,
    /// Namespaces read off the wire, shared by every element that uses them; see [`TreeBuilder::intern`].
    interned: Vec<Namespace>,
    next_evicted: usize,
}

impl TreeBuilder {
    pub(super) fn new() -> Self {
        Self {
            header_default: Namespace::NONE,
            header_prefixes: Vec::new(),
            prefixes: Vec::new(),
            levels: Vec::new(),
            stack: Vec::new(),
            text: String::new(),
            interned: Vec::new(),
            next_evicted: 0,
        }
    }

    /// Forgets the header's namespace declarations.
    pub(super) fn reset(&mut self) {
        self.header_default = Namespace::NONE;
        self.header_prefixes.clear();
    }

    /// Parses the stream header's start tag, `<` to `>`, and makes its declarations the scope of every stanza.
    pub(super) fn header(&mut self, bytes: &[u8]) -> Result<Header, XmlError> {
        self.reset();
        self.prefixes.clear();
        self.levels.clear();
        check_forbidden_chars(bytes)?;
        let mut reader = Reader::from_reader(bytes);
        let tag = match reader.read_event() {
            Ok(Event::Start(tag) | Event::Empty(tag)) => tag,
            Ok(_) => return Err(not_well_formed("malformed stream header")),
            Err(e) => return Err(map_error(&e)),
        };
        let (element, level) = self.open(&tag)?;
        self.header_prefixes = std::mem::take(&mut self.prefixes);
        self.header_default = level.default;
        Ok(Header {
            element,
            default_ns: self.header_default.as_str().to_owned(),
            raw_name: tag.name().0.to_owned(),
        })
    }

    /// Builds the element in `bytes`, which the framer has found to be one complete element, `<` to `>`.
    pub(super) fn element(&mut self, bytes: &[u8], max_depth: usize) -> Result<Element, XmlError> {
        let result = self.build(bytes, max_depth);
        // After an error the scratch state is left half-built; clear it so the next stanza starts clean (the
        // stream is dead anyway, but keep the builder's invariants simple).
        if result.is_err() {
            self.stack.clear();
        }
        self.levels.clear();
        self.prefixes.clear();
        self.text.clear();
        result
    }

    fn build(&mut self, bytes: &[u8], max_depth: usize) -> Result<Element, XmlError> {
        check_forbidden_chars(bytes)?;
        // quick-xml checks that each piece it reads is UTF-8, which covers every byte of the element.
        let mut reader = Reader::from_reader(bytes);
        let mut root = None;
        loop {
            let event = reader.read_event().map_err(|e| map_error(&e))?;
            if root.is_some() && !matches!(event, Event::Eof) {
                return Err(not_well_formed("content after the end of the element"));
            }
            match event {
                Event::Start(tag) => {
                    self.flush_text();
                    if self.levels.len() >= max_depth {
                        return Err(too_large("element nested too deep"));
                    }
                    let (element, level) = self.open(&tag)?;
                    self.stack.push(element);
                    self.levels.push(level);
                }
                Event::Empty(tag) => {
                    self.flush_text();
                    if self.levels.len() >= max_depth {
                        return Err(too_large("element nested too deep"));
                    }
                    let (element, level) = self.open(&tag)?;
                    self.prefixes.truncate(level.prefixes_len);
                    root = self.attach(element);
                }
                Event::End(_) => {
                    // quick-xml has checked that the name matches the start tag.
                    self.flush_text();
                    let (Some(element), Some(level)) = (self.stack.pop(), self.levels.pop()) else {
                        return Err(not_well_formed("unexpected end tag"));
                    };
                    self.prefixes.truncate(level.prefixes_len);
                    root = self.attach(element);
                }
                Event::Text(raw) => {
                    if self.stack.is_empty() {
                        return Err(not_well_formed("text outside the element"));
                    }
                    push_text(&mut self.text, &raw)?;
                }
                Event::GeneralRef(name) => {
                    if self.stack.is_empty() {
                        return Err(not_well_formed("text outside the element"));
                    }
                    resolve_reference(&name, &mut self.text)?;
                }
                Event::CData(data) => {
                    if self.stack.is_empty() {
                        return Err(not_well_formed("text outside the element"));
                    }
                    push_normalized(&mut self.text, &data);
                }
                // The framer rejects these before quick-xml can see them; this only keeps the builder safe on
                // its own.
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {
                    return Err(not_well_formed("unexpected markup"));
                }
                Event::Eof => break,
            }
        }
        root.ok_or_else(|| not_well_formed("unterminated element"))
    }

    /// Moves pending text into the innermost open element.
    fn flush_text(&mut self) {
        if self.text.is_empty() {
            return;
        }
        if let Some(parent) = self.stack.last_mut() {
            parent
                .nodes_mut()
                .push(Node::Text(self.text.as_str().to_owned()));
        }
        self.text.clear();
    }

    /// Adds a finished element to its parent, or returns it when it is the root.
    fn attach(&mut self, element: Element) -> Option<Element> {
        match self.stack.last_mut() {
            Some(parent) => {
                parent.nodes_mut().push(Node::Element(element));
                None
            }
            None => Some(element),
        }
    }

    /// Processes a start tag: its namespace declarations (left on `self.prefixes`), name and attributes.
    fn open(&mut self, tag: &BytesStart<'_>) -> Result<(Element, Level), XmlError> {
        let (prefix, local) = split_qname(tag.name().0)?;
        let prefixes_len = self.prefixes.len();
        let mut default_decl = None;
        let mut attrs = Vec::new();
        // Attributes with a prefix other than `xml` keep their raw name until every declaration of the tag is
        // known, since a declaration may follow the attribute that uses it.
        let mut prefixed = 0;

        // quick-xml checks attribute syntax and rejects two attributes with the same raw name; two that only
        // resolve to the same name are caught below.
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| match e {
                AttrError::Duplicated(..) => not_well_formed("duplicate attribute"),
                _ => not_well_formed("malformed attribute"),
            })?;
            let key = attr.key.0;
            if let Some(declared) = key.strip_prefix("xmlns") {
                if declared.is_empty() {
                    default_decl = Some(self.declared_namespace(None, &attr.value)?);
                    continue;
                }
                if let Some(declared) = declared.strip_prefix(':') {
                    let uri = self.declared_namespace(Some(declared), &attr.value)?;
                    // `xmlns:xml` may only restate what is always bound; it changes nothing.
                    if declared != "xml" {
                        if self.prefixes.len() + self.header_prefixes.len() >= MAX_PREFIX_BINDINGS {
                            return Err(too_large("too many namespace declarations"));
                        }
                        self.prefixes.push((declared.to_owned(), uri));
                    }
                    continue;
                }
            }
            let (attr_prefix, attr_local) = split_qname(key)?;
            let value = attr_value(&attr.value)?;
            let (ns, name) = match attr_prefix {
                None => (Namespace::NONE, attr_local.to_owned()),
                Some("xml") => (Namespace::from(ns::XML), attr_local.to_owned()),
                Some(_) => {
                    prefixed += 1;
                    (Namespace::NONE, key.to_owned())
                }
            };
            attrs.push(Attribute { ns, name, value });
        }

        let default = match default_decl {
            Some(ns) => ns,
            None => self
                .levels
                .last()
                .map_or_else(|| self.header_default.clone(), |l| l.default.clone()),
        };
        let ns = match prefix {
            None => default.clone(),
            Some("xml" | "xmlns") => return Err(not_well_formed("element with a reserved prefix")),
            Some(p) => self.lookup(p)?,
        };
        if prefixed > 0 {
            self.resolve_prefixed_attributes(&mut attrs, prefixed)?;
        }
        Ok((
            Element::from_parts(local.to_owned(), ns, attrs),
            Level {
                default,
                prefixes_len,
            },
        ))
    }

    /// Resolves the attributes that still carry their raw `prefix:local` name (the only ones whose name contains a
    /// colon) and rejects two that resolve to the same namespace and local name.
    fn resolve_prefixed_attributes(
        &self,
        attrs: &mut [Attribute],
        count: usize,
    ) -> Result<(), XmlError> {
        for attr in attrs.iter_mut() {
            if let Some(colon) = attr.name.find(':') {
                attr.ns = self.lookup(&attr.name[..colon])?;
                attr.name.drain(..=colon);
            }
        }
        // Unprefixed attributes have no namespace, `xml:` ones the XML namespace, and no other prefix can be bound
        // to either, so only the prefixed ones can collide without having the same raw name.
        let mut resolved = attrs
            .iter()
            .filter(|a| !a.ns.is_empty() && a.ns.as_str() != ns::XML);
        let duplicate = if count <= PAIRWISE_MAX {
            let list: Vec<&Attribute> = resolved.collect();
            list.iter()
                .enumerate()
                .any(|(i, a)| list[..i].iter().any(|b| a.name == b.name && a.ns == b.ns))
        } else {
            let mut seen = HashSet::with_capacity(count);
            !resolved.all(|a| seen.insert((a.ns.as_str(), a.name.as_str())))
        };
        if duplicate {
            return Err(not_well_formed("duplicate attribute"));
        }
        Ok(())
    }

    /// The namespace a declaration binds (`prefix` is `None` for `xmlns='…'`), enforcing Namespaces in XML 1.0:
    /// prefixes cannot be undeclared, `xmlns` cannot be declared, and the `xml` and `xmlns` namespace names
    /// belong to their own prefixes only.
    fn declared_namespace(
        &mut self,
        prefix: Option<&str>,
        raw: &str,
    ) -> Result<Namespace, XmlError> {
        let unescaped = attr_value_if_changed(raw)?;
        let uri = unescaped.as_deref().unwrap_or(raw);
        let reserved = || not_well_formed("reserved namespace or prefix");
        match prefix {
            Some(p) if !is_ncname(p) => return Err(not_well_formed("invalid namespace prefix")),
            Some("xmlns") => return Err(reserved()),
            Some("xml") if uri != ns::XML => return Err(reserved()),
            Some("xml") => {}
            _ if uri == ns::XML || uri == ns::XMLNS => return Err(reserved()),
            Some(_) if uri.is_empty() => {
                return Err(not_well_formed("empty namespace name for a prefix"));
            }
            _ => {}
        }
        Ok(self.intern(uri))
    }

    /// The namespace bound to `prefix` where the element being opened is.
    fn lookup(&self, prefix: &str) -> Result<Namespace, XmlError> {
        if prefix == "xml" {
            return Ok(Namespace::from(ns::XML));
        }
        self.prefixes
            .iter()
            .rev()
            .chain(self.header_prefixes.iter().rev())
            .find(|(p, _)| p == prefix)
            .map(|(_, ns)| ns.clone())
            .ok_or_else(|| not_well_formed("unbound namespace prefix"))
    }

    /// A [`Namespace`] for `uri`: a static one for the namespaces XMPP uses all the time (no allocation, and
    /// clones are plain copies), else one shared with earlier elements that used the same URI.
    fn intern(&mut self, uri: &str) -> Namespace {
        if let Some(known) = well_known(uri) {
            return Namespace::from(known);
        }
        if let Some(ns) = self.interned.iter().find(|ns| ns.as_str() == uri) {
            return ns.clone();
        }
        let ns = Namespace::shared(uri);
        if self.interned.len() < INTERNED_MAX {
            self.interned.push(ns.clone());
        } else if let Some(slot) = self.interned.get_mut(self.next_evicted) {
            *slot = ns.clone();
            self.next_evicted = (self.next_evicted + 1) % INTERNED_MAX;
        }
        ns
    }
}

/// Namespaces common enough in client and server streams to be worth recognising.
fn well_known(uri: &str) -> Option<&'static str> {
    Some(match uri {
        ns::CLIENT => ns::CLIENT,
        ns::SERVER => ns::SERVER,
        ns::STREAMS => ns::STREAMS,
        ns::STREAM_ERRORS => ns::STREAM_ERRORS,
        ns::STANZA_ERRORS => ns::STANZA_ERRORS,
        ns::TLS => ns::TLS,
        ns::SASL => ns::SASL,
        ns::BIND => ns::BIND,
        ns::SESSION => ns::SESSION,
        ns::PING => ns::PING,
        ns::DISCO_INFO => ns::DISCO_INFO,
        ns::DISCO_ITEMS => ns::DISCO_ITEMS,
        "jabber:server:dialback" => "jabber:server:dialback",
        "jabber:iq:roster" => "jabber:iq:roster",
        "jabber:x:data" => "jabber:x:data",
        "urn:xmpp:sm:3" => "urn:xmpp:sm:3",
        "urn:xmpp:sid:0" => "urn:xmpp:sid:0",
        "urn:xmpp:receipts" => "urn:xmpp:receipts",
        "urn:xmpp:chat-markers:0" => "urn:xmpp:chat-markers:0",
        "urn:xmpp:carbons:2" => "urn:xmpp:carbons:2",
        "urn:xmpp:forward:0" => "urn:xmpp:forward:0",
        "urn:xmpp:delay" => "urn:xmpp:delay",
        "urn:xmpp:mam:2" => "urn:xmpp:mam:2",
        "urn:xmpp:hints" => "urn:xmpp:hints",
        "urn:xmpp:csi:0" => "urn:xmpp:csi:0",
        "urn:xmpp:avatar:metadata" => "urn:xmpp:avatar:metadata",
        "urn:xmpp:avatar:data" => "urn:xmpp:avatar:data",
        "urn:xmpp:omemo:2" => "urn:xmpp:omemo:2",
        "urn:xmpp:message-correct:0" => "urn:xmpp:message-correct:0",
        "urn:xmpp:reply:0" => "urn:xmpp:reply:0",
        "urn:xmpp:reactions:0" => "urn:xmpp:reactions:0",
        "urn:xmpp:jingle-message:0" => "urn:xmpp:jingle-message:0",
        "eu.siacs.conversations.axolotl" => "eu.siacs.conversations.axolotl",
        "http://jabber.org/protocol/chatstates" => "http://jabber.org/protocol/chatstates",
        "http://jabber.org/protocol/caps" => "http://jabber.org/protocol/caps",
        "http://jabber.org/protocol/pubsub" => "http://jabber.org/protocol/pubsub",
        "http://jabber.org/protocol/pubsub#event" => "http://jabber.org/protocol/pubsub#event",
        "http://jabber.org/protocol/muc" => "http://jabber.org/protocol/muc",
        "http://jabber.org/protocol/muc#user" => "http://jabber.org/protocol/muc#user",
        "http://jabber.org/protocol/rsm" => "http://jabber.org/protocol/rsm",
        "vcard-temp" => "vcard-temp",
        "vcard-temp:x:update" => "vcard-temp:x:update",
        "jabber:x:oob" => "jabber:x:oob",
        _ => return None,
    })
}

/// quick-xml's errors as ours. Its messages can quote names of any length, so only the kind is kept.
fn map_error(error: &QxError) -> XmlError {
    not_well_formed(match error {
        QxError::IllFormed(
            IllFormedError::MismatchedEndTag { .. } | IllFormedError::UnmatchedEndTag(_),
        ) => "mismatched end tag",
        QxError::IllFormed(IllFormedError::UnclosedReference) => "unterminated reference",
        QxError::Encoding(_) => "invalid UTF-8",
        _ => "malformed markup",
    })
}
