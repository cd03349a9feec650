//! The accounts repository: who may log in, with which SCRAM keys and role.

use crate::{Backend, Role, Store, StoreError, sqlite};
use rookery_sasl::Credentials;

/// Shortest password accepted, in characters: Snikket's password policy (`password_policy = { length = 10 }`).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub username: String,
    pub role: Role,
    /// SCRAM keys per hash; an account imported from Prosody has only `sha1`.
    pub credentials: Credentials,
    /// Unix seconds.
    pub created_at: i64,
    /// A disabled account cannot log in (Snikket disables an account that asked to be deleted, during the grace
    /// period, and admins can disable accounts).
    pub disabled: bool,
}

/// An account without its keys, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub username: String,
    pub role: Role,
    pub created_at: i64,
    pub disabled: bool,
}

/// The accounts repository. Owns a clone of the [`Store`], so it can be kept in a module's state.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
}

impl Accounts {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates an enabled account, created now. [`StoreError::AlreadyExists`] if the username is taken.
    pub async fn create(
        &self,
        username: &str,
        credentials: &Credentials,
        role: Role,
    ) -> Result<(), StoreError> {
        self.insert(&Account {
            username: username.to_owned(),
            role,
            credentials: credentials.clone(),
            created_at: crate::unix_now(),
            disabled: false,
        })
        .await
    }

    /// Creates an account with every field given: for importing accounts from Prosody or a backup, where the
    /// creation time and disabled state must be kept. [`StoreError::AlreadyExists`] if the username is taken.
    pub async fn insert(&self, account: &Account) -> Result<(), StoreError> {
        check_username(&account.username)?;
        check_credentials(&account.credentials)?;
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::insert(s, account).await,
        }
    }

    /// The account, or `None` if there is none with that username.
    pub async fn get(&self, username: &str) -> Result<Option<Account>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::get(s, username).await,
        }
    }

    /// Whether an account with that username exists.
    pub async fn exists(&self, username: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::exists(s, username).await,
        }
    }

    /// Every account, ordered by username.
    pub async fn list(&self) -> Result<Vec<AccountSummary>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::list(s).await,
        }
    }

    /// Deletes the account and its keys. `false` if there was no such account; [`StoreError::OnlyAdmin`] if it is
    /// the only enabled administrator.
    pub async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::delete(s, username).await,
        }
    }

    /// Replaces all of the account's keys with `credentials` (a hash left `None` is removed) and removes its FAST
    /// tokens (XEP-0484: a new password ends them). `false` if there is no such account.
    pub async fn set_credentials(
        &self,
        username: &str,
        credentials: &Credentials,
    ) -> Result<bool, StoreError> {
        check_credentials(credentials)?;
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::set_credentials(s, username, credentials).await,
        }
    }

    /// `false` if there is no such account; [`StoreError::OnlyAdmin`] when demoting the only enabled administrator.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::set_role(s, username, role).await,
        }
    }

    /// `false` if there is no such account; [`StoreError::OnlyAdmin`] when disabling the only enabled
    /// administrator.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::set_disabled(s, username, disabled).await,
        }
    }

    /// How many accounts there are.
    pub async fn count(&self) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::count(s).await,
        }
    }

    /// How many accounts have the given role (to protect the last admin, for instance).
    pub async fn count_with_role(&self, role: Role) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::count_with_role(s, role).await,
        }
    }

    /// How many accounts lack SCRAM-SHA-256 keys (imported from Prosody): the server offers SCRAM-SHA-256 only
    /// when this is 0, since a client that picks it could not log in to such an account.
    pub async fn count_without_sha256(&self) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::accounts::count_without_sha256(s).await,
        }
    }
}

/// Usernames arrive nodeprepped; this only refuses what no backend can key on.
fn check_username(username: &str) -> Result<(), StoreError> {
    if username.is_empty() {
        Err(StoreError::InvalidInput("the username is empty".to_owned()))
    } else {
        Ok(())
    }
}

/// SCRAM with zero iterations or an empty salt is not SCRAM; storing it would give a login that never works.
fn check_credentials(credentials: &Credentials) -> Result<(), StoreError> {
    for (hash, keys) in [
        ("SHA-1", &credentials.sha1),
        ("SHA-256", &credentials.sha256),
    ] {
        if let Some(keys) = keys {
            if keys.iterations == 0 {
                return Err(StoreError::InvalidInput(format!(
                    "{hash} keys with 0 iterations"
                )));
            }
            if keys.salt.is_empty() {
                return Err(StoreError::InvalidInput(format!(
                    "{hash} keys with an empty salt"
                )));
            }
        }
    }
    Ok(())
}
