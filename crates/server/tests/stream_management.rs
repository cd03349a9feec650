//! XEP-0198 stream management against the real server, with a raw client that can cut its connection where a
//! library would hide it: acknowledgements and counters, resumption on a new connection (also while the old one
//! still looks alive), hibernation that ends in the offline store, and the errors for bad counts and ids.

use std::time::Duration;

use rookery_test_support::{Ending, TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const NS_SM: &str = "urn:xmpp:sm:3";
const NS_DELAY: &str = "urn:xmpp:delay";
/// A hang guard, not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(20);

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

fn sm(name: &str) -> Element {
    Element::new(name, NS_SM)
}

fn body(el: &Element) -> Option<String> {
    (el.name() == "message")
        .then(|| el.get_child("body", ns::CLIENT).map(Element::text))
        .flatten()
}

fn is_stanza(el: &Element) -> bool {
    el.ns() == ns::CLIENT && matches!(el.name(), "message" | "presence" | "iq")
}

async fn server_with(users: &[&str], options: TestOptions) -> TestServer {
    let server = TestServer::start_with(options).await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    server
}

fn limits(change: impl FnOnce(&mut rookery_config::Limits) + Send + 'static) -> TestOptions {
    TestOptions {
        limits: Some(Box::new(change)),
        ..TestOptions::default()
    }
}

/// A stream-managed client: the raw client plus the count of stanzas it received, which it reports as `h`.
struct SmClient {
    client: TestClient,
    handled: u32,
}

impl SmClient {
    /// Logs in, binds, enables stream management (with resumption when `resume`) and sends initial presence.
    /// Returns the client and the resumption id.
    async fn start(server: &TestServer, user: &str, resume: bool) -> (Self, Option<String>) {
        let mut client = server.login(user, PASSWORD, Some("phone")).await;
        assert!(
            client
                .features
                .as_ref()
                .is_some_and(|f| f.has_child("sm", NS_SM)),
            "stream management is offered after login"
        );
        let mut enable = sm("enable");
        if resume {
            enable.set_attr("resume", "true");
        }
        client.send(&enable).await.unwrap();
        let enabled = client.next_element().await.unwrap();
        assert!(enabled.is("enabled", NS_SM), "{enabled}");
        let id = enabled.attr("id").map(str::to_owned);
        assert_eq!(id.is_some(), resume);
        if resume {
            assert_eq!(enabled.attr("resume"), Some("true"));
            let max = server
                .server()
                .config
                .limits
                .sm_hibernation
                .as_secs()
                .max(1);
            assert_eq!(enabled.attr("max"), Some(max.to_string().as_str()));
        }
        let mut this = Self { client, handled: 0 };
        this.client
            .send(&Element::new("presence", ns::CLIENT))
            .await
            .unwrap();
        // The presence comes back and the ping is answered; the server asks for an acknowledgement once, after
        // its first write, and gets it: the client starts with nothing unacknowledged and no request out.
        let mut requested = this.sync().await.iter().any(|e| e.is("r", NS_SM));
        if !requested {
            let r = this.next().await;
            assert!(r.is("r", NS_SM), "{r}");
            requested = true;
        }
        assert!(requested);
        this.ack().await;
        (this, id)
    }

    /// The next element, counted if it is a stanza.
    async fn next(&mut self) -> Element {
        let el = self.client.next_element().await.unwrap();
        if is_stanza(&el) {
            self.handled += 1;
        }
        el
    }

    /// Pings the server and returns what arrived before the answer (counting all of it, and the answer).
    async fn sync(&mut self) -> Vec<Element> {
        let ping = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", "sm-sync")
            .with_attr("to", "rookery.test")
            .with_child(Element::new("ping", ns::PING));
        self.client.send(&ping).await.unwrap();
        let mut before = Vec::new();
        loop {
            let el = self.next().await;
            if el.name() == "iq" && el.attr("id") == Some("sm-sync") {
                return before;
            }
            before.push(el);
        }
    }

    /// Reads until the bodies in `want` all arrived, counting everything read.
    async fn read_bodies(&mut self, want: &[String]) -> Vec<Element> {
        let read = read_bodies(&mut self.client, want).await;
        self.handled += read.iter().filter(|e| is_stanza(e)).count() as u32;
        read
    }

    async fn ack(&mut self) {
        let a = sm("a").with_attr("h", self.handled.to_string());
        self.client.send(&a).await.unwrap();
    }
}

/// A new connection of `user` that logs in and asks to resume `previd`; returns it and the server's answer.
async fn resume(server: &TestServer, user: &str, previd: &str, h: u32) -> (TestClient, Element) {
    let mut client = server.connect().await;
    client.login(user, PASSWORD, "SCRAM-SHA-1").await.unwrap();
    let resume = sm("resume")
        .with_attr("previd", previd)
        .with_attr("h", h.to_string());
    client.send(&resume).await.unwrap();
    let answer = client.next_element().await.unwrap();
    (client, answer)
}

/// Reads until the bodies in `want` all arrived (in order), returning every stanza read.
async fn read_bodies(client: &mut TestClient, want: &[String]) -> Vec<Element> {
    let mut got = Vec::new();
    let mut read = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while got.len() < want.len() {
            let el = client.next_element().await.unwrap();
            if let Some(b) = body(&el) {
                got.push(b);
            }
            read.push(el);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {got:?} of {want:?} arrived"));
    assert_eq!(got, want);
    read
}

/// Reads until `n` messages arrived and returns their bodies sorted: not necessarily in the order sent, since a
/// message that reached the offline store straight after a session ended can overtake those the session handed back.
async fn all_bodies(client: &mut TestClient, n: usize) -> Vec<String> {
    let mut got: Vec<String> = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while got.len() < n {
            got.extend(body(&client.next_element().await.unwrap()));
        }
    })
    .await
    .expect("every message arrives");
    got.sort();
    got
}

