//! The stored SCRAM credential, its derivation from a password, and the hash primitives SCRAM uses.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use hmac::digest::Digest;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::SaslError;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    Sha1,
    Sha256,
}

impl HashAlgo {
    /// The name as it appears in a mechanism name ("SHA-1", "SHA-256").
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
        }
    }

    /// The digest length in bytes: the length of StoredKey, ServerKey and a client proof.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// H(data).
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    /// HMAC(key, parts concatenated).
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Sha1 => hmac_with::<sha1::Sha1>(key, parts),
            Self::Sha256 => hmac_with::<sha2::Sha256>(key, parts),
        }
    }

    /// Hi(password, salt, iterations) of RFC 5802, which is PBKDF2 with HMAC and one output block.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.output_len()];
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out),
            Self::Sha256 => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
            }
        }
        out
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn hmac_with<D: EagerHash>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC hashes over-long keys and pads short ones, so every key length is accepted.
    let Ok(mut mac) = <Hmac<D> as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// SASLprep (RFC 4013) a password, refusing one that is empty before or after preparation.
pub(crate) fn prepare_password(password: &str) -> Result<Cow<'_, str>, SaslError> {
    let prepared = stringprep::saslprep(password).map_err(|_| SaslError::PasswordNotAllowed)?;
    if prepared.is_empty() {
        return Err(SaslError::EmptyPassword);
    }
    Ok(prepared)
}

/// One SCRAM credential as stored: never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramKeys {
    /// Derive the keys for `password` (SASLprepped first) as RFC 5802 §3 does.
    pub fn derive(
        algo: HashAlgo,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        if iterations == 0 {
            return Err(SaslError::ZeroIterations);
        }
        if salt.is_empty() {
            return Err(SaslError::EmptySalt);
        }
        let prepared = prepare_password(password)?;
        Ok(Self::from_prepared_password(
            algo,
            prepared.as_bytes(),
            salt,
            iterations,
        ))
    }

    fn from_prepared_password(
        algo: HashAlgo,
        prepared_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let salted = algo.salted_password(prepared_password, salt, iterations);
        let client_key = algo.hmac(&salted, &[b"Client Key"]);
        Self {
            salt: salt.to_vec(),
            iterations,
            stored_key: algo.hash(&client_key),
            server_key: algo.hmac(&salted, &[b"Server Key"]),
        }
    }

    /// Whether `password` is the one these keys were derived from. The StoredKey comparison is
    /// constant-time; the work done (one PBKDF2 run) does not depend on the answer.
    pub fn verify_password(&self, algo: HashAlgo, password: &str) -> bool {
        match prepare_password(password) {
            Ok(prepared) => self.verify_prepared_password(algo, prepared.as_bytes()),
            Err(_) => false,
        }
    }

    pub(crate) fn verify_prepared_password(
        &self,
        algo: HashAlgo,
        prepared_password: &[u8],
    ) -> bool {
        if self.iterations == 0 {
            return false;
        }
        let candidate =
            Self::from_prepared_password(algo, prepared_password, &self.salt, self.iterations);
        candidate.stored_key.ct_eq(&self.stored_key).into()
    }

    /// The keys as Prosody's `internal_hashed` stores them in an account record: `salt` is a string
    /// (a UUID) whose bytes are the salt, `iteration_count`, and hex `stored_key` / `server_key`.
    /// Prosody hashes with SHA-1 unless its `password_hash` option says otherwise.
    pub fn from_prosody(
        algo: HashAlgo,
        salt: &str,
        iteration_count: u32,
        stored_key_hex: &str,
        server_key_hex: &str,
    ) -> Result<Self, SaslError> {
        if iteration_count == 0 {
            return Err(SaslError::ZeroIterations);
        }
        if salt.is_empty() {
            return Err(SaslError::EmptySalt);
        }
        Ok(Self {
            salt: salt.as_bytes().to_vec(),
            iterations: iteration_count,
            stored_key: decode_key(algo, "stored_key", stored_key_hex)?,
            server_key: decode_key(algo, "server_key", server_key_hex)?,
        })
    }
}

fn decode_key(algo: HashAlgo, field: &'static str, hex_key: &str) -> Result<Vec<u8>, SaslError> {
    let key = hex::decode(hex_key).map_err(|_| SaslError::InvalidHex { field })?;
    if key.len() != algo.output_len() {
        return Err(SaslError::KeyLength {
            field,
            algo,
            expected: algo.output_len(),
            actual: key.len(),
        });
    }
    Ok(key)
}

// The keys are password-equivalent for anyone who also sees an exchange, so they stay out of logs.
impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("salt", &String::from_utf8_lossy(&self.salt))
            .field("iterations", &self.iterations)
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

/// What an account stores: a password set here stores both; an account imported from Prosody has
/// only `sha1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub sha1: Option<ScramKeys>,
    pub sha256: Option<ScramKeys>,
}

impl Credentials {
    /// Prosody's default iteration count.
    pub const DEFAULT_ITERATIONS: u32 = 10_000;

    /// Keys for both hashes, each with its own random salt, at [`Self::DEFAULT_ITERATIONS`].
    pub fn from_password(password: &str) -> Result<Self, SaslError> {
        Self::from_password_with_iterations(password, Self::DEFAULT_ITERATIONS)
    }

