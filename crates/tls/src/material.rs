//! Turning a certificate file and a key file into something rustls can serve, plus what `status()` reports about it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::time::ASN1Time;

use crate::TlsError;
use crate::binding::tls_server_end_point_for;
use crate::store::CertSource;

/// A digest of a certificate file and key file's bytes, to tell cheaply whether anything changed on disk without
/// keeping a second copy of the private key in memory.
pub(crate) type Fingerprint = [u8; 32];

/// The raw contents of a certificate/key pair, read together.
pub(crate) struct PemFiles {
    pub(crate) cert_path: PathBuf,
    pub(crate) cert: Vec<u8>,
    pub(crate) key_path: PathBuf,
    pub(crate) key: Vec<u8>,
}

impl PemFiles {
    /// Reads both files, following symlinks (certbot's live/ entries point into archive/).
    ///
    /// `Ok(None)` when neither exists; one without the other is an error, since that is a half-finished copy or a
    /// mistake the operator should hear about.
    pub(crate) fn read(cert_path: PathBuf, key_path: PathBuf) -> Result<Option<Self>, TlsError> {
        let cert = read_if_present(&cert_path)?;
        let key = read_if_present(&key_path)?;
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert_path,
                cert,
                key_path,
                key,
            })),
            (Some(_), None) => Err(TlsError::Incomplete {
                present: cert_path,
                missing: key_path,
            }),
            (None, Some(_)) => Err(TlsError::Incomplete {
                present: key_path,
                missing: cert_path,
            }),
        }
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        let mut hasher = Sha256::new();
        // The length keeps "cert ‖ key" unambiguous, so bytes moving from one file to the other still count as a change.
        hasher.update((self.cert.len() as u64).to_be_bytes());
        hasher.update(&self.cert);
        hasher.update(&self.key);
        hasher.finalize().into()
    }
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, TlsError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        // A dangling symlink reads as NotFound too, which is right: there is no file behind it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A certificate ready to serve, with the facts about it that status, logs and channel binding need.
pub(crate) struct ServedCert {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) source: CertSource,
    /// The DNS names in the certificate's subjectAltName, lower-cased.
    pub(crate) names: Vec<String>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    /// The hosts this server serves that the certificate does not cover.
    pub(crate) missing_names: Vec<String>,
    pub(crate) end_point: Vec<u8>,
    pub(crate) fingerprint: Fingerprint,
}

impl ServedCert {
    /// Parses and checks a certificate chain and its key: the PEM must hold a certificate and an unencrypted
    /// PKCS#8, PKCS#1 or SEC1 key, the key must belong to the first certificate, and the provider must be able to
    /// sign with it.
    pub(crate) fn parse(
        files: &PemFiles,
        source: CertSource,
        hosts: &[String],
        provider: &CryptoProvider,
    ) -> Result<Self, TlsError> {
        let chain = parse_chain(&files.cert_path, &files.cert)?;
        let private_key = parse_key(&files.key_path, &files.key)?;

        let (_, leaf) =
            X509Certificate::from_der(&chain[0]).map_err(|e| TlsError::BadCertificate {
                path: files.cert_path.clone(),
                reason: e.to_string(),
            })?;
        let names = dns_names(&leaf).map_err(|reason| TlsError::BadCertificate {
            path: files.cert_path.clone(),
            reason,
        })?;
        let validity = leaf.validity();
        let not_before = system_time(validity.not_before);
        let not_after = system_time(validity.not_after);
        let missing_names = hosts
            .iter()
            .filter(|host| !names.iter().any(|pattern| dns_name_matches(pattern, host)))
            .cloned()
            .collect();
        let end_point = tls_server_end_point_for(&chain[0]);

        let key = CertifiedKey::from_der(chain, private_key, provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: files.cert_path.clone(),
                key: files.key_path.clone(),
            },
            other => TlsError::BadPrivateKey {
                path: files.key_path.clone(),
                reason: other.to_string(),
            },
        })?;

        Ok(Self {
            key: Arc::new(key),
            source,
            names,
            not_before,
            not_after,
            missing_names,
            end_point,
            fingerprint: files.fingerprint(),
        })
    }

    /// Whether the certificate is inside its validity period at `now`.
    pub(crate) fn is_valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now < self.not_after
    }

    /// The end-entity certificate.
    pub(crate) fn end_entity(&self) -> &CertificateDer<'static> {
        // CertifiedKey::from_der was given a non-empty chain (parse_chain checks), and nothing mutates it.
        &self.key.cert[0]
    }
}

fn parse_chain(path: &Path, pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn parse_key(path: &Path, pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    // Takes the first PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") section and skips
    // others, such as the "EC PARAMETERS" block `openssl ecparam -genkey` puts first.
    PrivateKeyDer::from_pem_slice(pem_bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => pem_error(path, &other),
    })
}

fn pem_error(path: &Path, error: &pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

/// The subjectAltName DNS names. The subject CN is not consulted: browsers, webpki and modern XMPP clients ignore
/// it, so counting it would report names as covered that clients reject.
fn dns_names(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName extension: {e}"))?;
    let Some(san) = san else {
        return Ok(Vec::new());
    };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(normalize_name(dns)),
            _ => None,
        })
        .collect())
}

/// Lower-case without a trailing dot: DNS names compare case-insensitively and `example.com.` is `example.com`.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// RFC 6125 matching of a certificate name against a host: exact, or a `*.` wildcard standing for exactly one
/// left-most label.
pub(crate) fn dns_name_matches(pattern: &str, host: &str) -> bool {
    let pattern = normalize_name(pattern);
    let host = normalize_name(host);
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

fn system_time(time: ASN1Time) -> SystemTime {
    let seconds = time.timestamp();
    let offset = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_name_matches("*.example.com", "groups.example.com"));
        assert!(dns_name_matches("*.Example.com", "SHARE.example.com."));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.example.com", "a.b.example.com"));
        assert!(dns_name_matches("example.com", "EXAMPLE.COM"));
        assert!(!dns_name_matches("example.com", "groups.example.com"));
    }

    #[test]
    fn asn1_times_before_the_epoch_convert() {
        let before = ASN1Time::from_timestamp(-86_400).expect("valid time");
        assert_eq!(
            system_time(before),
            UNIX_EPOCH - Duration::from_secs(86_400)
        );
    }
}
