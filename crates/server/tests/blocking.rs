//! XEP-0191 blocking against the real server: the blocklist commands and their pushes, stanzas stopped both ways
//! and restored by unblocking, the presence a block sends, the size limit and bad input.
//!
//! "Nothing arrived" is shown without waiting: the client pings the server, and the ping's answer must be the next
//! thing it reads. Stanzas a session sends are handled in order, so whatever the earlier ones caused is queued
//! before that answer.

use rookery_core::Origin;
use rookery_proto::StanzaKind;
use rookery_test_support::{TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const BLOCKING: &str = "urn:xmpp:blocking";
const BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";

fn iq(kind: &str, id: &str, payload: Element) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", kind)
        .with_attr("id", id)
        .with_child(payload)
}

fn items(name: &str, jids: &[&str]) -> Element {
    let mut el = Element::new(name, BLOCKING);
    for jid in jids {
        el.append_child(Element::new("item", BLOCKING).with_attr("jid", *jid));
    }
    el
}

fn chat(to: &str, body: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_child(Element::new("body", ns::CLIENT).with_text(body))
}

/// The defined condition of an error stanza, with its error type.
fn error_of(stanza: &Element) -> (String, String) {
    assert_eq!(stanza.attr("type"), Some("error"), "not an error: {stanza}");
    let error = stanza
        .get_child("error", ns::CLIENT)
        .unwrap_or_else(|| panic!("no <error/>: {stanza}"));
    let condition = error
        .children()
        .find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    (condition, error.attr("type").unwrap_or_default().to_owned())
}

async fn request(client: &mut TestClient, kind: &str, id: &str, payload: Element) -> Element {
    client.iq(&iq(kind, id, payload)).await.unwrap()
}

async fn block(client: &mut TestClient, jids: &[&str]) {
    let reply = request(client, "set", "block", items("block", jids)).await;
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
}

async fn blocklist(client: &mut TestClient) -> Vec<String> {
    let reply = request(client, "get", "list", Element::new("blocklist", BLOCKING)).await;
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    reply
        .get_child("blocklist", BLOCKING)
        .unwrap()
        .children()
        .map(|i| i.attr("jid").unwrap().to_owned())
        .collect()
}

/// The next thing `client` reads is the answer to a ping sent now: nothing else arrived before it.
async fn nothing_arrived(client: &mut TestClient, what: &str) {
    let ping = iq("get", "barrier", Element::new("ping", ns::PING)).with_attr("to", "rookery.test");
    client.send(&ping).await.unwrap();
    let next = client.next_element().await.unwrap();
    assert_eq!(
        (next.name(), next.attr("id")),
        ("iq", Some("barrier")),
        "{what}: expected nothing, got {next}"
    );
}

async fn server_with(users: &[&str], options: TestOptions) -> TestServer {
    let server = TestServer::start_with(options).await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    server
}

