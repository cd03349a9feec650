//! The Hashed Token mechanisms XEP-0484 (FAST) uses (`HT-SHA-256-*`, draft-schmaus-kitten-sasl-ht), and the rules
//! for the tokens behind them: which stored token a proof matches, whether it has expired or was replayed, and
//! whether it is due for rotation.
//!
//! The exchange is one round trip: the client sends `username NUL HMAC-SHA-256(token, "Initiator" || cb-data)`,
//! the server answers success with `HMAC-SHA-256(token, "Responder" || cb-data)` as additional data, proving it
//! knows the token too. `cb-data` is the channel-binding data the mechanism names (none for `-NONE`).
//!
//! Sans-IO like the rest of the crate: the caller looks the tokens up and passes the current time in.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{ChannelBindingType, ChannelBindings, Condition, Failure};

/// The HT mechanisms offered. `-UNIQ` (tls-unique) is left out: it does not exist in TLS 1.3 and we have no
/// tls-unique data for TLS 1.2 either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HtMechanism {
    /// HT-SHA-256-NONE: no channel binding.
    Sha256None,
    /// HT-SHA-256-EXPR: bound to `tls-exporter` (RFC 9266).
    Sha256Expr,
    /// HT-SHA-256-ENDP: bound to `tls-server-end-point` (RFC 5929).
    Sha256Endp,
}

impl HtMechanism {
    /// Every HT mechanism, the channel-bound ones (preferred) first.
    pub const ALL: [Self; 3] = [Self::Sha256Expr, Self::Sha256Endp, Self::Sha256None];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256None => "HT-SHA-256-NONE",
            Self::Sha256Expr => "HT-SHA-256-EXPR",
            Self::Sha256Endp => "HT-SHA-256-ENDP",
        }
    }

    /// The mechanism with this exact (upper-case) name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The channel binding the mechanism's HMAC covers, if any.
    pub fn channel_binding(self) -> Option<ChannelBindingType> {
        match self {
            Self::Sha256None => None,
            Self::Sha256Expr => Some(ChannelBindingType::TlsExporter),
            Self::Sha256Endp => Some(ChannelBindingType::TlsServerEndPoint),
        }
    }

    /// The mechanisms usable over a connection with these bindings, preferred first.
    pub fn available(bindings: &ChannelBindings) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|m| {
                m.channel_binding()
                    .is_none_or(|kind| bindings.data(kind).is_some())
            })
            .collect()
    }
}

impl fmt::Display for HtMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Length of an HMAC-SHA-256 output: the only valid proof length.
const PROOF_LEN: usize = 32;
/// Longest username accepted in an initial response (a JID localpart is at most 1023 bytes).
const MAX_USERNAME_LEN: usize = 1023;

/// A parsed HT initial response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtInitialResponse {
    /// The authentication identity as sent (the caller nodepreps it).
    pub username: String,
    proof: [u8; PROOF_LEN],
}

/// Parses `username NUL proof`. The proof is raw HMAC output and may itself contain NUL bytes, so the split is at
/// the first NUL.
pub fn parse_initial_response(data: &[u8]) -> Result<HtInitialResponse, Failure> {
    let malformed = |text: &'static str| Failure::with_text(Condition::MalformedRequest, text);
    let nul = data
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| malformed("expected username NUL token-hash"))?;
    let (username, rest) = (&data[..nul], &data[nul + 1..]);
    if username.is_empty() || username.len() > MAX_USERNAME_LEN {
        return Err(malformed("bad username"));
    }
    let username = std::str::from_utf8(username).map_err(|_| malformed("username is not UTF-8"))?;
    let proof: [u8; PROOF_LEN] = rest
        .try_into()
        .map_err(|_| malformed("the token hash must be 32 bytes"))?;
    Ok(HtInitialResponse {
        username: username.to_owned(),
        proof,
    })
}

fn hmac_sha256(key: &[u8], label: &[u8], cb_data: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.update(cb_data);
    mac
}

/// What a client would send as proof for `token` (for tests and the load generator, which play the client).
pub fn client_proof(token: &str, cb_data: &[u8]) -> [u8; PROOF_LEN] {
    hmac_sha256(token.as_bytes(), b"Initiator", cb_data)
        .finalize()
        .into_bytes()
        .into()
}

/// What the server sends back on success, proving it knows the token.
pub fn server_proof(token: &str, cb_data: &[u8]) -> Vec<u8> {
    hmac_sha256(token.as_bytes(), b"Responder", cb_data)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Which of a client's two stored tokens an attempt used. As Prosody keeps them: a token is issued into `New`;
/// the first use of it moves it to `Current`, replacing the token before it. Until then the `Current` one stays
/// valid, so a client that never received the success carrying its new token can still log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSlot {
    New,
    Current,
}

