//! Rosters in SQLite.

use super::SqliteStore;
use crate::{PendingRequest, Roster, RosterItem, StoreError, Subscription};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

pub(crate) async fn get(s: &SqliteStore, owner: &str) -> Result<Roster, StoreError> {
    // One read transaction: the items and the version come from the same snapshot.
    let mut tx = s.reader().begin().await?;
    let version = read_version(&mut tx, owner).await?;
    let rows = sqlx::query(
        "SELECT contact, name, subscription, ask, approved FROM roster_items WHERE owner = $1 \
         ORDER BY contact",
    )
    .bind(owner)
    .fetch_all(&mut *tx)
    .await?;
    let mut items = rows
        .iter()
        .map(item_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let groups = sqlx::query(
        "SELECT contact, group_name FROM roster_groups WHERE owner = $1 ORDER BY contact, group_name",
    )
    .bind(owner)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    // Both lists are ordered by contact: merge them in one pass.
    let mut next = 0;
    for row in &groups {
        let contact: &str = row.try_get("contact")?;
        while next < items.len() && items[next].contact.as_str() < contact {
            next += 1;
        }
        if let Some(item) = items.get_mut(next).filter(|i| i.contact == contact) {
            item.groups.push(row.try_get("group_name")?);
        }
    }
    Ok(Roster { version, items })
}

pub(crate) async fn version(s: &SqliteStore, owner: &str) -> Result<i64, StoreError> {
    let mut conn = s.reader().acquire().await?;
    read_version(&mut conn, owner).await
}

async fn read_version(conn: &mut SqliteConnection, owner: &str) -> Result<i64, StoreError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM roster_versions WHERE owner = $1")
            .bind(owner)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(version.unwrap_or(0))
}

pub(crate) async fn subscriptions(
    s: &SqliteStore,
    owner: &str,
) -> Result<Vec<(String, Subscription)>, StoreError> {
    let rows = sqlx::query("SELECT contact, subscription FROM roster_items WHERE owner = $1")
        .bind(owner)
        .fetch_all(s.reader())
        .await?;
    rows.iter()
        .map(|row| {
            let subscription: &str = row.try_get("subscription")?;
            Ok((row.try_get("contact")?, parse_subscription(subscription)?))
        })
        .collect()
}

pub(crate) async fn subscription(
    s: &SqliteStore,
    owner: &str,
    contact: &str,
) -> Result<Subscription, StoreError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT subscription FROM roster_items WHERE owner = $1 AND contact = $2",
    )
    .bind(owner)
    .bind(contact)
    .fetch_optional(s.reader())
    .await?;
    found.map_or(Ok(Subscription::None), |s| parse_subscription(&s))
}

fn parse_subscription(s: &str) -> Result<Subscription, StoreError> {
    Subscription::parse(s).ok_or_else(|| StoreError::Corrupt(format!("subscription {s:?}")))
}

pub(crate) async fn item(
    s: &SqliteStore,
    owner: &str,
    contact: &str,
) -> Result<Option<RosterItem>, StoreError> {
    let mut conn = s.reader().acquire().await?;
    read_item(&mut conn, owner, contact).await
}

async fn read_item(
    conn: &mut SqliteConnection,
    owner: &str,
    contact: &str,
) -> Result<Option<RosterItem>, StoreError> {
    let row = sqlx::query(
        "SELECT contact, name, subscription, ask, approved FROM roster_items \
         WHERE owner = $1 AND contact = $2",
    )
    .bind(owner)
    .bind(contact)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut item = item_from_row(&row)?;
    item.groups = sqlx::query_scalar(
        "SELECT group_name FROM roster_groups WHERE owner = $1 AND contact = $2 ORDER BY group_name",
    )
    .bind(owner)
    .bind(contact)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(item))
}

fn item_from_row(row: &SqliteRow) -> Result<RosterItem, StoreError> {
    let subscription: &str = row.try_get("subscription")?;
    Ok(RosterItem {
        contact: row.try_get("contact")?,
        name: row.try_get("name")?,
        subscription: parse_subscription(subscription)?,
        ask: row.try_get("ask")?,
        approved: row.try_get("approved")?,
        groups: Vec::new(),
    })
}

pub(crate) async fn count(s: &SqliteStore, owner: &str) -> Result<usize, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM roster_items WHERE owner = $1")
        .bind(owner)
        .fetch_one(s.reader())
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

pub(crate) async fn put(
    s: &SqliteStore,
    owner: &str,
    item: &RosterItem,
    max_items: usize,
) -> Result<i64, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let version = put_in(&mut tx, owner, item, max_items).await?;
    tx.commit().await?;
    Ok(version)
}

