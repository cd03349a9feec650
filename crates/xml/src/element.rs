//! The element tree that every stanza is held in, and its serialiser.
//!
//! Names and attribute values are plain strings; a namespace is a [`Namespace`], which is cheap to clone because the
//! parser shares one allocation between an element and the children that inherit its namespace.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::escape::{escape_attr, escape_text};
use crate::ns;

/// A namespace URI.
///
/// Well-known namespaces are `&'static str` and cost nothing to make; namespaces read off the wire are shared
/// between the elements of a stanza.
#[derive(Clone)]
pub struct Namespace(NsRepr);

#[derive(Clone)]
enum NsRepr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Namespace {
    /// The empty namespace (no `xmlns`), used for attributes without a prefix.
    pub const NONE: Self = Self(NsRepr::Static(""));

    /// A namespace from a string that is not `'static`.
    pub fn shared(uri: &str) -> Self {
        Self(NsRepr::Shared(Arc::from(uri)))
    }

    /// The namespace URI.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            NsRepr::Static(s) => s,
            NsRepr::Shared(s) => s,
        }
    }
}

impl Deref for Namespace {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Namespace {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Namespace {}

impl PartialEq<str> for Namespace {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Namespace {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for Namespace {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Namespace {
    fn from(s: &'static str) -> Self {
        Self(NsRepr::Static(s))
    }
}

impl From<String> for Namespace {
    fn from(s: String) -> Self {
        Self(NsRepr::Shared(Arc::from(s)))
    }
}

impl From<Arc<str>> for Namespace {
    fn from(s: Arc<str>) -> Self {
        Self(NsRepr::Shared(s))
    }
}

impl From<&Self> for Namespace {
    fn from(ns: &Self) -> Self {
        ns.clone()
    }
}

/// One attribute. `ns` is [`Namespace::NONE`] for the usual unprefixed attributes; `xml:lang` has the XML
/// namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub ns: Namespace,
    pub name: String,
    pub value: String,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An XML element with its namespace, attributes and children.
#[derive(Clone, PartialEq, Eq)]
pub struct Element {
    name: String,
    ns: Namespace,
    attrs: Vec<Attribute>,
    nodes: Vec<Node>,
}

impl Element {
    /// A new empty element.
    pub fn new(name: impl Into<String>, ns: impl Into<Namespace>) -> Self {
        Self {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// An element with the attributes the parser has already resolved and checked.
    pub(crate) fn from_parts(name: String, ns: Namespace, attrs: Vec<Attribute>) -> Self {
        Self {
            name,
            ns,
            attrs,
            nodes: Vec::new(),
        }
    }

    /// Builder form of [`Element::set_attr`].
    #[must_use]
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder form of [`Element::append_child`].
    #[must_use]
    pub fn with_child(mut self, child: Self) -> Self {
        self.nodes.push(Node::Element(child));
        self
    }

    /// Builder form of [`Element::append_text`].
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.append_text(text);
        self
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace URI.
    pub fn ns(&self) -> &str {
        self.ns.as_str()
    }

    /// The namespace, for sharing it with a new element.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// Moves the element into another namespace, e.g. a stanza from `jabber:client` to `jabber:server`. Children
    /// that inherited the old namespace move with it.
    pub fn set_namespace(&mut self, ns: impl Into<Namespace>) {
        let new = ns.into();
        let old = std::mem::replace(&mut self.ns, new.clone());
        for node in &mut self.nodes {
            if let Node::Element(child) = node
                && child.ns == old
            {
                child.set_namespace(new.clone());
            }
        }
    }

    /// Whether the element has this name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns.as_str() == ns
    }

    /// The value of an unprefixed attribute, or of `xml:lang` when asked for `"xml:lang"`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        let (ns, local) = split_attr_name(name);
        self.attr_ns(local, ns)
    }

    /// The value of an attribute in a namespace (`""` for none).
    pub fn attr_ns(&self, name: &str, ns: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name && a.ns.as_str() == ns)
            .map(|a| a.value.as_str())
    }

