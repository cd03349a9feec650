//! The accounts conformance suite: what every backend must do, through the public API only. Each check takes an
//! empty store; `conformance_tests!` turns every check into one test for a given way of opening a store, so a new
//! backend (PostgreSQL) gets the whole suite with one macro call.

use rookery_sasl::{Credentials, ScramKeys};
use rookery_store::{Account, AccountSummary, Role, Store, StoreError};

pub(crate) fn keys(seed: u8) -> ScramKeys {
    ScramKeys {
        // Bytes that are not UTF-8 and include NUL: keys are binary.
        salt: vec![seed, 0, 0xff, seed.wrapping_mul(7)],
        iterations: 4096 + u32::from(seed),
        stored_key: (0..32).map(|i| seed ^ i).collect(),
        server_key: (0..32).map(|i| seed.wrapping_add(i)).collect(),
    }
}

pub(crate) fn both(seed: u8) -> Credentials {
    Credentials {
        sha1: Some(keys(seed)),
        sha256: Some(keys(seed.wrapping_add(100))),
    }
}

/// What an account imported from Prosody has.
pub(crate) fn sha1_only(seed: u8) -> Credentials {
    Credentials {
        sha1: Some(keys(seed)),
        sha256: None,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

pub(crate) async fn create_then_get(store: &Store) {
    let accounts = store.accounts();
    let before = now();
    accounts
        .create("alice", &both(1), Role::Admin)
        .await
        .unwrap();
    let after = now();
    let alice = accounts.get("alice").await.unwrap().expect("alice exists");
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.role, Role::Admin);
    assert_eq!(alice.credentials, both(1));
    assert!(!alice.disabled);
    assert!(
        (before..=after).contains(&alice.created_at),
        "{before} <= {} <= {after}",
        alice.created_at
    );
    assert!(accounts.exists("alice").await.unwrap());
}

pub(crate) async fn missing_accounts(store: &Store) {
    let accounts = store.accounts();
    assert_eq!(accounts.get("nobody").await.unwrap(), None);
    assert!(!accounts.exists("nobody").await.unwrap());
    assert!(!accounts.delete("nobody").await.unwrap());
    assert!(!accounts.set_credentials("nobody", &both(1)).await.unwrap());
    assert!(!accounts.set_role("nobody", Role::Admin).await.unwrap());
    assert!(!accounts.set_disabled("nobody", true).await.unwrap());
    assert_eq!(accounts.count().await.unwrap(), 0);
    assert!(accounts.list().await.unwrap().is_empty());
    // The failed set_credentials must not have left keys behind for a later account of that name.
    accounts
        .create("nobody", &Credentials::default(), Role::Normal)
        .await
        .unwrap();
    assert_eq!(
        accounts.get("nobody").await.unwrap().unwrap().credentials,
        Credentials::default()
    );
}

pub(crate) async fn duplicate_username(store: &Store) {
    let accounts = store.accounts();
    accounts
        .create("bob", &both(1), Role::Normal)
        .await
        .unwrap();
    let error = accounts
        .create("bob", &both(2), Role::Admin)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::AlreadyExists), "{error:?}");
    let bob = accounts.get("bob").await.unwrap().unwrap();
    assert_eq!(bob.credentials, both(1), "the first account is untouched");
    assert_eq!(bob.role, Role::Normal);
    assert_eq!(accounts.count().await.unwrap(), 1);
}

pub(crate) async fn usernames_are_stored_as_given(store: &Store) {
    let accounts = store.accounts();
    for name in ["carol", "Carol", "ĉarol", "carol ", "дмитрий", "a.b-c_d"] {
        accounts
            .create(name, &sha1_only(3), Role::Normal)
            .await
            .unwrap();
    }
    assert_eq!(accounts.count().await.unwrap(), 6);
    assert_eq!(
        accounts.get("ĉarol").await.unwrap().unwrap().username,
        "ĉarol"
    );
    assert_eq!(accounts.get("CAROL").await.unwrap(), None);
}

