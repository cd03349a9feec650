//! SASL2 (XEP-0388), Bind2 (XEP-0386), FAST (XEP-0484) and client management against the real server on
//! 127.0.0.1, with a raw client: a password login that binds and gets a token, a one-round-trip FAST login with the
//! token bound to the TLS exporter, a wrong token, and revocation closing the client's session and ending its token.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rookery_sasl::ht;
use rookery_test_support::{Ending, TestClient, TestServer};
use rookery_xml::{Element, ns};
use sasl::client::Mechanism as _;

const PASSWORD: &str = "correct horse battery";
const SASL2: &str = "urn:xmpp:sasl:2";
const BIND2: &str = "urn:xmpp:bind:0";
const FAST: &str = "urn:xmpp:fast:0";
const COMMANDS: &str = "http://jabber.org/protocol/commands";
const DATA: &str = "jabber:x:data";
const CLIENT_ID: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

fn user_agent() -> Element {
    Element::new("user-agent", SASL2)
        .with_attr("id", CLIENT_ID)
        .with_child(Element::new("software", SASL2).with_text("Snikket"))
        .with_child(Element::new("device", SASL2).with_text("Pixel 7"))
}

fn bind_snikket() -> Element {
    Element::new("bind", BIND2).with_child(Element::new("tag", BIND2).with_text("Snikket"))
}

/// SCRAM-SHA-1 through SASL2 with `extra` in `<authenticate/>`; returns the `<success/>` or `<failure/>`.
async fn password_login(client: &mut TestClient, password: &str, extra: Vec<Element>) -> Element {
    let creds = sasl::common::Credentials::default()
        .with_username("alice")
        .with_password(password)
        .with_channel_binding(sasl::common::ChannelBinding::None);
    let mut scram =
        sasl::client::mechanisms::Scram::<sasl::common::scram::Sha1>::from_credentials(creds)
            .unwrap();
    let mut auth = Element::new("authenticate", SASL2)
        .with_attr("mechanism", "SCRAM-SHA-1")
        .with_child(
            Element::new("initial-response", SASL2).with_text(BASE64.encode(scram.initial())),
        );
    for child in extra {
        auth.append_child(child);
    }
    client.send(&auth).await.unwrap();
    let challenge = client.next_element().await.unwrap();
    assert!(challenge.is("challenge", SASL2), "{challenge}");
    let response = scram
        .response(&BASE64.decode(challenge.text()).unwrap())
        .unwrap();
    client
        .send(&Element::new("response", SASL2).with_text(BASE64.encode(response)))
        .await
        .unwrap();
    client.next_element().await.unwrap()
}

/// HT-SHA-256-EXPR with `token` over this connection's exporter; returns the answer.
async fn fast_login(client: &mut TestClient, token: &str, count: u64) -> (Element, Vec<u8>) {
    let exporter = client.tls_exporter().unwrap();
    let mut data = b"alice\0".to_vec();
    data.extend_from_slice(&ht::client_proof(token, &exporter));
    let auth = Element::new("authenticate", SASL2)
        .with_attr("mechanism", "HT-SHA-256-EXPR")
        .with_child(Element::new("initial-response", SASL2).with_text(BASE64.encode(data)))
        .with_child(user_agent())
        .with_child(Element::new("fast", FAST).with_attr("count", count.to_string()))
        .with_child(bind_snikket());
    client.send(&auth).await.unwrap();
    (client.next_element().await.unwrap(), exporter)
}

fn condition(failure: &Element) -> String {
    assert!(failure.is("failure", SASL2), "{failure}");
    failure
        .children()
        .find(|c| c.ns() == ns::SASL)
        .map(|c| c.name().to_owned())
        .unwrap()
}

fn bound_jid(success: &Element) -> String {
    assert!(success.is("success", SASL2), "{success}");
    assert!(success.has_child("bound", BIND2), "{success}");
    success
        .get_child("authorization-identifier", SASL2)
        .unwrap()
        .text()
}

