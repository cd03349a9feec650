//! Snikket's onboarding end to end against the built binary, as an admin and the apps do it: a fresh install,
//! `rookery create-invite --admin --group default`, registration with slixmpp as the Android app does, and the
//! circle's members in each other's rosters (mutual, grouped under the site's name), including one added to the
//! circle from the command line while offline.

use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";
const SITE: &str = "Family Chat";

/// Runs `rookery create-invite` with `args` and returns the token, checking Snikket's output format.
fn create_invite(server: &Rookery, args: &[&str]) -> String {
    let mut full = vec!["create-invite"];
    full.extend_from_slice(args);
    let out = server.command(&full, None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "create-invite failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("\nYour invite link: https://{DOMAIN}/invite/");
    assert!(
        stdout.starts_with(&prefix) && stdout.ends_with("/\n\n"),
        "{stdout:?}"
    );
    let token = stdout[prefix.len()..stdout.len() - 3].to_owned();
    assert_eq!(token.len(), 24, "{stdout:?}");
    token
}

fn slix(server: &Rookery, ca: &str, user: &str, extra: &[&str]) -> String {
    let mut args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &server.c2s.port().to_string(),
        "--ca",
        ca,
        "--jid",
        &format!("{user}@{DOMAIN}"),
        "--password",
        PASSWORD,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let (ok, out) = run_python("registration.py", &args);
    assert!(
        ok,
        "slixmpp ({user}) failed:\n{out}\nserver log:\n{}",
        server.log()
    );
    assert!(out.contains("PASS"), "{out}");
    out
}

fn cli(server: &Rookery, args: &[&str]) -> String {
    let out = server.command(args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_admin_invite_then_a_circle_whose_members_see_each_other() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    let ca_file = ca_file.display().to_string();
    server.set_env("SNIKKET_SITE_NAME", SITE);
    // A fresh install: no accounts; the first start creates the default circle.
    server.start().unwrap();
    let circles = cli(&server, &["circle", "list"]);
    assert!(
        circles.contains("default") && circles.contains(SITE),
        "{circles}"
    );

    let token = create_invite(&server, &["--admin", "--group", "default"]);
    slix(&server, &ca_file, "anna", &["--token", &token]);
    let users = cli(&server, &["user", "list"]);
    let anna = users
        .lines()
        .find(|l| l.contains("anna"))
        .unwrap_or_default();
    assert!(anna.contains("admin"), "anna is an administrator: {users}");
    // Single use: the same link does not register a second account.
    let reuse = run_python(
        "registration.py",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &server.c2s.port().to_string(),
            "--ca",
            &ca_file,
            "--jid",
            &format!("eve@{DOMAIN}"),
            "--password",
            PASSWORD,
            "--token",
            &token,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<Vec<_>>(),
    );
    assert!(!reuse.0, "a used invite registered again:\n{}", reuse.1);

    // A second person joins the circle by invite: both have each other, mutual, under the site's name.
    let token = create_invite(&server, &["--group", "default"]);
    let anna_jid = format!("anna@{DOMAIN}");
    let ben_jid = format!("ben@{DOMAIN}");
    slix(
        &server,
        &ca_file,
        "ben",
        &[
            "--token",
            &token,
            "--expect-contact",
            &anna_jid,
            "--expect-group",
            SITE,
        ],
    );
    slix(
        &server,
        &ca_file,
        "anna",
        &["--expect-contact", &ben_jid, "--expect-group", SITE],
    );

    // A third account, added to the circle from the command line while offline, has both at its next login.
    cli(&server, &["user", "add", "carl", "--password", PASSWORD]);
    cli(&server, &["circle", "add", "default", "carl"]);
    slix(
        &server,
        &ca_file,
        "carl",
        &[
            "--expect-contact",
            &anna_jid,
            "--expect-contact",
            &ben_jid,
            "--expect-group",
            SITE,
        ],
    );
    server.stop();
}