pub(crate) async fn list_and_count(store: &Store) {
    let accounts = store.accounts();
    accounts
        .create("zoe", &both(1), Role::Limited)
        .await
        .unwrap();
    accounts
        .create("adam", &both(2), Role::Admin)
        .await
        .unwrap();
    accounts
        .create("mia", &sha1_only(3), Role::Normal)
        .await
        .unwrap();
    accounts.set_disabled("mia", true).await.unwrap();
    let list = accounts.list().await.unwrap();
    let names: Vec<&str> = list.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(names, ["adam", "mia", "zoe"]);
    let mia = &list[1];
    assert_eq!((mia.role, mia.disabled), (Role::Normal, true), "{mia:?}");
    assert_eq!(list[0].role, Role::Admin);
    assert_eq!(list[2].role, Role::Limited);
    assert_eq!(accounts.count().await.unwrap(), 3);
    assert_eq!(accounts.count_with_role(Role::Admin).await.unwrap(), 1);
    assert_eq!(accounts.count_with_role(Role::Normal).await.unwrap(), 1);
    assert_eq!(accounts.count_with_role(Role::Limited).await.unwrap(), 1);
    // A summary says the same as the full account.
    let full = accounts.get("zoe").await.unwrap().unwrap();
    assert_eq!(
        list[2],
        AccountSummary {
            username: full.username,
            role: full.role,
            created_at: full.created_at,
            disabled: full.disabled,
        }
    );
}

pub(crate) async fn delete_removes_keys(store: &Store) {
    let accounts = store.accounts();
    accounts
        .create("dave", &both(4), Role::Normal)
        .await
        .unwrap();
    accounts
        .create("erin", &both(5), Role::Normal)
        .await
        .unwrap();
    assert!(accounts.delete("dave").await.unwrap());
    assert!(!accounts.delete("dave").await.unwrap());
    assert_eq!(accounts.get("dave").await.unwrap(), None);
    assert_eq!(accounts.count().await.unwrap(), 1);
    // A new account of the same name starts without the old keys.
    accounts
        .create("dave", &Credentials::default(), Role::Normal)
        .await
        .unwrap();
    assert_eq!(
        accounts.get("dave").await.unwrap().unwrap().credentials,
        Credentials::default()
    );
    // Other accounts keep theirs.
    assert_eq!(
        accounts.get("erin").await.unwrap().unwrap().credentials,
        both(5)
    );
}

pub(crate) async fn set_credentials_replaces_all_keys(store: &Store) {
    let accounts = store.accounts();
    accounts
        .create("frank", &sha1_only(6), Role::Normal)
        .await
        .unwrap();
    assert!(accounts.set_credentials("frank", &both(7)).await.unwrap());
    assert_eq!(
        accounts.get("frank").await.unwrap().unwrap().credentials,
        both(7)
    );
    // A hash left out is removed, not kept from before.
    let only_256 = Credentials {
        sha1: None,
        sha256: Some(keys(8)),
    };
    assert!(accounts.set_credentials("frank", &only_256).await.unwrap());
    assert_eq!(
        accounts.get("frank").await.unwrap().unwrap().credentials,
        only_256
    );
}

pub(crate) async fn role_and_disabled_changes(store: &Store) {
    let accounts = store.accounts();
    // Another administrator, so that gina is not the only one when disabled.
    accounts
        .create("keeper", &both(8), Role::Admin)
        .await
        .unwrap();
    accounts
        .create("gina", &both(9), Role::Normal)
        .await
        .unwrap();
    assert!(accounts.set_role("gina", Role::Limited).await.unwrap());
    assert_eq!(
        accounts.get("gina").await.unwrap().unwrap().role,
        Role::Limited
    );
    assert!(accounts.set_role("gina", Role::Admin).await.unwrap());
    assert!(accounts.set_disabled("gina", true).await.unwrap());
    let gina = accounts.get("gina").await.unwrap().unwrap();
    assert_eq!((gina.role, gina.disabled), (Role::Admin, true));
    assert_eq!(gina.credentials, both(9), "keys untouched");
    assert!(accounts.set_disabled("gina", false).await.unwrap());
    assert!(!accounts.get("gina").await.unwrap().unwrap().disabled);
}

