//! XEP-0077 for a logged-in account against the real server: the registration form, password change with
//! Snikket's policy, and account removal with its grace period, restore, and final deletion.

use std::time::Duration;

use rookery_test_support::{Ending, SaslFailure, TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const REGISTER: &str = "jabber:iq:register";
const DAY: i64 = 86_400;

fn register_iq(kind: &str, id: &str, to: Option<&str>, children: Vec<Element>) -> Element {
    let mut query = Element::new("query", REGISTER);
    for child in children {
        query.append_child(child);
    }
    let mut iq = Element::new("iq", ns::CLIENT)
        .with_attr("type", kind)
        .with_attr("id", id)
        .with_child(query);
    if let Some(to) = to {
        iq.set_attr("to", to);
    }
    iq
}

fn field(name: &str, value: &str) -> Element {
    Element::new(name, REGISTER).with_text(value)
}

fn password_change(id: &str, username: &str, password: &str) -> Element {
    register_iq(
        "set",
        id,
        Some("rookery.test"),
        vec![field("username", username), field("password", password)],
    )
}

/// The condition and text of an error reply.
fn error_of(reply: &Element) -> (String, Option<String>) {
    assert_eq!(reply.attr("type"), Some("error"), "not an error: {reply}");
    let error = reply.get_child("error", ns::CLIENT).unwrap();
    let condition = error
        .children()
        .find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    let text = error
        .get_child("text", ns::STANZA_ERRORS)
        .map(Element::text);
    (condition, text)
}

/// Tries to log in; the SASL condition and text when refused.
async fn login_refusal(
    server: &TestServer,
    user: &str,
    password: &str,
) -> Option<(String, Option<String>)> {
    let mut client = server.connect().await;
    match client.login(user, password, "SCRAM-SHA-1").await {
        Ok(()) => None,
        Err(err) => {
            let SaslFailure(condition) = err
                .downcast_ref::<SaslFailure>()
                .expect("a SASL failure")
                .clone();
            Some((condition, client.sasl_failure_text.clone()))
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

async fn server_with(users: &[&str], options: TestOptions) -> TestServer {
    let server = TestServer::start_with(options).await;
    for user in users {
        server.add_user(user, PASSWORD).await;
    }
    server
}

#[tokio::test]
async fn a_logged_in_account_gets_its_registration() {
    let server = server_with(&["alice"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    // To the server, as most clients send it, and to the account itself.
    for (id, to) in [("host", Some("rookery.test")), ("own", None)] {
        let reply = alice.iq(&register_iq("get", id, to, vec![])).await.unwrap();
        assert_eq!(reply.attr("type"), Some("result"), "{reply}");
        let query = reply.get_child("query", REGISTER).unwrap();
        assert!(query.has_child("registered", REGISTER), "{reply}");
        assert_eq!(
            query.get_child("username", REGISTER).unwrap().text(),
            "alice"
        );
        assert!(query.has_child("password", REGISTER));
    }
    let disco = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "disco")
        .with_attr("to", "rookery.test")
        .with_child(Element::new("query", ns::DISCO_INFO));
    let reply = alice.iq(&disco).await.unwrap();
    let announced = reply
        .get_child("query", ns::DISCO_INFO)
        .unwrap()
        .children()
        .any(|f| f.attr("var") == Some(REGISTER));
    assert!(announced, "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_replaces_the_keys_and_closes_the_other_sessions() {
    let server = server_with(&["alice"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut other = server.login("alice", PASSWORD, Some("other")).await;
    let new_password = "a whole new secret";
    let reply = alice
        .iq(&password_change("pw", "Alice", new_password))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    // The other session logged in with the old password: it is closed, as Prosody does.
    assert_eq!(
        other.ending().await.unwrap(),
        Ending::StreamError("reset".into())
    );
    // This one goes on.
    assert_eq!(
        alice.ping_server().await.unwrap().attr("type"),
        Some("result")
    );

    assert_eq!(
        login_refusal(&server, "alice", PASSWORD).await,
        Some(("not-authorized".into(), None))
    );
    // New keys for both hashes: SCRAM-SHA-1 and SCRAM-SHA-256 log in.
    for mechanism in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let mut client = server.connect().await;
        client
            .login("alice", new_password, mechanism)
            .await
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
    }
    let stored = server
        .server()
        .store
        .accounts()
        .get("alice")
        .await
        .unwrap()
        .unwrap()
        .credentials;
    assert!(stored.sha1.is_some() && stored.sha256.is_some());
    server.stop().await;
}

#[tokio::test]
async fn the_password_policy_and_bad_requests() {
    let server = server_with(&["alice"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let too_short = Some("Password is too short (minimum 10 characters)".to_owned());
    let cases = [
        (
            password_change("1", "alice", "short"),
            "not-acceptable",
            too_short.clone(),
        ),
        (
            password_change("2", "alice", "123456789"),
            "not-acceptable",
            too_short,
        ),
        (
            password_change("3", "alice", "my ALICE password"),
            "not-acceptable",
            Some("Password must not include your username".to_owned()),
        ),
        (
            password_change("4", "alice", ""),
            "not-acceptable",
            Some("No password provided".to_owned()),
        ),
        (
            password_change("5", "bob", "a long enough password"),
            "bad-request",
            Some("that is not your username".to_owned()),
        ),
        (
            register_iq(
                "set",
                "6",
                None,
                vec![field("password", "a long enough password")],
            ),
            "bad-request",
            Some("a password change needs <username/> and <password/>".to_owned()),
        ),
        (
            register_iq("set", "7", None, vec![field("username", "alice")]),
            "bad-request",
            Some("a password change needs <username/> and <password/>".to_owned()),
        ),
    ];
    for (request, condition, text) in cases {
        let reply = alice.iq(&request).await.unwrap();
        assert_eq!(error_of(&reply), (condition.to_owned(), text), "{request}");
    }
    // Nothing changed: the old password still logs in.
    assert_eq!(login_refusal(&server, "alice", PASSWORD).await, None);
    server.stop().await;
}

#[tokio::test]
async fn removal_disables_at_once_and_says_so_at_login() {
    let options = TestOptions {
        vars: vec![("SNIKKET_RETENTION_DAYS".into(), "2".into())],
        ..TestOptions::default()
    };
    let server = server_with(&["alice", "bob"], options).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let mut other = server.login("alice", PASSWORD, Some("other")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;

    let before = unix_now();
    let remove = register_iq("set", "rm", None, vec![Element::new("remove", REGISTER)]);
    alice.send(&remove).await.unwrap();
    // The answer comes before the stream closes.
    let reply = alice.next_element().await.unwrap();
    assert_eq!(
        (reply.attr("id"), reply.attr("type")),
        (Some("rm"), Some("result")),
        "{reply}"
    );
    assert_eq!(
        alice.ending().await.unwrap(),
        Ending::StreamError("not-authorized".into())
    );
    assert_eq!(
        other.ending().await.unwrap(),
        Ending::StreamError("not-authorized".into())
    );
    let after = unix_now();

    // With the right password: account-disabled, and why. With a wrong one: nothing is revealed.
    assert_eq!(
        login_refusal(&server, "alice", PASSWORD).await,
        Some(("account-disabled".into(), Some("Account deleted".into())))
    );
    assert_eq!(
        login_refusal(&server, "alice", "a wrong password").await,
        Some(("not-authorized".into(), None))
    );
    let store = &server.server().store;
    assert!(
        store
            .accounts()
            .get("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let request = store
        .account_deletions()
        .get("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        (before..=after).contains(&request.deleted_at),
        "{request:?}"
    );
    assert_eq!(
        request.pending_until - request.deleted_at,
        2 * DAY,
        "SNIKKET_RETENTION_DAYS"
    );
    // Not deleted before its time.
    let deleted =
        rookery_modules::register::delete_expired_accounts(server.server(), after + 2 * DAY - 1)
            .await;
    assert_eq!(deleted, 0);
    assert!(store.accounts().exists("alice").await.unwrap());
    // Others are not affected.
    assert_eq!(
        bob.ping_server().await.unwrap().attr("type"),
        Some("result")
    );
    server.stop().await;
}

#[tokio::test]
async fn after_the_grace_period_the_account_and_its_data_are_gone() {
    let options = TestOptions {
        limits: Some(Box::new(|l| {
            l.account_cleanup_interval = Duration::from_millis(50)
        })),
        ..TestOptions::default()
    };
    let server = server_with(&["alice", "bob"], options).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    // Some data of alice's.
    let block = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "block")
        .with_child(Element::new("block", "urn:xmpp:blocking").with_child(
            Element::new("item", "urn:xmpp:blocking").with_attr("jid", "spam.example"),
        ));
    assert_eq!(alice.iq(&block).await.unwrap().attr("type"), Some("result"));
    let remove = register_iq("set", "rm", None, vec![Element::new("remove", REGISTER)]);
    assert_eq!(
        alice.iq(&remove).await.unwrap().attr("type"),
        Some("result")
    );
    let store = &server.server().store;
    assert!(
        store
            .account_deletions()
            .get("alice")
            .await
            .unwrap()
            .is_some()
    );

    // The grace period is over: the server's own job deletes the account at its next pass.
    let past = unix_now() - 8 * DAY;
    store
        .account_deletions()
        .request("alice", past, past + 7 * DAY)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.accounts().exists("alice").await.unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the account was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.account_deletions().get("alice").await.unwrap(), None);
    assert!(store.blocklist().get("alice").await.unwrap().is_empty());
    // An unknown account now: a login is refused like any wrong password.
    assert_eq!(
        login_refusal(&server, "alice", PASSWORD).await,
        Some(("not-authorized".into(), None))
    );
    assert!(store.accounts().exists("bob").await.unwrap());
    // The same name can be registered again, and starts empty.
    server.add_user("alice", PASSWORD).await;
    let mut again = server.login("alice", PASSWORD, Some("new")).await;
    let list = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "list")
        .with_child(Element::new("blocklist", "urn:xmpp:blocking"));
    let reply = again.iq(&list).await.unwrap();
    assert_eq!(
        reply
            .get_child("blocklist", "urn:xmpp:blocking")
            .unwrap()
            .children()
            .count(),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn an_admin_restores_a_removed_account() {
    let server = server_with(&["alice"], TestOptions::default()).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    let remove = register_iq("set", "rm", None, vec![Element::new("remove", REGISTER)]);
    assert_eq!(
        alice.iq(&remove).await.unwrap().attr("type"),
        Some("result")
    );
    assert!(login_refusal(&server, "alice", PASSWORD).await.is_some());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rookery"))
        .args(["user", "enable", "alice"])
        .env_clear()
        .env("SNIKKET_DOMAIN", "rookery.test")
        .env("SNIKKET_ADMIN_EMAIL", "admin@rookery.test")
        .env("SNIKKET_TWEAK_DATA_DIR", server.data_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Enabled alice@rookery.test and cancelled its deletion"
    );
    let mut back: TestClient = server.login("alice", PASSWORD, Some("back")).await;
    assert_eq!(
        back.ping_server().await.unwrap().attr("type"),
        Some("result")
    );
    // Its deletion is cancelled: no later pass deletes it.
    let store = &server.server().store;
    assert_eq!(store.account_deletions().get("alice").await.unwrap(), None);
    let deleted =
        rookery_modules::register::delete_expired_accounts(server.server(), unix_now() + 365 * DAY)
            .await;
    assert_eq!(deleted, 0);
    assert!(store.accounts().exists("alice").await.unwrap());
    server.stop().await;
}
