//! slixmpp clients subscribe to each other, share presence and exchange messages through the built `rookery`
//! binary (RFC 6121 as a real client library does it).

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn subscriptions_presence_and_messages_with_slixmpp() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server.start().unwrap();
    // alice and bob must start as strangers: this test makes them subscribe to each other.
    server.delete_default_circle();
    let args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &server.c2s.port().to_string(),
        "--domain",
        DOMAIN,
        "--password",
        PASSWORD,
        "--ca",
        &ca_file.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("roster_presence.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "ROSTER_VERSIONING_OK",
        "ROSTER_PUSH_OK",
        "SUBSCRIPTION_BOTH_OK",
        "PRESENCE_OK",
        "MESSAGES_OK",
        "UNAVAILABLE_OK",
        "PASS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
