//! Registration by invite as the Snikket apps do it (spec §5.5 A), through slixmpp against the built `rookery`
//! binary: the stream features, the raw `<preauth/>` token, the XEP-0077 form, registration, login on the same
//! stream, and the roster holding the inviter of the contact invite with subscription `both`.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_store::{Invite, InviteKind, Store};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

/// A contact invite from `inviter` that allows registration, written straight into the server's database.
fn create_contact_invite(server: &Rookery, inviter: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let invite = Invite {
        token: Invite::new_token(),
        kind: InviteKind::Contact,
        username: Some(inviter.to_owned()),
        allow_registration: true,
        reusable: false,
        roles: Vec::new(),
        circles: Vec::new(),
        note: None,
        source: Some("interop test".into()),
        created_at: now,
        expires_at: now + 3600,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open_sqlite(&server.database()).await.unwrap();
        store.invites().create(&invite).await.unwrap();
        store.close().await;
    });
    invite.token
}

#[test]
fn slixmpp_registers_with_an_invite_like_the_android_app() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    // Creates the database, which the invite goes into before the server starts.
    server.add_user("alice", PASSWORD);
    let token = create_contact_invite(&server, "alice");
    server.start().unwrap();
    let args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &server.c2s.port().to_string(),
        "--ca",
        &ca_file.display().to_string(),
        "--jid",
        &format!("newbie@{DOMAIN}"),
        "--password",
        PASSWORD,
        "--token",
        &token,
        "--inviter",
        &format!("alice@{DOMAIN}"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("registration.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "FEATURES_OK",
        "TOKEN_ACCEPTED",
        "FORM_OK",
        "REGISTERED",
        "LOGGED_IN",
        "ROSTER_OK",
        "PASS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
