//! Clients seen logging in to each account (XEP-0388 `<user-agent/>`) and their FAST tokens (XEP-0484): what
//! Prosody's mod_client_management lists and revokes, and mod_sasl2_fast's token store.
//!
//! Each client has at most two tokens (see [`TokenSlot`]). A password change removes every token of the account
//! (in the same transaction as the new keys), and deleting the account removes its clients and tokens.

use rookery_sasl::ht::{StoredToken, TokenSlot};

use crate::{Backend, Store, StoreError, sqlite};

/// A client as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub client_id: String,
    pub software: Option<String>,
    pub device: Option<String>,
    /// Unix seconds.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Whether it holds a FAST token that has not expired.
    pub has_token: bool,
}

/// The token a successful FAST login used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    pub slot: TokenSlot,
    /// The `count` the client sent, kept for replay protection.
    pub count: Option<u64>,
    /// `<fast invalidate='true'/>`: the token is removed instead of kept.
    pub invalidate: bool,
}

/// A token to hand out with a login's success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub mechanism: String,
    pub secret: String,
    pub expires_at: i64,
}

/// Everything a successful SASL2 login changes, written in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLogin {
    pub username: String,
    pub client_id: String,
    pub software: Option<String>,
    pub device: Option<String>,
    /// Unix seconds.
    pub now: i64,
    pub used: Option<TokenUse>,
    pub issue: Option<NewToken>,
    /// When the account has more clients than this, the least recently seen others are forgotten (with their
    /// tokens).
    pub max_clients: u32,
}

/// The clients repository.
#[derive(Debug, Clone)]
pub struct Clients {
    store: Store,
}

impl Clients {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The client's stored tokens (none if the client or account is unknown).
    pub async fn tokens(
        &self,
        username: &str,
        client_id: &str,
    ) -> Result<Vec<StoredToken>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::clients::tokens(s, username, client_id).await,
        }
    }

    /// Records a login: the client is created or its last-seen time and description updated; the token used is
    /// promoted, counted or removed; a new token goes into the `new` slot. All or nothing.
    /// [`StoreError::InvalidInput`] if there is no such account.
    pub async fn record_login(&self, login: &ClientLogin) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::clients::record_login(s, login).await,
        }
    }

    /// Removes one token (an expired one a client tried). `false` if it was not there.
    pub async fn remove_token(
        &self,
        username: &str,
        client_id: &str,
        slot: TokenSlot,
    ) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::clients::remove_token(s, username, client_id, slot).await,
        }
    }

    /// The account's clients, most recently seen first; `has_token` as of `now`.
    pub async fn list(&self, username: &str, now: i64) -> Result<Vec<ClientInfo>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::clients::list(s, username, now).await,
        }
    }

    /// Forgets a client and its tokens. `false` if there was no such client.
    pub async fn revoke(&self, username: &str, client_id: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::clients::revoke(s, username, client_id).await,
        }
    }
}
