//! In-band registration by invite (spec §5.5 A) and XEP-0379 contact pre-approval (§5.5 B) against the real server:
//! every rule of the reference, in its order, with its error conditions and texts, and what a registration leaves
//! behind (account, role, circles, contacts, spent invite).

use rookery_store::{Invite, InviteKind, Role, Subscription};
use rookery_test_support::{Ending, TestClient, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const REGISTER: &str = "jabber:iq:register";
const PARS: &str = "urn:xmpp:pars:0";
const ROSTER: &str = "jabber:iq:roster";
const DOMAIN: &str = "rookery.test";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn invite(kind: InviteKind, username: Option<&str>) -> Invite {
    Invite {
        token: Invite::new_token(),
        kind,
        username: username.map(str::to_owned),
        allow_registration: true,
        reusable: false,
        roles: Vec::new(),
        circles: Vec::new(),
        note: None,
        source: Some("test".into()),
        created_at: now(),
        expires_at: now() + 3600,
    }
}

async fn store_invite(server: &TestServer, invite: &Invite) {
    server
        .server()
        .store
        .invites()
        .create(invite)
        .await
        .expect("create invite");
}

fn preauth(token: &str) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "preauth")
        .with_attr("to", DOMAIN)
        .with_child(Element::new("preauth", PARS).with_attr("token", token))
}

fn register(username: &str, password: &str) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "register")
        .with_attr("to", DOMAIN)
        .with_child(
            Element::new("query", REGISTER)
                .with_child(Element::new("username", REGISTER).with_text(username))
                .with_child(Element::new("password", REGISTER).with_text(password)),
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

fn assert_error(reply: &Element, condition: &str, text: &str) {
    assert_eq!(
        error_of(reply),
        (condition.to_owned(), Some(text.to_owned())),
        "{reply}"
    );
}

/// A fresh unauthenticated TLS stream that presented `token` (asserting it was accepted).
async fn with_token(server: &TestServer, token: &str) -> TestClient {
    let mut client = server.connect().await;
    let reply = client.iq(&preauth(token)).await.unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    client
}

async fn can_login(server: &TestServer, user: &str, password: &str) -> bool {
    let mut client = server.connect().await;
    client.login(user, password, "SCRAM-SHA-1").await.is_ok()
}

const INVALID: &str = "The invite token is invalid or expired";

#[tokio::test]
async fn features_only_over_tls_and_the_form() {
    let server = TestServer::start().await;
    let mut plain = TestClient::connect_tcp(server.c2s, DOMAIN).await.unwrap();
    plain.open_stream().await.unwrap();
    let features = plain.features.clone().unwrap();
    assert!(!features.has_child("register", "http://jabber.org/features/iq-register"));
    // Registration before TLS is impossible: the IQ ends the stream.
    plain.send(&preauth("whatever")).await.unwrap();
    assert_eq!(
        plain.ending().await.unwrap(),
        Ending::StreamError("policy-violation".into())
    );

    let mut client = server.connect().await;
    let features = client.features.clone().unwrap();
    for ns in [
        "http://jabber.org/features/iq-register",
        "urn:xmpp:invite",
        "urn:xmpp:ibr-token:0",
    ] {
        assert!(features.has_child("register", ns), "{ns}: {features}");
    }
    let get = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "form")
        .with_child(Element::new("query", REGISTER));
    let reply = client.iq(&get).await.unwrap();
    let query = reply.get_child("query", REGISTER).unwrap();
    assert_eq!(
        query.get_child("instructions", REGISTER).unwrap().text(),
        "Choose a username and password for use with this service."
    );
    assert!(query.has_child("username", REGISTER) && query.has_child("password", REGISTER));
    let form = query.get_child("x", "jabber:x:data").unwrap();
    let form_type = form
        .children()
        .find(|f| f.attr("var") == Some("FORM_TYPE"))
        .unwrap();
    assert_eq!(form_type.children().next().unwrap().text(), REGISTER);
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let server = TestServer::start().await;
    let mut expired = invite(InviteKind::Account, None);
    expired.expires_at = now() - 1;
    store_invite(&server, &expired).await;
    let mut contact_only = invite(InviteKind::Contact, Some("alice"));
    contact_only.allow_registration = false;
    store_invite(&server, &contact_only).await;

    let mut client = server.connect().await;
    let long = "a".repeat(65);
    for token in [
        Invite::new_token().as_str(),
        expired.token.as_str(),
        "not/a token",
        "",
        long.as_str(),
    ] {
        let reply = client.iq(&preauth(token)).await.unwrap();
        assert_error(&reply, "item-not-found", INVALID);
    }
    // Five attempts spent: the next one closes the stream.
    client.send(&preauth(&expired.token)).await.unwrap();
    assert_eq!(
        client.ending().await.unwrap(),
        Ending::StreamError("policy-violation".into())
    );

    let mut client = server.connect().await;
    let reply = client.iq(&preauth(&contact_only.token)).await.unwrap();
    assert_error(
        &reply,
        "forbidden",
        "This invite does not allow registration",
    );
    server.stop().await;
}

