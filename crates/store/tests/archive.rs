//! The archive repository against SQLite: ids, order, every filter, keyset paging both ways, unknown ids, the query
//! plans (every filter from an index, no sort, no scan), retention, preferences and cascade on account deletion.

use rookery_sasl::Credentials;
use rookery_store::{
    ArchiveDefault, ArchivePrefs, ArchiveQuery, ArchiveRule, Archived, NewArchived, QueryOutcome,
    Role, Store,
};

async fn store(users: &[&str]) -> Store {
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

/// Archives `n` messages for alice, message `i` at `1000 * i` ms, alternately with bob and carol (carol from two
/// resources); returns their stanza ids in order.
async fn seed(store: &Store, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let stanza = format!("<message xmlns='jabber:client'><body>{i}</body></message>");
        let (with_bare, with_resource) = match i % 4 {
            0 | 2 => ("bob@example.com", None),
            1 => ("carol@example.com", Some("phone")),
            _ => ("carol@example.com", Some("laptop")),
        };
        let id = store
            .archive()
            .append(&NewArchived {
                owner: "alice",
                with_bare,
                with_resource,
                stanza: &stanza,
                archived_at: 1000 * i64::try_from(i).unwrap(),
            })
            .await
            .unwrap()
            .expect("alice exists");
        ids.push(id);
    }
    ids
}

async fn page(store: &Store, query: &ArchiveQuery) -> Vec<usize> {
    match store.archive().query("alice", query).await.unwrap() {
        QueryOutcome::Found(found) => found.iter().map(body_number).collect(),
        QueryOutcome::UnknownId(id) => panic!("unknown id {id}"),
    }
}

fn body_number(archived: &Archived) -> usize {
    let start = archived.stanza.find("<body>").unwrap() + 6;
    let end = archived.stanza.find("</body>").unwrap();
    archived.stanza[start..end].parse().unwrap()
}

fn q(limit: usize) -> ArchiveQuery {
    ArchiveQuery {
        limit,
        ..ArchiveQuery::default()
    }
}

