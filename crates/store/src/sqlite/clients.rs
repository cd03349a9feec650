//! Clients and FAST tokens in SQLite.

use rookery_sasl::ht::{StoredToken, TokenSlot};
use sqlx::Row as _;

use super::SqliteStore;
use super::accounts::column;
use crate::{ClientInfo, ClientLogin, StoreError};

fn slot_of(name: &str) -> Result<TokenSlot, StoreError> {
    TokenSlot::from_name(name).ok_or_else(|| StoreError::Corrupt(format!("token slot {name:?}")))
}

pub(crate) async fn tokens(
    s: &SqliteStore,
    username: &str,
    client_id: &str,
) -> Result<Vec<StoredToken>, StoreError> {
    let rows = sqlx::query(
        "SELECT slot, mechanism, secret, issued_at, expires_at, last_count FROM fast_tokens \
         WHERE username = $1 AND client_id = $2",
    )
    .bind(username)
    .bind(client_id)
    .fetch_all(s.reader())
    .await?;
    rows.iter()
        .map(|row| {
            let slot: String = column(row, "slot")?;
            let last_count: Option<i64> = column(row, "last_count")?;
            Ok(StoredToken {
                slot: slot_of(&slot)?,
                mechanism: column(row, "mechanism")?,
                secret: column(row, "secret")?,
                issued_at: column(row, "issued_at")?,
                expires_at: column(row, "expires_at")?,
                last_count: last_count.map(|c| u64::try_from(c).unwrap_or(0)),
            })
        })
        .collect()
}

/// Counts are stored as SQLite integers; a count beyond i64 (no real client gets there) is kept at the maximum,
/// which then refuses every later count: safe, never a wrap-around.
fn count_value(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

pub(crate) async fn record_login(s: &SqliteStore, login: &ClientLogin) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let exists = sqlx::query("SELECT 1 FROM accounts WHERE username = $1")
        .bind(&login.username)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(StoreError::InvalidInput(format!(
            "there is no account {:?}",
            login.username
        )));
    }
    sqlx::query(
        "INSERT INTO clients (username, client_id, software, device, first_seen, last_seen) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (username, client_id) DO UPDATE SET last_seen = excluded.last_seen, \
         software = COALESCE(excluded.software, clients.software), \
         device = COALESCE(excluded.device, clients.device)",
    )
    .bind(&login.username)
    .bind(&login.client_id)
    .bind(&login.software)
    .bind(&login.device)
    .bind(login.now)
    .execute(&mut *tx)
    .await?;
    // Bound the clients per account: forget the least recently seen others beyond the limit.
    sqlx::query(
        "DELETE FROM clients WHERE username = $1 AND client_id != $2 AND client_id IN ( \
           SELECT client_id FROM clients WHERE username = $1 AND client_id != $2 \
           ORDER BY last_seen DESC, client_id LIMIT -1 OFFSET $3)",
    )
    .bind(&login.username)
    .bind(&login.client_id)
    .bind(i64::from(login.max_clients.saturating_sub(1)))
    .execute(&mut *tx)
    .await?;
    if let Some(used) = &login.used {
        let slot = used.slot.name();
        if used.invalidate {
            delete_slot(&mut tx, login, slot).await?;
        } else {
            sqlx::query(
                "UPDATE fast_tokens SET last_count = COALESCE($4, last_count) \
                 WHERE username = $1 AND client_id = $2 AND slot = $3",
            )
            .bind(&login.username)
            .bind(&login.client_id)
            .bind(slot)
            .bind(used.count.map(count_value))
            .execute(&mut *tx)
            .await?;
            if used.slot == TokenSlot::New {
                // The new token is in use: the one before it is retired, and the new one becomes current.
                delete_slot(&mut tx, login, TokenSlot::Current.name()).await?;
                sqlx::query(
                    "UPDATE fast_tokens SET slot = $3 WHERE username = $1 AND client_id = $2 AND slot = $4",
                )
                .bind(&login.username)
                .bind(&login.client_id)
                .bind(TokenSlot::Current.name())
                .bind(TokenSlot::New.name())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    if let Some(token) = &login.issue {
        sqlx::query(
            "INSERT INTO fast_tokens (username, client_id, slot, mechanism, secret, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (username, client_id, slot) DO UPDATE SET mechanism = excluded.mechanism, \
             secret = excluded.secret, issued_at = excluded.issued_at, expires_at = excluded.expires_at, \
             last_count = NULL",
        )
        .bind(&login.username)
        .bind(&login.client_id)
        .bind(TokenSlot::New.name())
        .bind(&token.mechanism)
        .bind(&token.secret)
        .bind(login.now)
        .bind(token.expires_at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn delete_slot(
    tx: &mut sqlx::SqliteConnection,
    login: &ClientLogin,
    slot: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM fast_tokens WHERE username = $1 AND client_id = $2 AND slot = $3")
        .bind(&login.username)
        .bind(&login.client_id)
        .bind(slot)
        .execute(tx)
        .await?;
    Ok(())
}

pub(crate) async fn remove_token(
    s: &SqliteStore,
    username: &str,
    client_id: &str,
    slot: TokenSlot,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("DELETE FROM fast_tokens WHERE username = $1 AND client_id = $2 AND slot = $3")
            .bind(username)
            .bind(client_id)
            .bind(slot.name())
            .execute(s.writer())
            .await?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn list(
    s: &SqliteStore,
    username: &str,
    now: i64,
) -> Result<Vec<ClientInfo>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.client_id, c.software, c.device, c.first_seen, c.last_seen, \
           EXISTS (SELECT 1 FROM fast_tokens t WHERE t.username = c.username AND t.client_id = c.client_id \
                   AND t.expires_at > $2) AS has_token \
         FROM clients c WHERE c.username = $1 ORDER BY c.last_seen DESC, c.client_id",
    )
    .bind(username)
    .bind(now)
    .fetch_all(s.reader())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ClientInfo {
                client_id: column(row, "client_id")?,
                software: column(row, "software")?,
                device: column(row, "device")?,
                first_seen: column(row, "first_seen")?,
                last_seen: column(row, "last_seen")?,
                has_token: row
                    .try_get::<bool, _>("has_token")
                    .map_err(|e| StoreError::Corrupt(format!("has_token: {e}")))?,
            })
        })
        .collect()
}

pub(crate) async fn revoke(
    s: &SqliteStore,
    username: &str,
    client_id: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM clients WHERE username = $1 AND client_id = $2")
        .bind(username)
        .bind(client_id)
        .execute(s.writer())
        .await?;
    Ok(result.rows_affected() > 0)
}
