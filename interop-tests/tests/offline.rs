//! Offline messages (XEP-0160) with slixmpp against the built `rookery` binary: bob is offline, alice writes to
//! him, and when bob logs in and sends presence he gets the message with a XEP-0203 delay stamp.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_store::Store;
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs offline.py as `user` with `extra` arguments.
fn peer(server: &Rookery, ca: &Path, user: &str, extra: &[String]) -> (bool, String) {
    let mut args: Vec<String> = vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        server.c2s.port().to_string(),
        "--jid".into(),
        format!("{user}@{DOMAIN}"),
        "--password".into(),
        PASSWORD.into(),
        "--ca".into(),
        ca.display().to_string(),
    ];
    args.extend_from_slice(extra);
    run_python("offline.py", &args)
}

/// How many messages bob has waiting, read from the database while the server runs.
fn stored_for(server: &Rookery, user: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open_sqlite(&server.database()).await.unwrap();
        let n = store.offline().count(user).await.unwrap();
        store.close().await;
        n
    })
}

#[test]
fn a_message_to_an_offline_account_arrives_with_a_delay_stamp_at_login() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server.start().unwrap();
    let body = "while you were out";

    let before = now();
    let (ok, out) = peer(
        &server,
        &ca_file,
        "alice",
        &[
            "--send".into(),
            format!("bob@{DOMAIN}"),
            "--body".into(),
            body.into(),
        ],
    );
    let after = now();
    assert!(ok, "sending failed:\n{out}\nserver log:\n{}", server.log());
    let alice = out
        .lines()
        .find_map(|l| l.strip_prefix("LOGGED_IN "))
        .expect("alice's full JID")
        .to_owned();
    assert_eq!(stored_for(&server, "bob"), 1, "kept for bob");

    let (ok, out) = peer(
        &server,
        &ca_file,
        "bob",
        &[
            "--receive".into(),
            "--body".into(),
            body.into(),
            "--from".into(),
            alice,
            "--domain".into(),
            DOMAIN.into(),
            "--stored-after".into(),
            before.to_string(),
            "--stored-before".into(),
            after.to_string(),
        ],
    );
    assert!(
        ok && out.contains("OFFLINE_OK") && out.contains("PASS"),
        "receiving failed:\n{out}\nserver log:\n{}",
        server.log()
    );
    // Handed over, so no longer kept (the removal follows the hand-over; a hang guard, not a speed check).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stored_for(&server, "bob") != 0 {
        assert!(std::time::Instant::now() < deadline, "never removed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.stop();
}
