//! Accounts in SQLite. The SQL is kept to what PostgreSQL also accepts (`$n` placeholders, standard joins), so the
//! PostgreSQL module can start as a copy.

use super::SqliteStore;
use crate::{Account, AccountSummary, Role, StoreError};
use rookery_sasl::{Credentials, ScramKeys};
use sqlx::Row;
use sqlx::sqlite::{SqliteRow, SqliteTransaction};

const SHA1: &str = "SHA-1";
const SHA256: &str = "SHA-256";

pub(crate) async fn insert(s: &SqliteStore, account: &Account) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let inserted = sqlx::query(
        "INSERT INTO accounts (username, role, created_at, disabled) VALUES ($1, $2, $3, $4)",
    )
    .bind(&account.username)
    .bind(account.role.prosody_name())
    .bind(account.created_at)
    .bind(account.disabled)
    .execute(&mut *tx)
    .await;
    if let Err(error) = inserted {
        return Err(
            if error
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation())
            {
                StoreError::AlreadyExists
            } else {
                error.into()
            },
        );
    }
    insert_keys(&mut tx, &account.username, &account.credentials).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_keys(
    tx: &mut SqliteTransaction<'_>,
    username: &str,
    credentials: &Credentials,
) -> Result<(), StoreError> {
    let now = crate::unix_now();
    for (hash, keys) in [(SHA1, &credentials.sha1), (SHA256, &credentials.sha256)] {
        let Some(keys) = keys else { continue };
        sqlx::query(
            "INSERT INTO account_scram_keys (username, hash, salt, iterations, stored_key, server_key, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(username)
        .bind(hash)
        .bind(&keys.salt)
        .bind(i64::from(keys.iterations))
        .bind(&keys.stored_key)
        .bind(&keys.server_key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(crate) async fn get(s: &SqliteStore, username: &str) -> Result<Option<Account>, StoreError> {
    // One statement, so the keys and the account come from one snapshot even while a password change commits.
    let row = sqlx::query(
        "SELECT a.username, a.role, a.created_at, a.disabled, \
                k1.salt AS sha1_salt, k1.iterations AS sha1_iterations, \
                k1.stored_key AS sha1_stored_key, k1.server_key AS sha1_server_key, \
                k2.salt AS sha256_salt, k2.iterations AS sha256_iterations, \
                k2.stored_key AS sha256_stored_key, k2.server_key AS sha256_server_key \
         FROM accounts a \
         LEFT JOIN account_scram_keys k1 ON k1.username = a.username AND k1.hash = $2 \
         LEFT JOIN account_scram_keys k2 ON k2.username = a.username AND k2.hash = $3 \
         WHERE a.username = $1",
    )
    .bind(username)
    .bind(SHA1)
    .bind(SHA256)
    .fetch_optional(s.reader())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let summary = summary(&row)?;
    Ok(Some(Account {
        credentials: Credentials {
            sha1: keys(&row, "sha1")?,
            sha256: keys(&row, "sha256")?,
        },
        username: summary.username,
        role: summary.role,
        created_at: summary.created_at,
        disabled: summary.disabled,
    }))
}

pub(crate) async fn exists(s: &SqliteStore, username: &str) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM accounts WHERE username = $1")
        .bind(username)
        .fetch_optional(s.reader())
        .await?;
    Ok(row.is_some())
}

pub(crate) async fn list(s: &SqliteStore) -> Result<Vec<AccountSummary>, StoreError> {
    let rows =
        sqlx::query("SELECT username, role, created_at, disabled FROM accounts ORDER BY username")
            .fetch_all(s.reader())
            .await?;
    rows.iter().map(summary).collect()
}

pub(crate) async fn delete(s: &SqliteStore, username: &str) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    refuse_only_admin(&mut tx, username).await?;
    // The keys go with the account: ON DELETE CASCADE, with foreign_keys on for every connection.
    let result = sqlx::query("DELETE FROM accounts WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(result.rows_affected() > 0)
}

/// Fails with [`StoreError::OnlyAdmin`] if `username` is an enabled administrator and no other enabled account is
/// one. Called inside the write transaction (`BEGIN IMMEDIATE`) that deletes, disables or demotes the account, so
/// two administrators removing each other at once cannot both succeed.
pub(super) async fn refuse_only_admin(
    tx: &mut SqliteTransaction<'_>,
    username: &str,
) -> Result<(), StoreError> {
    let admin = Role::Admin.prosody_name();
    let only_admin = sqlx::query(
        "SELECT 1 FROM accounts a WHERE a.username = $1 AND a.role = $2 AND NOT a.disabled \
         AND NOT EXISTS (SELECT 1 FROM accounts o WHERE o.username != $1 AND o.role = $2 AND NOT o.disabled)",
    )
    .bind(username)
    .bind(admin)
    .fetch_optional(&mut **tx)
    .await?;
    match only_admin {
        Some(_) => Err(StoreError::OnlyAdmin),
        None => Ok(()),
    }
}

pub(crate) async fn set_credentials(
    s: &SqliteStore,
    username: &str,
    credentials: &Credentials,
) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let found = sqlx::query("SELECT 1 FROM accounts WHERE username = $1")
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM account_scram_keys WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    insert_keys(&mut tx, username, credentials).await?;
    // A new password ends every FAST token (Prosody refuses tokens issued before the last password change).
    sqlx::query("DELETE FROM fast_tokens WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn set_role(
    s: &SqliteStore,
    username: &str,
    role: Role,
) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    if role != Role::Admin {
        refuse_only_admin(&mut tx, username).await?;
    }
    let result = sqlx::query("UPDATE accounts SET role = $1 WHERE username = $2")
        .bind(role.prosody_name())
        .bind(username)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn set_disabled(
    s: &SqliteStore,
    username: &str,
    disabled: bool,
) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    if disabled {
        refuse_only_admin(&mut tx, username).await?;
    }
    let result = sqlx::query("UPDATE accounts SET disabled = $1 WHERE username = $2")
        .bind(disabled)
        .bind(username)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn count(s: &SqliteStore) -> Result<u64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts")
        .fetch_one(s.reader())
        .await?;
    count_of(&row)
}

pub(crate) async fn count_with_role(s: &SqliteStore, role: Role) -> Result<u64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE role = $1")
        .bind(role.prosody_name())
        .fetch_one(s.reader())
        .await?;
    count_of(&row)
}

pub(crate) async fn count_without_sha256(s: &SqliteStore) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM accounts a WHERE NOT EXISTS \
         (SELECT 1 FROM account_scram_keys k WHERE k.username = a.username AND k.hash = $1)",
    )
    .bind(SHA256)
    .fetch_one(s.reader())
    .await?;
    count_of(&row)
}

