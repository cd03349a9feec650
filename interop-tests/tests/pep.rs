//! PEP (XEP-0163 over XEP-0060) with slixmpp's own plugins (xep_0060, 0163, 0115, 0084, 0054, 0049/0048, 0402)
//! through the built `rookery` binary, as the Snikket apps use it: OMEMO device lists and bundles with `open`
//! access, avatars with the vcard-temp conversion (XEP-0398), Bookmarks 2 with the private-storage view, and the
//! XEP's errors for a foreign publish, a failed precondition and an item over the size limit.

use rookery_config::Limits;
use rookery_interop_tests::{DOMAIN, Rookery, run_python};
use rookery_test_support::TestCa;

const PASSWORD: &str = "a long enough password";

#[test]
fn omemo_avatars_and_bookmarks_with_slixmpp() {
    let ca = TestCa::new();
    let mut server = Rookery::new(Some(&ca));
    let ca_file = server.data_dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file);
    for user in ["alice", "bob", "carol"] {
        server.add_user(user, PASSWORD);
    }
    // alice and bob are contacts through a circle, as on a Snikket server; carol is in no circle with them, so
    // only an `open` node lets her in.
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
    // The first start put all three in the default circle; it goes before anyone logs in.
    server.delete_default_circle();

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
        "--item-limit",
        &Limits::default().pep_item_max_bytes.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (ok, out) = run_python("pep.py", &args);
    assert!(ok, "slixmpp failed:\n{out}\nserver log:\n{}", server.log());
    for line in [
        "OMEMO_DEVICELIST_PUBLISHED",
        "OMEMO_LAST_ITEM_OK",
        "OMEMO_NOTIFY_OK",
        "OMEMO_FETCH_OK bob carol",
        "OMEMO_RECONFIGURE_TO_OPEN_OK",
        "OMEMO_STRANGER_NOT_NOTIFIED_OK",
        "AVATAR_PEP_OK",
        "AVATAR_STRANGER_REFUSED_OK",
        "VCARD_SHOWS_PEP_AVATAR_OK",
        "VCARD_TO_PEP_AVATAR_OK",
        "AVATAR_REMOVED_OK",
        "BOOKMARKS2_TO_PRIVATE_OK",
        "PRIVATE_TO_BOOKMARKS2_OK 2 rooms",
        "BOOKMARKS2_RETRACT_TO_PRIVATE_OK",
        "BOOKMARKS_PRIVATE_TO_OWNER_OK",
        "FOREIGN_PUBLISH_FORBIDDEN_OK",
        "PRECONDITION_NOT_MET_OK",
        "ITEM_TOO_BIG_OK",
        "PASS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    server.stop();
}
