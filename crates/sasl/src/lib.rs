//! Sans-IO server side of the SASL mechanisms an XMPP server offers: SCRAM-SHA-1 and SCRAM-SHA-256
//! (RFC 5802, RFC 7677) with their -PLUS variants (channel bindings `tls-exporter`, RFC 9266, and
//! `tls-server-end-point`, RFC 5929), PLAIN (RFC 4616) and EXTERNAL (RFC 4422 appendix A).
//!
//! The crate never touches a socket or a clock. A [`ServerExchange`] is fed the client's data with
//! [`ServerExchange::step`] and answers with a [`Step`]; when it needs the account's stored
//! [`Credentials`] it says so with [`Step::NeedCredentials`] and the caller answers with
//! [`ServerExchange::provide`].
//!
//! Credentials are stored the way Prosody's `internal_hashed` stores them (salt, iteration count,
//! StoredKey, ServerKey), so accounts imported from Prosody log in unchanged; see
//! [`ScramKeys::from_prosody`].
//!
//! Unknown accounts are not revealed by the exchange: SCRAM continues with a decoy salt derived
//! from the username and fails only at the end, exactly as a wrong password does. Disabled
//! accounts are revealed only to someone who knows the password: the exchange runs with the
//! account's real credentials and answers `account-disabled` instead of success, while a wrong
//! password gets `not-authorized` as for any other account.

#![forbid(unsafe_code)]

mod channel_binding;
mod credentials;
mod exchange;
pub mod ht;
mod scram;

use std::borrow::Cow;
use std::fmt;

pub use channel_binding::{ChannelBindingType, ChannelBindings};
pub use credentials::{Credentials, HashAlgo, ScramKeys};
pub use exchange::{Lookup, MAX_CLIENT_MESSAGE_LEN, ServerExchange};

/// The SASL mechanisms this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    ScramSha1,
    ScramSha1Plus,
    ScramSha256,
    ScramSha256Plus,
    Plain,
    External,
}

impl Mechanism {
    /// Every mechanism, strongest SCRAM first.
    pub const ALL: [Self; 6] = [
        Self::ScramSha256Plus,
        Self::ScramSha1Plus,
        Self::ScramSha256,
        Self::ScramSha1,
        Self::Plain,
        Self::External,
    ];

    /// The IANA-registered mechanism name, as sent in `<mechanism/>` and `<auth mechanism=..>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Self::Plain => "PLAIN",
            Self::External => "EXTERNAL",
        }
    }

    /// The mechanism with this exact name. SASL mechanism names are upper case (RFC 4422 §3.1), so
    /// the comparison is case-sensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|mechanism| mechanism.name() == name)
    }

    /// Whether this is a SCRAM -PLUS mechanism, which requires channel binding.
    pub fn is_plus(self) -> bool {
        matches!(self, Self::ScramSha1Plus | Self::ScramSha256Plus)
    }

    /// The hash a SCRAM mechanism uses; `None` for PLAIN and EXTERNAL.
    pub fn hash_algo(self) -> Option<HashAlgo> {
        match self {
            Self::ScramSha1 | Self::ScramSha1Plus => Some(HashAlgo::Sha1),
            Self::ScramSha256 | Self::ScramSha256Plus => Some(HashAlgo::Sha256),
            Self::Plain | Self::External => None,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the server answers after each piece of client data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Look up this account (the username as the client sent it, SCRAM-unescaped and SASLprepped)
    /// and call [`ServerExchange::provide`].
    NeedCredentials { username: String },
    /// Send this challenge (`<challenge/>`; an empty one is sent as `=`).
    Challenge(Vec<u8>),
    /// Authenticated. `additional_data` is SCRAM's server-final message (`v=...`), sent in
    /// `<success>`. `authzid` is what the client asked to act as; the server decides whether
    /// that is acceptable.
    Success {
        username: String,
        authzid: Option<String>,
        additional_data: Option<Vec<u8>>,
    },
    /// The exchange failed; send `<failure>` with this condition and optional text.
    Failure(Failure),
}

/// A failed exchange: the RFC 6120 condition and an optional human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub condition: Condition,
    /// Mostly fixed texts; a disabled account's text comes from the caller ([`Lookup::Disabled`]).
    pub text: Option<Cow<'static, str>>,
}

impl Failure {
    /// A failure without text.
    pub fn new(condition: Condition) -> Self {
        Self {
            condition,
            text: None,
        }
    }

