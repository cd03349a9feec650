//! PEP nodes and items in SQLite: ordering, trimming to max_items, replacing by id, the quotas (refused changes
//! leave nothing behind) and that everything goes with its account.

use rookery_store::{Credentials, PepItem, PepNode, PepQuota, Published, Role, Store, StoreError};

const QUOTA: PepQuota = PepQuota {
    max_nodes: 2,
    max_total_bytes: 100,
};

fn node(name: &str, max_items: u32) -> PepNode {
    PepNode {
        node: name.to_owned(),
        config: format!("config of {name}"),
        max_items,
    }
}

fn item(id: &str, payload: &str) -> PepItem {
    PepItem {
        id: id.to_owned(),
        publisher: "alice@example.com".to_owned(),
        payload: payload.to_owned(),
        published_at: 1,
    }
}

fn ids(items: &[PepItem]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

#[tokio::test]
async fn items_are_ordered_trimmed_replaced_and_bounded() {
    let store = Store::open_in_memory().await.unwrap();
    store
        .accounts()
        .create("alice", &Credentials::default(), Role::Normal)
        .await
        .unwrap();
    let pep = store.pep();
    for id in ["a", "b", "c", "d"] {
        let published = pep
            .publish("alice", &node("n", 3), &item(id, "<x/>"), |_| true, QUOTA)
            .await
            .unwrap();
        assert!(matches!(published, Published::Stored { created, .. } if created == (id == "a")));
    }
    assert_eq!(
        ids(&pep.items("alice", "n", &[], None).await.unwrap()),
        ["b", "c", "d"]
    );
    // Republishing an id makes it the newest.
    pep.publish("alice", &node("n", 3), &item("b", "<y/>"), |_| true, QUOTA)
        .await
        .unwrap();
    assert_eq!(
        ids(&pep.items("alice", "n", &[], None).await.unwrap()),
        ["c", "d", "b"]
    );
    assert_eq!(
        ids(&pep.items("alice", "n", &[], Some(1)).await.unwrap()),
        ["b"]
    );
    let picked = pep
        .items(
            "alice",
            "n",
            &["b".to_owned(), "c".to_owned(), "zz".to_owned()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&picked), ["c", "b"]);
    // A refused precondition changes nothing.
    let refused = pep
        .publish("alice", &node("n", 3), &item("e", "<x/>"), |_| false, QUOTA)
        .await
        .unwrap();
    assert!(matches!(refused, Published::Refused(_)));
    assert_eq!(pep.items("alice", "n", &[], None).await.unwrap().len(), 3);
    // Over the byte quota: refused, and the node it would have created is not left behind.
    let big = "x".repeat(95);
    let err = pep
        .publish("alice", &node("big", 1), &item("1", &big), |_| true, QUOTA)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LimitReached(_)));
    assert!(pep.node("alice", "big").await.unwrap().is_none());
    // Node count: a second node fits, a third does not.
    assert!(pep.create("alice", &node("m", 1), QUOTA).await.unwrap());
    assert!(!pep.create("alice", &node("m", 1), QUOTA).await.unwrap());
    assert!(matches!(
        pep.create("alice", &node("o", 1), QUOTA).await,
        Err(StoreError::LimitReached(_))
    ));
    // Configure trims; retract, purge and delete say whether there was something.
    assert!(pep.configure("alice", &node("n", 1)).await.unwrap());
    assert_eq!(
        ids(&pep.items("alice", "n", &[], None).await.unwrap()),
        ["b"]
    );
    assert!(pep.retract("alice", "n", "b").await.unwrap());
    assert!(!pep.retract("alice", "n", "b").await.unwrap());
    assert!(pep.purge("alice", "m").await.unwrap());
    assert!(!pep.purge("alice", "nope").await.unwrap());
    assert!(pep.delete("alice", "m").await.unwrap());
    assert!(!pep.delete("alice", "m").await.unwrap());
    // No such account.
    assert!(matches!(
        pep.create("nobody", &node("n", 1), QUOTA).await,
        Err(StoreError::InvalidInput(_))
    ));
    // Everything goes with the account.
    pep.publish("alice", &node("n", 3), &item("z", "<x/>"), |_| true, QUOTA)
        .await
        .unwrap();
    store.accounts().delete("alice").await.unwrap();
    assert!(pep.nodes("alice").await.unwrap().is_empty());
    assert!(pep.items("alice", "n", &[], None).await.unwrap().is_empty());
}
