//! PEP (XEP-0163 over XEP-0060) against the real server on 127.0.0.1: publishing with publish-options and
//! preconditions, node configuration, the access models, retrieval, retraction, purge and deletion, the limits,
//! notifications filtered by entity capabilities (with the server's own disco#info query answered by the test
//! client), last items on presence and on subscription, and the payloads the apps publish (OMEMO, avatars, nick,
//! MDS).

use std::time::Duration;

use jid::FullJid;
use rookery_modules::pep::PepState;
use rookery_store::{RosterItem, Subscription};
use rookery_test_support::{TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
const DATA: &str = "jabber:x:data";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const CAPS: &str = "http://jabber.org/protocol/caps";

fn jid(user: &str) -> String {
    format!("{user}@rookery.test")
}

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

fn form(form_type: &str, fields: &[(&str, &str)]) -> Element {
    let mut x = Element::new("x", DATA)
        .with_attr("type", "submit")
        .with_child(
            Element::new("field", DATA)
                .with_attr("var", "FORM_TYPE")
                .with_attr("type", "hidden")
                .with_child(Element::new("value", DATA).with_text(form_type)),
        );
    for (var, value) in fields {
        x.append_child(
            Element::new("field", DATA)
                .with_attr("var", *var)
                .with_child(Element::new("value", DATA).with_text(*value)),
        );
    }
    x
}

fn publish(node: &str, id: Option<&str>, payload: Element, options: &[(&str, &str)]) -> Element {
    let mut item = Element::new("item", PUBSUB).with_child(payload);
    if let Some(id) = id {
        item.set_attr("id", id);
    }
    let mut pubsub = Element::new("pubsub", PUBSUB).with_child(
        Element::new("publish", PUBSUB)
            .with_attr("node", node)
            .with_child(item),
    );
    if !options.is_empty() {
        pubsub.append_child(Element::new("publish-options", PUBSUB).with_child(form(
            "http://jabber.org/protocol/pubsub#publish-options",
            options,
        )));
    }
    pubsub
}

fn items_request(node: &str, max: Option<&str>, ids: &[&str]) -> Element {
    let mut items = Element::new("items", PUBSUB).with_attr("node", node);
    if let Some(max) = max {
        items.set_attr("max_items", max);
    }
    for id in ids {
        items.append_child(Element::new("item", PUBSUB).with_attr("id", *id));
    }
    Element::new("pubsub", PUBSUB).with_child(items)
}

fn owner_request(action: &str, node: &str, child: Option<Element>) -> Element {
    let mut el = Element::new(action, OWNER).with_attr("node", node);
    if let Some(child) = child {
        el.append_child(child);
    }
    Element::new("pubsub", OWNER).with_child(el)
}

fn payload(ns: &'static str, name: &str, text: &str) -> Element {
    Element::new(name, ns).with_text(text)
}

/// The stanza condition and the pubsub#errors condition of an error reply.
fn conditions(reply: &Element) -> (String, Option<String>) {
    assert_eq!(reply.attr("type"), Some("error"), "not an error: {reply}");
    let error = reply.get_child("error", ns::CLIENT).expect("error element");
    let condition = error
        .children()
        .find(|c| c.ns() == STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .expect("a condition");
    let specific = error
        .children()
        .find(|c| c.ns() == ERRORS)
        .map(|c| c.name().to_owned());
    (condition, specific)
}

fn assert_result(reply: &Element) {
    assert_eq!(reply.attr("type"), Some("result"), "not a result: {reply}");
}

/// Item ids and payload texts of an items result or event.
fn items_of(container: &Element, ns: &str) -> Vec<(String, String)> {
    container
        .children()
        .filter(|c| c.is("item", ns))
        .map(|c| {
            (
                c.attr("id").unwrap_or("").to_owned(),
                c.first_child().map(Element::text).unwrap_or_default(),
            )
        })
        .collect()
}

async fn fetch(client: &mut TestClient, owner: &str, node: &str, id: &str) -> Element {
    client
        .iq(&iq(
            "get",
            id,
            Some(&jid(owner)),
            items_request(node, None, &[]),
        ))
        .await
        .unwrap()
}

fn fetched(reply: &Element) -> Vec<(String, String)> {
    assert_result(reply);
    let items = reply
        .get_child("pubsub", PUBSUB)
        .and_then(|p| p.get_child("items", PUBSUB))
        .unwrap_or_else(|| panic!("no items in {reply}"));
    items_of(items, PUBSUB)
}

/// Users, with the given pairs subscribed to each other's presence both ways (seeded in the database).
async fn server_with(users: &[&str], mutual: &[(&str, &str, &[&str])]) -> TestServer {
    server_with_options(users, mutual, TestOptions::default()).await
}

async fn server_with_options(
    users: &[&str],
    mutual: &[(&str, &str, &[&str])],
    options: TestOptions,
) -> TestServer {
    let server = TestServer::start_with(options).await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    for (a, b, groups) in mutual {
        for (owner, contact) in [(a, b), (b, a)] {
            let mut item = RosterItem::new(jid(contact));
            item.subscription = Subscription::Both;
            item.groups = groups.iter().map(|g| (*g).to_owned()).collect();
            server
                .server()
                .store
                .roster()
                .put(owner, &item, 100)
                .await
                .unwrap();
        }
    }
    server
}

/// Sends available presence with entity capabilities and answers the server's disco#info query with `+notify`
/// features for `nodes`; waits until the server has learnt them.
async fn online_with_caps(
    server: &TestServer,
    client: &mut TestClient,
    user: &str,
    resource: &str,
    nodes: &[&str],
) {
    let ver = format!("unverified-{user}-{resource}");
    let presence = Element::new("presence", ns::CLIENT).with_child(
        Element::new("c", CAPS)
            .with_attr("hash", "sha-1")
            .with_attr("node", "https://rookery.test/tests")
            .with_attr("ver", ver.as_str()),
    );
    client.send(&presence).await.unwrap();
    let query = client
        .next_matching(|e| {
            e.name() == "iq"
                && e.attr("type") == Some("get")
                && e.has_child("query", ns::DISCO_INFO)
        })
        .await
        .unwrap();
    assert_eq!(query.attr("from"), Some("rookery.test"));
    assert_eq!(
        query
            .get_child("query", ns::DISCO_INFO)
            .unwrap()
            .attr("node"),
        Some(format!("https://rookery.test/tests#{ver}").as_str())
    );
    let mut info = Element::new("query", ns::DISCO_INFO)
        .with_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "client")
                .with_attr("type", "phone"),
        )
        .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", ns::DISCO_INFO));
    for node in nodes {
        info.append_child(
            Element::new("feature", ns::DISCO_INFO).with_attr("var", format!("{node}+notify")),
        );
    }
    let reply = Element::new("iq", ns::CLIENT)
        .with_attr("type", "result")
        .with_attr("id", query.attr("id").unwrap())
        .with_attr("to", "rookery.test")
        .with_child(info);
    client.send(&reply).await.unwrap();
    let full: FullJid = FullJid::new(&format!("{}/{resource}", jid(user))).unwrap();
    let state = server.server().extensions.get::<PepState>().unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let session = server.server().sessions.get(&full).expect("bound");
            if state.caps.session(session.id).is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server learnt the capabilities");
}

