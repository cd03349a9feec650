//! The XML declaration `<?xml version='1.0' …?>`, which may open a stream.
//!
//! It carries nothing the stream needs, so it is only checked: version 1.0, encoding UTF-8 if given (XMPP is
//! UTF-8 only), and `standalone='yes'` if given (without a DTD there is nothing for `no` to refer to; rxml draws
//! the same line).

use super::chars::{check_chars, is_space};
use super::{not_well_formed, restricted};
use crate::XmlError;

/// Checks a complete declaration, from `<?xml` to `?>` inclusive.
pub(super) fn check_declaration(bytes: &[u8]) -> Result<(), XmlError> {
    let text = check_chars(bytes)?;
    let body = text
        .strip_prefix("<?xml")
        .and_then(|t| t.strip_suffix("?>"))
        .ok_or_else(|| not_well_formed("malformed XML declaration"))?;
    let mut cursor = Cursor {
        rest: body.as_bytes(),
    };

    let (name, version) = cursor
        .pseudo_attribute()?
        .ok_or_else(|| not_well_formed("XML declaration without version"))?;
    if name != b"version" {
        return Err(not_well_formed("XML declaration without version"));
    }
    if version != b"1.0" {
        return Err(not_well_formed("unsupported XML version"));
    }
    let mut next = cursor.pseudo_attribute()?;
    if let Some((b"encoding", encoding)) = next {
        if !encoding.eq_ignore_ascii_case(b"utf-8") {
            return Err(restricted("encodings other than UTF-8 are not supported"));
        }
        next = cursor.pseudo_attribute()?;
    }
    if let Some((b"standalone", standalone)) = next {
        if standalone != b"yes" {
            return Err(restricted("standalone='no' is not supported"));
        }
        next = cursor.pseudo_attribute()?;
    }
    if next.is_some() {
        return Err(not_well_formed("malformed XML declaration"));
    }
    Ok(())
}

/// A pseudo-attribute's name and value.
type Pseudo<'a> = (&'a [u8], &'a [u8]);

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) -> bool {
        let n = self.rest.iter().take_while(|&&b| is_space(b)).count();
        self.rest = &self.rest[n..];
        n > 0
    }

    /// The next `S name Eq quoted-value`, or `None` at the end (after optional whitespace).
    fn pseudo_attribute(&mut self) -> Result<Option<Pseudo<'a>>, XmlError> {
        let bad = || not_well_formed("malformed XML declaration");
        let spaced = self.skip_space();
        if self.rest.is_empty() {
            return Ok(None);
        }
        if !spaced {
            return Err(bad());
        }
        let name_len = self
            .rest
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (name, rest) = self.rest.split_at(name_len);
        self.rest = rest;
        self.skip_space();
        self.rest = self.rest.strip_prefix(b"=").ok_or_else(bad)?;
        self.skip_space();
        let (&quote, rest) = self.rest.split_first().ok_or_else(bad)?;
        if quote != b'\'' && quote != b'"' {
            return Err(bad());
        }
        let end = rest.iter().position(|&b| b == quote).ok_or_else(bad)?;
        let (value, rest) = rest.split_at(end);
        self.rest = &rest[1..];
        Ok(Some((name, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations() {
        for ok in [
            "<?xml version='1.0'?>",
            "<?xml version=\"1.0\" ?>",
            "<?xml version = '1.0'\n encoding='UTF-8'?>",
            "<?xml version='1.0' encoding='utf-8' standalone='yes'?>",
            "<?xml version='1.0' standalone=\"yes\"?>",
        ] {
            assert!(check_declaration(ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in [
            "<?xml?>",
            "<?xml ?>",
            "<?xml version='1.1'?>",
            "<?xml version='1.0'encoding='UTF-8'?>",
            "<?xml encoding='UTF-8' version='1.0'?>",
            "<?xml version='1.0\"?>",
            "<?xml version='1.0' standalone='yes' encoding='UTF-8'?>",
            "<?xml version='1.0' foo='bar'?>",
            "<?xml version='1.0' version='1.0'?>",
            "<?xml version='1.0' encoding='ISO-8859-1'?>",
            "<?xml version='1.0' standalone='no'?>",
            "<?xml version=1.0?>",
        ] {
            assert!(check_declaration(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
