//! xmpp.js (npm `@xmpp/client`), a second client stack nobody here wrote, runs the instant-messaging scenarios of
//! interop-tests/js/scenarios against the built `rookery` binary: roster, subscriptions and presence, message
//! delivery and offline storage, blocking, vcard/private storage/version/time/uptime, password change, PEP (an
//! OMEMO device list with `open` access, notifications by entity capabilities).
//!
//! Each scenario was checked against Prosody 0.12 with interop-tests/js/run-against-prosody.sh; here it runs
//! against a fresh Rookery with no allowance for deviations. Node is `$ROOKERY_NODE`, else `node` on the PATH; the
//! modules are those `npm ci` installs in interop-tests/js (./scripts/test does it on a fresh machine).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rookery_interop_tests::{DOMAIN, Rookery, repo_root};
use rookery_test_support::TestCa;

/// The accounts every scenario gets (the same as run-against-prosody.sh creates). No password contains its
/// username: Snikket's password policy refuses such a password in a change, and the password scenario puts the
/// original back.
const ACCOUNTS: [(&str, &str); 4] = [
    ("alice", "first-secret-1111"),
    ("bob", "second-secret-222"),
    ("carol", "third-secret-3333"),
    ("dave", "fourth-secret-444"),
];

/// The scenario's own hang guard (seconds); this side waits a little longer before killing it.
const SCENARIO_TIMEOUT_S: u64 = 90;

fn js_dir() -> PathBuf {
    repo_root().join("interop-tests/js")
}

fn node() -> PathBuf {
    std::env::var_os("ROOKERY_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from)
}

/// Runs scenario `name` against a fresh server; fails the test with the scenario's output and the server log.
fn scenario(name: &str) {
    let modules = js_dir().join("node_modules/@xmpp/client");
    assert!(
        modules.exists(),
        "{} is missing: run `npm ci` in interop-tests/js (./scripts/test does)",
        modules.display()
    );
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    for (user, password) in ACCOUNTS {
        server.add_user(user, password);
    }
    server.start().unwrap();
    // The scenarios start from strangers with empty rosters, not from the default circle's contacts.
    server.delete_default_circle();

    let mut cmd = Command::new(node());
    cmd.current_dir(js_dir())
        .arg(format!("scenarios/{name}.mjs"))
        .args(["--host", "127.0.0.1"])
        .args(["--port", &server.c2s.port().to_string()])
        .args(["--domain", DOMAIN])
        .arg("--ca")
        .arg(&ca_file)
        .args(["--timeout", &SCENARIO_TIMEOUT_S.to_string()]);
    for (user, password) in ACCOUNTS {
        cmd.arg("--account").arg(format!("{user}:{password}"));
    }
    // Output goes to a file, so that a chatty scenario cannot block on a full pipe while we wait.
    let out_path = server.data_dir.path().join(format!("{name}.out"));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (is Node installed?): {e}", node().display()));
    let deadline = Instant::now() + Duration::from_secs(SCENARIO_TIMEOUT_S + 30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    std::fs::File::open(&out_path)
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    let passed = status.is_some_and(|s| s.success()) && output.contains(&format!("PASS {name}"));
    assert!(
        passed,
        "xmpp.js scenario {name} failed ({status:?}):\n{output}\nserver log:\n{}",
        server.log()
    );
    assert!(
        !output.contains("KNOWN DEVIATION"),
        "no deviation is allowed here:\n{output}"
    );
    server.stop();
}

#[test]
fn roster_get_set_push_remove_and_errors() {
    scenario("roster");
}

#[test]
fn subscriptions_presence_and_pre_approval() {
    scenario("subscriptions");
}

#[test]
fn messages_full_bare_offline_and_missing() {
    scenario("messages");
}

#[test]
fn blocking_command() {
    scenario("blocking");
}

#[test]
fn vcard_private_version_time_uptime() {
    scenario("services");
}

#[test]
fn password_change() {
    scenario("password");
}

#[test]
fn sasl2_bind2_and_fast_login() {
    scenario("fast");
}

#[test]
fn pep_open_node_fetch_and_notification_by_caps() {
    scenario("pep");
}

#[test]
fn message_archive_paging_filters_and_stanza_ids() {
    scenario("mam");
}
