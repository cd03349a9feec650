//! Message delivery to accounts (RFC 6121 §8.5) and offline storage (XEP-0160) against the real server, with
//! clients that become available the way real ones do: by sending presence after binding.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rookery_test_support::{TestClient, TestOptions, TestServer};
use rookery_xml::{Element, StreamEvent, ns};

const PASSWORD: &str = "correct horse battery";
const NS_DELAY: &str = "urn:xmpp:delay";
const NS_CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";
/// A hang guard, not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(20);

fn jid(user: &str) -> String {
    format!("{user}@rookery.test")
}

fn message(to: &str, kind: Option<&str>, body: &str) -> Element {
    let mut m = Element::new("message", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("id", body)
        .with_child(Element::new("body", ns::CLIENT).with_text(body));
    if let Some(kind) = kind {
        m.set_attr("type", kind);
    }
    m
}

fn chat(to: &str, body: &str) -> Element {
    message(to, Some("chat"), body)
}

async fn server_with(users: &[&str], options: TestOptions) -> TestServer {
    let server = TestServer::start_with(options).await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    server
}

async fn server(users: &[&str]) -> TestServer {
    server_with(users, TestOptions::default()).await
}

/// Pings the server and returns everything that arrived before the answer. The server routes a client's stanzas
/// in order, so after a sender's `sync` this holds everything its earlier stanzas caused here.
async fn sync(client: &mut TestClient) -> Vec<Element> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = format!("sync-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let ping = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", id.as_str())
        .with_attr("to", "rookery.test")
        .with_child(Element::new("ping", ns::PING));
    client.send(&ping).await.unwrap();
    let mut before = Vec::new();
    loop {
        let el = client.next_element().await.unwrap();
        if el.name() == "iq" && el.attr("id") == Some(id.as_str()) {
            return before;
        }
        before.push(el);
    }
}

/// The bodies of the messages in `stanzas`.
fn bodies(stanzas: &[Element]) -> Vec<String> {
    stanzas
        .iter()
        .filter(|e| e.name() == "message")
        .filter_map(|m| m.get_child("body", ns::CLIENT).map(Element::text))
        .collect()
}

