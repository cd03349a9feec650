//! The client side of SASL SCRAM (RFC 5802) without channel binding: SCRAM-SHA-1 and SCRAM-SHA-256.

use anyhow::{Context as _, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::digest::Digest;
use hmac::{EagerHash, Hmac, KeyInit, Mac};

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1",
            Self::Sha256 => "SCRAM-SHA-256",
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha1 => {
                let mut out = vec![0; 20];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out);
                out
            }
            Self::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out
            }
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => hmac_with::<sha1::Sha1>(key, data),
            Self::Sha256 => hmac_with::<sha2::Sha256>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }
}

fn hmac_with<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The GS2 header for "no channel binding, and the client does not support it".
const GS2_HEADER: &str = "n,,";

/// One SCRAM exchange, from the client's point of view.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// Starts an exchange for `username` (used as is: benchmark names need no SASLprep) with a random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Self {
        let nonce_bytes: [u8; 18] = rand::random();
        Self::with_nonce(hash, username, password, &BASE64.encode(nonce_bytes))
    }

    fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            hash,
            password: password.to_owned(),
            client_nonce: nonce.to_owned(),
            client_first_bare: format!("n={name},r={nonce}"),
            server_signature: None,
        }
    }

    /// The client-first-message.
    pub fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// Takes the server-first-message and returns the client-final-message.
    pub fn client_final(&mut self, server_first: &[u8]) -> anyhow::Result<String> {
        let server_first =
            std::str::from_utf8(server_first).context("server-first-message is not UTF-8")?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => {
                    salt = Some(
                        BASE64
                            .decode(v)
                            .context("bad salt in server-first-message")?,
                    )
                }
                Some(("i", v)) => {
                    iterations = Some(v.parse::<u32>().context("bad iteration count")?)
                }
                Some(("m", _)) => bail!("the server requires an unknown SCRAM extension"),
                _ => {}
            }
        }
        let nonce =
            nonce.ok_or_else(|| anyhow!("no nonce in server-first-message {server_first:?}"))?;
        let salt =
            salt.ok_or_else(|| anyhow!("no salt in server-first-message {server_first:?}"))?;
        let iterations =
            iterations.ok_or_else(|| anyhow!("no iteration count in {server_first:?}"))?;
        ensure!(
            nonce.starts_with(&self.client_nonce),
            "the server's nonce does not extend ours"
        );
        ensure!(iterations > 0, "iteration count 0");

        let h = self.hash;
        let salted = h.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", BASE64.encode(GS2_HEADER));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the server-final-message (`v=…`), which proves that the server knows our credentials.
    pub fn verify_server_final(&self, server_final: &[u8]) -> anyhow::Result<()> {
        let text =
            std::str::from_utf8(server_final).context("server-final-message is not UTF-8")?;
        if let Some(err) = text.strip_prefix("e=") {
            bail!("the server reports SCRAM error {err:?}");
        }
        let v = text
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or_else(|| anyhow!("no verifier in server-final-message {text:?}"))?;
        let expected = self
            .server_signature
            .as_deref()
            .ok_or_else(|| anyhow!("server-final before server-first"))?;
        ensure!(
            BASE64.decode(v).ok().as_deref() == Some(expected),
            "the server's signature is wrong"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 5802 §5 (user "user", password "pencil").
    #[test]
    fn rfc5802_example() {
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        );
        assert_eq!(c.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = c
            .client_final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            fin,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        c.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .unwrap();
        assert!(
            c.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .is_err()
        );
    }

    /// The example exchange of RFC 7677 §3 (SCRAM-SHA-256).
    #[test]
    fn rfc7677_example() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn refuses_foreign_nonce() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha1, "u", "p", "abc");
        assert!(
            c.client_final(b"r=xyz123,s=QSXCR+Q6sek8bf92,i=4096")
                .is_err()
        );
    }
}
