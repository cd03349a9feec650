//! The message archive in SQLite (migration 0008).
//!
//! Query plans, checked by `archive_queries_use_the_indexes` in tests/archive.rs with EXPLAIN QUERY PLAN:
//! - by time (with or without start/end and page keys): `archive_by_time (owner=? AND archived_at>?...)`;
//! - with `with`: `archive_by_peer (owner=? AND with_bare=? AND ...)`;
//! - a page key (after-id/before-id) or the `ids` filter: `archive_stanza_ids (owner=? AND stanza_id=?)`.
//!
//! The page key is the row value `(archived_at, id)`: SQLite seeks to its `archived_at` in the index (the plan
//! shows `archived_at>?`) and checks `id` on the index entries of that one millisecond, so paging is a seek, not a
//! scan.

use super::SqliteStore;
use crate::archive::new_stanza_id;
use crate::{
    ArchiveDefault, ArchivePrefs, ArchiveQuery, ArchiveRule, Archived, NewArchived, QueryOutcome,
    StoreError,
};
use sqlx::{QueryBuilder, Row, Sqlite};

/// Attempts at a fresh stanza id when the random one is already taken in the owner's archive (which 128 random
/// bits make practically impossible; the bound only keeps a broken random source from looping).
const ID_ATTEMPTS: usize = 3;

/// Rows deleted per statement by the retention job, so that the single writer is never held for long.
const DELETE_BATCH: i64 = 5_000;

/// Most appends committed in one transaction: bounds how long one group holds the writer.
const GROUP_MAX: usize = 256;

/// Appends waiting for the group-commit task; senders wait when it is full.
const QUEUE: usize = 1024;

/// One append waiting to be committed, and where its outcome goes.
struct Pending {
    owner: String,
    with_bare: String,
    with_resource: Option<String>,
    stanza: String,
    archived_at: i64,
    done: tokio::sync::oneshot::Sender<Result<Option<String>, StoreError>>,
}

/// Group commit for archive appends. Every message a server delivers is archived (twice, between two local
/// accounts) before it is delivered, and a commit costs a WAL write and an fsync (synchronous = FULL) of far more
/// CPU than the insert itself. So appends go through one task that takes every append waiting when it is free and
/// commits them together: alone, an append costs what its own transaction would; under load, one fsync serves many.
/// An append's id is handed out only once its group is committed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Appender(std::sync::Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<Pending>>>);

impl Appender {
    fn sender(&self, s: &SqliteStore) -> &tokio::sync::mpsc::Sender<Pending> {
        self.0.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
            tokio::spawn(commit_groups(s.writer().clone(), rx));
            tx
        })
    }
}

pub(crate) async fn append(
    s: &SqliteStore,
    message: &NewArchived<'_>,
) -> Result<Option<String>, StoreError> {
    let (done, outcome) = tokio::sync::oneshot::channel();
    let pending = Pending {
        owner: message.owner.to_owned(),
        with_bare: message.with_bare.to_owned(),
        with_resource: message.with_resource.map(str::to_owned),
        stanza: message.stanza.to_owned(),
        archived_at: message.archived_at,
        done,
    };
    if s.archive_appender.sender(s).send(pending).await.is_err() {
        // The task is gone (its runtime was shut down): no group to join.
        return Err(StoreError::Database(sqlx::Error::PoolClosed));
    }
    outcome
        .await
        .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolClosed)))
}

/// The group-commit task: runs until every sender is gone.
async fn commit_groups(writer: sqlx::SqlitePool, mut queue: tokio::sync::mpsc::Receiver<Pending>) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    while queue.recv_many(&mut group, GROUP_MAX).await > 0 {
        let outcomes = commit_group(&writer, &group).await;
        for (pending, outcome) in group.drain(..).zip(outcomes) {
            // The appender may have given up waiting (its connection closed): nothing to tell.
            let _ = pending.done.send(outcome);
        }
    }
}

/// Inserts a group in one transaction. Each append gets its own outcome: an owner without an account is `None`
/// (SQLite undoes only the failed statement). Any other failure (a full disk, say, after which SQLite may have
/// rolled the transaction back itself) rolls the whole group back and fails it: nothing is half stored.
async fn commit_group(
    writer: &sqlx::SqlitePool,
    group: &[Pending],
) -> Vec<Result<Option<String>, StoreError>> {
    let fail_all = |error: sqlx::Error| {
        let text = error.to_string();
        group
            .iter()
            .map(|_| Err(StoreError::Database(sqlx::Error::Protocol(text.clone()))))
            .collect()
    };
    let mut tx = match writer.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(error) => return fail_all(error),
    };
    let mut outcomes = Vec::with_capacity(group.len());
    for pending in group {
        let message = NewArchived {
            owner: &pending.owner,
            with_bare: &pending.with_bare,
            with_resource: pending.with_resource.as_deref(),
            stanza: &pending.stanza,
            archived_at: pending.archived_at,
        };
        let mut outcome = Err(StoreError::AlreadyExists);
        for _ in 0..ID_ATTEMPTS {
            let stanza_id = new_stanza_id();
            match insert(&mut *tx, &message, &stanza_id).await {
                Ok(()) => outcome = Ok(Some(stanza_id)),
                Err(error) if is_foreign_key_violation(&error) => outcome = Ok(None),
                Err(error) if is_unique_violation(&error) => continue,
                // Dropping the transaction rolls it back.
                Err(error) => return fail_all(error),
            }
            break;
        }
        outcomes.push(outcome);
    }
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(error) => fail_all(error),
    }
}

