//! Account removal (XEP-0077 `<remove/>`) through slixmpp against the built `rookery` binary: the session is closed,
//! logins are refused with "Account deleted" during the grace period, and once it is over (here 0 days, so at the
//! next clean-up, which runs when the server starts) the account is gone while others stay.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn a_removed_account_is_refused_then_deleted_after_the_grace_period() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.set_env("SNIKKET_RETENTION_DAYS", "0");
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
        "--jid",
        &format!("alice@{DOMAIN}"),
        "--password",
        PASSWORD,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("account_removal.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "REMOVE_ACCEPTED",
        "SESSION_CLOSED",
        "LOGIN_REFUSED account-disabled Account deleted",
        "PASS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // Still there, disabled, until the clean-up runs.
    let listed = server.command(&["user", "list"], None);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("alice"), "{listed}");

    // The clean-up runs when the server starts: the grace period (0 days) is over.
    server.stop();
    server.start().unwrap();
    // The clean-up runs beside the listeners: ask until it has (the bound only guards against a hang).
    let mut listed = String::new();
    for _ in 0..200 {
        let out = server.command(&["user", "list"], None);
        listed = String::from_utf8_lossy(&out.stdout).into_owned();
        if !listed.contains("alice") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !listed.contains("alice"),
        "alice should be deleted:\n{listed}"
    );
    assert!(listed.contains("bob"), "{listed}");
    server.stop();
}
