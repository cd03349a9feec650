//! The incremental, hardened stream parser.
//!
//! Two stages. A byte-level *framer* follows tags, quotes, CDATA sections and nesting depth just closely enough to
//! find where the current top-level element ends; it enforces the byte budget and the depth limit while the element
//! is still arriving, and rejects `<!` and `<?` constructs as soon as it sees them. The complete element's bytes
//! then go to quick-xml's reader and the tree builder, which does the full well-formedness and namespace checks
//! and builds the [`Element`]. Because the builder only ever sees complete elements, how the input was split into
//! fragments cannot change the result.

mod chars;
mod decl;
mod tree;

#[cfg(test)]
mod tests;

use memchr::{memchr, memchr_iter};

use self::chars::is_space;
use self::tree::TreeBuilder;
use crate::Element;

/// Limits that bound what one peer can make the parser hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element (stanza or nonza), in bytes as received. Prosody's c2s default is 256 KiB.
    pub max_stanza_bytes: usize,
    /// Deepest nesting inside a top-level element (the top-level element itself is at depth 1).
    pub max_depth: usize,
}

impl Limits {
    /// Client streams: 256 KiB per stanza, as Prosody's `c2s_stanza_size_limit`.
    pub const CLIENT: Self = Self {
        max_stanza_bytes: 256 * 1024,
        max_depth: 64,
    };
    /// Server-to-server and other streams: 1 MiB.
    pub const SERVER: Self = Self {
        max_stanza_bytes: 1024 * 1024,
        max_depth: 64,
    };
}

/// The stream header `<stream:stream …>` as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// The header element (no children) with its resolved name, namespace and attributes.
    pub element: Element,
    /// The default namespace (`xmlns='…'`) declared on the header: the content namespace of the stream
    /// (`jabber:client`, `jabber:server`, …). Empty when none was declared.
    pub default_ns: String,
}

/// What the parser found in the bytes fed to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// The opening tag of the stream.
    Open(StreamHeader),
    /// One complete top-level element (a stanza or a nonza such as `<starttls/>`).
    Element(Element),
    /// `</stream:stream>`.
    Close,
}

/// Why the stream cannot go on. Each maps to one RFC 6120 §4.9.3 stream error condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML (bad syntax, characters, names, unbound prefixes, duplicate attributes, …):
    /// `<not-well-formed/>`.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// XML that RFC 6120 §11 forbids (DOCTYPE, processing instructions, comments, entities other than the
    /// predefined and numeric ones): `<restricted-xml/>`.
    #[error("restricted XML: {0}")]
    Restricted(String),
    /// A top-level element over the byte budget, or nested too deep: `<policy-violation/>`.
    #[error("stanza too large or too deep: {0}")]
    TooLarge(String),
}

fn not_well_formed(message: &str) -> XmlError {
    XmlError::NotWellFormed(message.to_owned())
}

fn restricted(message: &str) -> XmlError {
    XmlError::Restricted(message.to_owned())
}

fn too_large(message: &str) -> XmlError {
    XmlError::TooLarge(message.to_owned())
}

/// Largest stream header, and largest XML declaration, in bytes. Real ones are a few hundred bytes.
const HEADER_MAX_BYTES: usize = 16 * 1024;

/// A buffer that has grown past this for one large stanza is given back once it is empty, so that one big stanza
/// does not pin its memory for the rest of the connection.
const MAX_IDLE_CAPACITY: usize = 64 * 1024;

/// `<![CDATA[`, the only `<!` construct allowed.
const CDATA_OPEN: &[u8] = b"<![CDATA[";

/// Where the framer is. States that scan a tag carry the quote state of [`TagScan::More`]; quotes are tracked
/// exactly as quick-xml does, so that both agree on where a tag ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the stream header. The XML declaration is allowed only as the very first bytes.
    Prolog {
        decl_allowed: bool,
    },
    /// After a `<` in the prolog.
    PrologMarkup {
        decl_allowed: bool,
    },
    /// Inside `<?xml …?>`.
    XmlDecl,
    /// Inside the stream header's start tag.
    Header {
        quote: u8,
    },
    /// Between top-level elements.
    StreamLevel,
    /// After a `<` at stream level.
    StreamMarkup,
    /// Inside the stream's closing tag.
    StreamEnd {
        quote: u8,
    },
    /// In character data inside a top-level element.
    Content,
    /// After a `<` inside a top-level element.
    Markup,
    StartTag {
        quote: u8,
    },
    EndTag {
        quote: u8,
    },
    /// Inside a CDATA section.
    Cdata,
    /// After the stream's closing tag.
    Closed,
}

