//! The everyday XEPs against the real server on 127.0.0.1: vCards (XEP-0054) and the server's vCard, private XML
//! storage (XEP-0049), last activity (XEP-0012), software version (XEP-0092), entity time (XEP-0202) and contact
//! addresses (XEP-0157) — with the bad input each must refuse.

use std::time::Duration;

use rookery_test_support::{TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const VCARD: &str = "vcard-temp";
const PRIVATE: &str = "jabber:iq:private";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

fn iq(kind: &str, id: &str, to: Option<&str>, payload: Element) -> Element {
    let mut iq = Element::new("iq", ns::CLIENT)
        .with_attr("type", kind)
        .with_attr("id", id)
        .with_child(payload);
    if let Some(to) = to {
        iq.set_attr("to", to);
    }
    iq
}

/// The defined condition of an error reply, after checking that it is one.
fn error_condition(reply: &Element) -> String {
    assert_eq!(reply.attr("type"), Some("error"), "not an error: {reply}");
    reply
        .get_child("error", ns::CLIENT)
        .and_then(|e| {
            e.children()
                .find(|c| c.ns() == STANZAS && c.name() != "text")
        })
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| panic!("no condition in {reply}"))
}

fn result_payload<'a>(reply: &'a Element, name: &str, ns: &str) -> &'a Element {
    assert_eq!(reply.attr("type"), Some("result"), "not a result: {reply}");
    reply
        .get_child(name, ns)
        .unwrap_or_else(|| panic!("no <{name} xmlns='{ns}'/> in {reply}"))
}

fn vcard_with(name: &str, extra: &str) -> Element {
    Element::new("vCard", VCARD)
        .with_child(Element::new("FN", VCARD).with_text(name))
        .with_child(Element::new("NOTE", VCARD).with_text(extra))
}

async fn users(server: &TestServer, names: &[&str]) {
    for name in names {
        server.add_user(name, PASSWORD).await;
    }
}

