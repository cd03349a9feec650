//! A throw-away certificate authority for tests.
//!
//! Every `TestCa` has its own key, so certificates from two CAs never verify against each other; tests that need
//! "an untrusted certificate" make a second CA. Leaf certificates come out in the forms certbot leaves on disk
//! (`fullchain.pem` = leaf then CA, keys as PKCS#8, SEC1 or PKCS#1 PEM).

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize,
};
use rustls::client::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::{RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::CertificateDer;

use crate::der;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The key a leaf certificate is issued for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeafKey {
    /// certbot's default since 2.0.
    #[default]
    EcdsaP256,
    /// A P-384 key. (The test CA's own P-256 key signs it with ecdsa-with-SHA256, so its tls-server-end-point hash
    /// is still SHA-256.)
    EcdsaP384,
    /// certbot's `--key-type rsa` default size.
    Rsa2048,
}

/// How the private key PEM is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyFormat {
    /// `-----BEGIN PRIVATE KEY-----`, what certbot writes today.
    #[default]
    Pkcs8,
    /// `-----BEGIN EC PRIVATE KEY-----` (SEC1) for EC keys and `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1) for RSA,
    /// what older certbot versions and `openssl` write.
    Traditional,
}

/// Knobs for [`TestCa::issue_with`]; `IssueOptions::default()` is what [`TestCa::issue`] uses.
#[derive(Clone, Debug, Default)]
pub struct IssueOptions {
    pub key: LeafKey,
    pub key_format: KeyFormat,
    /// Defaults to an hour ago, so small clock differences between test processes don't matter.
    pub not_before: Option<SystemTime>,
    /// Defaults to 90 days after `not_before`, like Let's Encrypt.
    pub not_after: Option<SystemTime>,
}

/// The PEM pieces of one issued certificate, named as certbot names its files.
struct Issued {
    cert_pem: String,
    key_pem: String,
}