#[tokio::test]
async fn registration_rules_in_order() {
    let server = TestServer::start().await;
    server.add_user("taken", PASSWORD).await;
    let open = invite(InviteKind::Account, None);
    store_invite(&server, &open).await;

    // No token at all.
    let mut client = server.connect().await;
    let reply = client.iq(&register("newbie", PASSWORD)).await.unwrap();
    assert_error(
        &reply,
        "not-acceptable",
        "Registration on this server is through invitation only",
    );
    // The password policy comes before the invite check.
    let reply = client.iq(&register("newbie", "short")).await.unwrap();
    assert_error(
        &reply,
        "not-acceptable",
        "Password is too short (minimum 10 characters)",
    );

    let mut client = with_token(&server, &open.token).await;
    // Nodeprep refuses it.
    let reply = client.iq(&register("bad name", PASSWORD)).await.unwrap();
    assert_error(
        &reply,
        "not-acceptable",
        "The requested username is invalid.",
    );
    let reply = client.iq(&register("Taken", PASSWORD)).await.unwrap();
    assert_error(&reply, "conflict", "The requested username already exists.");
    // Still unused: the refusals did not spend it.
    let reply = client.iq(&register("NewBie", PASSWORD)).await.unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    // Nodeprepped: the account is "newbie".
    assert!(can_login(&server, "newbie", PASSWORD).await);
    let account = server
        .server()
        .store
        .accounts()
        .get("newbie")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.role, Role::Normal);

    // Spent: the same token no longer works, on a new stream or this one.
    let mut again = server.connect().await;
    let reply = again.iq(&preauth(&open.token)).await.unwrap();
    assert_error(&reply, "item-not-found", INVALID);
    let reply = client.iq(&register("second", PASSWORD)).await.unwrap();
    assert_error(
        &reply,
        "not-acceptable",
        "Registration on this server is through invitation only",
    );
    server.stop().await;
}

#[tokio::test]
async fn invite_used_on_another_stream_meanwhile() {
    let server = TestServer::start().await;
    let open = invite(InviteKind::Account, None);
    store_invite(&server, &open).await;
    let mut first = with_token(&server, &open.token).await;
    let mut second = with_token(&server, &open.token).await;
    let reply = first.iq(&register("first", PASSWORD)).await.unwrap();
    assert_eq!(reply.attr("type"), Some("result"));
    let reply = second.iq(&register("second", PASSWORD)).await.unwrap();
    assert_error(&reply, "item-not-found", INVALID);
    assert!(
        !server
            .server()
            .store
            .accounts()
            .exists("second")
            .await
            .unwrap()
    );
    server.stop().await;
}

#[tokio::test]
async fn fixed_username_is_enforced() {
    let server = TestServer::start().await;
    let fixed = invite(InviteKind::Account, Some("carol"));
    store_invite(&server, &fixed).await;
    let mut client = with_token(&server, &fixed.token).await;
    let reply = client.iq(&register("mallory", PASSWORD)).await.unwrap();
    assert_error(
        &reply,
        "not-acceptable",
        "The chosen username is not valid with this invitation",
    );
    let reply = client.iq(&register("carol", PASSWORD)).await.unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    assert!(
        !server
            .server()
            .store
            .accounts()
            .exists("mallory")
            .await
            .unwrap()
    );
    assert!(can_login(&server, "carol", PASSWORD).await);
    server.stop().await;
}

#[tokio::test]
async fn reset_invite_sets_only_its_accounts_password() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("bob", PASSWORD).await;
    let reset = invite(InviteKind::Reset, Some("alice"));
    store_invite(&server, &reset).await;
    let mut client = with_token(&server, &reset.token).await;
    let reply = client
        .iq(&register("bob", "a new password here"))
        .await
        .unwrap();
    assert_error(
        &reply,
        "not-acceptable",
        "Incorrect username for password reset",
    );
    let reply = client
        .iq(&register("alice", "a new password here"))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    assert!(can_login(&server, "alice", "a new password here").await);
    assert!(!can_login(&server, "alice", PASSWORD).await);
    assert!(can_login(&server, "bob", PASSWORD).await);

    // A reset invite never creates an account.
    let orphan = invite(InviteKind::Reset, Some("nobody"));
    store_invite(&server, &orphan).await;
    let mut client = with_token(&server, &orphan.token).await;
    let reply = client.iq(&register("nobody", PASSWORD)).await.unwrap();
    assert_error(&reply, "item-not-found", INVALID);
    assert!(
        !server
            .server()
            .store
            .accounts()
            .exists("nobody")
            .await
            .unwrap()
    );
    server.stop().await;
}