#[tokio::test]
async fn vcards_are_set_by_their_owner_and_read_by_anyone() {
    let server = TestServer::start().await;
    users(&server, &["alice", "bob", "carol"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;

    let card = vcard_with("Alice Liddell", "down the rabbit hole");
    let reply = alice
        .iq(&iq("set", "v1", None, card.clone()))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    // Her own, with no 'to' and with her bare JID.
    let reply = alice
        .iq(&iq("get", "v2", None, Element::new("vCard", VCARD)))
        .await
        .unwrap();
    assert_eq!(result_payload(&reply, "vCard", VCARD), &card);
    let reply = alice
        .iq(&iq(
            "get",
            "v3",
            Some("alice@rookery.test"),
            Element::new("vCard", VCARD),
        ))
        .await
        .unwrap();
    assert_eq!(result_payload(&reply, "vCard", VCARD), &card);
    // Bob reads it: the server answers for Alice.
    let reply = bob
        .iq(&iq(
            "get",
            "v4",
            Some("alice@rookery.test"),
            Element::new("vCard", VCARD),
        ))
        .await
        .unwrap();
    assert_eq!(reply.attr("from"), Some("alice@rookery.test"));
    assert_eq!(result_payload(&reply, "vCard", VCARD), &card);
    // Carol has none: an empty vCard, as Prosody answers.
    let reply = bob
        .iq(&iq(
            "get",
            "v5",
            Some("carol@rookery.test"),
            Element::new("vCard", VCARD),
        ))
        .await
        .unwrap();
    assert_eq!(
        result_payload(&reply, "vCard", VCARD),
        &Element::new("vCard", VCARD)
    );
    // An account that does not exist: service-unavailable (RFC 6121 §8.5.1).
    let reply = bob
        .iq(&iq(
            "get",
            "v6",
            Some("nobody@rookery.test"),
            Element::new("vCard", VCARD),
        ))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "service-unavailable");
    // Bob cannot set Alice's.
    let reply = bob
        .iq(&iq(
            "set",
            "v7",
            Some("alice@rookery.test"),
            vcard_with("Mallory", ""),
        ))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "forbidden");
    let stored = server.server().store.vcards().get("alice").await.unwrap();
    assert_eq!(stored.as_deref(), Some(card.to_xml_string().as_str()));
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_vcard_is_refused_and_nothing_is_stored() {
    let server = TestServer::start_with(TestOptions {
        limits: Some(Box::new(|l| l.vcard_max_bytes = 1024)),
        ..TestOptions::default()
    })
    .await;
    users(&server, &["alice", "dave"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut dave = server.login("dave", PASSWORD, Some("d")).await;
    let small = vcard_with("Alice", "fits");
    let reply = alice
        .iq(&iq("set", "s1", None, small.clone()))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");

    let big = vcard_with("Alice", &"x".repeat(2000));
    for (client, id) in [(&mut alice, "s2"), (&mut dave, "s3")] {
        let reply = client.iq(&iq("set", id, None, big.clone())).await.unwrap();
        assert_eq!(error_condition(&reply), "not-acceptable");
    }
    // Alice keeps her earlier vCard; Dave still has none.
    let reply = alice
        .iq(&iq("get", "s4", None, Element::new("vCard", VCARD)))
        .await
        .unwrap();
    assert_eq!(result_payload(&reply, "vCard", VCARD), &small);
    assert_eq!(
        server.server().store.vcards().get("dave").await.unwrap(),
        None
    );
    server.stop().await;
}

async fn server_vcard_name(server: &TestServer, client: &mut TestClient) -> String {
    let reply = client
        .iq(&iq(
            "get",
            "sv",
            Some(&server.domain),
            Element::new("vCard", VCARD),
        ))
        .await
        .unwrap();
    let vcard = result_payload(&reply, "vCard", VCARD);
    assert!(!vcard.has_child("PHOTO", VCARD), "no logo: {vcard}");
    vcard.get_child("FN", VCARD).expect("FN").text()
}

#[tokio::test]
async fn the_server_vcard_names_the_site() {
    let server = TestServer::start().await;
    users(&server, &["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    assert_eq!(server_vcard_name(&server, &mut alice).await, "rookery.test");
    server.stop().await;

    let server = TestServer::start_with(TestOptions {
        vars: vec![("SNIKKET_SITE_NAME".into(), "The Family Chat".into())],
        ..TestOptions::default()
    })
    .await;
    users(&server, &["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    assert_eq!(
        server_vcard_name(&server, &mut alice).await,
        "The Family Chat"
    );
    server.stop().await;
}

fn private_query(children: Vec<Element>) -> Element {
    let mut query = Element::new("query", PRIVATE);
    for child in children {
        query.append_child(child);
    }
    query
}

#[tokio::test]
async fn private_storage_keeps_elements_by_namespace_and_refuses_bad_ones() {
    let server = TestServer::start().await;
    users(&server, &["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;

    let bookmarks = Element::new("storage", "storage:bookmarks").with_child(
        Element::new("conference", "storage:bookmarks")
            .with_attr("jid", "room@groups.rookery.test")
            .with_attr("autojoin", "true"),
    );
    let prefs = Element::new("prefs", "urn:example:prefs").with_text("dark");
    // Two elements in one set.
    let reply = alice
        .iq(&iq(
            "set",
            "p1",
            None,
            private_query(vec![bookmarks.clone(), prefs.clone()]),
        ))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    for (id, stored) in [("p2", &bookmarks), ("p3", &prefs)] {
        let ask = Element::new(stored.name(), stored.ns().to_owned());
        let reply = alice
            .iq(&iq("get", id, None, private_query(vec![ask])))
            .await
            .unwrap();
        let query = result_payload(&reply, "query", PRIVATE);
        assert_eq!(query.children().collect::<Vec<_>>(), vec![stored]);
    }
    // Nothing stored: the query comes back as asked.
    let ask = private_query(vec![Element::new("notes", "storage:rosternotes")]);
    let reply = alice.iq(&iq("get", "p4", None, ask.clone())).await.unwrap();
    assert_eq!(result_payload(&reply, "query", PRIVATE), &ask);

    // Refused, each changing nothing: an element without a namespace of its own, one in jabber:client, an empty
    // query. A good element sent along with a bad one is not stored either.
    let good = Element::new("notes", "storage:rosternotes").with_text("hello");
    let bad_sets = [
        ("p5", vec![good.clone(), Element::new("loose", PRIVATE)]),
        (
            "p6",
            vec![good.clone(), Element::new("message", ns::CLIENT)],
        ),
        ("p7", vec![]),
    ];
    for (id, children) in bad_sets {
        let reply = alice
            .iq(&iq("set", id, None, private_query(children)))
            .await
            .unwrap();
        assert_eq!(error_condition(&reply), "not-acceptable", "{id}");
    }
    let reply = alice.iq(&iq("get", "p8", None, ask.clone())).await.unwrap();
    assert_eq!(
        result_payload(&reply, "query", PRIVATE),
        &ask,
        "nothing stored"
    );
    // Gets that name no element, or two.
    let reply = alice
        .iq(&iq("get", "p9", None, private_query(vec![])))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "not-acceptable");
    let reply = alice
        .iq(&iq(
            "get",
            "p10",
            None,
            private_query(vec![Element::new("a", "urn:a"), Element::new("b", "urn:b")]),
        ))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "bad-request");

    // Bob may neither read nor write Alice's storage.
    for (kind, id) in [("get", "p11"), ("set", "p12")] {
        let reply = bob
            .iq(&iq(
                kind,
                id,
                Some("alice@rookery.test"),
                private_query(vec![Element::new("prefs", "urn:example:prefs")]),
            ))
            .await
            .unwrap();
        assert_eq!(error_condition(&reply), "forbidden", "{kind}");
    }
    // And his own storage is his own.
    let reply = bob
        .iq(&iq(
            "get",
            "p13",
            None,
            private_query(vec![Element::new("prefs", "urn:example:prefs")]),
        ))
        .await
        .unwrap();
    assert!(
        result_payload(&reply, "query", PRIVATE)
            .get_child("prefs", "urn:example:prefs")
            .unwrap()
            .nodes()
            .is_empty()
    );

    // An empty element removes what is stored under its key.
    let reply = alice
        .iq(&iq(
            "set",
            "p14",
            None,
            private_query(vec![Element::new("prefs", "urn:example:prefs")]),
        ))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"));
    let stored = server
        .server()
        .store
        .private_xml()
        .get("alice", "urn:example:prefs", "prefs")
        .await
        .unwrap();
    assert_eq!(stored, None);
    server.stop().await;
}

#[tokio::test]
async fn private_storage_over_its_limit_is_refused_whole() {
    let server = TestServer::start_with(TestOptions {
        limits: Some(Box::new(|l| l.private_storage_max_bytes = 300)),
        ..TestOptions::default()
    })
    .await;
    users(&server, &["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    let first = Element::new("a", "urn:a").with_text("x".repeat(150));
    let reply = alice
        .iq(&iq("set", "q1", None, private_query(vec![first.clone()])))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    let more = vec![
        Element::new("b", "urn:b").with_text("y".repeat(100)),
        Element::new("c", "urn:c").with_text("z".repeat(100)),
    ];
    let reply = alice
        .iq(&iq("set", "q2", None, private_query(more)))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "not-acceptable");
    let store = &server.server().store;
    assert_eq!(
        store.private_xml().total_bytes("alice").await.unwrap(),
        first.to_xml_string().len() as u64,
        "neither element was stored"
    );
    server.stop().await;
}

fn last_query() -> Element {
    Element::new("query", "jabber:iq:last")
}

fn seconds_of(reply: &Element) -> u64 {
    result_payload(reply, "query", "jabber:iq:last")
        .attr("seconds")
        .expect("seconds")
        .parse()
        .expect("a number")
}

/// Waits (bounded) until the server has recorded a logout for `username`.
async fn recorded_logout(server: &TestServer, username: &str) -> rookery_store::LastLogout {
    let logouts = server.server().store.last_logouts();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(logout) = logouts.get(username).await.unwrap() {
                return logout;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a logout is recorded")
}

fn unavailable(status: Option<&str>) -> Element {
    let mut presence = Element::new("presence", ns::CLIENT).with_attr("type", "unavailable");
    if let Some(status) = status {
        presence.append_child(Element::new("status", ns::CLIENT).with_text(status));
    }
    presence
}

#[tokio::test]
async fn last_activity_of_the_server_and_of_accounts() {
    let server = TestServer::start().await;
    users(&server, &["alice", "bob", "carol"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;

    // The server: its uptime.
    let reply = alice
        .iq(&iq("get", "l1", Some(&server.domain), last_query()))
        .await
        .unwrap();
    let uptime = seconds_of(&reply);
    assert!(uptime < 24 * 3600, "{uptime}");
    // Herself, online: 0.
    let reply = alice
        .iq(&iq("get", "l2", None, last_query()))
        .await
        .unwrap();
    assert_eq!(seconds_of(&reply), 0);
    assert_eq!(result_payload(&reply, "query", "jabber:iq:last").text(), "");
    // Bob has no subscription to Alice's presence: forbidden, online or not.
    let reply = bob
        .iq(&iq("get", "l3", Some("alice@rookery.test"), last_query()))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "forbidden");
    let reply = bob
        .iq(&iq("get", "l4", Some("carol@rookery.test"), last_query()))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "forbidden");
    let reply = bob
        .iq(&iq("get", "l5", Some("nobody@rookery.test"), last_query()))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "service-unavailable");

    // Alice logs out saying why: the logout and its status are recorded.
    alice
        .send(&unavailable(Some("Heading home")))
        .await
        .unwrap();
    alice.close().await.unwrap();
    let logout = recorded_logout(&server, "alice").await;
    assert_eq!(logout.status.as_deref(), Some("Heading home"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - 60..=now).contains(&logout.at), "{logout:?} at {now}");
    server.stop().await;
}

#[tokio::test]
async fn a_subscribed_contact_sees_the_last_logout() {
    let server = TestServer::start().await;
    users(&server, &["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    // bob asks to see alice's presence and she approves: he may see her last activity too.
    let subscribe = Element::new("presence", ns::CLIENT)
        .with_attr("type", "subscribe")
        .with_attr("to", "alice@rookery.test");
    bob.send(&subscribe).await.unwrap();
    bob.sync().await.unwrap();
    let approve = Element::new("presence", ns::CLIENT)
        .with_attr("type", "subscribed")
        .with_attr("to", "bob@rookery.test");
    alice.send(&approve).await.unwrap();
    alice.sync().await.unwrap();
    alice
        .send(&unavailable(Some("Gone fishing")))
        .await
        .unwrap();
    alice.close().await.unwrap();
    recorded_logout(&server, "alice").await;
    let reply = bob
        .iq(&iq("get", "l1", Some("alice@rookery.test"), last_query()))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    assert!(seconds_of(&reply) < 3600);
    assert_eq!(
        result_payload(&reply, "query", "jabber:iq:last").text(),
        "Gone fishing"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_logout_is_recorded_when_the_last_session_ends_with_its_status() {
    let server = TestServer::start().await;
    users(&server, &["alice", "bob"]).await;
    let mut first = server.login("alice", PASSWORD, Some("one")).await;
    let mut second = server.login("alice", PASSWORD, Some("two")).await;
    // The second session goes first, with a status: Alice is still online, so that is not her logout.
    second
        .send(&unavailable(Some("second away")))
        .await
        .unwrap();
    second.close().await.unwrap();
    let sessions = &server.server().sessions;
    tokio::time::timeout(Duration::from_secs(20), async {
        while sessions.sessions_of("alice").len() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the second session ends");
    first.send(&unavailable(Some("first away"))).await.unwrap();
    first.ping_server().await.unwrap();
    first.close().await.unwrap();
    let logout = recorded_logout(&server, "alice").await;
    assert_eq!(logout.status.as_deref(), Some("first away"));

    // Available again after an unavailable presence: the status no longer stands.
    let mut bob = server.login("bob", PASSWORD, None).await;
    bob.send(&unavailable(Some("brb"))).await.unwrap();
    bob.send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    // A round trip, so that both presences were handled before the stream closes.
    bob.ping_server().await.unwrap();
    bob.close().await.unwrap();
    assert_eq!(recorded_logout(&server, "bob").await.status, None);
    server.stop().await;
}

#[tokio::test]
async fn software_version_and_entity_time() {
    let server = TestServer::start().await;
    users(&server, &["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    let reply = alice
        .iq(&iq(
            "get",
            "ver",
            Some(&server.domain),
            Element::new("query", "jabber:iq:version"),
        ))
        .await
        .unwrap();
    let query = result_payload(&reply, "query", "jabber:iq:version");
    assert_eq!(
        query.get_child("name", "jabber:iq:version").unwrap().text(),
        "Rookery"
    );
    assert_eq!(
        query
            .get_child("version", "jabber:iq:version")
            .unwrap()
            .text(),
        env!("CARGO_PKG_VERSION")
    );
    assert!(!query.has_child("os", "jabber:iq:version"));

    for (id, to) in [
        ("t1", Some(server.domain.as_str())),
        ("t2", Some("bob@rookery.test")),
        ("t3", None),
    ] {
        let reply = alice
            .iq(&iq("get", id, to, Element::new("time", "urn:xmpp:time")))
            .await
            .unwrap();
        let time = result_payload(&reply, "time", "urn:xmpp:time");
        assert_eq!(
            time.get_child("tzo", "urn:xmpp:time").unwrap().text(),
            "+00:00"
        );
        let utc = time.get_child("utc", "urn:xmpp:time").unwrap().text();
        let shape: String = utc
            .chars()
            .map(|c| if c.is_ascii_digit() { 'd' } else { c })
            .collect();
        assert_eq!(shape, "dddd-dd-ddTdd:dd:ddZ", "{utc}");
    }
    let reply = alice
        .iq(&iq(
            "get",
            "t4",
            Some("nobody@rookery.test"),
            Element::new("time", "urn:xmpp:time"),
        ))
        .await
        .unwrap();
    assert_eq!(error_condition(&reply), "service-unavailable");
    server.stop().await;
}

async fn host_info(server: &TestServer, client: &mut TestClient) -> Element {
    let reply = client
        .iq(&iq(
            "get",
            "info",
            Some(&server.domain),
            Element::new("query", ns::DISCO_INFO),
        ))
        .await
        .unwrap();
    result_payload(&reply, "query", ns::DISCO_INFO).clone()
}

#[tokio::test]
async fn contact_addresses_are_in_the_server_info_form() {
    let server = TestServer::start_with(TestOptions {
        vars: vec![("SNIKKET_ABUSE_EMAIL".into(), "abuse@rookery.test".into())],
        ..TestOptions::default()
    })
    .await;
    users(&server, &["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    let info = host_info(&server, &mut alice).await;
    let features: Vec<String> = info
        .children()
        .filter(|c| c.name() == "feature")
        .filter_map(|c| c.attr("var").map(str::to_owned))
        .collect();
    for feature in [
        "vcard-temp",
        "jabber:iq:private",
        "jabber:iq:last",
        "jabber:iq:version",
        "urn:xmpp:time",
        "http://jabber.org/protocol/commands",
    ] {
        assert!(features.iter().any(|f| f == feature), "{feature} in {info}");
    }
    let forms: Vec<&Element> = info
        .children()
        .filter(|c| c.is("x", "jabber:x:data"))
        .collect();
    assert_eq!(forms.len(), 1, "{info}");
    let field = |var: &str| {
        forms[0]
            .children()
            .find(|f| f.attr("var") == Some(var))
            .map(|f| {
                f.children()
                    .filter(|v| v.name() == "value")
                    .map(Element::text)
                    .collect::<Vec<_>>()
            })
    };
    assert_eq!(forms[0].attr("type"), Some("result"));
    assert_eq!(
        field("FORM_TYPE"),
        Some(vec!["http://jabber.org/network/serverinfo".to_owned()])
    );
    assert_eq!(
        field("abuse-addresses"),
        Some(vec!["mailto:abuse@rookery.test".to_owned()])
    );
    assert_eq!(field("security-addresses"), None, "not configured");
    server.stop().await;

    // With no address configured, no form.
    let server = TestServer::start().await;
    users(&server, &["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    let info = host_info(&server, &mut alice).await;
    assert!(!info.has_child("x", "jabber:x:data"), "{info}");
    server.stop().await;
}
