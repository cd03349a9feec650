//! Real TLS handshakes over TCP against configurations from `CertStore::server_config`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    DOMAIN, Fixture, GROUPS, HOSTS, SHARE, TestServer, is_name_mismatch, is_unknown_issuer,
    peer_leaf,
};
use rookery_test_support::{IssueOptions, KeyFormat, LeafKey, TestCa};
use rookery_tls::rustls::client::WebPkiServerVerifier;
use rookery_tls::rustls::server::WebPkiClientVerifier;
use rookery_tls::rustls::version::TLS12;
use rookery_tls::rustls::{AlertDescription, ClientConfig, ProtocolVersion, RootCertStore};
use rookery_tls::{CertSource, TLS_EXPORTER_LABEL, TlsProfile, crypto_provider};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

const XMPP_CLIENT: &[u8] = b"xmpp-client";
const XMPP_SERVER: &[u8] = b"xmpp-server";

#[tokio::test]
async fn modern_refuses_a_tls12_only_client_that_intermediate_accepts() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let tls12_client = fixture.ca.client_config_with_versions(&[], &[&TLS12]);

    let modern = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;
    let err = modern
        .connect(Arc::clone(&tls12_client), DOMAIN)
        .await
        .expect_err("TLS 1.2 is not allowed by the modern profile");
    let alert = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            alert,
            Some(rustls::Error::AlertReceived(
                AlertDescription::ProtocolVersion
            ))
        ),
        "{err}"
    );
    assert!(modern.next().await.is_err());

    let intermediate = TestServer::start(store.server_config(TlsProfile::Intermediate, &[])).await;
    let stream = intermediate
        .connect(tls12_client, DOMAIN)
        .await
        .expect("intermediate allows TLS 1.2");
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    let side = intermediate.next().await.expect("server handshake");
    assert_eq!(side.version, Some(ProtocolVersion::TLSv1_2));
}

#[tokio::test]
async fn both_profiles_negotiate_tls13_with_a_current_client() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    for profile in [TlsProfile::Modern, TlsProfile::Intermediate] {
        let server = TestServer::start(store.server_config(profile, &[])).await;
        let stream = server
            .connect(fixture.ca.client_config(&[]), DOMAIN)
            .await
            .expect("handshake");
        assert_eq!(
            stream.get_ref().1.protocol_version(),
            Some(ProtocolVersion::TLSv1_3),
            "{profile}"
        );
    }
}

#[tokio::test]
async fn alpn_is_negotiated() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let server =
        TestServer::start(store.server_config(TlsProfile::Modern, &[XMPP_CLIENT, XMPP_SERVER]))
            .await;

    for protocol in [XMPP_CLIENT, XMPP_SERVER] {
        let stream = server
            .connect(fixture.ca.client_config(&[protocol]), DOMAIN)
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(protocol));
        let side = server.next().await.expect("server handshake");
        assert_eq!(side.alpn.as_deref(), Some(protocol));
    }

    // XEP-0368 clients may send no ALPN at all.
    let stream = server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect("handshake without ALPN");
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
}

#[tokio::test]
async fn every_host_name_gets_the_certificate_with_or_without_sni() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[XMPP_CLIENT])).await;
    let served = store.end_entity_certificate();

    for host in HOSTS {
        let stream = server
            .connect(fixture.ca.client_config(&[XMPP_CLIENT]), host)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(peer_leaf(&stream), served);
        let side = server.next().await.expect("server handshake");
        assert_eq!(side.sni.as_deref(), Some(host));
    }

    let mut no_sni = (*fixture.ca.client_config(&[XMPP_CLIENT])).clone();
    no_sni.enable_sni = false;
    let stream = server
        .connect(Arc::new(no_sni), DOMAIN)
        .await
        .expect("a client without SNI is served too");
    assert_eq!(peer_leaf(&stream), served);
    let side = server.next().await.expect("server handshake");
    assert_eq!(side.sni, None);

    // A name this server doesn't host still gets the certificate; the client then rejects it for the name.
    let err = server
        .connect(fixture.ca.client_config(&[XMPP_CLIENT]), "other.test")
        .await
        .expect_err("the certificate does not cover other.test");
    assert!(is_name_mismatch(&err), "{err}");
}

#[tokio::test]
async fn a_certificate_missing_a_host_is_served_anyway() {
    let fixture = Fixture::new();
    fixture
        .ca
        .install_certbot_layout(&fixture.cert_dir(), &[DOMAIN, GROUPS]);
    let store = fixture.open();
    assert_eq!(store.status().missing_names, vec![SHARE.to_owned()]);
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;

    server
        .connect(fixture.ca.client_config(&[]), GROUPS)
        .await
        .expect("covered host");
    let err = server
        .connect(fixture.ca.client_config(&[]), SHARE)
        .await
        .expect_err("uncovered host");
    assert!(is_name_mismatch(&err), "{err}");
}