pub(crate) async fn count_without_sha256(store: &Store) {
    let accounts = store.accounts();
    assert_eq!(accounts.count_without_sha256().await.unwrap(), 0);
    accounts
        .create("new", &both(1), Role::Normal)
        .await
        .unwrap();
    accounts
        .create("old1", &sha1_only(2), Role::Normal)
        .await
        .unwrap();
    accounts
        .create("old2", &sha1_only(3), Role::Limited)
        .await
        .unwrap();
    accounts
        .create("none", &Credentials::default(), Role::Normal)
        .await
        .unwrap();
    assert_eq!(accounts.count_without_sha256().await.unwrap(), 3);
    accounts.set_credentials("old1", &both(4)).await.unwrap();
    accounts.delete("old2").await.unwrap();
    accounts.delete("none").await.unwrap();
    assert_eq!(accounts.count_without_sha256().await.unwrap(), 0);
}

pub(crate) async fn insert_keeps_every_field(store: &Store) {
    let accounts = store.accounts();
    let imported = Account {
        username: "henry".to_owned(),
        role: Role::Limited,
        credentials: sha1_only(10),
        created_at: 1_600_000_000,
        disabled: true,
    };
    accounts.insert(&imported).await.unwrap();
    assert_eq!(accounts.get("henry").await.unwrap().unwrap(), imported);
    assert!(matches!(
        accounts.insert(&imported).await,
        Err(StoreError::AlreadyExists)
    ));
}

pub(crate) async fn invalid_input_is_refused(store: &Store) {
    let accounts = store.accounts();
    assert!(matches!(
        accounts.create("", &both(1), Role::Normal).await,
        Err(StoreError::InvalidInput(_))
    ));
    let mut zero_iterations = both(1);
    zero_iterations.sha256.as_mut().unwrap().iterations = 0;
    assert!(matches!(
        accounts.create("ivy", &zero_iterations, Role::Normal).await,
        Err(StoreError::InvalidInput(_))
    ));
    let mut empty_salt = both(1);
    empty_salt.sha1.as_mut().unwrap().salt.clear();
    assert!(matches!(
        accounts.create("ivy", &empty_salt, Role::Normal).await,
        Err(StoreError::InvalidInput(_))
    ));
    accounts
        .create("ivy", &both(1), Role::Normal)
        .await
        .unwrap();
    assert!(matches!(
        accounts.set_credentials("ivy", &empty_salt).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(
        accounts.get("ivy").await.unwrap().unwrap().credentials,
        both(1)
    );
    assert_eq!(accounts.count().await.unwrap(), 1);
}

pub(crate) async fn real_password_round_trip(store: &Store) {
    let accounts = store.accounts();
    let credentials =
        Credentials::from_password_with_iterations("correct horse battery", 4096).unwrap();
    accounts
        .create("julia", &credentials, Role::Normal)
        .await
        .unwrap();
    let stored = accounts.get("julia").await.unwrap().unwrap().credentials;
    assert!(stored.verify_password("correct horse battery"));
    assert!(!stored.verify_password("wrong horse battery"));
}

pub(crate) async fn concurrent_writers_in_one_process(store: &Store) {
    let mut tasks = Vec::new();
    for i in 0..40u8 {
        let accounts = store.accounts();
        tasks.push(tokio::spawn(async move {
            let name = format!("user{i:02}");
            accounts
                .create(&name, &both(i), Role::Normal)
                .await
                .unwrap();
            assert!(accounts.set_disabled(&name, i % 2 == 0).await.unwrap());
            accounts.get(&name).await.unwrap().unwrap()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let account = task.await.unwrap();
        assert_eq!(account.disabled, i % 2 == 0);
    }
    assert_eq!(store.accounts().count().await.unwrap(), 40);
}

pub(crate) async fn ping(store: &Store) {
    store.ping().await.unwrap();
}

/// One `#[tokio::test]` per check. `$open` is an async expression giving `(Store, guard)`; the guard (a temporary
/// directory, say) lives until the check ends.
macro_rules! conformance_tests {
    ($open:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, _guard) = $open.await;
                $crate::suite::$check(&store).await;
                store.close().await;
            }
        )*
    };
    ($open:expr) => {
        conformance_tests!($open;
            create_then_get,
            missing_accounts,
            duplicate_username,
            usernames_are_stored_as_given,
            list_and_count,
            delete_removes_keys,
            set_credentials_replaces_all_keys,
            role_and_disabled_changes,
            count_without_sha256,
            insert_keeps_every_field,
            invalid_input_is_refused,
            real_password_round_trip,
            concurrent_writers_in_one_process,
            ping,
        );
    };
}
