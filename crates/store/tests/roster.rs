//! The roster repository against SQLite: items with groups, versions, limits, pending requests, and cascade on
//! account deletion.

use rookery_sasl::Credentials;
use rookery_store::{Role, RosterItem, Store, StoreError, Subscription};

async fn store_with(users: &[&str]) -> Store {
    let store = Store::open_in_memory().await.unwrap();
    for user in users {
        let creds = Credentials::from_password("a long enough password").unwrap();
        store
            .accounts()
            .create(user, &creds, Role::Normal)
            .await
            .unwrap();
    }
    store
}

fn item(contact: &str, groups: &[&str]) -> RosterItem {
    RosterItem {
        contact: contact.to_owned(),
        name: Some(format!("Name of {contact}")),
        subscription: Subscription::To,
        ask: false,
        approved: false,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

#[tokio::test]
async fn items_with_groups_round_trip_and_every_change_raises_the_version() {
    let store = store_with(&["alice"]).await;
    let roster = store.roster();
    assert_eq!(roster.get("alice").await.unwrap().version, 0);
    let v1 = roster
        .put(
            "alice",
            &item("bob@example.com", &["Family", "Friends"]),
            10,
        )
        .await
        .unwrap();
    let v2 = roster
        .put("alice", &item("carol@example.com", &[]), 10)
        .await
        .unwrap();
    let v3 = roster
        .put("alice", &item("aaron@example.com", &["Work"]), 10)
        .await
        .unwrap();
    assert!(v1 < v2 && v2 < v3);
    let got = roster.get("alice").await.unwrap();
    assert_eq!(got.version, v3);
    let contacts: Vec<_> = got.items.iter().map(|i| i.contact.as_str()).collect();
    assert_eq!(
        contacts,
        ["aaron@example.com", "bob@example.com", "carol@example.com"]
    );
    assert_eq!(got.items[0].groups, ["Work"]);
    assert_eq!(got.items[1].groups, ["Family", "Friends"]);
    assert!(got.items[2].groups.is_empty());
    assert_eq!(
        got.items[1],
        roster
            .item("alice", "bob@example.com")
            .await
            .unwrap()
            .unwrap()
    );

    // Replacing an item replaces its groups.
    let mut changed = item("bob@example.com", &["Work"]);
    changed.subscription = Subscription::Both;
    changed.ask = true;
    let v4 = roster.put("alice", &changed, 10).await.unwrap();
    assert!(v4 > v3);
    assert_eq!(
        roster
            .item("alice", "bob@example.com")
            .await
            .unwrap()
            .unwrap(),
        changed
    );

    assert_eq!(
        roster
            .subscription("alice", "bob@example.com")
            .await
            .unwrap(),
        Subscription::Both
    );
    assert_eq!(
        roster
            .subscription("alice", "nobody@example.com")
            .await
            .unwrap(),
        Subscription::None
    );
    let subscriptions = roster.subscriptions("alice").await.unwrap();
    assert_eq!(subscriptions.len(), 3);
    assert!(subscriptions.contains(&("bob@example.com".to_owned(), Subscription::Both)));
    assert!(subscriptions.contains(&("carol@example.com".to_owned(), Subscription::To)));
    assert_eq!(
        roster.remove("alice", "bob@example.com").await.unwrap(),
        Some(v4 + 1)
    );
    assert_eq!(
        roster.remove("alice", "bob@example.com").await.unwrap(),
        None
    );
    assert_eq!(roster.version("alice").await.unwrap(), v4 + 1);
    assert_eq!(roster.count("alice").await.unwrap(), 2);
}

#[tokio::test]
async fn the_roster_is_bounded_but_existing_items_can_still_change() {
    let store = store_with(&["alice"]).await;
    let roster = store.roster();
    roster
        .put("alice", &item("a@example.com", &[]), 2)
        .await
        .unwrap();
    roster
        .put("alice", &item("b@example.com", &[]), 2)
        .await
        .unwrap();
    let err = roster
        .put("alice", &item("c@example.com", &[]), 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LimitReached(_)), "{err:?}");
    assert!(
        roster
            .item("alice", "c@example.com")
            .await
            .unwrap()
            .is_none()
    );
    roster
        .put("alice", &item("b@example.com", &["New"]), 2)
        .await
        .unwrap();
}

#[tokio::test]
async fn pending_requests_are_kept_once_per_contact_and_bounded() {
    let store = store_with(&["alice"]).await;
    let roster = store.roster();
    roster
        .add_pending_in(
            "alice",
            "bob@example.com",
            "<presence type='subscribe'/>",
            2,
        )
        .await
        .unwrap();
    roster
        .add_pending_in(
            "alice",
            "bob@example.com",
            "<presence type='subscribe'><status>hi</status></presence>",
            2,
        )
        .await
        .unwrap();
    roster
        .add_pending_in(
            "alice",
            "carol@example.com",
            "<presence type='subscribe'/>",
            2,
        )
        .await
        .unwrap();
    let err = roster
        .add_pending_in("alice", "dave@example.com", "<presence/>", 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LimitReached(_)));
    let pending = roster.pending_in("alice").await.unwrap();
    assert_eq!(pending.len(), 2);
    let bob = pending
        .iter()
        .find(|p| p.contact == "bob@example.com")
        .unwrap();
    assert!(bob.request.contains("hi"));
    assert!(
        roster
            .has_pending_in("alice", "carol@example.com")
            .await
            .unwrap()
    );
    assert!(
        roster
            .remove_pending_in("alice", "carol@example.com")
            .await
            .unwrap()
    );
    assert!(
        !roster
            .has_pending_in("alice", "carol@example.com")
            .await
            .unwrap()
    );
    assert!(
        !roster
            .remove_pending_in("alice", "carol@example.com")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn deleting_the_account_deletes_its_roster() {
    let store = store_with(&["alice"]).await;
    store
        .roster()
        .put("alice", &item("bob@example.com", &["G"]), 10)
        .await
        .unwrap();
    store
        .roster()
        .add_pending_in("alice", "carol@example.com", "<presence/>", 10)
        .await
        .unwrap();
    assert!(store.accounts().delete("alice").await.unwrap());
    let creds = Credentials::from_password("a long enough password").unwrap();
    store
        .accounts()
        .create("alice", &creds, Role::Normal)
        .await
        .unwrap();
    assert_eq!(
        store.roster().get("alice").await.unwrap(),
        Default::default()
    );
    assert!(store.roster().pending_in("alice").await.unwrap().is_empty());
}

#[test]
fn subscription_halves() {
    assert_eq!(Subscription::None.with_to(true), Subscription::To);
    assert_eq!(Subscription::To.with_from(true), Subscription::Both);
    assert_eq!(Subscription::Both.with_to(false), Subscription::From);
    assert!(Subscription::From.has_from() && !Subscription::From.has_to());
    for s in [
        Subscription::None,
        Subscription::To,
        Subscription::From,
        Subscription::Both,
    ] {
        assert_eq!(Subscription::parse(s.as_str()), Some(s));
    }
}

#[tokio::test]
async fn many_items_of_many_rosters_in_one_write() {
    let store = store_with(&["alice", "bob", "carol"]).await;
    let roster = store.roster();
    roster
        .add_pending_in("bob", "alice@example.com", "<presence/>", 10)
        .await
        .unwrap();
    roster
        .put("carol", &item("x@example.com", &[]), 1)
        .await
        .unwrap();
    let changes = vec![
        ("alice".to_owned(), item("bob@example.com", &["Circle"])),
        ("bob".to_owned(), item("alice@example.com", &["Circle"])),
        // carol's roster is full (limit 1): this one is left out, the others stored.
        ("carol".to_owned(), item("alice@example.com", &["Circle"])),
    ];
    let versions = roster.put_many(&changes, 1).await.unwrap();
    assert!(versions[0].is_some() && versions[1].is_some());
    assert_eq!(versions[2], None);
    assert_eq!(
        roster
            .item("bob", "alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .groups,
        ["Circle"]
    );
    assert!(
        !roster
            .has_pending_in("bob", "alice@example.com")
            .await
            .unwrap(),
        "the request is answered"
    );
    assert!(
        roster
            .item("carol", "alice@example.com")
            .await
            .unwrap()
            .is_none()
    );
}
