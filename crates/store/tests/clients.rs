//! The clients repository against SQLite: logins recorded in one transaction, token promotion and removal, the
//! bound on clients per account, and what a password change or an account deletion does to tokens.

use rookery_sasl::Credentials;
use rookery_sasl::ht::TokenSlot;
use rookery_store::{ClientLogin, NewToken, Role, Store, StoreError, TokenUse};

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

fn login(client: &str, now: i64) -> ClientLogin {
    ClientLogin {
        username: "alice".into(),
        client_id: client.into(),
        software: Some("Snikket".into()),
        device: Some("Pixel".into()),
        now,
        used: None,
        issue: None,
        max_clients: 3,
    }
}

fn token(secret: &str, expires_at: i64) -> NewToken {
    NewToken {
        mechanism: "HT-SHA-256-NONE".into(),
        secret: secret.into(),
        expires_at,
    }
}

#[tokio::test]
async fn token_lifecycle_new_current_and_invalidate() {
    let store = store_with(&["alice"]).await;
    let clients = store.clients();
    clients
        .record_login(&ClientLogin {
            issue: Some(token("t1", 1000)),
            ..login("phone", 10)
        })
        .await
        .unwrap();
    let tokens = clients.tokens("alice", "phone").await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].slot, TokenSlot::New);
    assert_eq!(tokens[0].secret, "t1");
    assert_eq!(tokens[0].issued_at, 10);

    // Using the new token makes it current, with its count.
    let used = TokenUse {
        slot: TokenSlot::New,
        count: Some(5),
        invalidate: false,
    };
    clients
        .record_login(&ClientLogin {
            used: Some(used),
            issue: Some(token("t2", 2000)),
            ..login("phone", 20)
        })
        .await
        .unwrap();
    let mut tokens = clients.tokens("alice", "phone").await.unwrap();
    tokens.sort_by_key(|t| t.slot == TokenSlot::Current);
    assert_eq!(
        tokens
            .iter()
            .map(|t| (t.slot, t.secret.as_str(), t.last_count))
            .collect::<Vec<_>>(),
        [
            (TokenSlot::New, "t2", None),
            (TokenSlot::Current, "t1", Some(5))
        ]
    );

    // Using t2 retires t1.
    clients
        .record_login(&ClientLogin {
            used: Some(TokenUse {
                slot: TokenSlot::New,
                count: None,
                invalidate: false,
            }),
            ..login("phone", 30)
        })
        .await
        .unwrap();
    let tokens = clients.tokens("alice", "phone").await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (tokens[0].slot, tokens[0].secret.as_str()),
        (TokenSlot::Current, "t2")
    );

    // invalidate='true' removes it.
    clients
        .record_login(&ClientLogin {
            used: Some(TokenUse {
                slot: TokenSlot::Current,
                count: None,
                invalidate: true,
            }),
            ..login("phone", 40)
        })
        .await
        .unwrap();
    assert!(clients.tokens("alice", "phone").await.unwrap().is_empty());
    let listed = clients.list("alice", 40).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].first_seen, 10);
    assert_eq!(listed[0].last_seen, 40);
    assert!(!listed[0].has_token);
}

#[tokio::test]
async fn password_change_and_deletion_end_tokens() {
    let store = store_with(&["alice"]).await;
    let clients = store.clients();
    clients
        .record_login(&ClientLogin {
            issue: Some(token("t1", 1000)),
            ..login("phone", 10)
        })
        .await
        .unwrap();
    assert!(clients.list("alice", 10).await.unwrap()[0].has_token);
    assert!(
        !clients.list("alice", 1000).await.unwrap()[0].has_token,
        "expired"
    );
    let credentials = Credentials::from_password_with_iterations("another password", 1).unwrap();
    assert!(
        store
            .accounts()
            .set_credentials("alice", &credentials)
            .await
            .unwrap()
    );
    assert!(clients.tokens("alice", "phone").await.unwrap().is_empty());
    // The client itself stays listed.
    assert_eq!(clients.list("alice", 10).await.unwrap().len(), 1);

    clients
        .record_login(&ClientLogin {
            issue: Some(token("t2", 1000)),
            ..login("phone", 20)
        })
        .await
        .unwrap();
    assert!(store.accounts().delete("alice").await.unwrap());
    assert!(clients.tokens("alice", "phone").await.unwrap().is_empty());
    assert!(clients.list("alice", 20).await.unwrap().is_empty());
    // A login for an account that is gone stores nothing.
    let err = clients.record_login(&login("phone", 30)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
}

#[tokio::test]
async fn clients_are_bounded_and_revocable() {
    let store = store_with(&["alice", "bob"]).await;
    let clients = store.clients();
    for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let issue = Some(token(id, 1000));
        clients
            .record_login(&ClientLogin {
                issue,
                ..login(id, i64::try_from(i).unwrap())
            })
            .await
            .unwrap();
    }
    let ids: Vec<String> = clients
        .list("alice", 0)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, ["d", "c", "b"], "the least recently seen is forgotten");
    assert!(clients.tokens("alice", "a").await.unwrap().is_empty());

    assert!(clients.revoke("alice", "c").await.unwrap());
    assert!(!clients.revoke("alice", "c").await.unwrap());
    assert!(
        !clients.revoke("bob", "d").await.unwrap(),
        "another account's client"
    );
    assert!(clients.tokens("alice", "c").await.unwrap().is_empty());
    assert_eq!(clients.list("alice", 0).await.unwrap().len(), 2);
    assert!(
        clients
            .remove_token("alice", "d", TokenSlot::New)
            .await
            .unwrap()
    );
    assert!(
        !clients
            .remove_token("alice", "d", TokenSlot::New)
            .await
            .unwrap()
    );
}
