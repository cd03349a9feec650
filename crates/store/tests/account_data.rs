//! vCards, private XML storage and last logouts, against SQLite in memory and in a file: what each stores, that
//! the private-storage quota changes nothing when refused, and that everything goes with its account.

use rookery_store::{Credentials, LastLogout, PrivateChange, Role, Store, StoreError};

async fn with_account(store: &Store, username: &str) {
    store
        .accounts()
        .create(username, &Credentials::default(), Role::Normal)
        .await
        .unwrap();
}

fn put(namespace: &str, name: &str, xml: &str) -> PrivateChange {
    PrivateChange {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        xml: Some(xml.to_owned()),
    }
}

fn remove(namespace: &str, name: &str) -> PrivateChange {
    PrivateChange {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        xml: None,
    }
}

async fn vcards_are_kept_per_account(store: &Store) {
    with_account(store, "alice").await;
    with_account(store, "bob").await;
    let vcards = store.vcards();
    assert_eq!(vcards.get("alice").await.unwrap(), None);
    vcards
        .set("alice", "<vCard xmlns='vcard-temp'/>")
        .await
        .unwrap();
    vcards
        .set("alice", "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")
        .await
        .unwrap();
    assert_eq!(
        vcards.get("alice").await.unwrap().as_deref(),
        Some("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")
    );
    assert_eq!(vcards.get("bob").await.unwrap(), None);
    assert!(matches!(
        vcards.set("nobody", "<vCard xmlns='vcard-temp'/>").await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(vcards.delete("alice").await.unwrap());
    assert!(!vcards.delete("alice").await.unwrap());
    assert_eq!(vcards.get("alice").await.unwrap(), None);
}

async fn private_elements_are_keyed_by_namespace_and_name(store: &Store) {
    with_account(store, "alice").await;
    with_account(store, "bob").await;
    let private = store.private_xml();
    private
        .apply(
            "alice",
            &[
                put(
                    "storage:bookmarks",
                    "storage",
                    "<storage xmlns='storage:bookmarks'/>",
                ),
                put(
                    "urn:example",
                    "storage",
                    "<storage xmlns='urn:example'>1</storage>",
                ),
                put("urn:example", "other", "<other xmlns='urn:example'/>"),
            ],
            1024,
        )
        .await
        .unwrap();
    assert_eq!(
        private
            .get("alice", "urn:example", "storage")
            .await
            .unwrap()
            .as_deref(),
        Some("<storage xmlns='urn:example'>1</storage>")
    );
    assert_eq!(
        private.get("bob", "urn:example", "storage").await.unwrap(),
        None
    );
    let total = "<storage xmlns='storage:bookmarks'/>".len()
        + "<storage xmlns='urn:example'>1</storage>".len()
        + "<other xmlns='urn:example'/>".len();
    assert_eq!(private.total_bytes("alice").await.unwrap(), total as u64);
    assert_eq!(private.total_bytes("bob").await.unwrap(), 0);

    // A key changed twice in one call keeps the last change; removing is a change like any other.
    private
        .apply(
            "alice",
            &[
                put(
                    "urn:example",
                    "other",
                    "<other xmlns='urn:example'>a</other>",
                ),
                put(
                    "urn:example",
                    "other",
                    "<other xmlns='urn:example'>b</other>",
                ),
                remove("storage:bookmarks", "storage"),
                remove("urn:never", "stored"),
            ],
            1024,
        )
        .await
        .unwrap();
    assert_eq!(
        private
            .get("alice", "urn:example", "other")
            .await
            .unwrap()
            .as_deref(),
        Some("<other xmlns='urn:example'>b</other>")
    );
    assert_eq!(
        private
            .get("alice", "storage:bookmarks", "storage")
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        private
            .apply("nobody", &[put("urn:x", "x", "<x xmlns='urn:x'/>")], 1024)
            .await,
        Err(StoreError::InvalidInput(_))
    ));
}

async fn the_private_quota_refuses_growth_and_changes_nothing(store: &Store) {
    with_account(store, "alice").await;
    let private = store.private_xml();
    let big = format!("<a xmlns='urn:a'>{}</a>", "x".repeat(70));
    private
        .apply("alice", &[put("urn:a", "a", &big)], 100)
        .await
        .unwrap();
    // This call would store a second element and replace the first: over the limit, so neither happens.
    let refused = private
        .apply(
            "alice",
            &[
                put("urn:a", "a", "<a xmlns='urn:a'/>"),
                put("urn:b", "b", &big),
            ],
            100,
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached(_))),
        "{refused:?}"
    );
    assert_eq!(
        private.get("alice", "urn:a", "a").await.unwrap().as_deref(),
        Some(big.as_str())
    );
    assert_eq!(private.get("alice", "urn:b", "b").await.unwrap(), None);
    // With the limit lowered below what is stored, shrinking is still allowed; growing is not.
    private
        .apply(
            "alice",
            &[put(
                "urn:a",
                "a",
                &format!("<a xmlns='urn:a'>{}</a>", "x".repeat(30)),
            )],
            10,
        )
        .await
        .unwrap();
    assert!(matches!(
        private.apply("alice", &[put("urn:a", "a", &big)], 10).await,
        Err(StoreError::LimitReached(_))
    ));
}