    /// Sets an unprefixed attribute (or `xml:lang`), replacing any old value.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let (ns, local) = split_attr_name(name);
        let value = value.into();
        if let Some(a) = self
            .attrs
            .iter_mut()
            .find(|a| a.name == local && a.ns.as_str() == ns)
        {
            a.value = value;
        } else {
            let ns = if ns.is_empty() {
                Namespace::NONE
            } else {
                Namespace::from(ns::XML)
            };
            self.attrs.push(Attribute {
                ns,
                name: local.to_owned(),
                value,
            });
        }
    }

    /// Removes an unprefixed attribute (or `xml:lang`), returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let (ns, local) = split_attr_name(name);
        let pos = self
            .attrs
            .iter()
            .position(|a| a.name == local && a.ns.as_str() == ns)?;
        Some(self.attrs.remove(pos).value)
    }

    /// Adds an attribute as read off the wire. The parser has already rejected duplicates.
    pub fn push_attribute(&mut self, attr: Attribute) {
        self.attrs.push(attr);
    }

    /// All attributes, in document order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attrs
    }

    /// All children, elements and text, in document order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// All children, for editing in place.
    pub fn nodes_mut(&mut self) -> &mut Vec<Node> {
        &mut self.nodes
    }

    /// The child elements, in document order.
    pub fn children(&self) -> impl Iterator<Item = &Self> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The child elements, for editing in place.
    pub fn children_mut(&mut self) -> impl Iterator<Item = &mut Self> {
        self.nodes.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element, whatever its name.
    pub fn first_child(&self) -> Option<&Self> {
        self.children().next()
    }

    /// The first child element with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Self> {
        self.children().find(|c| c.is(name, ns))
    }

    /// The first child element with this name and namespace, for editing.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Self> {
        self.children_mut().find(|c| c.is(name, ns))
    }

    /// Whether there is a child element with this name and namespace.
    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.get_child(name, ns).is_some()
    }

    /// Appends a child element and returns it for further building.
    pub fn append_child(&mut self, child: Self) -> &mut Self {
        self.nodes.push(Node::Element(child));
        match self.nodes.last_mut() {
            Some(Node::Element(e)) => e,
            _ => unreachable!("an element was just pushed"),
        }
    }

    /// Appends text, merging it with text right before it.
    pub fn append_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        if let Some(Node::Text(last)) = self.nodes.last_mut() {
            last.push_str(&text);
        } else {
            self.nodes.push(Node::Text(text));
        }
    }

    /// Removes and returns the first child element with this name and namespace.
    pub fn remove_child(&mut self, name: &str, ns: &str) -> Option<Self> {
        let pos = self
            .nodes
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.is(name, ns)))?;
        match self.nodes.remove(pos) {
            Node::Element(e) => Some(e),
            Node::Text(_) => unreachable!("position matched an element"),
        }
    }

    /// Removes every child element for which `keep` returns false; text is kept.
    pub fn retain_children(&mut self, mut keep: impl FnMut(&Self) -> bool) {
        self.nodes.retain(|n| match n {
            Node::Element(e) => keep(e),
            Node::Text(_) => true,
        });
    }

    /// The text directly inside this element (not inside its children), concatenated.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// Appends the element's XML to `out`. `parent_ns` is the default namespace in scope where the element is
    /// written (for a stanza, the stream's content namespace): an element in that namespace gets no `xmlns`.
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        out.push(b'<');
        out.extend_from_slice(self.name.as_bytes());
        if self.ns.as_str() != parent_ns {
            out.extend_from_slice(b" xmlns='");
            escape_attr(out, self.ns.as_str());
            out.push(b'\'');
        }
        let mut prefix_counter = 0u32;
        for a in &self.attrs {
            out.push(b' ');
            if a.ns.is_empty() {
                out.extend_from_slice(a.name.as_bytes());
            } else if a.ns.as_str() == ns::XML {
                out.extend_from_slice(b"xml:");
                out.extend_from_slice(a.name.as_bytes());
            } else {
                // A namespaced attribute other than xml:*: declare a private prefix right here. Rare in XMPP, but
                // a server must forward such payloads intact.
                prefix_counter += 1;
                let prefix = format!("ns{prefix_counter}");
                out.extend_from_slice(b"xmlns:");
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(b"='");
                escape_attr(out, a.ns.as_str());
                out.extend_from_slice(b"' ");
                out.extend_from_slice(prefix.as_bytes());
                out.push(b':');
                out.extend_from_slice(a.name.as_bytes());
            }
            out.extend_from_slice(b"='");
            escape_attr(out, &a.value);
            out.push(b'\'');
        }
        if self.nodes.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for n in &self.nodes {
            match n {
                Node::Element(e) => e.write_to(out, self.ns.as_str()),
                Node::Text(t) => escape_text(out, t),
            }
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'>');
    }

    /// The element as a standalone XML string, with its `xmlns` always declared.
    pub fn to_xml_string(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out, "");
        String::from_utf8(out).expect("the serialiser writes UTF-8")
    }
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xml_string())
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xml_string())
    }
}

