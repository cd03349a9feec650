use std::fmt;
use std::str::FromStr;

use rustls::SupportedProtocolVersion;
use rustls::version::{TLS12, TLS13};

use crate::TlsError;

/// TLS versions allowed on XMPP listeners (`SNIKKET_TLS_PROFILE`).
///
/// Cipher suites and key-exchange groups are rustls' defaults in both profiles: for TLS 1.3 those are exactly
/// Snikket's modern list (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; X25519, P-256, P-384, plus the post-quantum
/// X25519MLKEM768 hybrid), and for TLS 1.2 only ECDHE with AEAD ciphers, which is Mozilla's intermediate list minus
/// the finite-field DHE suites. Prosody's `old` profile (TLS 1.0 and 1.1) has no equivalent: rustls never speaks
/// those versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TlsProfile {
    /// TLS 1.3 only, Snikket's default ("Android 10+, iOS 12+").
    #[default]
    Modern,
    /// TLS 1.2 and 1.3, for older clients and servers.
    Intermediate,
}

impl TlsProfile {
    /// The protocol versions this profile allows, in rustls' terms.
    pub fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        const MODERN: &[&SupportedProtocolVersion] = &[&TLS13];
        const INTERMEDIATE: &[&SupportedProtocolVersion] = &[&TLS13, &TLS12];
        match self {
            Self::Modern => MODERN,
            Self::Intermediate => INTERMEDIATE,
        }
    }

    /// The `SNIKKET_TLS_PROFILE` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Modern => "modern",
            Self::Intermediate => "intermediate",
        }
    }
}

impl fmt::Display for TlsProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsProfile {
    type Err = TlsError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "modern" => Ok(Self::Modern),
            "intermediate" => Ok(Self::Intermediate),
            _ => Err(TlsError::UnknownProfile(value.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_snikket_spellings() {
        assert_eq!("modern".parse::<TlsProfile>().unwrap(), TlsProfile::Modern);
        assert_eq!(
            " Intermediate ".parse::<TlsProfile>().unwrap(),
            TlsProfile::Intermediate
        );
        let err = "old".parse::<TlsProfile>().unwrap_err();
        assert!(err.to_string().contains("\"old\""), "{err}");
        assert_eq!(TlsProfile::default(), TlsProfile::Modern);
        assert_eq!(TlsProfile::Intermediate.to_string(), "intermediate");
    }

    #[test]
    fn modern_is_tls13_only() {
        assert_eq!(TlsProfile::Modern.versions(), &[&TLS13]);
        assert!(TlsProfile::Intermediate.versions().contains(&&TLS12));
    }
}
