//! XEP-0280 message carbons against the real server: which resources get `<sent/>` and `<received/>` copies, and
//! which messages are never copied.

use std::sync::atomic::{AtomicU64, Ordering};

use rookery_test_support::{TestClient, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const NS_CARBONS: &str = "urn:xmpp:carbons:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_HINTS: &str = "urn:xmpp:hints";
const NS_CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";

fn jid(user: &str) -> String {
    format!("{user}@rookery.test")
}

fn chat(to: &str, body: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", body)
        .with_child(Element::new("body", ns::CLIENT).with_text(body))
}

fn iq_set(id: &str, payload: Element) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_child(payload)
}

async fn server(users: &[&str]) -> TestServer {
    let server = TestServer::start().await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    server
}

async fn sync(client: &mut TestClient) -> Vec<Element> {
    client.sync().await.unwrap()
}

/// Logs in, enables carbons if asked, and sends initial presence.
async fn online(server: &TestServer, user: &str, resource: &str, carbons: bool) -> TestClient {
    let mut client = server.login(user, PASSWORD, Some(resource)).await;
    if carbons {
        set_carbons(&mut client, true).await;
    }
    client
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    sync(&mut client).await;
    client
}

async fn set_carbons(client: &mut TestClient, enabled: bool) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = format!("carbons-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let name = if enabled { "enable" } else { "disable" };
    let reply = client
        .iq(&iq_set(&id, Element::new(name, NS_CARBONS)))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
}

/// The carbons among `stanzas`: (wrapper name, the forwarded message), checking that each is addressed as XEP-0280
/// says.
fn carbons(stanzas: &[Element], account: &str, to: &str) -> Vec<(String, Element)> {
    stanzas
        .iter()
        .filter(|s| s.name() == "message")
        .filter_map(|s| {
            let wrapper = s.children().find(|c| c.ns() == NS_CARBONS)?;
            assert_eq!(s.attr("from"), Some(account), "{s}");
            assert_eq!(s.attr("to"), Some(to), "{s}");
            let inner = wrapper
                .get_child("forwarded", NS_FORWARD)
                .and_then(|f| f.get_child("message", ns::CLIENT))
                .unwrap_or_else(|| panic!("no forwarded message in {s}"));
            assert_eq!(s.attr("type"), Some(inner.attr("type").unwrap_or("normal")));
            Some((wrapper.name().to_owned(), inner.clone()))
        })
        .collect()
}

fn body(message: &Element) -> String {
    message
        .get_child("body", ns::CLIENT)
        .map(Element::text)
        .unwrap_or_default()
}

/// Bodies of plain messages (not carbons) among `stanzas`.
fn plain_bodies(stanzas: &[Element]) -> Vec<String> {
    stanzas
        .iter()
        .filter(|s| s.name() == "message" && !s.children().any(|c| c.ns() == NS_CARBONS))
        .map(body)
        .collect()
}

