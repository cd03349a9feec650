//! CertStore behaviour that needs no network: where certificates come from, self-signed persistence, status, errors.

mod common;

use std::fs;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{DOMAIN, Fixture, GROUPS, HOSTS, SHARE, hosts};
use rookery_test_support::IssueOptions;
use rookery_tls::{CertSource, CertStore, TlsError};

const DAY: Duration = Duration::from_secs(86_400);

/// Log lines written while `f` runs on this thread.
fn captured_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8 logs");
    (out, logs)
}

#[test]
fn without_a_certificate_a_self_signed_one_is_made_and_reused() {
    let fixture = Fixture::new();
    let (store, logs) = captured_logs(|| fixture.open());
    let status = store.status();
    let cert_path = fixture.self_signed_dir().join("cert.pem");
    assert_eq!(status.source, CertSource::SelfSigned(cert_path.clone()));
    assert_eq!(status.names, hosts());
    assert!(status.missing_names.is_empty());
    assert_eq!(status.disk_error, None);
    assert!(!status.looks_trustworthy_at(SystemTime::now()));
    assert!(status.not_after > SystemTime::now() + 300 * DAY);
    assert!(fixture.self_signed_dir().join("key.pem").exists());
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("SELF-SIGNED"), "{logs}");
    assert!(
        logs.contains(&fixture.cert_dir().display().to_string()),
        "{logs}"
    );

    // A restart serves the same certificate, and still says so loudly.
    let (again, logs) = captured_logs(|| fixture.open());
    assert_eq!(
        again.end_entity_certificate(),
        store.end_entity_certificate()
    );
    assert!(logs.contains("SELF-SIGNED"), "{logs}");
}

#[cfg(unix)]
#[test]
fn self_signed_key_is_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let fixture = Fixture::new();
    fixture.open();
    let mode = fs::metadata(fixture.self_signed_dir().join("key.pem"))
        .expect("key exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn self_signed_is_remade_for_new_names_or_when_expired() {
    let fixture = Fixture::new();
    let first = fixture.open().end_entity_certificate();

    // A different domain: the old certificate doesn't cover it.
    let other_hosts = vec!["other.test".to_owned()];
    let store =
        CertStore::open(&fixture.cert_dir(), &fixture.data_dir(), &other_hosts).expect("open");
    assert_ne!(store.end_entity_certificate(), first);
    assert_eq!(store.status().names, other_hosts);

    // An expired pair at the self-signed path is replaced.
    let long_ago = SystemTime::now() - 400 * DAY;
    let expired = IssueOptions {
        not_before: Some(long_ago),
        not_after: Some(long_ago + 365 * DAY),
        ..IssueOptions::default()
    };
    let (cert, key) = fixture.ca.issue_with(&HOSTS, &expired);
    fs::write(fixture.self_signed_dir().join("cert.pem"), cert).expect("write");
    fs::write(fixture.self_signed_dir().join("key.pem"), key).expect("write");
    let store = fixture.open();
    let status = store.status();
    assert!(matches!(status.source, CertSource::SelfSigned(_)));
    assert!(status.not_after > SystemTime::now() + 300 * DAY);
}

#[test]
fn disk_certificate_status() {
    let fixture = Fixture::new();
    fixture.install();
    let (store, logs) = captured_logs(|| fixture.open());
    let status = store.status();
    assert_eq!(
        status.source,
        CertSource::Disk(fixture.cert_dir().join("fullchain.pem"))
    );
    assert_eq!(status.names, hosts());
    assert!(status.missing_names.is_empty());
    assert!(status.looks_trustworthy_at(SystemTime::now()));
    assert!(status.not_before < SystemTime::now());
    assert!(!logs.contains("SELF-SIGNED"), "{logs}");
    assert!(
        !fixture.self_signed_dir().exists(),
        "no self-signed certificate is made when there is a real one"
    );
}

#[test]
fn missing_names_are_reported_and_warned_about() {
    let fixture = Fixture::new();
    fixture
        .ca
        .install_certbot_layout(&fixture.cert_dir(), &[DOMAIN]);
    let (store, logs) = captured_logs(|| fixture.open());
    let status = store.status();
    assert_eq!(
        status.missing_names,
        vec![GROUPS.to_owned(), SHARE.to_owned()]
    );
    assert!(!status.looks_trustworthy_at(SystemTime::now()));
    assert!(logs.contains("WARN"), "{logs}");
    assert!(
        logs.contains("does not cover groups.example.test, share.example.test"),
        "{logs}"
    );
}

#[test]
fn a_wildcard_covers_the_subdomains_only() {
    let fixture = Fixture::new();
    fixture
        .ca
        .install_certbot_layout(&fixture.cert_dir(), &["*.example.test"]);
    let status = fixture.open().status();
    assert_eq!(status.names, vec!["*.example.test".to_owned()]);
    assert_eq!(status.missing_names, vec![DOMAIN.to_owned()]);
}