fn bodies(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

async fn send_all(sender: &mut TestClient, to: &str, bodies: &[String]) {
    for b in bodies {
        sender.send(&chat(to, b)).await.unwrap();
    }
    sender.sync().await.unwrap();
}

/// Waits until the server has no resumable session left.
async fn wait_until_not_resumable(server: &TestServer, user: &str) {
    tokio::time::timeout(PATIENCE, async {
        while !server.server().sessions.sessions_of(user).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hibernating session ended");
}

#[tokio::test]
async fn a_cut_connection_resumes_with_everything_sent_meanwhile_and_everything_unacknowledged() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("desk")).await;
    let (mut bob, id) = SmClient::start(&server, "bob", true).await;
    let id = id.unwrap();

    // Three reach bob, who acknowledges only the first.
    let before = bodies(3, "before-");
    send_all(&mut alice, &jid("bob"), &before).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let el = bob.next().await;
        seen.extend(body(&el));
        if seen.len() == 1 {
            bob.ack().await;
        }
    }
    let h_after_first = bob.handled - 2;

    // The connection dies without a word; more arrive while the session hibernates.
    drop(bob);
    let meanwhile = bodies(5, "meanwhile-");
    send_all(&mut alice, "bob@rookery.test/phone", &meanwhile).await;

    // The client tells the new connection it handled everything up to the first message.
    let (mut bob, answer) = resume(&server, "bob", &id, h_after_first).await;
    assert!(answer.is("resumed", NS_SM), "{answer}");
    assert_eq!(answer.attr("previd"), Some(id.as_str()));
    let want: Vec<String> = before[1..].iter().chain(&meanwhile).cloned().collect();
    let read = read_bodies(&mut bob, &want).await;
    for message in read.iter().filter(|e| e.name() == "message") {
        assert!(
            message.has_child("delay", NS_DELAY),
            "sent again with a delay stamp: {message}"
        );
    }
    // The same session, with the same JID: a new message arrives normally, and nothing was duplicated.
    alice
        .send(&chat("bob@rookery.test/phone", "after"))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let rest = bob.sync().await.unwrap();
    let rest: Vec<String> = rest.iter().filter_map(body).collect();
    assert_eq!(rest, ["after"]);
    assert_eq!(server.server().sessions.sessions_of("bob").len(), 1);
}