/// The stanza error condition of an error reply.
fn condition(stanza: &Element) -> Option<String> {
    let error = stanza.get_child("error", ns::CLIENT)?;
    error
        .children()
        .find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// Sends presence (with this priority, if any) as a client does after binding, and waits until it is handled.
async fn available(client: &mut TestClient, priority: Option<i8>) {
    let mut presence = Element::new("presence", ns::CLIENT);
    if let Some(p) = priority {
        presence.append_child(Element::new("priority", ns::CLIENT).with_text(p.to_string()));
    }
    client.send(&presence).await.unwrap();
    sync(client).await;
}

async fn unavailable(client: &mut TestClient) {
    let presence = Element::new("presence", ns::CLIENT).with_attr("type", "unavailable");
    client.send(&presence).await.unwrap();
    sync(client).await;
}

async fn offline_count(server: &TestServer, user: &str) -> u64 {
    server.server().store.offline().count(user).await.unwrap()
}

/// Waits until `user` has `n` messages stored (deliveries and removals run in tasks of their own).
async fn wait_for_offline_count(server: &TestServer, user: &str, n: u64) {
    tokio::time::timeout(PATIENCE, async {
        while offline_count(server, user).await != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{user} never had {n} offline messages"));
}

async fn next_message(client: &mut TestClient) -> Element {
    client
        .next_matching(|e| e.name() == "message")
        .await
        .unwrap()
}

#[tokio::test]
async fn bare_jid_messages_go_to_the_top_priority_resources_only() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob_five_a = server.login("bob", PASSWORD, Some("five-a")).await;
    available(&mut bob_five_a, Some(5)).await;
    let mut bob_five_b = server.login("bob", PASSWORD, Some("five-b")).await;
    available(&mut bob_five_b, Some(5)).await;
    let mut bob_one = server.login("bob", PASSWORD, Some("one")).await;
    available(&mut bob_one, Some(1)).await;
    let mut bob_negative = server.login("bob", PASSWORD, Some("negative")).await;
    available(&mut bob_negative, Some(-1)).await;
    // Bound but never available: a bare-JID message is not for it.
    let mut bob_silent = server.login("bob", PASSWORD, Some("silent")).await;

    alice.send(&chat(&jid("bob"), "chat")).await.unwrap();
    alice
        .send(&message(&jid("bob"), None, "normal"))
        .await
        .unwrap();
    assert!(sync(&mut alice).await.is_empty(), "nothing comes back");
    for top in [&mut bob_five_a, &mut bob_five_b] {
        assert_eq!(bodies(&sync(top).await), ["chat", "normal"]);
    }
    for other in [&mut bob_one, &mut bob_negative, &mut bob_silent] {
        assert!(bodies(&sync(other).await).is_empty());
    }

    // When the top two go unavailable, the next priority is the top.
    unavailable(&mut bob_five_a).await;
    unavailable(&mut bob_five_b).await;
    alice.send(&chat(&jid("bob"), "now one")).await.unwrap();
    sync(&mut alice).await;
    assert_eq!(bodies(&sync(&mut bob_one).await), ["now one"]);
    for other in [
        &mut bob_five_a,
        &mut bob_five_b,
        &mut bob_negative,
        &mut bob_silent,
    ] {
        assert!(bodies(&sync(other).await).is_empty());
    }
    assert_eq!(offline_count(&server, "bob").await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_message_to_ones_own_bare_jid_reaches_every_top_resource_sender_included() {
    let server = server(&["alice"]).await;
    let mut phone = server.login("alice", PASSWORD, Some("phone")).await;
    available(&mut phone, None).await;
    let mut laptop = server.login("alice", PASSWORD, Some("laptop")).await;
    available(&mut laptop, None).await;
    phone
        .send(&chat(&jid("alice"), "note to self"))
        .await
        .unwrap();
    assert_eq!(bodies(&sync(&mut phone).await), ["note to self"]);
    assert_eq!(bodies(&sync(&mut laptop).await), ["note to self"]);
    server.stop().await;
}

#[tokio::test]
async fn negative_priority_gets_nothing_via_the_bare_jid_but_full_jid_messages_arrive() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("shy")).await;
    available(&mut bob, Some(-1)).await;

    alice.send(&chat(&jid("bob"), "kept")).await.unwrap();
    alice
        .send(&message(&jid("bob"), Some("headline"), "news"))
        .await
        .unwrap();
    alice
        .send(&chat("bob@rookery.test/shy", "direct"))
        .await
        .unwrap();
    assert!(sync(&mut alice).await.is_empty(), "nothing comes back");
    // The chat is kept offline, the headline dropped, the full-JID message delivered.
    assert_eq!(bodies(&sync(&mut bob).await), ["direct"]);
    assert_eq!(offline_count(&server, "bob").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_full_jid_that_is_not_bound_follows_the_bare_rules_per_type() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("here")).await;
    available(&mut bob, None).await;

    let gone = "bob@rookery.test/gone";
    alice.send(&chat(gone, "chat")).await.unwrap();
    alice.send(&message(gone, None, "normal")).await.unwrap();
    alice
        .send(&message(gone, Some("headline"), "headline"))
        .await
        .unwrap();
    alice
        .send(&message(gone, Some("groupchat"), "groupchat"))
        .await
        .unwrap();
    alice
        .send(&message(gone, Some("error"), "error"))
        .await
        .unwrap();
    // Only the groupchat message is answered, with service-unavailable.
    let replies = sync(&mut alice).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].attr("id"), Some("groupchat"));
    assert_eq!(replies[0].attr("type"), Some("error"));
    assert_eq!(
        condition(&replies[0]).as_deref(),
        Some("service-unavailable")
    );
    // Chat and normal went to the bare JID's top resource; headline and error were dropped.
    let got = sync(&mut bob).await;
    assert_eq!(bodies(&got), ["chat", "normal"]);
    assert_eq!(got[0].attr("to"), Some(gone), "the stanza is not rewritten");
    server.stop().await;
}

