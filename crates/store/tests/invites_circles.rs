//! The invites and circles repositories against SQLite.

use rookery_sasl::Credentials;
use rookery_store::{Invite, InviteKind, Role, Store, StoreError};

async fn store_with(users: &[&str]) -> Store {
    let store = Store::open_in_memory().await.unwrap();
    for user in users {
        store
            .accounts()
            .create(user, &Credentials::default(), Role::Normal)
            .await
            .unwrap();
    }
    store
}

fn invite(kind: InviteKind, reusable: bool, expires_at: i64) -> Invite {
    Invite {
        token: Invite::new_token(),
        kind,
        username: None,
        allow_registration: true,
        reusable,
        roles: vec![Role::Admin, Role::Normal],
        circles: vec!["default".into(), "family".into()],
        note: Some("for Ann".into()),
        source: Some("admin@example.com/cli".into()),
        created_at: 100,
        expires_at,
    }
}

#[tokio::test]
async fn tokens_have_snikkets_shape() {
    let token = Invite::new_token();
    assert_eq!(token.len(), 24);
    assert!(Invite::is_well_formed(&token));
    assert_ne!(token, Invite::new_token());
    for bad in ["", "has space", "slash/", &"a".repeat(65), "ünï"] {
        assert!(!Invite::is_well_formed(bad), "{bad:?}");
    }
}

#[tokio::test]
async fn invites_round_trip_expire_and_are_consumed_once_unless_reusable() {
    let store = store_with(&[]).await;
    let invites = store.invites();
    let single = invite(InviteKind::Account, false, 1000);
    let group = invite(InviteKind::Account, true, 1000);
    let old = invite(InviteKind::Reset, false, 50);
    for i in [&single, &group, &old] {
        invites.create(i).await.unwrap();
    }
    assert!(matches!(
        invites.create(&single).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        invites.get(&single.token).await.unwrap().as_ref(),
        Some(&single)
    );
    assert_eq!(invites.get("not a token!").await.unwrap(), None);
    assert_eq!(invites.get("AAAAAAAAAAAAAAAAAAAAAAAA").await.unwrap(), None);
    assert!(single.is_valid_at(999) && !single.is_valid_at(1000));

    let valid = invites.list_valid(500).await.unwrap();
    assert_eq!(valid.len(), 2, "the expired one is not listed");

    assert!(invites.consume(&single.token).await.unwrap());
    assert!(!invites.consume(&single.token).await.unwrap(), "single use");
    for _ in 0..3 {
        assert!(invites.consume(&group.token).await.unwrap(), "reusable");
    }
    assert_eq!(invites.delete_expired(500).await.unwrap(), 1);
    assert!(invites.revoke(&group.token).await.unwrap());
    assert!(!invites.revoke(&group.token).await.unwrap());
}

#[tokio::test]
async fn circles_and_their_members() {
    let store = store_with(&["alice", "bob"]).await;
    let circles = store.circles();
    circles.create("default", "Example").await.unwrap();
    assert!(matches!(
        circles.create("default", "Again").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        circles.create("x", " ").await,
        Err(StoreError::InvalidInput(_))
    ));
    let family = circles
        .create(&rookery_store::Circle::new_id(), "Family")
        .await
        .unwrap();
    assert_eq!(family.id.len(), 12);
    assert!(circles.add_member("default", "alice").await.unwrap());
    assert!(!circles.add_member("default", "alice").await.unwrap());
    assert!(circles.add_member("default", "bob").await.unwrap());
    assert!(circles.add_member(&family.id, "bob").await.unwrap());
    assert!(matches!(
        circles.add_member("nope", "bob").await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        circles.add_member("default", "nobody").await,
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(circles.members("default").await.unwrap(), ["alice", "bob"]);
    let of_bob: Vec<String> = circles
        .circles_of("bob")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(of_bob, ["Example", "Family"]);
    assert!(circles.rename(&family.id, "Kin").await.unwrap());
    assert!(circles.remove_member("default", "alice").await.unwrap());
    assert!(!circles.remove_member("default", "alice").await.unwrap());
    assert!(circles.delete(&family.id).await.unwrap());
    assert_eq!(circles.list().await.unwrap().len(), 1);
    // Deleting an account takes it out of its circles.
    assert!(store.accounts().delete("bob").await.unwrap());
    assert!(circles.members("default").await.unwrap().is_empty());
}
