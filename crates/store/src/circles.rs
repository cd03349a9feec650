//! The circles repository (Snikket's circles, `spec/snikket-compat.md` §6): groups of people who see each other.

use crate::{Backend, Store, StoreError, sqlite};

/// The circle every user is in, created at first start.
pub const DEFAULT_CIRCLE: &str = "default";

/// A circle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circle {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

impl Circle {
    /// A new circle id: 9 random bytes in base64url, 12 characters (Prosody's `id.short()`).
    pub fn new_id() -> String {
        use base64::Engine as _;
        let bytes: [u8; 9] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// The circles repository.
#[derive(Debug, Clone)]
pub struct Circles {
    store: Store,
}

impl Circles {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates a circle. [`StoreError::AlreadyExists`] if the id is taken; the name must not be empty.
    pub async fn create(&self, id: &str, name: &str) -> Result<Circle, StoreError> {
        if id.is_empty() || name.trim().is_empty() {
            return Err(StoreError::InvalidInput(
                "a circle needs an id and a name".into(),
            ));
        }
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::create(s, id, name).await,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Circle>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::get(s, id).await,
        }
    }

    /// Every circle, ordered by name.
    pub async fn list(&self) -> Result<Vec<Circle>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::list(s).await,
        }
    }

    /// `false` if there is no such circle.
    pub async fn rename(&self, id: &str, name: &str) -> Result<bool, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::InvalidInput("a circle needs a name".into()));
        }
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::rename(s, id, name).await,
        }
    }

    /// Deletes a circle and its memberships (contacts made through it stay). `false` if there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::delete(s, id).await,
        }
    }

    /// Adds an account to a circle; `false` if it was a member already. Fails if the circle or the account does
    /// not exist ([`StoreError::InvalidInput`]).
    pub async fn add_member(&self, id: &str, username: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::add_member(s, id, username).await,
        }
    }

    /// `false` if it was not a member.
    pub async fn remove_member(&self, id: &str, username: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::remove_member(s, id, username).await,
        }
    }

    /// The members' usernames, ordered.
    pub async fn members(&self, id: &str) -> Result<Vec<String>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::members(s, id).await,
        }
    }

    /// The circles an account is in, ordered by name.
    pub async fn circles_of(&self, username: &str) -> Result<Vec<Circle>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::circles::circles_of(s, username).await,
        }
    }
}