#[tokio::test]
async fn ids_are_random_url_safe_and_unique() {
    let store = store(&["alice"]).await;
    let ids = seed(&store, 200).await;
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    for id in &ids {
        assert_eq!(id.len(), 22, "128 bits in unpadded base64: {id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
    }
}

#[tokio::test]
async fn an_unknown_owner_gets_nothing_archived() {
    let store = store(&["alice"]).await;
    let appended = store
        .archive()
        .append(&NewArchived {
            owner: "nobody",
            with_bare: "bob@example.com",
            with_resource: None,
            stanza: "<message/>",
            archived_at: 1,
        })
        .await
        .unwrap();
    assert_eq!(appended, None);
}

#[tokio::test]
async fn pages_follow_each_other_both_ways() {
    let store = store(&["alice"]).await;
    let ids = seed(&store, 10).await;
    assert_eq!(page(&store, &q(3)).await, [0, 1, 2]);
    // Forwards from the last of a page.
    let next = ArchiveQuery {
        after_id: Some(ids[2].clone()),
        ..q(3)
    };
    assert_eq!(page(&store, &next).await, [3, 4, 5]);
    // The last page, newest first, then the one before it.
    let last = ArchiveQuery {
        newest_first: true,
        ..q(3)
    };
    assert_eq!(page(&store, &last).await, [9, 8, 7]);
    let previous = ArchiveQuery {
        before_id: Some(ids[7].clone()),
        newest_first: true,
        ..q(3)
    };
    assert_eq!(page(&store, &previous).await, [6, 5, 4]);
    // Between two ids.
    let between = ArchiveQuery {
        after_id: Some(ids[1].clone()),
        before_id: Some(ids[5].clone()),
        ..q(50)
    };
    assert_eq!(page(&store, &between).await, [2, 3, 4]);
    assert_eq!(page(&store, &q(0)).await, Vec::<usize>::new());
}

#[tokio::test]
async fn messages_in_the_same_millisecond_page_by_row() {
    let store = store(&["alice"]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let stanza = format!("<message xmlns='jabber:client'><body>{i}</body></message>");
        let message = NewArchived {
            owner: "alice",
            with_bare: "bob@example.com",
            with_resource: None,
            stanza: &stanza,
            archived_at: 42,
        };
        ids.push(store.archive().append(&message).await.unwrap().unwrap());
    }
    let next = ArchiveQuery {
        after_id: Some(ids[1].clone()),
        ..q(2)
    };
    assert_eq!(page(&store, &next).await, [2, 3]);
    let previous = ArchiveQuery {
        before_id: Some(ids[3].clone()),
        newest_first: true,
        ..q(2)
    };
    assert_eq!(page(&store, &previous).await, [2, 1]);
}

#[tokio::test]
async fn filters_narrow_the_result() {
    let store = store(&["alice", "bob"]).await;
    let ids = seed(&store, 12).await;
    let with_bob = ArchiveQuery {
        with_bare: Some("bob@example.com".into()),
        ..q(50)
    };
    assert_eq!(page(&store, &with_bob).await, [0, 2, 4, 6, 8, 10]);
    let with_carol_phone = ArchiveQuery {
        with_bare: Some("carol@example.com".into()),
        with_resource: Some("phone".into()),
        ..q(50)
    };
    assert_eq!(page(&store, &with_carol_phone).await, [1, 5, 9]);
    let range = ArchiveQuery {
        start: Some(3000),
        end: Some(6000),
        ..q(50)
    };
    assert_eq!(page(&store, &range).await, [3, 4, 5, 6]);
    let chosen = ArchiveQuery {
        ids: vec![ids[7].clone(), ids[2].clone(), "not-an-id".into()],
        ..q(50)
    };
    assert_eq!(page(&store, &chosen).await, [2, 7]);
    let everything = ArchiveQuery {
        with_bare: Some("bob@example.com".into()),
        start: Some(2000),
        end: Some(10_000),
        after_id: Some(ids[2].clone()),
        newest_first: true,
        ..q(2)
    };
    assert_eq!(page(&store, &everything).await, [10, 8]);
    // Bob's archive is his own.
    let bobs = store.archive().query("bob", &q(50)).await.unwrap();
    assert_eq!(bobs, QueryOutcome::Found(Vec::new()));
}

#[tokio::test]
async fn an_id_from_elsewhere_is_unknown() {
    let store = store(&["alice", "bob"]).await;
    seed(&store, 3).await;
    let bobs_id = store
        .archive()
        .append(&NewArchived {
            owner: "bob",
            with_bare: "alice@example.com",
            with_resource: None,
            stanza: "<message xmlns='jabber:client'><body>x</body></message>",
            archived_at: 5,
        })
        .await
        .unwrap()
        .unwrap();
    for query in [
        ArchiveQuery {
            after_id: Some(bobs_id.clone()),
            ..q(5)
        },
        ArchiveQuery {
            before_id: Some("no-such-id".into()),
            ..q(5)
        },
    ] {
        let outcome = store.archive().query("alice", &query).await.unwrap();
        assert!(matches!(outcome, QueryOutcome::UnknownId(_)), "{outcome:?}");
    }
}

#[tokio::test]
async fn archive_queries_use_the_indexes() {
    let store = store(&["alice"]).await;
    seed(&store, 20).await;
    let key = Some("x".to_owned());
    let cases = [
        (q(50), "archive_by_time"),
        (
            ArchiveQuery {
                newest_first: true,
                ..q(50)
            },
            "archive_by_time",
        ),
        (
            ArchiveQuery {
                start: Some(1),
                end: Some(2),
                after_id: key.clone(),
                ..q(50)
            },
            "archive_by_time",
        ),
        (
            ArchiveQuery {
                before_id: key.clone(),
                newest_first: true,
                ..q(50)
            },
            "archive_by_time",
        ),
        (
            ArchiveQuery {
                with_bare: Some("bob@example.com".into()),
                start: Some(1),
                before_id: key.clone(),
                newest_first: true,
                ..q(50)
            },
            "archive_by_peer",
        ),
        (
            ArchiveQuery {
                with_bare: Some("carol@example.com".into()),
                with_resource: Some("phone".into()),
                after_id: key.clone(),
                ..q(50)
            },
            "archive_by_peer",
        ),
        (
            ArchiveQuery {
                ids: vec!["a".into(), "b".into()],
                ..q(50)
            },
            "archive_stanza_ids",
        ),
    ];
    for (query, index) in cases {
        let plan = store.archive().query_plan("alice", &query).await.unwrap();
        let text = plan.join(" | ");
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH archive USING")
                    && step.contains(index)
                    && step.contains("owner=?")),
            "{query:?}: {text}"
        );
        assert!(!text.contains("SCAN"), "{query:?}: {text}");
        if query.ids.is_empty() {
            // The index order is the page order: no sort of the matching rows.
            assert!(!text.contains("TEMP B-TREE"), "{query:?}: {text}");
        }
        if query.before_id.is_some() && query.start.is_none() {
            // The page key is a seek into the index, not a filter on what it reads.
            assert!(text.contains("archived_at<?"), "{query:?}: {text}");
        }
        if query.after_id.is_some() {
            assert!(text.contains("archived_at>?"), "{query:?}: {text}");
        }
    }
}

#[tokio::test]
async fn old_messages_are_deleted_from_every_archive() {
    let store = store(&["alice", "bob"]).await;
    seed(&store, 10).await;
    for at in [500, 20_000] {
        store
            .archive()
            .append(&NewArchived {
                owner: "bob",
                with_bare: "alice@example.com",
                with_resource: None,
                stanza: &format!("<message xmlns='jabber:client'><body>{at}</body></message>"),
                archived_at: at,
            })
            .await
            .unwrap()
            .unwrap();
    }
    let deleted = store.archive().delete_older_than(4000).await.unwrap();
    assert_eq!(deleted, 4 + 1);
    assert_eq!(page(&store, &q(50)).await, [4, 5, 6, 7, 8, 9]);
    let QueryOutcome::Found(bobs) = store.archive().query("bob", &q(50)).await.unwrap() else {
        panic!()
    };
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].archived_at, 20_000);
}