async fn last_logouts_are_replaced(store: &Store) {
    with_account(store, "alice").await;
    let logouts = store.last_logouts();
    assert_eq!(logouts.get("alice").await.unwrap(), None);
    let first = LastLogout {
        at: 1_700_000_000,
        status: Some("Heading home".to_owned()),
    };
    logouts.record("alice", &first).await.unwrap();
    assert_eq!(logouts.get("alice").await.unwrap(), Some(first));
    let second = LastLogout {
        at: 1_700_000_100,
        status: None,
    };
    logouts.record("alice", &second).await.unwrap();
    assert_eq!(logouts.get("alice").await.unwrap(), Some(second.clone()));
    assert!(matches!(
        logouts.record("nobody", &second).await,
        Err(StoreError::InvalidInput(_))
    ));
}

async fn everything_goes_with_the_account(store: &Store) {
    with_account(store, "alice").await;
    store
        .vcards()
        .set("alice", "<vCard xmlns='vcard-temp'/>")
        .await
        .unwrap();
    store
        .private_xml()
        .apply("alice", &[put("urn:x", "x", "<x xmlns='urn:x'/>")], 1024)
        .await
        .unwrap();
    store
        .last_logouts()
        .record(
            "alice",
            &LastLogout {
                at: 1,
                status: None,
            },
        )
        .await
        .unwrap();
    assert!(store.accounts().delete("alice").await.unwrap());
    // A new account with the same name starts empty.
    with_account(store, "alice").await;
    assert_eq!(store.vcards().get("alice").await.unwrap(), None);
    assert_eq!(store.private_xml().total_bytes("alice").await.unwrap(), 0);
    assert_eq!(store.last_logouts().get("alice").await.unwrap(), None);
}

macro_rules! account_data_tests {
    ($open:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, _guard) = $open.await;
                super::$check(&store).await;
                store.close().await;
            }
        )*
    };
    ($open:expr) => {
        account_data_tests!($open;
            vcards_are_kept_per_account,
            private_elements_are_keyed_by_namespace_and_name,
            the_private_quota_refuses_growth_and_changes_nothing,
            last_logouts_are_replaced,
            everything_goes_with_the_account,
        );
    };
}

async fn in_memory() -> (Store, ()) {
    (Store::open_in_memory().await.unwrap(), ())
}

async fn in_file() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("rookery.sqlite"))
        .await
        .unwrap();
    (store, dir)
}

mod sqlite_in_memory {
    account_data_tests!(super::in_memory());
}

mod sqlite_file {
    account_data_tests!(super::in_file());
}
