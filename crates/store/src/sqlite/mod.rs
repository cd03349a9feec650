//! The SQLite backend.
//!
//! SQLite allows one writer at a time per database file, across all processes. So each store has a writer pool of
//! one connection (writes inside this process queue there instead of fighting over the file lock) and a reader pool
//! (WAL lets readers run alongside the writer). Write transactions start with `BEGIN IMMEDIATE`, which takes the
//! file's write lock up front: a deferred transaction that read first could find, when it tries to write, that
//! another process wrote in between, and fail at once with no busy wait. `busy_timeout` makes a process wait for
//! the other one's write instead of failing.

pub(crate) mod account_data;
pub(crate) mod accounts;
pub(crate) mod archive;
pub(crate) mod blocklist;
pub(crate) mod circles;
pub(crate) mod clients;
pub(crate) mod deletions;
pub(crate) mod invites;
pub(crate) mod offline;
pub(crate) mod pep;
pub(crate) mod roster;

use crate::StoreError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's (or process's) write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Readers for this process. Two cores and a small server: more would only hold file descriptors.
const READER_CONNECTIONS: u32 = 4;

/// Attempts for steps that SQLite cannot make wait with `busy_timeout` (switching a new file to WAL, and two
/// processes migrating a new file at the same moment).
const OPEN_ATTEMPTS: u32 = 8;

#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    in_memory: bool,
    /// Commits archive appends in groups (see `archive::Appender`); started by the first append.
    pub(crate) archive_appender: archive::Appender,
}

impl SqliteStore {
    pub(crate) async fn open_file(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDirectory {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let common = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // FULL, not NORMAL: a committed write (an acknowledged stanza in the archive, say) survives power loss.
            .synchronous(SqliteSynchronous::Full);
        let writer_options = common
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let writer = retry_busy(|| {
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(writer_options.clone())
        })
        .await?;
        migrate(&writer).await?;
        // Readers open the file the writer has created and switched to WAL (a persistent setting of the file).
        // `query_only` makes a write sent to the wrong pool fail instead of bypassing the writer's queue.
        let reader = SqlitePoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .connect_with(common.pragma("query_only", "ON"))
            .await?;
        tracing::debug!(path = %path.display(), "opened SQLite database");
        Ok(Self {
            writer,
            reader,
            in_memory: false,
            archive_appender: archive::Appender::default(),
        })
    }

    pub(crate) async fn open_in_memory() -> Result<Self, StoreError> {
        // Every connection to ":memory:" is a database of its own, so one connection serves reads and writes, and
        // it must never be closed for being idle or old: that would drop the data.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                SqliteConnectOptions::new()
                    .in_memory(true)
                    .foreign_keys(true),
            )
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            reader: pool,
            in_memory: true,
            archive_appender: archive::Appender::default(),
        })
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub(crate) fn describe(&self) -> String {
        if self.in_memory {
            "sqlite (in memory)".to_owned()
        } else {
            "sqlite".to_owned()
        }
    }
}

/// Runs pending migrations. When two processes open a new file together, both may see a migration as pending; the
/// loser's attempt fails (the table exists, or its snapshot is stale) and the retry finds the migration applied.
async fn migrate(writer: &SqlitePool) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        match MIGRATIONS.run(writer).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < OPEN_ATTEMPTS => {
                tracing::debug!(%error, attempt, "migration failed; retrying");
                backoff(attempt).await;
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Retries `connect` while SQLite reports the file busy or locked.
async fn retry_busy<F, Fut>(mut connect: F) -> Result<SqlitePool, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<SqlitePool, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match connect().await {
            Ok(pool) => return Ok(pool),
            Err(error) if attempt < OPEN_ATTEMPTS && is_busy(&error) => {
                tracing::debug!(%error, attempt, "database busy while opening; retrying");
                backoff(attempt).await;
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt))).await;
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with or without an extended code in the upper bits.
fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}
