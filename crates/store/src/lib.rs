//! Rookery's storage: repositories (accounts now; roster, archive, invites, circles, ... later) over SQLite, with
//! the API shaped so that a PostgreSQL backend can be added behind it: [`Store`] dispatches to one module per
//! backend, each with its own migrations (`migrations/<backend>/`), and one conformance suite runs against all.
//!
//! SQLite runs in WAL mode with a busy timeout, so the running server and a CLI process (`rookery user add`) can
//! use the same database file at once.
#![forbid(unsafe_code)]

mod account_data;
mod accounts;
mod archive;
mod blocklist;
mod circles;
mod clients;
mod deletions;
mod error;
mod invites;
mod offline;
mod pep;
mod role;
mod roster;
mod sqlite;

pub use account_data::{LastLogout, LastLogouts, PrivateChange, PrivateXml, VCards};
pub use accounts::{Account, AccountSummary, Accounts, MIN_PASSWORD_CHARS};
pub use archive::{
    Archive, ArchiveDefault, ArchivePrefs, ArchiveQuery, ArchiveRule, Archived, NewArchived,
    QueryOutcome,
};
pub use blocklist::Blocklists;
pub use circles::{Circle, Circles, DEFAULT_CIRCLE};
pub use clients::{ClientInfo, ClientLogin, Clients, NewToken, TokenUse};
pub use deletions::{AccountDeletions, DeletionRequest};
pub use error::StoreError;
pub use invites::{Invite, InviteKind, Invites};
pub use offline::{OfflineMessage, OfflineMessages, StoreOutcome};
pub use pep::{Pep, PepItem, PepNode, PepQuota, Published};
pub use role::{Role, UnknownRole};
pub use rookery_sasl::{Credentials, ScramKeys};
pub use roster::{PendingRequest, Roster, RosterItem, Rosters, Subscription};

use std::path::Path;

/// A handle on the database. Cheap to clone: the connection pools inside are shared.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// One variant per backend; each repository method matches on it and calls that backend's module.
#[derive(Clone, Debug)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
}

impl Store {
    /// Opens (creating the file and its parent directory if needed) the SQLite database at `path`, switches it to
    /// WAL mode and runs pending migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Sqlite(sqlite::SqliteStore::open_file(path).await?),
        })
    }

    /// A private in-memory SQLite database, for tests. It lives as long as this `Store` and its clones.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Sqlite(sqlite::SqliteStore::open_in_memory().await?),
        })
    }

    /// The accounts repository.
    pub fn accounts(&self) -> Accounts {
        Accounts::new(self.clone())
    }

    /// The invites repository.
    pub fn invites(&self) -> Invites {
        Invites::new(self.clone())
    }

    /// The circles repository.
    pub fn circles(&self) -> Circles {
        Circles::new(self.clone())
    }

    /// The roster repository.
    pub fn roster(&self) -> Rosters {
        Rosters::new(self.clone())
    }

    /// The vCard repository (XEP-0054).
    pub fn vcards(&self) -> VCards {
        VCards::new(self.clone())
    }

    /// The private XML storage repository (XEP-0049).
    pub fn private_xml(&self) -> PrivateXml {
        PrivateXml::new(self.clone())
    }

    /// The last-logout repository (XEP-0012).
    pub fn last_logouts(&self) -> LastLogouts {
        LastLogouts::new(self.clone())
    }

    /// The blocklist repository (XEP-0191).
    pub fn blocklist(&self) -> Blocklists {
        Blocklists::new(self.clone())
    }

    /// The repository of accounts waiting out their deletion grace period.
    pub fn account_deletions(&self) -> AccountDeletions {
        AccountDeletions::new(self.clone())
    }

    /// Clients seen per account and their FAST tokens (XEP-0388, XEP-0484).
    pub fn clients(&self) -> Clients {
        Clients::new(self.clone())
    }

    /// The message archive repository (XEP-0313).
    pub fn archive(&self) -> Archive {
        Archive::new(self.clone())
    }

    /// The offline-message repository (XEP-0160).
    pub fn offline(&self) -> OfflineMessages {
        OfflineMessages::new(self.clone())
    }

    /// The personal eventing repository (XEP-0163).
    pub fn pep(&self) -> Pep {
        Pep::new(self.clone())
    }

    /// Checks that the database answers (for health endpoints).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.ping().await,
        }
    }

    /// Closes every connection, waiting for those in use to be returned. SQLite checkpoints its WAL when the last
    /// connection to a file closes, so a clean shutdown leaves a single database file behind.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
        }
    }

    /// The backend's name, for logs: `sqlite` or `sqlite (in memory)`.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(s) => s.describe(),
        }
    }
}

/// The current time in unix seconds, as stored in `created_at`/`updated_at` columns. Taken here rather than with
/// SQL functions so that every backend stores the same thing.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