fn events(arrived: &[Element], node: &str) -> Vec<Element> {
    arrived
        .iter()
        .filter_map(|m| m.get_child("event", EVENT))
        .filter_map(|e| e.children().next())
        .filter(|c| c.attr("node") == Some(node))
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_account_advertises_pep_and_the_features_the_apps_check() {
    let server = server_with(&["alice"], &[]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let reply = alice
        .iq(&iq(
            "get",
            "d1",
            None,
            Element::new("query", ns::DISCO_INFO),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    let query = reply.get_child("query", ns::DISCO_INFO).unwrap();
    assert!(query.children().any(|c| c.name() == "identity"
        && c.attr("category") == Some("pubsub")
        && c.attr("type") == Some("pep")));
    let features: Vec<&str> = query
        .children()
        .filter(|c| c.name() == "feature")
        .filter_map(|c| c.attr("var"))
        .collect();
    for wanted in [
        PUBSUB,
        "http://jabber.org/protocol/pubsub#publish-options",
        "http://jabber.org/protocol/pubsub#config-node-max",
        "http://jabber.org/protocol/pubsub#persistent-items",
        "http://jabber.org/protocol/pubsub#access-whitelist",
        "http://jabber.org/protocol/pubsub#auto-create",
    ] {
        assert!(features.contains(&wanted), "{wanted} missing: {features:?}");
    }
}

#[tokio::test]
async fn publish_creates_the_node_and_max_items_keeps_the_newest() {
    let server = server_with(&["alice"], &[]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    // Default max_items is 1: a second item replaces the first.
    for (n, text) in ["one", "two"].iter().enumerate() {
        let reply = alice
            .iq(&iq(
                "set",
                &format!("p{n}"),
                None,
                publish(
                    "urn:example:n",
                    Some(text),
                    payload("urn:example", "x", text),
                    &[],
                ),
            ))
            .await
            .unwrap();
        assert_result(&reply);
        let published = reply
            .get_child("pubsub", PUBSUB)
            .unwrap()
            .get_child("publish", PUBSUB)
            .unwrap();
        assert_eq!(
            published.get_child("item", PUBSUB).unwrap().attr("id"),
            Some(*text)
        );
    }
    let reply = fetch(&mut alice, "alice", "urn:example:n", "f1").await;
    assert_eq!(fetched(&reply), vec![("two".to_owned(), "two".to_owned())]);
    // With max_items=max, up to the server's 256 are kept; without an id, the server makes one.
    for n in 0..3 {
        let reply = alice
            .iq(&iq(
                "set",
                &format!("m{n}"),
                None,
                publish(
                    "urn:example:many",
                    None,
                    payload("urn:example", "x", &n.to_string()),
                    &[("pubsub#max_items", "max")],
                ),
            ))
            .await
            .unwrap();
        assert_result(&reply);
    }
    let all = fetched(&fetch(&mut alice, "alice", "urn:example:many", "f2").await);
    assert_eq!(
        all.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    assert!(all.iter().all(|(id, _)| !id.is_empty()));
    // max_items on retrieval gives the newest; ids pick items.
    let reply = alice
        .iq(&iq(
            "get",
            "f3",
            None,
            items_request("urn:example:many", Some("2"), &[]),
        ))
        .await
        .unwrap();
    assert_eq!(
        fetched(&reply)
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>(),
        ["1", "2"]
    );
    let reply = alice
        .iq(&iq(
            "get",
            "f4",
            None,
            items_request("urn:example:many", None, &[all[0].0.as_str(), "nope"]),
        ))
        .await
        .unwrap();
    assert_eq!(fetched(&reply), vec![all[0].clone()]);
    // The node's configuration says what publish-options set.
    let reply = alice
        .iq(&iq(
            "get",
            "c1",
            None,
            owner_request("configure", "urn:example:many", None),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    let x = reply
        .get_child("pubsub", OWNER)
        .unwrap()
        .get_child("configure", OWNER)
        .unwrap()
        .get_child("x", DATA)
        .unwrap();
    let max = x
        .children()
        .find(|f| f.attr("var") == Some("pubsub#max_items"))
        .unwrap();
    assert_eq!(max.get_child("value", DATA).unwrap().text(), "256");
    // Unknown nodes: item-not-found.
    let reply = fetch(&mut alice, "alice", "urn:example:none", "f5").await;
    assert_eq!(conditions(&reply).0, "item-not-found");
}

#[tokio::test]
async fn preconditions_that_differ_refuse_the_publish_and_change_nothing() {
    let server = server_with(&["alice"], &[]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let open = [
        ("pubsub#access_model", "open"),
        ("pubsub#persist_items", "true"),
    ];
    let reply = alice
        .iq(&iq(
            "set",
            "p1",
            None,
            publish(
                "urn:example:n",
                Some("1"),
                payload("urn:example", "x", "first"),
                &open,
            ),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    // The same preconditions again: met.
    let reply = alice
        .iq(&iq(
            "set",
            "p2",
            None,
            publish(
                "urn:example:n",
                Some("1"),
                payload("urn:example", "x", "second"),
                &open,
            ),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    // Another access model: conflict + precondition-not-met, and the item stays as it was.
    let reply = alice
        .iq(&iq(
            "set",
            "p3",
            None,
            publish(
                "urn:example:n",
                Some("1"),
                payload("urn:example", "x", "third"),
                &[("pubsub#access_model", "whitelist")],
            ),
        ))
        .await
        .unwrap();
    assert_eq!(
        conditions(&reply),
        (
            "conflict".to_owned(),
            Some("precondition-not-met".to_owned())
        )
    );
    let items = fetched(&fetch(&mut alice, "alice", "urn:example:n", "f1").await);
    assert_eq!(items, vec![("1".to_owned(), "second".to_owned())]);
    // Options the server cannot take: not-acceptable, and no node is created.
    for (n, bad) in [
        ("pubsub#max_items", "257"),
        ("pubsub#access_model", "authorize"),
        ("pubsub#persist_items", "maybe"),
    ]
    .iter()
    .enumerate()
    {
        let reply = alice
            .iq(&iq(
                "set",
                &format!("b{n}"),
                None,
                publish(
                    "urn:example:bad",
                    None,
                    payload("urn:example", "x", "x"),
                    &[*bad],
                ),
            ))
            .await
            .unwrap();
        assert_eq!(conditions(&reply).0, "not-acceptable", "{bad:?}");
    }
    assert_eq!(
        conditions(&fetch(&mut alice, "alice", "urn:example:bad", "f2").await).0,
        "item-not-found"
    );
}

#[tokio::test]
async fn bad_publishes_get_the_xep_errors() {
    let server = server_with_options(
        &["alice", "bob"],
        &[],
        TestOptions {
            limits: Some(Box::new(|l| {
                l.pep_item_max_bytes = 1000;
                l.pep_nodes_per_account = 2;
            })),
            ..TestOptions::default()
        },
    )
    .await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    // Someone else's node: forbidden, whatever the action.
    let reply = bob
        .iq(&iq(
            "set",
            "x1",
            Some(&jid("alice")),
            publish(
                "urn:example:n",
                None,
                payload("urn:example", "x", "mine now"),
                &[],
            ),
        ))
        .await
        .unwrap();
    assert_eq!(conditions(&reply).0, "forbidden");
    let reply = bob
        .iq(&iq(
            "set",
            "x2",
            Some(&jid("alice")),
            owner_request("delete", "urn:example:n", None),
        ))
        .await
        .unwrap();
    assert_eq!(conditions(&reply).0, "forbidden");
    // Too big: not-acceptable + payload-too-big.
    let reply = alice
        .iq(&iq(
            "set",
            "x3",
            None,
            publish(
                "urn:example:n",
                None,
                payload("urn:example", "x", &"a".repeat(2000)),
                &[],
            ),
        ))
        .await
        .unwrap();
    assert_eq!(
        conditions(&reply),
        (
            "not-acceptable".to_owned(),
            Some("payload-too-big".to_owned())
        )
    );
    // No node, no item, no payload, two payloads.
    let no_node = Element::new("pubsub", PUBSUB).with_child(Element::new("publish", PUBSUB));
    assert_eq!(
        conditions(&alice.iq(&iq("set", "x4", None, no_node)).await.unwrap()),
        ("bad-request".to_owned(), Some("nodeid-required".to_owned()))
    );
    let no_item = Element::new("pubsub", PUBSUB)
        .with_child(Element::new("publish", PUBSUB).with_attr("node", "n"));
    assert_eq!(
        conditions(&alice.iq(&iq("set", "x5", None, no_item)).await.unwrap()),
        ("bad-request".to_owned(), Some("item-required".to_owned()))
    );
    let empty = Element::new("pubsub", PUBSUB).with_child(
        Element::new("publish", PUBSUB)
            .with_attr("node", "n")
            .with_child(Element::new("item", PUBSUB)),
    );
    assert_eq!(
        conditions(&alice.iq(&iq("set", "x6", None, empty)).await.unwrap()),
        (
            "bad-request".to_owned(),
            Some("payload-required".to_owned())
        )
    );
    let two = Element::new("pubsub", PUBSUB).with_child(
        Element::new("publish", PUBSUB)
            .with_attr("node", "n")
            .with_child(
                Element::new("item", PUBSUB)
                    .with_child(payload("urn:example", "x", "1"))
                    .with_child(payload("urn:example", "y", "2")),
            ),
    );
    assert_eq!(
        conditions(&alice.iq(&iq("set", "x7", None, two)).await.unwrap()),
        ("bad-request".to_owned(), Some("invalid-payload".to_owned()))
    );
    // Nodes per account: the third is refused.
    for n in 0..2 {
        assert_result(
            &alice
                .iq(&iq(
                    "set",
                    &format!("n{n}"),
                    None,
                    publish(
                        &format!("node{n}"),
                        None,
                        payload("urn:example", "x", "x"),
                        &[],
                    ),
                ))
                .await
                .unwrap(),
        );
    }
    let reply = alice
        .iq(&iq(
            "set",
            "n3",
            None,
            publish("node3", None, payload("urn:example", "x", "x"), &[]),
        ))
        .await
        .unwrap();
    assert_eq!(conditions(&reply).0, "resource-constraint");
    // A bad max_items on retrieval.
    let reply = alice
        .iq(&iq(
            "get",
            "r1",
            None,
            items_request("node0", Some("lots"), &[]),
        ))
        .await
        .unwrap();
    assert_eq!(conditions(&reply).0, "bad-request");
}

#[tokio::test]
async fn access_models_decide_who_may_retrieve_items() {
    let server = server_with(
        &["alice", "bob", "carol", "dave"],
        &[("alice", "bob", &["Family"]), ("alice", "carol", &["Work"])],
    )
    .await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    let mut dave = server.login("dave", PASSWORD, Some("d")).await;
    let nodes = [
        ("presence", vec![]),
        ("open", vec![("pubsub#access_model", "open")]),
        ("whitelist", vec![("pubsub#access_model", "whitelist")]),
        (
            "roster",
            vec![
                ("pubsub#access_model", "roster"),
                ("pubsub#roster_groups_allowed", "Family"),
            ],
        ),
    ];
    for (name, options) in &nodes {
        let reply = alice
            .iq(&iq(
                "set",
                name,
                None,
                publish(name, Some("i"), payload("urn:example", "x", name), options),
            ))
            .await
            .unwrap();
        assert_result(&reply);
    }
    let allowed = |who: &str, node: &str| {
        matches!(
            (who, node),
            (_, "open") | ("bob" | "carol", "presence") | ("bob", "roster")
        )
    };
    for (who, client) in [
        ("bob", &mut bob),
        ("carol", &mut carol),
        ("dave", &mut dave),
    ] {
        for (node, _) in &nodes {
            let reply = fetch(client, "alice", node, &format!("{who}-{node}")).await;
            if allowed(who, node) {
                assert_eq!(
                    fetched(&reply),
                    vec![("i".to_owned(), (*node).to_owned())],
                    "{who} {node}"
                );
            } else {
                let expected = match *node {
                    "presence" => ("not-authorized", "presence-subscription-required"),
                    "roster" => ("not-authorized", "not-in-roster-group"),
                    _ => ("not-allowed", "closed-node"),
                };
                assert_eq!(
                    conditions(&reply),
                    (expected.0.to_owned(), Some(expected.1.to_owned())),
                    "{who} {node}"
                );
            }
        }
        // disco#items lists what each may see.
        let reply = client
            .iq(&iq(
                "get",
                "items",
                Some(&jid("alice")),
                Element::new("query", ns::DISCO_ITEMS),
            ))
            .await
            .unwrap();
        assert_result(&reply);
        let mut listed: Vec<String> = reply
            .get_child("query", ns::DISCO_ITEMS)
            .unwrap()
            .children()
            .filter_map(|i| i.attr("node").map(str::to_owned))
            .collect();
        listed.sort();
        let mut expected: Vec<String> = nodes
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| allowed(who, n))
            .map(str::to_owned)
            .collect();
        expected.sort();
        assert_eq!(listed, expected, "{who}");
    }
    // The owner sees everything.
    let reply = alice
        .iq(&iq(
            "get",
            "own",
            None,
            Element::new("query", ns::DISCO_ITEMS),
        ))
        .await
        .unwrap();
    assert_eq!(
        reply
            .get_child("query", ns::DISCO_ITEMS)
            .unwrap()
            .children()
            .count(),
        4
    );
}

#[tokio::test]
async fn notifications_follow_capabilities_and_access() {
    let server = server_with(
        &["alice", "bob", "carol", "dave"],
        &[("alice", "bob", &[]), ("alice", "carol", &[])],
    )
    .await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut alice2 = server.login("alice", PASSWORD, Some("a2")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    let mut dave = server.login("dave", PASSWORD, Some("d")).await;
    online_with_caps(
        &server,
        &mut alice2,
        "alice",
        "a2",
        &["urn:xmpp:avatar:metadata"],
    )
    .await;
    online_with_caps(
        &server,
        &mut bob,
        "bob",
        "b",
        &[
            "urn:xmpp:avatar:metadata",
            "http://jabber.org/protocol/nick",
        ],
    )
    .await;
    // Carol is a contact but not interested; Dave is interested but no contact.
    online_with_caps(
        &server,
        &mut carol,
        "carol",
        "c",
        &["http://jabber.org/protocol/nick"],
    )
    .await;
    online_with_caps(
        &server,
        &mut dave,
        "dave",
        "d",
        &["urn:xmpp:avatar:metadata"],
    )
    .await;
    for client in [&mut alice2, &mut bob, &mut carol, &mut dave] {
        client.sync().await.unwrap();
    }
    let metadata = Element::new("metadata", "urn:xmpp:avatar:metadata");
    let reply = alice
        .iq(&iq(
            "set",
            "p1",
            None,
            publish("urn:xmpp:avatar:metadata", Some("hash1"), metadata, &[]),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    for (client, gets) in [
        (&mut alice2, true),
        (&mut bob, true),
        (&mut carol, false),
        (&mut dave, false),
    ] {
        let arrived = client.sync().await.unwrap();
        let got = events(&arrived, "urn:xmpp:avatar:metadata");
        if gets {
            assert_eq!(got.len(), 1, "{arrived:?}");
            let message = arrived
                .iter()
                .find(|m| m.has_child("event", EVENT))
                .unwrap();
            assert_eq!(message.attr("from"), Some(jid("alice").as_str()));
            assert_eq!(message.attr("type"), Some("headline"));
            assert_eq!(
                got[0].get_child("item", EVENT).unwrap().attr("id"),
                Some("hash1")
            );
        } else {
            assert!(got.is_empty(), "{arrived:?}");
        }
    }
    // The publisher's own resource did not ask for it either.
    assert!(events(&alice.sync().await.unwrap(), "urn:xmpp:avatar:metadata").is_empty());
    // Retract with notify: the interested hear it; without notify, nobody does.
    let retract = |notify: bool, id: &str| {
        let mut r = Element::new("retract", PUBSUB)
            .with_attr("node", "urn:xmpp:avatar:metadata")
            .with_child(Element::new("item", PUBSUB).with_attr("id", id));
        if notify {
            r.set_attr("notify", "true");
        }
        Element::new("pubsub", PUBSUB).with_child(r)
    };
    assert_result(
        &alice
            .iq(&iq("set", "r1", None, retract(true, "hash1")))
            .await
            .unwrap(),
    );
    let got = events(&bob.sync().await.unwrap(), "urn:xmpp:avatar:metadata");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].get_child("retract", EVENT).unwrap().attr("id"),
        Some("hash1")
    );
    assert_eq!(
        conditions(
            &alice
                .iq(&iq("set", "r2", None, retract(true, "hash1")))
                .await
                .unwrap()
        )
        .0,
        "item-not-found"
    );
    // Delete: the interested hear it, and the node is gone.
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "del",
                None,
                owner_request("delete", "urn:xmpp:avatar:metadata", None),
            ))
            .await
            .unwrap(),
    );
    let arrived = bob.sync().await.unwrap();
    assert!(
        arrived.iter().any(|m| m
            .get_child("event", EVENT)
            .and_then(|e| e.get_child("delete", EVENT))
            .is_some_and(|d| d.attr("node") == Some("urn:xmpp:avatar:metadata"))),
        "{arrived:?}"
    );
    assert_eq!(
        conditions(&fetch(&mut alice, "alice", "urn:xmpp:avatar:metadata", "gone").await).0,
        "item-not-found"
    );
    assert_eq!(
        conditions(
            &alice
                .iq(&iq(
                    "set",
                    "del2",
                    None,
                    owner_request("delete", "urn:xmpp:avatar:metadata", None)
                ))
                .await
                .unwrap()
        )
        .0,
        "item-not-found"
    );
}

#[tokio::test]
async fn the_last_item_comes_on_presence_and_on_subscribe() {
    let server = server_with(&["alice", "bob", "carol"], &[("alice", "bob", &[])]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "p1",
                None,
                publish(
                    "http://jabber.org/protocol/nick",
                    Some("current"),
                    payload("http://jabber.org/protocol/nick", "nick", "Alice"),
                    &[],
                ),
            ))
            .await
            .unwrap(),
    );
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "p2",
                None,
                publish(
                    "urn:example:quiet",
                    Some("1"),
                    payload("urn:example", "x", "q"),
                    &[
                        ("pubsub#send_last_published_item", "never"),
                        ("pubsub#access_model", "open"),
                    ],
                ),
            ))
            .await
            .unwrap(),
    );
    // Bob comes online interested in both: the nick arrives, the quiet node's item does not.
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let ver = "unverified-bob";
    bob.send(
        &Element::new("presence", ns::CLIENT).with_child(
            Element::new("c", CAPS)
                .with_attr("hash", "sha-1")
                .with_attr("node", "n")
                .with_attr("ver", ver),
        ),
    )
    .await
    .unwrap();
    let query = bob
        .next_matching(|e| e.name() == "iq" && e.has_child("query", ns::DISCO_INFO))
        .await
        .unwrap();
    let info = Element::new("query", ns::DISCO_INFO)
        .with_child(
            Element::new("feature", ns::DISCO_INFO)
                .with_attr("var", "http://jabber.org/protocol/nick+notify"),
        )
        .with_child(
            Element::new("feature", ns::DISCO_INFO).with_attr("var", "urn:example:quiet+notify"),
        );
    bob.send(
        &Element::new("iq", ns::CLIENT)
            .with_attr("type", "result")
            .with_attr("id", query.attr("id").unwrap())
            .with_attr("to", "rookery.test")
            .with_child(info),
    )
    .await
    .unwrap();
    let nick = bob
        .next_matching(|e| e.has_child("event", EVENT))
        .await
        .unwrap();
    let items = nick
        .get_child("event", EVENT)
        .unwrap()
        .get_child("items", EVENT)
        .unwrap();
    assert_eq!(items.attr("node"), Some("http://jabber.org/protocol/nick"));
    assert_eq!(
        items_of(items, EVENT),
        vec![("current".to_owned(), "Alice".to_owned())]
    );
    assert!(events(&bob.sync().await.unwrap(), "urn:example:quiet").is_empty());
    // Carol, no contact, subscribes to the nick: the presence model refuses her.
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    // Available, without capabilities: only what she subscribes to reaches her (a headline to a bare JID goes to
    // available resources).
    carol
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    let subscribe = |node: &str| {
        Element::new("pubsub", PUBSUB).with_child(
            Element::new("subscribe", PUBSUB)
                .with_attr("node", node)
                .with_attr("jid", jid("carol")),
        )
    };
    let reply = carol
        .iq(&iq(
            "set",
            "s1",
            Some(&jid("alice")),
            subscribe("http://jabber.org/protocol/nick"),
        ))
        .await
        .unwrap();
    assert_eq!(
        conditions(&reply).1.as_deref(),
        Some("presence-subscription-required")
    );
    // To an open node she may, and gets later items (the node never sends its last one).
    let reply = carol
        .iq(&iq(
            "set",
            "s2",
            Some(&jid("alice")),
            subscribe("urn:example:quiet"),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    let subscription = reply
        .get_child("pubsub", PUBSUB)
        .unwrap()
        .get_child("subscription", PUBSUB)
        .unwrap();
    assert_eq!(subscription.attr("subscription"), Some("subscribed"));
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "p3",
                None,
                publish(
                    "urn:example:quiet",
                    Some("2"),
                    payload("urn:example", "x", "later"),
                    &[],
                ),
            ))
            .await
            .unwrap(),
    );
    let got = events(&carol.sync().await.unwrap(), "urn:example:quiet");
    assert_eq!(got.len(), 1);
    assert_eq!(
        items_of(&got[0], EVENT),
        vec![("2".to_owned(), "later".to_owned())]
    );
    // Subscribing for someone else is refused.
    let other = Element::new("pubsub", PUBSUB).with_child(
        Element::new("subscribe", PUBSUB)
            .with_attr("node", "urn:example:quiet")
            .with_attr("jid", jid("bob")),
    );
    assert_eq!(
        conditions(
            &carol
                .iq(&iq("set", "s3", Some(&jid("alice")), other))
                .await
                .unwrap()
        )
        .1
        .as_deref(),
        Some("invalid-jid")
    );
    // Unsubscribed, nothing more comes.
    let unsubscribe = Element::new("pubsub", PUBSUB).with_child(
        Element::new("unsubscribe", PUBSUB)
            .with_attr("node", "urn:example:quiet")
            .with_attr("jid", jid("carol")),
    );
    assert_result(
        &carol
            .iq(&iq("set", "u1", Some(&jid("alice")), unsubscribe.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(
        conditions(
            &carol
                .iq(&iq("set", "u2", Some(&jid("alice")), unsubscribe))
                .await
                .unwrap()
        )
        .1
        .as_deref(),
        Some("not-subscribed")
    );
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "p4",
                None,
                publish(
                    "urn:example:quiet",
                    Some("3"),
                    payload("urn:example", "x", "x"),
                    &[],
                ),
            ))
            .await
            .unwrap(),
    );
    assert!(events(&carol.sync().await.unwrap(), "urn:example:quiet").is_empty());
}

#[tokio::test]
async fn the_owner_configures_purges_and_creates_nodes() {
    let server = server_with(&["alice"], &[]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    for n in 0..5 {
        assert_result(
            &alice
                .iq(&iq(
                    "set",
                    &format!("p{n}"),
                    None,
                    publish(
                        "urn:example:n",
                        Some(&n.to_string()),
                        payload("urn:example", "x", &n.to_string()),
                        &[("pubsub#max_items", "10")],
                    ),
                ))
                .await
                .unwrap(),
        );
    }
    // Lowering max_items drops the oldest.
    let config = form(
        "http://jabber.org/protocol/pubsub#node_config",
        &[("pubsub#max_items", "2"), ("pubsub#title", "Numbers")],
    );
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "c1",
                None,
                owner_request("configure", "urn:example:n", Some(config)),
            ))
            .await
            .unwrap(),
    );
    let items = fetched(&fetch(&mut alice, "alice", "urn:example:n", "f1").await);
    assert_eq!(
        items.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["3", "4"]
    );
    // A bad configuration changes nothing.
    let bad = form(
        "http://jabber.org/protocol/pubsub#node_config",
        &[("pubsub#max_items", "1000"), ("pubsub#title", "Changed")],
    );
    assert_eq!(
        conditions(
            &alice
                .iq(&iq(
                    "set",
                    "c2",
                    None,
                    owner_request("configure", "urn:example:n", Some(bad))
                ))
                .await
                .unwrap()
        )
        .0,
        "not-acceptable"
    );
    let reply = alice
        .iq(&iq(
            "get",
            "c3",
            None,
            owner_request("configure", "urn:example:n", None),
        ))
        .await
        .unwrap();
    let x = reply
        .get_child("pubsub", OWNER)
        .unwrap()
        .get_child("configure", OWNER)
        .unwrap()
        .get_child("x", DATA)
        .unwrap();
    let title = x
        .children()
        .find(|f| f.attr("var") == Some("pubsub#title"))
        .unwrap();
    assert_eq!(title.get_child("value", DATA).unwrap().text(), "Numbers");
    // Purge keeps the node, empty.
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "pu",
                None,
                owner_request("purge", "urn:example:n", None),
            ))
            .await
            .unwrap(),
    );
    assert!(fetched(&fetch(&mut alice, "alice", "urn:example:n", "f2").await).is_empty());
    // Create: with a name, then again (conflict); instant nodes get a name from the server.
    let create = |node: Option<&str>| {
        let mut c = Element::new("create", PUBSUB);
        if let Some(node) = node {
            c.set_attr("node", node);
        }
        Element::new("pubsub", PUBSUB).with_child(c)
    };
    assert_result(
        &alice
            .iq(&iq("set", "k1", None, create(Some("urn:example:made"))))
            .await
            .unwrap(),
    );
    assert_eq!(
        conditions(
            &alice
                .iq(&iq("set", "k2", None, create(Some("urn:example:made"))))
                .await
                .unwrap()
        )
        .0,
        "conflict"
    );
    let reply = alice
        .iq(&iq("set", "k3", None, create(None)))
        .await
        .unwrap();
    let made = reply
        .get_child("pubsub", PUBSUB)
        .unwrap()
        .get_child("create", PUBSUB)
        .unwrap()
        .attr("node")
        .unwrap()
        .to_owned();
    assert!(fetched(&fetch(&mut alice, "alice", &made, "f3").await).is_empty());
}

