//! Stream-level behaviour against the real server: bad input gets its stream error and closes only that
//! connection; resource limits, replacement, timeouts and shutdown.

use std::time::Duration;

use rookery_test_support::{Ending, TestClient, TestOptions, TestServer};
use rookery_xml::{Element, StreamEvent, ns};

const PASSWORD: &str = "correct horse battery";

/// A logged-in client sends a message to another and it arrives: the server still serves everyone.
async fn still_serving(
    server: &TestServer,
    alice: &mut TestClient,
    bob: &mut TestClient,
    body: &str,
) {
    let msg = Element::new("message", ns::CLIENT)
        .with_attr("to", bob.jid.clone().unwrap())
        .with_attr("type", "chat")
        .with_child(Element::new("body", ns::CLIENT).with_text(body));
    alice.send(&msg).await.unwrap();
    let got = bob.next_matching(|e| e.name() == "message").await.unwrap();
    assert_eq!(got.get_child("body", ns::CLIENT).unwrap().text(), body);
    let _ = server;
}

#[tokio::test]
async fn bad_xml_gets_its_stream_error_and_others_keep_working() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("bob", PASSWORD).await;
    server.add_user("mallory", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;

    let big_body = "x".repeat(300 * 1024);
    let big = format!("<message to='bob@rookery.test/b'><body>{big_body}</body></message>");
    let cases: [(&str, &[u8], bool); 7] = [
        (
            "not-well-formed",
            b"<message><body>unclosed</message>",
            true,
        ),
        ("not-well-formed", b"<message to='a' to='b'/>", true),
        (
            "restricted-xml",
            b"<!DOCTYPE foo [<!ENTITY x 'y'>]><message/>",
            true,
        ),
        (
            "restricted-xml",
            b"<message><body>&xxe;</body></message>",
            true,
        ),
        ("restricted-xml", b"<!-- a comment --><message/>", true),
        ("policy-violation", big.as_bytes(), true),
        // The same bad input before login is refused just the same.
        ("not-well-formed", b"<iq type='get'><unclosed></iq>", false),
    ];
    for (i, (condition, input, logged_in)) in cases.into_iter().enumerate() {
        let mut mallory = if logged_in {
            server.login("mallory", PASSWORD, Some("m")).await
        } else {
            server.connect().await
        };
        mallory.send_raw(input).await.unwrap();
        assert_eq!(
            mallory.ending().await.unwrap(),
            Ending::StreamError(condition.into()),
            "case {i}"
        );
        still_serving(&server, &mut alice, &mut bob, &format!("still here {i}")).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_stream_headers() {
    let server = TestServer::start().await;
    let cases: [(&str, &str); 4] = [
        (
            "host-unknown",
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='elsewhere.example' version='1.0'>",
        ),
        (
            "invalid-namespace",
            "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='rookery.test' version='1.0'>",
        ),
        (
            "invalid-namespace",
            "<stream xmlns='jabber:client' to='rookery.test' version='1.0'>",
        ),
        (
            "improper-addressing",
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        ),
    ];
    for (condition, header) in cases {
        let mut client = TestClient::connect_tcp(server.c2s, &server.domain)
            .await
            .unwrap();
        client.send_raw(header.as_bytes()).await.unwrap();
        assert_eq!(
            client.ending().await.unwrap(),
            Ending::StreamError(condition.into()),
            "{header}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn plaintext_after_starttls_closes_the_connection() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(server.c2s, &server.domain)
        .await
        .unwrap();
    client.open_stream().await.unwrap();
    // <starttls/> and, in the same packet, a stanza that must never be taken as if it came over TLS.
    client
        .send_raw(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await
        .unwrap();
    // No <proceed/> and nothing else: the connection is simply dropped.
    match client.next_event().await {
        Err(err) => assert!(err.to_string().contains("closed"), "{err}"),
        Ok(event) => panic!("expected the connection to close, got {event:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn whitespace_after_starttls_is_fine() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(server.c2s, &server.domain)
        .await
        .unwrap();
    client.open_stream().await.unwrap();
    client
        .send_raw(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n")
        .await
        .unwrap();
    assert!(client.next_element().await.unwrap().is("proceed", ns::TLS));
    client.upgrade_tls(server.tls_client()).await.unwrap();
    client.open_stream().await.unwrap();
    assert!(
        client
            .features
            .as_ref()
            .unwrap()
            .has_child("mechanisms", ns::SASL)
    );
    server.stop().await;
}

#[tokio::test]
async fn the_eleventh_resource_is_refused() {
    let server = TestServer::start_with(TestOptions {
        vars: vec![("SNIKKET_MAX_USER_CLIENTS".into(), "10".into())],
        ..Default::default()
    })
    .await;
    server.add_user("alice", PASSWORD).await;
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(
            server
                .login("alice", PASSWORD, Some(&format!("r{i}")))
                .await,
        );
    }
    let mut eleventh = server.connect().await;
    eleventh
        .login("alice", PASSWORD, "SCRAM-SHA-1")
        .await
        .unwrap();
    eleventh
        .send_raw(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r10</resource></bind></iq>")
        .await
        .unwrap();
    assert_eq!(
        eleventh.ending().await.unwrap(),
        Ending::StreamError("policy-violation".into())
    );
    // The ten keep working; when one leaves, a new one may come.
    assert_eq!(
        clients[9].ping_server().await.unwrap().attr("type"),
        Some("result")
    );
    clients.pop().unwrap().close().await.unwrap();
    let mut again = server.connect().await;
    again.login("alice", PASSWORD, "SCRAM-SHA-1").await.unwrap();
    again.bind(Some("r10")).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_second_bind_of_the_same_resource_replaces_the_first() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("bob", PASSWORD).await;
    let mut first = server.login("alice", PASSWORD, Some("phone")).await;
    let mut second = server.login("alice", PASSWORD, Some("phone")).await;
    assert_eq!(
        first.ending().await.unwrap(),
        Ending::StreamError("conflict".into())
    );
    // Messages to the full JID now reach the new session.
    let mut bob = server.login("bob", PASSWORD, None).await;
    let msg = Element::new("message", ns::CLIENT)
        .with_attr("to", "alice@rookery.test/phone")
        .with_child(Element::new("body", ns::CLIENT).with_text("to the new one"));
    bob.send(&msg).await.unwrap();
    let got = second
        .next_matching(|e| e.name() == "message")
        .await
        .unwrap();
    assert_eq!(
        got.get_child("body", ns::CLIENT).unwrap().text(),
        "to the new one"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_forged_from_is_a_stream_error() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    alice
        .send_raw(
            b"<message from='bob@rookery.test/x' to='alice@rookery.test'><body>hi</body></message>",
        )
        .await
        .unwrap();
    assert_eq!(
        alice.ending().await.unwrap(),
        Ending::StreamError("invalid-from".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_top_level_element_is_unsupported() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    alice
        .send_raw(b"<r xmlns='urn:example:unknown'/>")
        .await
        .unwrap();
    assert_eq!(
        alice.ending().await.unwrap(),
        Ending::StreamError("unsupported-stanza-type".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_sessions_get_whitespace_keepalives_and_unauthenticated_ones_time_out() {
    let server = TestServer::start_with(TestOptions {
        limits: Some(Box::new(|l| {
            l.c2s_idle_timeout = Duration::from_millis(300);
            l.c2s_unauthenticated_timeout = Duration::from_secs(2);
        })),
        ..Default::default()
    })
    .await;
    server.add_user("alice", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    // Silence: the server sends a whitespace keep-alive, twice, and keeps the session.
    for _ in 0..2 {
        let bytes = alice.read_raw(Duration::from_secs(20)).await.unwrap();
        assert_eq!(bytes, b" ", "a whitespace keep-alive");
    }
    assert_eq!(
        alice.ping_server().await.unwrap().attr("type"),
        Some("result")
    );

    // A connection that never logs in is closed.
    let mut lurker = TestClient::connect_tcp(server.c2s, &server.domain)
        .await
        .unwrap();
    lurker.open_stream().await.unwrap();
    assert_eq!(
        lurker.ending().await.unwrap(),
        Ending::StreamError("connection-timeout".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_flood_to_a_reading_client_is_delivered_whole() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("mallory", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut mallory = server.login("mallory", PASSWORD, Some("m")).await;
    // Far more than one session's queue holds (1 MiB), sent in one go.
    let count = 3000;
    let mut flood = Vec::new();
    for i in 0..count {
        flood.extend_from_slice(
            format!(
                "<message to='alice@rookery.test/a'><body>{i} {}</body></message>",
                "x".repeat(400)
            )
            .as_bytes(),
        );
    }
    let sender = tokio::spawn(async move {
        mallory.send_raw(&flood).await.unwrap();
        mallory
    });
    for i in 0..count {
        let got = alice
            .next_matching(|e| e.name() == "message")
            .await
            .unwrap();
        let body = got.get_child("body", ns::CLIENT).unwrap().text();
        assert!(
            body.starts_with(&format!("{i} ")),
            "message {i} arrives in order"
        );
    }
    let mut mallory = sender.await.unwrap();
    // The flooder was slowed down, not cut off, and neither was alice.
    assert_eq!(
        mallory.ping_server().await.unwrap().attr("type"),
        Some("result")
    );
    assert_eq!(
        alice.ping_server().await.unwrap().attr("type"),
        Some("result")
    );
    server.stop().await;
}

/// Sends initial presence, as a client does after binding, so that messages to the bare JID reach it.
async fn be_available(client: &mut TestClient) {
    client
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    client.ping_server().await.unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_and_nothing_sent_to_it_is_lost() {
    let server = TestServer::start_with(TestOptions {
        limits: Some(Box::new(|l| {
            l.slow_reader_timeout = Duration::from_millis(200)
        })),
        ..Default::default()
    })
    .await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("bob", PASSWORD).await;
    server.add_user("carol", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    be_available(&mut bob).await;
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    be_available(&mut carol).await;
    // Neither bob nor carol reads. alice sends each 100 messages of 100 KiB, far more than a queue and the socket
    // buffers take: to bob's full JID and to carol's bare JID, the two ways a message reaches a session.
    let big = "y".repeat(100 * 1024);
    let per_recipient = 100;
    let sender = tokio::spawn(async move {
        for i in 0..per_recipient {
            for to in ["bob@rookery.test/b", "carol@rookery.test"] {
                let msg = Element::new("message", ns::CLIENT)
                    .with_attr("to", to)
                    .with_attr("id", format!("m{i}"))
                    .with_child(Element::new("body", ns::CLIENT).with_text(big.as_str()));
                alice.send(&msg).await.unwrap();
            }
        }
        alice
    });
    let mut alice = sender.await.unwrap();
    // Both sessions were closed as stalled; what reached their sockets before that, they can still read.
    for (user, mut stalled) in [("bob", bob), ("carol", carol)] {
        let mut condition = None;
        let mut got = 0;
        loop {
            match stalled.next_event().await {
                Ok(StreamEvent::Element(el)) if el.name() == "message" => got += 1,
                Ok(StreamEvent::Element(el)) if el.is("error", ns::STREAMS) => {
                    condition = el.first_child().map(|c| c.name().to_owned());
                }
                Ok(StreamEvent::Close) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert_eq!(condition.as_deref(), Some("policy-violation"));
        assert!(
            got < per_recipient,
            "a client that never reads cannot have taken everything"
        );
        // Every other message is kept offline for the account (once its connection has handed back its queue):
        // none is lost, none bounced.
        let offline = server.server().store.offline();
        let expected = u64::try_from(per_recipient - got).unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            while offline.count(user).await.unwrap() != expected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{user}: {got} read, the rest never all stored"));
    }
    // And alice keeps her session, with no error to read.
    let ping = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "after")
        .with_attr("to", "rookery.test")
        .with_child(Element::new("ping", ns::PING));
    alice.send(&ping).await.unwrap();
    let next = alice.next_element().await.unwrap();
    assert_eq!(
        (next.name(), next.attr("id"), next.attr("type")),
        ("iq", Some("after"), Some("result")),
        "{next}"
    );
    server.stop().await;
}

#[tokio::test]
async fn before_login_stanzas_are_small() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let limit = client
        .features
        .as_ref()
        .and_then(|f| f.get_child("limits", ns::STREAM_LIMITS))
        .and_then(|l| l.get_child("max-bytes", ns::STREAM_LIMITS))
        .map(Element::text);
    assert_eq!(limit.as_deref(), Some("16384"), "advertised with XEP-0478");
    let big = format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{}</auth>",
        "A".repeat(20_000)
    );
    client.send_raw(big.as_bytes()).await.unwrap();
    assert_eq!(
        client.ending().await.unwrap(),
        Ending::StreamError("policy-violation".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn whitespace_keepalives_keep_a_session_open() {
    let server = TestServer::start_with(TestOptions {
        limits: Some(Box::new(|l| {
            l.c2s_idle_timeout = Duration::from_millis(400)
        })),
        ..Default::default()
    })
    .await;
    server.add_user("alice", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    // Keep-alives for longer than two idle periods.
    for _ in 0..10 {
        alice.send_raw(b" ").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        alice.ping_server().await.unwrap().attr("type"),
        Some("result")
    );
    server.stop().await;
}

#[tokio::test]
async fn stopping_the_server_says_system_shutdown() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut unauthenticated = server.connect().await;
    let stop = tokio::spawn(server.stop());
    assert_eq!(
        alice.ending().await.unwrap(),
        Ending::StreamError("system-shutdown".into())
    );
    assert_eq!(
        unauthenticated.ending().await.unwrap(),
        Ending::StreamError("system-shutdown".into())
    );
    stop.await.unwrap();
}
