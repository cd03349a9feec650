//! Rosters (RFC 6121 §2), subscriptions (§3) and presence (§4) against the real server, with raw clients.

use rookery_test_support::{TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const NS_ROSTER: &str = "jabber:iq:roster";

fn jid(user: &str) -> String {
    format!("{user}@rookery.test")
}

async fn server_with(users: &[&str]) -> TestServer {
    let server = TestServer::start().await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    server
}

fn roster_get(id: &str, ver: Option<&str>) -> Element {
    let mut query = Element::new("query", NS_ROSTER);
    if let Some(ver) = ver {
        query.set_attr("ver", ver);
    }
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", id)
        .with_child(query)
}

fn roster_set(id: &str, item: Element) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_child(Element::new("query", NS_ROSTER).with_child(item))
}

fn item(jid: &str, name: Option<&str>, groups: &[&str]) -> Element {
    let mut item = Element::new("item", NS_ROSTER).with_attr("jid", jid);
    if let Some(name) = name {
        item.set_attr("name", name);
    }
    for g in groups {
        item.append_child(Element::new("group", NS_ROSTER).with_text(*g));
    }
    item
}

fn presence(kind: Option<&str>, to: Option<&str>) -> Element {
    let mut p = Element::new("presence", ns::CLIENT);
    if let Some(kind) = kind {
        p.set_attr("type", kind);
    }
    if let Some(to) = to {
        p.set_attr("to", to);
    }
    p
}