    /// A failure with a text explaining it to the client.
    pub fn with_text(condition: Condition, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            condition,
            text: Some(text.into()),
        }
    }
}

impl From<Failure> for Step {
    fn from(failure: Failure) -> Self {
        Self::Failure(failure)
    }
}

/// The SASL failure conditions of RFC 6120 §6.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    Aborted,
    AccountDisabled,
    CredentialsExpired,
    EncryptionRequired,
    IncorrectEncoding,
    InvalidAuthzid,
    InvalidMechanism,
    MalformedRequest,
    MechanismTooWeak,
    NotAuthorized,
    TemporaryAuthFailure,
}

impl Condition {
    /// The element name of the condition inside `<failure/>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aborted => "aborted",
            Self::AccountDisabled => "account-disabled",
            Self::CredentialsExpired => "credentials-expired",
            Self::EncryptionRequired => "encryption-required",
            Self::IncorrectEncoding => "incorrect-encoding",
            Self::InvalidAuthzid => "invalid-authzid",
            Self::InvalidMechanism => "invalid-mechanism",
            Self::MalformedRequest => "malformed-request",
            Self::MechanismTooWeak => "mechanism-too-weak",
            Self::NotAuthorized => "not-authorized",
            Self::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors building credentials (never produced by an exchange, which answers with [`Failure`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    #[error("the password contains characters SASLprep (RFC 4013) prohibits")]
    PasswordNotAllowed,
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the iteration count must be at least 1")]
    ZeroIterations,
    #[error("the salt is empty")]
    EmptySalt,
    #[error("the {field} is not valid hex")]
    InvalidHex { field: &'static str },
    #[error("the {field} has {actual} bytes, but {algo} needs {expected}")]
    KeyLength {
        field: &'static str,
        algo: HashAlgo,
        expected: usize,
        actual: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip() {
        for mechanism in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
            assert_eq!(mechanism.to_string(), mechanism.name());
        }
        assert_eq!(
            Mechanism::ALL.map(Mechanism::name),
            [
                "SCRAM-SHA-256-PLUS",
                "SCRAM-SHA-1-PLUS",
                "SCRAM-SHA-256",
                "SCRAM-SHA-1",
                "PLAIN",
                "EXTERNAL"
            ]
        );
        assert_eq!(Mechanism::from_name("scram-sha-1"), None);
        assert_eq!(Mechanism::from_name("SCRAM-SHA-512"), None);
        assert_eq!(Mechanism::from_name(""), None);
    }

    #[test]
    fn mechanism_properties() {
        let plus: Vec<Mechanism> = Mechanism::ALL.into_iter().filter(|m| m.is_plus()).collect();
        assert_eq!(plus, [Mechanism::ScramSha256Plus, Mechanism::ScramSha1Plus]);
        assert_eq!(Mechanism::ScramSha1Plus.hash_algo(), Some(HashAlgo::Sha1));
        assert_eq!(Mechanism::ScramSha256.hash_algo(), Some(HashAlgo::Sha256));
        assert_eq!(Mechanism::Plain.hash_algo(), None);
        assert_eq!(Mechanism::External.hash_algo(), None);
    }

    #[test]
    fn condition_names() {
        let all = [
            (Condition::Aborted, "aborted"),
            (Condition::AccountDisabled, "account-disabled"),
            (Condition::CredentialsExpired, "credentials-expired"),
            (Condition::EncryptionRequired, "encryption-required"),
            (Condition::IncorrectEncoding, "incorrect-encoding"),
            (Condition::InvalidAuthzid, "invalid-authzid"),
            (Condition::InvalidMechanism, "invalid-mechanism"),
            (Condition::MalformedRequest, "malformed-request"),
            (Condition::MechanismTooWeak, "mechanism-too-weak"),
            (Condition::NotAuthorized, "not-authorized"),
            (Condition::TemporaryAuthFailure, "temporary-auth-failure"),
        ];
        for (condition, name) in all {
            assert_eq!(condition.name(), name);
            assert_eq!(condition.to_string(), name);
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let error = SaslError::KeyLength {
            field: "stored_key",
            algo: HashAlgo::Sha1,
            expected: 20,
            actual: 19,
        };
        assert_eq!(
            error.to_string(),
            "the stored_key has 19 bytes, but SHA-1 needs 20"
        );
    }
}