impl TokenSlot {
    pub fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Current => "current",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::New, Self::Current]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// A token as stored for one (account, client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub slot: TokenSlot,
    /// The mechanism the token was issued for: XEP-0484 binds a token to it.
    pub mechanism: String,
    pub secret: String,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: i64,
    /// The highest `count` the client sent with this token, if it ever sent one.
    pub last_count: Option<u64>,
}

/// One FAST authentication attempt.
#[derive(Debug, Clone)]
pub struct FastAttempt<'a> {
    pub mechanism: HtMechanism,
    pub response: &'a HtInitialResponse,
    /// The `count` of the `<fast/>` element: it must grow with each use of a token (XEP-0484's replay protection).
    pub count: Option<u64>,
    pub bindings: &'a ChannelBindings,
    /// Unix seconds.
    pub now: i64,
    /// A token older than this (seconds) is replaced by a new one when used.
    pub rotate_after: i64,
}

/// A verified attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastSuccess {
    /// The token that matched.
    pub slot: TokenSlot,
    /// The server's proof, sent as `<additional-data/>`.
    pub additional_data: Vec<u8>,
    /// The token is old enough to be replaced: issue a new one with the success.
    pub rotate: bool,
}

/// Why an attempt failed, and whether the matching token must be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastFailure {
    pub failure: Failure,
    /// A token that matched but is expired: the caller deletes it (as Prosody does).
    pub expired: Option<TokenSlot>,
}

/// Checks an attempt against the client's stored tokens (the new one first). Each HMAC comparison is constant-time;
/// a proof matching no token fails with `not-authorized`, an expired one with `credentials-expired`, a `count` not
/// above the last one seen with `not-authorized`.
pub fn verify(
    attempt: &FastAttempt<'_>,
    tokens: &[StoredToken],
) -> Result<FastSuccess, FastFailure> {
    let fail = |condition, text: &'static str, expired| FastFailure {
        failure: Failure::with_text(condition, text),
        expired,
    };
    let cb_data = match attempt.mechanism.channel_binding() {
        None => &[][..],
        Some(kind) => attempt.bindings.data(kind).ok_or_else(|| {
            fail(
                Condition::MalformedRequest,
                "channel binding is not available on this connection",
                None,
            )
        })?,
    };
    let mut ordered: Vec<&StoredToken> = tokens.iter().collect();
    ordered.sort_by_key(|t| t.slot != TokenSlot::New);
    for token in ordered {
        if token.mechanism != attempt.mechanism.name() {
            continue;
        }
        let matches = hmac_sha256(token.secret.as_bytes(), b"Initiator", cb_data)
            .verify_slice(&attempt.response.proof)
            .is_ok();
        if !matches {
            continue;
        }
        if token.expires_at <= attempt.now {
            return Err(fail(
                Condition::CredentialsExpired,
                "the token has expired",
                Some(token.slot),
            ));
        }
        if let (Some(count), Some(last)) = (attempt.count, token.last_count)
            && count <= last
        {
            return Err(fail(
                Condition::NotAuthorized,
                "the count must grow with each use of a token",
                None,
            ));
        }
        return Ok(FastSuccess {
            slot: token.slot,
            additional_data: server_proof(&token.secret, cb_data),
            rotate: attempt.now - token.issued_at >= attempt.rotate_after,
        });
    }
    Err(fail(
        Condition::NotAuthorized,
        "invalid or revoked token",
        None,
    ))
}

