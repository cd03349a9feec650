//! XEP-0352 client state indication against the real server: an inactive client's unimportant stanzas wait until
//! something important comes, it becomes active or the hold is full, and are never lost.
//!
//! That a stanza is held can only be seen as its absence: [`assert_nothing_arrives`] reads for a while and expects
//! nothing. If holding were broken the stanza would be there long before; a very slow machine could make that check
//! pass wrongly, never fail wrongly. The order checks that follow each one are exact.

use std::time::Duration;

use rookery_test_support::{TestClient, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const NS_CSI: &str = "urn:xmpp:csi:0";
const NS_CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";
const NS_RECEIPTS: &str = "urn:xmpp:receipts";
/// How long a held stanza must stay away.
const HOLD_CHECK: Duration = Duration::from_millis(300);
const HOLD_LIMIT: usize = 256;

async fn server(users: &[&str]) -> TestServer {
    let server = TestServer::start().await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    server
}

fn bob_full() -> String {
    "bob@rookery.test/b".to_owned()
}

fn chat_state(to: &str, id: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", id)
        .with_child(Element::new("composing", NS_CHAT_STATES))
}

fn chat(to: &str, body: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", body)
        .with_child(Element::new("body", ns::CLIENT).with_text(body))
}

fn directed_presence(to: &str) -> Element {
    Element::new("presence", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("id", "update")
}

/// Sends `<inactive/>` and makes sure it was taken (the ping's answer is important, so nothing is held yet).
async fn go_inactive(client: &mut TestClient) {
    client
        .send(&Element::new("inactive", NS_CSI))
        .await
        .unwrap();
    client.sync().await.unwrap();
}

async fn assert_nothing_arrives(client: &mut TestClient) {
    let bytes = client.read_raw(HOLD_CHECK).await.unwrap();
    assert!(
        bytes.is_empty(),
        "held stanzas arrived: {}",
        String::from_utf8_lossy(&bytes)
    );
}

async fn next_ids(client: &mut TestClient, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let el = client.next_element().await.unwrap();
        ids.push(format!("{}:{}", el.name(), el.attr("id").unwrap_or("")));
    }
    ids
}

#[tokio::test]
async fn csi_is_a_stream_feature_after_login() {
    let server = server(&["bob"]).await;
    let bob = server.login("bob", PASSWORD, Some("b")).await;
    let features = bob.features.as_ref().expect("features");
    assert!(features.has_child("csi", NS_CSI), "{features}");
    server.stop().await;
}

#[tokio::test]
async fn unimportant_stanzas_wait_for_an_important_one_and_keep_their_order() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    go_inactive(&mut bob).await;

    alice.send(&directed_presence(&bob_full())).await.unwrap();
    alice
        .send(&chat_state(&bob_full(), "typing"))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_nothing_arrives(&mut bob).await;

    alice.send(&chat(&bob_full(), "hello")).await.unwrap();
    assert_eq!(
        next_ids(&mut bob, 3).await,
        ["presence:update", "message:typing", "message:hello"]
    );
    // Still inactive: the next update waits again, until the client says it is active.
    alice.send(&chat_state(&bob_full(), "again")).await.unwrap();
    alice.sync().await.unwrap();
    assert_nothing_arrives(&mut bob).await;
    bob.send(&Element::new("active", NS_CSI)).await.unwrap();
    assert_eq!(next_ids(&mut bob, 1).await, ["message:again"]);
    // Active: nothing is held any more.
    alice.send(&chat_state(&bob_full(), "now")).await.unwrap();
    assert_eq!(next_ids(&mut bob, 1).await, ["message:now"]);
    server.stop().await;
}

#[tokio::test]
async fn a_full_hold_is_written_out_in_order() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    go_inactive(&mut bob).await;
    for i in 0..HOLD_LIMIT {
        alice
            .send(&chat_state(&bob_full(), &i.to_string()))
            .await
            .unwrap();
    }
    alice.sync().await.unwrap();
    assert_nothing_arrives(&mut bob).await;
    // One more than the hold takes: all of them come, oldest first.
    alice.send(&chat_state(&bob_full(), "last")).await.unwrap();
    let ids = next_ids(&mut bob, HOLD_LIMIT + 1).await;
    let expected: Vec<String> = (0..HOLD_LIMIT)
        .map(|i| format!("message:{i}"))
        .chain(["message:last".to_owned()])
        .collect();
    assert_eq!(ids, expected);
    server.stop().await;
}

#[tokio::test]
async fn held_messages_are_not_lost_when_the_connection_drops() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let mut bob_laptop = server.login("bob", PASSWORD, Some("laptop")).await;
    bob_laptop
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    bob_laptop.sync().await.unwrap();
    go_inactive(&mut bob).await;

    // A receipt without a body waits for the inactive phone...
    let receipt = Element::new("message", ns::CLIENT)
        .with_attr("to", bob_full().as_str())
        .with_attr("type", "chat")
        .with_attr("id", "receipt")
        .with_child(Element::new("received", NS_RECEIPTS).with_attr("id", "m1"));
    alice.send(&receipt).await.unwrap();
    alice.sync().await.unwrap();
    assert_nothing_arrives(&mut bob).await;
    // ...whose connection then dies: the receipt goes to the account's other resource instead.
    drop(bob);
    let rerouted = bob_laptop
        .next_matching(|e| e.name() == "message")
        .await
        .unwrap();
    assert_eq!(rerouted.attr("id"), Some("receipt"));
    assert!(rerouted.has_child("received", NS_RECEIPTS));
    server.stop().await;
}
