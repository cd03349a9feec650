//! Blocklists in SQLite.

use super::SqliteStore;
use crate::StoreError;

pub(crate) async fn any(s: &SqliteStore) -> Result<bool, StoreError> {
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM blocklist_items)")
        .fetch_one(s.reader())
        .await?;
    Ok(any)
}

pub(crate) async fn get(s: &SqliteStore, owner: &str) -> Result<Vec<String>, StoreError> {
    let jids = sqlx::query_scalar("SELECT jid FROM blocklist_items WHERE owner = $1 ORDER BY jid")
        .bind(owner)
        .fetch_all(s.reader())
        .await?;
    Ok(jids)
}

pub(crate) async fn block(
    s: &SqliteStore,
    owner: &str,
    jids: &[String],
    max: usize,
) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let now = crate::unix_now();
    for jid in jids {
        sqlx::query(
            "INSERT INTO blocklist_items (owner, jid, blocked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (owner, jid) DO NOTHING",
        )
        .bind(owner)
        .bind(jid)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blocklist_items WHERE owner = $1")
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
    if usize::try_from(count).map_or(true, |n| n > max) {
        // Dropping the transaction rolls it back: the list stays as it was.
        return Err(StoreError::LimitReached(format!(
            "a blocklist holds at most {max} JIDs"
        )));
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn unblock(
    s: &SqliteStore,
    owner: &str,
    jids: &[String],
) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    for jid in jids {
        sqlx::query("DELETE FROM blocklist_items WHERE owner = $1 AND jid = $2")
            .bind(owner)
            .bind(jid)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn unblock_all(s: &SqliteStore, owner: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM blocklist_items WHERE owner = $1")
        .bind(owner)
        .execute(s.writer())
        .await?;
    Ok(())
}