/// A test certificate authority: an ECDSA P-256 root that signs leaf certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::default();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("generate the test CA key");
        // A name of its own, so that verifiers looking for one CA's issuer never find another's (which would fail as
        // a bad signature instead of an unknown issuer).
        let key_id: String = key.public_key_raw()[1..9]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Rookery Test CA {key_id}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Rookery tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        params.not_before = (now - DAY).into();
        params.not_after = (now + 3650 * DAY).into();
        let cert = params
            .self_signed(&key)
            .expect("self-sign the test CA certificate");
        Self {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA certificate as DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// A leaf certificate signed by this CA for the given DNS names (ECDSA P-256, PKCS#8 key, valid from an hour ago
    /// for 90 days); returns (fullchain_pem, key_pem).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        self.issue_with(names, &IssueOptions::default())
    }

    /// Like [`issue`](Self::issue), with a choice of key type, key encoding and validity.
    pub fn issue_with(&self, names: &[&str], options: &IssueOptions) -> (String, String) {
        let issued = self.issue_parts(names, options);
        (self.fullchain(&issued), issued.key_pem)
    }

    /// Writes a certbot-style live dir: `<dir>/fullchain.pem`, `privkey.pem`, `cert.pem` and `chain.pem`.
    pub fn install_certbot_layout(&self, dir: &Path, names: &[&str]) {
        self.install_certbot_layout_with(dir, names, &IssueOptions::default());
    }

    /// Like [`install_certbot_layout`](Self::install_certbot_layout), with [`IssueOptions`].
    pub fn install_certbot_layout_with(&self, dir: &Path, names: &[&str], options: &IssueOptions) {
        let issued = self.issue_parts(names, options);
        fs::create_dir_all(dir).expect("create the live directory");
        for (file, contents) in self.certbot_files(&issued) {
            let path = dir.join(file);
            // certbot's live/ entries are symlinks a test may have made; replace them rather than write through.
            remove_if_present(&path);
            fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
    }

    /// Does what a certbot issuance or renewal does on disk: writes `<archive_dir>/{cert,chain,fullchain,privkey}<version>.pem`
    /// and then points each `<live_dir>/<file>.pem` symlink at its new archive file, replacing the link atomically
    /// (a new link renamed over the old one).
    #[cfg(unix)]
    pub fn install_certbot_version(
        &self,
        live_dir: &Path,
        archive_dir: &Path,
        version: u32,
        names: &[&str],
    ) {
        let issued = self.issue_parts(names, &IssueOptions::default());
        fs::create_dir_all(live_dir).expect("create the live directory");
        fs::create_dir_all(archive_dir).expect("create the archive directory");
        for (file, contents) in self.certbot_files(&issued) {
            let stem = file.trim_end_matches(".pem");
            let target = archive_dir.join(format!("{stem}{version}.pem"));
            fs::write(&target, contents)
                .unwrap_or_else(|e| panic!("write {}: {e}", target.display()));
            let link = live_dir.join(file);
            let staging = live_dir.join(format!(".{file}.new"));
            remove_if_present(&staging);
            std::os::unix::fs::symlink(&target, &staging)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", staging.display()));
            fs::rename(&staging, &link)
                .unwrap_or_else(|e| panic!("rename over {}: {e}", link.display()));
        }
    }

    /// The trust store holding only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .expect("the test CA certificate is a valid trust anchor");
        roots
    }

    /// A rustls ClientConfig trusting only this CA, offering rustls' default TLS versions (1.2 and 1.3).
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        self.client_config_with_versions(alpn, rustls::DEFAULT_VERSIONS)
    }

    /// A rustls ClientConfig trusting only this CA and offering only `versions`, e.g. `&[&rustls::version::TLS12]`
    /// to play an old client.
    pub fn client_config_with_versions(
        &self,
        alpn: &[&[u8]],
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("aws-lc-rs supports every rustls protocol version")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Arc::new(config)
    }

    /// Writes the CA certificate as PEM, for `SNIKKET_TWEAK_S2S_CA_FILE`, `SSL_CERT_FILE` and peers' trust settings.
    pub fn write_ca_file(&self, path: &Path) {
        fs::write(path, &self.cert_pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    fn issue_parts(&self, names: &[&str], options: &IssueOptions) -> Issued {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())
            .expect("test certificate names are valid DNS names");
        params.distinguished_name = DistinguishedName::new();
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Both: XMPP servers present the same certificate as TLS clients on outgoing federation links.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let not_before = options
            .not_before
            .unwrap_or_else(|| SystemTime::now() - HOUR);
        let not_after = options.not_after.unwrap_or(not_before + 90 * DAY);
        params.not_before = not_before.into();
        params.not_after = not_after.into();

        let key = generate_key(options.key);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the test leaf certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: encode_key(&key, options.key, options.key_format),
        }
    }

    fn fullchain(&self, issued: &Issued) -> String {
        format!("{}{}", issued.cert_pem, self.cert_pem)
    }

    /// The four files certbot keeps per lineage, by their live/ names.
    fn certbot_files(&self, issued: &Issued) -> [(&'static str, String); 4] {
        [
            ("cert.pem", issued.cert_pem.clone()),
            ("chain.pem", self.cert_pem.clone()),
            ("fullchain.pem", self.fullchain(issued)),
            ("privkey.pem", issued.key_pem.clone()),
        ]
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn generate_key(kind: LeafKey) -> KeyPair {
    let generated = match kind {
        LeafKey::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        LeafKey::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        LeafKey::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
    };
    generated.expect("generate a test leaf key")
}

fn encode_key(key: &KeyPair, kind: LeafKey, format: KeyFormat) -> String {
    let pkcs8 = key.serialized_der();
    match (format, kind) {
        (KeyFormat::Pkcs8, _) => pem("PRIVATE KEY", pkcs8),
        (KeyFormat::Traditional, LeafKey::Rsa2048) => {
            pem("RSA PRIVATE KEY", &der::pkcs8_to_pkcs1(pkcs8))
        }
        (KeyFormat::Traditional, LeafKey::EcdsaP256 | LeafKey::EcdsaP384) => {
            pem("EC PRIVATE KEY", &der::pkcs8_to_sec1(pkcs8))
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // 64 columns, as RFC 7468 and every PEM writer does.
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn remove_if_present(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{PrivateKeyDer, ServerName, UnixTime};

    fn verify(ca: &TestCa, fullchain: &str, name: &str) -> Result<(), rustls::Error> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(fullchain.as_bytes())
                .collect::<Result<_, _>>()
                .expect("fullchain parses");
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(ca.root_store()),
            provider(),
        )
        .build()
        .expect("verifier");
        verifier
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from(name.to_owned()).expect("server name"),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    fn load_key(key_pem: &str) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key parses")
    }

    #[test]
    fn issued_chain_verifies_for_each_name_and_only_those() {
        let ca = TestCa::new();
        let (fullchain, _) = ca.issue(&["example.test", "groups.example.test"]);
        assert_eq!(fullchain.matches("BEGIN CERTIFICATE").count(), 2);
        verify(&ca, &fullchain, "example.test").expect("covers the domain");
        verify(&ca, &fullchain, "groups.example.test").expect("covers groups.");
        assert!(verify(&ca, &fullchain, "share.example.test").is_err());
        assert!(verify(&TestCa::new(), &fullchain, "example.test").is_err());
    }

    #[test]
    fn key_formats_are_what_their_labels_say() {
        let ca = TestCa::new();
        let cases = [
            (LeafKey::EcdsaP256, KeyFormat::Pkcs8, "PRIVATE KEY"),
            (LeafKey::EcdsaP256, KeyFormat::Traditional, "EC PRIVATE KEY"),
            (LeafKey::EcdsaP384, KeyFormat::Traditional, "EC PRIVATE KEY"),
            (LeafKey::Rsa2048, KeyFormat::Traditional, "RSA PRIVATE KEY"),
        ];
        for (key, key_format, label) in cases {
            let options = IssueOptions {
                key,
                key_format,
                ..IssueOptions::default()
            };
            let (fullchain, key_pem) = ca.issue_with(&["example.test"], &options);
            assert!(key_pem.starts_with(&format!("-----BEGIN {label}-----\n")));
            let parsed = load_key(&key_pem);
            match key_format {
                KeyFormat::Pkcs8 => assert!(matches!(parsed, PrivateKeyDer::Pkcs8(_))),
                KeyFormat::Traditional if key == LeafKey::Rsa2048 => {
                    assert!(matches!(parsed, PrivateKeyDer::Pkcs1(_)));
                }
                KeyFormat::Traditional => assert!(matches!(parsed, PrivateKeyDer::Sec1(_))),
            }
            // The converted key must still be the certificate's key.
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(fullchain.as_bytes())
                    .collect::<Result<_, _>>()
                    .expect("fullchain parses");
            let certified = rustls::sign::CertifiedKey::from_der(chain, parsed, &provider())
                .unwrap_or_else(|e| panic!("{key:?} {key_format:?}: {e}"));
            certified.keys_match().expect("keys match");
        }
    }

    #[test]
    fn validity_follows_the_options() {
        let ca = TestCa::new();
        let start = SystemTime::now() - 10 * DAY;
        let options = IssueOptions {
            not_before: Some(start),
            not_after: Some(start + DAY),
            ..IssueOptions::default()
        };
        let (fullchain, _) = ca.issue_with(&["example.test"], &options);
        let err = verify(&ca, &fullchain, "example.test").expect_err("expired");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn certbot_layout_has_the_four_files() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live/example.test");
        ca.install_certbot_layout(&live, &["example.test"]);
        let read = |file: &str| fs::read_to_string(live.join(file)).expect("file exists");
        assert_eq!(
            read("fullchain.pem"),
            format!("{}{}", read("cert.pem"), read("chain.pem"))
        );
        assert_eq!(read("chain.pem"), ca.cert_pem());
        load_key(&read("privkey.pem"));
        verify(&ca, &read("fullchain.pem"), "example.test").expect("verifies");
    }

    #[cfg(unix)]
    #[test]
    fn certbot_versions_are_symlinks_into_the_archive() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live/example.test");
        let archive = dir.path().join("archive/example.test");
        ca.install_certbot_version(&live, &archive, 1, &["example.test"]);
        let first = fs::read(live.join("fullchain.pem")).expect("read");
        ca.install_certbot_version(&live, &archive, 2, &["example.test"]);
        let link = fs::read_link(live.join("fullchain.pem")).expect("a symlink");
        assert_eq!(link, archive.join("fullchain2.pem"));
        assert_ne!(fs::read(live.join("fullchain.pem")).expect("read"), first);
        assert!(archive.join("privkey1.pem").exists());
    }

    #[test]
    fn ca_file_holds_the_ca_certificate() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        ca.write_ca_file(&path);
        let parsed = CertificateDer::from_pem_file(&path).expect("parses");
        assert_eq!(parsed, ca.cert_der());
    }

    #[test]
    fn client_config_carries_alpn_and_versions() {
        let ca = TestCa::new();
        let config = ca.client_config(&[b"xmpp-client"]);
        assert_eq!(config.alpn_protocols, vec![b"xmpp-client".to_vec()]);
        let tls12 = ca.client_config_with_versions(&[], &[&rustls::version::TLS12]);
        assert!(tls12.alpn_protocols.is_empty());
    }
}