/// A new token: 256 random bits, base64url without padding (43 characters).
pub fn generate_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(username: &str, proof: &[u8]) -> Vec<u8> {
        let mut data = username.as_bytes().to_vec();
        data.push(0);
        data.extend_from_slice(proof);
        data
    }

    fn token(slot: TokenSlot, secret: &str, issued_at: i64) -> StoredToken {
        StoredToken {
            slot,
            mechanism: "HT-SHA-256-NONE".into(),
            secret: secret.into(),
            issued_at,
            expires_at: issued_at + 1000,
            last_count: None,
        }
    }

    fn attempt<'a>(
        mechanism: HtMechanism,
        response: &'a HtInitialResponse,
        bindings: &'a ChannelBindings,
        now: i64,
    ) -> FastAttempt<'a> {
        FastAttempt {
            mechanism,
            response,
            count: None,
            bindings,
            now,
            rotate_after: 100,
        }
    }

    #[test]
    fn names_and_availability() {
        for m in HtMechanism::ALL {
            assert_eq!(HtMechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(HtMechanism::from_name("HT-SHA-256-UNIQ"), None);
        assert_eq!(
            HtMechanism::available(&ChannelBindings::default()),
            [HtMechanism::Sha256None]
        );
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![1; 32]),
            tls_server_end_point: None,
        };
        assert_eq!(
            HtMechanism::available(&bindings),
            [HtMechanism::Sha256Expr, HtMechanism::Sha256None]
        );
    }

    #[test]
    fn parse_rejects_malformed() {
        assert!(parse_initial_response(b"alice").is_err());
        assert!(parse_initial_response(&response("", &[0; 32])).is_err());
        assert!(parse_initial_response(&response("alice", &[0; 31])).is_err());
        assert!(parse_initial_response(&response("alice", &[0; 33])).is_err());
        let mut bad = vec![0xff];
        bad.push(0);
        bad.extend_from_slice(&[1; 32]);
        assert!(parse_initial_response(&bad).is_err());
        // A proof that contains NUL bytes is fine: only the first NUL separates.
        let parsed = parse_initial_response(&response("alice", &[0; 32])).unwrap();
        assert_eq!(parsed.username, "alice");
    }

    #[test]
    fn proof_matches_the_draft_construction() {
        // HMAC-SHA-256 with the token as key over "Initiator": checked against an independent implementation
        // (RFC 4231 test case 2 shape: key "Jefe", data "what do ya want for nothing?").
        let mac = hmac_sha256(b"Jefe", b"what do ya want ", b"for nothing?")
            .finalize()
            .into_bytes();
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_new_then_current_and_rotates_old_tokens() {
        let none = ChannelBindings::default();
        let tokens = [
            token(TokenSlot::Current, "old", 0),
            token(TokenSlot::New, "fresh", 500),
        ];
        let r = parse_initial_response(&response("alice", &client_proof("fresh", b""))).unwrap();
        let ok = verify(&attempt(HtMechanism::Sha256None, &r, &none, 550), &tokens).unwrap();
        assert_eq!(ok.slot, TokenSlot::New);
        assert!(!ok.rotate);
        assert_eq!(ok.additional_data, server_proof("fresh", b""));

        let r = parse_initial_response(&response("alice", &client_proof("old", b""))).unwrap();
        let ok = verify(&attempt(HtMechanism::Sha256None, &r, &none, 550), &tokens).unwrap();
        assert_eq!(ok.slot, TokenSlot::Current);
        assert!(ok.rotate, "550 s old, rotation after 100 s");
    }

    #[test]
    fn wrong_expired_replayed_and_wrong_mechanism() {
        let none = ChannelBindings::default();
        let mut tokens = vec![token(TokenSlot::Current, "secret", 0)];
        let wrong =
            parse_initial_response(&response("alice", &client_proof("guess", b""))).unwrap();
        let err = verify(
            &attempt(HtMechanism::Sha256None, &wrong, &none, 10),
            &tokens,
        )
        .unwrap_err();
        assert_eq!(err.failure.condition, Condition::NotAuthorized);

        let right =
            parse_initial_response(&response("alice", &client_proof("secret", b""))).unwrap();
        let err = verify(
            &attempt(HtMechanism::Sha256None, &right, &none, 1000),
            &tokens,
        )
        .unwrap_err();
        assert_eq!(err.failure.condition, Condition::CredentialsExpired);
        assert_eq!(err.expired, Some(TokenSlot::Current));

        tokens[0].last_count = Some(7);
        let mut a = attempt(HtMechanism::Sha256None, &right, &none, 10);
        a.count = Some(7);
        assert_eq!(
            verify(&a, &tokens).unwrap_err().failure.condition,
            Condition::NotAuthorized
        );
        a.count = Some(8);
        assert!(verify(&a, &tokens).is_ok());

        // A token issued for -NONE does not work with another mechanism.
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![3; 32]),
            tls_server_end_point: None,
        };
        let r =
            parse_initial_response(&response("alice", &client_proof("secret", &[3; 32]))).unwrap();
        let err = verify(
            &attempt(HtMechanism::Sha256Expr, &r, &bindings, 10),
            &tokens,
        )
        .unwrap_err();
        assert_eq!(err.failure.condition, Condition::NotAuthorized);
    }

    #[test]
    fn channel_binding_is_checked() {
        let mut stored = token(TokenSlot::Current, "secret", 0);
        stored.mechanism = "HT-SHA-256-EXPR".into();
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![3; 32]),
            tls_server_end_point: None,
        };
        let good =
            parse_initial_response(&response("a", &client_proof("secret", &[3; 32]))).unwrap();
        let ok = verify(
            &attempt(HtMechanism::Sha256Expr, &good, &bindings, 1),
            &[stored.clone()],
        )
        .unwrap();
        assert_eq!(ok.additional_data, server_proof("secret", &[3; 32]));
        // Bound to another connection's exporter: no match.
        let other =
            parse_initial_response(&response("a", &client_proof("secret", &[4; 32]))).unwrap();
        let err = verify(
            &attempt(HtMechanism::Sha256Expr, &other, &bindings, 1),
            &[stored.clone()],
        )
        .unwrap_err();
        assert_eq!(err.failure.condition, Condition::NotAuthorized);
        // No exporter on this connection.
        let err = verify(
            &attempt(
                HtMechanism::Sha256Expr,
                &good,
                &ChannelBindings::default(),
                1,
            ),
            &[stored],
        )
        .unwrap_err();
        assert_eq!(err.failure.condition, Condition::MalformedRequest);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = generate_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, generate_token());
    }
}
