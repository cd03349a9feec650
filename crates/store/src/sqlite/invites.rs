//! Invites in SQLite.

use super::SqliteStore;
use crate::{Invite, InviteKind, Role, StoreError};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

/// The columns of `invites`, in the order every query here uses (static text, so the queries stay static).
macro_rules! columns {
    () => {
        "token, kind, username, allow_registration, reusable, note, source, created_at, expires_at"
    };
}

pub(crate) async fn create(s: &SqliteStore, invite: &Invite) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let inserted = sqlx::query(concat!(
        "INSERT INTO invites (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&invite.token)
    .bind(invite.kind.as_str())
    .bind(&invite.username)
    .bind(invite.allow_registration)
    .bind(invite.reusable)
    .bind(&invite.note)
    .bind(&invite.source)
    .bind(invite.created_at)
    .bind(invite.expires_at)
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
    for (position, role) in invite.roles.iter().enumerate() {
        sqlx::query("INSERT INTO invite_roles (token, position, role) VALUES ($1, $2, $3)")
            .bind(&invite.token)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(role.prosody_name())
            .execute(&mut *tx)
            .await?;
    }
    for circle in &invite.circles {
        sqlx::query(
            "INSERT INTO invite_circles (token, circle_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&invite.token)
        .bind(circle)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get(s: &SqliteStore, token: &str) -> Result<Option<Invite>, StoreError> {
    let mut conn = s.reader().acquire().await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM invites WHERE token = $1"
    ))
    .bind(token)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(complete(&mut conn, &row).await?)),
        None => Ok(None),
    }
}

pub(crate) async fn list_valid(s: &SqliteStore, now: i64) -> Result<Vec<Invite>, StoreError> {
    let mut conn = s.reader().acquire().await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM invites WHERE expires_at > $1 ORDER BY created_at DESC, token"
    ))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut invites = Vec::with_capacity(rows.len());
    for row in &rows {
        invites.push(complete(&mut conn, row).await?);
    }
    Ok(invites)
}

/// An invite from its row, with its roles and circles.
async fn complete(conn: &mut SqliteConnection, row: &SqliteRow) -> Result<Invite, StoreError> {
    let token: String = row.try_get("token")?;
    let kind: &str = row.try_get("kind")?;
    let kind = InviteKind::parse(kind)
        .ok_or_else(|| StoreError::Corrupt(format!("invite kind {kind:?}")))?;
    let role_names: Vec<String> =
        sqlx::query_scalar("SELECT role FROM invite_roles WHERE token = $1 ORDER BY position")
            .bind(&token)
            .fetch_all(&mut *conn)
            .await?;
    let roles = role_names
        .iter()
        .map(|r| {
            r.parse::<Role>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let circles: Vec<String> = sqlx::query_scalar(
        "SELECT circle_id FROM invite_circles WHERE token = $1 ORDER BY circle_id",
    )
    .bind(&token)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Invite {
        token,
        kind,
        username: row.try_get("username")?,
        allow_registration: row.try_get("allow_registration")?,
        reusable: row.try_get("reusable")?,
        roles,
        circles,
        note: row.try_get("note")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub(crate) async fn consume(s: &SqliteStore, token: &str) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let reusable: Option<bool> =
        sqlx::query_scalar("SELECT reusable FROM invites WHERE token = $1")
            .bind(token)
            .fetch_optional(&mut *tx)
            .await?;
    let used = match reusable {
        None => false,
        Some(true) => true,
        Some(false) => {
            sqlx::query("DELETE FROM invites WHERE token = $1")
                .bind(token)
                .execute(&mut *tx)
                .await?;
            true
        }
    };
    tx.commit().await?;
    Ok(used)
}

pub(crate) async fn revoke(s: &SqliteStore, token: &str) -> Result<bool, StoreError> {
    let removed = sqlx::query("DELETE FROM invites WHERE token = $1")
        .bind(token)
        .execute(s.writer())
        .await?
        .rows_affected();
    Ok(removed > 0)
}

pub(crate) async fn delete_expired(s: &SqliteStore, now: i64) -> Result<u64, StoreError> {
    let removed = sqlx::query("DELETE FROM invites WHERE expires_at <= $1")
        .bind(now)
        .execute(s.writer())
        .await?
        .rows_affected();
    Ok(removed)
}

pub(crate) async fn record_use(
    s: &SqliteStore,
    username: &str,
    token: &str,
    source: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO account_invites (username, token, invite_source) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO UPDATE SET token = excluded.token, invite_source = excluded.invite_source",
    )
    .bind(username)
    .bind(token)
    .bind(source)
    .execute(s.writer())
    .await?;
    Ok(())
}
