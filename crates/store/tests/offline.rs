//! The offline-message repository against SQLite (in memory and in a file): order, the per-account limit (also
//! under concurrent senders), unknown accounts, removal of delivered messages, and cascade on account deletion.

use rookery_sasl::Credentials;
use rookery_store::{Role, Store, StoreOutcome};

async fn with_accounts(store: Store, users: &[&str]) -> Store {
    for user in users {
        store
            .accounts()
            .create(user, &Credentials::default(), Role::Normal)
            .await
            .unwrap();
    }
    store
}

async fn in_memory(users: &[&str]) -> Store {
    with_accounts(Store::open_in_memory().await.unwrap(), users).await
}

async fn in_file(dir: &tempfile::TempDir, users: &[&str]) -> Store {
    let store = Store::open_sqlite(&dir.path().join("rookery.sqlite"))
        .await
        .unwrap();
    with_accounts(store, users).await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn message(n: usize) -> String {
    format!(
        "<message xmlns='jabber:client' to='bob@example.com'><body>{n} &amp; é</body></message>"
    )
}

async fn stored_in_order_and_removed_through_an_id(store: &Store) {
    let offline = store.offline();
    let before = now();
    for n in 0..5 {
        assert_eq!(
            offline.store("bob", &message(n), 100).await.unwrap(),
            StoreOutcome::Stored
        );
    }
    let after = now();
    offline.store("carol", &message(99), 100).await.unwrap();
    assert_eq!(offline.count("bob").await.unwrap(), 5);

    let first = offline.oldest("bob", 3).await.unwrap();
    let texts: Vec<_> = first.iter().map(|m| m.stanza.clone()).collect();
    assert_eq!(texts, [message(0), message(1), message(2)]);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        first
            .iter()
            .all(|m| (before..=after).contains(&m.stored_at))
    );

    // Removing what was delivered leaves the rest, and nobody else's.
    assert_eq!(offline.remove_through("bob", first[2].id).await.unwrap(), 3);
    let rest = offline.oldest("bob", 100).await.unwrap();
    assert_eq!(
        rest.iter().map(|m| m.stanza.clone()).collect::<Vec<_>>(),
        [message(3), message(4)]
    );
    assert_eq!(offline.count("carol").await.unwrap(), 1);
    assert_eq!(offline.remove_through("bob", i64::MAX).await.unwrap(), 2);
    assert!(offline.oldest("bob", 100).await.unwrap().is_empty());

    // Ids keep growing after the newest row is gone, so a later message never sorts before an earlier one.
    offline.store("bob", &message(5), 100).await.unwrap();
    let again = offline.oldest("bob", 1).await.unwrap();
    assert!(again[0].id > rest[1].id);
}

async fn the_limit_and_unknown_accounts(store: &Store) {
    let offline = store.offline();
    for n in 0..3 {
        offline.store("bob", &message(n), 3).await.unwrap();
    }
    assert_eq!(
        offline.store("bob", &message(3), 3).await.unwrap(),
        StoreOutcome::Full
    );
    assert_eq!(offline.count("bob").await.unwrap(), 3);
    // Once delivered messages are removed there is room again.
    let oldest = offline.oldest("bob", 1).await.unwrap();
    offline.remove_through("bob", oldest[0].id).await.unwrap();
    assert_eq!(
        offline.store("bob", &message(4), 3).await.unwrap(),
        StoreOutcome::Stored
    );

    assert_eq!(
        offline.store("nobody", &message(0), 3).await.unwrap(),
        StoreOutcome::NoSuchAccount
    );
    assert_eq!(offline.count("nobody").await.unwrap(), 0);
}

async fn deleting_the_account_deletes_its_messages(store: &Store) {
    let offline = store.offline();
    offline.store("bob", &message(0), 10).await.unwrap();
    assert!(store.accounts().delete("bob").await.unwrap());
    assert_eq!(offline.count("bob").await.unwrap(), 0);
    // A new account of the same name starts empty.
    store
        .accounts()
        .create("bob", &Credentials::default(), Role::Normal)
        .await
        .unwrap();
    assert!(offline.oldest("bob", 10).await.unwrap().is_empty());
}

/// Many senders at once never push an account past its limit.
async fn concurrent_senders_respect_the_limit(store: &Store) {
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let offline = store.offline();
            tokio::spawn(async move { offline.store("bob", &message(n), 7).await.unwrap() })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        if task.await.unwrap() == StoreOutcome::Stored {
            stored += 1;
        }
    }
    assert_eq!(stored, 7);
    assert_eq!(store.offline().count("bob").await.unwrap(), 7);
}

macro_rules! both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite_in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let store = super::in_memory(&["bob", "carol"]).await;
                    super::$check(&store).await;
                }
            )*
        }
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::in_file(&dir, &["bob", "carol"]).await;
                    super::$check(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

both_backends!(
    stored_in_order_and_removed_through_an_id,
    the_limit_and_unknown_accounts,
    deleting_the_account_deletes_its_messages,
    concurrent_senders_respect_the_limit,
);