pub(crate) async fn append_all(
    s: &SqliteStore,
    messages: &[NewArchived<'_>],
) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    for message in messages {
        insert(&mut *tx, message, &new_stanza_id()).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert<'e, E>(
    executor: E,
    message: &NewArchived<'_>,
    stanza_id: &str,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO archive (owner, stanza_id, archived_at, with_bare, with_resource, stanza) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(message.owner)
    .bind(stanza_id)
    .bind(message.archived_at)
    .bind(message.with_bare)
    .bind(message.with_resource)
    .bind(message.stanza)
    .execute(executor)
    .await?;
    Ok(())
}

pub(crate) async fn query(
    s: &SqliteStore,
    owner: &str,
    query: &ArchiveQuery,
) -> Result<QueryOutcome, StoreError> {
    // One read transaction: the page keys and the page come from the same snapshot.
    let mut tx = s.reader().begin().await?;
    let mut after = None;
    let mut before = None;
    for (id, key) in [
        (&query.after_id, &mut after),
        (&query.before_id, &mut before),
    ] {
        if let Some(id) = id {
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT archived_at, id FROM archive WHERE owner = $1 AND stanza_id = $2",
            )
            .bind(owner)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(found) => *key = Some(found),
                None => return Ok(QueryOutcome::UnknownId(id.clone())),
            }
        }
    }
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let mut sql = page_sql("", owner, query, after, before, limit);
    let rows = sql.build().fetch_all(&mut *tx).await?;
    let found = rows
        .iter()
        .map(|row| {
            Ok(Archived {
                stanza_id: row.try_get("stanza_id")?,
                archived_at: row.try_get("archived_at")?,
                stanza: row.try_get("stanza")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(QueryOutcome::Found(found))
}

/// The SELECT for one page (after `prefix`, which EXPLAIN uses): every filter is a condition on the columns of
/// one index, in its order.
fn page_sql(
    prefix: &str,
    owner: &str,
    query: &ArchiveQuery,
    after: Option<(i64, i64)>,
    before: Option<(i64, i64)>,
    limit: i64,
) -> QueryBuilder<Sqlite> {
    // The index is named rather than left to the planner: without statistics SQLite may take the time index for a
    // `with` query (and scan a million rows for a contact's fifty), and a named index that cannot serve the query
    // is an error rather than a silent full scan. A list of ids (at most a page's worth) is looked up id by id.
    let index = if !query.ids.is_empty() {
        "archive_stanza_ids"
    } else if query.with_bare.is_some() {
        "archive_by_peer"
    } else {
        "archive_by_time"
    };
    let mut sql = QueryBuilder::new(prefix);
    sql.push("SELECT stanza_id, archived_at, stanza FROM archive INDEXED BY ")
        .push(index)
        .push(" WHERE owner = ")
        .push_bind(owner.to_owned());
    if let Some(with_bare) = &query.with_bare {
        sql.push(" AND with_bare = ").push_bind(with_bare.clone());
        if let Some(resource) = &query.with_resource {
            sql.push(" AND with_resource = ")
                .push_bind(resource.clone());
        }
    }
    if let Some(start) = query.start {
        sql.push(" AND archived_at >= ").push_bind(start);
    }
    if let Some(end) = query.end {
        sql.push(" AND archived_at <= ").push_bind(end);
    }
    for (key, comparison) in [(after, " > "), (before, " < ")] {
        if let Some((at, id)) = key {
            sql.push(" AND (archived_at, id)")
                .push(comparison)
                .push("(")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
    }
    if !query.ids.is_empty() {
        sql.push(" AND stanza_id IN (");
        let mut list = sql.separated(", ");
        for id in &query.ids {
            list.push_bind(id.clone());
        }
        sql.push(")");
    }
    if query.newest_first {
        sql.push(" ORDER BY archived_at DESC, id DESC LIMIT ");
    } else {
        sql.push(" ORDER BY archived_at, id LIMIT ");
    }
    sql.push_bind(limit);
    sql
}

pub(crate) async fn delete_older_than(s: &SqliteStore, cutoff: i64) -> Result<u64, StoreError> {
    // Owner by owner, so that each DELETE is a range of `archive_by_time`; a time-only condition would have to
    // scan every archive.
    let owners: Vec<String> = sqlx::query_scalar("SELECT username FROM accounts")
        .fetch_all(s.reader())
        .await?;
    let mut deleted = 0;
    for owner in owners {
        loop {
            let done = sqlx::query(
                "DELETE FROM archive WHERE id IN (SELECT id FROM archive \
                 WHERE owner = $1 AND archived_at < $2 ORDER BY archived_at LIMIT $3)",
            )
            .bind(&owner)
            .bind(cutoff)
            .bind(DELETE_BATCH)
            .execute(s.writer())
            .await?;
            deleted += done.rows_affected();
            if done.rows_affected() < u64::try_from(DELETE_BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
    }
    Ok(deleted)
}

pub(crate) async fn prefs(s: &SqliteStore, owner: &str) -> Result<ArchivePrefs, StoreError> {
    let mut tx = s.reader().begin().await?;
    let default: Option<String> =
        sqlx::query_scalar("SELECT default_mode FROM archive_prefs WHERE owner = $1")
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
    let jids: Vec<(String, bool)> =
        sqlx::query_as("SELECT jid, always FROM archive_pref_jids WHERE owner = $1 ORDER BY jid")
            .bind(owner)
            .fetch_all(&mut *tx)
            .await?;
    let mut prefs = ArchivePrefs {
        default: parse_default(default)?,
        ..ArchivePrefs::default()
    };
    for (jid, always) in jids {
        if always {
            prefs.always.push(jid);
        } else {
            prefs.never.push(jid);
        }
    }
    Ok(prefs)
}

pub(crate) async fn set_prefs(
    s: &SqliteStore,
    owner: &str,
    prefs: &ArchivePrefs,
) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let stored = sqlx::query(
        "INSERT INTO archive_prefs (owner, default_mode) VALUES ($1, $2) \
         ON CONFLICT (owner) DO UPDATE SET default_mode = excluded.default_mode",
    )
    .bind(owner)
    .bind(prefs.default.as_str())
    .execute(&mut *tx)
    .await;
    match stored {
        Ok(_) => {}
        Err(error) if is_foreign_key_violation(&error) => return Ok(false),
        Err(error) => return Err(error.into()),
    }
    sqlx::query("DELETE FROM archive_pref_jids WHERE owner = $1")
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    // `never` last: a JID in both lists ends up never archived, the safer reading.
    for (jids, always) in [(&prefs.always, true), (&prefs.never, false)] {
        for jid in jids {
            sqlx::query(
                "INSERT INTO archive_pref_jids (owner, jid, always) VALUES ($1, $2, $3) \
                 ON CONFLICT (owner, jid) DO UPDATE SET always = excluded.always",
            )
            .bind(owner)
            .bind(jid)
            .bind(always)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn rule_for(
    s: &SqliteStore,
    owner: &str,
    jid: &str,
) -> Result<ArchiveRule, StoreError> {
    let (default, listed): (Option<String>, Option<bool>) = sqlx::query_as(
        "SELECT (SELECT default_mode FROM archive_prefs WHERE owner = $1), \
                (SELECT always FROM archive_pref_jids WHERE owner = $1 AND jid = $2)",
    )
    .bind(owner)
    .bind(jid)
    .fetch_one(s.reader())
    .await?;
    Ok(ArchiveRule {
        default: parse_default(default)?,
        listed,
    })
}

fn parse_default(stored: Option<String>) -> Result<ArchiveDefault, StoreError> {
    match stored {
        None => Ok(ArchiveDefault::Always),
        Some(name) => ArchiveDefault::parse(&name)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown archive default {name:?}"))),
    }
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// EXPLAIN QUERY PLAN for the page query, one line per step (for the test that checks index use). A page key
/// is assumed for `after_id`/`before_id` rather than looked up: the plan does not depend on it.
pub(crate) async fn explain_page(
    s: &SqliteStore,
    owner: &str,
    query: &ArchiveQuery,
) -> Result<Vec<String>, StoreError> {
    let key = |id: &Option<String>| id.as_ref().map(|_| (0, 0));
    let mut sql = page_sql(
        "EXPLAIN QUERY PLAN ",
        owner,
        query,
        key(&query.after_id),
        key(&query.before_id),
        50,
    );
    let rows = sql.build().fetch_all(s.reader()).await?;
    rows.iter()
        .map(|row| row.try_get::<String, _>("detail").map_err(Into::into))
        .collect()
}
