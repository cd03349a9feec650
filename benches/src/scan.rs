//! A small, forgiving scanner for the XMPP stream during login, and the cheap message counter used while flooding.
//!
//! The login handshake only needs to find complete top-level elements (children of `<stream:stream>`) and read a
//! few attributes and texts from them, so this is not a general XML parser: it assumes well-formed input, as
//! servers send, and knows no DTDs, comments or CDATA (which XMPP forbids anyway). Element names are compared by
//! their local part, so any namespace prefix works.

use memchr::memmem::{Finder, FinderRev};

/// One thing found at the top level of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Top<'a> {
    /// The server's `<stream:stream …>` start tag.
    StreamOpen,
    /// A complete child of the stream, from its `<` to its last `>`.
    Element(&'a [u8]),
    /// The server's `</stream:stream>`.
    StreamClose,
}

/// The kind of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Start,
    End,
    Empty,
}

/// One tag: its kind, its qualified name, the whole tag (`<` to `>`) and the offset just after it.
#[derive(Debug, Clone, Copy)]
pub struct Tag<'a> {
    pub kind: TagKind,
    pub name: &'a [u8],
    pub raw: &'a [u8],
    pub end: usize,
}

impl Tag<'_> {
    /// The name without its prefix.
    pub fn local_name(&self) -> &[u8] {
        local(self.name)
    }
}

fn local(name: &[u8]) -> &[u8] {
    match memchr::memchr(b':', name) {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The tag starting at `buf[at] == b'<'`, or `None` if it is not complete yet. Processing instructions
/// (`<?…?>`) come back as an `Empty` tag named `?`.
pub fn tag_at(buf: &[u8], at: usize) -> Option<Tag<'_>> {
    debug_assert_eq!(buf.get(at), Some(&b'<'));
    let rest = &buf[at..];
    if rest.get(1) == Some(&b'?') {
        let end = memchr::memmem::find(rest, b"?>")? + 2;
        return Some(Tag {
            kind: TagKind::Empty,
            name: b"?",
            raw: &rest[..end],
            end: at + end,
        });
    }
    // Find the closing '>' outside quoted attribute values.
    let mut quote = None;
    let mut i = 1;
    let close = loop {
        let b = *rest.get(i)?;
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => break i,
            None => {}
        }
        i += 1;
    };
    let raw = &rest[..=close];
    let (kind, name_start) = if raw.get(1) == Some(&b'/') {
        (TagKind::End, 2)
    } else if close >= 2 && raw[close - 1] == b'/' {
        (TagKind::Empty, 1)
    } else {
        (TagKind::Start, 1)
    };
    let name_end = raw[name_start..]
        .iter()
        .position(|&b| is_space(b) || b == b'/' || b == b'>')
        .map_or(raw.len(), |p| name_start + p);
    Some(Tag {
        kind,
        name: &raw[name_start..name_end],
        raw,
        end: at + close + 1,
    })
}

/// Finds the next top-level item in `buf`. `in_stream` says whether the stream header was already seen; it is set
/// when the header is found. Returns the item and how many bytes it used, or `None` if more input is needed.
pub fn next_top<'a>(buf: &'a [u8], in_stream: &mut bool) -> Option<(Top<'a>, usize)> {
    let mut pos = 0;
    loop {
        while pos < buf.len() && buf[pos] != b'<' {
            // Whitespace keepalives and (invalid) stray text between top-level elements are skipped.
            pos += 1;
        }
        if pos >= buf.len() {
            return None;
        }
        let tag = tag_at(buf, pos)?;
        match tag.kind {
            TagKind::Empty if tag.name == b"?" => {
                pos = tag.end;
            }
            TagKind::End => return Some((Top::StreamClose, tag.end)),
            TagKind::Start if !*in_stream && tag.local_name() == b"stream" => {
                *in_stream = true;
                return Some((Top::StreamOpen, tag.end));
            }
            TagKind::Empty => return Some((Top::Element(tag.raw), tag.end)),
            TagKind::Start => {
                let start = pos;
                let mut depth = 1usize;
                let mut p = tag.end;
                while depth > 0 {
                    let lt = p + memchr::memchr(b'<', buf.get(p..)?)?;
                    let inner = tag_at(buf, lt)?;
                    match inner.kind {
                        TagKind::Start => depth += 1,
                        TagKind::End => depth -= 1,
                        TagKind::Empty => {}
                    }
                    p = inner.end;
                }
                return Some((Top::Element(&buf[start..p]), p));
            }
        }
    }
}