/// `"xml:lang"` names the `lang` attribute in the XML namespace; every other name is unprefixed.
fn split_attr_name(name: &str) -> (&'static str, &str) {
    match name.strip_prefix("xml:") {
        Some(local) => (ns::XML, local),
        None => ("", name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_serialises_with_inherited_namespace() {
        let el = Element::new("message", ns::CLIENT)
            .with_attr("to", "juliet@example.com")
            .with_attr("xml:lang", "en")
            .with_child(Element::new("body", ns::CLIENT).with_text("a < b & 'c'"))
            .with_child(Element::new("ping", ns::PING));
        let mut out = Vec::new();
        el.write_to(&mut out, ns::CLIENT);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<message to='juliet@example.com' xml:lang='en'><body>a &lt; b &amp; 'c'</body>\
             <ping xmlns='urn:xmpp:ping'/></message>"
        );
        assert_eq!(el.attr("xml:lang"), Some("en"));
        assert_eq!(
            el.get_child("body", ns::CLIENT).unwrap().text(),
            "a < b & 'c'"
        );
    }

    #[test]
    fn attribute_values_escape_quotes_and_whitespace() {
        let el = Element::new("x", "urn:x").with_attr("a", "it's \"q\"\t\n<&>");
        assert_eq!(
            el.to_xml_string(),
            "<x xmlns='urn:x' a='it&apos;s &quot;q&quot;&#9;&#10;&lt;&amp;&gt;'/>"
        );
    }

    #[test]
    fn namespaced_attribute_gets_a_declared_prefix() {
        let mut el = Element::new("x", "urn:x");
        el.push_attribute(Attribute {
            ns: Namespace::shared("urn:other"),
            name: "b".into(),
            value: "1".into(),
        });
        assert_eq!(
            el.to_xml_string(),
            "<x xmlns='urn:x' xmlns:ns1='urn:other' ns1:b='1'/>"
        );
    }

    #[test]
    fn set_namespace_moves_inheriting_children() {
        let mut el = Element::new("message", ns::CLIENT)
            .with_child(Element::new("body", ns::CLIENT))
            .with_child(Element::new("x", "urn:x"));
        el.set_namespace(ns::SERVER);
        assert!(el.get_child("body", ns::SERVER).is_some());
        assert!(el.get_child("x", "urn:x").is_some());
    }

    #[test]
    fn editing_children_and_attributes() {
        let mut el = Element::new("iq", ns::CLIENT).with_attr("id", "1");
        el.set_attr("id", "2");
        assert_eq!(el.attr("id"), Some("2"));
        assert_eq!(el.remove_attr("id"), Some("2".to_owned()));
        assert_eq!(el.attr("id"), None);
        el.append_child(Element::new("query", ns::DISCO_INFO));
        el.append_text("a");
        el.append_text("b");
        assert_eq!(el.text(), "ab");
        assert!(el.remove_child("query", ns::DISCO_INFO).is_some());
        assert!(el.first_child().is_none());
    }
}