#[tokio::test]
async fn a_session_that_is_never_resumed_ends_and_its_messages_are_offline_and_archived() {
    let server = server_with(
        &["alice", "bob"],
        limits(|l| l.sm_hibernation = Duration::from_secs(1)),
    )
    .await;
    let mut alice = server.login("alice", PASSWORD, Some("desk")).await;
    let (mut bob, id) = SmClient::start(&server, "bob", true).await;
    let id = id.unwrap();
    let unacked = bodies(2, "unacked-");
    send_all(&mut alice, &jid("bob"), &unacked).await;
    bob.read_bodies(&unacked).await;
    drop(bob);
    let meanwhile = bodies(3, "meanwhile-");
    send_all(&mut alice, &jid("bob"), &meanwhile).await;

    wait_until_not_resumable(&server, "bob").await;
    // Too late: the server says how many of the client's stanzas it had handled (its initial presence and ping).
    let (_late, answer) = resume(&server, "bob", &id, 0).await;
    assert!(answer.is("failed", NS_SM), "{answer}");
    assert!(answer.has_child("item-not-found", ns::STANZA_ERRORS));
    assert_eq!(answer.attr("h"), Some("2"));

    // Nothing was lost: the next login gets all of it from the offline store.
    let mut bob = server.login("bob", PASSWORD, Some("phone")).await;
    bob.send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    let mut want: Vec<String> = unacked.iter().chain(&meanwhile).cloned().collect();
    want.sort();
    assert_eq!(all_bodies(&mut bob, want.len()).await, want);

    // And all of it is in bob's archive, once each, for his other devices.
    let query = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "mam")
        .with_child(Element::new("query", "urn:xmpp:mam:2").with_attr("queryid", "q"));
    bob.send(&query).await.unwrap();
    let mut archived = Vec::new();
    loop {
        let el = bob.next_element().await.unwrap();
        if el.name() == "iq" && el.attr("id") == Some("mam") {
            assert_eq!(el.attr("type"), Some("result"), "{el}");
            break;
        }
        let forwarded = el
            .get_child("result", "urn:xmpp:mam:2")
            .and_then(|r| r.get_child("forwarded", "urn:xmpp:forward:0"))
            .and_then(|f| f.get_child("message", ns::CLIENT));
        if let Some(message) = forwarded {
            archived.extend(body(message));
        }
    }
    archived.sort();
    assert_eq!(archived, want);
}

#[tokio::test]
async fn resumption_takes_the_session_from_a_connection_that_still_looks_alive() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("desk")).await;
    let (mut old, id) = SmClient::start(&server, "bob", true).await;
    let first = bodies(2, "first-");
    send_all(&mut alice, "bob@rookery.test/phone", &first).await;
    old.read_bodies(&first).await;

    let (mut new, answer) = resume(&server, "bob", &id.unwrap(), old.handled).await;
    assert!(answer.is("resumed", NS_SM), "{answer}");
    assert_eq!(
        old.client.ending().await.unwrap(),
        Ending::StreamError("conflict".into())
    );
    alice
        .send(&chat("bob@rookery.test/phone", "second"))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let got: Vec<String> = new.sync().await.unwrap().iter().filter_map(body).collect();
    assert_eq!(got, ["second"], "acknowledged stanzas are not sent again");
}

#[tokio::test]
async fn acknowledgements_count_stanzas_and_requests_are_one_at_a_time() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("desk")).await;
    let (mut bob, _) = SmClient::start(&server, "bob", false).await;

    // The server's count: bob's initial presence and his ping so far.
    assert_eq!(bob.handled, 2);
    bob.client.send(&sm("r")).await.unwrap();
    let a = bob.next().await;
    assert!(a.is("a", NS_SM), "{a}");
    assert_eq!(a.attr("h"), Some("2"));

    // Twenty messages, and bob never answers: one <r/> in all, however the writes were batched.
    let many = bodies(20, "m");
    send_all(&mut alice, &jid("bob"), &many).await;
    let read = bob.sync().await;
    let requests = read.iter().filter(|e| e.is("r", NS_SM)).count();
    assert_eq!(requests, 1, "{read:?}");
    assert_eq!(read.iter().filter_map(body).count(), 20);

    // Once answered, the next batch brings the next request.
    bob.ack().await;
    alice.send(&chat(&jid("bob"), "more")).await.unwrap();
    alice.sync().await.unwrap();
    let read = bob.sync().await;
    assert_eq!(read.iter().filter(|e| e.is("r", NS_SM)).count(), 1);

    // Enabling twice is refused; the stream carries on.
    bob.client.send(&sm("enable")).await.unwrap();
    let failed = bob.next().await;
    assert!(
        failed.is("failed", NS_SM) && failed.has_child("unexpected-request", ns::STANZA_ERRORS)
    );
    bob.sync().await;
}