/// What the apps publish: OMEMO device lists and bundles (both namespaces) with open access, fetched by a
/// non-contact; avatars and nick; MDS with whitelist access, which only the owner reads.
#[tokio::test]
async fn omemo_avatars_nick_and_mds_round_trip_between_two_accounts() {
    let server = server_with(&["alice", "bob", "mallory"], &[("alice", "bob", &[])]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut mallory = server.login("mallory", PASSWORD, Some("m")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let open = [("pubsub#access_model", "open")];
    let legacy_list = Element::new("list", "eu.siacs.conversations.axolotl").with_child(
        Element::new("device", "eu.siacs.conversations.axolotl").with_attr("id", "12345"),
    );
    let legacy_bundle = Element::new("bundle", "eu.siacs.conversations.axolotl")
        .with_child(
            Element::new("signedPreKeyPublic", "eu.siacs.conversations.axolotl")
                .with_attr("signedPreKeyId", "1")
                .with_text("BYPZ"),
        )
        .with_child(
            Element::new("identityKey", "eu.siacs.conversations.axolotl").with_text("BQK9"),
        );
    let v2_devices = Element::new("devices", "urn:xmpp:omemo:2")
        .with_child(Element::new("device", "urn:xmpp:omemo:2").with_attr("id", "12345"));
    let v2_bundle = Element::new("bundle", "urn:xmpp:omemo:2")
        .with_child(Element::new("ik", "urn:xmpp:omemo:2").with_text("BASE64"));
    let published = [
        (
            "eu.siacs.conversations.axolotl.devicelist",
            "current",
            legacy_list,
            &open[..],
        ),
        (
            "eu.siacs.conversations.axolotl.bundles:12345",
            "current",
            legacy_bundle,
            &open[..],
        ),
        (
            "urn:xmpp:omemo:2:devices",
            "current",
            v2_devices,
            &[("pubsub#access_model", "open"), ("pubsub#max_items", "max")][..],
        ),
        (
            "urn:xmpp:omemo:2:bundles",
            "12345",
            v2_bundle,
            &[("pubsub#access_model", "open"), ("pubsub#max_items", "max")][..],
        ),
        (
            "urn:xmpp:avatar:data",
            "sha1hash",
            Element::new("data", "urn:xmpp:avatar:data").with_text("iVBORw0KGgo="),
            &[][..],
        ),
        (
            "urn:xmpp:avatar:metadata",
            "sha1hash",
            Element::new("metadata", "urn:xmpp:avatar:metadata").with_child(
                Element::new("info", "urn:xmpp:avatar:metadata")
                    .with_attr("id", "sha1hash")
                    .with_attr("type", "image/png")
                    .with_attr("bytes", "8"),
            ),
            &[][..],
        ),
        (
            "http://jabber.org/protocol/nick",
            "current",
            Element::new("nick", "http://jabber.org/protocol/nick").with_text("Alice"),
            &[][..],
        ),
        (
            "urn:xmpp:mds:displayed:0",
            "bob@rookery.test",
            Element::new("displayed", "urn:xmpp:mds:displayed:0").with_child(
                Element::new("stanza-id", "urn:xmpp:sid:0")
                    .with_attr("id", "abc")
                    .with_attr("by", "alice@rookery.test"),
            ),
            &[
                ("pubsub#access_model", "whitelist"),
                ("pubsub#persist_items", "true"),
                ("pubsub#max_items", "max"),
                ("pubsub#send_last_published_item", "never"),
            ][..],
        ),
    ];
    for (n, (node, id, payload, options)) in published.iter().enumerate() {
        let reply = alice
            .iq(&iq(
                "set",
                &format!("p{n}"),
                None,
                publish(node, Some(id), payload.clone(), options),
            ))
            .await
            .unwrap();
        assert_result(&reply);
    }
    for (n, (node, id, payload, _)) in published.iter().enumerate() {
        let open_node = node.contains("axolotl") || node.contains("omemo");
        let mds = node.starts_with("urn:xmpp:mds");
        // Alice reads all of hers.
        let reply = fetch(&mut alice, "alice", node, &format!("a{n}")).await;
        let items = reply
            .get_child("pubsub", PUBSUB)
            .unwrap()
            .get_child("items", PUBSUB)
            .unwrap();
        let item = items.get_child("item", PUBSUB).unwrap();
        assert_eq!(item.attr("id"), Some(*id));
        assert_eq!(item.first_child(), Some(payload));
        // Bob, a contact, reads all but MDS; Mallory, a stranger, only the OMEMO nodes.
        let reply = fetch(&mut bob, "alice", node, &format!("b{n}")).await;
        if mds {
            assert_eq!(conditions(&reply).0, "not-allowed");
        } else {
            assert_eq!(fetched(&reply).len(), 1, "{node}");
        }
        let reply = fetch(&mut mallory, "alice", node, &format!("m{n}")).await;
        if open_node {
            let items = reply
                .get_child("pubsub", PUBSUB)
                .unwrap()
                .get_child("items", PUBSUB)
                .unwrap();
            assert_eq!(
                items.get_child("item", PUBSUB).unwrap().first_child(),
                Some(payload),
                "{node}"
            );
        } else {
            assert_eq!(reply.attr("type"), Some("error"), "{node}");
        }
    }
    // A second device of the same key republishes the device list: the item is replaced.
    let newer = Element::new("list", "eu.siacs.conversations.axolotl")
        .with_child(
            Element::new("device", "eu.siacs.conversations.axolotl").with_attr("id", "12345"),
        )
        .with_child(
            Element::new("device", "eu.siacs.conversations.axolotl").with_attr("id", "67890"),
        );
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "again",
                None,
                publish(
                    "eu.siacs.conversations.axolotl.devicelist",
                    Some("current"),
                    newer.clone(),
                    &open,
                ),
            ))
            .await
            .unwrap(),
    );
    let reply = fetch(
        &mut mallory,
        "alice",
        "eu.siacs.conversations.axolotl.devicelist",
        "again",
    )
    .await;
    let items = reply
        .get_child("pubsub", PUBSUB)
        .unwrap()
        .get_child("items", PUBSUB)
        .unwrap();
    assert_eq!(items.children().count(), 1);
    assert_eq!(
        items.get_child("item", PUBSUB).unwrap().first_child(),
        Some(&newer)
    );
}

