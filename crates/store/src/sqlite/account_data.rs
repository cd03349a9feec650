//! vCards, private XML storage and last logouts in SQLite. As for accounts, the SQL is what PostgreSQL also
//! accepts.

use super::SqliteStore;
use super::accounts::column;
use crate::{LastLogout, PrivateChange, StoreError};

/// A write refused by the foreign key on `accounts`: the account does not exist (any more).
fn no_account(error: sqlx::Error, username: &str) -> StoreError {
    if error
        .as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
    {
        StoreError::InvalidInput(format!("there is no account {username:?}"))
    } else {
        error.into()
    }
}

pub(crate) async fn vcard_get(
    s: &SqliteStore,
    username: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT xml FROM vcards WHERE username = $1")
        .bind(username)
        .fetch_optional(s.reader())
        .await?;
    row.map(|row| column(&row, "xml")).transpose()
}

pub(crate) async fn vcard_set(
    s: &SqliteStore,
    username: &str,
    xml: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO vcards (username, xml, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO UPDATE SET xml = excluded.xml, updated_at = excluded.updated_at",
    )
    .bind(username)
    .bind(xml)
    .bind(crate::unix_now())
    .execute(s.writer())
    .await
    .map_err(|e| no_account(e, username))?;
    Ok(())
}

pub(crate) async fn vcard_delete(s: &SqliteStore, username: &str) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM vcards WHERE username = $1")
        .bind(username)
        .execute(s.writer())
        .await?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn private_get(
    s: &SqliteStore,
    username: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT xml FROM private_xml WHERE username = $1 AND namespace = $2 AND name = $3",
    )
    .bind(username)
    .bind(namespace)
    .bind(name)
    .fetch_optional(s.reader())
    .await?;
    row.map(|row| column(&row, "xml")).transpose()
}

async fn private_total_in(
    conn: &mut sqlx::SqliteConnection,
    username: &str,
) -> Result<u64, StoreError> {
    let row =
        sqlx::query("SELECT COALESCE(SUM(size), 0) AS n FROM private_xml WHERE username = $1")
            .bind(username)
            .fetch_one(conn)
            .await?;
    let n: i64 = column(&row, "n")?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative private storage size {n}")))
}

pub(crate) async fn private_total(s: &SqliteStore, username: &str) -> Result<u64, StoreError> {
    let mut conn = s.reader().acquire().await?;
    private_total_in(&mut conn, username).await
}

pub(crate) async fn private_apply(
    s: &SqliteStore,
    username: &str,
    changes: &[PrivateChange],
    max_total_bytes: u64,
) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let before = private_total_in(&mut tx, username).await?;
    for change in changes {
        match &change.xml {
            Some(xml) => {
                let size = i64::try_from(xml.len())
                    .map_err(|_| StoreError::InvalidInput("element too large".to_owned()))?;
                sqlx::query(
                    "INSERT INTO private_xml (username, namespace, name, xml, size) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (username, namespace, name) DO UPDATE SET xml = excluded.xml, size = excluded.size",
                )
                .bind(username)
                .bind(&change.namespace)
                .bind(&change.name)
                .bind(xml)
                .bind(size)
                .execute(&mut *tx)
                .await
                .map_err(|e| no_account(e, username))?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM private_xml WHERE username = $1 AND namespace = $2 AND name = $3",
                )
                .bind(username)
                .bind(&change.namespace)
                .bind(&change.name)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    let after = private_total_in(&mut tx, username).await?;
    if after > max_total_bytes && after > before {
        // Dropping the transaction rolls every change back.
        return Err(StoreError::LimitReached(format!(
            "private storage would take {after} bytes, over the {max_total_bytes} allowed"
        )));
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn last_logout_get(
    s: &SqliteStore,
    username: &str,
) -> Result<Option<LastLogout>, StoreError> {
    let row = sqlx::query("SELECT logged_out_at, status FROM last_logouts WHERE username = $1")
        .bind(username)
        .fetch_optional(s.reader())
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(LastLogout {
        at: column(&row, "logged_out_at")?,
        status: column(&row, "status")?,
    }))
}

pub(crate) async fn last_logout_record(
    s: &SqliteStore,
    username: &str,
    logout: &LastLogout,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO last_logouts (username, logged_out_at, status) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO UPDATE SET logged_out_at = excluded.logged_out_at, status = excluded.status",
    )
    .bind(username)
    .bind(logout.at)
    .bind(logout.status.as_deref())
    .execute(s.writer())
    .await
    .map_err(|e| no_account(e, username))?;
    Ok(())
}