/// A column's value, with a decoding failure (wrong type in the file) reported as corrupt data, not a panic.
pub(super) fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get::<T, _>(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

fn summary(row: &SqliteRow) -> Result<AccountSummary, StoreError> {
    let username: String = column(row, "username")?;
    let role: String = column(row, "role")?;
    let role = role
        .parse::<Role>()
        .map_err(|e| StoreError::Corrupt(format!("account {username:?}: {e}")))?;
    Ok(AccountSummary {
        role,
        created_at: column(row, "created_at")?,
        disabled: column(row, "disabled")?,
        username,
    })
}

/// The keys in the `<prefix>_*` columns, or `None` when the join found no row for that hash.
fn keys(row: &SqliteRow, prefix: &str) -> Result<Option<ScramKeys>, StoreError> {
    let Some(salt) = column::<Option<Vec<u8>>>(row, &format!("{prefix}_salt"))? else {
        return Ok(None);
    };
    let iterations: i64 = column(row, &format!("{prefix}_iterations"))?;
    let iterations = u32::try_from(iterations)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| StoreError::Corrupt(format!("{prefix} iteration count {iterations}")))?;
    Ok(Some(ScramKeys {
        salt,
        iterations,
        stored_key: column(row, &format!("{prefix}_stored_key"))?,
        server_key: column(row, &format!("{prefix}_server_key"))?,
    }))
}

fn count_of(row: &SqliteRow) -> Result<u64, StoreError> {
    let n: i64 = column(row, "n")?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn sqlite(store: &Store) -> &SqliteStore {
        match &store.backend {
            crate::Backend::Sqlite(s) => s,
        }
    }

    fn keys(byte: u8) -> ScramKeys {
        ScramKeys {
            salt: vec![byte; 16],
            iterations: 4096,
            stored_key: vec![byte; 32],
            server_key: vec![byte.wrapping_add(1); 32],
        }
    }

    async fn key_rows(s: &SqliteStore) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM account_scram_keys")
            .fetch_one(s.reader())
            .await
            .unwrap()
            .get("n")
    }

    #[tokio::test]
    async fn deleting_an_account_deletes_its_key_rows() {
        let store = Store::open_in_memory().await.unwrap();
        let credentials = Credentials {
            sha1: Some(keys(1)),
            sha256: Some(keys(2)),
        };
        store
            .accounts()
            .create("alice", &credentials, Role::Normal)
            .await
            .unwrap();
        assert_eq!(key_rows(sqlite(&store)).await, 2);
        assert!(store.accounts().delete("alice").await.unwrap());
        assert_eq!(key_rows(sqlite(&store)).await, 0);
    }

    #[tokio::test]
    async fn bad_rows_are_errors_not_panics() {
        let store = Store::open_in_memory().await.unwrap();
        let s = sqlite(&store);
        let accounts = store.accounts();
        accounts
            .create(
                "bob",
                &Credentials {
                    sha1: Some(keys(3)),
                    sha256: None,
                },
                Role::Normal,
            )
            .await
            .unwrap();

        sqlx::query("UPDATE accounts SET role = 'prosody:operator' WHERE username = 'bob'")
            .execute(s.writer())
            .await
            .unwrap();
        let error = accounts.get("bob").await.unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
        assert!(error.to_string().contains("prosody:operator"), "{error}");
        assert!(matches!(accounts.list().await, Err(StoreError::Corrupt(_))));

        sqlx::query("UPDATE accounts SET role = 'prosody:registered', created_at = 'yesterday'")
            .execute(s.writer())
            .await
            .unwrap();
        assert!(matches!(
            accounts.get("bob").await,
            Err(StoreError::Corrupt(_))
        ));

        sqlx::query("UPDATE accounts SET created_at = 0")
            .execute(s.writer())
            .await
            .unwrap();
        for bad in ["-1", "4294967296", "0", "'many'"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE account_scram_keys SET iterations = {bad}"
            )))
            .execute(s.writer())
            .await
            .unwrap();
            let error = accounts.get("bob").await.unwrap_err();
            assert!(matches!(error, StoreError::Corrupt(_)), "{bad}: {error}");
        }
    }

    #[tokio::test]
    async fn readers_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
            .await
            .unwrap();
        let result = sqlx::query("DELETE FROM accounts")
            .execute(sqlite(&store).reader())
            .await;
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn file_is_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
            .await
            .unwrap();
        let s = sqlite(&store);
        for pool in [s.writer(), s.reader()] {
            let mode: String = sqlx::query("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap()
                .get(0);
            assert_eq!(mode, "wal");
            let fk: i64 = sqlx::query("PRAGMA foreign_keys")
                .fetch_one(pool)
                .await
                .unwrap()
                .get(0);
            assert_eq!(fk, 1);
        }
    }
}