#[tokio::test]
async fn password_then_fast_then_revoke() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;

    // Features before login: SASL1 and SASL2 side by side, with Bind2 and FAST inline.
    let mut phone = server.connect().await;
    let features = phone.features.clone().unwrap();
    assert!(features.has_child("mechanisms", ns::SASL));
    let auth = features.get_child("authentication", SASL2).unwrap();
    let inline = auth.get_child("inline", SASL2).unwrap();
    assert!(inline.has_child("bind", BIND2));
    let fast: Vec<String> = inline
        .get_child("fast", FAST)
        .unwrap()
        .children()
        .map(Element::text)
        .collect();
    assert!(fast.contains(&"HT-SHA-256-EXPR".to_owned()), "{fast:?}");

    // A password login that binds and asks for a token, in one exchange and without a stream restart.
    let success = password_login(
        &mut phone,
        PASSWORD,
        vec![
            user_agent(),
            bind_snikket(),
            Element::new("request-token", FAST).with_attr("mechanism", "HT-SHA-256-EXPR"),
        ],
    )
    .await;
    let jid = bound_jid(&success);
    assert!(
        jid.starts_with("alice@") && jid.contains("/Snikket."),
        "{jid}"
    );
    let token = success.get_child("token", FAST).unwrap();
    let secret = token.attr("token").unwrap().to_owned();
    assert!(secret.len() >= 43, "at least 256 bits");
    let expiry = time::OffsetDateTime::parse(
        token.attr("expiry").unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expiry > time::OffsetDateTime::now_utc() + time::Duration::days(20));
    phone.ping_server().await.unwrap();
    drop(phone);

    // FAST: one round trip, the server proves it knows the token, same resource for the same client.
    let mut phone = server.connect().await;
    let (success, exporter) = fast_login(&mut phone, &secret, 1).await;
    assert_eq!(bound_jid(&success), jid);
    let proof = BASE64
        .decode(success.get_child("additional-data", SASL2).unwrap().text())
        .unwrap();
    assert_eq!(proof, ht::server_proof(&secret, &exporter));
    assert!(
        success.get_child("token", FAST).is_none(),
        "a fresh token is not rotated"
    );
    phone.ping_server().await.unwrap();

    // The same count again is a replay; a wrong token fails too; neither binds anything.
    let mut replay = server.connect().await;
    let (failure, _) = fast_login(&mut replay, &secret, 1).await;
    assert_eq!(condition(&failure), "not-authorized");
    let mut guess = server.connect().await;
    let (failure, _) = fast_login(&mut guess, "not the token", 2).await;
    assert_eq!(condition(&failure), "not-authorized");

    // From another client, list and revoke the phone: its session is closed and the token is gone.
    let mut laptop = server.login("alice", PASSWORD, Some("laptop")).await;
    let list = command_iq(
        &server,
        "l",
        "urn:rookery:client-management#list",
        None,
        None,
    );
    let reply = laptop.iq(&list).await.unwrap();
    let text = reply.to_string();
    assert!(
        text.contains(CLIENT_ID) && text.contains("Snikket on Pixel 7"),
        "{text}"
    );
    let start = command_iq(
        &server,
        "r1",
        "urn:rookery:client-management#revoke",
        None,
        None,
    );
    let reply = laptop.iq(&start).await.unwrap();
    let cmd = reply.get_child("command", COMMANDS).unwrap();
    let session = cmd.attr("sessionid").unwrap().to_owned();
    assert!(cmd.to_string().contains(CLIENT_ID), "{cmd}");
    let submit = Element::new("x", DATA)
        .with_attr("type", "submit")
        .with_child(
            Element::new("field", DATA)
                .with_attr("var", "client")
                .with_child(Element::new("value", DATA).with_text(CLIENT_ID)),
        );
    let done = command_iq(
        &server,
        "r2",
        "urn:rookery:client-management#revoke",
        Some(&session),
        Some(submit),
    );
    let reply = laptop.iq(&done).await.unwrap();
    assert_eq!(
        reply.get_child("command", COMMANDS).unwrap().attr("status"),
        Some("completed"),
        "{reply}"
    );
    assert_eq!(
        phone.ending().await.unwrap(),
        Ending::StreamError("not-authorized".into())
    );
    let mut again = server.connect().await;
    let (failure, _) = fast_login(&mut again, &secret, 5).await;
    assert_eq!(condition(&failure), "not-authorized");
    laptop.sync().await.unwrap();
}

fn command_iq(
    server: &TestServer,
    id: &str,
    node: &str,
    session: Option<&str>,
    form: Option<Element>,
) -> Element {
    let mut command = Element::new("command", COMMANDS).with_attr("node", node);
    if let Some(session) = session {
        command.set_attr("sessionid", session);
    }
    if let Some(form) = form {
        command.append_child(form);
    }
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_attr("to", server.domain.as_str())
        .with_child(command)
}

#[tokio::test]
async fn sasl2_errors_and_plain_bind_after_sasl2() {
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    let mut client = server.connect().await;
    let failure = password_login(&mut client, "wrong password", Vec::new()).await;
    assert_eq!(condition(&failure), "not-authorized");
    client
        .send(&Element::new("authenticate", SASL2).with_attr("mechanism", "CRAM-MD5"))
        .await
        .unwrap();
    assert_eq!(
        condition(&client.next_element().await.unwrap()),
        "invalid-mechanism"
    );

    // Without Bind2: the bare JID, then an RFC 6120 bind on the same stream.
    let success = password_login(&mut client, PASSWORD, Vec::new()).await;
    assert!(success.is("success", SASL2), "{success}");
    assert_eq!(
        success
            .get_child("authorization-identifier", SASL2)
            .unwrap()
            .text(),
        format!("alice@{}", server.domain)
    );
    let jid = client.bind(Some("desk")).await.unwrap();
    assert!(jid.ends_with("/desk"));
    client.ping_server().await.unwrap();

    // Not offered, and refused, before TLS.
    let mut plain = TestClient::connect_tcp(server.c2s, &server.domain)
        .await
        .unwrap();
    plain.open_stream().await.unwrap();
    assert!(
        !plain
            .features
            .clone()
            .unwrap()
            .has_child("authentication", SASL2)
    );
}