const B2: &str = "urn:xmpp:bookmarks:1";
const LEGACY: &str = "storage:bookmarks";
const PRIVATE: &str = "jabber:iq:private";

fn b2_options() -> Vec<(&'static str, &'static str)> {
    vec![
        ("pubsub#persist_items", "true"),
        ("pubsub#max_items", "max"),
        ("pubsub#send_last_published_item", "never"),
        ("pubsub#access_model", "whitelist"),
    ]
}

fn legacy_storage(rooms: &[(&str, &str)]) -> Element {
    let mut storage = Element::new("storage", LEGACY);
    for (room, nick) in rooms {
        storage.append_child(
            Element::new("conference", LEGACY)
                .with_attr("jid", *room)
                .with_attr("name", format!("Room {room}"))
                .with_attr("autojoin", "true")
                .with_child(Element::new("nick", LEGACY).with_text(*nick)),
        );
    }
    storage
}

/// (room, nick, autojoin) of a legacy document.
fn legacy_rooms(storage: &Element) -> Vec<(String, String, String)> {
    storage
        .children()
        .filter(|c| c.is("conference", LEGACY))
        .map(|c| {
            (
                c.attr("jid").unwrap_or("").to_owned(),
                c.get_child("nick", LEGACY)
                    .map(Element::text)
                    .unwrap_or_default(),
                c.attr("autojoin").unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn private_bookmarks(client: &mut TestClient, id: &str) -> Vec<(String, String, String)> {
    let query = Element::new("query", PRIVATE).with_child(Element::new("storage", LEGACY));
    let reply = client.iq(&iq("get", id, None, query)).await.unwrap();
    assert_result(&reply);
    legacy_rooms(
        reply
            .get_child("query", PRIVATE)
            .unwrap()
            .get_child("storage", LEGACY)
            .unwrap(),
    )
}

async fn pep_legacy_bookmarks(client: &mut TestClient, id: &str) -> Vec<(String, String, String)> {
    let reply = client
        .iq(&iq("get", id, None, items_request(LEGACY, None, &[])))
        .await
        .unwrap();
    assert_result(&reply);
    let items = reply
        .get_child("pubsub", PUBSUB)
        .unwrap()
        .get_child("items", PUBSUB)
        .unwrap();
    legacy_rooms(
        items
            .get_child("item", PUBSUB)
            .unwrap()
            .get_child("storage", LEGACY)
            .unwrap(),
    )
}

async fn bookmarks2(client: &mut TestClient, id: &str) -> Vec<(String, String)> {
    let reply = client
        .iq(&iq("get", id, None, items_request(B2, None, &[])))
        .await
        .unwrap();
    assert_result(&reply);
    let items = reply
        .get_child("pubsub", PUBSUB)
        .unwrap()
        .get_child("items", PUBSUB)
        .unwrap();
    let mut rooms: Vec<(String, String)> = items
        .children()
        .map(|i| {
            let conference = i.get_child("conference", B2).expect("a conference");
            (
                i.attr("id").unwrap().to_owned(),
                conference
                    .get_child("nick", B2)
                    .map(Element::text)
                    .unwrap_or_default(),
            )
        })
        .collect();
    rooms.sort();
    rooms
}

#[tokio::test]
async fn bookmarks_2_and_both_legacy_views_stay_in_step() {
    let server = server_with(&["alice"], &[]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    // Advertised as Prosody does.
    let reply = alice
        .iq(&iq("get", "d", None, Element::new("query", ns::DISCO_INFO)))
        .await
        .unwrap();
    let features: Vec<String> = reply
        .get_child("query", ns::DISCO_INFO)
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var").map(str::to_owned))
        .collect();
    assert!(features.contains(&format!("{B2}#compat")));
    assert!(features.contains(&format!("{B2}#compat-pep")));
    // A Bookmarks 2 publish shows in private storage and in the legacy PEP node.
    let conference = Element::new("conference", B2)
        .with_attr("name", "One")
        .with_attr("autojoin", "true")
        .with_child(Element::new("nick", B2).with_text("ali"));
    let options = b2_options();
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "p1",
                None,
                publish(B2, Some("one@groups.rookery.test"), conference, &options),
            ))
            .await
            .unwrap(),
    );
    let expected = vec![(
        "one@groups.rookery.test".to_owned(),
        "ali".to_owned(),
        "true".to_owned(),
    )];
    assert_eq!(private_bookmarks(&mut alice, "g1").await, expected);
    assert_eq!(pep_legacy_bookmarks(&mut alice, "g2").await, expected);
    // Legacy private storage set: Bookmarks 2 follows (one retracted, two published), and the legacy PEP node too.
    let query = Element::new("query", PRIVATE)
        .with_child(legacy_storage(&[("two@groups.rookery.test", "al")]));
    assert_result(&alice.iq(&iq("set", "s1", None, query)).await.unwrap());
    assert_eq!(
        bookmarks2(&mut alice, "b1").await,
        vec![("two@groups.rookery.test".to_owned(), "al".to_owned())]
    );
    let expected = vec![(
        "two@groups.rookery.test".to_owned(),
        "al".to_owned(),
        "true".to_owned(),
    )];
    assert_eq!(pep_legacy_bookmarks(&mut alice, "g3").await, expected);
    // The Bookmarks 2 node was made private and complete, as XEP-0402 asks.
    let reply = alice
        .iq(&iq("get", "c", None, owner_request("configure", B2, None)))
        .await
        .unwrap();
    let x = reply
        .get_child("pubsub", OWNER)
        .unwrap()
        .get_child("configure", OWNER)
        .unwrap()
        .get_child("x", DATA)
        .unwrap();
    let value = |var: &str| {
        x.children()
            .find(|f| f.attr("var") == Some(var))
            .unwrap()
            .get_child("value", DATA)
            .unwrap()
            .text()
    };
    assert_eq!(value("pubsub#access_model"), "whitelist");
    assert_eq!(value("pubsub#max_items"), "256");
    // Legacy PEP publish: Bookmarks 2 and private storage follow.
    let legacy = legacy_storage(&[
        ("three@groups.rookery.test", "a"),
        ("four@groups.rookery.test", "b"),
    ]);
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "p2",
                None,
                publish(LEGACY, Some("current"), legacy, &[]),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(
        bookmarks2(&mut alice, "b2").await,
        vec![
            ("four@groups.rookery.test".to_owned(), "b".to_owned()),
            ("three@groups.rookery.test".to_owned(), "a".to_owned())
        ]
    );
    let mut private = private_bookmarks(&mut alice, "g4").await;
    private.sort();
    assert_eq!(
        private
            .iter()
            .map(|(r, _, _)| r.as_str())
            .collect::<Vec<_>>(),
        ["four@groups.rookery.test", "three@groups.rookery.test"]
    );
    // Retracting a Bookmarks 2 item removes it from both views.
    let retract = Element::new("pubsub", PUBSUB).with_child(
        Element::new("retract", PUBSUB)
            .with_attr("node", B2)
            .with_attr("notify", "true")
            .with_child(Element::new("item", PUBSUB).with_attr("id", "four@groups.rookery.test")),
    );
    assert_result(&alice.iq(&iq("set", "r1", None, retract)).await.unwrap());
    let expected = vec![(
        "three@groups.rookery.test".to_owned(),
        "a".to_owned(),
        "true".to_owned(),
    )];
    assert_eq!(private_bookmarks(&mut alice, "g5").await, expected);
    assert_eq!(pep_legacy_bookmarks(&mut alice, "g6").await, expected);
}

const VCARD: &str = "vcard-temp";

#[tokio::test]
async fn vcard_temp_and_pep_avatars_convert_both_ways() {
    let server = server_with(&["alice", "bob"], &[("alice", "bob", &[])]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let reply = alice
        .iq(&iq("get", "d", None, Element::new("query", ns::DISCO_INFO)))
        .await
        .unwrap();
    assert!(
        reply
            .get_child("query", ns::DISCO_INFO)
            .unwrap()
            .children()
            .any(|f| f.attr("var") == Some("urn:xmpp:pep-vcard-conversion:0"))
    );
    // "hello" in base64, wrapped as some clients do; its sha-1 is the avatar id.
    let vcard = Element::new("vCard", VCARD)
        .with_child(Element::new("FN", VCARD).with_text("Alice Liddell"))
        .with_child(Element::new("NICKNAME", VCARD).with_text("ali"))
        .with_child(
            Element::new("PHOTO", VCARD)
                .with_child(Element::new("TYPE", VCARD).with_text("image/png"))
                .with_child(Element::new("BINVAL", VCARD).with_text("aGVs\nbG8=")),
        );
    assert_result(&alice.iq(&iq("set", "v1", None, vcard)).await.unwrap());
    let id = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d";
    // Bob reads the avatar from PEP.
    let reply = fetch(&mut bob, "alice", "urn:xmpp:avatar:metadata", "m").await;
    let items = reply
        .get_child("pubsub", PUBSUB)
        .unwrap()
        .get_child("items", PUBSUB)
        .unwrap();
    let item = items.get_child("item", PUBSUB).unwrap();
    assert_eq!(item.attr("id"), Some(id));
    let info = item
        .get_child("metadata", "urn:xmpp:avatar:metadata")
        .unwrap()
        .get_child("info", "urn:xmpp:avatar:metadata")
        .unwrap();
    assert_eq!(
        (info.attr("bytes"), info.attr("type")),
        (Some("5"), Some("image/png"))
    );
    let reply = bob
        .iq(&iq(
            "get",
            "dt",
            Some(&jid("alice")),
            items_request("urn:xmpp:avatar:data", None, &[id]),
        ))
        .await
        .unwrap();
    assert_eq!(
        fetched(&reply),
        vec![(id.to_owned(), "aGVsbG8=".to_owned())]
    );
    // And the vCard4.
    let reply = fetch(&mut bob, "alice", "urn:xmpp:vcard4", "v4").await;
    let items = reply
        .get_child("pubsub", PUBSUB)
        .unwrap()
        .get_child("items", PUBSUB)
        .unwrap();
    let v4 = items
        .get_child("item", PUBSUB)
        .unwrap()
        .get_child("vcard", "urn:ietf:params:xml:ns:vcard-4.0")
        .unwrap();
    let fname = v4
        .get_child("fn", "urn:ietf:params:xml:ns:vcard-4.0")
        .unwrap()
        .get_child("text", "urn:ietf:params:xml:ns:vcard-4.0")
        .unwrap()
        .text();
    assert_eq!(fname, "Alice Liddell");
    // A new avatar published to PEP shows in vcard-temp.
    let data = Element::new("data", "urn:xmpp:avatar:data").with_text("d29ybGQ=");
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "a1",
                None,
                publish("urn:xmpp:avatar:data", Some("newid"), data, &[]),
            ))
            .await
            .unwrap(),
    );
    let metadata = Element::new("metadata", "urn:xmpp:avatar:metadata").with_child(
        Element::new("info", "urn:xmpp:avatar:metadata")
            .with_attr("id", "newid")
            .with_attr("type", "image/jpeg")
            .with_attr("bytes", "5"),
    );
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "a2",
                None,
                publish("urn:xmpp:avatar:metadata", Some("newid"), metadata, &[]),
            ))
            .await
            .unwrap(),
    );
    let reply = bob
        .iq(&iq(
            "get",
            "vg",
            Some(&jid("alice")),
            Element::new("vCard", VCARD),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    let vcard = reply.get_child("vCard", VCARD).unwrap();
    assert_eq!(
        vcard.get_child("FN", VCARD).unwrap().text(),
        "Alice Liddell"
    );
    let photos: Vec<&Element> = vcard.children().filter(|c| c.is("PHOTO", VCARD)).collect();
    assert_eq!(photos.len(), 1);
    assert_eq!(
        photos[0].get_child("BINVAL", VCARD).unwrap().text(),
        "d29ybGQ="
    );
    assert_eq!(
        photos[0].get_child("TYPE", VCARD).unwrap().text(),
        "image/jpeg"
    );
    // A PHOTO that is not base64 is refused, and nothing changes.
    let bad = Element::new("vCard", VCARD).with_child(
        Element::new("PHOTO", VCARD).with_child(Element::new("BINVAL", VCARD).with_text("!!!")),
    );
    assert_eq!(
        conditions(&alice.iq(&iq("set", "v2", None, bad)).await.unwrap()).0,
        "bad-request"
    );
    let reply = alice
        .iq(&iq("get", "vg2", None, Element::new("vCard", VCARD)))
        .await
        .unwrap();
    assert_eq!(
        reply
            .get_child("vCard", VCARD)
            .unwrap()
            .get_child("FN", VCARD)
            .unwrap()
            .text(),
        "Alice Liddell"
    );
}

/// The PHOTOs in a vcard-temp get of `owner` by `client`.
async fn vcard_photos(client: &mut TestClient, owner: &str, id: &str) -> Vec<String> {
    let reply = client
        .iq(&iq(
            "get",
            id,
            Some(&jid(owner)),
            Element::new("vCard", VCARD),
        ))
        .await
        .unwrap();
    assert_result(&reply);
    let vcard = reply.get_child("vCard", VCARD).unwrap();
    assert_eq!(
        vcard.get_child("FN", VCARD).map(Element::text).as_deref(),
        Some("Alice")
    );
    vcard
        .children()
        .filter(|c| c.is("PHOTO", VCARD))
        .map(|p| {
            p.get_child("BINVAL", VCARD)
                .map(Element::text)
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn a_removed_avatar_leaves_vcard_temp_and_a_vcard_without_photo_removes_it() {
    let server = server_with(&["alice", "bob"], &[("alice", "bob", &[])]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let with_photo = Element::new("vCard", VCARD)
        .with_child(Element::new("FN", VCARD).with_text("Alice"))
        .with_child(
            Element::new("PHOTO", VCARD)
                .with_child(Element::new("TYPE", VCARD).with_text("image/png"))
                .with_child(Element::new("BINVAL", VCARD).with_text("aGVsbG8=")),
        );
    assert_result(
        &alice
            .iq(&iq("set", "v1", None, with_photo.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(
        vcard_photos(&mut bob, "alice", "g1").await,
        vec!["aGVsbG8="]
    );

    // A PEP client disables the avatar (XEP-0084 §4.6): the PHOTO of the stored vCard must not come back.
    let empty = Element::new("metadata", "urn:xmpp:avatar:metadata");
    assert_result(
        &alice
            .iq(&iq(
                "set",
                "off",
                None,
                publish("urn:xmpp:avatar:metadata", Some("current"), empty, &[]),
            ))
            .await
            .unwrap(),
    );
    assert!(vcard_photos(&mut bob, "alice", "g2").await.is_empty());

    // The photo again through vcard-temp, then a vCard without one: the PEP avatar is disabled.
    assert_result(&alice.iq(&iq("set", "v2", None, with_photo)).await.unwrap());
    assert_eq!(
        vcard_photos(&mut bob, "alice", "g3").await,
        vec!["aGVsbG8="]
    );
    let without_photo =
        Element::new("vCard", VCARD).with_child(Element::new("FN", VCARD).with_text("Alice"));
    assert_result(
        &alice
            .iq(&iq("set", "v3", None, without_photo))
            .await
            .unwrap(),
    );
    let reply = bob
        .iq(&iq(
            "get",
            "m",
            Some(&jid("alice")),
            items_request("urn:xmpp:avatar:metadata", Some("1"), &[]),
        ))
        .await
        .unwrap();
    let latest = fetched(&reply);
    assert_eq!(latest, vec![("current".to_owned(), String::new())]);
    assert!(vcard_photos(&mut bob, "alice", "g4").await.is_empty());
}