#[tokio::test]
async fn reload_reaches_configs_already_handed_out() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let config = store.server_config(TlsProfile::Modern, &[XMPP_CLIENT]);
    let server = TestServer::start(Arc::clone(&config)).await;
    let client = fixture.ca.client_config(&[XMPP_CLIENT]);

    let first = server
        .connect(Arc::clone(&client), DOMAIN)
        .await
        .expect("handshake");
    let old_leaf = peer_leaf(&first);

    fixture.install();
    assert!(
        store.reload().expect("reload"),
        "the new certificate is swapped in"
    );
    assert!(!store.reload().expect("reload"), "nothing changed since");

    // The same config object, on the same listener: the next handshake sees the new certificate.
    let second = server.connect(client, DOMAIN).await.expect("handshake");
    let new_leaf = peer_leaf(&second);
    assert_ne!(new_leaf, old_leaf);
    assert_eq!(new_leaf, store.end_entity_certificate());
    // The connection made before the reload is unaffected.
    assert_eq!(peer_leaf(&first), old_leaf);
    drop(config);
}

#[tokio::test]
async fn broken_new_files_keep_the_old_certificate() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;
    let client = fixture.ca.client_config(&[]);
    let served = store.end_entity_certificate();

    // Not PEM at all; then put back as it was, which clears the error without a swap.
    let original = std::fs::read(fixture.cert_dir().join("fullchain.pem")).expect("read");
    fixture.write("fullchain.pem", "this is not a certificate\n");
    let err = store.reload().expect_err("garbage is rejected");
    assert!(err.to_string().contains("fullchain.pem"), "{err}");
    assert!(store.status().disk_error.is_some());
    fixture.write("fullchain.pem", original);
    assert!(!store.reload().expect("the served files are back"));
    assert_eq!(store.status().disk_error, None);

    // A valid certificate with somebody else's key, as seen halfway through copying a renewal.
    let (fullchain, _) = fixture.ca.issue(&HOSTS);
    let (_, other_key) = fixture.ca.issue(&HOSTS);
    fixture.write("fullchain.pem", &fullchain);
    fixture.write("privkey.pem", &other_key);
    let err = store.reload().expect_err("mismatched key is rejected");
    assert!(err.to_string().contains("does not belong"), "{err}");
    assert_eq!(store.status().disk_error, Some(err.to_string()));
    // Asking again gives the same answer (and logs nothing new).
    assert!(store.reload().is_err());

    let stream = server.connect(client, DOMAIN).await.expect("still serving");
    assert_eq!(peer_leaf(&stream), served);
    assert_eq!(store.end_entity_certificate(), served);

    // Once the pair is consistent again, it is taken and the error is cleared.
    fixture.install();
    assert!(store.reload().expect("reload"));
    assert_ne!(store.end_entity_certificate(), served);
    assert_eq!(store.status().disk_error, None);
}

#[cfg(unix)]
#[tokio::test]
async fn certbot_renewal_through_symlinks_is_picked_up() {
    let fixture = Fixture::new();
    let archive = fixture.data_dir().join("letsencrypt/archive").join(DOMAIN);
    fixture
        .ca
        .install_certbot_version(&fixture.cert_dir(), &archive, 1, &HOSTS);
    let store = fixture.open();
    assert_eq!(
        store.status().source,
        CertSource::Disk(fixture.cert_dir().join("fullchain.pem"))
    );
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;
    let first = server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect("handshake");

    fixture
        .ca
        .install_certbot_version(&fixture.cert_dir(), &archive, 2, &HOSTS);
    assert!(store.reload().expect("reload"));
    let second = server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect("handshake");
    assert_ne!(peer_leaf(&first), peer_leaf(&second));
}

#[tokio::test]
async fn self_signed_is_served_until_a_real_certificate_appears() {
    let fixture = Fixture::new();
    let store = fixture.open();
    assert!(matches!(store.status().source, CertSource::SelfSigned(_)));
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;

    let err = server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect_err("nobody trusts the self-signed certificate");
    assert!(is_unknown_issuer(&err), "{err}");

    // Trusting the self-signed certificate itself (what a user accepting it does) works for every host.
    let mut roots = RootCertStore::empty();
    roots
        .add(store.end_entity_certificate())
        .expect("usable as a trust anchor");
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
        .build()
        .expect("verifier");
    let pinned = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let pinned = Arc::new(pinned);
    for host in HOSTS {
        server
            .connect(Arc::clone(&pinned), host)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }

    fixture.install();
    assert!(store.reload().expect("reload"));
    assert!(matches!(store.status().source, CertSource::Disk(_)));
    server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect("the CA-issued certificate is served now");
}

