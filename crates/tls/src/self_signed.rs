//! The certificate served when there is no real one yet: self-signed, ECDSA P-256, kept on disk so that it survives
//! restarts (a client that was told to accept it once keeps working) and re-made only when it no longer fits.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use tracing::{info, warn};

use crate::TlsError;
use crate::material::{PemFiles, ServedCert};
use crate::store::CertSource;

/// How long a new self-signed certificate is valid.
const VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// A self-signed certificate this close to expiry is replaced rather than reused, so that a server restarted now
/// does not start serving an expired one within the month.
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// Back-dates `notBefore`, so that a client whose clock is a little behind does not see a not-yet-valid certificate.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Where the self-signed pair lives inside its directory.
pub(crate) fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Reuses the pair in `dir` when it still fits (readable, key matches, covers `hosts`, not close to expiry), and
/// makes a new one otherwise.
pub(crate) fn load_or_create(
    dir: &Path,
    hosts: &[String],
    provider: &CryptoProvider,
) -> Result<ServedCert, TlsError> {
    let (cert_path, key_path) = paths(dir);
    let source = CertSource::SelfSigned(cert_path.clone());
    match PemFiles::read(cert_path, key_path) {
        Ok(Some(files)) => match ServedCert::parse(&files, source, hosts, provider) {
            Ok(served) if still_fits(&served, SystemTime::now()) => return Ok(served),
            Ok(_) => info!(
                path = %files.cert_path.display(),
                "replacing the self-signed certificate: it expires soon or does not cover every host name"
            ),
            Err(e) => warn!("replacing the self-signed certificate: {e}"),
        },
        Ok(None) => {}
        Err(e) => warn!("replacing the self-signed certificate: {e}"),
    }
    create(dir, hosts, provider)
}

/// Whether a self-signed certificate can go on being served at `now`.
pub(crate) fn still_fits(served: &ServedCert, now: SystemTime) -> bool {
    served.missing_names.is_empty()
        && served.not_before <= now
        && served.not_after > now + RENEW_BEFORE
}

/// Generates a new pair, writes it to `dir` (key first and owner-only, each file replaced atomically), and loads it.
pub(crate) fn create(
    dir: &Path,
    hosts: &[String],
    provider: &CryptoProvider,
) -> Result<ServedCert, TlsError> {
    let (cert_pem, key_pem) = generate(hosts, SystemTime::now())?;
    create_private_dir(dir)?;
    let (cert_path, key_path) = paths(dir);
    // A crash between the two writes leaves a key that doesn't match the old certificate; the next start sees the
    // mismatch and makes a fresh pair, which is harmless.
    write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
    write_atomically(&cert_path, cert_pem.as_bytes(), 0o644)?;
    let files = PemFiles {
        cert_path: cert_path.clone(),
        cert: cert_pem.into_bytes(),
        key_path,
        key: key_pem.into_bytes(),
    };
    let served = ServedCert::parse(&files, CertSource::SelfSigned(cert_path), hosts, provider)?;
    info!(
        path = %files.cert_path.display(),
        names = %hosts.join(", "),
        "made a new self-signed certificate"
    );
    Ok(served)
}

/// A self-signed ECDSA P-256 certificate for `hosts`, as (certificate PEM, PKCS#8 key PEM).
fn generate(hosts: &[String], now: SystemTime) -> Result<(String, String), TlsError> {
    let failed = |e: rcgen::Error| TlsError::Generate {
        names: hosts.to_vec(),
        reason: e.to_string(),
    };
    let mut params = CertificateParams::new(hosts.to_vec()).map_err(failed)?;
    params.distinguished_name = DistinguishedName::new();
    if let Some(first) = hosts.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Rookery self-signed");
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + VALIDITY).into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // ClientAuth too: outgoing federation links present this certificate as the TLS client's.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let io_error = |source| TlsError::Write {
        path: dir.to_owned(),
        source,
    };
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(io_error)?;
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error)
}

/// Writes `contents` to a temporary file next to `path` with `mode`, then renames it over `path`, so that a reader
/// never sees half a file and the key is never readable by others, not even briefly.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let io_error = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = path.with_file_name(format!(".{file_name}.new"));
    // The mode only applies when the file is created, so a leftover from a crash must go first.
    match fs::remove_file(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e)),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&staging).map_err(io_error)?;
    file.write_all(contents).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    fs::rename(&staging, path).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto_provider;

    fn hosts() -> Vec<String> {
        ["example.test", "groups.example.test", "share.example.test"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn new_certificate_covers_the_hosts_for_a_year() {
        let dir = tempfile::tempdir().expect("tempdir");
        let served = create(dir.path(), &hosts(), &crypto_provider()).expect("created");
        assert_eq!(served.names, hosts());
        assert!(served.missing_names.is_empty());
        let now = SystemTime::now();
        assert!(served.is_valid_at(now));
        assert!(served.not_after > now + VALIDITY - Duration::from_secs(86_400));
        assert!(still_fits(&served, now));
        assert!(!still_fits(&served, now + VALIDITY - RENEW_BEFORE));
    }

    #[cfg(unix)]
    #[test]
    fn key_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let self_signed = dir.path().join("rookery/self-signed");
        create(&self_signed, &hosts(), &crypto_provider()).expect("created");
        let mode = |path: &Path| fs::metadata(path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&self_signed.join("key.pem")), 0o600);
        assert_eq!(mode(&self_signed) & 0o077, 0);
    }

    #[test]
    fn mismatched_pair_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = create(dir.path(), &hosts(), &crypto_provider()).expect("created");
        let (_, key_path) = paths(dir.path());
        let (_, other_key) = generate(&hosts(), SystemTime::now()).expect("generated");
        fs::write(&key_path, other_key).expect("write");
        let second = load_or_create(dir.path(), &hosts(), &crypto_provider()).expect("loaded");
        assert_ne!(first.end_entity(), second.end_entity());
        assert!(second.key.keys_match().is_ok());
    }
}
