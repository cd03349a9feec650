//! Stateless nonces for the long-term credential mechanism (RFC 8489 §9.2).
//!
//! A nonce is its expiry time and a MAC over that time and a context (say, the client's transport address) under a
//! server key: `<expiry as 16 hex digits><first 16 bytes of HMAC-SHA256 as 32 hex digits>`, 48 characters of
//! ASCII. The server keeps nothing; a nonce that is expired, made for another context or not made by this key at
//! all is refused, and the server answers 438 Stale Nonce with a fresh one (§9.2.4). Within its lifetime a nonce
//! may be reused, as the RFC allows.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const EXPIRY_HEX: usize = 16;
const MAC_BYTES: usize = 16;
const NONCE_LEN: usize = EXPIRY_HEX + 2 * MAC_BYTES;

/// Why a nonce is refused; a server answers 438 to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error("not a nonce of this server")]
    Malformed,
    #[error("the nonce was not made by this server for this client")]
    Forged,
    #[error("the nonce expired")]
    Expired,
}

/// Makes a nonce valid until `expires` (Unix seconds) for `context`.
pub fn issue(key: &[u8], expires: u64, context: &[u8]) -> String {
    let tag = mac(key, expires, context).finalize().into_bytes();
    format!("{expires:016x}{}", hex::encode(&tag[..MAC_BYTES]))
}

/// Checks a nonce from a request at time `now` for `context`.
pub fn check(key: &[u8], nonce: &str, context: &[u8], now: u64) -> Result<(), NonceError> {
    if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
        return Err(NonceError::Malformed);
    }
    let (expiry, tag) = nonce.split_at(EXPIRY_HEX);
    let expires = u64::from_str_radix(expiry, 16).map_err(|_| NonceError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| NonceError::Malformed)?;
    // Constant time, so that a forger learns nothing from how long the refusal took.
    mac(key, expires, context)
        .verify_truncated_left(&tag)
        .map_err(|_| NonceError::Forged)?;
    if expires < now {
        return Err(NonceError::Expired);
    }
    Ok(())
}

fn mac(key: &[u8], expires: u64, context: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&expires.to_be_bytes());
    mac.update(context);
    mac
}
