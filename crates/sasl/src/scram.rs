//! SCRAM message syntax (RFC 5802 §7) and the proof arithmetic (§3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use subtle::{Choice, ConstantTimeEq};

use crate::{Condition, Failure, HashAlgo, ScramKeys};

/// Bytes of randomness in the server's nonce part: 192 bits, comfortably above the 128 required.
const SERVER_NONCE_BYTES: usize = 24;

fn malformed(text: &'static str) -> Failure {
    Failure::with_text(Condition::MalformedRequest, text)
}

/// The gs2-cbind-flag: what the client says about channel binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CbindFlag<'a> {
    /// `n`: the client does not support channel binding.
    ClientUnsupported,
    /// `y`: the client supports it but thinks the server does not.
    ServerUnsupported,
    /// `p=<name>`: the client binds to the channel with this type.
    Binding(&'a str),
}

/// A parsed client-first-message.
#[derive(Debug)]
pub(crate) struct ClientFirst<'a> {
    pub(crate) cbind: CbindFlag<'a>,
    /// The gs2 header exactly as received, including both commas: it is part of what `c=` binds.
    pub(crate) gs2_header: &'a str,
    pub(crate) authzid: Option<String>,
    /// client-first-message-bare, the first part of the AuthMessage.
    pub(crate) bare: &'a str,
    /// The username with `=2C` and `=3D` decoded, not yet SASLprepped.
    pub(crate) username: String,
    pub(crate) nonce: &'a str,
}

pub(crate) fn parse_client_first(message: &str) -> Result<ClientFirst<'_>, Failure> {
    let (flag, rest) = message
        .split_once(',')
        .ok_or_else(|| malformed("missing gs2 header"))?;
    let cbind = match flag {
        "n" => CbindFlag::ClientUnsupported,
        "y" => CbindFlag::ServerUnsupported,
        _ => match flag.strip_prefix("p=") {
            Some(name) if is_cb_name(name) => CbindFlag::Binding(name),
            _ => return Err(malformed("invalid channel-binding flag")),
        },
    };
    let (authzid_field, bare) = rest
        .split_once(',')
        .ok_or_else(|| malformed("missing gs2 header"))?;
    let authzid = if authzid_field.is_empty() {
        None
    } else {
        let value = authzid_field
            .strip_prefix("a=")
            .ok_or_else(|| malformed("invalid authzid"))?;
        Some(decode_saslname(value)?)
    };
    let gs2_header = &message[..message.len() - bare.len()];

    let mut attributes = bare.split(',');
    // split() always yields at least one item, possibly empty.
    let first = attributes.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(malformed("mandatory extensions are not supported"));
    }
    let username = first
        .strip_prefix("n=")
        .ok_or_else(|| malformed("expected username (n=)"))?;
    let username = decode_saslname(username)?;
    let nonce = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("r="))
        .ok_or_else(|| malformed("expected nonce (r=)"))?;
    if !is_printable(nonce) {
        return Err(malformed("invalid nonce"));
    }
    for extension in attributes {
        check_extension(extension)?;
    }
    Ok(ClientFirst {
        cbind,
        gs2_header,
        authzid,
        bare,
        username,
        nonce,
    })
}

/// A parsed client-final-message.
#[derive(Debug)]
pub(crate) struct ClientFinal<'a> {
    /// client-final-message-without-proof, the last part of the AuthMessage.
    pub(crate) without_proof: &'a str,
    /// The decoded `c=`: the gs2 header followed by the channel-binding data.
    pub(crate) channel_binding: Vec<u8>,
    pub(crate) nonce: &'a str,
    pub(crate) proof: Vec<u8>,
}

pub(crate) fn parse_client_final(message: &str) -> Result<ClientFinal<'_>, Failure> {
    let (without_proof, proof) = message
        .rsplit_once(',')
        .ok_or_else(|| malformed("expected c=, r= and p="))?;
    let proof = proof
        .strip_prefix("p=")
        .ok_or_else(|| malformed("expected proof (p=) last"))?;
    let mut attributes = without_proof.split(',');
    let channel_binding = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("c="))
        .ok_or_else(|| malformed("expected channel binding (c=) first"))?;
    let nonce = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("r="))
        .ok_or_else(|| malformed("expected nonce (r=) second"))?;
    for extension in attributes {
        check_extension(extension)?;
    }
    Ok(ClientFinal {
        without_proof,
        channel_binding: decode_base64(channel_binding)?,
        nonce,
        proof: decode_base64(proof)?,
    })
}

fn decode_base64(value: &str) -> Result<Vec<u8>, Failure> {
    if value.is_empty() {
        return Err(malformed("empty base64 value"));
    }
    // The STANDARD engine requires canonical padding and rejects trailing bits and whitespace.
    BASE64
        .decode(value)
        .map_err(|_| Failure::with_text(Condition::IncorrectEncoding, "invalid base64"))
}