/// An iterator over the tags of a complete element (its own start tag first).
pub fn tags(elem: &[u8]) -> impl Iterator<Item = Tag<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let lt = pos + memchr::memchr(b'<', elem.get(pos..)?)?;
        let tag = tag_at(elem, lt)?;
        pos = tag.end;
        Some(tag)
    })
}

/// The local name of an element.
pub fn element_name(elem: &[u8]) -> &[u8] {
    tags(elem).next().map_or(&b""[..], |t| local(t.name))
}

/// The value of attribute `name` in a start tag (entities decoded), if present.
pub fn attr(tag: &[u8], name: &str) -> Option<String> {
    let name = name.as_bytes();
    let mut i = memchr::memchr2(b' ', b'\t', tag).unwrap_or(tag.len());
    while i < tag.len() {
        while i < tag.len() && is_space(tag[i]) {
            i += 1;
        }
        let key_start = i;
        while i < tag.len()
            && tag[i] != b'='
            && !is_space(tag[i])
            && tag[i] != b'>'
            && tag[i] != b'/'
        {
            i += 1;
        }
        let key = &tag[key_start..i];
        while i < tag.len() && (is_space(tag[i]) || tag[i] == b'=') {
            i += 1;
        }
        let &q = tag.get(i)?;
        if q != b'"' && q != b'\'' {
            return None;
        }
        let value_end = i + 1 + memchr::memchr(q, &tag[i + 1..])?;
        if key == name {
            return Some(unescape(&tag[i + 1..value_end]));
        }
        i = value_end + 1;
    }
    None
}

/// The text content of every descendant element (or the element itself) whose local name is `name`.
pub fn texts(elem: &[u8], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in tags(elem) {
        if tag.kind == TagKind::Start && tag.local_name() == name.as_bytes() {
            let rest = &elem[tag.end..];
            let text_end = memchr::memchr(b'<', rest).unwrap_or(rest.len());
            out.push(unescape(&rest[..text_end]));
        } else if tag.kind == TagKind::Empty && tag.local_name() == name.as_bytes() {
            out.push(String::new());
        }
    }
    out
}

/// The first element in `elem` (itself or a descendant, in document order) whose local name is `name`: its bytes
/// from its start tag to its end tag. `None` if there is none or it is not complete.
pub fn find_element<'a>(elem: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut tags = tags(elem);
    let (start, first) = loop {
        let tag = tags.next()?;
        if tag.kind != TagKind::End && tag.local_name() == name.as_bytes() {
            break (tag.end - tag.raw.len(), tag);
        }
    };
    if first.kind == TagKind::Empty {
        return Some(first.raw);
    }
    let mut depth = 1usize;
    for tag in tags {
        match tag.kind {
            TagKind::Start => depth += 1,
            TagKind::End => depth -= 1,
            TagKind::Empty => {}
        }
        if depth == 0 {
            return Some(&elem[start..tag.end]);
        }
    }
    None
}

/// Whether the element or one of its descendants has local name `name`.
pub fn has(elem: &[u8], name: &str) -> bool {
    tags(elem).any(|t| t.kind != TagKind::End && t.local_name() == name.as_bytes())
}

/// Decodes the five predefined entities and numeric character references; anything else is kept as is.
pub fn unescape(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if !s.contains('&') {
        return s.into_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = &*s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A readable, shortened rendering of bytes from the server for error messages.
pub fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 400;
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]).into_owned();
    if bytes.len() > MAX {
        format!("{s}…")
    } else {
        s
    }
}

