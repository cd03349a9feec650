//! XEP-0050 ad-hoc commands against the real server on 127.0.0.1, with the XEP-0133 commands: the command list by
//! role, single- and two-stage commands, and every way a request can go wrong (roles, session ids, actions, forms,
//! expiry and the per-account bound).

use std::time::Duration;

use rookery_store::Role;
use rookery_test_support::{TestClient, TestOptions, TestServer};
use rookery_xml::{Element, ns};

const PASSWORD: &str = "correct horse battery";
const COMMANDS: &str = "http://jabber.org/protocol/commands";
const DATA: &str = "jabber:x:data";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const ONLINE_USERS: &str = "http://jabber.org/protocol/admin#get-online-users-num";
const CHANGE_PASSWORD: &str = "http://jabber.org/protocol/admin#change-user-password";
const ADMIN_FORM: &str = "http://jabber.org/protocol/admin";
const CONTACT_INVITE: &str = "urn:xmpp:invite#invite";
const CREATE_ACCOUNT_INVITE: &str = "urn:xmpp:invite#create-account";
const RESET_INVITE: &str = "xmpp:prosody.im/mod_invites_adhoc#password-reset";
/// Client management: every user may list and revoke their own clients.
const LIST_CLIENTS: &str = "urn:rookery:client-management#list";
const REVOKE_CLIENT: &str = "urn:rookery:client-management#revoke";
const OWN_CLIENTS: [&str; 2] = [LIST_CLIENTS, REVOKE_CLIENT];

/// A server with an admin (`root`) and two normal users.
async fn server_with(options: TestOptions) -> TestServer {
    let server = TestServer::start_with(options).await;
    for name in ["root", "bob", "carol"] {
        server.add_user(name, PASSWORD).await;
    }
    let accounts = server.server().store.accounts();
    assert!(accounts.set_role("root", Role::Admin).await.unwrap());
    server
}

fn to_host(server: &TestServer, kind: &str, id: &str, payload: Element) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", kind)
        .with_attr("id", id)
        .with_attr("to", server.domain.as_str())
        .with_child(payload)
}

fn command(node: &str, action: Option<&str>, sessionid: Option<&str>) -> Element {
    let mut el = Element::new("command", COMMANDS).with_attr("node", node);
    if let Some(action) = action {
        el.set_attr("action", action);
    }
    if let Some(id) = sessionid {
        el.set_attr("sessionid", id);
    }
    el
}

fn submit(fields: &[(&str, &str)]) -> Element {
    let mut form = Element::new("x", DATA).with_attr("type", "submit");
    for (var, value) in fields {
        form.append_child(
            Element::new("field", DATA)
                .with_attr("var", *var)
                .with_child(Element::new("value", DATA).with_text(*value)),
        );
    }
    form
}

async fn run(server: &TestServer, client: &mut TestClient, id: &str, command: Element) -> Element {
    client
        .iq(&to_host(server, "set", id, command))
        .await
        .unwrap()
}

/// The `<command/>` of a successful reply.
fn command_of(reply: &Element) -> &Element {
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    reply.get_child("command", COMMANDS).expect("a command")
}