    /// Keys for both hashes, each with its own random salt, at `iterations`.
    pub fn from_password_with_iterations(
        password: &str,
        iterations: u32,
    ) -> Result<Self, SaslError> {
        if iterations == 0 {
            return Err(SaslError::ZeroIterations);
        }
        let prepared = prepare_password(password)?;
        let keys = |algo| {
            ScramKeys::from_prepared_password(algo, prepared.as_bytes(), &random_salt(), iterations)
        };
        Ok(Self {
            sha1: Some(keys(HashAlgo::Sha1)),
            sha256: Some(keys(HashAlgo::Sha256)),
        })
    }

    /// Whether `password` is this account's password, checked against the SHA-256 keys when
    /// present, else the SHA-1 keys. False when neither is stored.
    pub fn verify_password(&self, password: &str) -> bool {
        match prepare_password(password) {
            Ok(prepared) => self.verify_prepared_password(prepared.as_bytes()),
            Err(_) => false,
        }
    }

    pub(crate) fn verify_prepared_password(&self, prepared_password: &[u8]) -> bool {
        match self.strongest() {
            Some((algo, keys)) => keys.verify_prepared_password(algo, prepared_password),
            None => false,
        }
    }

    /// The keys for `algo`, if stored.
    pub fn for_algo(&self, algo: HashAlgo) -> Option<&ScramKeys> {
        match algo {
            HashAlgo::Sha1 => self.sha1.as_ref(),
            HashAlgo::Sha256 => self.sha256.as_ref(),
        }
    }

    fn strongest(&self) -> Option<(HashAlgo, &ScramKeys)> {
        [HashAlgo::Sha256, HashAlgo::Sha1]
            .into_iter()
            .find_map(|algo| self.for_algo(algo).map(|keys| (algo, keys)))
    }
}

/// A fresh salt: 16 random bytes written as a version-4 UUID string, the form Prosody uses, so that
/// accounts created here, accounts imported from Prosody and decoys for unknown users all show
/// salts of the same shape.
pub(crate) fn random_salt() -> Vec<u8> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    uuid_string(bytes).into_bytes()
}

fn uuid_string(mut bytes: [u8; 16]) -> String {
    // RFC 9562 §5.4: version 4 in the high nibble of byte 6, variant 0b10 in the top bits of
    // byte 8.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Keys for an account that does not exist (or lacks keys for `algo`), so that the exchange can
/// carry on and fail exactly like a wrong password. The salt is derived from the username under a
/// per-process secret: repeated attempts see the same salt, as they would for a real account, and
/// nobody outside the process can compute it. The keys are derived too, but an exchange run with
/// decoy keys always fails whatever the proof.
pub(crate) fn decoy_keys(algo: HashAlgo, username: &str) -> ScramKeys {
    static DECOY_SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    let secret = DECOY_SECRET.get_or_init(rand::random);
    let label: &[u8] = match algo {
        HashAlgo::Sha1 => b"rookery-sasl decoy SHA-1\0",
        HashAlgo::Sha256 => b"rookery-sasl decoy SHA-256\0",
    };
    let seed = HashAlgo::Sha256.hmac(secret, &[label, username.as_bytes()]);
    let mut salt_bytes = [0u8; 16];
    salt_bytes.copy_from_slice(&seed[..16]);
    ScramKeys {
        salt: uuid_string(salt_bytes).into_bytes(),
        iterations: Credentials::DEFAULT_ITERATIONS,
        stored_key: algo.hmac(&seed, &[b"stored"]),
        server_key: algo.hmac(&seed, &[b"server"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_string_has_prosody_shape() {
        let salt = String::from_utf8(random_salt()).unwrap();
        assert_eq!(salt.len(), 36);
        let groups: Vec<&str> = salt.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(random_salt(), random_salt());
    }

    #[test]
    fn decoy_is_stable_per_user_and_algo() {
        let a = decoy_keys(HashAlgo::Sha1, "nobody");
        assert_eq!(a, decoy_keys(HashAlgo::Sha1, "nobody"));
        assert_ne!(a.salt, decoy_keys(HashAlgo::Sha1, "somebody").salt);
        assert_ne!(a.salt, decoy_keys(HashAlgo::Sha256, "nobody").salt);
        assert_eq!(a.salt.len(), 36);
        assert_eq!(a.stored_key.len(), 20);
        assert_eq!(decoy_keys(HashAlgo::Sha256, "nobody").stored_key.len(), 32);
    }

    #[test]
    fn zero_iterations_and_empty_inputs_are_refused() {
        assert_eq!(
            ScramKeys::derive(HashAlgo::Sha1, "pw", b"salt", 0),
            Err(SaslError::ZeroIterations)
        );
        assert_eq!(
            ScramKeys::derive(HashAlgo::Sha1, "pw", b"", 1),
            Err(SaslError::EmptySalt)
        );
        assert_eq!(
            ScramKeys::derive(HashAlgo::Sha1, "", b"salt", 1),
            Err(SaslError::EmptyPassword)
        );
        // U+00AD SOFT HYPHEN maps to nothing, leaving an empty password.
        assert_eq!(
            ScramKeys::derive(HashAlgo::Sha1, "\u{ad}", b"salt", 1),
            Err(SaslError::EmptyPassword)
        );
        assert_eq!(
            ScramKeys::derive(HashAlgo::Sha1, "a\u{7}b", b"salt", 1),
            Err(SaslError::PasswordNotAllowed)
        );
        assert_eq!(
            Credentials::from_password_with_iterations("pw", 0),
            Err(SaslError::ZeroIterations)
        );
    }

    #[test]
    fn debug_hides_keys() {
        let keys = ScramKeys::derive(HashAlgo::Sha1, "pencil", b"salt", 1).unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&format!("{:?}", keys.stored_key)));
    }
}