/// Counts `</message>` end tags in a byte stream that arrives in arbitrary pieces, and reads the send timestamp
/// that the load generator put in each message's `id` attribute.
///
/// Feed it with [`MessageCounter::spare`] and [`MessageCounter::commit`]; complete messages are consumed and the
/// unfinished tail is kept for the next read.
pub struct MessageCounter {
    buf: Vec<u8>,
    /// Bytes in `buf`.
    filled: usize,
    /// Bytes of `buf` already searched for end tags.
    scanned: usize,
    end_tag: Finder<'static>,
    id_attr: Finder<'static>,
    message_start: FinderRev<'static>,
}

impl MessageCounter {
    /// A counter with `capacity` bytes of buffer, starting with bytes already read (left over from the login).
    pub fn new(capacity: usize, leftover: &[u8]) -> Self {
        let mut buf = vec![0; capacity.max(leftover.len() * 2).max(4096)];
        buf[..leftover.len()].copy_from_slice(leftover);
        Self {
            buf,
            filled: leftover.len(),
            scanned: 0,
            end_tag: Finder::new(b"</message>"),
            id_attr: Finder::new(b" id="),
            message_start: FinderRev::new(b"<message"),
        }
    }

    /// The free part of the buffer to read into.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.filled == self.buf.len() {
            // A single stanza bigger than the buffer: grow rather than fail.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Takes `n` newly read bytes into account. For every complete message, `on_message` gets the number in its
    /// `id` attribute (the first run of digits in it), if any. Returns the number of complete messages.
    pub fn commit(&mut self, n: usize, mut on_message: impl FnMut(Option<u64>)) -> u64 {
        // Everything before `filled` was scanned already, except that an end tag may straddle the previous read.
        let mut search_from = self.scanned.saturating_sub(b"</message>".len() - 1);
        self.filled += n;
        self.scanned = self.filled;
        let data = &self.buf[..self.filled];
        let mut start = 0;
        let mut count = 0;
        while let Some(found) = self.end_tag.find(&data[search_from..]) {
            let msg_end = search_from + found + b"</message>".len();
            on_message(self.id_in(&data[start..msg_end]));
            count += 1;
            start = msg_end;
            search_from = msg_end;
        }
        if start > 0 {
            self.buf.copy_within(start..self.filled, 0);
            self.filled -= start;
            self.scanned -= start;
        }
        count
    }