#[test]
fn an_expired_disk_certificate_is_served_with_a_warning() {
    let fixture = Fixture::new();
    let long_ago = SystemTime::now() - 100 * DAY;
    let expired = IssueOptions {
        not_before: Some(long_ago),
        not_after: Some(long_ago + 90 * DAY),
        ..IssueOptions::default()
    };
    fixture
        .ca
        .install_certbot_layout_with(&fixture.cert_dir(), &HOSTS, &expired);
    let (store, logs) = captured_logs(|| fixture.open());
    assert!(matches!(store.status().source, CertSource::Disk(_)));
    assert!(!store.status().looks_trustworthy_at(SystemTime::now()));
    assert!(logs.contains("outside its validity period"), "{logs}");
}

#[test]
fn a_broken_disk_certificate_at_start_falls_back_to_self_signed() {
    let fixture = Fixture::new();
    fixture.write("fullchain.pem", fixture.ca.issue(&HOSTS).0);
    fixture.write(
        "privkey.pem",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
    );
    let (store, logs) = captured_logs(|| fixture.open());
    let status = store.status();
    assert!(matches!(status.source, CertSource::SelfSigned(_)));
    let disk_error = status.disk_error.expect("the problem is reported");
    assert!(disk_error.contains("privkey.pem"), "{disk_error}");
    assert!(logs.contains("ERROR"), "{logs}");

    // Fixing the files is picked up by the next reload.
    fixture.install();
    assert!(store.reload().expect("reload"));
    let status = store.status();
    assert!(matches!(status.source, CertSource::Disk(_)));
    assert_eq!(status.disk_error, None);
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let fixture = Fixture::new();
    let store = fixture.open();
    let fullchain = fixture.cert_dir().join("fullchain.pem");
    let privkey = fixture.cert_dir().join("privkey.pem");
    let (cert_pem, key_pem) = fixture.ca.issue(&HOSTS);

    fixture.write("fullchain.pem", &cert_pem);
    match store.reload() {
        Err(TlsError::Incomplete { present, missing }) => {
            assert_eq!((present, missing), (fullchain.clone(), privkey.clone()));
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }

    fixture.write("privkey.pem", &cert_pem);
    let err = store.reload().expect_err("a certificate is not a key");
    assert!(
        matches!(err, TlsError::NoPrivateKey { ref path } if *path == privkey),
        "{err}"
    );
    assert!(err.to_string().contains("privkey.pem"), "{err}");

    fixture.write("fullchain.pem", &key_pem);
    fixture.write("privkey.pem", &key_pem);
    let err = store.reload().expect_err("a key is not a certificate");
    assert!(
        matches!(err, TlsError::NoCertificate { ref path } if *path == fullchain),
        "{err}"
    );

    let truncated = &cert_pem[..cert_pem.len() - 30];
    fixture.write("fullchain.pem", truncated);
    let err = store.reload().expect_err("truncated PEM");
    assert!(matches!(err, TlsError::Pem { .. }), "{err}");
    assert!(err.to_string().contains("fullchain.pem"), "{err}");

    // Nothing was taken: still the self-signed certificate.
    assert!(matches!(store.status().source, CertSource::SelfSigned(_)));
}

#[test]
fn disappearing_files_keep_the_certificate_in_memory() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let served = store.end_entity_certificate();
    fs::remove_dir_all(fixture.cert_dir()).expect("remove");
    assert!(!store.reload().expect("no files is not an error"));
    assert_eq!(store.end_entity_certificate(), served);
    assert!(matches!(store.status().source, CertSource::Disk(_)));
}

#[test]
fn unchanged_files_are_not_reloaded() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    assert!(!store.reload().expect("reload"));
    // Rewriting identical bytes is not a change either.
    let fullchain = fs::read(fixture.cert_dir().join("fullchain.pem")).expect("read");
    fixture.write("fullchain.pem", fullchain);
    assert!(!store.reload().expect("reload"));
}

#[test]
fn names_are_required_and_normalised() {
    let fixture = Fixture::new();
    let err = CertStore::open(&fixture.cert_dir(), &fixture.data_dir(), &[]).expect_err("no names");
    assert!(matches!(err, TlsError::NoNames));

    fixture.install();
    let names = vec![
        "Example.TEST.".to_owned(),
        "groups.example.test".to_owned(),
        "share.example.test".to_owned(),
    ];
    let store = CertStore::open(&fixture.cert_dir(), &fixture.data_dir(), &names).expect("open");
    assert_eq!(store.host_names(), &hosts()[..]);
    assert!(store.status().missing_names.is_empty());
}