/// Decode a saslname (RFC 5802 §5.1): `=2C` is `,`, `=3D` is `=`, and any other `=` is an error.
pub(crate) fn decode_saslname(value: &str) -> Result<String, Failure> {
    if value.is_empty() {
        return Err(malformed("empty name"));
    }
    let mut decoded = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(position) = rest.find(['=', '\0']) {
        decoded.push_str(&rest[..position]);
        let escape = rest.get(position..position + 3);
        match escape {
            Some("=2C") => decoded.push(','),
            Some("=3D") => decoded.push('='),
            _ => return Err(malformed("invalid escape in name")),
        }
        rest = &rest[position + 3..];
    }
    decoded.push_str(rest);
    Ok(decoded)
}

/// An extension attribute (`x=value`), which is ignored. Letters RFC 5802 defines are refused: they
/// are never valid in extension position, and `m` demands an extension we do not know.
fn check_extension(attribute: &str) -> Result<(), Failure> {
    let Some((key, value)) = attribute.split_once('=') else {
        return Err(malformed("invalid attribute"));
    };
    let [letter] = key.as_bytes() else {
        return Err(malformed("invalid attribute"));
    };
    if !letter.is_ascii_alphabetic() || value.is_empty() || value.contains('\0') {
        return Err(malformed("invalid attribute"));
    }
    match letter {
        b'm' => Err(malformed("mandatory extensions are not supported")),
        b'a' | b'n' | b'r' | b'c' | b's' | b'i' | b'p' | b'v' | b'e' => {
            Err(malformed("unexpected attribute"))
        }
        _ => Ok(()),
    }
}

/// `printable` of RFC 5802: at least one of %x21-2B / %x2D-7E.
pub(crate) fn is_printable(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|byte| matches!(byte, 0x21..=0x2b | 0x2d..=0x7e))
}

/// `cb-name` of RFC 5802: 1*(ALPHA / DIGIT / "." / "-").
fn is_cb_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-')
}

/// A fresh server nonce part: base64 of random bytes, which is always `printable`.
pub(crate) fn generate_server_nonce() -> String {
    let mut bytes = [0u8; SERVER_NONCE_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    BASE64.encode(bytes)
}

/// The server-first-message for the combined nonce and the account's keys.
pub(crate) fn server_first(nonce: &str, keys: &ScramKeys) -> String {
    format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&keys.salt),
        keys.iterations
    )
}

/// Whether `proof` proves knowledge of the password behind `keys` for this AuthMessage:
/// ClientKey = proof XOR HMAC(StoredKey, AuthMessage), and H(ClientKey) must equal StoredKey.
/// The caller has checked the proof's length.
pub(crate) fn proof_matches(
    algo: HashAlgo,
    keys: &ScramKeys,
    auth_message: &[u8],
    proof: &[u8],
) -> Choice {
    let client_signature = algo.hmac(&keys.stored_key, &[auth_message]);
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(proof_byte, signature_byte)| proof_byte ^ signature_byte)
        .collect();
    algo.hash(&client_key).ct_eq(&keys.stored_key)
}

/// The server-final-message: `v=` base64(HMAC(ServerKey, AuthMessage)).
pub(crate) fn server_final(algo: HashAlgo, keys: &ScramKeys, auth_message: &[u8]) -> Vec<u8> {
    let signature = algo.hmac(&keys.server_key, &[auth_message]);
    format!("v={}", BASE64.encode(signature)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_escapes() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert_eq!(decode_saslname("=3D=3D").unwrap(), "==");
        assert_eq!(decode_saslname("plain").unwrap(), "plain");
        for bad in [
            "", "=", "=2", "=2c", "=3d", "=41", "a=", "a\0b", "=2C=", "é=3",
        ] {
            assert!(decode_saslname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_first_fields() {
        let first = parse_client_first("p=tls-exporter,a=ad=2Cmin,n=us=3Der,r=abc,x=ext").unwrap();
        assert_eq!(first.cbind, CbindFlag::Binding("tls-exporter"));
        assert_eq!(first.gs2_header, "p=tls-exporter,a=ad=2Cmin,");
        assert_eq!(first.authzid.as_deref(), Some("ad,min"));
        assert_eq!(first.bare, "n=us=3Der,r=abc,x=ext");
        assert_eq!(first.username, "us=er");
        assert_eq!(first.nonce, "abc");
    }

    #[test]
    fn client_final_fields() {
        let last = parse_client_final("c=biws,r=abcdef,x=1,p=AAAA").unwrap();
        assert_eq!(last.without_proof, "c=biws,r=abcdef,x=1");
        assert_eq!(last.channel_binding, b"n,,");
        assert_eq!(last.nonce, "abcdef");
        assert_eq!(last.proof, [0, 0, 0]);
    }

    #[test]
    fn server_nonce_is_printable_and_fresh() {
        let nonce = generate_server_nonce();
        assert!(is_printable(&nonce));
        assert_eq!(nonce.len(), 32);
        assert_ne!(nonce, generate_server_nonce());
    }

    #[test]
    fn printable_excludes_comma_and_controls() {
        assert!(is_printable("!~+-"));
        assert!(!is_printable(""));
        assert!(!is_printable("a,b"));
        assert!(!is_printable("a b"));
        assert!(!is_printable("é"));
    }
}