#[tokio::test]
async fn bare_jid_headline_groupchat_and_error_rules() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob_five = server.login("bob", PASSWORD, Some("five")).await;
    available(&mut bob_five, Some(5)).await;
    let mut bob_zero = server.login("bob", PASSWORD, Some("zero")).await;
    available(&mut bob_zero, None).await;
    let mut bob_negative = server.login("bob", PASSWORD, Some("negative")).await;
    available(&mut bob_negative, Some(-1)).await;

    alice
        .send(&message(&jid("bob"), Some("headline"), "headline"))
        .await
        .unwrap();
    alice
        .send(&message(&jid("bob"), Some("groupchat"), "groupchat"))
        .await
        .unwrap();
    alice
        .send(&message(&jid("bob"), Some("error"), "error"))
        .await
        .unwrap();
    let replies = sync(&mut alice).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].attr("id"), Some("groupchat"));
    assert_eq!(
        condition(&replies[0]).as_deref(),
        Some("service-unavailable")
    );
    // A headline goes to every non-negative resource, not only the top one.
    assert_eq!(bodies(&sync(&mut bob_five).await), ["headline"]);
    assert_eq!(bodies(&sync(&mut bob_zero).await), ["headline"]);
    assert!(bodies(&sync(&mut bob_negative).await).is_empty());
    assert_eq!(offline_count(&server, "bob").await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_missing_account_gets_service_unavailable() {
    let server = server(&["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    alice.send(&chat(&jid("nobody"), "bare")).await.unwrap();
    alice
        .send(&chat("nobody@rookery.test/res", "full"))
        .await
        .unwrap();
    alice
        .send(&message(&jid("nobody"), Some("headline"), "headline"))
        .await
        .unwrap();
    alice
        .send(&message(&jid("nobody"), Some("error"), "error"))
        .await
        .unwrap();
    let replies = sync(&mut alice).await;
    let answered: Vec<_> = replies.iter().filter_map(|r| r.attr("id")).collect();
    assert_eq!(answered, ["bare", "full"], "{replies:?}");
    for reply in &replies {
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(condition(reply).as_deref(), Some("service-unavailable"));
    }
    server.stop().await;
}

#[tokio::test]
async fn offline_messages_arrive_at_the_next_initial_presence_in_order_with_a_delay_stamp() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let before = now();
    alice.send(&chat(&jid("bob"), "first")).await.unwrap();
    alice
        .send(&message(&jid("bob"), None, "second"))
        .await
        .unwrap();
    // Not kept: a standalone chat state (XEP-0160) and a headline.
    let composing = Element::new("message", ns::CLIENT)
        .with_attr("to", jid("bob"))
        .with_attr("type", "chat")
        .with_child(Element::new("composing", NS_CHAT_STATES));
    alice.send(&composing).await.unwrap();
    alice
        .send(&message(&jid("bob"), Some("headline"), "headline"))
        .await
        .unwrap();
    // To a resource that is not there: treated as to the bare JID, so kept too.
    alice
        .send(&chat("bob@rookery.test/phone", "third"))
        .await
        .unwrap();
    assert!(sync(&mut alice).await.is_empty(), "nothing comes back");
    let after = now();
    assert_eq!(offline_count(&server, "bob").await, 3);

    // Bound is not available: nothing yet. Initial presence with a negative priority takes nothing either, nor
    // does a later presence that is not initial.
    let mut bob = server.login("bob", PASSWORD, Some("phone")).await;
    assert!(sync(&mut bob).await.is_empty());
    available(&mut bob, Some(-1)).await;
    available(&mut bob, Some(3)).await;
    assert!(bodies(&sync(&mut bob).await).is_empty());
    assert_eq!(offline_count(&server, "bob").await, 3);

    // The next initial presence with a non-negative priority gets them, in order, each stamped.
    unavailable(&mut bob).await;
    bob.send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_message(&mut bob).await);
    }
    assert_eq!(bodies(&got), ["first", "second", "third"]);
    for m in &got {
        assert_eq!(m.attr("from"), Some("alice@rookery.test/a"));
        let delay = m.get_child("delay", NS_DELAY).expect("a delay stamp");
        assert_eq!(delay.attr("from"), Some("rookery.test"));
        let stamp = delay.attr("stamp").unwrap();
        assert!(stamp.ends_with('Z'), "UTC: {stamp}");
        let stamped =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp();
        assert!((before..=after).contains(&stamped), "{stamp}");
    }
    // Handed over means removed; and nothing else was kept.
    wait_for_offline_count(&server, "bob", 0).await;
    assert!(bodies(&sync(&mut bob).await).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_offline_store_is_bounded_per_account() {
    let server = server_with(
        &["alice", "bob"],
        TestOptions {
            limits: Some(Box::new(|l| l.offline_messages_per_user = 3)),
            ..Default::default()
        },
    )
    .await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    for n in 0..5 {
        alice
            .send(&chat(&jid("bob"), &format!("m{n}")))
            .await
            .unwrap();
    }
    let replies = sync(&mut alice).await;
    let refused: Vec<_> = replies.iter().filter_map(|r| r.attr("id")).collect();
    assert_eq!(refused, ["m3", "m4"]);
    for reply in &replies {
        assert_eq!(condition(reply).as_deref(), Some("service-unavailable"));
        let text = reply
            .get_child("error", ns::CLIENT)
            .and_then(|e| e.get_child("text", ns::STANZA_ERRORS))
            .map(Element::text);
        assert!(text.is_some_and(|t| !t.is_empty()), "{reply}");
    }
    assert_eq!(offline_count(&server, "bob").await, 3);

    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    bob.send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_message(&mut bob).await);
    }
    assert_eq!(bodies(&got), ["m0", "m1", "m2"]);
    wait_for_offline_count(&server, "bob", 0).await;
    // Room again: a message to bob while he is offline is kept.
    bob.close().await.unwrap();
    wait_for(|| server.server().sessions.sessions_of("bob").is_empty()).await;
    alice.send(&chat(&jid("bob"), "m5")).await.unwrap();
    assert!(sync(&mut alice).await.is_empty());
    assert_eq!(offline_count(&server, "bob").await, 1);
    server.stop().await;
}

