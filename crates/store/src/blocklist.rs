//! The blocklist repository (XEP-0191): the JIDs each account blocked.

use crate::{Backend, Store, StoreError, sqlite};

/// The blocklist repository.
#[derive(Debug, Clone)]
pub struct Blocklists {
    store: Store,
}

impl Blocklists {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Whether any account blocked anyone at all.
    pub async fn any(&self) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::blocklist::any(s).await,
        }
    }

    /// The JIDs `owner` blocked, ordered. Empty for an account that blocked nobody (or does not exist).
    pub async fn get(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::blocklist::get(s, owner).await,
        }
    }

    /// Adds `jids` (normalised JIDs; one already blocked stays as it is) to `owner`'s list, all or none:
    /// [`StoreError::LimitReached`] when the list would then hold more than `max` JIDs, and nothing changes.
    pub async fn block(&self, owner: &str, jids: &[String], max: usize) -> Result<(), StoreError> {
        if jids.iter().any(String::is_empty) {
            return Err(StoreError::InvalidInput("an empty JID".to_owned()));
        }
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::blocklist::block(s, owner, jids, max).await,
        }
    }

    /// Removes `jids` from `owner`'s list; JIDs that are not on it are ignored.
    pub async fn unblock(&self, owner: &str, jids: &[String]) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::blocklist::unblock(s, owner, jids).await,
        }
    }

    /// Empties `owner`'s list.
    pub async fn unblock_all(&self, owner: &str) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::blocklist::unblock_all(s, owner).await,
        }
    }
}
