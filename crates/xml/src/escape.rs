//! Escaping of text and attribute values for output.
//!
//! Text escapes `&`, `<` and `>` (the last so that `]]>` can never appear) and `\r` (which a parser would otherwise
//! normalise away). Attribute values are always written in single quotes and additionally escape both quote
//! characters and the whitespace that attribute-value normalisation would turn into spaces.

/// Appends `text` escaped for element content.
pub fn escape_text(out: &mut Vec<u8>, text: &str) {
    escape_with(out, text, &TEXT_SPECIAL);
}

/// Appends `value` escaped for a single- or double-quoted attribute value.
pub fn escape_attr(out: &mut Vec<u8>, value: &str) {
    escape_with(out, value, &ATTR_SPECIAL);
}

/// Which bytes need escaping in text.
const TEXT_SPECIAL: [bool; 256] = special_bytes(b"&<>\r");
/// Which bytes need escaping in attribute values.
const ATTR_SPECIAL: [bool; 256] = special_bytes(b"&<>'\"\t\n\r");

const fn special_bytes(list: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < list.len() {
        table[list[i] as usize] = true;
        i += 1;
    }
    table
}

fn replacement(b: u8) -> &'static [u8] {
    match b {
        b'&' => b"&amp;",
        b'<' => b"&lt;",
        b'>' => b"&gt;",
        b'\'' => b"&apos;",
        b'"' => b"&quot;",
        b'\t' => b"&#9;",
        b'\n' => b"&#10;",
        _ => b"&#13;",
    }
}

/// Copies `s` to `out`, replacing the bytes marked in `special`. Runs of ordinary bytes are found with a table
/// look-up per byte and copied in one go (this is on the path of every stanza written); every byte that needs
/// escaping is ASCII, so multi-byte UTF-8 sequences pass through untouched.
#[inline]
fn escape_with(out: &mut Vec<u8>, s: &str, special: &[bool; 256]) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if special[b as usize] {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(replacement(b));
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut out = Vec::new();
        escape_text(&mut out, "a<b>&c]]>\r\né'\"");
        assert_eq!(out, "a&lt;b&gt;&amp;c]]&gt;&#13;\né'\"".as_bytes());
    }

    #[test]
    fn escapes_attributes() {
        let mut out = Vec::new();
        escape_attr(&mut out, "'\"\t\n\r<>&x");
        assert_eq!(out, b"&apos;&quot;&#9;&#10;&#13;&lt;&gt;&amp;x");
    }
}
