//! slixmpp's XEP-0191 and XEP-0077 plugins against the built `rookery` binary: blocking, unblocking and a password
//! change as a client nobody here wrote does them.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn slixmpp_blocks_unblocks_and_changes_a_password() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server.start().unwrap();

    let args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &server.c2s.port().to_string(),
        "--ca",
        &ca_file.display().to_string(),
        "--alice",
        &format!("alice@{DOMAIN}/slix"),
        "--bob",
        &format!("bob@{DOMAIN}/slix"),
        "--password",
        PASSWORD,
        "--new-password",
        "an entirely new password",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("blocking.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        format!("BLOCKED bob@{DOMAIN}"),
        "INBOUND_BLOCKED service-unavailable".to_owned(),
        "OUTBOUND_BLOCKED not-acceptable".to_owned(),
        format!("UNBLOCKED bob@{DOMAIN}"),
        "PASSWORD_REFUSED not-acceptable Password is too short (minimum 10 characters)".to_owned(),
        "PASSWORD_CHANGED".to_owned(),
        "NEW_PASSWORD_WORKS".to_owned(),
        "PASS".to_owned(),
    ] {
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