pub(crate) async fn put_many(
    s: &SqliteStore,
    changes: &[(String, RosterItem)],
    max_items: usize,
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let mut versions = Vec::with_capacity(changes.len());
    for (owner, item) in changes {
        versions.push(match put_in(&mut tx, owner, item, max_items).await {
            Ok(version) => {
                sqlx::query("DELETE FROM roster_pending_in WHERE owner = $1 AND contact = $2")
                    .bind(owner)
                    .bind(&item.contact)
                    .execute(&mut *tx)
                    .await?;
                Some(version)
            }
            Err(StoreError::LimitReached(_)) => None,
            Err(err) => return Err(err),
        });
    }
    tx.commit().await?;
    Ok(versions)
}

/// Adds or replaces one item inside a write transaction; the roster's new version.
async fn put_in(
    conn: &mut SqliteConnection,
    owner: &str,
    item: &RosterItem,
    max_items: usize,
) -> Result<i64, StoreError> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM roster_items WHERE owner = $1 AND contact = $2")
            .bind(owner)
            .bind(&item.contact)
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_none() {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM roster_items WHERE owner = $1")
            .bind(owner)
            .fetch_one(&mut *conn)
            .await?;
        if usize::try_from(n).unwrap_or(usize::MAX) >= max_items {
            return Err(StoreError::LimitReached(format!(
                "a roster holds at most {max_items} contacts"
            )));
        }
    }
    sqlx::query(
        "INSERT INTO roster_items (owner, contact, name, subscription, ask, approved) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (owner, contact) DO UPDATE SET name = excluded.name, \
         subscription = excluded.subscription, ask = excluded.ask, approved = excluded.approved",
    )
    .bind(owner)
    .bind(&item.contact)
    .bind(&item.name)
    .bind(item.subscription.as_str())
    .bind(item.ask)
    .bind(item.approved)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM roster_groups WHERE owner = $1 AND contact = $2")
        .bind(owner)
        .bind(&item.contact)
        .execute(&mut *conn)
        .await?;
    for group in &item.groups {
        sqlx::query(
            "INSERT INTO roster_groups (owner, contact, group_name) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(owner)
        .bind(&item.contact)
        .bind(group)
        .execute(&mut *conn)
        .await?;
    }
    bump_version(conn, owner).await
}

pub(crate) async fn remove(
    s: &SqliteStore,
    owner: &str,
    contact: &str,
) -> Result<Option<i64>, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let removed = sqlx::query("DELETE FROM roster_items WHERE owner = $1 AND contact = $2")
        .bind(owner)
        .bind(contact)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Ok(None);
    }
    let version = bump_version(&mut tx, owner).await?;
    tx.commit().await?;
    Ok(Some(version))
}

async fn bump_version(conn: &mut SqliteConnection, owner: &str) -> Result<i64, StoreError> {
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO roster_versions (owner, version) VALUES ($1, 1) \
         ON CONFLICT (owner) DO UPDATE SET version = roster_versions.version + 1 RETURNING version",
    )
    .bind(owner)
    .fetch_one(&mut *conn)
    .await?;
    Ok(version)
}

pub(crate) async fn pending_in(
    s: &SqliteStore,
    owner: &str,
) -> Result<Vec<PendingRequest>, StoreError> {
    let rows = sqlx::query(
        "SELECT contact, request, received_at FROM roster_pending_in WHERE owner = $1 \
         ORDER BY received_at, contact",
    )
    .bind(owner)
    .fetch_all(s.reader())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingRequest {
                contact: row.try_get("contact")?,
                request: row.try_get("request")?,
                received_at: row.try_get("received_at")?,
            })
        })
        .collect()
}

pub(crate) async fn has_pending_in(
    s: &SqliteStore,
    owner: &str,
    contact: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM roster_pending_in WHERE owner = $1 AND contact = $2")
            .bind(owner)
            .bind(contact)
            .fetch_optional(s.reader())
            .await?;
    Ok(found.is_some())
}

pub(crate) async fn add_pending_in(
    s: &SqliteStore,
    owner: &str,
    contact: &str,
    request: &str,
    max_pending: usize,
) -> Result<(), StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM roster_pending_in WHERE owner = $1 AND contact <> $2",
    )
    .bind(owner)
    .bind(contact)
    .fetch_one(&mut *tx)
    .await?;
    if usize::try_from(n).unwrap_or(usize::MAX) >= max_pending {
        return Err(StoreError::LimitReached(format!(
            "at most {max_pending} subscription requests wait for an answer"
        )));
    }
    sqlx::query(
        "INSERT INTO roster_pending_in (owner, contact, request, received_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (owner, contact) DO UPDATE SET request = excluded.request",
    )
    .bind(owner)
    .bind(contact)
    .bind(request)
    .bind(crate::unix_now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn remove_pending_in(
    s: &SqliteStore,
    owner: &str,
    contact: &str,
) -> Result<bool, StoreError> {
    let removed = sqlx::query("DELETE FROM roster_pending_in WHERE owner = $1 AND contact = $2")
        .bind(owner)
        .bind(contact)
        .execute(s.writer())
        .await?
        .rows_affected();
    Ok(removed > 0)
}
