//! Offline messages in SQLite.

use super::SqliteStore;
use crate::{OfflineMessage, StoreError, StoreOutcome};
use sqlx::Row;

pub(crate) async fn store(
    s: &SqliteStore,
    owner: &str,
    stanza: &str,
    stored_at: i64,
    limit: i64,
) -> Result<StoreOutcome, StoreError> {
    // One statement, so one round trip and atomic without a transaction: the row goes in only while the account
    // holds fewer than `limit` (the count is kept by triggers, migration 0006), and the foreign key says whether
    // the owner is an account at all.
    let inserted = sqlx::query(
        "INSERT INTO offline_messages (owner, stanza, stored_at) SELECT $1, $2, $3 \
         WHERE COALESCE((SELECT held FROM offline_counts WHERE owner = $1), 0) < $4",
    )
    .bind(owner)
    .bind(stanza)
    .bind(stored_at)
    .bind(limit)
    .execute(s.writer())
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 0 => Ok(StoreOutcome::Full),
        Ok(_) => Ok(StoreOutcome::Stored),
        Err(error)
            if error
                .as_database_error()
                .is_some_and(|e| e.is_foreign_key_violation()) =>
        {
            Ok(StoreOutcome::NoSuchAccount)
        }
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn oldest(
    s: &SqliteStore,
    owner: &str,
    max: i64,
) -> Result<Vec<OfflineMessage>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, stanza, stored_at FROM offline_messages WHERE owner = $1 ORDER BY id LIMIT $2",
    )
    .bind(owner)
    .bind(max)
    .fetch_all(s.reader())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(OfflineMessage {
                id: row.try_get("id")?,
                stanza: row.try_get("stanza")?,
                stored_at: row.try_get("stored_at")?,
            })
        })
        .collect()
}

pub(crate) async fn remove_through(
    s: &SqliteStore,
    owner: &str,
    last_id: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM offline_messages WHERE owner = $1 AND id <= $2")
        .bind(owner)
        .bind(last_id)
        .execute(s.writer())
        .await?;
    Ok(result.rows_affected())
}

pub(crate) async fn count(s: &SqliteStore, owner: &str) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM offline_messages WHERE owner = $1")
        .bind(owner)
        .fetch_one(s.reader())
        .await?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}