#[tokio::test]
async fn tls_exporter_is_the_same_on_both_sides() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;

    let stream = server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect("handshake");
    let client_side = stream
        .get_ref()
        .1
        .export_keying_material(vec![0u8; 32], TLS_EXPORTER_LABEL, None)
        .expect("client exporter");
    let server_side = server.next().await.expect("server handshake");
    assert_eq!(server_side.exporter.as_deref(), Some(&client_side[..]));
    assert_eq!(client_side.len(), 32);

    // Another connection binds to something else.
    let other = server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect("handshake");
    let other_side = server.next().await.expect("server handshake");
    assert_ne!(other_side.exporter, server_side.exporter);
    drop(other);

    // RFC 9266 needs extended master secret on TLS 1.2, which rustls doesn't report: no exporter binding there.
    let intermediate = TestServer::start(store.server_config(TlsProfile::Intermediate, &[])).await;
    intermediate
        .connect(
            fixture.ca.client_config_with_versions(&[], &[&TLS12]),
            DOMAIN,
        )
        .await
        .expect("handshake");
    let side = intermediate.next().await.expect("server handshake");
    assert_eq!(side.exporter, None);
}

#[tokio::test]
async fn tls_server_end_point_is_sha256_of_an_ecdsa_sha256_certificate() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;
    let stream = server
        .connect(fixture.ca.client_config(&[]), DOMAIN)
        .await
        .expect("handshake");
    let leaf = peer_leaf(&stream);
    let expected = Sha256::digest(leaf.as_ref()).to_vec();
    assert_eq!(store.tls_server_end_point(), expected);
    assert_eq!(rookery_tls::tls_server_end_point_for(&leaf), expected);
}

#[tokio::test]
async fn certbot_key_formats_all_serve() {
    let cases = [
        (LeafKey::EcdsaP256, KeyFormat::Pkcs8),
        (LeafKey::EcdsaP256, KeyFormat::Traditional),
        (LeafKey::EcdsaP384, KeyFormat::Traditional),
        (LeafKey::Rsa2048, KeyFormat::Pkcs8),
        (LeafKey::Rsa2048, KeyFormat::Traditional),
    ];
    let fixture = Fixture::new();
    let store = {
        fixture.install();
        fixture.open()
    };
    let server = TestServer::start(store.server_config(TlsProfile::Intermediate, &[])).await;
    for (key, key_format) in cases {
        let options = IssueOptions {
            key,
            key_format,
            ..IssueOptions::default()
        };
        fixture
            .ca
            .install_certbot_layout_with(&fixture.cert_dir(), &HOSTS, &options);
        assert!(
            store
                .reload()
                .unwrap_or_else(|e| panic!("{key:?} {key_format:?}: {e}"))
        );
        for client in [
            fixture.ca.client_config(&[]),
            fixture.ca.client_config_with_versions(&[], &[&TLS12]),
        ] {
            let stream = server
                .connect(client, SHARE)
                .await
                .unwrap_or_else(|e| panic!("{key:?} {key_format:?}: {e}"));
            assert_eq!(peer_leaf(&stream), store.end_entity_certificate());
        }
    }
}

#[tokio::test]
async fn reloader_task_swaps_and_stops_on_cancel() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let before = store.end_entity_certificate();
    let cancel = CancellationToken::new();
    let task = Arc::clone(&store).spawn_reloader(Duration::from_millis(20), cancel.clone());

    fixture.install();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.end_entity_certificate() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reloader picked up the new certificate"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the reloader stops when cancelled")
        .expect("the reloader did not panic");
}

#[tokio::test]
async fn federation_presents_the_store_certificate_as_client() {
    // Two servers, each with its own CA: "us" connects out to "them", presenting our certificate.
    let us = Fixture::new();
    us.install();
    let our_store = us.open();
    let them = Fixture::new();
    them.ca
        .install_certbot_layout(&them.cert_dir(), &["remote.test"]);
    let their_store = Arc::new(
        rookery_tls::CertStore::open(
            &them.cert_dir(),
            &them.data_dir(),
            &["remote.test".to_owned()],
        )
        .expect("open"),
    );

    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(us.ca.root_store()),
        crypto_provider(),
    )
    .build()
    .expect("client verifier");
    let server = TestServer::start(their_store.server_config_with_client_auth(
        TlsProfile::Modern,
        &[XMPP_SERVER],
        verifier,
    ))
    .await;

    let mut client = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TlsProfile::Modern.versions())
        .expect("versions")
        .with_root_certificates(them.ca.root_store())
        .with_client_cert_resolver(our_store.client_cert_resolver());
    client.alpn_protocols = vec![XMPP_SERVER.to_vec()];
    server
        .connect(Arc::new(client), "remote.test")
        .await
        .expect("mutual TLS handshake");
    let side = server.next().await.expect("server handshake");
    let presented = side.client_certificates.expect("a client certificate");
    assert_eq!(presented[0], our_store.end_entity_certificate());
}

#[tokio::test]
async fn another_ca_is_not_trusted() {
    let fixture = Fixture::new();
    fixture.install();
    let store = fixture.open();
    let server = TestServer::start(store.server_config(TlsProfile::Modern, &[])).await;
    let err = server
        .connect(TestCa::new().client_config(&[]), DOMAIN)
        .await
        .expect_err("a different CA");
    assert!(is_unknown_issuer(&err), "{err}");
}
