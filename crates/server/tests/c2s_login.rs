//! Client login against the real server on 127.0.0.1: STARTTLS, direct TLS, every SCRAM mechanism, failures.

use rookery_test_support::{Binding, Ending, SaslFailure, TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn starttls_is_offered_and_required() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(server.c2s, &server.domain)
        .await
        .unwrap();
    client.open_stream().await.unwrap();
    let features = client.features.clone().unwrap();
    assert!(
        features
            .get_child("starttls", ns::TLS)
            .unwrap()
            .has_child("required", ns::TLS)
    );
    assert!(
        !features.has_child("mechanisms", ns::SASL),
        "no SASL before TLS: {features}"
    );
    // Trying to log in anyway is refused, and a stanza ends the stream.
    client.send_raw(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hLHI9YQ==</auth>").await.unwrap();
    let failure = client.next_element().await.unwrap();
    assert!(
        failure.has_child("encryption-required", ns::SASL),
        "{failure}"
    );
    client
        .send_raw(b"<message to='x@rookery.test'><body>hi</body></message>")
        .await
        .unwrap();
    assert_eq!(
        client.ending().await.unwrap(),
        Ending::StreamError("policy-violation".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn every_scram_mechanism_logs_in() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    for mechanism in [
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256-PLUS",
    ] {
        let mut client = server.connect().await;
        assert!(
            client.mechanisms().iter().any(|m| m == mechanism),
            "{mechanism} not offered: {:?}",
            client.mechanisms()
        );
        client
            .login("alice", PASSWORD, mechanism)
            .await
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        let jid = client.bind(Some("test")).await.unwrap();
        assert_eq!(jid, "alice@rookery.test/test");
        client.close().await.unwrap();
    }
    // The -PLUS variants with the other channel binding, tls-server-end-point, over TLS 1.3.
    for mechanism in ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"] {
        let mut client = server.connect().await;
        client
            .login_with("alice", PASSWORD, mechanism, Binding::TlsServerEndPoint)
            .await
            .unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_password_is_not_authorized() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let mut client = server.connect().await;
    let err = client
        .login("alice", "not the password", "SCRAM-SHA-256")
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<SaslFailure>(),
        Some(&SaslFailure("not-authorized".into()))
    );
    // An account that does not exist fails the same way.
    let err = client
        .login("nobody", "not the password", "SCRAM-SHA-1")
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<SaslFailure>(),
        Some(&SaslFailure("not-authorized".into()))
    );
    server.stop().await;
}

#[tokio::test]
async fn direct_tls_with_alpn() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let tls = server.ca.client_config(&[b"xmpp-client"]);
    let mut client = TestClient::connect_direct_tls(server.c2s_direct_tls, &server.domain, tls)
        .await
        .unwrap();
    assert_eq!(
        client.tls().unwrap().alpn_protocol(),
        Some(&b"xmpp-client"[..])
    );
    assert!(
        !client
            .features
            .as_ref()
            .unwrap()
            .has_child("starttls", ns::TLS)
    );
    client
        .login("alice", PASSWORD, "SCRAM-SHA-256-PLUS")
        .await
        .unwrap();
    client.bind(None).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn ping_and_disco_of_the_server() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let mut client = server.login("alice", PASSWORD, Some("r")).await;
    let ping = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "p1")
        .with_attr("to", "rookery.test")
        .with_child(Element::new("ping", ns::PING));
    let reply = client.iq(&ping).await.unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    assert_eq!(reply.attr("from"), Some("rookery.test"));

    let disco = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "d1")
        .with_attr("to", "rookery.test")
        .with_child(Element::new("query", ns::DISCO_INFO));
    let reply = client.iq(&disco).await.unwrap();
    let query = reply.get_child("query", ns::DISCO_INFO).unwrap();
    let identity = query.get_child("identity", ns::DISCO_INFO).unwrap();
    assert_eq!(
        (identity.attr("category"), identity.attr("type")),
        (Some("server"), Some("im"))
    );
    let features: Vec<&str> = query.children().filter_map(|f| f.attr("var")).collect();
    assert!(
        features.contains(&ns::PING) && features.contains(&ns::DISCO_INFO),
        "{features:?}"
    );

    // The account answers for itself (XEP-0030 on one's own bare JID), as clients ask before using PEP and MAM.
    let own = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "d2")
        .with_attr("to", "alice@rookery.test")
        .with_child(Element::new("query", ns::DISCO_INFO));
    let reply = client.iq(&own).await.unwrap();
    let identity = reply
        .get_child("query", ns::DISCO_INFO)
        .and_then(|q| q.get_child("identity", ns::DISCO_INFO));
    assert_eq!(
        identity.and_then(|i| i.attr("category")),
        Some("account"),
        "{reply}"
    );
    assert_eq!(identity.and_then(|i| i.attr("type")), Some("registered"));

    // An IQ nobody handles gets service-unavailable.
    let unknown = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "u1")
        .with_attr("to", "rookery.test")
        .with_child(Element::new("query", "urn:example:nothing"));
    let reply = client.iq(&unknown).await.unwrap();
    assert_eq!(reply.attr("type"), Some("error"));
    let error = reply.get_child("error", ns::CLIENT).unwrap();
    assert!(
        error.has_child("service-unavailable", ns::STANZA_ERRORS),
        "{reply}"
    );
    server.stop().await;
}

