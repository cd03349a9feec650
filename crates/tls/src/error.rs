use std::io;
use std::path::PathBuf;

/// What went wrong reading, checking or writing a certificate. Each message names the file and the problem, because
/// the reader is an operator looking at a log line.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} exists but {} does not; a certificate directory needs both (certbot's layout)",
        present.display(),
        missing.display()
    )]
    Incomplete { present: PathBuf, missing: PathBuf },
    #[error("{} is not valid PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error(
        "{} holds no certificate (expected \"-----BEGIN CERTIFICATE-----\" blocks, the server's own first)",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "{} holds no usable private key (expected an unencrypted PKCS#8, RSA or EC key in PEM)",
        path.display()
    )]
    NoPrivateKey { path: PathBuf },
    #[error("{}: the server certificate (the first in the file) cannot be parsed: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{}: the private key cannot be used: {reason}", path.display())]
    BadPrivateKey { path: PathBuf, reason: String },
    #[error(
        "the private key in {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot generate a self-signed certificate for {}: {reason}", names.join(", "))]
    Generate { names: Vec<String>, reason: String },
    #[error("no host names given to serve a certificate for")]
    NoNames,
    #[error(
        "unknown TLS profile {0:?}: expected \"modern\" (TLS 1.3 only) or \"intermediate\" (TLS 1.2 and 1.3)"
    )]
    UnknownProfile(String),
}
