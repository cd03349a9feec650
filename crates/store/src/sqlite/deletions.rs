//! Pending account deletions in SQLite.

use super::SqliteStore;
use crate::{DeletionRequest, StoreError};
use sqlx::Row;

pub(crate) async fn request(
    s: &SqliteStore,
    username: &str,
    deleted_at: i64,
    pending_until: i64,
) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    super::accounts::refuse_only_admin(&mut tx, username).await?;
    let disabled = sqlx::query("UPDATE accounts SET disabled = TRUE WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    if disabled.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO account_deletions (username, deleted_at, pending_until) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO UPDATE SET deleted_at = $2, pending_until = $3",
    )
    .bind(username)
    .bind(deleted_at)
    .bind(pending_until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn get(
    s: &SqliteStore,
    username: &str,
) -> Result<Option<DeletionRequest>, StoreError> {
    let row = sqlx::query(
        "SELECT username, deleted_at, pending_until FROM account_deletions WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(s.reader())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let field = |name: &str| {
        row.try_get::<i64, _>(name)
            .map_err(|e| StoreError::Corrupt(format!("account_deletions.{name}: {e}")))
    };
    Ok(Some(DeletionRequest {
        username: row
            .try_get("username")
            .map_err(|e| StoreError::Corrupt(format!("account_deletions.username: {e}")))?,
        deleted_at: field("deleted_at")?,
        pending_until: field("pending_until")?,
    }))
}

pub(crate) async fn restore(s: &SqliteStore, username: &str) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let enabled = sqlx::query("UPDATE accounts SET disabled = FALSE WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    if enabled.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM account_deletions WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn delete_expired(s: &SqliteStore, now: i64) -> Result<Vec<String>, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    // Enabled again (by an admin, or by another tool) while pending: the account stays.
    sqlx::query(
        "DELETE FROM account_deletions WHERE username IN \
         (SELECT username FROM accounts WHERE disabled = FALSE)",
    )
    .execute(&mut *tx)
    .await?;
    // The account rows go; their data (keys, blocklist, roster, the deletion request, ...) follows by cascade.
    let deleted: Vec<String> = sqlx::query_scalar(
        "DELETE FROM accounts WHERE username IN \
         (SELECT username FROM account_deletions WHERE pending_until <= $1) \
         RETURNING username",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(deleted)
}
