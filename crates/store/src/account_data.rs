//! Small documents kept per account: the vCard (XEP-0054), private XML storage (XEP-0049) and the last logout
//! (XEP-0012). The XML is stored as text, exactly as the caller wrote it out; this crate does not parse it.

use crate::{Backend, Store, StoreError, sqlite};

/// The vCard repository: one `vcard-temp` document per account.
#[derive(Debug, Clone)]
pub struct VCards {
    store: Store,
}

impl VCards {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The account's vCard, or `None` if it never set one.
    pub async fn get(&self, username: &str) -> Result<Option<String>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::account_data::vcard_get(s, username).await,
        }
    }

    /// Stores the account's vCard, replacing any earlier one. [`StoreError::InvalidInput`] if there is no such
    /// account.
    pub async fn set(&self, username: &str, xml: &str) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::account_data::vcard_set(s, username, xml).await,
        }
    }

    /// Removes the account's vCard. `false` if it had none.
    pub async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::account_data::vcard_delete(s, username).await,
        }
    }
}

/// One change to an account's private XML storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateChange {
    /// The stored element's namespace and name: the key.
    pub namespace: String,
    pub name: String,
    /// The element as written out, or `None` to remove what is stored under the key.
    pub xml: Option<String>,
}

/// The private XML storage repository: one element per (account, namespace, name).
#[derive(Debug, Clone)]
pub struct PrivateXml {
    store: Store,
}

impl PrivateXml {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The element stored under (namespace, name), or `None`.
    pub async fn get(
        &self,
        username: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => {
                sqlite::account_data::private_get(s, username, namespace, name).await
            }
        }
    }

    /// Applies every change in one transaction, in order (a key changed twice keeps the last change). All or
    /// nothing: if the account's storage would grow beyond `max_total_bytes`, nothing changes and the error is
    /// [`StoreError::LimitReached`]. A change that does not grow the storage is always allowed, so an account over
    /// a lowered limit can still shrink. [`StoreError::InvalidInput`] if there is no such account.
    pub async fn apply(
        &self,
        username: &str,
        changes: &[PrivateChange],
        max_total_bytes: u64,
    ) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => {
                sqlite::account_data::private_apply(s, username, changes, max_total_bytes).await
            }
        }
    }

    /// Bytes the account's private storage takes, all elements together.
    pub async fn total_bytes(&self, username: &str) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::account_data::private_total(s, username).await,
        }
    }
}

/// When an account's last session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastLogout {
    /// Unix seconds.
    pub at: i64,
    /// The `<status/>` of the last unavailable presence the account sent before, if any.
    pub status: Option<String>,
}

/// The last-logout repository (XEP-0012).
#[derive(Debug, Clone)]
pub struct LastLogouts {
    store: Store,
}

impl LastLogouts {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The account's last logout, or `None` if none was recorded.
    pub async fn get(&self, username: &str) -> Result<Option<LastLogout>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::account_data::last_logout_get(s, username).await,
        }
    }

    /// Records a logout, replacing the previous one. [`StoreError::InvalidInput`] if there is no such account
    /// (it was deleted while logged in).
    pub async fn record(&self, username: &str, logout: &LastLogout) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => {
                sqlite::account_data::last_logout_record(s, username, logout).await
            }
        }
    }
}