#[tokio::test]
async fn announced_on_the_domain_and_empty_at_first() {
    let server = server_with(&["alice"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let disco =
        iq("get", "disco", Element::new("query", ns::DISCO_INFO)).with_attr("to", "rookery.test");
    let reply = alice.iq(&disco).await.unwrap();
    let features: Vec<&str> = reply
        .get_child("query", ns::DISCO_INFO)
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    assert!(features.contains(&BLOCKING), "{features:?}");
    assert!(blocklist(&mut alice).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn block_list_unblock_and_pushes() {
    let server = server_with(&["alice"], TestOptions::default()).await;
    let mut a1 = server.login("alice", PASSWORD, Some("one")).await;
    let mut a2 = server.login("alice", PASSWORD, Some("two")).await;
    let mut a3 = server.login("alice", PASSWORD, Some("three")).await;
    // One and three asked for the list; two did not, and gets no pushes.
    assert!(blocklist(&mut a1).await.is_empty());
    assert!(blocklist(&mut a3).await.is_empty());

    a1.send(&iq(
        "set",
        "b1",
        items(
            "block",
            &[
                "bob@rookery.test",
                "spam.example",
                "Mallory@Evil.Example/Phone",
            ],
        ),
    ))
    .await
    .unwrap();
    // The reply first, then the push, which carries the JIDs as the server stores them.
    let reply = a1.next_element().await.unwrap();
    assert_eq!(
        (reply.attr("id"), reply.attr("type")),
        (Some("b1"), Some("result"))
    );
    for client in [&mut a1, &mut a3] {
        let push = client.next_element().await.unwrap();
        assert_eq!(push.attr("type"), Some("set"), "{push}");
        assert_eq!(push.attr("to"), client.jid.as_deref());
        let pushed: Vec<&str> = push
            .get_child("block", BLOCKING)
            .unwrap()
            .children()
            .filter_map(|i| i.attr("jid"))
            .collect();
        assert_eq!(
            pushed,
            [
                "bob@rookery.test",
                "spam.example",
                "mallory@evil.example/Phone"
            ]
        );
    }
    nothing_arrived(&mut a2, "no push to a session that never asked").await;
    assert_eq!(
        blocklist(&mut a2).await,
        [
            "bob@rookery.test",
            "mallory@evil.example/Phone",
            "spam.example"
        ]
    );

    let reply = request(&mut a3, "set", "u1", items("unblock", &["spam.example"])).await;
    assert_eq!(reply.attr("type"), Some("result"));
    for client in [&mut a1, &mut a2, &mut a3] {
        let push = client
            .next_matching(|e| e.attr("type") == Some("set"))
            .await
            .unwrap();
        let unblocked = push.get_child("unblock", BLOCKING).unwrap();
        assert_eq!(unblocked.children().count(), 1);
    }
    // Unblock all: an empty <unblock/>, pushed as such.
    let reply = request(&mut a2, "set", "u2", items("unblock", &[])).await;
    assert_eq!(reply.attr("type"), Some("result"));
    let push = a1
        .next_matching(|e| e.attr("type") == Some("set"))
        .await
        .unwrap();
    assert_eq!(
        push.get_child("unblock", BLOCKING)
            .unwrap()
            .children()
            .count(),
        0
    );
    assert!(blocklist(&mut a1).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_blocked_contact_cannot_reach_the_user_until_unblocked() {
    let server = server_with(&["alice", "bob", "carol"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    // Available, so that messages to her bare JID reach this session rather than her offline store.
    alice
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    block(&mut alice, &["bob@rookery.test"]).await;

    // Messages, to the bare or the full JID: service-unavailable, as for an account that is offline.
    for to in ["alice@rookery.test", "alice@rookery.test/a"] {
        bob.send(&chat(to, "hello?")).await.unwrap();
        let error = bob.next_element().await.unwrap();
        assert_eq!(error.name(), "message");
        assert_eq!(
            error_of(&error),
            ("service-unavailable".into(), "cancel".into()),
            "{to}"
        );
    }
    // Headlines and presence are dropped without an answer; IQ requests get service-unavailable.
    let headline = chat("alice@rookery.test/a", "news").with_attr("type", "headline");
    bob.send(&headline).await.unwrap();
    bob.send(&Element::new("presence", ns::CLIENT).with_attr("to", "alice@rookery.test/a"))
        .await
        .unwrap();
    let ping_alice =
        iq("get", "p1", Element::new("ping", ns::PING)).with_attr("to", "alice@rookery.test/a");
    let reply = bob.iq(&ping_alice).await.unwrap();
    assert_eq!(error_of(&reply).0, "service-unavailable");
    // An IQ response is dropped too.
    let stray = Element::new("iq", ns::CLIENT)
        .with_attr("type", "result")
        .with_attr("id", "stray")
        .with_attr("to", "alice@rookery.test/a");
    bob.send(&stray).await.unwrap();
    nothing_arrived(&mut bob, "no error for a headline, presence or IQ result").await;
    nothing_arrived(&mut alice, "nothing from bob").await;

    // Others still get through.
    carol
        .send(&chat("alice@rookery.test", "from carol"))
        .await
        .unwrap();
    let got = alice.next_element().await.unwrap();
    assert_eq!(got.attr("from"), Some("carol@rookery.test/c"), "{got}");

    // Unblocked: bob's messages and IQs arrive again.
    let reply = request(
        &mut alice,
        "set",
        "u",
        items("unblock", &["bob@rookery.test"]),
    )
    .await;
    assert_eq!(reply.attr("type"), Some("result"));
    bob.send(&chat("alice@rookery.test/a", "again"))
        .await
        .unwrap();
    let got = alice.next_element().await.unwrap();
    assert_eq!(
        got.get_child("body", ns::CLIENT)
            .map(Element::text)
            .as_deref(),
        Some("again")
    );
    bob.send(&ping_alice.clone().with_attr("id", "p2"))
        .await
        .unwrap();
    let got = alice.next_element().await.unwrap();
    assert_eq!((got.name(), got.attr("id")), ("iq", Some("p2")));
    server.stop().await;
}

#[tokio::test]
async fn the_user_cannot_reach_a_blocked_contact() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    block(&mut alice, &["bob@rookery.test"]).await;

    let refused = [
        chat("bob@rookery.test", "hi"),
        chat("bob@rookery.test/b", "hi"),
        Element::new("presence", ns::CLIENT).with_attr("to", "bob@rookery.test/b"),
        iq("get", "q", Element::new("ping", ns::PING)).with_attr("to", "bob@rookery.test/b"),
    ];
    for stanza in refused {
        alice.send(&stanza).await.unwrap();
        let error = alice.next_element().await.unwrap();
        assert_eq!(error.name(), stanza.name());
        assert_eq!(
            error_of(&error),
            ("not-acceptable".into(), "cancel".into()),
            "{stanza}"
        );
        let condition = error.get_child("error", ns::CLIENT).unwrap();
        assert!(condition.has_child("blocked", BLOCKING_ERRORS), "{error}");
    }
    // Answers to a blocked JID are dropped: nobody may answer an IQ response or an error.
    let result = Element::new("iq", ns::CLIENT)
        .with_attr("type", "result")
        .with_attr("id", "r")
        .with_attr("to", "bob@rookery.test/b");
    alice.send(&result).await.unwrap();
    nothing_arrived(&mut alice, "no error for an IQ response").await;
    nothing_arrived(&mut bob, "nothing from alice").await;
    // The user's own account is never blocked.
    let own =
        iq("get", "own", Element::new("ping", ns::PING)).with_attr("to", "alice@rookery.test");
    assert_eq!(alice.iq(&own).await.unwrap().attr("type"), Some("result"));
    server.stop().await;
}

#[tokio::test]
async fn full_jids_and_domains_match_as_the_xep_says() {
    let server = server_with(&["alice", "bob", "carol"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut phone = server.login("bob", PASSWORD, Some("phone")).await;
    let mut laptop = server.login("bob", PASSWORD, Some("laptop")).await;
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;

    // A full JID covers that resource only.
    block(&mut alice, &["bob@rookery.test/phone"]).await;
    phone
        .send(&chat("alice@rookery.test/a", "from the phone"))
        .await
        .unwrap();
    assert_eq!(
        error_of(&phone.next_element().await.unwrap()).0,
        "service-unavailable"
    );
    laptop
        .send(&chat("alice@rookery.test/a", "from the laptop"))
        .await
        .unwrap();
    let got = alice.next_element().await.unwrap();
    assert_eq!(got.attr("from"), Some("bob@rookery.test/laptop"));

    // A domain covers every address at it.
    block(&mut alice, &["rookery.test"]).await;
    carol
        .send(&chat("alice@rookery.test/a", "hi"))
        .await
        .unwrap();
    assert_eq!(
        error_of(&carol.next_element().await.unwrap()).0,
        "service-unavailable"
    );
    alice
        .send(&chat("carol@rookery.test/c", "hi"))
        .await
        .unwrap();
    assert_eq!(
        error_of(&alice.next_element().await.unwrap()).0,
        "not-acceptable"
    );
    nothing_arrived(&mut carol, "nothing from alice").await;
    server.stop().await;
}

#[tokio::test]
async fn blocking_takes_presence_back_and_unblocking_gives_it_again() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut quiet = server.login("alice", PASSWORD, Some("quiet")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;

    // Alice is available (away) and told bob so directly; her other session sent no presence at all.
    let away = Element::new("presence", ns::CLIENT)
        .with_child(Element::new("show", ns::CLIENT).with_text("away"));
    alice.send(&away).await.unwrap();
    alice
        .send(&away.clone().with_attr("to", "bob@rookery.test/b"))
        .await
        .unwrap();
    let got = bob.next_element().await.unwrap();
    assert_eq!(
        (got.name(), got.attr("from")),
        ("presence", Some("alice@rookery.test/a"))
    );

    block(&mut alice, &["bob@rookery.test"]).await;
    let gone = bob.next_element().await.unwrap();
    assert_eq!(gone.name(), "presence", "{gone}");
    assert_eq!(gone.attr("type"), Some("unavailable"));
    assert_eq!(gone.attr("from"), Some("alice@rookery.test/a"));
    nothing_arrived(
        &mut bob,
        "one unavailable presence, from the available session only",
    )
    .await;

    // Now changes of alice's presence do not reach bob, and she cannot send him presence.
    alice
        .send(&Element::new("presence", ns::CLIENT).with_attr("to", "bob@rookery.test/b"))
        .await
        .unwrap();
    assert_eq!(
        error_of(&alice.next_element().await.unwrap()).0,
        "not-acceptable"
    );

    let reply = request(
        &mut alice,
        "set",
        "u",
        items("unblock", &["bob@rookery.test"]),
    )
    .await;
    assert_eq!(reply.attr("type"), Some("result"));
    let back = bob.next_element().await.unwrap();
    assert_eq!(back.name(), "presence", "{back}");
    assert_eq!(back.attr("type"), None);
    assert_eq!(back.attr("from"), Some("alice@rookery.test/a"));
    assert_eq!(
        back.get_child("show", ns::CLIENT)
            .map(Element::text)
            .as_deref(),
        Some("away"),
        "her current presence"
    );
    nothing_arrived(&mut bob, "one presence").await;
    nothing_arrived(&mut quiet, "no pushes: never asked for the list").await;
    server.stop().await;
}

#[tokio::test]
async fn what_the_server_sends_on_the_users_behalf_is_dropped_except_unavailable() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    block(&mut alice, &["bob@rookery.test"]).await;
    // As the presence module broadcasts: routed by the server with alice's session as origin.
    let core = server.server();
    let session = core.sessions.sessions_of("alice").pop().unwrap();
    for (kind, expected) in [(None, false), (Some("unavailable"), true)] {
        let mut presence = Element::new("presence", ns::CLIENT)
            .with_attr("from", "alice@rookery.test/a")
            .with_attr("to", "bob@rookery.test/b");
        if let Some(kind) = kind {
            presence.set_attr("type", kind);
        }
        core.route(
            StanzaKind::Presence,
            presence,
            jid::Jid::new("alice@rookery.test/a").unwrap(),
            Some(jid::Jid::new("bob@rookery.test/b").unwrap()),
            Origin::Client(session.clone()),
        )
        .await;
        if expected {
            let got = bob.next_element().await.unwrap();
            assert_eq!(got.attr("type"), Some("unavailable"), "{got}");
        }
        nothing_arrived(&mut bob, "only unavailable presence").await;
    }
    nothing_arrived(&mut alice, "dropped without an error").await;
    server.stop().await;
}

#[tokio::test]
async fn the_list_outlives_sessions() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    block(&mut alice, &["bob@rookery.test"]).await;
    alice.close().await.unwrap();
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let mut alice = server.login("alice", PASSWORD, Some("again")).await;
    bob.send(&chat("alice@rookery.test/again", "hello"))
        .await
        .unwrap();
    assert_eq!(
        error_of(&bob.next_element().await.unwrap()).0,
        "service-unavailable"
    );
    nothing_arrived(&mut alice, "still blocked").await;
    assert_eq!(blocklist(&mut alice).await, ["bob@rookery.test"]);
    server.stop().await;
}

#[tokio::test]
async fn limits_and_bad_input() {
    let options = TestOptions {
        limits: Some(Box::new(|l| l.max_blocklist_items = 3)),
        ..TestOptions::default()
    };
    let server = server_with(&["alice"], options).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    assert!(blocklist(&mut alice).await.is_empty());
    block(&mut alice, &["a@x.example", "b@x.example"]).await;
    let _push = alice.next_element().await.unwrap();

    let cases = [
        // Two new JIDs would make four.
        (
            items("block", &["c@x.example", "d@x.example"]),
            "policy-violation",
        ),
        (
            items(
                "block",
                &["1@x.example", "2@x.example", "3@x.example", "4@x.example"],
            ),
            "policy-violation",
        ),
        (items("block", &[]), "bad-request"),
        (items("block", &["c@x.example", "a@b@c"]), "jid-malformed"),
        (items("block", &[""]), "jid-malformed"),
        (items("block", &["@x.example"]), "jid-malformed"),
        (
            Element::new("block", BLOCKING).with_child(Element::new("item", BLOCKING)),
            "jid-malformed",
        ),
        (items("unblock", &["a@x.example", "x@"]), "jid-malformed"),
    ];
    for (i, (payload, condition)) in cases.into_iter().enumerate() {
        let id = format!("bad{i}");
        let reply = request(&mut alice, "set", &id, payload).await;
        assert_eq!(error_of(&reply).0, condition, "{reply}");
    }
    nothing_arrived(&mut alice, "no pushes for refused changes").await;
    assert_eq!(blocklist(&mut alice).await, ["a@x.example", "b@x.example"]);
    // Filling the list exactly is fine, and a JID already on it does not count twice.
    block(&mut alice, &["a@x.example", "c@x.example"]).await;
    assert_eq!(blocklist(&mut alice).await.len(), 3);
    server.stop().await;
}

fn request_iq_unblock() -> Element {
    iq("set", "u", items("unblock", &["bob@rookery.test"]))
}

/// Makes `a` and `b` subscribed to each other through the protocol (both available).
async fn mutual(a: (&mut TestClient, &str), b: (&mut TestClient, &str)) {
    let presence = |kind: &str, to: &str| {
        Element::new("presence", ns::CLIENT)
            .with_attr("type", kind)
            .with_attr("to", to)
    };
    let ((a, a_jid), (b, b_jid)) = (a, b);
    a.send(&presence("subscribe", b_jid)).await.unwrap();
    a.sync().await.unwrap();
    b.send(&presence("subscribed", a_jid)).await.unwrap();
    b.send(&presence("subscribe", a_jid)).await.unwrap();
    b.sync().await.unwrap();
    a.send(&presence("subscribed", b_jid)).await.unwrap();
    a.sync().await.unwrap();
    b.sync().await.unwrap();
}

#[tokio::test]
async fn blocking_a_subscribed_contact_stops_presence_both_ways_until_unblocked() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    for client in [&mut alice, &mut bob] {
        client
            .send(&Element::new("presence", ns::CLIENT))
            .await
            .unwrap();
        client.sync().await.unwrap();
    }
    mutual(
        (&mut alice, "alice@rookery.test"),
        (&mut bob, "bob@rookery.test"),
    )
    .await;
    let status = |text: &str| {
        Element::new("presence", ns::CLIENT)
            .with_child(Element::new("status", ns::CLIENT).with_text(text))
    };
    let presences_from = |arrived: &[Element], from: &str| {
        arrived
            .iter()
            .filter(|e| e.name() == "presence" && e.attr("from") == Some(from))
            .cloned()
            .collect::<Vec<_>>()
    };

    block(&mut alice, &["bob@rookery.test"]).await;
    alice.sync().await.unwrap();
    // bob sees alice go, and neither sees the other's updates any more.
    let arrived = bob.sync().await.unwrap();
    let gone = presences_from(&arrived, "alice@rookery.test/a");
    assert_eq!(gone.len(), 1, "{arrived:?}");
    assert_eq!(gone[0].attr("type"), Some("unavailable"));
    bob.send(&status("bob, blocked")).await.unwrap();
    bob.sync().await.unwrap();
    assert!(presences_from(&alice.sync().await.unwrap(), "bob@rookery.test/b").is_empty());
    alice.send(&status("alice, blocking")).await.unwrap();
    alice.sync().await.unwrap();
    assert!(presences_from(&bob.sync().await.unwrap(), "alice@rookery.test/a").is_empty());
    // His messages do not reach her either.
    bob.send(&chat("alice@rookery.test", "hello?"))
        .await
        .unwrap();
    let arrived = bob.sync().await.unwrap();
    assert!(
        arrived.iter().any(|e| e.attr("type") == Some("error")),
        "{arrived:?}"
    );
    assert!(
        !alice
            .sync()
            .await
            .unwrap()
            .iter()
            .any(|e| e.name() == "message"),
        "blocked message delivered"
    );

    // Unblocked: each sees the other's current presence at once, and updates flow both ways again.
    alice.send(&request_iq_unblock()).await.unwrap();
    let bobs = alice
        .next_matching(|e| e.name() == "presence" && e.attr("from") == Some("bob@rookery.test/b"))
        .await
        .unwrap();
    assert_eq!(
        bobs.get_child("status", ns::CLIENT).unwrap().text(),
        "bob, blocked"
    );
    alice.sync().await.unwrap();
    let arrived = bob.sync().await.unwrap();
    let back = presences_from(&arrived, "alice@rookery.test/a");
    assert_eq!(back.len(), 1, "{arrived:?}");
    assert_eq!(
        back[0].get_child("status", ns::CLIENT).unwrap().text(),
        "alice, blocking"
    );
    bob.send(&status("bob, welcome back")).await.unwrap();
    bob.sync().await.unwrap();
    let arrived = alice.sync().await.unwrap();
    assert_eq!(
        presences_from(&arrived, "bob@rookery.test/b").len(),
        1,
        "{arrived:?}"
    );
    bob.send(&chat("alice@rookery.test", "hello again"))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let arrived = alice.sync().await.unwrap();
    assert!(arrived.iter().any(|e| e.name() == "message"), "{arrived:?}");
    server.stop().await;
}
