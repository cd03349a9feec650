//! XEP-0313 message archive (with XEP-0359 stanza ids and XEP-0059 paging) against the real server: what is
//! archived and where, the stanza ids recipients see, queries with every filter and paging both ways, the errors
//! for bad input, preferences, metadata and retention.

use std::sync::atomic::{AtomicU64, Ordering};

use rookery_core::{Origin, Server};
use rookery_proto::StanzaKind;
use rookery_store::{ArchiveQuery, NewArchived, QueryOutcome};
use rookery_test_support::{TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_SID: &str = "urn:xmpp:sid:0";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_DATA: &str = "jabber:x:data";
const NS_HINTS: &str = "urn:xmpp:hints";
const NS_CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";

fn jid(user: &str) -> String {
    format!("{user}@rookery.test")
}

fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("q{}", NEXT.fetch_add(1, Ordering::Relaxed))
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

/// Logs in and sends initial presence, as a client does.
async fn online(server: &TestServer, user: &str, resource: &str) -> TestClient {
    let mut client = server.login(user, PASSWORD, Some(resource)).await;
    client
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    client.sync().await.unwrap();
    client
}

fn chat(to: &str, body: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", body)
        .with_child(Element::new("body", ns::CLIENT).with_text(body))
}

fn condition(stanza: &Element) -> Option<String> {
    let error = stanza.get_child("error", ns::CLIENT)?;
    error
        .children()
        .find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// A form field with values.
fn field(var: &str, values: &[&str]) -> Element {
    let mut f = Element::new("field", NS_DATA).with_attr("var", var);
    for v in values {
        f.append_child(Element::new("value", NS_DATA).with_text(*v));
    }
    f
}

/// A MAM query: form fields, then RSM children (`("max", "10")`, `("before", "")`, ...).
fn mam_query(fields: &[(&str, &[&str])], rsm: &[(&str, &str)]) -> Element {
    let mut query = Element::new("query", NS_MAM).with_attr("queryid", "the-query");
    if !fields.is_empty() {
        let mut form = Element::new("x", NS_DATA)
            .with_attr("type", "submit")
            .with_child(field("FORM_TYPE", &[NS_MAM]));
        for (var, values) in fields {
            form.append_child(field(var, values));
        }
        query.append_child(form);
    }
    if !rsm.is_empty() {
        let mut set = Element::new("set", NS_RSM);
        for (name, value) in rsm {
            set.append_child(Element::new(*name, NS_RSM).with_text(*value));
        }
        query.append_child(set);
    }
    query
}

/// The answer to a query: the forwarded messages in the order they came, and the IQ reply.
struct Answer {
    results: Vec<Element>,
    reply: Element,
}

impl Answer {
    /// The bodies of the archived messages.
    fn bodies(&self) -> Vec<String> {
        self.results
            .iter()
            .map(|m| {
                archived_message(m)
                    .get_child("body", ns::CLIENT)
                    .map(Element::text)
                    .unwrap_or_default()
            })
            .collect()
    }

    fn ids(&self) -> Vec<String> {
        self.results
            .iter()
            .map(|m| {
                m.get_child("result", NS_MAM)
                    .and_then(|r| r.attr("id"))
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn fin(&self) -> &Element {
        self.reply
            .get_child("fin", NS_MAM)
            .expect("a <fin/> in the reply")
    }

    fn complete(&self) -> bool {
        self.fin().attr("complete") == Some("true")
    }

    fn rsm(&self, name: &str) -> Option<String> {
        self.fin()
            .get_child("set", NS_RSM)?
            .get_child(name, NS_RSM)
            .map(Element::text)
    }
}

fn archived_message(result: &Element) -> &Element {
    result
        .get_child("result", NS_MAM)
        .and_then(|r| r.get_child("forwarded", NS_FORWARD))
        .and_then(|f| f.get_child("message", ns::CLIENT))
        .expect("a forwarded message")
}

/// Sends `query` (to `to`, default one's own account) and collects the answer.
async fn ask(client: &mut TestClient, query: Element, to: Option<&str>) -> Answer {
    let id = next_id();
    let mut iq = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", id.as_str())
        .with_child(query);
    if let Some(to) = to {
        iq.set_attr("to", to);
    }
    client.send(&iq).await.unwrap();
    let mut results = Vec::new();
    loop {
        let el = client.next_element().await.unwrap();
        if el.name() == "iq" && el.attr("id") == Some(id.as_str()) {
            return Answer { results, reply: el };
        }
        if el.name() == "message" && el.has_child("result", NS_MAM) {
            assert_eq!(
                el.get_child("result", NS_MAM).unwrap().attr("queryid"),
                Some("the-query")
            );
            results.push(el);
        }
    }
}

async fn query_ok(client: &mut TestClient, query: Element) -> Answer {
    let answer = ask(client, query, None).await;
    assert_eq!(
        answer.reply.attr("type"),
        Some("result"),
        "{:?}",
        answer.reply
    );
    answer
}

async fn query_error(client: &mut TestClient, query: Element) -> String {
    let answer = ask(client, query, None).await;
    assert!(answer.results.is_empty());
    assert_eq!(answer.reply.attr("type"), Some("error"));
    condition(&answer.reply).unwrap()
}

async fn iq(client: &mut TestClient, kind: &str, payload: Element) -> Element {
    let iq = Element::new("iq", ns::CLIENT)
        .with_attr("type", kind)
        .with_attr("id", next_id())
        .with_child(payload);
    client.iq(&iq).await.unwrap()
}

/// Archives `n` messages for `owner` with `with`, numbered from `from`, a second apart from `first_millis`.
async fn seed(server: &Server, owner: &str, with: &str, from: usize, n: usize, first_millis: i64) {
    let stanzas: Vec<String> = (from..from + n)
        .map(|i| {
            format!("<message xmlns='jabber:client' type='chat' from='{with}/x' to='{owner}@rookery.test'><body>{i}</body></message>")
        })
        .collect();
    let rows: Vec<NewArchived<'_>> = stanzas
        .iter()
        .enumerate()
        .map(|(i, stanza)| NewArchived {
            owner,
            with_bare: with,
            with_resource: Some("x"),
            stanza,
            archived_at: first_millis + 1000 * i64::try_from(i).unwrap(),
        })
        .collect();
    server.store.archive().append_all(&rows).await.unwrap();
}

/// An hour ago, in whole seconds: seeded messages are recent, so that the retention job (which runs once when the
/// server starts) leaves them alone.
fn base() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (i64::try_from(now).unwrap() - 3600) * 1000
}

/// A XEP-0082 date-time for unix milliseconds, in UTC or at an offset of `hours`.
fn stamp(millis: i64, hours: i8) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(hours, 0, 0).unwrap());
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

async fn archive_size(server: &Server, owner: &str) -> usize {
    let all = ArchiveQuery {
        limit: 10_000,
        ..ArchiveQuery::default()
    };
    match server.store.archive().query(owner, &all).await.unwrap() {
        QueryOutcome::Found(found) => found.len(),
        QueryOutcome::UnknownId(_) => unreachable!(),
    }
}

#[tokio::test]
async fn the_account_advertises_the_archive() {
    let server = server(&["alice"]).await;
    let mut alice = online(&server, "alice", "phone").await;
    let info = iq(&mut alice, "get", Element::new("query", ns::DISCO_INFO)).await;
    let features: Vec<&str> = info
        .get_child("query", ns::DISCO_INFO)
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    for feature in [NS_MAM, "urn:xmpp:mam:2#extended", NS_SID] {
        assert!(features.contains(&feature), "{features:?}");
    }
    // The query form lists the extended fields.
    let form = iq(&mut alice, "get", Element::new("query", NS_MAM)).await;
    let vars: Vec<&str> = form
        .get_child("query", NS_MAM)
        .and_then(|q| q.get_child("x", NS_DATA))
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    assert_eq!(
        vars,
        [
            "FORM_TYPE",
            "with",
            "start",
            "end",
            "before-id",
            "after-id",
            "ids"
        ]
    );
}

#[tokio::test]
async fn both_sides_archive_and_the_recipient_sees_its_own_stanza_id_only() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = online(&server, "alice", "phone").await;
    let mut bob = online(&server, "bob", "laptop").await;

    let mut message = chat(&jid("bob"), "hello");
    // A forged id in bob's name goes; one by somebody else, and the sender's origin id, stay.
    for (by, id) in [
        (jid("bob"), "forged"),
        ("elsewhere.example".to_owned(), "theirs"),
    ] {
        message.append_child(
            Element::new("stanza-id", NS_SID)
                .with_attr("by", by)
                .with_attr("id", id),
        );
    }
    message.append_child(Element::new("origin-id", NS_SID).with_attr("id", "origin-1"));
    alice.send(&message).await.unwrap();
    alice.sync().await.unwrap();

    let received = bob.next_matching(|e| e.name() == "message").await.unwrap();
    let ids: Vec<(&str, &str)> = received
        .children()
        .filter(|c| c.is("stanza-id", NS_SID))
        .map(|c| (c.attr("by").unwrap(), c.attr("id").unwrap()))
        .collect();
    assert_eq!(ids.len(), 2, "{received:?}");
    assert_eq!(ids[0], ("elsewhere.example", "theirs"));
    let bob_jid = jid("bob");
    assert_eq!(ids[1].0, bob_jid, "alice's own archive id must not leak");
    assert_ne!(ids[1].1, "forged");
    assert_eq!(
        received
            .get_child("origin-id", NS_SID)
            .and_then(|o| o.attr("id")),
        Some("origin-1")
    );

    // Bob's archive: the same id, the message from alice.
    let answer = query_ok(&mut bob, mam_query(&[], &[])).await;
    assert_eq!(answer.bodies(), ["hello"]);
    assert_eq!(answer.ids(), [ids[1].1]);
    assert!(answer.complete());
    assert_eq!(answer.rsm("count").as_deref(), Some("1"));
    let archived = archived_message(&answer.results[0]);
    assert_eq!(archived.attr("from"), Some("alice@rookery.test/phone"));
    // The archived copy does not carry the stanza id that was forged in bob's name.
    assert!(
        !archived
            .children()
            .any(|c| c.is("stanza-id", NS_SID) && c.attr("id") == Some("forged"))
    );
    let result = &answer.results[0];
    assert_eq!(result.attr("to"), Some("bob@rookery.test/laptop"));
    assert_eq!(result.attr("from"), Some("bob@rookery.test"));
    let delay = answer.results[0]
        .get_child("result", NS_MAM)
        .and_then(|r| r.get_child("forwarded", NS_FORWARD))
        .and_then(|f| f.get_child("delay", "urn:xmpp:delay"))
        .and_then(|d| d.attr("stamp"))
        .unwrap();
    assert!(
        time::OffsetDateTime::parse(delay, &time::format_description::well_known::Rfc3339).is_ok()
    );

    // Alice's archive: her sent message.
    let answer = query_ok(&mut alice, mam_query(&[], &[])).await;
    assert_eq!(answer.bodies(), ["hello"]);
    assert_eq!(
        archived_message(&answer.results[0]).attr("to"),
        Some("bob@rookery.test")
    );
}

#[tokio::test]
async fn what_is_archived_follows_prosodys_rules() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = online(&server, "alice", "phone").await;
    let mut bob = online(&server, "bob", "laptop").await;
    let to = jid("bob");
    let with_child = |kind: &str, id: &str, child: Element| {
        Element::new("message", ns::CLIENT)
            .with_attr("to", to.as_str())
            .with_attr("type", kind)
            .with_attr("id", id)
            .with_child(child)
    };
    let body = |text: &str| Element::new("body", ns::CLIENT).with_text(text);
    let not_archived = [
        with_child("chat", "typing", Element::new("composing", NS_CHAT_STATES)),
        with_child("headline", "headline", body("news")),
        with_child("groupchat", "groupchat", body("room")),
        with_child("error", "error", body("oops")),
        with_child("chat", "no-store", body("secret"))
            .with_child(Element::new("no-store", NS_HINTS)),
        with_child("chat", "no-permanent-store", body("fleeting"))
            .with_child(Element::new("no-permanent-store", NS_HINTS)),
        with_child("chat", "nothing", Element::new("x", "urn:example:unknown")),
    ];
    for message in &not_archived {
        alice.send(message).await.unwrap();
    }
    let archived = [
        with_child("chat", "body", body("with a state"))
            .with_child(Element::new("active", NS_CHAT_STATES)),
        with_child(
            "normal",
            "receipt",
            Element::new("received", "urn:xmpp:receipts"),
        ),
        with_child("chat", "forced", Element::new("x", "urn:example:unknown"))
            .with_child(Element::new("store", NS_HINTS)),
        with_child(
            "chat",
            "marker",
            Element::new("displayed", "urn:xmpp:chat-markers:0"),
        ),
        with_child(
            "chat",
            "encrypted",
            Element::new("encryption", "urn:xmpp:eme:0"),
        ),
    ];
    for message in &archived {
        alice.send(message).await.unwrap();
    }
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    for client in [&mut alice, &mut bob] {
        let answer = query_ok(client, mam_query(&[], &[])).await;
        let ids: Vec<&str> = answer
            .results
            .iter()
            .map(|r| archived_message(r).attr("id").unwrap())
            .collect();
        assert_eq!(ids, ["body", "receipt", "forced", "marker", "encrypted"]);
        // Chat states are not history.
        assert!(
            !archived_message(&answer.results[0])
                .children()
                .any(|c| c.ns() == NS_CHAT_STATES)
        );
    }
}

#[tokio::test]
async fn messages_for_an_offline_account_are_archived_once() {
    let server = server(&["alice", "bob"]).await;
    let mut alice = online(&server, "alice", "phone").await;
    alice.send(&chat(&jid("bob"), "while away")).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(archive_size(server.server(), "bob").await, 1);
    // Offline delivery hands it over with the stanza id it got at delivery; it is not archived again.
    let mut bob = online(&server, "bob", "laptop").await;
    let received = bob.next_matching(|e| e.name() == "message").await.unwrap();
    let answer = query_ok(&mut bob, mam_query(&[], &[])).await;
    assert_eq!(answer.bodies(), ["while away"]);
    assert_eq!(
        received
            .get_child("stanza-id", NS_SID)
            .and_then(|s| s.attr("id")),
        Some(answer.ids()[0].as_str())
    );
}

#[tokio::test]
async fn a_rerouted_message_is_not_archived_again() {
    let server = server(&["alice", "bob"]).await;
    let mut bob = online(&server, "bob", "laptop").await;
    let message = chat(&jid("bob"), "again").with_attr("from", "alice@rookery.test/phone");
    let from = jid::Jid::new("alice@rookery.test/phone").unwrap();
    let to = jid::Jid::new(&jid("bob")).unwrap();
    server
        .server()
        .route(
            StanzaKind::Message,
            message,
            from,
            Some(to),
            Origin::Rerouted,
        )
        .await;
    let received = bob.next_matching(|e| e.name() == "message").await.unwrap();
    assert!(!received.has_child("stanza-id", NS_SID));
    assert_eq!(archive_size(server.server(), "bob").await, 0);
}

#[tokio::test]
async fn a_message_to_ones_own_account_is_archived_once() {
    let server = server(&["alice"]).await;
    let mut phone = online(&server, "alice", "phone").await;
    let mut laptop = online(&server, "alice", "laptop").await;
    phone
        .send(&chat(&jid("alice"), "note to self"))
        .await
        .unwrap();
    phone.sync().await.unwrap();
    laptop.sync().await.unwrap();
    let answer = query_ok(&mut laptop, mam_query(&[], &[])).await;
    assert_eq!(answer.bodies(), ["note to self"]);
    // To another of one's own resources: once too.
    phone
        .send(&chat("alice@rookery.test/laptop", "to the laptop"))
        .await
        .unwrap();
    phone.sync().await.unwrap();
    let answer = query_ok(&mut laptop, mam_query(&[], &[])).await;
    assert_eq!(answer.bodies(), ["note to self", "to the laptop"]);
}

#[tokio::test]
async fn paging_forwards_and_backwards() {
    let server = server(&["alice"]).await;
    let base = base();
    seed(server.server(), "alice", "bob@rookery.test", 0, 25, base).await;
    let mut alice = online(&server, "alice", "phone").await;

    // The default page is 20, oldest first.
    let first = query_ok(&mut alice, mam_query(&[], &[])).await;
    assert_eq!(
        first.bodies(),
        numbers(0..20),
        "{}",
        first.reply.to_xml_string()
    );
    assert!(!first.complete());
    assert_eq!(first.rsm("count"), None, "not counted when it would cost");
    let ids = first.ids();
    assert_eq!(first.rsm("first"), Some(ids[0].clone()));
    assert_eq!(first.rsm("last"), Some(ids[19].clone()));

    // Forwards from the last of a page.
    let next = query_ok(
        &mut alice,
        mam_query(&[], &[("max", "10"), ("after", &ids[19])]),
    )
    .await;
    assert_eq!(next.bodies(), numbers(20..25));
    assert!(next.complete());

    // The last page (empty <before/>), in chronological order, then the one before it.
    let last = query_ok(&mut alice, mam_query(&[], &[("max", "10"), ("before", "")])).await;
    assert_eq!(last.bodies(), numbers(15..25));
    assert!(!last.complete());
    let last_ids = last.ids();
    assert_eq!(last.rsm("first"), Some(last_ids[0].clone()));
    assert_eq!(last.rsm("last"), Some(last_ids[9].clone()));
    let previous = query_ok(
        &mut alice,
        mam_query(&[], &[("max", "10"), ("before", &last_ids[0])]),
    )
    .await;
    assert_eq!(previous.bodies(), numbers(5..15));
    let earliest = query_ok(
        &mut alice,
        mam_query(&[], &[("max", "10"), ("before", &previous.ids()[0])]),
    )
    .await;
    assert_eq!(earliest.bodies(), numbers(0..5));
    assert!(earliest.complete());

    // flip-page: the page comes newest first.
    let mut flipped = mam_query(&[], &[("max", "3"), ("before", "")]);
    flipped.append_child(Element::new("flip-page", NS_MAM));
    let flipped = query_ok(&mut alice, flipped).await;
    assert_eq!(flipped.bodies(), ["24", "23", "22"]);
    let mut flipped_forward = mam_query(&[], &[("max", "3")]);
    flipped_forward.append_child(Element::new("flip-page", NS_MAM));
    let flipped_forward = query_ok(&mut alice, flipped_forward).await;
    assert_eq!(flipped_forward.bodies(), ["2", "1", "0"]);

    // A page of nothing, and the count when the page is the whole result.
    let none = query_ok(&mut alice, mam_query(&[], &[("max", "0")])).await;
    assert!(none.results.is_empty());
    let all = query_ok(
        &mut alice,
        mam_query(
            &[("start", &[stamp(base + 10_000, 0).as_str()])],
            &[("max", "50")],
        ),
    )
    .await;
    assert_eq!(all.bodies(), numbers(10..25));
    assert!(all.complete());
    assert_eq!(all.rsm("count").as_deref(), Some("15"));
}

#[tokio::test]
async fn a_huge_max_is_clamped_to_fifty() {
    let server = server(&["alice"]).await;
    seed(server.server(), "alice", "bob@rookery.test", 0, 60, base()).await;
    let mut alice = online(&server, "alice", "phone").await;
    let answer = query_ok(&mut alice, mam_query(&[], &[("max", "1000000")])).await;
    assert_eq!(answer.bodies(), numbers(0..50));
    assert!(!answer.complete());
    let answer = query_ok(
        &mut alice,
        mam_query(&[], &[("max", "99999999999999999999999")]),
    )
    .await;
    // Too big for any integer, still a number: clamped too.
    assert_eq!(answer.bodies(), numbers(0..50));
}

#[tokio::test]
async fn filters_with_dates_and_ids() {
    let server = server(&["alice"]).await;
    let s = server.server();
    // bob: 0..10 a second apart from `base`; carol: 10..20 from `base` + 1000 s.
    let base = base();
    seed(s, "alice", "bob@rookery.test", 0, 10, base).await;
    seed(s, "alice", "carol@rookery.test", 10, 10, base + 1_000_000).await;
    let mut alice = online(&server, "alice", "phone").await;

    let with_carol = query_ok(
        &mut alice,
        mam_query(&[("with", &["Carol@rookery.test"])], &[]),
    )
    .await;
    assert_eq!(with_carol.bodies(), numbers(10..20));
    let with_full = query_ok(
        &mut alice,
        mam_query(&[("with", &["carol@rookery.test/x"])], &[("max", "2")]),
    )
    .await;
    assert_eq!(with_full.bodies(), numbers(10..12));
    let other_resource = query_ok(
        &mut alice,
        mam_query(&[("with", &["carol@rookery.test/y"])], &[]),
    )
    .await;
    assert!(other_resource.results.is_empty());
    assert_eq!(other_resource.rsm("count").as_deref(), Some("0"));

    // Both ends are inclusive; any offset is understood.
    let (start, end) = (stamp(base + 3000, 0), stamp(base + 1_001_000, 1));
    let range = query_ok(
        &mut alice,
        mam_query(
            &[("start", &[start.as_str()]), ("end", &[end.as_str()])],
            &[],
        ),
    )
    .await;
    assert_eq!(range.bodies(), numbers(3..12));
    let just_after = stamp(base + 3001, 0);
    assert!(just_after.ends_with(".001Z"), "{just_after}");
    let fractional = query_ok(
        &mut alice,
        mam_query(&[("start", &[just_after.as_str()])], &[("max", "1")]),
    )
    .await;
    assert_eq!(fractional.bodies(), ["4"]);

    // The extended fields: after-id, before-id, ids.
    let all = query_ok(&mut alice, mam_query(&[], &[("max", "50")])).await;
    let ids = all.ids();
    let between = query_ok(
        &mut alice,
        mam_query(
            &[
                ("after-id", &[ids[2].as_str()]),
                ("before-id", &[ids[6].as_str()]),
            ],
            &[],
        ),
    )
    .await;
    assert_eq!(between.bodies(), numbers(3..6));
    let chosen = query_ok(
        &mut alice,
        mam_query(&[("ids", &[ids[15].as_str(), ids[1].as_str()])], &[]),
    )
    .await;
    assert_eq!(chosen.bodies(), ["1", "15"]);
    // Blank fields are no filter.
    let blank = query_ok(
        &mut alice,
        mam_query(&[("with", &[""]), ("start", &[])], &[("max", "50")]),
    )
    .await;
    assert_eq!(blank.bodies().len(), 20);
}

#[tokio::test]
async fn bad_queries_get_errors() {
    let server = server(&["alice", "bob"]).await;
    seed(server.server(), "bob", "alice@rookery.test", 0, 3, base()).await;
    let mut alice = online(&server, "alice", "phone").await;
    let bobs_ids = {
        let mut bob = online(&server, "bob", "laptop").await;
        query_ok(&mut bob, mam_query(&[], &[])).await.ids()
    };
    let cases: Vec<(Element, &str)> = vec![
        (mam_query(&[("start", &["yesterday"])], &[]), "bad-request"),
        (
            mam_query(&[("end", &["2024-13-45T00:00:00Z"])], &[]),
            "bad-request",
        ),
        (mam_query(&[("start", &["2024-01-01"])], &[]), "bad-request"),
        (mam_query(&[("with", &["@@invalid"])], &[]), "bad-request"),
        (mam_query(&[("fulltext", &["hello"])], &[]), "bad-request"),
        (mam_query(&[], &[("max", "-1")]), "bad-request"),
        (mam_query(&[], &[("max", "lots")]), "bad-request"),
        (mam_query(&[], &[("index", "3")]), "feature-not-implemented"),
        (mam_query(&[], &[("after", "no-such-id")]), "item-not-found"),
        (
            mam_query(&[], &[("before", bobs_ids[1].as_str())]),
            "item-not-found",
        ),
        (
            mam_query(&[("after-id", &[bobs_ids[0].as_str()])], &[]),
            "item-not-found",
        ),
    ];
    for (query, expected) in cases {
        let shown = query.to_xml_string();
        assert_eq!(query_error(&mut alice, query).await, expected, "{shown}");
    }
    // A form of another type.
    let mut other_form = Element::new("query", NS_MAM);
    other_form.append_child(
        Element::new("x", NS_DATA)
            .with_attr("type", "submit")
            .with_child(field("FORM_TYPE", &["urn:example:other"])),
    );
    assert_eq!(query_error(&mut alice, other_form).await, "bad-request");
    // Too many ids.
    let many: Vec<String> = (0..51).map(|i| format!("id{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        query_error(&mut alice, mam_query(&[("ids", &many)], &[])).await,
        "bad-request"
    );
    // Bob's archive is not alice's to read (as Prosody: nothing answers queries to another account).
    let answer = ask(&mut alice, mam_query(&[], &[]), Some(&jid("bob"))).await;
    assert!(answer.results.is_empty());
    assert_eq!(
        condition(&answer.reply).as_deref(),
        Some("service-unavailable")
    );
    // Still connected, and still served.
    assert!(query_ok(&mut alice, mam_query(&[], &[])).await.complete());
}

#[tokio::test]
async fn a_page_of_large_messages_stops_at_the_queue_budget() {
    let options = TestOptions {
        limits: Some(Box::new(|limits| limits.session_queue_bytes = 64 * 1024)),
        ..TestOptions::default()
    };
    let server = server_with(&["alice"], options).await;
    let big = "x".repeat(20 * 1024);
    let stanzas: Vec<String> = (0..10)
        .map(|i| {
            format!("<message xmlns='jabber:client' type='chat'><body>{i}{big}</body></message>")
        })
        .collect();
    let rows: Vec<NewArchived<'_>> = stanzas
        .iter()
        .enumerate()
        .map(|(i, stanza)| NewArchived {
            owner: "alice",
            with_bare: "bob@rookery.test",
            with_resource: None,
            stanza,
            archived_at: base() + i64::try_from(i).unwrap(),
        })
        .collect();
    server
        .server()
        .store
        .archive()
        .append_all(&rows)
        .await
        .unwrap();
    let mut alice = online(&server, "alice", "phone").await;
    let first = query_ok(&mut alice, mam_query(&[], &[("max", "10")])).await;
    assert_eq!(first.results.len(), 3, "64 KiB holds three 20 KiB messages");
    assert!(!first.complete());
    let last = first.ids()[2].clone();
    let rest = query_ok(
        &mut alice,
        mam_query(&[], &[("max", "10"), ("after", &last)]),
    )
    .await;
    assert_eq!(rest.results.len(), 3);
}

#[tokio::test]
async fn preferences_decide_what_is_archived() {
    let server = server(&["alice", "bob", "carol", "dave"]).await;
    let mut alice = online(&server, "alice", "phone").await;
    let mut bob = online(&server, "bob", "b").await;
    let mut carol = online(&server, "carol", "c").await;
    let mut dave = online(&server, "dave", "d").await;

    let get = iq(&mut alice, "get", Element::new("prefs", NS_MAM)).await;
    let prefs = get.get_child("prefs", NS_MAM).unwrap();
    assert_eq!(prefs.attr("default"), Some("always"));

    let set = Element::new("prefs", NS_MAM)
        .with_attr("default", "roster")
        .with_child(
            Element::new("always", NS_MAM)
                .with_child(Element::new("jid", NS_MAM).with_text("Bob@rookery.test")),
        )
        .with_child(
            Element::new("never", NS_MAM)
                .with_child(Element::new("jid", NS_MAM).with_text("carol@rookery.test")),
        );
    let reply = iq(&mut alice, "set", set).await;
    let stored = reply.get_child("prefs", NS_MAM).unwrap();
    assert_eq!(stored.attr("default"), Some("roster"));
    let listed = |name: &str| -> Vec<String> {
        stored
            .get_child(name, NS_MAM)
            .unwrap()
            .children()
            .map(Element::text)
            .collect()
    };
    assert_eq!(listed("always"), ["bob@rookery.test"]);
    assert_eq!(listed("never"), ["carol@rookery.test"]);

    // Dave is in the roster: archived by the default; carol is listed as never, bob as always.
    let roster_set = Element::new("query", "jabber:iq:roster")
        .with_child(Element::new("item", "jabber:iq:roster").with_attr("jid", jid("dave")));
    iq(&mut alice, "set", roster_set).await;
    for (client, body) in [
        (&mut bob, "from bob"),
        (&mut carol, "from carol"),
        (&mut dave, "from dave"),
    ] {
        client.send(&chat(&jid("alice"), body)).await.unwrap();
        client.sync().await.unwrap();
    }
    alice.sync().await.unwrap();
    let answer = query_ok(&mut alice, mam_query(&[], &[])).await;
    assert_eq!(answer.bodies(), ["from bob", "from dave"]);

    // Never by default.
    let never = Element::new("prefs", NS_MAM).with_attr("default", "never");
    iq(&mut alice, "set", never).await;
    dave.send(&chat(&jid("alice"), "unarchived")).await.unwrap();
    dave.sync().await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        query_ok(&mut alice, mam_query(&[], &[]))
            .await
            .results
            .len(),
        2
    );

    // Bad preferences change nothing.
    for (bad, expected) in [
        (
            Element::new("prefs", NS_MAM).with_attr("default", "sometimes"),
            "bad-request",
        ),
        (
            Element::new("prefs", NS_MAM)
                .with_attr("default", "always")
                .with_child(
                    Element::new("always", NS_MAM)
                        .with_child(Element::new("jid", NS_MAM).with_text("@bad@")),
                ),
            "jid-malformed",
        ),
    ] {
        let reply = iq(&mut alice, "set", bad).await;
        assert_eq!(condition(&reply).as_deref(), Some(expected));
    }
    let get = iq(&mut alice, "get", Element::new("prefs", NS_MAM)).await;
    assert_eq!(
        get.get_child("prefs", NS_MAM).unwrap().attr("default"),
        Some("never")
    );
}

#[tokio::test]
async fn too_many_preference_jids_are_refused() {
    let options = TestOptions {
        limits: Some(Box::new(|limits| limits.archive_prefs_max_jids = 2)),
        ..TestOptions::default()
    };
    let server = server_with(&["alice"], options).await;
    let mut alice = online(&server, "alice", "phone").await;
    let mut always = Element::new("always", NS_MAM);
    for who in ["a", "b", "c"] {
        always.append_child(Element::new("jid", NS_MAM).with_text(jid(who)));
    }
    let set = Element::new("prefs", NS_MAM)
        .with_attr("default", "always")
        .with_child(always);
    let reply = iq(&mut alice, "set", set).await;
    assert_eq!(condition(&reply).as_deref(), Some("policy-violation"));
}

#[tokio::test]
async fn metadata_names_the_first_and_last_message() {
    let server = server(&["alice"]).await;
    let mut alice = online(&server, "alice", "phone").await;
    let empty = iq(&mut alice, "get", Element::new("metadata", NS_MAM)).await;
    assert_eq!(
        empty
            .get_child("metadata", NS_MAM)
            .unwrap()
            .children()
            .count(),
        0
    );
    let base = base();
    seed(server.server(), "alice", "bob@rookery.test", 0, 5, base).await;
    let all = query_ok(&mut alice, mam_query(&[], &[])).await.ids();
    let reply = iq(&mut alice, "get", Element::new("metadata", NS_MAM)).await;
    let metadata = reply.get_child("metadata", NS_MAM).unwrap();
    let start = metadata.get_child("start", NS_MAM).unwrap();
    let end = metadata.get_child("end", NS_MAM).unwrap();
    assert_eq!(start.attr("id"), Some(all[0].as_str()));
    assert_eq!(start.attr("timestamp"), Some(stamp(base, 0).as_str()));
    assert_eq!(end.attr("id"), Some(all[4].as_str()));
    assert_eq!(end.attr("timestamp"), Some(stamp(base + 4000, 0).as_str()));
}

#[tokio::test]
async fn the_retention_job_deletes_old_messages() {
    let options = TestOptions {
        vars: vec![("SNIKKET_RETENTION_DAYS".into(), "2".into())],
        ..TestOptions::default()
    };
    let server = server_with(&["alice", "bob"], options).await;
    let s = server.server();
    let day: i64 = 86_400_000;
    // Recent enough that the pass the job made when the server started did not touch them.
    let now = base() + 3_600_000;
    seed(s, "alice", "bob@rookery.test", 0, 3, now - 3 * day).await;
    seed(s, "alice", "bob@rookery.test", 3, 2, now - day).await;
    seed(s, "bob", "alice@rookery.test", 5, 1, now - 2 * day - 1).await;
    let deleted = rookery_modules::mam::expire_archives(s, now).await;
    assert_eq!(deleted, 3 + 1);
    let mut alice = online(&server, "alice", "phone").await;
    let answer = query_ok(&mut alice, mam_query(&[], &[])).await;
    assert_eq!(answer.bodies(), ["3", "4"]);
    assert_eq!(archive_size(s, "bob").await, 0);
}
