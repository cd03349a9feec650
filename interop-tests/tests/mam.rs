//! slixmpp's XEP-0313 plugin against the built `rookery` binary: a second device of an account fetches the history
//! its first device and two contacts made, paging both ways and filtering by contact.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn slixmpp_pages_through_the_archive_both_ways() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    for user in ["alice", "bob", "carol"] {
        server.add_user(user, PASSWORD);
    }
    server.start().unwrap();

    let args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &server.c2s.port().to_string(),
        "--ca",
        &ca_file.display().to_string(),
        "--domain",
        DOMAIN,
        "--password",
        PASSWORD,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("mam.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "SENT 17",
        "DISCO_OK",
        "FORWARDS_OK 17",
        "BACKWARDS_OK 17",
        "WITH_OK 2",
        "PASS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