/// A large backlog is handed over whole and in order, in batches, without overflowing the session's queue.
#[tokio::test]
async fn a_large_backlog_is_delivered_whole_and_in_order() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let count = 600;
    // About 3 MiB in all, three times what a session queue holds.
    let padding = "x".repeat(5000);
    let mut flood = Vec::new();
    for n in 0..count {
        flood.extend_from_slice(
            format!(
                "<message to='bob@rookery.test' type='chat'><body>{n} {padding}</body></message>"
            )
            .as_bytes(),
        );
    }
    alice.send_raw(&flood).await.unwrap();
    assert!(sync(&mut alice).await.is_empty());
    assert_eq!(offline_count(&server, "bob").await, count);

    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    bob.send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    for n in 0..count {
        let got = next_message(&mut bob).await;
        let body = got.get_child("body", ns::CLIENT).unwrap().text();
        assert!(body.starts_with(&format!("{n} ")), "message {n} in order");
    }
    wait_for_offline_count(&server, "bob", 0).await;
    server.stop().await;
}

/// bob's laptop stops reading while alice sends to it: once it is closed as stalled, nothing that was meant for it
/// is lost or bounced. What it did not get, including what was still queued for it when its connection ended,
/// goes to bob's other available resource, each message exactly once.
#[tokio::test]
async fn messages_queued_for_a_connection_that_drops_go_to_the_other_resource() {
    let server = server_with(
        &["alice", "bob"],
        TestOptions {
            limits: Some(Box::new(|l| {
                l.slow_reader_timeout = Duration::from_millis(300)
            })),
            ..Default::default()
        },
    )
    .await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut phone = server.login("bob", PASSWORD, Some("phone")).await;
    available(&mut phone, None).await;
    let mut laptop = server.login("bob", PASSWORD, Some("laptop")).await;
    available(&mut laptop, None).await;

    // The phone reads all along.
    let (phone_ids, mut from_phone) = tokio::sync::mpsc::unbounded_channel();
    let phone_reader = tokio::spawn(async move {
        loop {
            let m = next_message(&mut phone).await;
            phone_ids.send(m.attr("id").unwrap().to_owned()).unwrap();
        }
    });

    // Far more than the laptop's queue and socket buffers take.
    let total = 100;
    let big = "y".repeat(100 * 1024);
    let sender = tokio::spawn(async move {
        for n in 0..total {
            let mut m = chat("bob@rookery.test/laptop", &big);
            m.set_attr("id", format!("m{n}"));
            alice.send(&m).await.unwrap();
        }
        alice
    });
    let mut alice = sender.await.unwrap();

    // The laptop can still read what reached its socket before it was closed.
    let mut seen = BTreeSet::new();
    let mut ending = None;
    loop {
        match laptop.next_event().await {
            Ok(StreamEvent::Element(el)) if el.name() == "message" => {
                assert!(seen.insert(el.attr("id").unwrap().to_owned()), "twice");
            }
            Ok(StreamEvent::Element(el)) if el.is("error", ns::STREAMS) => {
                ending = el.first_child().map(|c| c.name().to_owned());
            }
            Ok(StreamEvent::Close) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert_eq!(ending.as_deref(), Some("policy-violation"));
    let on_laptop = seen.len();
    assert!(
        on_laptop < total,
        "a client that never reads cannot have taken everything"
    );
    // Everything else reaches the phone, once.
    while seen.len() < total {
        let id = tokio::time::timeout(PATIENCE, from_phone.recv())
            .await
            .expect("the rest reaches the phone")
            .unwrap();
        assert!(seen.insert(id.clone()), "{id} arrived twice");
    }
    let expected: BTreeSet<_> = (0..total).map(|n| format!("m{n}")).collect();
    assert_eq!(seen, expected);
    // Nothing was bounced to alice, and nothing kept offline.
    assert!(sync(&mut alice).await.is_empty());
    assert_eq!(offline_count(&server, "bob").await, 0);
    phone_reader.abort();
    server.stop().await;
}

/// A message that was already re-routed once and fails again is not re-routed a second time: it goes to the
/// offline store (from which an available resource then gets it, stamped).
#[tokio::test]
async fn a_message_rerouted_once_goes_through_the_offline_store() {
    let server = server(&["alice", "bob"]).await;
    let mut bob = server.login("bob", PASSWORD, Some("phone")).await;
    available(&mut bob, None).await;
    let mut stored = chat("bob@rookery.test/laptop", "once");
    stored.set_attr("from", "alice@rookery.test/a");
    server.server().undeliverable(stored, true).await;
    let got = next_message(&mut bob).await;
    assert_eq!(bodies(std::slice::from_ref(&got)), ["once"]);
    assert!(
        got.get_child("delay", NS_DELAY).is_some(),
        "came through the offline store: {got}"
    );
    wait_for_offline_count(&server, "bob", 0).await;

    // The first time, it is simply routed again: straight to the available resource.
    let mut first = chat("bob@rookery.test/laptop", "first time");
    first.set_attr("from", "alice@rookery.test/a");
    server.server().undeliverable(first, false).await;
    let got = next_message(&mut bob).await;
    assert_eq!(bodies(std::slice::from_ref(&got)), ["first time"]);
    assert!(got.get_child("delay", NS_DELAY).is_none(), "{got}");
    server.stop().await;
}

/// An account disconnecting while a sender is mid-flood: the messages sent meanwhile are kept offline and handed
/// over at its next login, so with nothing read on the first connection, nothing is lost in all.
#[tokio::test]
async fn a_connection_that_ends_leaves_nothing_behind() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    available(&mut bob, None).await;
    for n in 0..20 {
        alice
            .send(&chat(&jid("bob"), &format!("m{n}")))
            .await
            .unwrap();
    }
    sync(&mut alice).await;
    // bob reads some, then ends his stream; what he still gets before it closes counts too.
    let mut seen = BTreeSet::new();
    for _ in 0..5 {
        seen.insert(bodies(&[next_message(&mut bob).await])[0].clone());
    }
    bob.send_raw(b"</stream:stream>").await.unwrap();
    loop {
        match bob.next_event().await {
            Ok(StreamEvent::Element(el)) if el.name() == "message" => {
                let body = bodies(&[el])[0].clone();
                assert!(seen.insert(body.clone()), "{body} twice");
            }
            Ok(StreamEvent::Close) | Err(_) => break,
            Ok(_) => {}
        }
    }
    wait_for(|| server.server().sessions.sessions_of("bob").is_empty()).await;
    for n in 20..30 {
        alice
            .send(&chat(&jid("bob"), &format!("m{n}")))
            .await
            .unwrap();
    }
    assert!(sync(&mut alice).await.is_empty(), "nothing bounced");
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    bob.send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    while seen.len() < 30 {
        let body = bodies(&[next_message(&mut bob).await])[0].clone();
        assert!(seen.insert(body.clone()), "{body} twice");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_server_advertises_offline_storage() {
    let server = server(&["alice"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let disco = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "d1")
        .with_attr("to", "rookery.test")
        .with_child(Element::new("query", ns::DISCO_INFO));
    let reply = alice.iq(&disco).await.unwrap();
    let features: Vec<_> = reply
        .get_child("query", ns::DISCO_INFO)
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    assert!(features.contains(&"msgoffline"), "{features:?}");
    server.stop().await;
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

async fn wait_for(condition: impl Fn() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition never held");
}
