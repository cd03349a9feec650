//! The `rookery` command line, run as a user runs it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rookery_test_support::{TestOptions, TestServer};

fn rookery(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    rookery_with_env(data, &[], args, stdin)
}

fn rookery_with_env(
    data: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rookery"));
    cmd.args(args)
        .env_clear()
        .env("SNIKKET_DOMAIN", "rookery.test")
        .env("SNIKKET_ADMIN_EMAIL", "admin@rookery.test")
        .env("SNIKKET_TWEAK_DATA_DIR", data)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn user_commands() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let out = rookery(
        data,
        &[
            "user",
            "add",
            "Alice",
            "--password",
            "correct horse battery",
            "--role",
            "admin",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("alice@rookery.test"),
        "the name is normalised: {}",
        stdout(&out)
    );
    // The password from standard input when not given.
    let out = rookery(
        data,
        &["user", "add", "bob"],
        Some("another long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = rookery(
        data,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "correct horse battery",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = rookery(data, &["user", "add", "carol", "--password", "short"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at least 10 characters"),
        "{}",
        stderr(&out)
    );
    let out = rookery(
        data,
        &[
            "user",
            "add",
            "bad@name",
            "--password",
            "correct horse battery",
        ],
        None,
    );
    assert!(!out.status.success());
    let out = rookery(
        data,
        &[
            "user",
            "add",
            "dave",
            "--password",
            "correct horse battery",
            "--role",
            "king",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown role"), "{}", stderr(&out));

    let list = stdout(&rookery(data, &["user", "list"], None));
    assert_eq!(
        list,
        "alice@rookery.test\tadmin\nbob@rookery.test\tnormal\n"
    );

    assert!(
        rookery(data, &["user", "role", "bob", "limited"], None)
            .status
            .success()
    );
    assert!(
        rookery(
            data,
            &[
                "user",
                "passwd",
                "bob",
                "--password",
                "a brand new password"
            ],
            None
        )
        .status
        .success()
    );
    // Alice is the only administrator: she can be neither deleted nor demoted.
    for args in [
        &["user", "delete", "alice"][..],
        &["user", "role", "alice", "normal"],
    ] {
        let out = rookery(data, args, None);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("cannot-remove-only-admin"),
            "{}",
            stderr(&out)
        );
    }
    let out = rookery(
        data,
        &["user", "add", "zed", "--role", "admin"],
        Some("correct horse battery\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        rookery(data, &["user", "delete", "alice"], None)
            .status
            .success()
    );
    let list = stdout(&rookery(data, &["user", "list"], None));
    assert_eq!(list, "bob@rookery.test\tlimited\nzed@rookery.test\tadmin\n");
    let out = rookery(data, &["user", "delete", "alice"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no account"), "{}", stderr(&out));
    // Passwords are never stored: the database holds no trace of one.
    let db = std::fs::read(data.join("rookery/rookery.sqlite")).unwrap();
    assert!(
        !db.windows(b"a brand new password".len())
            .any(|w| w == b"a brand new password")
    );
}

#[tokio::test]
async fn user_commands_work_while_the_server_runs() {
    let server = TestServer::start_with(TestOptions::default()).await;
    let out = rookery(
        server.data_dir.path(),
        &["user", "add", "erin", "--password", "correct horse battery"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let client = server
        .login("erin", "correct horse battery", Some("cli"))
        .await;
    let out = rookery(
        server.data_dir.path(),
        &[
            "user",
            "passwd",
            "erin",
            "--password",
            "the second password",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut again = server.connect().await;
    assert!(
        again
            .login("erin", "correct horse battery", "SCRAM-SHA-1")
            .await
            .is_err()
    );
    again
        .login("erin", "the second password", "SCRAM-SHA-256")
        .await
        .unwrap();
    client.close().await.unwrap();
    server.stop().await;
}

#[test]
fn check_reports_configuration_and_certificate() {
    let data = tempfile::tempdir().unwrap();
    let out = rookery(data.path(), &["check"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Configuration: valid"), "{text}");
    assert!(text.contains("self-signed"), "{text}");

    let ca = rookery_test_support::TestCa::new();
    ca.install_certbot_layout(
        &data.path().join("letsencrypt/live/rookery.test"),
        &["rookery.test", "groups.rookery.test", "share.rookery.test"],
    );
    let text = stdout(&rookery(data.path(), &["check"], None));
    assert!(text.contains("groups.rookery.test"), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
}

#[test]
fn configuration_errors_are_reported_together() {
    let data = tempfile::tempdir().unwrap();
    let out = rookery_with_env(
        data.path(),
        &[
            ("SNIKKET_TWEAK_C2S_PORT", "not-a-port"),
            ("SNIKKET_MAX_USER_CLIENTS", "many"),
        ],
        &["serve"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("SNIKKET_TWEAK_C2S_PORT") && err.contains("SNIKKET_MAX_USER_CLIENTS"),
        "{err}"
    );
}

#[test]
fn env_file_is_read_and_the_environment_wins() {
    let data = tempfile::tempdir().unwrap();
    let conf = data.path().join("snikket.conf");
    std::fs::write(
        &conf,
        "# test\nSNIKKET_DOMAIN=from-file.test\nSNIKKET_SITE_NAME=\"Our Place\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rookery"));
    let out = cmd
        .args(["--env-file", conf.to_str().unwrap(), "check"])
        .env_clear()
        .env("SNIKKET_ADMIN_EMAIL", "admin@from-file.test")
        .env("SNIKKET_TWEAK_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("from-file.test"), "{}", stdout(&out));
    let out = rookery_with_env(
        data.path(),
        &[],
        &["--env-file", conf.to_str().unwrap(), "check"],
        None,
    );
    assert!(
        stdout(&out).contains("domain:          rookery.test"),
        "{}",
        stdout(&out)
    );
}

// ---- invites ---------------------------------------------------------------------------------------------------

/// The database the command line of `rookery(data, ...)` uses.
async fn open_store(data: &Path) -> rookery_store::Store {
    let env: std::collections::HashMap<String, String> = [
        ("SNIKKET_DOMAIN", "rookery.test"),
        ("SNIKKET_ADMIN_EMAIL", "admin@rookery.test"),
        ("SNIKKET_TWEAK_DATA_DIR", data.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = rookery_config::Config::from_map(&env).unwrap().config;
    rookery_store::Store::open_sqlite(&config.database_path())
        .await
        .unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The token of the one `Your invite link:` line, checking Snikket's exact output around it.
fn invite_token(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    let text = stdout(out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(""), "a blank line first: {text:?}");
    let link = lines
        .next()
        .and_then(|l| l.strip_prefix("Your invite link: https://rookery.test/invite/"))
        .and_then(|l| l.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no invite link in {text:?}"));
    assert_eq!(lines.next(), Some(""), "a blank line after: {text:?}");
    assert_eq!(link.len(), 24, "{link}");
    link.to_owned()
}

#[tokio::test]
async fn create_invite_stores_roles_circles_and_expiry() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    // Snikket's first-admin command, before the default circle exists: refused, and nothing stored.
    let out = rookery(
        data,
        &["create-invite", "--admin", "--group", "default"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("there is no circle \"default\""),
        "{}",
        stderr(&out)
    );
    let store = open_store(data).await;
    assert!(store.invites().list_valid(0).await.unwrap().is_empty());
    store
        .circles()
        .create(rookery_store::DEFAULT_CIRCLE, "Rookery")
        .await
        .unwrap();
    store.circles().create("family", "Family").await.unwrap();

    let out = rookery(
        data,
        &["create-invite", "--admin", "--group", "default"],
        None,
    );
    let token = invite_token(&out);
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
    let invite = store.invites().get(&token).await.unwrap().unwrap();
    assert_eq!(invite.kind, rookery_store::InviteKind::Account);
    assert_eq!(invite.roles, [rookery_store::Role::Admin]);
    assert_eq!(invite.circles, ["default"]);
    assert!(
        !invite.reusable,
        "a link from the command line is for one person"
    );
    let week = 7 * 86_400;
    assert!((invite.expires_at - unix_now() - week).abs() < 60);

    let before = unix_now();
    let out = rookery(
        data,
        &[
            "create-invite",
            "--role",
            "prosody:restricted",
            "--role",
            "normal",
            "--group",
            "family",
            "--group",
            "default",
            "--expires-after",
            "2d",
        ],
        None,
    );
    let token = invite_token(&out);
    let invite = store.invites().get(&token).await.unwrap().unwrap();
    assert_eq!(
        invite.roles,
        [rookery_store::Role::Limited, rookery_store::Role::Normal]
    );
    let mut circles = invite.circles.clone();
    circles.sort();
    assert_eq!(circles, ["default", "family"]);
    assert!(invite.expires_at >= before + 2 * 86_400);
    assert!(invite.expires_at <= unix_now() + 2 * 86_400);

    // Minutes too.
    let token = invite_token(&rookery(
        data,
        &["create-invite", "--expires-after", "30m"],
        None,
    ));
    let invite = store.invites().get(&token).await.unwrap().unwrap();
    assert!((invite.expires_at - unix_now() - 1_800).abs() < 60);
    store.close().await;
}

#[tokio::test]
async fn create_invite_refuses_bad_input_and_stores_nothing() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    for duration in ["5x", "1", "0d", "1d2h", "tomorrow", "11y"] {
        let out = rookery(data, &["create-invite", "--expires-after", duration], None);
        assert!(!out.status.success(), "{duration}");
        assert!(stderr(&out).contains("duration"), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    let out = rookery(data, &["create-invite", "--role", "superuser"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown role"), "{}", stderr(&out));
    // A reset invite carries no roles or circles.
    let out = rookery(data, &["create-invite", "--reset", "bob", "--admin"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = rookery(data, &["create-invite", "--reset", "bob"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("there is no account bob@rookery.test"),
        "{}",
        stderr(&out)
    );
    let store = open_store(data).await;
    assert!(store.invites().list_valid(0).await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn reset_invites_print_their_link() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let out = rookery(
        data,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "correct horse battery",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for (user, ttl) in [("alice@rookery.test", 86_400), ("Alice", 3_600)] {
        let mut args = vec!["create-invite", "--reset", user];
        if ttl != 86_400 {
            args.extend(["--expires-after", "1h"]);
        }
        let out = rookery(data, &args, None);
        let token = invite_token(&out);
        assert!(
            stdout(&out).contains("It lets alice@rookery.test set a new password until"),
            "{}",
            stdout(&out)
        );
        let store = open_store(data).await;
        let invite = store.invites().get(&token).await.unwrap().unwrap();
        store.close().await;
        assert_eq!(invite.kind, rookery_store::InviteKind::Reset);
        assert_eq!(invite.username.as_deref(), Some("alice"));
        assert!((invite.expires_at - unix_now() - ttl).abs() < 60);
    }
}

#[test]
fn create_invite_draws_the_link_as_a_qr_code() {
    let data = tempfile::tempdir().unwrap();
    let out = rookery(data.path(), &["create-invite", "--qr"], None);
    let token = invite_token(&out);
    let link = format!("https://rookery.test/invite/{token}/");
    let text = stdout(&out);
    let (_, qr) = text
        .split_once("\n\nQR code for scanning:\n")
        .unwrap_or_else(|| panic!("no QR code in {text:?}"));
    // Not a terminal here, so no colours: exactly the code of the link.
    assert_eq!(
        qr.trim_end_matches('\n'),
        rookery::cli::qr_code(&link, false).unwrap()
    );
    assert!(qr.contains('▀') || qr.contains('▄'), "{qr}");
}

#[tokio::test]
async fn invites_are_listed_and_revoked() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let out = rookery(
        data,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "correct horse battery",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let account = invite_token(&rookery(data, &["create-invite", "--admin"], None));
    let reset = invite_token(&rookery(data, &["create-invite", "--reset", "alice"], None));

    let out = rookery(data, &["invite", "list"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let line = |token: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(token))
            .unwrap_or_else(|| panic!("{token} not in {listing}"))
            .split('\t')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let a = line(&account);
    assert_eq!(a[1], "account");
    assert!(a[2].ends_with('Z'), "an XEP-0082 time: {}", a[2]);
    assert_eq!(a[3..], ["admin", "-", "-"]);
    let r = line(&reset);
    assert_eq!(r[1], "reset");
    assert_eq!(r[5], "alice@rookery.test");

    let out = rookery(data, &["invite", "revoke", &account], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = rookery(data, &["invite", "list"], None);
    assert!(!stdout(&out).contains(&account));
    assert!(stdout(&out).contains(&reset));
    let out = rookery(data, &["invite", "revoke", &account], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("there is no invite"),
        "{}",
        stderr(&out)
    );
}
#[test]
fn circle_commands() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    for user in ["alice", "bob"] {
        let out = rookery(
            data,
            &["user", "add", user],
            Some("correct horse battery\n"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = rookery(data, &["circle", "create", "  Family  "], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    assert_eq!(id.len(), 12, "{id:?}");
    assert_eq!(
        stdout(&rookery(data, &["circle", "list"], None)),
        format!("{id}\tFamily\t0\n")
    );
    for user in ["alice", "Bob@rookery.test"] {
        let out = rookery(data, &["circle", "add", &id, user], None);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = rookery(data, &["circle", "add", &id, "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("already"), "{}", stdout(&out));
    assert!(
        rookery(data, &["circle", "rename", &id, "Kin"], None)
            .status
            .success()
    );
    assert_eq!(
        stdout(&rookery(data, &["circle", "list"], None)),
        format!("{id}\tKin\t2\n")
    );
    assert!(
        rookery(data, &["circle", "remove", &id, "bob"], None)
            .status
            .success()
    );
    assert_eq!(
        stdout(&rookery(data, &["circle", "list"], None)),
        format!("{id}\tKin\t1\n")
    );

    // Clear errors, and nothing changed by them.
    let failures: [(&[&str], &str); 7] = [
        (&["circle", "add", "nope", "alice"], "no circle \"nope\""),
        (
            &["circle", "add", &id, "carol"],
            "no account carol@rookery.test",
        ),
        (&["circle", "remove", &id, "bob"], "not in Kin"),
        (&["circle", "rename", "nope", "X"], "no circle"),
        (&["circle", "rename", &id, "   "], "needs a name"),
        (&["circle", "delete", "nope"], "no circle"),
        (&["circle", "create", ""], "needs a name"),
    ];
    for (args, expected) in failures {
        let out = rookery(data, args, None);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let long = "x".repeat(1025);
    assert!(
        !rookery(data, &["circle", "create", &long], None)
            .status
            .success()
    );
    assert_eq!(
        stdout(&rookery(data, &["circle", "list"], None)),
        format!("{id}\tKin\t1\n")
    );

    let out = rookery(data, &["circle", "delete", &id], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&rookery(data, &["circle", "list"], None)), "");
    // The accounts stay.
    assert_eq!(
        stdout(&rookery(data, &["user", "list"], None)),
        "alice@rookery.test\tnormal\nbob@rookery.test\tnormal\n"
    );
}

/// A member added by the command line while the server runs is synced at its next login.
#[tokio::test]
async fn a_member_added_by_the_command_line_is_synced_at_login() {
    let server = TestServer::start_with(TestOptions::default()).await;
    let data = server.data_dir.path();
    // The server made the default circle at start, named after the domain (no site name given).
    assert_eq!(
        stdout(&rookery(data, &["circle", "list"], None)),
        "default\trookery.test\t0\n"
    );
    for user in ["alice", "bob"] {
        let out = rookery(
            data,
            &["user", "add", user],
            Some("correct horse battery\n"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let out = rookery(data, &["circle", "add", "default", user], None);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut alice = server.login("alice", "correct horse battery", None).await;
    let get = rookery_xml::Element::new("iq", rookery_xml::ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "r")
        .with_child(rookery_xml::Element::new("query", "jabber:iq:roster"));
    let result = alice.iq(&get).await.unwrap();
    let items: Vec<_> = result
        .get_child("query", "jabber:iq:roster")
        .unwrap()
        .children()
        .map(|i| {
            (
                i.attr("jid").unwrap().to_owned(),
                i.attr("subscription").unwrap().to_owned(),
                i.children()
                    .map(rookery_xml::Element::text)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [(
            "bob@rookery.test".to_owned(),
            "both".to_owned(),
            vec!["rookery.test".to_owned()]
        )]
    );
    server.stop().await;
}
