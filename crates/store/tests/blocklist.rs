//! The blocklist and pending-deletion repositories against SQLite: all-or-nothing changes, the size limit, the
//! grace period, and that deleting an account deletes its data.

use rookery_sasl::Credentials;
use rookery_store::{DeletionRequest, Role, Store, StoreError};

async fn store_with(users: &[&str]) -> Store {
    let store = Store::open_in_memory().await.unwrap();
    for user in users {
        let credentials =
            Credentials::from_password_with_iterations("a long enough password", 1).unwrap();
        store
            .accounts()
            .create(user, &credentials, Role::Normal)
            .await
            .unwrap();
    }
    store
}

fn jids(list: &[&str]) -> Vec<String> {
    list.iter().map(|j| (*j).to_owned()).collect()
}

#[tokio::test]
async fn block_unblock_and_unblock_all() {
    let store = store_with(&["alice", "bob"]).await;
    let lists = store.blocklist();
    assert!(lists.get("alice").await.unwrap().is_empty());
    lists
        .block(
            "alice",
            &jids(&[
                "spam.example",
                "mallory@evil.example",
                "eve@evil.example/phone",
            ]),
            10,
        )
        .await
        .unwrap();
    // Blocking a JID twice keeps one entry.
    lists
        .block("alice", &jids(&["spam.example"]), 10)
        .await
        .unwrap();
    assert_eq!(
        lists.get("alice").await.unwrap(),
        [
            "eve@evil.example/phone",
            "mallory@evil.example",
            "spam.example"
        ]
    );
    lists
        .block("bob", &jids(&["alice@rookery.test"]), 10)
        .await
        .unwrap();

    // Unblocking ignores JIDs that are not blocked.
    lists
        .unblock("alice", &jids(&["spam.example", "nobody@example.com"]))
        .await
        .unwrap();
    assert_eq!(
        lists.get("alice").await.unwrap(),
        ["eve@evil.example/phone", "mallory@evil.example"]
    );
    lists.unblock_all("alice").await.unwrap();
    assert!(lists.get("alice").await.unwrap().is_empty());
    // Other accounts keep theirs.
    assert_eq!(lists.get("bob").await.unwrap(), ["alice@rookery.test"]);
}

#[tokio::test]
async fn the_limit_is_all_or_nothing() {
    let store = store_with(&["alice"]).await;
    let lists = store.blocklist();
    lists
        .block("alice", &jids(&["a@x.example", "b@x.example"]), 3)
        .await
        .unwrap();
    let error = lists
        .block("alice", &jids(&["c@x.example", "d@x.example"]), 3)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::LimitReached(_)), "{error:?}");
    assert_eq!(
        lists.get("alice").await.unwrap(),
        ["a@x.example", "b@x.example"],
        "nothing of a refused change is stored"
    );
    // JIDs already on the list do not count twice: filling it exactly is allowed.
    lists
        .block("alice", &jids(&["a@x.example", "c@x.example"]), 3)
        .await
        .unwrap();
    assert_eq!(lists.get("alice").await.unwrap().len(), 3);
    assert!(matches!(
        lists.block("alice", &jids(&[""]), 10).await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn a_deletion_request_disables_and_restore_enables() {
    let store = store_with(&["alice"]).await;
    let deletions = store.account_deletions();
    assert_eq!(deletions.get("alice").await.unwrap(), None);
    assert!(!deletions.request("nobody", 1, 2).await.unwrap());
    assert!(deletions.request("alice", 1_000, 2_000).await.unwrap());
    assert!(
        store
            .accounts()
            .get("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(
        deletions.get("alice").await.unwrap(),
        Some(DeletionRequest {
            username: "alice".into(),
            deleted_at: 1_000,
            pending_until: 2_000,
        })
    );
    // Asking again replaces the request.
    assert!(deletions.request("alice", 1_500, 3_000).await.unwrap());
    assert_eq!(
        deletions.get("alice").await.unwrap().unwrap().pending_until,
        3_000
    );
    assert!(deletions.restore("alice").await.unwrap());
    assert!(
        !store
            .accounts()
            .get("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(deletions.get("alice").await.unwrap(), None);
    assert!(!deletions.restore("nobody").await.unwrap());
}

#[tokio::test]
async fn expired_accounts_are_deleted_with_their_data() {
    let store = store_with(&["alice", "bob", "carol", "dave"]).await;
    let deletions = store.account_deletions();
    store
        .blocklist()
        .block("alice", &jids(&["mallory@evil.example"]), 10)
        .await
        .unwrap();
    deletions.request("alice", 100, 1_000).await.unwrap();
    deletions.request("bob", 100, 5_000).await.unwrap();
    deletions.request("carol", 100, 1_000).await.unwrap();
    // Carol was re-enabled some other way (not through restore): she stays, and her request is forgotten.
    store.accounts().set_disabled("carol", false).await.unwrap();

    assert!(deletions.delete_expired(999).await.unwrap().is_empty());
    assert_eq!(deletions.delete_expired(1_000).await.unwrap(), ["alice"]);
    assert_eq!(store.accounts().get("alice").await.unwrap(), None);
    assert_eq!(deletions.get("alice").await.unwrap(), None);
    assert_eq!(deletions.get("carol").await.unwrap(), None);
    assert!(store.accounts().exists("carol").await.unwrap());
    assert!(
        deletions.get("bob").await.unwrap().is_some(),
        "bob's grace period goes on"
    );
    assert!(store.accounts().exists("dave").await.unwrap());

    // A new account of the same name starts with nothing of the old one's.
    let credentials = Credentials::from_password_with_iterations("another password", 1).unwrap();
    store
        .accounts()
        .create("alice", &credentials, Role::Normal)
        .await
        .unwrap();
    assert!(store.blocklist().get("alice").await.unwrap().is_empty());

    assert_eq!(deletions.delete_expired(5_000).await.unwrap(), ["bob"]);
    assert_eq!(store.accounts().count().await.unwrap(), 3);
}
