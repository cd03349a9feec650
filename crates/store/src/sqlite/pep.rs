//! PEP nodes and items in SQLite. As for accounts, the SQL is what PostgreSQL also accepts.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::accounts::column;
use crate::{PepItem, PepNode, PepQuota, Published, StoreError};

/// A write refused by the foreign key on `accounts`: the account does not exist (any more).
fn no_account(error: sqlx::Error, owner: &str) -> StoreError {
    if error
        .as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
    {
        StoreError::InvalidInput(format!("there is no account {owner:?}"))
    } else {
        error.into()
    }
}

fn node_of(row: &SqliteRow) -> Result<PepNode, StoreError> {
    let max_items: i64 = column(row, "max_items")?;
    Ok(PepNode {
        node: column(row, "node")?,
        config: column(row, "config")?,
        max_items: u32::try_from(max_items)
            .map_err(|_| StoreError::Corrupt(format!("node keeps {max_items} items")))?,
    })
}

fn item_of(row: &SqliteRow) -> Result<PepItem, StoreError> {
    Ok(PepItem {
        id: column(row, "item_id")?,
        publisher: column(row, "publisher")?,
        payload: column(row, "payload")?,
        published_at: column(row, "published_at")?,
    })
}

async fn node_in(
    conn: &mut sqlx::SqliteConnection,
    owner: &str,
    node: &str,
) -> Result<Option<PepNode>, StoreError> {
    let row =
        sqlx::query("SELECT node, config, max_items FROM pep_nodes WHERE owner = $1 AND node = $2")
            .bind(owner)
            .bind(node)
            .fetch_optional(conn)
            .await?;
    row.as_ref().map(node_of).transpose()
}

pub(crate) async fn node(
    s: &SqliteStore,
    owner: &str,
    node: &str,
) -> Result<Option<PepNode>, StoreError> {
    let mut conn = s.reader().acquire().await?;
    node_in(&mut conn, owner, node).await
}

pub(crate) async fn nodes(s: &SqliteStore, owner: &str) -> Result<Vec<PepNode>, StoreError> {
    let rows =
        sqlx::query("SELECT node, config, max_items FROM pep_nodes WHERE owner = $1 ORDER BY node")
            .bind(owner)
            .fetch_all(s.reader())
            .await?;
    rows.iter().map(node_of).collect()
}

/// Inserts a node that does not exist yet, within the quota.
async fn insert_node(
    conn: &mut sqlx::SqliteConnection,
    owner: &str,
    node: &PepNode,
    quota: PepQuota,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM pep_nodes WHERE owner = $1")
        .bind(owner)
        .fetch_one(&mut *conn)
        .await?;
    let count: i64 = column(&row, "n")?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= quota.max_nodes {
        return Err(StoreError::LimitReached(format!(
            "an account may have {} nodes",
            quota.max_nodes
        )));
    }
    sqlx::query(
        "INSERT INTO pep_nodes (owner, node, config, max_items, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(owner)
    .bind(&node.node)
    .bind(&node.config)
    .bind(i64::from(node.max_items))
    .bind(crate::unix_now())
    .execute(conn)
    .await
    .map_err(|e| no_account(e, owner))?;
    Ok(())
}

pub(crate) async fn create(
    s: &SqliteStore,
    owner: &str,
    node: &PepNode,
    quota: PepQuota,
) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    if node_in(&mut tx, owner, &node.node).await?.is_some() {
        return Ok(false);
    }
    insert_node(&mut tx, owner, node, quota).await?;
    tx.commit().await?;
    Ok(true)
}

