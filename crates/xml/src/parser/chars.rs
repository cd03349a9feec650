//! Character-level rules of XML 1.0 (Fifth Edition) and Namespaces in XML 1.0: which characters a document may
//! contain, what a name is, how references are resolved and how line ends and attribute values are normalised.
//!
//! The functions taking `&str` work on text that quick-xml has already checked to be UTF-8.

use memchr::{memchr, memchr_iter, memchr2};

use super::{not_well_formed, restricted};
use crate::XmlError;

/// Bytes that XML 1.0 `Char` excludes: the C0 controls other than tab, LF and CR. (The other excluded code points,
/// surrogates and U+FFFE/U+FFFF, are multi-byte and handled separately.)
const FORBIDDEN_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = !matches!(b, 0x09 | 0x0A | 0x0D);
        b += 1;
    }
    table
};

/// Checks that `bytes` is UTF-8 made only of XML 1.0 `Char`s, and returns it as a `str`.
pub(super) fn check_chars(bytes: &[u8]) -> Result<&str, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| not_well_formed("invalid UTF-8"))?;
    check_forbidden_chars(bytes)?;
    Ok(text)
}

/// Checks that `bytes` holds no character outside XML 1.0 `Char`, assuming (or not caring, if it is not) that it is
/// UTF-8.
///
/// Runs once over every top-level element before quick-xml looks at it. quick-xml checks that every piece it
/// reads is UTF-8, so together they check every byte.
pub(super) fn check_forbidden_chars(bytes: &[u8]) -> Result<(), XmlError> {
    // Most chunks hold no byte below 0x20 at all; finding the smallest byte vectorises well, so only the rare
    // chunk with a tab or newline pays for the table lookup.
    for chunk in bytes.chunks(32) {
        let min = chunk.iter().fold(0xFF_u8, |m, &b| m.min(b));
        if min < 0x20 && chunk.iter().any(|&b| FORBIDDEN_BYTE[usize::from(b)]) {
            return Err(not_well_formed("character not allowed in XML"));
        }
    }
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF; surrogates cannot occur in valid UTF-8.
    for i in memchr_iter(0xEF, bytes) {
        if bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) {
            return Err(not_well_formed("character not allowed in XML"));
        }
    }
    Ok(())
}

/// XML 1.0 `Char`.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// XML whitespace (`S`).
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const ASCII_NAME_START: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = matches!(b as u8, b'A'..=b'Z' | b'a'..=b'z' | b'_');
        b += 1;
    }
    table
};

const ASCII_NAME_CHAR: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = matches!(b as u8, b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'-' | b'.' | b'0'..=b'9');
        b += 1;
    }
    table
};

/// `NameStartChar` without the colon, which namespaces reserve as the prefix separator.
///
/// One range of XML 1.0 is left out: U+FDF0 to U+FFFD (presentation forms, the BOM, fullwidth forms, specials).
/// rxml, which the other XMPP implementation in Rust uses, rejects them in names, and a name that one server
/// accepts and forwards but another rejects with a stream error is worse than a slightly stricter parser.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}'
        | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{10000}'..='\u{EFFFF}')
}

/// `NameChar` without the colon.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Whether `s` is an `NCName` (a name without colon). Names in XMPP are ASCII, so ASCII bytes are checked with a
/// table and only the rest is decoded.
pub(super) fn is_ncname(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if first < 0x80 && !ASCII_NAME_START[usize::from(first)] {
        return false;
    }
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x80 {
            // Everything before `i` was ASCII, so `i` is a char boundary.
            return is_ncname_slow(s.get(i..).unwrap_or_default(), i == 0);
        }
        if !ASCII_NAME_CHAR[usize::from(b)] {
            return false;
        }
    }
    true
}

fn is_ncname_slow(rest: &str, at_start: bool) -> bool {
    let mut chars = rest.chars();
    if at_start && !chars.next().is_some_and(is_name_start) {
        return false;
    }
    chars.all(is_name_char)
}