    /// The digits of the `id` attribute of the message that ends `piece` (which may begin with other stanzas).
    fn id_in(&self, piece: &[u8]) -> Option<u64> {
        let message = &piece[self.message_start.rfind(piece)?..];
        let start_tag = &message[..memchr::memchr(b'>', message)?];
        let at = self.id_attr.find(start_tag)? + b" id=".len();
        let value = start_tag.get(at + 1..)?;
        let mut n: u64 = 0;
        let mut digits = 0;
        for &b in value.iter().skip_while(|b| !b.is_ascii_digit()) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            digits += 1;
        }
        (digits > 0).then_some(n)
    }

    /// The buffered bytes including `n` just read but not yet committed.
    pub fn peek(&self, n: usize) -> &[u8] {
        &self.buf[..self.filled + n]
    }

    /// Bytes kept that do not (yet) end a message.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.filled]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_elements() {
        let input = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='x' version='1.0'>\
            <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
            <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>\
            <mechanism>PLAIN</mechanism></mechanisms></stream:features> <proceed xmlns=\"x\"/></stream:stream>";
        let mut in_stream = false;
        let (top, used) = next_top(input, &mut in_stream).unwrap();
        assert_eq!(top, Top::StreamOpen);
        let rest = &input[used..];
        let (top, used2) = next_top(rest, &mut in_stream).unwrap();
        let Top::Element(features) = top else {
            panic!("{top:?}")
        };
        assert_eq!(element_name(features), b"features");
        assert!(has(features, "starttls"));
        assert!(has(features, "required"));
        assert_eq!(texts(features, "mechanism"), ["SCRAM-SHA-1", "PLAIN"]);
        let rest = &rest[used2..];
        let (top, used3) = next_top(rest, &mut in_stream).unwrap();
        let Top::Element(proceed) = top else {
            panic!("{top:?}")
        };
        assert_eq!(element_name(proceed), b"proceed");
        assert_eq!(attr(proceed, "xmlns").as_deref(), Some("x"));
        assert_eq!(
            next_top(&rest[used3..], &mut in_stream).map(|t| t.0),
            Some(Top::StreamClose)
        );
    }

    #[test]
    fn finds_nested_elements() {
        let features = b"<stream:features><mechanisms><mechanism>SCRAM-SHA-1</mechanism></mechanisms>\
            <authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><inline>\
            <bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/></inline></bind>\
            <fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast><sm xmlns='urn:xmpp:sm:3'/>\
            </inline></authentication></stream:features>";
        let auth = find_element(features, "authentication").unwrap();
        assert!(auth.starts_with(b"<authentication ") && auth.ends_with(b"</authentication>"));
        // The outer <inline/> (SASL2's), with Bind2's nested inside it.
        let inline = find_element(auth, "inline").unwrap();
        assert!(inline.ends_with(b"<sm xmlns='urn:xmpp:sm:3'/></inline>"));
        assert!(has(inline, "sm") && has(inline, "fast"));
        let fast = find_element(inline, "fast").unwrap();
        assert_eq!(texts(fast, "mechanism"), ["HT-SHA-256-NONE"]);
        assert_eq!(
            find_element(inline, "sm"),
            Some(&b"<sm xmlns='urn:xmpp:sm:3'/>"[..])
        );
        assert_eq!(find_element(features, "missing"), None);
        // An element whose end tag has not arrived is not returned.
        assert_eq!(find_element(b"<a><b><c/>", "b"), None);
    }

    #[test]
    fn incomplete_input_needs_more() {
        let mut in_stream = true;
        assert!(
            next_top(
                b"<iq type='result' id='b'><bind><jid>a@b/c</jid>",
                &mut in_stream
            )
            .is_none()
        );
        assert!(next_top(b"<iq type='res", &mut in_stream).is_none());
        assert!(next_top(b"   ", &mut in_stream).is_none());
    }

    #[test]
    fn attributes_and_entities() {
        let tag = b"<iq type=\"error\" id='a&amp;b' to = 'x>y' />";
        assert_eq!(attr(tag, "type").as_deref(), Some("error"));
        assert_eq!(attr(tag, "id").as_deref(), Some("a&b"));
        assert_eq!(attr(tag, "to").as_deref(), Some("x>y"));
        assert_eq!(attr(tag, "from"), None);
        let mut in_stream = true;
        let (top, _) = next_top(tag, &mut in_stream).unwrap();
        assert_eq!(top, Top::Element(&tag[..]));
        assert_eq!(unescape(b"&lt;&#65;&#x42;&bogus;"), "<AB&bogus;");
    }

    #[test]
    fn counts_messages_across_reads() {
        let stream: Vec<u8> = (0..50u64)
            .flat_map(|i| {
                format!("<message from='a@b/c' id='{}' type='chat' to='d@b/e'><body>xx</body></message>", 1000 + i)
                    .into_bytes()
            })
            .collect();
        for chunk in [1, 7, 10, 64, 333, stream.len()] {
            let mut counter = MessageCounter::new(128, b"");
            let mut ids = Vec::new();
            let mut total = 0;
            for piece in stream.chunks(chunk) {
                counter.spare()[..piece.len()].copy_from_slice(piece);
                total += counter.commit(piece.len(), |id| ids.push(id));
            }
            assert_eq!(total, 50, "chunk {chunk}");
            assert_eq!(ids, (0..50).map(|i| Some(1000 + i)).collect::<Vec<_>>());
            assert!(counter.pending().is_empty());
        }
    }

    #[test]
    fn message_without_id() {
        let mut counter = MessageCounter::new(64, b"<message><body>x</body></message><mess");
        assert_eq!(counter.commit(0, |id| assert_eq!(id, None)), 1);
        assert_eq!(counter.pending(), b"<mess");
    }
}
