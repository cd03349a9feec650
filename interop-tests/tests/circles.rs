//! Snikket's circles with slixmpp through the built `rookery` binary: two accounts in a circle log in and each
//! roster shows the other, subscription `both`, in the circle's group, without either asking.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";
const SITE: &str = "Interop Flock";

#[test]
fn circle_members_see_each_other_with_slixmpp() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    server.set_env("SNIKKET_SITE_NAME", SITE);
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    // A circle made with the command line before the server first starts; the server then adds both accounts to
    // the default circle, named after the site.
    let out = server.command(&["circle", "create", "Family"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let family = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    for user in ["alice", "bob"] {
        let out = server.command(&["circle", "add", &family, user], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.start().unwrap();
    let listed = server.command(&["circle", "list"], None);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains(&format!("default\t{SITE}\t2")), "{listed}");

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
        "--groups",
        &format!("Family,{SITE}"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("circles.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in ["ALICE_ROSTER_OK", "BOB_ROSTER_OK", "PRESENCE_OK", "PASS"] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