/// Splits a qualified name into prefix and local part, checking that each is an `NCName`.
pub(super) fn split_qname(name: &str) -> Result<(Option<&str>, &str), XmlError> {
    let (prefix, local) = match memchr(b':', name.as_bytes()) {
        None => (None, name),
        Some(colon) => {
            let (prefix, rest) = name.split_at(colon);
            (Some(prefix), rest.get(1..).unwrap_or_default())
        }
    };
    if !is_ncname(local) || prefix.is_some_and(|p| !is_ncname(p)) {
        return Err(not_well_formed("invalid element or attribute name"));
    }
    Ok((prefix, local))
}

/// Resolves the reference `&name;` (given without `&` and `;`) and appends its replacement text to `out`.
///
/// Only the five predefined entities and character references exist in restricted XML; any other well-formed
/// entity name would need a DTD.
pub(super) fn resolve_reference(name: &str, out: &mut String) -> Result<(), XmlError> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => match name.strip_prefix('#') {
            Some(num) => char_reference(num)?,
            None if is_ncname(name) => return Err(restricted("undeclared entity")),
            None => return Err(not_well_formed("malformed entity reference")),
        },
    };
    out.push(c);
    Ok(())
}

/// The character of `&#num;` (`num` without `#`): decimal, or hexadecimal after a lowercase `x`.
fn char_reference(num: &str) -> Result<char, XmlError> {
    let (digits, radix) = match num.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (num, 10),
    };
    let bad = || not_well_formed("invalid character reference");
    if digits.is_empty() {
        return Err(bad());
    }
    let mut value: u32 = 0;
    for b in digits.bytes() {
        let digit = char::from(b).to_digit(radix).ok_or_else(bad)?;
        // Leading zeros are allowed, so the length says nothing; stop as soon as the value is out of range.
        value = value * radix + digit;
        if value > 0x10FFFF {
            return Err(bad());
        }
    }
    char::from_u32(value)
        .filter(|&c| is_xml_char(c))
        .ok_or_else(bad)
}

/// Appends character data with line ends normalised: `\r\n` and a lone `\r` become `\n` (XML 1.0 §2.11).
pub(super) fn push_normalized(out: &mut String, raw: &str) {
    let mut rest = raw;
    while let Some(cr) = memchr(b'\r', rest.as_bytes()) {
        out.push_str(rest.get(..cr).unwrap_or_default());
        out.push('\n');
        let after = &rest[cr + 1..];
        rest = after.strip_prefix('\n').unwrap_or(after);
    }
    out.push_str(rest);
}

/// Appends raw text content (between markup and references) to `out`, normalising line ends and rejecting `]]>`.
pub(super) fn push_text(out: &mut String, raw: &str) -> Result<(), XmlError> {
    let bytes = raw.as_bytes();
    if memchr2(b'\r', b'>', bytes).is_none() {
        out.push_str(raw);
        return Ok(());
    }
    // `]]>` cannot be split by a reference or markup, so each raw piece can be checked on its own.
    for gt in memchr_iter(b'>', bytes) {
        if gt >= 2 && bytes.get(gt - 2..gt) == Some(b"]]") {
            return Err(not_well_formed("']]>' in text"));
        }
    }
    push_normalized(out, raw);
    Ok(())
}

/// Bytes of an attribute value that need more than copying.
const ATTR_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'&' as usize] = true;
    table[b'<' as usize] = true;
    table[b'\t' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table
};