/// Drops the oldest items of a node beyond `max_items`.
async fn trim(
    conn: &mut sqlx::SqliteConnection,
    owner: &str,
    node: &str,
    max_items: u32,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM pep_items WHERE owner = $1 AND node = $2 AND seq <= \
         (SELECT seq FROM pep_items WHERE owner = $1 AND node = $2 ORDER BY seq DESC LIMIT 1 OFFSET $3)",
    )
    .bind(owner)
    .bind(node)
    .bind(i64::from(max_items))
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn configure(
    s: &SqliteStore,
    owner: &str,
    node: &PepNode,
) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let updated = sqlx::query(
        "UPDATE pep_nodes SET config = $3, max_items = $4 WHERE owner = $1 AND node = $2",
    )
    .bind(owner)
    .bind(&node.node)
    .bind(&node.config)
    .bind(i64::from(node.max_items))
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    trim(&mut tx, owner, &node.node, node.max_items).await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn publish(
    s: &SqliteStore,
    owner: &str,
    new_node: &PepNode,
    item: &PepItem,
    accept: impl FnOnce(&PepNode) -> bool + Send,
    quota: PepQuota,
) -> Result<Published, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    let (created, node) = match node_in(&mut tx, owner, &new_node.node).await? {
        Some(existing) if !accept(&existing) => return Ok(Published::Refused(existing)),
        Some(existing) => (false, existing),
        None => {
            insert_node(&mut tx, owner, new_node, quota).await?;
            (true, new_node.clone())
        }
    };
    let size = i64::try_from(item.payload.len())
        .map_err(|_| StoreError::InvalidInput("item too large".to_owned()))?;
    let row = sqlx::query(
        "SELECT COALESCE(SUM(size), 0) AS total, \
                (SELECT COALESCE(MAX(seq), 0) FROM pep_items WHERE owner = $1 AND node = $2) AS last_seq, \
                (SELECT COALESCE(SUM(size), 0) FROM pep_items WHERE owner = $1 AND node = $2 AND item_id = $3) AS replaced \
         FROM pep_items WHERE owner = $1",
    )
    .bind(owner)
    .bind(&node.node)
    .bind(&item.id)
    .fetch_one(&mut *tx)
    .await?;
    let total: i64 = column(&row, "total")?;
    let last_seq: i64 = column(&row, "last_seq")?;
    let replaced: i64 = column(&row, "replaced")?;
    let after = u64::try_from(total - replaced + size).unwrap_or(u64::MAX);
    if after > quota.max_total_bytes && size > replaced {
        // Dropping the transaction rolls back the node created for it too.
        return Err(StoreError::LimitReached(format!(
            "published items would take {after} bytes, over the {} allowed",
            quota.max_total_bytes
        )));
    }
    sqlx::query(
        "INSERT INTO pep_items (owner, node, item_id, seq, publisher, payload, size, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (owner, node, item_id) DO UPDATE SET seq = excluded.seq, publisher = excluded.publisher, \
         payload = excluded.payload, size = excluded.size, published_at = excluded.published_at",
    )
    .bind(owner)
    .bind(&node.node)
    .bind(&item.id)
    .bind(last_seq + 1)
    .bind(&item.publisher)
    .bind(&item.payload)
    .bind(size)
    .bind(item.published_at)
    .execute(&mut *tx)
    .await?;
    trim(&mut tx, owner, &node.node, node.max_items).await?;
    tx.commit().await?;
    Ok(Published::Stored { created, node })
}

pub(crate) async fn items(
    s: &SqliteStore,
    owner: &str,
    node: &str,
    ids: &[String],
    max: Option<u32>,
) -> Result<Vec<PepItem>, StoreError> {
    let limit = max.map_or(-1, i64::from);
    let rows = if ids.is_empty() {
        sqlx::query(
            "SELECT item_id, publisher, payload, published_at FROM pep_items \
             WHERE owner = $1 AND node = $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(owner)
        .bind(node)
        .bind(limit)
        .fetch_all(s.reader())
        .await?
    } else {
        // One query per id: requests name a handful of ids, and this keeps the SQL the same in every backend.
        let mut rows = Vec::new();
        for id in ids {
            let row = sqlx::query(
                "SELECT item_id, publisher, payload, published_at, seq FROM pep_items \
                 WHERE owner = $1 AND node = $2 AND item_id = $3",
            )
            .bind(owner)
            .bind(node)
            .bind(id)
            .fetch_optional(s.reader())
            .await?;
            rows.extend(row);
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.try_get::<i64, _>("seq").unwrap_or(0)));
        if let Some(max) = max {
            rows.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
        rows
    };
    let mut items = rows.iter().map(item_of).collect::<Result<Vec<_>, _>>()?;
    items.reverse();
    Ok(items)
}

pub(crate) async fn retract(
    s: &SqliteStore,
    owner: &str,
    node: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("DELETE FROM pep_items WHERE owner = $1 AND node = $2 AND item_id = $3")
            .bind(owner)
            .bind(node)
            .bind(id)
            .execute(s.writer())
            .await?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn purge(s: &SqliteStore, owner: &str, node: &str) -> Result<bool, StoreError> {
    let mut tx = s.writer().begin_with("BEGIN IMMEDIATE").await?;
    if node_in(&mut tx, owner, node).await?.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM pep_items WHERE owner = $1 AND node = $2")
        .bind(owner)
        .bind(node)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn delete(s: &SqliteStore, owner: &str, node: &str) -> Result<bool, StoreError> {
    // Items go with their node (ON DELETE CASCADE).
    let result = sqlx::query("DELETE FROM pep_nodes WHERE owner = $1 AND node = $2")
        .bind(owner)
        .bind(node)
        .execute(s.writer())
        .await?;
    Ok(result.rows_affected() > 0)
}
