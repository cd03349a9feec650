use std::path::PathBuf;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with that key exists already (an account with that username, for instance).
    #[error("it already exists")]
    AlreadyExists,
    /// A bounded collection (a roster, an offline store, ...) is full.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// The change would leave the server without an enabled administrator: the only one cannot be deleted,
    /// disabled or demoted (Snikket's `mod_protect_last_admin`; the message starts with its condition name).
    #[error(
        "cannot-remove-only-admin: this is the only administrator; make another account an administrator first"
    )]
    OnlyAdmin,
    /// The caller passed something that cannot be stored (an empty username, for instance).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database holds something this version cannot read (an unknown role name, a negative iteration count).
    /// Never a panic: the operation fails and says what was found.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The directory for the database file could not be created.
    #[error("cannot create the database directory {}: {source}", path.display())]
    CreateDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The schema could not be brought up to date (including: the database is newer than this program).
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database itself failed (I/O, locked for longer than the busy timeout, pool closed, ...).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
