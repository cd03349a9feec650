//! The invites repository (Snikket's invites, `spec/snikket-compat.md` §5.1): who may register or become a contact,
//! with which roles and circles, until when.

use crate::{Backend, Role, Store, StoreError, sqlite};

/// What an invite lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InviteKind {
    /// Create an account: any username, or the invite's fixed `username`.
    Account,
    /// Set a new password for the invite's `username`.
    Reset,
    /// Become a contact of the invite's `username` (the inviter), creating an account first if
    /// `allow_registration` says so. Prosody's `roster` invites.
    Contact,
}

impl InviteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Reset => "reset",
            Self::Contact => "contact",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "account" => Self::Account,
            "reset" => Self::Reset,
            "contact" => Self::Contact,
            _ => return None,
        })
    }
}

/// A stored invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub token: String,
    pub kind: InviteKind,
    /// The fixed username (account), the account to reset (reset) or the inviter (contact).
    pub username: Option<String>,
    pub allow_registration: bool,
    /// Never consumed: any number of uses until it expires.
    pub reusable: bool,
    /// Applied at registration, the first as the account's role.
    pub roles: Vec<Role>,
    /// Circles joined at registration.
    pub circles: Vec<String>,
    pub note: Option<String>,
    pub source: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the invite is valid while `now < expires_at`.
    pub expires_at: i64,
}

impl Invite {
    /// A new token: 18 random bytes in base64url without padding, 24 characters (Prosody's `id.medium()`).
    pub fn new_token() -> String {
        use base64::Engine as _;
        let bytes: [u8; 18] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether the invite can still be used at `now` (unix seconds).
    pub fn is_valid_at(&self, now: i64) -> bool {
        now < self.expires_at
    }

    /// Whether `token` has the shape of a token (so a malformed one is refused without a look-up): 1 to 64
    /// base64url characters.
    pub fn is_well_formed(token: &str) -> bool {
        (1..=64).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// The invites repository.
#[derive(Debug, Clone)]
pub struct Invites {
    store: Store,
}

impl Invites {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Stores a new invite. [`StoreError::AlreadyExists`] if its token is taken.
    pub async fn create(&self, invite: &Invite) -> Result<(), StoreError> {
        if !Invite::is_well_formed(&invite.token) {
            return Err(StoreError::InvalidInput("malformed invite token".into()));
        }
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::invites::create(s, invite).await,
        }
    }

    /// The invite with this token, expired or not (`None` when there is none or the token is malformed).
    pub async fn get(&self, token: &str) -> Result<Option<Invite>, StoreError> {
        if !Invite::is_well_formed(token) {
            return Ok(None);
        }
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::invites::get(s, token).await,
        }
    }

    /// Marks an invite used: a single-use invite is deleted, a reusable one stays. `false` when a single-use
    /// invite was already gone (used by someone else at the same moment): the caller must not go on.
    pub async fn consume(&self, token: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::invites::consume(s, token).await,
        }
    }

    /// Invites still valid at `now`, newest first.
    pub async fn list_valid(&self, now: i64) -> Result<Vec<Invite>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::invites::list_valid(s, now).await,
        }
    }

    /// Deletes an invite; `false` if there was none.
    pub async fn revoke(&self, token: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::invites::revoke(s, token).await,
        }
    }

    /// Deletes every invite expired at `now`; how many.
    pub async fn delete_expired(&self, now: i64) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::invites::delete_expired(s, now).await,
        }
    }

    /// Records which invite an account registered with (Snikket's invites_tracking).
    pub async fn record_use(
        &self,
        username: &str,
        token: &str,
        source: Option<&str>,
    ) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::invites::record_use(s, username, token, source).await,
        }
    }
}