fn error_condition(el: &Element) -> Option<String> {
    let error = el.get_child("error", el.ns())?;
    error
        .children()
        .find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// The roster items of a result or push: (jid, subscription, ask).
fn items(iq: &Element) -> Vec<(String, String, Option<String>)> {
    iq.get_child("query", NS_ROSTER)
        .map(|q| {
            q.children()
                .map(|i| {
                    (
                        i.attr("jid").unwrap_or_default().to_owned(),
                        i.attr("subscription").unwrap_or_default().to_owned(),
                        i.attr("ask").map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn fetch_roster(client: &mut TestClient) -> Element {
    let reply = client.iq(&roster_get("r", None)).await.unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    reply
}

/// The subscription alice has to `contact` as her roster says.
async fn subscription_of(
    client: &mut TestClient,
    contact: &str,
) -> Option<(String, Option<String>)> {
    let roster = fetch_roster(client).await;
    items(&roster)
        .into_iter()
        .find(|(j, _, _)| j == contact)
        .map(|(_, s, a)| (s, a))
}

/// Logs in with a resource, asks for the roster and sends initial presence; returns the client and what arrived
/// up to now (its own presence, contacts' presence, pending requests).
async fn online(server: &TestServer, user: &str, resource: &str) -> (TestClient, Vec<Element>) {
    let mut client = server.login(user, PASSWORD, Some(resource)).await;
    fetch_roster(&mut client).await;
    client.send(&presence(None, None)).await.unwrap();
    let arrived = client.sync().await.unwrap();
    (client, arrived)
}

fn presences_from<'a>(arrived: &'a [Element], from_prefix: &str) -> Vec<&'a Element> {
    arrived
        .iter()
        .filter(|e| {
            e.name() == "presence" && e.attr("from").is_some_and(|f| f.starts_with(from_prefix))
        })
        .collect()
}

/// alice and bob end up subscribed both ways, each approving the other's request.
async fn make_mutual(alice: &mut TestClient, bob: &mut TestClient) {
    alice
        .send(&presence(Some("subscribe"), Some(&jid("bob"))))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let request = bob
        .next_matching(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await
        .unwrap();
    assert_eq!(request.attr("from"), Some(jid("alice").as_str()));
    bob.send(&presence(Some("subscribed"), Some(&jid("alice"))))
        .await
        .unwrap();
    bob.send(&presence(Some("subscribe"), Some(&jid("alice"))))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    alice
        .next_matching(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await
        .unwrap();
    alice
        .send(&presence(Some("subscribed"), Some(&jid("bob"))))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
}

#[tokio::test]
async fn roster_versioning_and_pre_approval_are_advertised() {
    let server = server_with(&["alice"]).await;
    let client = server.login("alice", PASSWORD, None).await;
    let features = client.features.clone().unwrap();
    assert!(
        features.has_child("ver", "urn:xmpp:features:rosterver"),
        "{features}"
    );
    assert!(
        features.has_child("sub", "urn:xmpp:features:pre-approval"),
        "{features}"
    );
    server.stop().await;
}

#[tokio::test]
async fn roster_set_get_push_version_and_remove() {
    let server = server_with(&["alice"]).await;
    let mut phone = server.login("alice", PASSWORD, Some("phone")).await;
    let mut laptop = server.login("alice", PASSWORD, Some("laptop")).await;
    let empty = fetch_roster(&mut phone).await;
    let first_ver = empty
        .get_child("query", NS_ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_owned();
    assert!(items(&empty).is_empty());
    fetch_roster(&mut laptop).await;

    phone
        .send(&roster_set(
            "s1",
            item("Bob@Rookery.test", Some("Bob"), &["Friends", "Family"]),
        ))
        .await
        .unwrap();
    let arrived = phone.sync().await.unwrap();
    let reply = arrived
        .iter()
        .find(|e| e.attr("id") == Some("s1"))
        .expect("a reply");
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    let phone_push = arrived
        .iter()
        .find(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .expect("a push to the resource that made the change")
        .clone();
    let laptop_push = laptop
        .next_matching(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .await
        .unwrap();
    // Both resources that asked for the roster get the push, with the normalised JID and a new version.
    for (client, push) in [(&mut phone, phone_push), (&mut laptop, laptop_push)] {
        assert_eq!(items(&push), [(jid("bob"), "none".into(), None)]);
        let query = push.get_child("query", NS_ROSTER).unwrap();
        assert_ne!(query.attr("ver"), Some(first_ver.as_str()));
        let groups: Vec<String> = query
            .children()
            .next()
            .unwrap()
            .children()
            .map(Element::text)
            .collect();
        assert_eq!(groups, ["Family", "Friends"]);
        // The client acknowledges the push, as RFC 6121 §2.1.6 asks.
        let ack = Element::new("iq", ns::CLIENT)
            .with_attr("type", "result")
            .with_attr("id", push.attr("id").unwrap());
        client.send(&ack).await.unwrap();
    }
    let full = fetch_roster(&mut phone).await;
    let ver = full
        .get_child("query", NS_ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_owned();
    assert_eq!(items(&full), [(jid("bob"), "none".into(), None)]);
    // Asking with the current version: an empty result, nothing to download again.
    let same = phone.iq(&roster_get("v", Some(&ver))).await.unwrap();
    assert_eq!(same.attr("type"), Some("result"));
    assert!(same.get_child("query", NS_ROSTER).is_none(), "{same}");
    // An old version gets the whole roster.
    let old = phone.iq(&roster_get("v2", Some(&first_ver))).await.unwrap();
    assert_eq!(items(&old).len(), 1);

    let removed = phone
        .iq(&roster_set(
            "rm",
            item(&jid("bob"), None, &[]).with_attr("subscription", "remove"),
        ))
        .await
        .unwrap();
    assert_eq!(removed.attr("type"), Some("result"), "{removed}");
    let push = laptop
        .next_matching(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .await
        .unwrap();
    assert_eq!(items(&push), [(jid("bob"), "remove".into(), None)]);
    assert!(items(&fetch_roster(&mut phone).await).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn bad_roster_sets_get_the_rfc_errors_and_change_nothing() {
    let server = server_with(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    let two_items = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "two")
        .with_child(
            Element::new("query", NS_ROSTER)
                .with_child(item("a@rookery.test", None, &[]))
                .with_child(item("b@rookery.test", None, &[])),
        );
    let cases: Vec<(Element, &str)> = vec![
        (two_items, "bad-request"),
        (
            roster_set("dup", item("c@rookery.test", None, &["G", "G"])),
            "bad-request",
        ),
        (
            roster_set("empty", item("c@rookery.test", None, &[""])),
            "not-acceptable",
        ),
        (
            roster_set("long", item("c@rookery.test", Some(&"n".repeat(2000)), &[])),
            "not-acceptable",
        ),
        (
            roster_set("self", item(&jid("alice"), None, &[])),
            "not-allowed",
        ),
        (
            roster_set("badjid", item("not a jid@@", None, &[])),
            "jid-malformed",
        ),
        (
            roster_set(
                "gone",
                item("nobody@rookery.test", None, &[]).with_attr("subscription", "remove"),
            ),
            "item-not-found",
        ),
        // Someone else's roster.
        (
            roster_set("other", item("c@rookery.test", None, &[])).with_attr("to", jid("bob")),
            "forbidden",
        ),
    ];
    for (request, condition) in cases {
        let reply = alice.iq(&request).await.unwrap();
        assert_eq!(reply.attr("type"), Some("error"), "{request} -> {reply}");
        assert_eq!(
            error_condition(&reply).as_deref(),
            Some(condition),
            "{request} -> {reply}"
        );
    }
    assert!(items(&fetch_roster(&mut alice).await).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_roster_size_is_bounded() {
    let server = TestServer::start_with(TestOptions {
        limits: Some(Box::new(|l| l.roster_max_items = 2)),
        ..TestOptions::default()
    })
    .await;
    server.add_user("alice", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    for n in 0..2 {
        let reply = alice
            .iq(&roster_set("ok", item(&format!("c{n}@x.test"), None, &[])))
            .await
            .unwrap();
        assert_eq!(reply.attr("type"), Some("result"));
    }
    let full = alice
        .iq(&roster_set("full", item("c3@x.test", None, &[])))
        .await
        .unwrap();
    assert_eq!(
        error_condition(&full).as_deref(),
        Some("resource-constraint"),
        "{full}"
    );
    // Existing items can still be renamed.
    let rename = alice
        .iq(&roster_set("ok", item("c0@x.test", Some("Zero"), &[])))
        .await
        .unwrap();
    assert_eq!(rename.attr("type"), Some("result"));
    server.stop().await;
}

#[tokio::test]
async fn mutual_subscription_ends_in_both_and_presence_flows_both_ways() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, arrived) = online(&server, "alice", "phone").await;
    // Her own presence comes back to her (RFC 6121 §4.2.2).
    assert_eq!(
        presences_from(&arrived, &jid("alice")).len(),
        1,
        "{arrived:?}"
    );
    let (mut bob, _) = online(&server, "bob", "laptop").await;

    alice
        .send(&presence(Some("subscribe"), Some(&jid("bob"))))
        .await
        .unwrap();
    let arrived = alice.sync().await.unwrap();
    // Pending-out is pushed: subscription none, ask subscribe.
    let push = arrived
        .iter()
        .find(|e| e.name() == "iq")
        .expect("roster push");
    assert_eq!(
        items(push),
        [(jid("bob"), "none".into(), Some("subscribe".into()))]
    );

    let request = bob
        .next_matching(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await
        .unwrap();
    assert_eq!(
        request.attr("from"),
        Some(jid("alice").as_str()),
        "from the bare JID"
    );
    bob.send(&presence(Some("subscribed"), Some(&jid("alice"))))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    // alice: subscription to, and bob's presence arrives right after the approval.
    let arrived = alice.sync().await.unwrap();
    assert!(
        arrived
            .iter()
            .any(|e| e.name() == "presence" && e.attr("type") == Some("subscribed")),
        "{arrived:?}"
    );
    assert!(
        arrived.iter().any(|e| e.name() == "presence"
            && e.attr("type").is_none()
            && e.attr("from") == Some(&format!("{}/laptop", jid("bob")))),
        "bob's presence after approval: {arrived:?}"
    );
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("to".into(), None))
    );
    assert_eq!(
        subscription_of(&mut bob, &jid("alice")).await,
        Some(("from".into(), None))
    );

    bob.send(&presence(Some("subscribe"), Some(&jid("alice"))))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    alice
        .next_matching(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
        .await
        .unwrap();
    alice
        .send(&presence(Some("subscribed"), Some(&jid("bob"))))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("both".into(), None))
    );
    assert_eq!(
        subscription_of(&mut bob, &jid("alice")).await,
        Some(("both".into(), None))
    );

    // A presence update reaches the contact.
    let away = presence(None, None).with_child(Element::new("show", ns::CLIENT).with_text("away"));
    bob.send(&away).await.unwrap();
    bob.sync().await.unwrap();
    let arrived = alice.sync().await.unwrap();
    let update = presences_from(&arrived, &jid("bob"));
    assert_eq!(update.len(), 1, "{arrived:?}");
    assert_eq!(
        update[0].get_child("show", ns::CLIENT).unwrap().text(),
        "away"
    );

    // A new resource of bob's learns alice's presence through its probes.
    let (bob2, arrived) = online(&server, "bob", "tablet").await;
    assert_eq!(
        presences_from(&arrived, &format!("{}/phone", jid("alice"))).len(),
        1,
        "{arrived:?}"
    );
    // ... and sees its sibling.
    assert_eq!(
        presences_from(&arrived, &format!("{}/laptop", jid("bob"))).len(),
        1,
        "{arrived:?}"
    );
    drop(bob2);

    // The connection drops without unavailable presence: the contact sees it go.
    drop(bob);
    let gone = alice
        .next_matching(|e| {
            e.name() == "presence"
                && e.attr("type") == Some("unavailable")
                && e.attr("from") == Some(&format!("{}/laptop", jid("bob")))
        })
        .await
        .unwrap();
    assert_eq!(
        gone.attr("to"),
        Some(format!("{}/phone", jid("alice")).as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_request_to_an_offline_contact_waits_for_its_next_login() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let request = presence(Some("subscribe"), Some(&jid("bob")))
        .with_child(Element::new("status", ns::CLIENT).with_text("it's Alice"));
    alice.send(&request).await.unwrap();
    alice.sync().await.unwrap();
    // bob logs in twice: each time the unanswered request is shown again, with its status.
    for resource in ["one", "two"] {
        let (bob, arrived) = online(&server, "bob", resource).await;
        let requests: Vec<_> = arrived
            .iter()
            .filter(|e| e.name() == "presence" && e.attr("type") == Some("subscribe"))
            .collect();
        assert_eq!(requests.len(), 1, "{arrived:?}");
        assert_eq!(requests[0].attr("from"), Some(jid("alice").as_str()));
        assert_eq!(
            requests[0].get_child("status", ns::CLIENT).unwrap().text(),
            "it's Alice"
        );
        bob.close().await.unwrap();
    }
    // Approving it while alice is online: she is subscribed.
    let (mut bob, _) = online(&server, "bob", "three").await;
    bob.send(&presence(Some("subscribed"), Some(&jid("alice"))))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("to".into(), None))
    );
    // Answered: not shown again.
    let (_bob4, arrived) = online(&server, "bob", "four").await;
    assert!(
        !arrived.iter().any(|e| e.attr("type") == Some("subscribe")),
        "{arrived:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_pre_approved_request_is_approved_without_asking() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    // alice approves bob before he asks (RFC 6121 §3.4).
    alice
        .send(&presence(Some("subscribed"), Some(&jid("bob"))))
        .await
        .unwrap();
    let arrived = alice.sync().await.unwrap();
    let push = arrived
        .iter()
        .find(|e| e.name() == "iq")
        .expect("roster push");
    let approved = push
        .get_child("query", NS_ROSTER)
        .unwrap()
        .children()
        .next()
        .unwrap();
    assert_eq!(approved.attr("approved"), Some("true"), "{push}");
    assert!(
        bob.sync().await.unwrap().is_empty(),
        "a pre-approval is not sent"
    );

    bob.send(&presence(Some("subscribe"), Some(&jid("alice"))))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let arrived = alice.sync().await.unwrap();
    assert!(
        !arrived.iter().any(|e| e.attr("type") == Some("subscribe")),
        "not asked: {arrived:?}"
    );
    assert_eq!(
        subscription_of(&mut bob, &jid("alice")).await,
        Some(("to".into(), None))
    );
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("from".into(), None))
    );
    server.stop().await;
}

#[tokio::test]
async fn unsubscribing_and_removing_end_the_subscription_on_both_sides() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    make_mutual(&mut alice, &mut bob).await;
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("both".into(), None))
    );

    // alice stops seeing bob's presence.
    alice
        .send(&presence(Some("unsubscribe"), Some(&jid("bob"))))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("from".into(), None))
    );
    assert_eq!(
        subscription_of(&mut bob, &jid("alice")).await,
        Some(("to".into(), None))
    );

    // bob removes alice: his subscription to her ends, and she is told.
    let removed = bob
        .iq(&roster_set(
            "rm",
            item(&jid("alice"), None, &[]).with_attr("subscription", "remove"),
        ))
        .await
        .unwrap();
    assert_eq!(removed.attr("type"), Some("result"));
    bob.sync().await.unwrap();
    let arrived = alice.sync().await.unwrap();
    assert!(
        arrived
            .iter()
            .any(|e| e.name() == "presence" && e.attr("type") == Some("unsubscribe")),
        "{arrived:?}"
    );
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("none".into(), None))
    );
    server.stop().await;
}

#[tokio::test]
async fn subscription_stanzas_to_oneself_or_without_a_contact_are_refused() {
    let server = server_with(&["alice"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    alice
        .send(&presence(Some("subscribe"), Some(&jid("alice"))))
        .await
        .unwrap();
    let arrived = alice.sync().await.unwrap();
    let error = arrived
        .iter()
        .find(|e| e.attr("type") == Some("error"))
        .expect("an error");
    assert_eq!(
        error_condition(error).as_deref(),
        Some("bad-request"),
        "{error}"
    );
    alice
        .send(&presence(Some("subscribed"), None))
        .await
        .unwrap();
    let arrived = alice.sync().await.unwrap();
    assert!(
        arrived.iter().any(|e| e.attr("type") == Some("error")),
        "{arrived:?}"
    );
    assert!(items(&fetch_roster(&mut alice).await).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_subscription_request_with_a_resource_is_for_the_bare_jid() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    alice
        .send(&presence(
            Some("subscribe"),
            Some(&format!("{}/laptop", jid("bob"))),
        ))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        subscription_of(&mut alice, &jid("bob")).await,
        Some(("none".into(), Some("subscribe".into())))
    );
    let request = bob
        .next_matching(|e| e.attr("type") == Some("subscribe"))
        .await
        .unwrap();
    assert_eq!(request.attr("from"), Some(jid("alice").as_str()));
    server.stop().await;
}

#[tokio::test]
async fn a_request_to_a_missing_account_is_declined() {
    let server = server_with(&["alice"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    alice
        .send(&presence(Some("subscribe"), Some(&jid("nobody"))))
        .await
        .unwrap();
    let arrived = alice.sync().await.unwrap();
    assert!(
        arrived
            .iter()
            .any(|e| e.attr("type") == Some("unsubscribed")
                && e.attr("from") == Some(jid("nobody").as_str())),
        "{arrived:?}"
    );
    assert_eq!(
        subscription_of(&mut alice, &jid("nobody")).await,
        Some(("none".into(), None))
    );
    server.stop().await;
}

#[tokio::test]
async fn directed_presence_ends_with_unavailable_at_logout() {
    let server = server_with(&["alice", "bob"]).await;
    let (alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    let mut alice = alice;
    // No subscription: directed presence still arrives.
    alice
        .send(&presence(None, Some(&format!("{}/laptop", jid("bob")))))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let arrived = bob.sync().await.unwrap();
    assert_eq!(
        presences_from(&arrived, &jid("alice")).len(),
        1,
        "{arrived:?}"
    );
    // Logging out without a word: bob gets unavailable from her.
    drop(alice);
    let gone = bob
        .next_matching(|e| e.name() == "presence" && e.attr("type") == Some("unavailable"))
        .await
        .unwrap();
    assert_eq!(
        gone.attr("from"),
        Some(format!("{}/phone", jid("alice")).as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn without_a_subscription_no_presence_is_shared() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    alice.send(&presence(None, None)).await.unwrap();
    alice.sync().await.unwrap();
    assert!(presences_from(&bob.sync().await.unwrap(), &jid("alice")).is_empty());
    // A probe by hand is answered with unsubscribed, not with her presence.
    bob.send(&presence(Some("probe"), Some(&jid("alice"))))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let arrived = bob.sync().await.unwrap();
    assert!(
        presences_from(&arrived, &format!("{}/", jid("alice"))).is_empty(),
        "{arrived:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_roster_push_from_someone_else_never_reaches_the_client() {
    let server = server_with(&["alice", "mallory"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut mallory, _) = online(&server, "mallory", "x").await;
    let spoof = roster_set(
        "evil",
        item("mallory@rookery.test", Some("Trust me"), &["Family"]),
    )
    .with_attr("to", format!("{}/phone", jid("alice")));
    mallory.send(&spoof).await.unwrap();
    let arrived = mallory.sync().await.unwrap();
    let error = arrived
        .iter()
        .find(|e| e.attr("id") == Some("evil"))
        .expect("an answer");
    assert_eq!(
        error_condition(error).as_deref(),
        Some("forbidden"),
        "{error}"
    );
    let arrived = alice.sync().await.unwrap();
    assert!(!arrived.iter().any(|e| e.name() == "iq"), "{arrived:?}");
    server.stop().await;
}

#[tokio::test]
async fn removing_a_contact_that_sees_you_shows_it_you_went_away() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    make_mutual(&mut alice, &mut bob).await;
    let removed = alice
        .iq(&roster_set(
            "rm",
            item(&jid("bob"), None, &[]).with_attr("subscription", "remove"),
        ))
        .await
        .unwrap();
    assert_eq!(removed.attr("type"), Some("result"));
    alice.sync().await.unwrap();
    let arrived = bob.sync().await.unwrap();
    assert!(
        arrived.iter().any(|e| e.attr("type") == Some("unavailable")
            && e.attr("from") == Some(&format!("{}/phone", jid("alice")))),
        "{arrived:?}"
    );
    assert_eq!(
        subscription_of(&mut bob, &jid("alice")).await,
        Some(("none".into(), None))
    );
    server.stop().await;
}

#[tokio::test]
async fn asking_again_while_a_request_waits_is_not_shown_again() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    for _ in 0..3 {
        alice
            .send(&presence(Some("subscribe"), Some(&jid("bob"))))
            .await
            .unwrap();
        alice.sync().await.unwrap();
    }
    let arrived = bob.sync().await.unwrap();
    let requests = arrived
        .iter()
        .filter(|e| e.attr("type") == Some("subscribe"))
        .count();
    assert_eq!(requests, 1, "{arrived:?}");
    server.stop().await;
}

#[tokio::test]
async fn large_requests_waiting_at_login_neither_close_the_session_nor_are_kept_whole() {
    let server = server_with(&["bob", "a0", "a1", "a2", "a3", "a4", "a5"]).await;
    for n in 0..6 {
        let user = format!("a{n}");
        let (mut client, _) = online(&server, &user, "x").await;
        // A status of 200 KiB: six of them are more than a session's queue takes at once.
        let request = presence(Some("subscribe"), Some(&jid("bob")))
            .with_child(Element::new("status", ns::CLIENT).with_text("s".repeat(200 * 1024)))
            .with_child(
                Element::new("nick", "http://jabber.org/protocol/nick").with_text(user.as_str()),
            );
        client.send(&request).await.unwrap();
        client.sync().await.unwrap();
    }
    for _ in 0..2 {
        let (mut bob, arrived) = online(&server, "bob", "laptop").await;
        let requests: Vec<_> = arrived
            .iter()
            .filter(|e| e.attr("type") == Some("subscribe"))
            .collect();
        assert_eq!(requests.len(), 6, "every request shown");
        for request in requests {
            // The small nickname is kept, the huge status is not.
            assert!(
                request
                    .get_child("nick", "http://jabber.org/protocol/nick")
                    .is_some(),
                "{request}"
            );
            assert!(request.get_child("status", ns::CLIENT).is_none());
        }
        // Still connected.
        assert_eq!(
            bob.ping_server().await.unwrap().attr("type"),
            Some("result")
        );
        bob.close().await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn a_new_resource_s_probes_are_answered_to_it_alone() {
    let server = server_with(&["alice", "bob"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    let (mut bob, _) = online(&server, "bob", "laptop").await;
    make_mutual(&mut alice, &mut bob).await;
    let (_tablet, arrived) = online(&server, "alice", "tablet").await;
    assert_eq!(
        presences_from(&arrived, &format!("{}/laptop", jid("bob"))).len(),
        1,
        "{arrived:?}"
    );
    bob.sync().await.unwrap();
    // The phone already knew bob's presence: it gets its sibling's, not bob's again.
    let arrived = alice.sync().await.unwrap();
    assert!(
        presences_from(&arrived, &jid("bob")).is_empty(),
        "{arrived:?}"
    );
    assert_eq!(
        presences_from(&arrived, &format!("{}/tablet", jid("alice"))).len(),
        1,
        "{arrived:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_subscription_to_the_server_itself_is_approved() {
    let server = server_with(&["alice"]).await;
    let (mut alice, _) = online(&server, "alice", "phone").await;
    alice
        .send(&presence(Some("subscribe"), Some("rookery.test")))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        subscription_of(&mut alice, "rookery.test").await,
        Some(("to".into(), None))
    );
    // At the next login the server's probe answer says it is there.
    let (_again, arrived) = online(&server, "alice", "tablet").await;
    assert_eq!(
        presences_from(&arrived, "rookery.test").len(),
        1,
        "{arrived:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn entity_capabilities_are_kept_per_session() {
    let server = server_with(&["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("phone")).await;
    let caps = Element::new("c", "http://jabber.org/protocol/caps")
        .with_attr("hash", "sha-1")
        .with_attr("node", "https://example.org/client")
        .with_attr("ver", "QgayPKawpkPSDYmwT/WM94uAlu0=");
    alice
        .send(&presence(None, None).with_child(caps))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let full = jid::FullJid::new(&format!("{}/phone", jid("alice"))).unwrap();
    let session = server.server().sessions.get(&full).expect("bound");
    let kept = session.state().caps.clone().expect("caps kept");
    assert_eq!(kept.node, "https://example.org/client");
    assert_eq!(kept.ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
    assert_eq!(kept.hash, "sha-1");
    // Unavailable presence forgets them.
    alice
        .send(&presence(Some("unavailable"), None))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert!(session.state().caps.is_none());
    server.stop().await;
}
