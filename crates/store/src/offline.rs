//! The offline-message repository (XEP-0160): messages kept for an account, oldest first, bounded per account.

use crate::{Backend, Store, StoreError, sqlite};

/// A message kept for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Grows with every message stored (across all accounts): the order of arrival.
    pub id: i64,
    /// The message's XML, as given to [`OfflineMessages::store`].
    pub stanza: String,
    /// Unix seconds.
    pub stored_at: i64,
}

/// What [`OfflineMessages::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored,
    /// The account already holds as many messages as the limit allows; nothing was stored.
    Full,
    /// There is no such account; nothing was stored.
    NoSuchAccount,
}

/// The offline-message repository. Owns a clone of the [`Store`].
#[derive(Debug, Clone)]
pub struct OfflineMessages {
    store: Store,
}

impl OfflineMessages {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Keeps `stanza` (its XML) for `owner`, stored now, unless `owner` already has `limit` messages or no account.
    /// The count and the insert are one transaction, so concurrent senders cannot push an account past the limit.
    pub async fn store(
        &self,
        owner: &str,
        stanza: &str,
        limit: usize,
    ) -> Result<StoreOutcome, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match &self.store.backend {
            Backend::Sqlite(s) => {
                sqlite::offline::store(s, owner, stanza, crate::unix_now(), limit).await
            }
        }
    }

    /// Up to `max` of `owner`'s messages, oldest first.
    pub async fn oldest(&self, owner: &str, max: usize) -> Result<Vec<OfflineMessage>, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::offline::oldest(s, owner, max).await,
        }
    }

    /// Removes `owner`'s messages with an id up to and including `last_id` (those [`oldest`](Self::oldest) returned
    /// and that were delivered). Returns how many were removed.
    pub async fn remove_through(&self, owner: &str, last_id: i64) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::offline::remove_through(s, owner, last_id).await,
        }
    }

    /// How many messages `owner` has waiting.
    pub async fn count(&self, owner: &str) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::offline::count(s, owner).await,
        }
    }
}