/// What the framer found complete.
enum Frame {
    /// The stream header, from `start` to `end`.
    Header { end: usize, self_closing: bool },
    /// A top-level element, from `start` to `end`.
    Element { end: usize },
    /// The stream's closing tag.
    Close,
}

/// Quote state of a tag scan right after an attribute value's closing quote.
const AFTER_VALUE: u8 = 1;

/// Quote state of a tag scan right after a `/` outside attribute values, which only `>` may follow.
const AFTER_SLASH: u8 = 2;

/// Whether `b` may follow an attribute value: whitespace, or the end of the tag (`/` must then be followed by `>`,
/// which the scan checks next).
fn ends_value(b: u8) -> bool {
    is_space(b) || b == b'/' || b == b'>'
}

/// The scan of a tag after a `/` outside values: `next` is the byte after it, at index `at`. Only the tag's end may
/// follow.
fn close_after_slash(next: Option<&u8>, at: usize) -> Result<TagScan, XmlError> {
    match next {
        None => Ok(TagScan::More(AFTER_SLASH)),
        Some(b'>') => Ok(TagScan::End(at)),
        Some(_) => Err(not_well_formed("'/' not followed by '>' in a tag")),
    }
}

/// Result of scanning a tag for its end.
enum TagScan {
    /// Index of the closing `>`.
    End(usize),
    /// The tag goes on past the scanned bytes, in this quote state (0 outside values, the quote character inside
    /// one, [`AFTER_VALUE`] just after one, [`AFTER_SLASH`] just after a `/`).
    More(u8),
}

/// Incremental, namespace-aware parser of one XMPP stream: bytes in through [`StreamParser::feed`], events out of
/// [`StreamParser::next_event`]. It never does I/O and never panics on peer input.
pub struct StreamParser {
    /// The limits set by [`StreamParser::new`] or [`StreamParser::set_limits`].
    limits: Limits,
    /// The limits of the top-level element being framed: `limits` as they were when it started, so that changing
    /// them never changes the rules for an element half-way through.
    element_limits: Limits,
    /// Bytes fed; those before `head` are consumed.
    buf: Vec<u8>,
    head: usize,
    /// Where the framer resumes.
    pos: usize,
    /// Start of the declaration, header or top-level element being framed; its byte budget counts from here.
    start: usize,
    /// The `<` of the tag, declaration or CDATA section being scanned.
    tag: usize,
    /// Elements open inside the top-level element being framed, itself included.
    depth: usize,
    /// The names of those elements, as byte ranges relative to `start`, so that a mismatched end tag fails at once
    /// instead of leaving the framer waiting for an end that will never come. Bounded by the depth limit.
    open_names: Vec<(usize, usize)>,
    state: State,
    /// A self-closing stream header still owes its [`StreamEvent::Close`].
    close_pending: bool,
    error: Option<XmlError>,
    /// The stream header's name as written, which its closing tag must repeat.
    header_name: Vec<u8>,
    tree: TreeBuilder,
}

