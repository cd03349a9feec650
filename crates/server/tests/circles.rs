//! Snikket's circles (`spec/snikket-compat.md` §6) and the last-administrator rule (§7) against the real server,
//! with raw clients.

use rookery_sasl::Credentials;
use rookery_store::{DEFAULT_CIRCLE, Role, Store};
use rookery_test_support::{TestCa, TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const NS_ROSTER: &str = "jabber:iq:roster";
const NS_REGISTER: &str = "jabber:iq:register";
const SITE: &str = "The Flock";

fn jid(user: &str) -> String {
    format!("{user}@rookery.test")
}

fn site_options() -> TestOptions {
    TestOptions {
        vars: vec![("SNIKKET_SITE_NAME".into(), SITE.into())],
        ..TestOptions::default()
    }
}

/// A server whose default circle holds `users` (added after start, as invites or the CLI would).
async fn server_with_circle(users: &[&str]) -> TestServer {
    let server = TestServer::start_with(site_options()).await;
    for user in users {
        server.add_user(user, PASSWORD).await;
        server
            .server()
            .store
            .circles()
            .add_member(DEFAULT_CIRCLE, user)
            .await
            .unwrap();
    }
    server
}

/// One roster item as a test compares it: (jid, subscription, ask, groups).
type Item = (String, String, Option<String>, Vec<String>);

fn item_of(el: &Element) -> Item {
    (
        el.attr("jid").unwrap_or_default().to_owned(),
        el.attr("subscription").unwrap_or_default().to_owned(),
        el.attr("ask").map(str::to_owned),
        el.children()
            .filter(|c| c.is("group", NS_ROSTER))
            .map(Element::text)
            .collect(),
    )
}

fn items_of(iq: &Element) -> Vec<Item> {
    iq.get_child("query", NS_ROSTER)
        .map(|q| q.children().map(item_of).collect())
        .unwrap_or_default()
}

fn mutual(contact: &str, groups: &[&str]) -> Item {
    (
        jid(contact),
        "both".to_owned(),
        None,
        groups.iter().map(|g| (*g).to_owned()).collect(),
    )
}

async fn roster(client: &mut TestClient) -> Vec<Item> {
    let get = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "roster")
        .with_child(Element::new("query", NS_ROSTER));
    let result = client.iq(&get).await.unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");
    items_of(&result)
}

fn is_push(el: &Element) -> bool {
    el.name() == "iq"
        && el.attr("type") == Some("set")
        && el.get_child("query", NS_ROSTER).is_some()
}

