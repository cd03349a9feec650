//! XEP-0401 invites from an app: slixmpp's xep_0050 plugin runs `urn:xmpp:invite#invite` as an administrator
//! against the built `rookery` binary, as Snikket's Android app does, and reads the invite's `uri`; the invite it
//! names is the one the server stored. A normal user is refused.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn an_admin_creates_a_contact_invite_from_an_app() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.add_user("root", PASSWORD);
    server.add_user("bob", PASSWORD);
    let out = server.command(&["user", "role", "root", "admin"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        "--admin",
        &format!("root@{DOMAIN}"),
        "--user",
        &format!("bob@{DOMAIN}"),
        "--password",
        PASSWORD,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("invites.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    assert!(out.contains("USER_REFUSED forbidden"), "{out}");
    assert!(out.contains("PASS"), "{out}");
    let invite_line = out
        .lines()
        .find(|l| l.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no INVITE line in:\n{out}"));
    let field = |name: &str| {
        invite_line
            .split(' ')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {invite_line}"))
            .to_owned()
    };
    // An admin's contact invite also lets its holder register.
    let uri = field("uri");
    let token = uri
        .strip_prefix(&format!("xmpp:root@{DOMAIN}?roster;preauth="))
        .and_then(|rest| rest.strip_suffix(";ibr=y"))
        .unwrap_or_else(|| panic!("unexpected uri {uri}"));
    assert_eq!(token.len(), 24, "{uri}");
    assert_eq!(
        field("landing"),
        format!("https://{DOMAIN}/invite/{token}/")
    );
    assert!(field("expire").ends_with('Z'), "{invite_line}");

    // The server stored that invite, a contact invite of root.
    let listed = server.command(&["invite", "list"], None);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let row = listed
        .lines()
        .find(|l| l.starts_with(token))
        .unwrap_or_else(|| panic!("{token} not listed:\n{listed}"));
    assert!(row.contains("\tcontact\t"), "{row}");
    assert!(row.ends_with(&format!("root@{DOMAIN}")), "{row}");
    server.stop();
}
