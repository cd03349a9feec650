//! Keys for MESSAGE-INTEGRITY (RFC 8489 §9) and Snikket's TURN REST credentials (draft-uberti-behave-turn-rest-00,
//! as Prosody's mod_turn_external makes them and coturn's `use-auth-secret` checks them).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A password that SASLprep (RFC 4013) refuses, so it has no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password holds characters SASLprep prohibits")]
pub struct PasswordNotAllowed;

/// The short-term credential key: the prepared password itself (RFC 8489 §9.1.1).
pub fn short_term_key(password: &str) -> Result<Vec<u8>, PasswordNotAllowed> {
    Ok(prepare(password)?.into_bytes())
}

/// The long-term credential key for MESSAGE-INTEGRITY: MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
/// The password is prepared with SASLprep, as RFC 5389 and its test vectors (RFC 5769) do; for the ASCII
/// usernames and base64 passwords of TURN REST credentials this is the same as RFC 8489's OpaqueString.
pub fn long_term_key(
    username: &str,
    realm: &str,
    password: &str,
) -> Result<[u8; 16], PasswordNotAllowed> {
    Ok(Md5::digest(joined(username, realm, &prepare(password)?)).into())
}

/// The long-term key for the SHA-256 password algorithm: SHA-256(username ":" realm ":" password).
pub fn long_term_key_sha256(
    username: &str,
    realm: &str,
    password: &str,
) -> Result<[u8; 32], PasswordNotAllowed> {
    Ok(Sha256::digest(joined(username, realm, &prepare(password)?)).into())
}

/// USERHASH: SHA-256(username ":" realm) (RFC 8489 §14.4).
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    Sha256::digest(format!("{username}:{realm}")).into()
}

fn joined(username: &str, realm: &str, password: &str) -> String {
    format!("{username}:{realm}:{password}")
}

fn prepare(password: &str) -> Result<String, PasswordNotAllowed> {
    stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .map_err(|_| PasswordNotAllowed)
}

/// TURN credentials handed to a client (XEP-0215): valid until `expires` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCredentials {
    pub username: String,
    pub password: String,
    pub expires: u64,
}

/// Why TURN REST credentials are refused; a TURN server answers 401 to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    #[error("the username does not start with an expiry time")]
    MalformedUsername,
    #[error("the credentials expired")]
    Expired,
    #[error("the password is wrong")]
    WrongPassword,
}

/// Makes credentials valid until `expires`: username `"<expires>"`, or `"<expires>:<user>"` with a user, and
/// password base64(HMAC-SHA1(secret, username)) (snikket-compat §9.2). `secret` is the secret file's text itself.
pub fn make_rest_credentials(secret: &[u8], expires: u64, user: Option<&str>) -> RestCredentials {
    let username = match user {
        Some(user) => format!("{expires}:{user}"),
        None => expires.to_string(),
    };
    RestCredentials {
        password: rest_password(secret, &username),
        username,
        expires,
    }
}

/// The password that goes with a TURN REST `username`.
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The expiry time a TURN REST username starts with: the decimal digits before the first `:`, or all of it.
pub fn rest_expiry(username: &str) -> Result<u64, RestError> {
    let expiry = username
        .split_once(':')
        .map_or(username, |(expiry, _)| expiry);
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RestError::MalformedUsername);
    }
    expiry.parse().map_err(|_| RestError::MalformedUsername)
}

/// Checks a username/password pair against the secret at time `now` (Unix seconds). Credentials are valid up to
/// and including their expiry second and refused after it, as coturn does.
pub fn check_rest_credentials(
    secret: &[u8],
    username: &str,
    password: &str,
    now: u64,
) -> Result<(), RestError> {
    if rest_expiry(username)? < now {
        return Err(RestError::Expired);
    }
    let expected = rest_password(secret, username);
    if bool::from(expected.as_bytes().ct_eq(password.as_bytes())) {
        Ok(())
    } else {
        Err(RestError::WrongPassword)
    }
}

/// The long-term MESSAGE-INTEGRITY key for a request carrying a TURN REST `username` in `realm`: what a TURN server
/// checks a request with, since it never sees the password itself. Refused when the username has expired.
pub fn rest_long_term_key(
    secret: &[u8],
    username: &str,
    realm: &str,
    now: u64,
) -> Result<[u8; 16], RestError> {
    if rest_expiry(username)? < now {
        return Err(RestError::Expired);
    }
    // A base64 password is plain ASCII, which SASLprep always accepts.
    long_term_key(username, realm, &rest_password(secret, username))
        .map_err(|_| RestError::MalformedUsername)
}