fn error_condition(el: &Element) -> Option<String> {
    el.get_child("error", el.ns())?
        .children()
        .find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

#[tokio::test]
async fn members_see_each_other_and_an_online_member_gets_the_push() {
    let server = server_with_circle(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, Some("phone")).await;
    // Alice's own login syncs the pair: she sees Bob, mutual, in the site's group.
    assert_eq!(roster(&mut alice).await, [mutual("bob", &[SITE])]);

    // Carol joins while Alice is online: Carol's login writes Alice's roster and pushes the item to her.
    server.add_user("carol", PASSWORD).await;
    rookery_modules::circles::add_member(server.server(), DEFAULT_CIRCLE, "carol")
        .await
        .unwrap();
    let pushes: Vec<Item> = alice
        .sync()
        .await
        .unwrap()
        .iter()
        .filter(|el| is_push(el))
        .flat_map(items_of)
        .collect();
    assert_eq!(pushes, [mutual("carol", &[SITE])]);

    let mut bob = server.login("bob", PASSWORD, None).await;
    assert_eq!(
        roster(&mut bob).await,
        [mutual("alice", &[SITE]), mutual("carol", &[SITE])]
    );
    // Nothing was pending on either side and no subscription stanza was exchanged.
    let store = &server.server().store;
    for user in ["alice", "bob", "carol"] {
        assert!(store.roster().pending_in(user).await.unwrap().is_empty());
    }
    assert!(
        alice
            .sync()
            .await
            .unwrap()
            .iter()
            .all(|el| el.name() != "presence" || el.attr("type").is_none())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_member_added_while_offline_appears_at_the_next_login() {
    let server = server_with_circle(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    assert_eq!(roster(&mut alice).await, [mutual("bob", &[SITE])]);
    alice.close().await.unwrap();

    // Added straight in the store, as the command line (another process) does: nobody is told.
    server.add_user("dave", PASSWORD).await;
    let store = &server.server().store;
    store
        .circles()
        .add_member(DEFAULT_CIRCLE, "dave")
        .await
        .unwrap();
    assert_eq!(
        store.roster().item("alice", &jid("dave")).await.unwrap(),
        None
    );

    let mut alice = server.login("alice", PASSWORD, None).await;
    assert_eq!(
        roster(&mut alice).await,
        [mutual("bob", &[SITE]), mutual("dave", &[SITE])]
    );
    let dave_side = store
        .roster()
        .item("dave", &jid("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dave_side.groups, [SITE]);
    server.stop().await;
}

#[tokio::test]
async fn an_existing_contact_keeps_its_name_and_groups_and_a_pending_request_is_answered() {
    let server = server_with_circle(&["alice"]).await;
    server.add_user("bob", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    // Alice has asked Bob already; Bob has not answered.
    let item = Element::new("item", NS_ROSTER)
        .with_attr("jid", jid("bob"))
        .with_attr("name", "Bobby")
        .with_child(Element::new("group", NS_ROSTER).with_text("Friends"));
    let set = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "add")
        .with_child(Element::new("query", NS_ROSTER).with_child(item));
    alice.iq(&set).await.unwrap();
    alice
        .send(
            &Element::new("presence", ns::CLIENT)
                .with_attr("type", "subscribe")
                .with_attr("to", jid("bob")),
        )
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let store = &server.server().store;
    assert!(
        store
            .roster()
            .has_pending_in("bob", &jid("alice"))
            .await
            .unwrap()
    );

    store
        .circles()
        .add_member(DEFAULT_CIRCLE, "bob")
        .await
        .unwrap();
    let mut bob = server.login("bob", PASSWORD, None).await;
    assert_eq!(roster(&mut bob).await, [mutual("alice", &[SITE])]);
    assert!(
        !store
            .roster()
            .has_pending_in("bob", &jid("alice"))
            .await
            .unwrap()
    );
    let alice_side = store
        .roster()
        .item("alice", &jid("bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice_side.name.as_deref(), Some("Bobby"));
    assert_eq!(alice_side.groups, ["Friends", SITE]);
    assert!(!alice_side.ask);
    server.stop().await;
}

#[tokio::test]
async fn removing_a_member_keeps_the_subscriptions() {
    let server = server_with_circle(&["alice", "bob"]).await;
    let mut alice = server.login("alice", PASSWORD, None).await;
    assert_eq!(roster(&mut alice).await, [mutual("bob", &[SITE])]);
    let store = &server.server().store;
    assert!(
        store
            .circles()
            .remove_member(DEFAULT_CIRCLE, "bob")
            .await
            .unwrap()
    );
    // Nothing is pushed, and the next logins keep the items as they are.
    assert!(alice.sync().await.unwrap().is_empty());
    alice.close().await.unwrap();
    let mut alice = server.login("alice", PASSWORD, None).await;
    assert_eq!(roster(&mut alice).await, [mutual("bob", &[SITE])]);
    let mut bob = server.login("bob", PASSWORD, None).await;
    assert_eq!(roster(&mut bob).await, [mutual("alice", &[SITE])]);
    // Deleting the circle removes memberships only, too.
    assert!(store.circles().delete(DEFAULT_CIRCLE).await.unwrap());
    assert_eq!(roster(&mut bob).await, [mutual("alice", &[SITE])]);
    server.stop().await;
}

#[tokio::test]
async fn the_default_circle_is_created_at_first_start_with_every_account() {
    // A data directory from before circles: accounts, and no default circle.
    let data_dir = tempfile::tempdir().unwrap();
    // The server then uses this directory, so the certificate the client trusts must be here.
    let ca = TestCa::new();
    let live = data_dir.path().join("letsencrypt/live/rookery.test");
    ca.install_certbot_layout(
        &live,
        &["rookery.test", "groups.rookery.test", "share.rookery.test"],
    );
    let db = data_dir.path().join("rookery").join("rookery.sqlite");
    let store = Store::open_sqlite(&db).await.unwrap();
    let credentials = Credentials::from_password(PASSWORD).unwrap();
    for user in ["alice", "bob"] {
        store
            .accounts()
            .create(user, &credentials, Role::Normal)
            .await
            .unwrap();
    }
    assert_eq!(store.circles().get(DEFAULT_CIRCLE).await.unwrap(), None);
    store.close().await;

    let options = |site: Option<&str>| {
        let mut vars = vec![(
            "SNIKKET_TWEAK_DATA_DIR".to_owned(),
            data_dir.path().display().to_string(),
        )];
        if let Some(site) = site {
            vars.push(("SNIKKET_SITE_NAME".to_owned(), site.to_owned()));
        }
        TestOptions {
            vars,
            ..TestOptions::default()
        }
    };
    let server = TestServer::start_with(options(None)).await;
    let circles = server.server().store.circles();
    let default = circles.get(DEFAULT_CIRCLE).await.unwrap().unwrap();
    // No site name: the domain.
    assert_eq!(default.name, "rookery.test");
    assert_eq!(
        circles.members(DEFAULT_CIRCLE).await.unwrap(),
        ["alice", "bob"]
    );
    let mut alice = TestClient::connect_starttls(server.c2s, "rookery.test", ca.client_config(&[]))
        .await
        .unwrap();
    alice.login("alice", PASSWORD, "SCRAM-SHA-1").await.unwrap();
    alice.bind(None).await.unwrap();
    assert_eq!(roster(&mut alice).await, [mutual("bob", &["rookery.test"])]);
    alice.close().await.unwrap();
    // Accounts created later are not added at the next start: only once.
    server.add_user("carol", PASSWORD).await;
    server.stop().await;

    let server = TestServer::start_with(options(Some(SITE))).await;
    let circles = server.server().store.circles();
    assert_eq!(
        circles.members(DEFAULT_CIRCLE).await.unwrap(),
        ["alice", "bob"]
    );
    assert_eq!(
        circles.get(DEFAULT_CIRCLE).await.unwrap().unwrap().name,
        "rookery.test"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_only_administrator_cannot_remove_its_account() {
    let server = TestServer::start().await;
    let credentials = Credentials::from_password(PASSWORD).unwrap();
    let accounts = server.server().store.accounts();
    accounts
        .create("root", &credentials, Role::Admin)
        .await
        .unwrap();
    let remove = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "remove")
        .with_child(
            Element::new("query", NS_REGISTER).with_child(Element::new("remove", NS_REGISTER)),
        );
    let mut root = server.login("root", PASSWORD, None).await;
    let answer = root.iq(&remove).await.unwrap();
    assert_eq!(answer.attr("type"), Some("error"));
    assert_eq!(error_condition(&answer).as_deref(), Some("not-allowed"));
    let text = answer
        .get_child("error", ns::CLIENT)
        .and_then(|e| e.get_child("text", ns::STANZA_ERRORS))
        .map(Element::text)
        .unwrap_or_default();
    assert!(text.contains("cannot-remove-only-admin"), "{text}");
    // Still enabled, still usable.
    assert!(!accounts.get("root").await.unwrap().unwrap().disabled);
    assert_eq!(
        root.ping_server().await.unwrap().attr("type"),
        Some("result")
    );

    // With a second administrator, the first may go.
    accounts
        .create("second", &credentials, Role::Admin)
        .await
        .unwrap();
    let answer = root.iq(&remove).await.unwrap();
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    assert!(accounts.get("root").await.unwrap().unwrap().disabled);
    server.stop().await;
}
