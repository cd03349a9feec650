//! The everyday XEPs and ad-hoc commands against the built `rookery` binary, with slixmpp's own plugins
//! (xep_0012, 0030/0128, 0049, 0050/0133, 0054, 0092, 0202): a client nobody here wrote must agree with the server.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";
const NEW_PASSWORD: &str = "another long password";
const SITE_NAME: &str = "Interop Family";
const ABUSE: &str = "abuse@interop.test";

fn jid(user: &str) -> String {
    format!("{user}@{DOMAIN}")
}

#[test]
fn slixmpp_plugins_agree_with_the_server() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.set_env("SNIKKET_SITE_NAME", SITE_NAME);
    server.set_env("SNIKKET_ABUSE_EMAIL", ABUSE);
    for user in ["ada", "bob", "cyd"] {
        server.add_user(user, PASSWORD);
    }
    let out = server.command(&["user", "role", "ada", "admin"], None);
    assert!(
        out.status.success(),
        "rookery user role: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.start().unwrap();
    // The server put every account in the default circle at its first start; these checks need strangers (no
    // subscription between ada and bob), so the circle goes before anyone logs in.
    server.delete_default_circle();

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
        &jid("ada"),
        "--user",
        &jid("bob"),
        "--third",
        &jid("cyd"),
        "--password",
        PASSWORD,
        "--new-password",
        NEW_PASSWORD,
        "--version",
        env!("CARGO_PKG_VERSION"),
        "--site-name",
        SITE_NAME,
        "--abuse",
        ABUSE,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("everyday_xeps.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "LOGGED_IN ada@interop.test/",
        "DISCO_FORM_OK mailto:abuse@interop.test",
        "VERSION_OK Rookery",
        "TIME_OK",
        "LAST_OK",
        "VCARD_OK",
        "PRIVATE_OK",
        "ADHOC_OK online 2",
        "PASS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