#[tokio::test]
async fn a_client_that_does_not_acknowledge_gets_no_more_than_the_limit_at_a_time() {
    let server = server_with(&["alice", "bob"], limits(|l| l.sm_max_unacked = 5)).await;
    let mut alice = server.login("alice", PASSWORD, Some("desk")).await;
    let (mut bob, _) = SmClient::start(&server, "bob", false).await;
    bob.ack().await;
    let many = bodies(12, "m");
    send_all(&mut alice, &jid("bob"), &many).await;

    let mut got = Vec::new();
    let mut unacked = 0;
    tokio::time::timeout(PATIENCE, async {
        while got.len() < many.len() {
            let el = bob.next().await;
            if is_stanza(&el) {
                unacked += 1;
                assert!(unacked <= 5, "more than the limit unacknowledged");
            }
            got.extend(body(&el));
            if el.is("r", NS_SM) {
                bob.ack().await;
                unacked = 0;
            }
        }
    })
    .await
    .expect("every message arrives as acknowledgements come");
    assert_eq!(got, many);
}

#[tokio::test]
async fn a_hibernating_session_over_the_limit_ends_and_nothing_is_lost() {
    let server = server_with(&["alice", "bob"], limits(|l| l.sm_max_unacked = 4)).await;
    let mut alice = server.login("alice", PASSWORD, Some("desk")).await;
    let (mut bob, id) = SmClient::start(&server, "bob", true).await;
    bob.ack().await;
    bob.sync().await;
    drop(bob);
    let many = bodies(6, "m");
    send_all(&mut alice, &jid("bob"), &many).await;
    wait_until_not_resumable(&server, "bob").await;
    let (_late, answer) = resume(&server, "bob", &id.unwrap(), 0).await;
    assert!(answer.is("failed", NS_SM), "{answer}");

    let mut bob = server.login("bob", PASSWORD, Some("phone")).await;
    bob.send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    assert_eq!(all_bodies(&mut bob, many.len()).await, many);
}

#[tokio::test]
async fn bad_resumptions_fail_and_leave_the_client_free_to_bind() {
    let server = server_with(&["alice", "bob"], TestOptions::default()).await;
    let (bob, id) = SmClient::start(&server, "bob", true).await;
    let id = id.unwrap();

    // Unknown id.
    let (mut client, answer) = resume(&server, "bob", "0123456789abcdef", 0).await;
    assert!(answer.is("failed", NS_SM) && answer.has_child("item-not-found", ns::STANZA_ERRORS));
    client.bind(Some("other")).await.unwrap();

    // Another account's session is not found either, and stays bob's.
    let (_alice, answer) = resume(&server, "alice", &id, 0).await;
    assert!(answer.is("failed", NS_SM) && answer.has_child("item-not-found", ns::STANZA_ERRORS));
    let bob_phone = server
        .server()
        .sessions
        .sessions_of("bob")
        .into_iter()
        .find(|s| s.jid.resource().as_str() == "phone");
    assert!(bob_phone.is_some_and(|s| !s.is_closing()), "still bob's");

    // A count beyond what was sent: the session cannot go on; it ends.
    let (_client, answer) = resume(&server, "bob", &id, 1000).await;
    assert!(answer.is("failed", NS_SM), "{answer}");
    assert!(answer.has_child("handled-count-too-high", NS_SM));
    drop(bob);

    // Resuming after bind is refused.
    let mut bound = server.login("alice", PASSWORD, Some("x")).await;
    bound
        .send(
            &sm("resume")
                .with_attr("previd", id.as_str())
                .with_attr("h", "0"),
        )
        .await
        .unwrap();
    let answer = bound.next_element().await.unwrap();
    assert!(
        answer.is("failed", NS_SM) && answer.has_child("unexpected-request", ns::STANZA_ERRORS)
    );
}