#[tokio::test]
async fn deleting_more_than_a_batch_deletes_everything_old() {
    let store = store(&["alice"]).await;
    let messages: Vec<String> = (0..12_000)
        .map(|i| format!("<message xmlns='jabber:client'><body>{i}</body></message>"))
        .collect();
    let rows: Vec<NewArchived<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, stanza)| NewArchived {
            owner: "alice",
            with_bare: "bob@example.com",
            with_resource: None,
            stanza,
            archived_at: i64::try_from(i).unwrap(),
        })
        .collect();
    store.archive().append_all(&rows).await.unwrap();
    let deleted = store.archive().delete_older_than(11_000).await.unwrap();
    assert_eq!(deleted, 11_000);
    let newest_first = ArchiveQuery {
        newest_first: true,
        ..q(2000)
    };
    assert_eq!(page(&store, &newest_first).await.len(), 1000);
}

#[tokio::test]
async fn preferences_round_trip() {
    let store = store(&["alice"]).await;
    let archive = store.archive();
    assert_eq!(
        archive.prefs("alice").await.unwrap(),
        ArchivePrefs::default()
    );
    let rule = archive.rule_for("alice", "bob@example.com").await.unwrap();
    assert_eq!(
        rule,
        ArchiveRule {
            default: ArchiveDefault::Always,
            listed: None
        }
    );
    let prefs = ArchivePrefs {
        default: ArchiveDefault::Roster,
        always: vec!["bob@example.com".into(), "both@example.com".into()],
        never: vec!["both@example.com".into(), "eve@example.com".into()],
    };
    assert!(archive.set_prefs("alice", &prefs).await.unwrap());
    let stored = archive.prefs("alice").await.unwrap();
    assert_eq!(stored.default, ArchiveDefault::Roster);
    assert_eq!(stored.always, ["bob@example.com"]);
    assert_eq!(stored.never, ["both@example.com", "eve@example.com"]);
    for (jid, listed) in [
        ("bob@example.com", Some(true)),
        ("eve@example.com", Some(false)),
        ("both@example.com", Some(false)),
        ("dave@example.com", None),
    ] {
        let rule = archive.rule_for("alice", jid).await.unwrap();
        assert_eq!(rule.default, ArchiveDefault::Roster);
        assert_eq!(rule.listed, listed, "{jid}");
    }
    // Replaced whole.
    archive
        .set_prefs("alice", &ArchivePrefs::default())
        .await
        .unwrap();
    assert_eq!(
        archive.prefs("alice").await.unwrap(),
        ArchivePrefs::default()
    );
    assert!(
        !archive
            .set_prefs("nobody", &ArchivePrefs::default())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_accounts_archive_goes_with_it() {
    let store = store(&["alice"]).await;
    seed(&store, 3).await;
    store
        .archive()
        .set_prefs(
            "alice",
            &ArchivePrefs {
                default: ArchiveDefault::Never,
                always: vec!["bob@example.com".into()],
                never: vec![],
            },
        )
        .await
        .unwrap();
    store.accounts().delete("alice").await.unwrap();
    store
        .accounts()
        .create("alice", &Credentials::default(), Role::Normal)
        .await
        .unwrap();
    assert_eq!(page(&store, &q(50)).await, Vec::<usize>::new());
    assert_eq!(
        store.archive().prefs("alice").await.unwrap(),
        ArchivePrefs::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_committed_together_each_with_its_own_outcome() {
    let store = store(&["alice", "bob"]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300_i64 {
        let store = store.clone();
        tasks.spawn(async move {
            // Every tenth has an owner without an account: only it comes back without an id.
            let owner = match i % 10 {
                0 => "nobody",
                n if n % 2 == 0 => "alice",
                _ => "bob",
            };
            let stanza = format!("<message xmlns='jabber:client'><body>{i}</body></message>");
            let message = NewArchived {
                owner,
                with_bare: "carol@example.com",
                with_resource: None,
                stanza: &stanza,
                archived_at: i,
            };
            (owner, store.archive().append(&message).await.unwrap())
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let (owner, id) = done.unwrap();
        match owner {
            "nobody" => assert_eq!(id, None),
            _ => assert!(ids.insert(id.expect("stored"))),
        }
    }
    assert_eq!(ids.len(), 270);
    let all = |owner: &'static str| {
        let store = store.clone();
        async move {
            match store.archive().query(owner, &q(1000)).await.unwrap() {
                QueryOutcome::Found(found) => found,
                QueryOutcome::UnknownId(_) => unreachable!(),
            }
        }
    };
    let (alices, bobs) = (all("alice").await, all("bob").await);
    assert_eq!(alices.len(), 120);
    assert_eq!(bobs.len(), 150);
    for found in alices.iter().chain(&bobs) {
        assert!(ids.contains(&found.stanza_id));
    }
}
