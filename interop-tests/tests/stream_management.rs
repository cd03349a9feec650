//! XEP-0198 stream management with slixmpp against the built `rookery` binary: a client whose TCP connection is
//! cut resumes its session on a new connection and gets every message sent while it was away.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn slixmpp_resumes_after_a_cut_connection_and_misses_nothing() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server.start().unwrap();
    let args: Vec<String> = vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        server.c2s.port().to_string(),
        "--domain".into(),
        DOMAIN.into(),
        "--password".into(),
        PASSWORD.into(),
        "--ca".into(),
        ca_file.display().to_string(),
        "--count".into(),
        "5".into(),
    ];
    let (ok, out) = run_python("stream_management.py", &args);
    assert!(
        ok && out.contains("RESUMED_OK 5"),
        "slixmpp:\n{out}\nserver log:\n{}",
        server.log()
    );
    assert!(server.log().contains("session resumed"), "{}", server.log());
}
