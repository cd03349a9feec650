//! Domain names: the Unicode form people type and the ASCII (punycode) form DNS, certificates and SNI use.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use std::net::IpAddr;

/// A domain in both forms, normalised by UTS #46 (lower case, NFC, mapped), as `idn2` does for Snikket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Domain {
    pub(crate) unicode: String,
    pub(crate) ascii: String,
}

/// The longest prefix Rookery puts in front of the domain (`groups.`); the result must still be a valid DNS name.
const LONGEST_SUBDOMAIN_PREFIX: usize = "groups.".len();

/// Normalises `input`. A single trailing dot (a fully qualified name) is dropped, as RFC 7622 asks for JIDs.
/// `Err` is a reason, without the variable's name.
pub(crate) fn normalise(input: &str) -> Result<Domain, String> {
    let trimmed = input.trim();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() {
        return Err("is empty".to_owned());
    }
    let unbracketed = name.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Err("is an IP address; Snikket needs a DNS name (its groups. and share. subdomains get certificates too)".to_owned());
    }
    let uts46 = Uts46::new();
    let ascii = uts46
        .to_ascii(
            name.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .map_err(|_| {
            "is not a valid domain name (letters, digits and hyphens in dot-separated labels of at most 63 characters; \
             a label may not start or end with a hyphen)"
                .to_owned()
        })?
        .into_owned();
    if ascii.len() + LONGEST_SUBDOMAIN_PREFIX > 253 {
        return Err(format!(
            "is too long: groups.{ascii} must fit in 253 characters"
        ));
    }
    let (unicode, result) = uts46.to_unicode(
        ascii.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
    );
    // to_ascii has just accepted this name, so the reverse mapping cannot fail; keep the ASCII form if it ever does.
    let unicode = if result.is_ok() {
        unicode.into_owned()
    } else {
        ascii.clone()
    };
    Ok(Domain { unicode, ascii })
}

/// A host that may also be an IP address (TURN host, for instance); returns its ASCII form.
pub(crate) fn normalise_host(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    if let Ok(ip) = trimmed
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(ip.to_string());
    }
    normalise(trimmed).map(|d| d.ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_domain_is_lowercased() {
        let d = normalise("Chat.Example.COM").unwrap();
        assert_eq!(d.unicode, "chat.example.com");
        assert_eq!(d.ascii, "chat.example.com");
    }

    #[test]
    fn idn_domain_gets_punycode_like_idn2() {
        // `idn2 bücher.example` prints `xn--bcher-kva.example`.
        let d = normalise("Bücher.Example").unwrap();
        assert_eq!(d.unicode, "bücher.example");
        assert_eq!(d.ascii, "xn--bcher-kva.example");
        let d = normalise("пример.рф").unwrap();
        assert_eq!(d.ascii, "xn--e1afmkfd.xn--p1ai");
    }

    #[test]
    fn punycode_input_gives_unicode_form() {
        let d = normalise("xn--bcher-kva.example").unwrap();
        assert_eq!(d.unicode, "bücher.example");
        assert_eq!(d.ascii, "xn--bcher-kva.example");
    }

    #[test]
    fn trailing_dot_is_dropped_and_single_label_allowed() {
        assert_eq!(normalise("example.com.").unwrap().ascii, "example.com");
        assert_eq!(normalise("localhost").unwrap().ascii, "localhost");
    }

    #[test]
    fn bad_domains_are_rejected() {
        for bad in [
            "",
            ".",
            "a..b",
            "-a.example",
            "a-.example",
            "exa mple.com",
            "example.com:5222",
            "user@example.com",
            "*.example.com",
            "a_b.example",
            "127.0.0.1",
            "::1",
            "[::1]",
            &format!("{}.example", "a".repeat(64)),
            &format!("{}.example", vec!["a".repeat(60); 4].join(".")),
        ] {
            assert!(normalise(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hosts_may_be_ip_addresses() {
        assert_eq!(normalise_host("192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(normalise_host("[2001:db8::1]").unwrap(), "2001:db8::1");
        assert_eq!(normalise_host("Turn.Example").unwrap(), "turn.example");
    }
}