#[tokio::test]
async fn messages_between_sessions() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("bob", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("phone")).await;
    let mut bob = server.login("bob", PASSWORD, Some("laptop")).await;
    let msg = Element::new("message", ns::CLIENT)
        .with_attr("to", "bob@rookery.test/laptop")
        .with_attr("type", "chat")
        .with_attr("id", "m1")
        .with_child(Element::new("body", ns::CLIENT).with_text("hello <bob> & co"));
    alice.send(&msg).await.unwrap();
    let got = bob.next_matching(|e| e.name() == "message").await.unwrap();
    assert_eq!(got.attr("from"), Some("alice@rookery.test/phone"));
    assert_eq!(
        got.get_child("body", ns::CLIENT).unwrap().text(),
        "hello <bob> & co"
    );
    server.stop().await;
}

#[tokio::test]
async fn tls_profile_modern_refuses_tls_1_2_and_intermediate_allows_it() {
    let tls12 = |server: &TestServer| {
        server
            .ca
            .client_config_with_versions(&[], &[&rustls::version::TLS12])
    };
    let modern = TestServer::start().await;
    assert!(
        TestClient::connect_starttls(modern.c2s, &modern.domain, tls12(&modern))
            .await
            .is_err()
    );
    modern.stop().await;

    let intermediate = TestServer::start_with(TestOptions {
        vars: vec![("SNIKKET_TLS_PROFILE".into(), "intermediate".into())],
        ..Default::default()
    })
    .await;
    intermediate.add_user("alice", PASSWORD).await;
    let mut client =
        TestClient::connect_starttls(intermediate.c2s, &intermediate.domain, tls12(&intermediate))
            .await
            .unwrap();
    // Over TLS 1.2 only tls-server-end-point is offered for channel binding (RFC 9266).
    let features = client.features.clone().unwrap();
    let cb: Vec<&str> = features
        .get_child("sasl-channel-binding", ns::SASL_CB)
        .unwrap()
        .children()
        .filter_map(|c| c.attr("type"))
        .collect();
    assert_eq!(cb, ["tls-server-end-point"]);
    client
        .login("alice", PASSWORD, "SCRAM-SHA-256")
        .await
        .unwrap();
    intermediate.stop().await;
}

#[tokio::test]
async fn a_disabled_account_is_told_so_only_with_the_right_password() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server
        .server()
        .store
        .accounts()
        .set_disabled("alice", true)
        .await
        .unwrap();
    let mut client = server.connect().await;
    let err = client
        .login("alice", "not the password", "SCRAM-SHA-256")
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<SaslFailure>(),
        Some(&SaslFailure("not-authorized".into()))
    );
    let err = client
        .login("alice", PASSWORD, "SCRAM-SHA-256")
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<SaslFailure>(),
        Some(&SaslFailure("account-disabled".into()))
    );
    server.stop().await;
}