#[tokio::test]
async fn roles_and_circles_applied() {
    let server = TestServer::start().await;
    let store = &server.server().store;
    store.circles().create("family", "Family").await.unwrap();
    let mut group = invite(InviteKind::Account, None);
    group.roles = vec![Role::Limited];
    group.circles = vec!["family".into()];
    group.reusable = true;
    store_invite(&server, &group).await;
    for name in ["kid1", "kid2"] {
        let mut client = with_token(&server, &group.token).await;
        let reply = client.iq(&register(name, PASSWORD)).await.unwrap();
        assert_eq!(reply.attr("type"), Some("result"), "{reply}");
        let account = store.accounts().get(name).await.unwrap().unwrap();
        assert_eq!(account.role, Role::Limited);
    }
    let mut members = store.circles().members("family").await.unwrap();
    members.sort();
    assert_eq!(members, ["kid1", "kid2"]);
    // Reusable: still there.
    assert!(store.invites().get(&group.token).await.unwrap().is_some());
    server.stop().await;
}

async fn roster_items(client: &mut TestClient) -> Vec<(String, String)> {
    let get = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "roster")
        .with_child(Element::new("query", ROSTER));
    let reply = client.iq(&get).await.unwrap();
    reply
        .get_child("query", ROSTER)
        .unwrap()
        .children()
        .map(|i| {
            (
                i.attr("jid").unwrap().to_owned(),
                i.attr("subscription").unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn contact_invite_makes_mutual_contacts() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let mut alice = server.login("alice", PASSWORD, Some("phone")).await;
    assert!(roster_items(&mut alice).await.is_empty());
    let contact = invite(InviteKind::Contact, Some("alice"));
    store_invite(&server, &contact).await;
    let mut client = with_token(&server, &contact.token).await;
    let reply = client.iq(&register("dave", PASSWORD)).await.unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");

    // Alice's resource gets the push.
    let push = alice
        .next_matching(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .await
        .unwrap();
    let item = push
        .get_child("query", ROSTER)
        .unwrap()
        .children()
        .next()
        .unwrap();
    assert_eq!(item.attr("jid"), Some("dave@rookery.test"));
    assert_eq!(item.attr("subscription"), Some("both"));
    assert_eq!(
        roster_items(&mut alice).await,
        [("dave@rookery.test".to_owned(), "both".to_owned())]
    );
    let mut dave = server.login("dave", PASSWORD, None).await;
    assert_eq!(
        roster_items(&mut dave).await,
        [("alice@rookery.test".to_owned(), "both".to_owned())]
    );
    let stored = server
        .server()
        .store
        .roster()
        .item("alice", "dave@rookery.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.subscription, Subscription::Both);
    server.stop().await;
}

fn subscribe_with_token(to: &str, token: &str) -> Element {
    Element::new("presence", ns::CLIENT)
        .with_attr("type", "subscribe")
        .with_attr("to", to)
        .with_child(Element::new("preauth", PARS).with_attr("token", token))
}

#[tokio::test]
async fn xep0379_preapproved_subscription() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("erin", PASSWORD).await;
    server.add_user("frank", PASSWORD).await;
    let contact = invite(InviteKind::Contact, Some("alice"));
    store_invite(&server, &contact).await;
    let mut alice = server.login("alice", PASSWORD, Some("a")).await;
    roster_items(&mut alice).await;
    let mut erin = server.login("erin", PASSWORD, Some("e")).await;
    roster_items(&mut erin).await;
    for client in [&mut alice, &mut erin] {
        client
            .send(&Element::new("presence", ns::CLIENT))
            .await
            .unwrap();
        client.sync().await.unwrap();
    }

    // A token of another inviter is ignored: the request goes to Alice as any request.
    let other = invite(InviteKind::Contact, Some("frank"));
    store_invite(&server, &other).await;
    erin.send(&subscribe_with_token("alice@rookery.test", &other.token))
        .await
        .unwrap();
    erin.sync().await.unwrap();
    let seen = alice.sync().await.unwrap();
    assert!(
        seen.iter()
            .any(|e| e.name() == "presence" && e.attr("type") == Some("subscribe")),
        "{seen:?}"
    );
    assert!(
        server
            .server()
            .store
            .invites()
            .get(&other.token)
            .await
            .unwrap()
            .is_some()
    );

    // Alice's own token: approved without asking, and mutual.
    erin.send(&subscribe_with_token("alice@rookery.test", &contact.token))
        .await
        .unwrap();
    erin.sync().await.unwrap();
    // Alice gets a roster push and Erin's presence, but no request to answer.
    let seen = alice.sync().await.unwrap();
    assert!(
        seen.iter().any(|e| e.name() == "presence"
            && e.attr("from") == Some("erin@rookery.test/e")
            && e.attr("type").is_none()),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|e| e.attr("type") == Some("subscribe")),
        "{seen:?}"
    );
    assert_eq!(
        roster_items(&mut alice).await,
        [("erin@rookery.test".to_owned(), "both".to_owned())]
    );
    assert_eq!(
        roster_items(&mut erin).await,
        [("alice@rookery.test".to_owned(), "both".to_owned())]
    );
    let roster = &server.server().store.roster();
    assert!(
        !roster
            .has_pending_in("alice", "erin@rookery.test")
            .await
            .unwrap()
    );
    // Spent.
    assert!(
        server
            .server()
            .store
            .invites()
            .get(&contact.token)
            .await
            .unwrap()
            .is_none()
    );
    server.stop().await;
}
