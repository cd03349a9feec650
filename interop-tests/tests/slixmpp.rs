//! slixmpp (PyPI), an XMPP client nobody here wrote, against the built `rookery` binary over real sockets.

use std::path::{Path, PathBuf};

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_store::{Account, Role, Store};
use rookery_test_support::{PROSODY_ALICE_PASSWORD, TestCa, prosody_alice_credentials};

const PASSWORD: &str = "a long enough password";

fn jid(user: &str) -> String {
    format!("{user}@{DOMAIN}")
}

/// Runs slix_client.py against `server`, trusting `ca`.
fn slix(
    server: &Rookery,
    ca: &Path,
    direct_tls: bool,
    user: &str,
    password: &str,
    extra: &[&str],
) -> (bool, String) {
    let port = if direct_tls {
        server.c2s_direct_tls.port()
    } else {
        server.c2s.port()
    };
    let mut args: Vec<String> = vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--jid".into(),
        jid(user),
        "--password".into(),
        password.into(),
        "--ca".into(),
        ca.display().to_string(),
    ];
    if direct_tls {
        args.push("--direct-tls".into());
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    run_python("slix_client.py", &args)
}

/// A started server with a CA-signed certificate, its CA file, and alice and bob.
fn server_with_users() -> (Rookery, TestCa, PathBuf) {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server.start().unwrap();
    (server, ca, ca_file)
}

#[test]
fn starttls_login_ping_disco_and_a_message() {
    let (mut server, _ca, ca_file) = server_with_users();
    let bob = jid("bob");
    let (ok, out) = slix(
        &server,
        &ca_file,
        false,
        "alice",
        PASSWORD,
        &[
            "--ping",
            "--disco",
            "--peer-jid",
            &bob,
            "--peer-password",
            PASSWORD,
        ],
    );
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "LOGGED_IN alice@interop.test/",
        "PING_OK",
        "DISCO_OK",
        "MESSAGE_OK",
        "PASS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}

#[test]
fn direct_tls_login() {
    let (mut server, _ca, ca_file) = server_with_users();
    let (ok, out) = slix(&server, &ca_file, true, "alice", PASSWORD, &["--ping"]);
    assert!(
        ok && out.contains("PING_OK"),
        "slixmpp failed:\n{out}\nserver log:\n{}",
        server.log()
    );
    server.stop();
}

#[test]
fn each_scram_mechanism_and_a_wrong_password() {
    let (mut server, _ca, ca_file) = server_with_users();
    for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let (ok, out) = slix(
            &server,
            &ca_file,
            false,
            "alice",
            PASSWORD,
            &["--mech", mech],
        );
        assert!(ok, "{mech} failed:\n{out}\nserver log:\n{}", server.log());
    }
    let (ok, out) = slix(
        &server,
        &ca_file,
        false,
        "alice",
        "not the password",
        &["--expect-auth-failure"],
    );
    assert!(ok && out.contains("AUTH_FAILED not-authorized"), "{out}");
    assert!(
        server.log().contains("authentication failed"),
        "the failure is logged"
    );
    server.stop();
}

#[test]
fn a_prosody_credential_logs_in_with_its_original_password() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.start().unwrap();
    // Written into the database of the running server, as an importer would.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open_sqlite(&server.database()).await.unwrap();
        let account = Account {
            username: "alice".into(),
            role: Role::Normal,
            credentials: prosody_alice_credentials(),
            created_at: 0,
            disabled: false,
        };
        store.accounts().insert(&account).await.unwrap();
        store.close().await;
    });
    let (ok, out) = slix(
        &server,
        &ca_file,
        false,
        "alice",
        PROSODY_ALICE_PASSWORD,
        &["--ping"],
    );
    assert!(
        ok && out.contains("PING_OK"),
        "slixmpp failed:\n{out}\nserver log:\n{}",
        server.log()
    );
    let (ok, out) = slix(
        &server,
        &ca_file,
        false,
        "alice",
        "wrong horse battery",
        &["--expect-auth-failure"],
    );
    assert!(ok && out.contains("AUTH_FAILED not-authorized"), "{out}");
    server.stop();
}

#[test]
fn a_fresh_data_directory_gets_a_self_signed_certificate_and_serves() {
    // No certificate and no database: what the README's run command starts with.
    let mut server = Rookery::new(None);
    server.add_user("alice", PASSWORD);
    server.start().unwrap();
    let log = server.log();
    assert!(
        log.contains("self-signed"),
        "a loud warning about the self-signed certificate:\n{log}"
    );
    let cert = server.data_dir.path().join("rookery/self-signed/cert.pem");
    assert!(
        cert.exists(),
        "the self-signed certificate is kept in the data directory"
    );
    // Trusting that certificate (as a user who accepts it would), slixmpp logs in.
    let (ok, out) = slix(&server, &cert, false, "alice", PASSWORD, &["--ping"]);
    assert!(
        ok && out.contains("PING_OK"),
        "slixmpp failed:\n{out}\nserver log:\n{}",
        server.log()
    );
    let status = server.stop().expect("the server was running");
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}"
    );
}