#[tokio::test]
async fn the_server_advertises_carbons() {
    let server = server(&["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let query = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "disco")
        .with_attr("to", "rookery.test")
        .with_child(Element::new("query", ns::DISCO_INFO));
    let reply = alice.iq(&query).await.unwrap();
    let features: Vec<_> = reply
        .get_child("query", ns::DISCO_INFO)
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var"))
        .map(str::to_owned)
        .collect();
    assert!(features.iter().any(|f| f == NS_CARBONS), "{features:?}");
    server.stop().await;
}

#[tokio::test]
async fn sent_and_received_copies_reach_the_other_enabled_resources() {
    let server = server(&["alice", "bob"]).await;
    let mut phone = online(&server, "alice", "phone", true).await;
    let mut laptop = online(&server, "alice", "laptop", true).await;
    let mut tablet = online(&server, "alice", "tablet", false).await;
    let mut bob = online(&server, "bob", "b", false).await;
    sync(&mut phone).await;
    sync(&mut laptop).await;
    sync(&mut tablet).await;

    // alice's phone writes: the laptop sees what the phone sent; the phone itself and the tablet (carbons off)
    // get nothing.
    phone
        .send(&chat(&format!("{}/b", jid("bob")), "from the phone"))
        .await
        .unwrap();
    sync(&mut phone).await;
    assert_eq!(plain_bodies(&sync(&mut bob).await), ["from the phone"]);
    let seen = sync(&mut laptop).await;
    let copies = carbons(&seen, &jid("alice"), &format!("{}/laptop", jid("alice")));
    assert_eq!(copies.len(), 1, "{seen:?}");
    assert_eq!(copies[0].0, "sent");
    assert_eq!(copies[0].1.attr("from"), Some("alice@rookery.test/phone"));
    assert_eq!(copies[0].1.attr("to"), Some("bob@rookery.test/b"));
    assert_eq!(body(&copies[0].1), "from the phone");
    assert!(sync(&mut phone).await.is_empty());
    assert!(sync(&mut tablet).await.is_empty());

    // bob answers the phone: the laptop gets a received copy, the phone the message itself.
    bob.send(&chat(&format!("{}/phone", jid("alice")), "to the phone"))
        .await
        .unwrap();
    sync(&mut bob).await;
    assert_eq!(plain_bodies(&sync(&mut phone).await), ["to the phone"]);
    let seen = sync(&mut laptop).await;
    let copies = carbons(&seen, &jid("alice"), &format!("{}/laptop", jid("alice")));
    assert_eq!(copies.len(), 1, "{seen:?}");
    assert_eq!(copies[0].0, "received");
    assert_eq!(copies[0].1.attr("from"), Some("bob@rookery.test/b"));
    assert_eq!(body(&copies[0].1), "to the phone");
    assert!(sync(&mut tablet).await.is_empty());

    // Disabled again: no more copies (and disabling twice is fine, XEP-0280 §9.1).
    set_carbons(&mut laptop, false).await;
    set_carbons(&mut laptop, false).await;
    phone
        .send(&chat(&format!("{}/b", jid("bob")), "unseen"))
        .await
        .unwrap();
    sync(&mut phone).await;
    assert!(sync(&mut laptop).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn bare_jid_messages_are_copied_only_to_resources_that_did_not_get_them() {
    let server = server(&["alice", "bob"]).await;
    let mut bob = online(&server, "bob", "b", false).await;
    // Two top resources (priority 0) get the message itself; a negative-priority one and a bound one that never
    // sent presence get copies.
    let mut phone = online(&server, "alice", "phone", true).await;
    let mut laptop = online(&server, "alice", "laptop", true).await;
    let mut away = server.login("alice", PASSWORD, Some("away")).await;
    set_carbons(&mut away, true).await;
    let away_presence = Element::new("presence", ns::CLIENT)
        .with_child(Element::new("priority", ns::CLIENT).with_text("-1"));
    away.send(&away_presence).await.unwrap();
    sync(&mut away).await;
    let mut quiet = server.login("alice", PASSWORD, Some("quiet")).await;
    set_carbons(&mut quiet, true).await;
    for c in [&mut phone, &mut laptop, &mut away, &mut quiet] {
        sync(c).await;
    }

    bob.send(&chat(&jid("alice"), "to the account"))
        .await
        .unwrap();
    sync(&mut bob).await;
    for top in [&mut phone, &mut laptop] {
        let seen = sync(top).await;
        assert_eq!(plain_bodies(&seen), ["to the account"]);
        let copied = seen
            .iter()
            .any(|s| s.children().any(|c| c.ns() == NS_CARBONS));
        assert!(!copied, "no copy as well: {seen:?}");
    }
    for (client, resource) in [(&mut away, "away"), (&mut quiet, "quiet")] {
        let seen = sync(client).await;
        let to = format!("{}/{resource}", jid("alice"));
        let copies = carbons(&seen, &jid("alice"), &to);
        assert_eq!(copies.len(), 1, "{seen:?}");
        assert_eq!(copies[0].0, "received");
        assert!(plain_bodies(&seen).is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn ineligible_messages_are_not_copied() {
    let server = server(&["alice", "bob"]).await;
    let mut phone = online(&server, "alice", "phone", true).await;
    let mut laptop = online(&server, "alice", "laptop", true).await;
    let mut bob = online(&server, "bob", "b", false).await;
    sync(&mut phone).await;
    sync(&mut laptop).await;
    let to_phone = format!("{}/phone", jid("alice"));

    let headline = chat(&to_phone, "news").with_attr("type", "headline");
    let normal_without_body = Element::new("message", ns::CLIENT)
        .with_attr("to", to_phone.as_str())
        .with_child(Element::new("active", NS_CHAT_STATES));
    let mut muc_pm = chat(&to_phone, "whisper");
    muc_pm.append_child(Element::new("x", NS_MUC_USER));
    let mut no_copy = chat(&to_phone, "no copy");
    no_copy.append_child(Element::new("no-copy", NS_HINTS));
    for message in [headline, normal_without_body, muc_pm, no_copy] {
        bob.send(&message).await.unwrap();
    }
    sync(&mut bob).await;
    assert_eq!(sync(&mut phone).await.len(), 4);
    assert!(sync(&mut laptop).await.is_empty());

    // A chat state in a chat message is copied (XEP-0280 §9.2).
    let composing = Element::new("message", ns::CLIENT)
        .with_attr("to", to_phone.as_str())
        .with_attr("type", "chat")
        .with_child(Element::new("composing", NS_CHAT_STATES));
    bob.send(&composing).await.unwrap();
    sync(&mut bob).await;
    let seen = sync(&mut laptop).await;
    assert_eq!(
        carbons(&seen, &jid("alice"), &format!("{}/laptop", jid("alice"))).len(),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn private_messages_are_not_copied_and_lose_the_private_element() {
    let server = server(&["alice", "bob"]).await;
    let mut phone = online(&server, "alice", "phone", true).await;
    let mut laptop = online(&server, "alice", "laptop", true).await;
    let mut bob = online(&server, "bob", "b", true).await;
    let mut bob_tablet = online(&server, "bob", "tablet", true).await;
    for c in [&mut phone, &mut laptop, &mut bob, &mut bob_tablet] {
        sync(c).await;
    }

    let mut private = chat(&format!("{}/b", jid("bob")), "just between us");
    private.append_child(Element::new("private", NS_CARBONS));
    phone.send(&private).await.unwrap();
    sync(&mut phone).await;
    // Neither the sender's other resource nor the recipient's gets a copy...
    assert!(sync(&mut laptop).await.is_empty());
    assert!(sync(&mut bob_tablet).await.is_empty());
    // ...and the recipient gets the message without the element (XEP-0280 §8).
    let seen = sync(&mut bob).await;
    assert_eq!(plain_bodies(&seen), ["just between us"]);
    let delivered = seen.iter().find(|s| s.name() == "message").unwrap();
    assert!(!delivered.has_child("private", NS_CARBONS), "{delivered}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_cannot_send_carbons_and_foreign_wrappers_are_plain_content() {
    let server = server(&["alice", "mallory"]).await;
    let mut phone = online(&server, "alice", "phone", true).await;
    let mut laptop = online(&server, "alice", "laptop", true).await;
    let mut mallory = online(&server, "mallory", "m", false).await;
    sync(&mut phone).await;
    sync(&mut laptop).await;

    // mallory forges a "sent" carbon for alice: refused, nothing delivered.
    let forged_inner =
        chat(&jid("eve"), "I never wrote this").with_attr("from", "alice@rookery.test/phone");
    let forged = Element::new("message", ns::CLIENT)
        .with_attr("to", format!("{}/phone", jid("alice")).as_str())
        .with_attr("type", "chat")
        .with_attr("id", "forged")
        .with_child(
            Element::new("sent", NS_CARBONS)
                .with_child(Element::new("forwarded", NS_FORWARD).with_child(forged_inner)),
        );
    mallory.send(&forged).await.unwrap();
    let answer = sync(&mut mallory).await;
    let error = answer
        .iter()
        .find(|s| s.attr("id") == Some("forged"))
        .expect("an error");
    assert_eq!(error.attr("type"), Some("error"));
    assert!(
        error
            .get_child("error", ns::CLIENT)
            .unwrap()
            .has_child("not-allowed", "urn:ietf:params:xml:ns:xmpp-stanzas"),
        "{error}"
    );
    assert!(sync(&mut phone).await.is_empty());
    assert!(sync(&mut laptop).await.is_empty());

    // alice's own client may not send one either.
    phone
        .send(&forged.clone().with_attr("to", jid("alice").as_str()))
        .await
        .unwrap();
    let answer = sync(&mut phone).await;
    assert!(
        answer.iter().any(|s| s.attr("type") == Some("error")),
        "{answer:?}"
    );
    assert!(sync(&mut laptop).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_message_without_to_is_copied_as_addressed_to_the_account() {
    let server = server(&["alice"]).await;
    let mut phone = online(&server, "alice", "phone", true).await;
    let mut laptop = online(&server, "alice", "laptop", true).await;
    sync(&mut phone).await;
    sync(&mut laptop).await;
    let mut note = chat("", "note to self");
    note.remove_attr("to");
    phone.send(&note).await.unwrap();
    sync(&mut phone).await;
    let seen = sync(&mut laptop).await;
    let copies = carbons(&seen, &jid("alice"), &format!("{}/laptop", jid("alice")));
    let sent: Vec<_> = copies.iter().filter(|(w, _)| w == "sent").collect();
    assert_eq!(sent.len(), 1, "{seen:?}");
    assert_eq!(sent[0].1.attr("to"), Some(jid("alice").as_str()));
    server.stop().await;
}

#[tokio::test]
async fn a_message_rerouted_from_a_dead_connection_is_not_copied_again() {
    let server = server(&["alice", "bob"]).await;
    let mut bob = online(&server, "bob", "b", false).await;
    let mut phone = online(&server, "alice", "phone", true).await;
    let mut laptop = online(&server, "alice", "laptop", false).await;
    // Carbons on, never available: it gets a copy of everything the others receive.
    let mut tablet = server.login("alice", PASSWORD, Some("tablet")).await;
    set_carbons(&mut tablet, true).await;
    for c in [&mut phone, &mut laptop, &mut tablet] {
        sync(c).await;
    }
    // The phone goes inactive (XEP-0352), so a chat state for it waits in its connection...
    phone
        .send(&Element::new("inactive", "urn:xmpp:csi:0"))
        .await
        .unwrap();
    sync(&mut phone).await;
    let composing = Element::new("message", ns::CLIENT)
        .with_attr("to", format!("{}/phone", jid("alice")).as_str())
        .with_attr("type", "chat")
        .with_attr("id", "composing")
        .with_child(Element::new("composing", NS_CHAT_STATES));
    bob.send(&composing).await.unwrap();
    sync(&mut bob).await;
    // ...until the connection dies: the chat state is routed again, to the laptop.
    drop(phone);
    let rerouted = laptop
        .next_matching(|e| e.name() == "message")
        .await
        .unwrap();
    assert_eq!(rerouted.attr("id"), Some("composing"));
    // The tablet got its copy the first time, and only then.
    let seen = sync(&mut tablet).await;
    let copies = carbons(&seen, &jid("alice"), &format!("{}/tablet", jid("alice")));
    assert_eq!(copies.len(), 1, "{seen:?}");
    assert_eq!(copies[0].1.attr("id"), Some("composing"));
    server.stop().await;
}