/// What the Snikket Android app does: one SASL2 exchange that binds and enables stream management inline; after a
/// cut connection, one FAST exchange that resumes the session inline and gets what was sent meanwhile.
#[tokio::test]
async fn inline_stream_management_enable_then_fast_resumption() {
    const SM: &str = "urn:xmpp:sm:3";
    let server = TestServer::start().await;
    server.add_user("alice", PASSWORD).await;
    server.add_user("bob", PASSWORD).await;

    let mut phone = server.connect().await;
    let features = phone.features.clone().unwrap();
    let inline = features
        .get_child("authentication", SASL2)
        .and_then(|a| a.get_child("inline", SASL2))
        .unwrap();
    assert!(
        inline.has_child("sm", SM),
        "inline resumption offered: {inline}"
    );
    let bind2_inline: Vec<String> = inline
        .get_child("bind", BIND2)
        .and_then(|b| b.get_child("inline", BIND2))
        .map(|i| {
            i.children()
                .filter_map(|f| f.attr("var"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    assert!(bind2_inline.contains(&SM.to_owned()), "{bind2_inline:?}");

    assert!(
        bind2_inline.contains(&"urn:xmpp:carbons:2".to_owned()),
        "{bind2_inline:?}"
    );
    let bind = bind_snikket()
        .with_child(Element::new("enable", "urn:xmpp:carbons:2"))
        .with_child(Element::new("enable", SM).with_attr("resume", "true"));
    let success = password_login(
        &mut phone,
        PASSWORD,
        vec![
            user_agent(),
            bind,
            Element::new("request-token", FAST).with_attr("mechanism", "HT-SHA-256-EXPR"),
        ],
    )
    .await;
    let jid = bound_jid(&success);
    let enabled = success
        .get_child("bound", BIND2)
        .and_then(|b| b.get_child("enabled", SM))
        .unwrap_or_else(|| panic!("no inline <enabled/>: {success}"));
    assert_eq!(enabled.attr("resume"), Some("true"));
    let previd = enabled.attr("id").unwrap().to_owned();
    let sessions = server.server().sessions.sessions_of("alice");
    assert!(sessions[0].state().carbons, "carbons enabled inline");
    let token = success
        .get_child("token", FAST)
        .and_then(|t| t.attr("token"))
        .unwrap()
        .to_owned();
    phone
        .send(&Element::new("presence", ns::CLIENT))
        .await
        .unwrap();
    // The presence comes back, counted: h = 1 once it is read.
    let own = phone
        .next_matching(|e| e.name() == "presence")
        .await
        .unwrap();
    assert_eq!(own.attr("from"), Some(jid.as_str()));
    drop(phone);

    let mut bob = server.login("bob", PASSWORD, Some("desk")).await;
    let message = Element::new("message", ns::CLIENT)
        .with_attr("to", jid.as_str())
        .with_attr("type", "chat")
        .with_child(Element::new("body", ns::CLIENT).with_text("while you were away"));
    bob.send(&message).await.unwrap();
    bob.sync().await.unwrap();

    let mut phone = server.connect().await;
    let exporter = phone.tls_exporter().unwrap();
    let mut data = b"alice\0".to_vec();
    data.extend_from_slice(&ht::client_proof(&token, &exporter));
    let auth = Element::new("authenticate", SASL2)
        .with_attr("mechanism", "HT-SHA-256-EXPR")
        .with_child(Element::new("initial-response", SASL2).with_text(BASE64.encode(data)))
        .with_child(user_agent())
        .with_child(Element::new("fast", FAST).with_attr("count", "1"))
        .with_child(
            Element::new("resume", SM)
                .with_attr("previd", previd.as_str())
                .with_attr("h", "1"),
        )
        .with_child(bind_snikket());
    phone.send(&auth).await.unwrap();
    let success = phone.next_element().await.unwrap();
    assert!(success.is("success", SASL2), "{success}");
    let resumed = success
        .get_child("resumed", SM)
        .unwrap_or_else(|| panic!("no inline <resumed/>: {success}"));
    assert_eq!(resumed.attr("previd"), Some(previd.as_str()));
    assert!(
        !success.has_child("bound", BIND2),
        "resumed, not bound anew"
    );
    assert_eq!(
        success
            .get_child("authorization-identifier", SASL2)
            .unwrap()
            .text(),
        jid
    );
    let got = phone
        .next_matching(|e| e.name() == "message")
        .await
        .unwrap();
    assert_eq!(
        got.get_child("body", ns::CLIENT)
            .map(Element::text)
            .as_deref(),
        Some("while you were away")
    );
    assert_eq!(server.server().sessions.sessions_of("alice").len(), 1);

    // A resumption that cannot happen says so and binds a new session as asked.
    drop(phone);
    let mut other = server.connect().await;
    let success = password_login(
        &mut other,
        PASSWORD,
        vec![
            Element::new("resume", SM)
                .with_attr("previd", "no-such-session")
                .with_attr("h", "0"),
            bind_snikket(),
        ],
    )
    .await;
    assert!(success.has_child("failed", SM), "{success}");
    bound_jid(&success);
}