#[tokio::test]
async fn an_acknowledgement_of_stanzas_never_sent_ends_the_stream() {
    let server = server_with(&["bob"], TestOptions::default()).await;
    let (mut bob, _) = SmClient::start(&server, "bob", true).await;
    bob.client
        .send(&sm("a").with_attr("h", "99"))
        .await
        .unwrap();
    assert_eq!(
        bob.client.ending().await.unwrap(),
        Ending::StreamError("undefined-condition".into())
    );
    // A clean end is not a lost connection: the session is gone at once, not hibernating.
    wait_until_not_resumable(&server, "bob").await;
}

#[tokio::test]
async fn a_clean_close_ends_the_session_with_a_last_count() {
    let server = server_with(&["bob"], TestOptions::default()).await;
    let (mut bob, id) = SmClient::start(&server, "bob", true).await;
    bob.client.send_raw(b"</stream:stream>").await.unwrap();
    let last = bob.next().await;
    assert!(last.is("a", NS_SM), "{last}");
    assert_eq!(last.attr("h"), Some("2"));
    wait_until_not_resumable(&server, "bob").await;
    let (_c, answer) = resume(&server, "bob", &id.unwrap(), 0).await;
    assert!(answer.is("failed", NS_SM), "{answer}");
}

#[tokio::test]
async fn a_client_that_answers_no_acknowledgement_request_for_an_idle_period_is_taken_as_lost() {
    let server = server_with(
        &["bob"],
        limits(|l| l.c2s_idle_timeout = Duration::from_millis(300)),
    )
    .await;
    let (mut bob, id) = SmClient::start(&server, "bob", true).await;
    // Idle: instead of a whitespace keep-alive, a stream-managed client is asked for an acknowledgement...
    let r = tokio::time::timeout(PATIENCE, bob.next()).await.unwrap();
    assert!(r.is("r", NS_SM), "{r}");
    // ...and one that does not answer by the next idle period is gone: the connection is dropped without a stream
    // error, and the session hibernates, ready to be resumed.
    assert_eq!(bob.client.ending().await.unwrap(), Ending::Closed);
    let (_bob, answer) = resume(&server, "bob", &id.unwrap(), bob.handled).await;
    assert!(answer.is("resumed", NS_SM), "{answer}");
}

#[tokio::test]
async fn copies_made_for_a_session_are_not_handed_on_when_it_ends() {
    let server = server_with(
        &["alice", "bob"],
        limits(|l| l.sm_hibernation = Duration::from_millis(300)),
    )
    .await;
    let mut alice = server.login("alice", PASSWORD, Some("desk")).await;
    let mut bob_desk = server.login("bob", PASSWORD, Some("desk")).await;
    bob_desk
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    let (mut bob, _) = SmClient::start(&server, "bob", true).await;
    alice
        .send(&chat("bob@rookery.test/phone", "m0"))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.read_bodies(&bodies(1, "m")).await;
    bob.ack().await;
    // An archive result is written to the phone and never acknowledged before its connection dies.
    let query = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "mam")
        .with_child(Element::new("query", "urn:xmpp:mam:2").with_attr("queryid", "q"));
    bob.client.send(&query).await.unwrap();
    bob.client
        .next_matching(|e| e.attr("id") == Some("mam"))
        .await
        .unwrap();
    bob_desk.sync().await.unwrap();
    drop(bob);
    tokio::time::timeout(PATIENCE, async {
        while server.server().sessions.sessions_of("bob").len() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the phone's session ended");
    // The result was a copy for the phone only: the desk, where a message would have been handed on, gets nothing.
    let arrived = bob_desk.sync().await.unwrap();
    assert!(arrived.iter().all(|e| e.name() != "message"), "{arrived:?}");
}