impl StreamParser {
    /// A parser that expects a stream header first and holds each stanza to `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            element_limits: limits,
            buf: Vec::new(),
            head: 0,
            pos: 0,
            start: 0,
            tag: 0,
            depth: 0,
            open_names: Vec::new(),
            state: State::Prolog { decl_allowed: true },
            close_pending: false,
            error: None,
            header_name: Vec::new(),
            tree: TreeBuilder::new(),
        }
    }

    /// The limits this parser enforces on the next top-level element.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits, e.g. to raise them once the peer has authenticated. They apply from the next top-level
    /// element on: an element already being framed (partly received) keeps the limits it started with, so that
    /// the outcome never depends on how the input was split into fragments.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Appends bytes received from the peer. Cheap; the work happens in [`StreamParser::next_event`].
    pub fn feed(&mut self, input: &[u8]) {
        if self.error.is_some() {
            // Dead: nothing will ever read these bytes, so don't hold them.
            return;
        }
        // Drop consumed bytes before growing, when that moves no more than it frees.
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.discard_consumed();
        }
        self.buf.extend_from_slice(input);
    }

    /// The next complete event, `Ok(None)` when more bytes are needed. After an `Err` the parser is dead and keeps
    /// returning that error (until [`StreamParser::reset`] or [`StreamParser::restart`]).
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.step();
        if let Err(error) = &result {
            self.error = Some(error.clone());
            self.buf = Vec::new();
            self.head = 0;
            self.pos = 0;
        }
        result
    }

    /// Forgets all state, including bytes fed but not yet parsed: the next thing expected is a new stream header
    /// (optionally preceded by an XML declaration). Used at STARTTLS, where bytes that arrived in plaintext must
    /// not be read as part of the encrypted stream. The limits stay as they are.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.head = 0;
        self.pos = 0;
        self.forget_stream();
    }

    /// Like [`StreamParser::reset`], but keeps the bytes fed and not yet consumed: they are parsed as the start of
    /// the new stream. Used at SASL success, where the client may already have sent its new stream header.
    ///
    /// Whitespace at the front of those bytes came after the last element of the old stream and is dropped with
    /// it, so that the new stream may still open with an XML declaration.
    pub fn restart(&mut self) {
        self.discard_consumed();
        let old_stream_space = self.buf.iter().take_while(|&&b| is_space(b)).count();
        self.buf.drain(..old_stream_space);
        self.forget_stream();
    }

    /// Number of bytes fed but not yet consumed by events (whitespace between stanzas may be counted).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Whether any byte fed and not yet consumed is something other than XML whitespace: the start of another
    /// element, or of anything else. Used to detect plaintext injected after `<starttls/>`, where whitespace after
    /// the element (a trailing newline) is harmless.
    pub fn has_pending_input(&self) -> bool {
        self.buf
            .get(self.head..)
            .unwrap_or_default()
            .iter()
            .any(|&b| !is_space(b))
    }

    /// Removes the consumed bytes from the front of the buffer.
    fn discard_consumed(&mut self) {
        self.buf.drain(..self.head);
        self.pos -= self.head;
        self.start = self.start.saturating_sub(self.head);
        self.tag = self.tag.saturating_sub(self.head);
        self.head = 0;
    }

    /// Everything but the buffer and the limits back to the start of a stream.
    fn forget_stream(&mut self) {
        self.pos = self.head;
        self.start = 0;
        self.tag = 0;
        self.depth = 0;
        self.open_names.clear();
        self.state = State::Prolog { decl_allowed: true };
        self.close_pending = false;
        self.error = None;
        self.header_name.clear();
        self.tree.reset();
        self.release_if_drained();
    }

    /// Once every byte is consumed, empties the buffer, which is cheap then and keeps it from growing with a peer
    /// that always sends whole stanzas; and gives back the memory a large stanza made it grow to.
    fn release_if_drained(&mut self) {
        if self.head < self.buf.len() {
            return;
        }
        self.head = 0;
        self.pos = 0;
        if self.buf.capacity() > MAX_IDLE_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if self.close_pending {
            self.close_pending = false;
            return Ok(Some(StreamEvent::Close));
        }
        let Some(frame) = self.frame()? else {
            return Ok(None);
        };
        let event = match frame {
            Frame::Header { end, self_closing } => {
                let header = self
                    .tree
                    .header(self.buf.get(self.start..end).unwrap_or_default())?;
                self.header_name = header.raw_name.into_bytes();
                self.consume(end);
                if self_closing {
                    self.close_pending = true;
                    self.state = State::Closed;
                } else {
                    self.state = State::StreamLevel;
                }
                StreamEvent::Open(StreamHeader {
                    element: header.element,
                    default_ns: header.default_ns,
                })
            }
            Frame::Element { end } => {
                let bytes = self.buf.get(self.start..end).unwrap_or_default();
                let element = self.tree.element(bytes, self.element_limits.max_depth)?;
                self.consume(end);
                self.state = State::StreamLevel;
                StreamEvent::Element(element)
            }
            Frame::Close => StreamEvent::Close,
        };
        Ok(Some(event))
    }

    fn consume(&mut self, end: usize) {
        self.head = end;
        self.pos = end;
        self.release_if_drained();
    }

    /// The end of the bytes the current construct may use: its budget, or what has been fed if that is less.
    fn limit(&self) -> usize {
        let budget = match self.state {
            State::StreamLevel | State::Closed | State::Prolog { .. } => return self.buf.len(),
            State::PrologMarkup { .. }
            | State::XmlDecl
            | State::Header { .. }
            | State::StreamEnd { .. } => HEADER_MAX_BYTES,
            State::StreamMarkup
            | State::Content
            | State::Markup
            | State::StartTag { .. }
            | State::EndTag { .. }
            | State::Cdata => self.element_limits.max_stanza_bytes,
        };
        self.start.saturating_add(budget).min(self.buf.len())
    }

    /// The framer ran out of bytes at `limit`: wait for more, or fail if the budget, not the input, ran out.
    fn starve(&self, limit: usize) -> Result<Option<Frame>, XmlError> {
        if limit >= self.buf.len() {
            return Ok(None);
        }
        Err(match self.state {
            State::PrologMarkup { .. } | State::XmlDecl => too_large("XML declaration too large"),
            State::Header { .. } | State::StreamEnd { .. } => too_large("stream header too large"),
            _ => too_large("stanza too large"),
        })
    }

    /// Skips whitespace where it means nothing and consumes it.
    fn skip_space(&mut self) -> bool {
        let skipped = self
            .buf
            .get(self.pos..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| is_space(b))
            .count();
        self.pos += skipped;
        self.head = self.pos;
        self.release_if_drained();
        skipped > 0
    }

    /// Classifies the `<!` at `self.tag`: `Ok(true)` once a whole `<![CDATA[` is there (allowed only inside an
    /// element), `Ok(false)` when more bytes are needed to tell.
    fn bang(&self, in_element: bool, limit: usize) -> Result<bool, XmlError> {
        let have = self
            .buf
            .get(self.tag..limit.min(self.tag + CDATA_OPEN.len()))
            .unwrap_or_default();
        match have.get(2) {
            None => Ok(false),
            Some(b'-') => Err(restricted("comments are not allowed")),
            Some(b'[') if !in_element => Err(not_well_formed("CDATA section outside an element")),
            Some(b'[') if !CDATA_OPEN.starts_with(have) => {
                Err(not_well_formed("malformed CDATA section"))
            }
            Some(b'[') => Ok(have.len() == CDATA_OPEN.len()),
            Some(_) => Err(restricted("DTDs are not allowed")),
        }
    }

    /// Scans from `self.pos` for the end of the tag being read, and checks that each attribute value is followed
    /// by whitespace or the end of the tag, which quick-xml does not (`<a x='1'y='2'>`). In a well-formed tag,
    /// quotes only delimit attribute values, so this is exactly the rule that attributes are separated.
    ///
    /// Also fails on a `/` outside values that is not immediately followed by `>` (`<a/ >`): otherwise the framer
    /// would take the tag for a start tag and wait for an end tag until the byte budget ran out.
    fn scan_tag(&self, limit: usize, mut quote: u8) -> Result<TagScan, XmlError> {
        let from = self.pos;
        let bytes = self.buf.get(from..limit).unwrap_or_default();
        let mut i = 0;
        match quote {
            AFTER_VALUE => match bytes.first() {
                None => return Ok(TagScan::More(AFTER_VALUE)),
                Some(&b) if ends_value(b) => quote = 0,
                Some(_) => return Err(not_well_formed("attributes not separated by whitespace")),
            },
            AFTER_SLASH => return close_after_slash(bytes.first(), from),
            _ => {}
        }
        while let Some(&b) = bytes.get(i) {
            if quote == 0 {
                // Names, whitespace and `=`: short runs, where a plain loop beats setting up a vector search.
                match b {
                    b'>' => return Ok(TagScan::End(from + i)),
                    b'/' => return close_after_slash(bytes.get(i + 1), from + i + 1),
                    b'\'' | b'"' => quote = b,
                    _ => {}
                }
                i += 1;
                continue;
            }
            // Inside a value, which may be long.
            let Some(close) = memchr(quote, &bytes[i..]).map(|n| i + n) else {
                return Ok(TagScan::More(quote));
            };
            match bytes.get(close + 1) {
                None => return Ok(TagScan::More(AFTER_VALUE)),
                Some(&next) if ends_value(next) => quote = 0,
                Some(_) => return Err(not_well_formed("attributes not separated by whitespace")),
            }
            i = close + 1;
        }
        Ok(TagScan::More(quote))
    }

    /// Where the name that starts at `from` ends, in a tag whose `>` is at `gt`.
    fn name_end(&self, from: usize, gt: usize) -> usize {
        let bytes = self.buf.get(from..gt).unwrap_or_default();
        from + bytes
            .iter()
            .position(|&b| is_space(b) || b == b'/')
            .unwrap_or(bytes.len())
    }

    /// Whether the tag whose `>` is at `gt` ends in `/>`.
    fn self_closing(&self, gt: usize) -> bool {
        gt > self.tag + 1 && self.buf.get(gt - 1) == Some(&b'/')
    }

    /// Advances through the fed bytes until something is complete, more bytes are needed, or an error.
    fn frame(&mut self) -> Result<Option<Frame>, XmlError> {
        loop {
            match self.state {
                State::Prolog { decl_allowed } => {
                    let skipped = self.skip_space();
                    let decl_allowed = decl_allowed && !skipped;
                    self.state = State::Prolog { decl_allowed };
                    let Some(&b) = self.buf.get(self.pos) else {
                        return Ok(None);
                    };
                    if b != b'<' {
                        return Err(not_well_formed("text before the stream header"));
                    }
                    self.start = self.pos;
                    self.tag = self.pos;
                    self.pos += 1;
                    self.state = State::PrologMarkup { decl_allowed };
                }
                State::PrologMarkup { decl_allowed } => {
                    let limit = self.limit();
                    let Some(&b) = self.buf.get(self.pos).filter(|_| self.pos < limit) else {
                        return self.starve(limit);
                    };
                    match b {
                        b'?' => {
                            // `<?xml` and whitespace opens the declaration; anything else is a processing
                            // instruction.
                            let have = self
                                .buf
                                .get(self.tag..limit.min(self.tag + 6))
                                .unwrap_or_default();
                            let still_decl = decl_allowed
                                && have
                                    .iter()
                                    .zip(b"<?xml ")
                                    .all(|(&h, &d)| h == d || (d == b' ' && is_space(h)));
                            if !still_decl {
                                return Err(restricted("processing instructions are not allowed"));
                            }
                            if have.len() < 6 {
                                return self.starve(limit);
                            }
                            self.pos = self.tag + 6;
                            self.state = State::XmlDecl;
                        }
                        b'!' => {
                            self.bang(false, limit)?;
                            return self.starve(limit);
                        }
                        b'/' => return Err(not_well_formed("end tag before the stream header")),
                        _ => self.state = State::Header { quote: 0 },
                    }
                }
                State::XmlDecl => {
                    let limit = self.limit();
                    let from = self.pos;
                    let haystack = self.buf.get(from..limit).unwrap_or_default();
                    let end = memchr_iter(b'>', haystack)
                        .map(|i| from + i)
                        .find(|&gt| self.buf[gt - 1] == b'?');
                    let Some(gt) = end else {
                        self.pos = limit;
                        return self.starve(limit);
                    };
                    decl::check_declaration(self.buf.get(self.start..=gt).unwrap_or_default())?;
                    self.pos = gt + 1;
                    self.head = self.pos;
                    self.state = State::Prolog {
                        decl_allowed: false,
                    };
                }
                State::Header { quote } => {
                    let limit = self.limit();
                    match self.scan_tag(limit, quote)? {
                        TagScan::End(gt) => {
                            self.pos = gt + 1;
                            return Ok(Some(Frame::Header {
                                end: gt + 1,
                                self_closing: self.self_closing(gt),
                            }));
                        }
                        TagScan::More(quote) => {
                            self.pos = limit;
                            self.state = State::Header { quote };
                            return self.starve(limit);
                        }
                    }
                }
                State::StreamLevel => {
                    self.skip_space();
                    let Some(&b) = self.buf.get(self.pos) else {
                        return Ok(None);
                    };
                    if b != b'<' {
                        return Err(not_well_formed("text at stream level"));
                    }
                    self.start = self.pos;
                    self.tag = self.pos;
                    self.pos += 1;
                    self.depth = 0;
                    self.open_names.clear();
                    self.element_limits = self.limits;
                    self.state = State::StreamMarkup;
                }
                State::StreamMarkup | State::Markup => {
                    let in_element = self.state == State::Markup;
                    let limit = self.limit();
                    let Some(&b) = self.buf.get(self.pos).filter(|_| self.pos < limit) else {
                        return self.starve(limit);
                    };
                    match b {
                        b'/' => {
                            self.pos += 1;
                            self.state = if in_element {
                                State::EndTag { quote: 0 }
                            } else {
                                State::StreamEnd { quote: 0 }
                            };
                        }
                        b'?' => return Err(restricted("processing instructions are not allowed")),
                        b'!' => {
                            if !self.bang(in_element, limit)? {
                                return self.starve(limit);
                            }
                            self.pos = self.tag + CDATA_OPEN.len();
                            self.state = State::Cdata;
                        }
                        _ => self.state = State::StartTag { quote: 0 },
                    }
                }
                State::StartTag { quote } => {
                    let limit = self.limit();
                    match self.scan_tag(limit, quote)? {
                        TagScan::End(gt) => {
                            self.pos = gt + 1;
                            if self.depth >= self.element_limits.max_depth {
                                return Err(too_large("element nested too deep"));
                            }
                            if !self.self_closing(gt) {
                                self.depth += 1;
                                let name_start = self.tag + 1;
                                let name_end = self.name_end(name_start, gt);
                                self.open_names
                                    .push((name_start - self.start, name_end - self.start));
                            } else if self.depth == 0 {
                                return Ok(Some(Frame::Element { end: gt + 1 }));
                            }
                            self.state = State::Content;
                        }
                        TagScan::More(quote) => {
                            self.pos = limit;
                            self.state = State::StartTag { quote };
                            return self.starve(limit);
                        }
                    }
                }
                State::EndTag { quote } => {
                    let limit = self.limit();
                    match self.scan_tag(limit, quote)? {
                        TagScan::End(gt) => {
                            self.pos = gt + 1;
                            let name_start = self.tag + 2;
                            let name_end = self.name_end(name_start, gt);
                            let opened = self.open_names.pop().and_then(|(from, to)| {
                                self.buf.get(self.start + from..self.start + to)
                            });
                            if opened != self.buf.get(name_start..name_end) {
                                return Err(not_well_formed(
                                    "end tag does not match the start tag",
                                ));
                            }
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                return Ok(Some(Frame::Element { end: gt + 1 }));
                            }
                            self.state = State::Content;
                        }
                        TagScan::More(quote) => {
                            self.pos = limit;
                            self.state = State::EndTag { quote };
                            return self.starve(limit);
                        }
                    }
                }
                State::Content => {
                    let limit = self.limit();
                    match memchr(b'<', self.buf.get(self.pos..limit).unwrap_or_default()) {
                        Some(i) => {
                            self.tag = self.pos + i;
                            self.pos = self.tag + 1;
                            self.state = State::Markup;
                        }
                        None => {
                            self.pos = limit;
                            return self.starve(limit);
                        }
                    }
                }
                State::Cdata => {
                    let limit = self.limit();
                    let from = self.pos;
                    let haystack = self.buf.get(from..limit).unwrap_or_default();
                    // The opener holds no `]`, so the first `]]>` after it ends the section.
                    let end = memchr_iter(b'>', haystack)
                        .map(|i| from + i)
                        .find(|&gt| self.buf.get(gt - 2..gt) == Some(b"]]"));
                    match end {
                        Some(gt) => {
                            self.pos = gt + 1;
                            self.state = State::Content;
                        }
                        None => {
                            self.pos = limit;
                            return self.starve(limit);
                        }
                    }
                }
                State::StreamEnd { quote } => {
                    let limit = self.limit();
                    match self.scan_tag(limit, quote)? {
                        TagScan::End(gt) => {
                            let name = self.buf.get(self.tag + 2..gt).unwrap_or_default();
                            let trimmed = name.len()
                                - name.iter().rev().take_while(|&&b| is_space(b)).count();
                            if name.get(..trimmed) != Some(&self.header_name[..]) {
                                return Err(not_well_formed("mismatched end tag"));
                            }
                            self.consume(gt + 1);
                            self.state = State::Closed;
                            return Ok(Some(Frame::Close));
                        }
                        TagScan::More(quote) => {
                            self.pos = limit;
                            self.state = State::StreamEnd { quote };
                            return self.starve(limit);
                        }
                    }
                }
                State::Closed => {
                    self.skip_space();
                    if self.pos < self.buf.len() {
                        return Err(not_well_formed("data after the end of the stream"));
                    }
                    return Ok(None);
                }
            }
        }
    }
}
