//! slixmpp's XEP-0280 and XEP-0352 plugins against the built `rookery` binary: a second resource sees sent and
//! received carbons, and an inactive client's presence update waits for the next message.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn slixmpp_gets_carbons_and_holds_presence_while_inactive() {
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
        &format!("alice@{DOMAIN}"),
        "--bob",
        &format!("bob@{DOMAIN}"),
        "--password",
        PASSWORD,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("carbons_csi.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "CARBONS_ENABLED".to_owned(),
        format!("SENT_CARBON alice@{DOMAIN}/phone -> bob@{DOMAIN}/slix"),
        format!("RECEIVED_CARBON bob@{DOMAIN}/slix -> alice@{DOMAIN}/phone"),
        "CSI_FEATURE".to_owned(),
        "PRESENCE_HELD".to_owned(),
        "FLUSHED_IN_ORDER".to_owned(),
        "PASS".to_owned(),
    ] {
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
