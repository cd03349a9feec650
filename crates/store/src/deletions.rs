//! Accounts their owners asked to delete (XEP-0077 `<remove/>`), as Snikket does it: the account is disabled at
//! once and deleted for good when its grace period (`SNIKKET_RETENTION_DAYS`) is over, unless an admin restores it
//! first. Deleting an account deletes all of its data: every table holding an account's data references
//! `accounts` with `ON DELETE CASCADE`.

use crate::{Backend, Store, StoreError, sqlite};

/// A pending deletion (Prosody's `accounts_cleanup` entry, the admin API's `deletion_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRequest {
    pub username: String,
    /// Unix seconds: when the owner asked.
    pub deleted_at: i64,
    /// Unix seconds: when the account may be deleted for good.
    pub pending_until: i64,
}

/// The pending-deletion repository.
#[derive(Debug, Clone)]
pub struct AccountDeletions {
    store: Store,
}

impl AccountDeletions {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Disables the account and records (or replaces) its deletion request, in one transaction. `false` if there
    /// is no such account; [`StoreError::OnlyAdmin`] if it is the only enabled administrator.
    pub async fn request(
        &self,
        username: &str,
        deleted_at: i64,
        pending_until: i64,
    ) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => {
                sqlite::deletions::request(s, username, deleted_at, pending_until).await
            }
        }
    }

    /// The account's pending deletion, if it has one.
    pub async fn get(&self, username: &str) -> Result<Option<DeletionRequest>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::deletions::get(s, username).await,
        }
    }

    /// Enables the account and cancels its pending deletion, if any, in one transaction. `false` if there is no
    /// such account.
    pub async fn restore(&self, username: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::deletions::restore(s, username).await,
        }
    }

    /// Deletes, with all their data, the accounts whose grace period ended at or before `now` (unix seconds) and
    /// that are still disabled; forgets the requests of accounts that were enabled again meanwhile (as Prosody
    /// does). Returns the usernames deleted.
    pub async fn delete_expired(&self, now: i64) -> Result<Vec<String>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::deletions::delete_expired(s, now).await,
        }
    }
}
