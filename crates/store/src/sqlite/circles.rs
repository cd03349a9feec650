//! Circles in SQLite.

use super::SqliteStore;
use crate::{Circle, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

fn circle(row: &SqliteRow) -> Result<Circle, StoreError> {
    Ok(Circle {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn create(s: &SqliteStore, id: &str, name: &str) -> Result<Circle, StoreError> {
    let created_at = crate::unix_now();
    let inserted = sqlx::query("INSERT INTO circles (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(created_at)
        .execute(s.writer())
        .await;
    match inserted {
        Ok(_) => Ok(Circle {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at,
        }),
        Err(error)
            if error
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation()) =>
        {
            Err(StoreError::AlreadyExists)
        }
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn get(s: &SqliteStore, id: &str) -> Result<Option<Circle>, StoreError> {
    let row = sqlx::query("SELECT id, name, created_at FROM circles WHERE id = $1")
        .bind(id)
        .fetch_optional(s.reader())
        .await?;
    row.as_ref().map(circle).transpose()
}

pub(crate) async fn list(s: &SqliteStore) -> Result<Vec<Circle>, StoreError> {
    let rows = sqlx::query("SELECT id, name, created_at FROM circles ORDER BY name, id")
        .fetch_all(s.reader())
        .await?;
    rows.iter().map(circle).collect()
}

pub(crate) async fn rename(s: &SqliteStore, id: &str, name: &str) -> Result<bool, StoreError> {
    let changed = sqlx::query("UPDATE circles SET name = $2 WHERE id = $1")
        .bind(id)
        .bind(name)
        .execute(s.writer())
        .await?
        .rows_affected();
    Ok(changed > 0)
}

pub(crate) async fn delete(s: &SqliteStore, id: &str) -> Result<bool, StoreError> {
    let removed = sqlx::query("DELETE FROM circles WHERE id = $1")
        .bind(id)
        .execute(s.writer())
        .await?
        .rows_affected();
    Ok(removed > 0)
}

pub(crate) async fn add_member(
    s: &SqliteStore,
    id: &str,
    username: &str,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO circle_members (circle_id, username) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(username)
    .execute(s.writer())
    .await;
    match inserted {
        Ok(done) => Ok(done.rows_affected() > 0),
        Err(error)
            if error
                .as_database_error()
                .is_some_and(|e| e.is_foreign_key_violation()) =>
        {
            Err(StoreError::InvalidInput(format!(
                "no circle {id:?} or no account {username:?}"
            )))
        }
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn remove_member(
    s: &SqliteStore,
    id: &str,
    username: &str,
) -> Result<bool, StoreError> {
    let removed = sqlx::query("DELETE FROM circle_members WHERE circle_id = $1 AND username = $2")
        .bind(id)
        .bind(username)
        .execute(s.writer())
        .await?
        .rows_affected();
    Ok(removed > 0)
}

pub(crate) async fn members(s: &SqliteStore, id: &str) -> Result<Vec<String>, StoreError> {
    let members = sqlx::query_scalar(
        "SELECT username FROM circle_members WHERE circle_id = $1 ORDER BY username",
    )
    .bind(id)
    .fetch_all(s.reader())
    .await?;
    Ok(members)
}

pub(crate) async fn circles_of(s: &SqliteStore, username: &str) -> Result<Vec<Circle>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.id, c.name, c.created_at FROM circles c \
         JOIN circle_members m ON m.circle_id = c.id WHERE m.username = $1 ORDER BY c.name, c.id",
    )
    .bind(username)
    .fetch_all(s.reader())
    .await?;
    rows.iter().map(circle).collect()
}