/// The value of an attribute given its raw text between the quotes: references resolved and whitespace normalised
/// as XML 1.0 §3.3.3 prescribes for attributes without a DTD (each tab, newline or line end becomes one space).
/// `None` when the raw text can be used as is.
pub(super) fn attr_value_if_changed(raw: &str) -> Result<Option<String>, XmlError> {
    let bytes = raw.as_bytes();
    let Some(first) = bytes.iter().position(|&b| ATTR_SPECIAL[usize::from(b)]) else {
        return Ok(None);
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(raw.get(..first).unwrap_or_default());
    let mut i = first;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'<' => return Err(not_well_formed("'<' in attribute value")),
            b'&' => {
                let rest = &bytes[i + 1..];
                let semi =
                    memchr(b';', rest).ok_or_else(|| not_well_formed("unterminated reference"))?;
                let name = raw
                    .get(i + 1..i + 1 + semi)
                    .ok_or_else(|| not_well_formed("malformed reference"))?;
                resolve_reference(name, &mut out)?;
                i += semi + 2;
            }
            b'\r' => {
                out.push(' ');
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\t' | b'\n' => {
                out.push(' ');
                i += 1;
            }
            _ => {
                // Copy the run of ordinary bytes up to the next special one; every special byte is ASCII, so the
                // run ends on a char boundary.
                let run = bytes[i..]
                    .iter()
                    .position(|&b| ATTR_SPECIAL[usize::from(b)])
                    .unwrap_or(bytes.len() - i);
                out.push_str(raw.get(i..i + run).unwrap_or_default());
                i += run;
            }
        }
    }
    Ok(Some(out))
}

/// The value of an attribute, owned.
pub(super) fn attr_value(raw: &str) -> Result<String, XmlError> {
    Ok(attr_value_if_changed(raw)?.unwrap_or_else(|| raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars() {
        assert!(check_chars(b"a\tb\nc\rd \xc3\xa9 \xef\xbf\xbd").is_ok());
        assert!(check_chars(b"a\x01b").is_err());
        assert!(check_chars(b"a\x00").is_err());
        assert!(check_chars(b"\xef\xbf\xbe").is_err());
        assert!(check_chars(b"\xef\xbf\xbf").is_err());
        assert!(
            check_chars(b"\xed\xa0\x80").is_err(),
            "surrogates are not UTF-8"
        );
        assert!(check_chars(b"\xff").is_err());
        let long = [b"x".repeat(100), b"\x1f".to_vec()].concat();
        assert!(check_chars(&long).is_err());
    }

    #[test]
    fn names() {
        for ok in ["a", "_a", "a-b.c9", "é", "aé", "\u{10000}", "a\u{B7}"] {
            assert!(is_ncname(ok), "{ok}");
        }
        for bad in [
            "", "1a", "-a", ".a", "a b", "a:b", "\u{B7}", "a\u{D7}", "a/",
        ] {
            assert!(!is_ncname(bad), "{bad}");
        }
        assert_eq!(split_qname("a:b").unwrap(), (Some("a"), "b"));
        assert_eq!(split_qname("b").unwrap(), (None, "b"));
        for bad in [":b", "a:", "a:b:c", "a::b", ""] {
            assert!(split_qname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        let mut out = String::new();
        for r in [
            "amp", "lt", "gt", "quot", "apos", "#65", "#x41", "#x1F600", "#0000065", "#9",
        ] {
            resolve_reference(r, &mut out).unwrap();
        }
        assert_eq!(out, "&<>\"'AA😀A\t");
        assert!(matches!(
            resolve_reference("foo", &mut out),
            Err(XmlError::Restricted(_))
        ));
        for bad in [
            "#0",
            "#x0",
            "#xD800",
            "#xFFFE",
            "#x110000",
            "#99999999999999",
            "#X41",
            "#",
            "#x",
            "#-1",
            "a b",
            "",
        ] {
            assert!(
                matches!(
                    resolve_reference(bad, &mut out),
                    Err(XmlError::NotWellFormed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn text_normalisation() {
        let mut out = String::new();
        push_text(&mut out, "a\r\nb\rc\n\r\r\nd>").unwrap();
        assert_eq!(out, "a\nb\nc\n\n\nd>");
        assert!(push_text(&mut out, "a]]>").is_err());
        assert!(push_text(&mut out, "a]>]").is_ok());
    }

    #[test]
    fn attribute_values() {
        assert_eq!(attr_value_if_changed("plain é").unwrap(), None);
        assert_eq!(attr_value("a\r\nb\rc\td\ne").unwrap(), "a b c d e");
        assert_eq!(attr_value("&lt;&#10;&#x9;é&amp;").unwrap(), "<\n\té&");
        assert!(attr_value("a<b").is_err());
        assert!(attr_value("a&b").is_err());
        assert!(matches!(attr_value("&x;"), Err(XmlError::Restricted(_))));
    }
}
