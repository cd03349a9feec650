//! XML for XMPP streams: the element tree, its serialiser, and a hardened incremental stream parser.
//!
//! The parser accepts only the restricted XML that RFC 6120 §11 allows and never trusts its peer: every stanza has a
//! byte budget and a depth limit, and everything that is not well-formed, namespace-well-formed XML is an error.
//! Nothing here does I/O: bytes go in, [`StreamEvent`]s come out.
#![forbid(unsafe_code)]

mod element;
mod escape;
pub mod ns;

pub use element::{Attribute, Element, Namespace, Node};
pub use escape::{escape_attr, escape_text};

mod parser;
pub use parser::{Limits, StreamEvent, StreamHeader, StreamParser, XmlError};

mod stored;
pub use stored::parse_element;

#[doc(hidden)]
pub mod fuzzing;