/// The defined condition and the XEP-0050 condition (if any) of an error reply, and its type.
fn error_of(reply: &Element) -> (String, Option<String>, String) {
    assert_eq!(reply.attr("type"), Some("error"), "not an error: {reply}");
    let error = reply.get_child("error", ns::CLIENT).expect("an error");
    let defined = error
        .children()
        .find(|c| c.ns() == STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .expect("a condition");
    let specific = error
        .children()
        .find(|c| c.ns() == COMMANDS)
        .map(|c| c.name().to_owned());
    (defined, specific, error.attr("type").unwrap().to_owned())
}

fn field_values(form: &Element, var: &str) -> Vec<String> {
    form.children()
        .find(|f| f.name() == "field" && f.attr("var") == Some(var))
        .map(|f| {
            f.children()
                .filter(|v| v.name() == "value")
                .map(Element::text)
                .collect()
        })
        .unwrap_or_default()
}

async fn command_list(server: &TestServer, client: &mut TestClient) -> Vec<String> {
    let query = Element::new("query", ns::DISCO_ITEMS).with_attr("node", COMMANDS);
    let reply = client
        .iq(&to_host(server, "get", "list", query))
        .await
        .unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    reply
        .get_child("query", ns::DISCO_ITEMS)
        .unwrap()
        .children()
        .map(|item| {
            assert_eq!(item.attr("jid"), Some(server.domain.as_str()));
            assert!(item.attr("name").is_some());
            item.attr("node").unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_command_list_depends_on_the_role() {
    let server = server_with(TestOptions::default()).await;
    let mut root = server.login("root", PASSWORD, Some("r")).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let mut admin_list = command_list(&server, &mut root).await;
    admin_list.sort();
    assert_eq!(
        admin_list,
        [
            CHANGE_PASSWORD,
            ONLINE_USERS,
            LIST_CLIENTS,
            REVOKE_CLIENT,
            CREATE_ACCOUNT_INVITE,
            CONTACT_INVITE,
            RESET_INVITE,
        ]
    );
    assert_eq!(command_list(&server, &mut bob).await, OWN_CLIENTS);

    // disco#info of the list node and of a command node.
    let info = |node: &str| Element::new("query", ns::DISCO_INFO).with_attr("node", node);
    let reply = bob
        .iq(&to_host(&server, "get", "i1", info(COMMANDS)))
        .await
        .unwrap();
    let identity = reply
        .get_child("query", ns::DISCO_INFO)
        .and_then(|q| q.get_child("identity", ns::DISCO_INFO))
        .expect("an identity");
    assert_eq!(identity.attr("type"), Some("command-list"));
    let reply = root
        .iq(&to_host(&server, "get", "i2", info(ONLINE_USERS)))
        .await
        .unwrap();
    let query = reply.get_child("query", ns::DISCO_INFO).expect("info");
    assert!(
        query
            .children()
            .any(|c| c.attr("type") == Some("command-node"))
    );
    assert!(query.children().any(|c| c.attr("var") == Some(COMMANDS)));
    let reply = bob
        .iq(&to_host(&server, "get", "i3", info(ONLINE_USERS)))
        .await
        .unwrap();
    assert_eq!(error_of(&reply).0, "forbidden");
    // Other nodes are still unknown.
    let reply = bob
        .iq(&to_host(&server, "get", "i4", info("urn:nothing")))
        .await
        .unwrap();
    assert_eq!(error_of(&reply).0, "item-not-found");
    server.stop().await;
}

#[tokio::test]
async fn an_admin_counts_the_online_users() {
    let server = server_with(TestOptions::default()).await;
    let mut root = server.login("root", PASSWORD, Some("r")).await;
    // Bob is online twice: one user.
    let _bob1 = server.login("bob", PASSWORD, Some("b1")).await;
    let _bob2 = server.login("bob", PASSWORD, Some("b2")).await;
    let reply = run(
        &server,
        &mut root,
        "c1",
        command(ONLINE_USERS, Some("execute"), None),
    )
    .await;
    let cmd = command_of(&reply);
    assert_eq!(cmd.attr("status"), Some("completed"));
    assert_eq!(cmd.attr("node"), Some(ONLINE_USERS));
    let id = cmd.attr("sessionid").expect("a sessionid");
    assert!(id.len() >= 32, "128 bits at least: {id}");
    let form = cmd.get_child("x", DATA).expect("a result form");
    assert_eq!(form.attr("type"), Some("result"));
    assert_eq!(field_values(form, "FORM_TYPE"), [ADMIN_FORM]);
    assert_eq!(field_values(form, "onlineusersnum"), ["2"]);
    // A completed session cannot be continued.
    let reply = run(
        &server,
        &mut root,
        "c2",
        command(ONLINE_USERS, None, Some(id)),
    )
    .await;
    assert_eq!(
        error_of(&reply),
        (
            "not-allowed".into(),
            Some("session-expired".into()),
            "cancel".into()
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn a_normal_user_is_denied_admin_commands() {
    let server = server_with(TestOptions::default()).await;
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    for (id, node) in [("d1", ONLINE_USERS), ("d2", CHANGE_PASSWORD)] {
        let reply = run(&server, &mut bob, id, command(node, Some("execute"), None)).await;
        assert_eq!(
            error_of(&reply),
            ("forbidden".into(), None, "cancel".into()),
            "{node}"
        );
    }
    let reply = run(
        &server,
        &mut bob,
        "d3",
        command("urn:no-such-command", None, None),
    )
    .await;
    assert_eq!(error_of(&reply).0, "item-not-found");
    // Limited users are no admins either.
    let accounts = server.server().store.accounts();
    accounts.set_role("carol", Role::Limited).await.unwrap();
    let mut carol = server.login("carol", PASSWORD, None).await;
    let reply = run(&server, &mut carol, "d4", command(ONLINE_USERS, None, None)).await;
    assert_eq!(error_of(&reply).0, "forbidden");
    server.stop().await;
}

/// Starts change-user-password and returns its session id, checking the form.
async fn start_password_change(server: &TestServer, admin: &mut TestClient, id: &str) -> String {
    let reply = run(
        server,
        admin,
        id,
        command(CHANGE_PASSWORD, Some("execute"), None),
    )
    .await;
    let cmd = command_of(&reply);
    assert_eq!(cmd.attr("status"), Some("executing"));
    let actions = cmd.get_child("actions", COMMANDS).expect("actions");
    assert_eq!(actions.attr("execute"), Some("complete"));
    assert!(actions.has_child("complete", COMMANDS));
    assert!(!actions.has_child("prev", COMMANDS) && !actions.has_child("next", COMMANDS));
    let form = cmd.get_child("x", DATA).expect("a form");
    assert_eq!(form.attr("type"), Some("form"));
    assert_eq!(field_values(form, "FORM_TYPE"), [ADMIN_FORM]);
    for var in ["accountjid", "password"] {
        let field = form
            .children()
            .find(|f| f.attr("var") == Some(var))
            .unwrap_or_else(|| panic!("no {var} in {form}"));
        assert!(field.has_child("required", DATA));
    }
    cmd.attr("sessionid").unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_changes_a_password_in_two_stages() {
    let server = server_with(TestOptions::default()).await;
    let mut root = server.login("root", PASSWORD, Some("r")).await;
    let session = start_password_change(&server, &mut root, "p1").await;
    let new_password = "a brand new password";

    // A password too short: bad-payload, and the session waits for a better form.
    let mut cmd = command(CHANGE_PASSWORD, Some("complete"), Some(&session));
    cmd.append_child(submit(&[
        ("FORM_TYPE", ADMIN_FORM),
        ("accountjid", "bob@rookery.test"),
        ("password", "short"),
    ]));
    let reply = run(&server, &mut root, "p2", cmd).await;
    assert_eq!(
        error_of(&reply),
        (
            "bad-request".into(),
            Some("bad-payload".into()),
            "modify".into()
        )
    );
    // A missing field, and an account of another server: the same.
    for (id, fields) in [
        ("p3", vec![("password", new_password)]),
        (
            "p4",
            vec![
                ("accountjid", "bob@elsewhere.example"),
                ("password", new_password),
            ],
        ),
    ] {
        let mut cmd = command(CHANGE_PASSWORD, Some("complete"), Some(&session));
        cmd.append_child(submit(&fields));
        let reply = run(&server, &mut root, id, cmd).await;
        assert_eq!(error_of(&reply).1.as_deref(), Some("bad-payload"), "{id}");
    }
    // A good form; `execute` stands for `complete` here.
    let mut cmd = command(CHANGE_PASSWORD, Some("execute"), Some(&session));
    cmd.append_child(submit(&[
        ("FORM_TYPE", ADMIN_FORM),
        ("accountjid", "bob@rookery.test"),
        ("password", new_password),
    ]));
    let reply = run(&server, &mut root, "p5", cmd).await;
    let cmd = command_of(&reply);
    assert_eq!(cmd.attr("status"), Some("completed"), "{reply}");
    assert_eq!(cmd.attr("sessionid"), Some(session.as_str()));
    let note = cmd.get_child("note", COMMANDS).expect("a note");
    assert_eq!(note.attr("type"), Some("info"));

    // Bob's password is the new one.
    let mut client = server.connect().await;
    client
        .login("bob", new_password, "SCRAM-SHA-256")
        .await
        .expect("the new password works");
    let mut client = server.connect().await;
    assert!(
        client.login("bob", PASSWORD, "SCRAM-SHA-1").await.is_err(),
        "the old one does not"
    );

    // The session is over.
    let reply = run(
        &server,
        &mut root,
        "p6",
        command(CHANGE_PASSWORD, Some("complete"), Some(&session)),
    )
    .await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("session-expired"));

    // An account that does not exist: the command completes with an error note.
    let session = start_password_change(&server, &mut root, "p7").await;
    let mut cmd = command(CHANGE_PASSWORD, None, Some(&session));
    cmd.append_child(submit(&[
        ("accountjid", "nobody@rookery.test"),
        ("password", new_password),
    ]));
    let reply = run(&server, &mut root, "p8", cmd).await;
    let cmd = command_of(&reply);
    assert_eq!(cmd.attr("status"), Some("completed"));
    assert_eq!(
        cmd.get_child("note", COMMANDS).unwrap().attr("type"),
        Some("error")
    );
    server.stop().await;
}

#[tokio::test]
async fn sessions_are_bound_to_their_requester_and_command() {
    let server = server_with(TestOptions::default()).await;
    let mut root = server.login("root", PASSWORD, Some("r1")).await;
    let mut root_elsewhere = server.login("root", PASSWORD, Some("r2")).await;
    let mut bob = server.login("bob", PASSWORD, None).await;
    let session = start_password_change(&server, &mut root, "b1").await;

    // Never given out.
    let reply = run(
        &server,
        &mut root,
        "b2",
        command(CHANGE_PASSWORD, Some("complete"), Some("0123456789abcdef")),
    )
    .await;
    assert_eq!(
        error_of(&reply),
        (
            "bad-request".into(),
            Some("bad-sessionid".into()),
            "modify".into()
        )
    );
    // The same account from another resource, or the session under another command's node.
    let reply = run(
        &server,
        &mut root_elsewhere,
        "b3",
        command(CHANGE_PASSWORD, Some("cancel"), Some(&session)),
    )
    .await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("bad-sessionid"));
    let reply = run(
        &server,
        &mut root,
        "b4",
        command(ONLINE_USERS, Some("cancel"), Some(&session)),
    )
    .await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("bad-sessionid"));
    // A normal user gets no further than the role check.
    let reply = run(
        &server,
        &mut bob,
        "b5",
        command(CHANGE_PASSWORD, Some("cancel"), Some(&session)),
    )
    .await;
    assert_eq!(error_of(&reply).0, "forbidden");

    // Actions: unknown, and not offered at this stage; the session survives both.
    let reply = run(
        &server,
        &mut root,
        "b6",
        command(CHANGE_PASSWORD, Some("jump"), Some(&session)),
    )
    .await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("malformed-action"));
    for (id, action) in [("b7", "prev"), ("b8", "next")] {
        let reply = run(
            &server,
            &mut root,
            id,
            command(CHANGE_PASSWORD, Some(action), Some(&session)),
        )
        .await;
        assert_eq!(
            error_of(&reply).1.as_deref(),
            Some("bad-action"),
            "{action}"
        );
    }
    // A command starts with execute.
    let reply = run(
        &server,
        &mut root,
        "b9",
        command(CHANGE_PASSWORD, Some("complete"), None),
    )
    .await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("bad-action"));
    // A form that is not a form.
    let mut cmd = command(CHANGE_PASSWORD, Some("complete"), Some(&session));
    cmd.append_child(Element::new("x", DATA).with_attr("type", "nonsense"));
    let reply = run(&server, &mut root, "b10", cmd).await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("bad-payload"));

    // Its owner cancels it; after that it is expired.
    let reply = run(
        &server,
        &mut root,
        "b11",
        command(CHANGE_PASSWORD, Some("cancel"), Some(&session)),
    )
    .await;
    assert_eq!(command_of(&reply).attr("status"), Some("canceled"));
    let reply = run(
        &server,
        &mut root,
        "b12",
        command(CHANGE_PASSWORD, Some("cancel"), Some(&session)),
    )
    .await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("session-expired"));
    server.stop().await;
}

#[tokio::test]
async fn an_idle_session_expires() {
    let server = server_with(TestOptions {
        limits: Some(Box::new(|l| {
            l.adhoc_session_timeout = Duration::from_millis(300);
        })),
        ..TestOptions::default()
    })
    .await;
    let mut root = server.login("root", PASSWORD, Some("r")).await;
    let idle = start_password_change(&server, &mut root, "e1").await;
    // Longer than the timeout (a lower bound only: the assertion holds however long the wait takes).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = run(
        &server,
        &mut root,
        "e2",
        command(CHANGE_PASSWORD, Some("complete"), Some(&idle)),
    )
    .await;
    assert_eq!(
        error_of(&reply),
        (
            "not-allowed".into(),
            Some("session-expired".into()),
            "cancel".into()
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn an_account_has_a_bounded_number_of_sessions() {
    let server = server_with(TestOptions {
        limits: Some(Box::new(|l| l.adhoc_sessions_per_account = 2)),
        ..TestOptions::default()
    })
    .await;
    let mut root = server.login("root", PASSWORD, Some("r")).await;
    // A third session ends the oldest of the two before it.
    let oldest = start_password_change(&server, &mut root, "e3").await;
    let middle = start_password_change(&server, &mut root, "e4").await;
    let newest = start_password_change(&server, &mut root, "e5").await;
    let reply = run(
        &server,
        &mut root,
        "e6",
        command(CHANGE_PASSWORD, Some("cancel"), Some(&oldest)),
    )
    .await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("session-expired"));
    for (id, session) in [("e7", &middle), ("e8", &newest)] {
        let reply = run(
            &server,
            &mut root,
            id,
            command(CHANGE_PASSWORD, Some("cancel"), Some(session)),
        )
        .await;
        assert_eq!(command_of(&reply).attr("status"), Some("canceled"));
    }
    server.stop().await;
}

// ---- XEP-0401 invite commands --------------------------------------------------------------------------------

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The invite of a completed invite command: its result form checked (title, `uri`, `expire` and `landing-url`
/// when `landing`), and the stored invite its `uri` names, which must be `expected_uri` with TOKEN replaced.
async fn created_invite(
    server: &TestServer,
    reply: &Element,
    expected_uri: &str,
    landing: bool,
) -> rookery_store::Invite {
    let cmd = command_of(reply);
    assert_eq!(cmd.attr("status"), Some("completed"), "{reply}");
    let form = cmd.get_child("x", DATA).expect("a result form");
    assert_eq!(form.attr("type"), Some("result"));
    assert_eq!(
        form.get_child("title", DATA).map(Element::text).as_deref(),
        Some("Your invite has been created")
    );
    let [uri] = &field_values(form, "uri")[..] else {
        panic!("one uri in {form}");
    };
    let (prefix, rest) = expected_uri.split_once("TOKEN").unwrap();
    let token = uri
        .strip_prefix(prefix)
        .and_then(|t| t.strip_suffix(rest))
        .unwrap_or_else(|| panic!("{uri} is not {expected_uri}"));
    assert_eq!(token.len(), 24);
    let landing_urls = field_values(form, "landing-url");
    if landing {
        assert_eq!(
            landing_urls,
            [format!("https://{}/invite/{token}/", server.domain)]
        );
    } else {
        assert!(landing_urls.is_empty(), "{form}");
    }
    let invite = server
        .server()
        .store
        .invites()
        .get(token)
        .await
        .unwrap()
        .expect("the invite is stored");
    let [expire] = &field_values(form, "expire")[..] else {
        panic!("one expire in {form}");
    };
    let expire =
        time::OffsetDateTime::parse(expire, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(expire.unix_timestamp(), invite.expires_at);
    invite
}

#[tokio::test]
async fn an_admin_creates_contact_and_account_invites() {
    let server = server_with(TestOptions::default()).await;
    let mut root = server.login("root", PASSWORD, Some("r")).await;
    let domain = server.domain.clone();

    let reply = run(
        &server,
        &mut root,
        "i1",
        command(CONTACT_INVITE, Some("execute"), None),
    )
    .await;
    let uri = format!("xmpp:root@{domain}?roster;preauth=TOKEN;ibr=y");
    let invite = created_invite(&server, &reply, &uri, true).await;
    assert_eq!(invite.kind, rookery_store::InviteKind::Contact);
    assert_eq!(invite.username.as_deref(), Some("root"));
    assert!(invite.allow_registration, "admins may invite new users");
    assert_eq!(invite.source, Some(format!("root@{domain}/r")));
    assert!((invite.expires_at - unix_now() - 7 * 86_400).abs() < 60);

    let reply = run(
        &server,
        &mut root,
        "i2",
        command(CREATE_ACCOUNT_INVITE, Some("execute"), None),
    )
    .await;
    let invite = created_invite(
        &server,
        &reply,
        &format!("xmpp:{domain}?register;preauth=TOKEN"),
        true,
    )
    .await;
    assert_eq!(invite.kind, rookery_store::InviteKind::Account);
    assert!(invite.username.is_none() && invite.roles.is_empty() && !invite.reusable);
    server.stop().await;
}

#[tokio::test]
async fn an_admin_creates_a_password_reset_invite_for_an_account() {
    let server = server_with(TestOptions::default()).await;
    let mut root = server.login("root", PASSWORD, Some("r")).await;
    let domain = server.domain.clone();
    let start = || command(RESET_INVITE, Some("execute"), None);
    let reply = run(&server, &mut root, "r1", start()).await;
    let cmd = command_of(&reply);
    assert_eq!(cmd.attr("status"), Some("executing"));
    let session = cmd.attr("sessionid").unwrap().to_owned();
    let form = cmd.get_child("x", DATA).expect("a form");
    assert!(
        form.children()
            .any(|f| f.attr("var") == Some("accountjid") && f.attr("type") == Some("jid-single"))
    );
    // Another server's account is a form to correct.
    let other = command(RESET_INVITE, Some("complete"), Some(&session))
        .with_child(submit(&[("accountjid", "bob@elsewhere.test")]));
    let reply = run(&server, &mut root, "r2", other).await;
    assert_eq!(error_of(&reply).1.as_deref(), Some("bad-payload"));
    let bob = format!("bob@{domain}");
    let answer = command(RESET_INVITE, Some("complete"), Some(&session))
        .with_child(submit(&[("accountjid", bob.as_str())]));
    let reply = run(&server, &mut root, "r3", answer).await;
    let invite = created_invite(
        &server,
        &reply,
        &format!("xmpp:bob@{domain}?register;preauth=TOKEN"),
        true,
    )
    .await;
    assert_eq!(invite.kind, rookery_store::InviteKind::Reset);
    assert_eq!(invite.username.as_deref(), Some("bob"));
    assert!((invite.expires_at - unix_now() - 86_400).abs() < 60);

    // No account, no invite: the command completes with an error note.
    let reply = run(&server, &mut root, "r4", start()).await;
    let session = command_of(&reply).attr("sessionid").unwrap().to_owned();
    let nobody = format!("nobody@{domain}");
    let answer = command(RESET_INVITE, Some("complete"), Some(&session))
        .with_child(submit(&[("accountjid", nobody.as_str())]));
    let reply = run(&server, &mut root, "r5", answer).await;
    let cmd = command_of(&reply);
    assert_eq!(cmd.attr("status"), Some("completed"));
    let note = cmd.get_child("note", COMMANDS).expect("a note");
    assert_eq!(note.attr("type"), Some("error"));
    assert!(cmd.get_child("x", DATA).is_none());
    let valid = server.server().store.invites().list_valid(0).await.unwrap();
    assert_eq!(valid.len(), 1, "only bob's: {valid:?}");
    server.stop().await;
}

#[tokio::test]
async fn normal_and_limited_users_may_not_invite_by_default() {
    let server = server_with(TestOptions::default()).await;
    let accounts = server.server().store.accounts();
    accounts.set_role("carol", Role::Limited).await.unwrap();
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    for client in [&mut bob, &mut carol] {
        assert_eq!(command_list(&server, client).await, OWN_CLIENTS);
        for node in [CONTACT_INVITE, CREATE_ACCOUNT_INVITE, RESET_INVITE] {
            let reply = run(&server, client, "n", command(node, Some("execute"), None)).await;
            assert_eq!(
                error_of(&reply),
                ("forbidden".into(), None, "cancel".into()),
                "{node}"
            );
        }
    }
    assert!(
        server
            .server()
            .store
            .invites()
            .list_valid(0)
            .await
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test]
async fn the_settings_open_contact_invites_to_normal_users_never_to_limited_ones() {
    let setting = |pairs: &[(&str, &str)]| TestOptions {
        vars: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..TestOptions::default()
    };
    // Contact invites only: bob's invite makes him a contact but creates no account, so it has no web page.
    let server = server_with(setting(&[("SNIKKET_TWEAK_ALLOW_CONTACT_INVITES", "1")])).await;
    let domain = server.domain.clone();
    server
        .server()
        .store
        .accounts()
        .set_role("carol", Role::Limited)
        .await
        .unwrap();
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    assert_eq!(
        command_list(&server, &mut bob).await,
        [LIST_CLIENTS, REVOKE_CLIENT, CONTACT_INVITE]
    );
    let reply = run(&server, &mut bob, "s1", command(CONTACT_INVITE, None, None)).await;
    let invite = created_invite(
        &server,
        &reply,
        &format!("xmpp:bob@{domain}?roster;preauth=TOKEN"),
        false,
    )
    .await;
    assert!(!invite.allow_registration);
    let reply = run(
        &server,
        &mut bob,
        "s2",
        command(CREATE_ACCOUNT_INVITE, None, None),
    )
    .await;
    assert_eq!(error_of(&reply).0, "forbidden");
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    assert_eq!(command_list(&server, &mut carol).await, OWN_CLIENTS);
    let reply = run(
        &server,
        &mut carol,
        "s3",
        command(CONTACT_INVITE, None, None),
    )
    .await;
    assert_eq!(error_of(&reply).0, "forbidden");
    server.stop().await;

    // With user invites as well, bob's contact invites also create accounts.
    let server = server_with(setting(&[
        ("SNIKKET_TWEAK_ALLOW_CONTACT_INVITES", "1"),
        ("SNIKKET_TWEAK_ALLOW_USER_INVITES", "1"),
    ]))
    .await;
    server
        .server()
        .store
        .accounts()
        .set_role("carol", Role::Limited)
        .await
        .unwrap();
    let mut bob = server.login("bob", PASSWORD, Some("b")).await;
    let reply = run(&server, &mut bob, "s4", command(CONTACT_INVITE, None, None)).await;
    let invite = created_invite(
        &server,
        &reply,
        &format!("xmpp:bob@{domain}?roster;preauth=TOKEN;ibr=y"),
        true,
    )
    .await;
    assert!(invite.allow_registration);
    let mut carol = server.login("carol", PASSWORD, Some("c")).await;
    let reply = run(
        &server,
        &mut carol,
        "s5",
        command(CONTACT_INVITE, None, None),
    )
    .await;
    assert_eq!(error_of(&reply).0, "forbidden");
    server.stop().await;
}
