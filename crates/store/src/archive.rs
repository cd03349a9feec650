//! The message archive repository (XEP-0313): each account's messages with their XEP-0359 stanza ids, queried a
//! page at a time, and the account's archiving preferences.
//!
//! Every query names one owner and is answered from an index in (archived_at, row) order: paging is by keyset (the
//! last key of a page bounds the next), never by offset, so a page of an archive of a million messages costs what
//! a page of ten does.

use crate::{Backend, Store, StoreError, sqlite};

/// A message to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArchived<'a> {
    /// The account whose archive it goes in.
    pub owner: &'a str,
    /// The other party's bare JID.
    pub with_bare: &'a str,
    /// The other party's resource, when the message came from or went to a full JID.
    pub with_resource: Option<&'a str>,
    /// The message's XML.
    pub stanza: &'a str,
    /// Unix milliseconds.
    pub archived_at: i64,
}

/// A message in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// The XEP-0359 stanza id the archive gave it: the id clients page by.
    pub stanza_id: String,
    /// Unix milliseconds.
    pub archived_at: i64,
    /// The message's XML, as given to [`Archive::append`].
    pub stanza: String,
}

/// What to read from an archive. Every filter narrows the result; `limit` bounds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// Only messages with this bare JID, and with this resource too when one is given.
    pub with_bare: Option<String>,
    pub with_resource: Option<String>,
    /// Only messages archived at or after / at or before these unix milliseconds.
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Only messages after / before the one with this stanza id (which must be in the archive).
    pub after_id: Option<String>,
    pub before_id: Option<String>,
    /// Only the messages with these stanza ids (none: no such filter).
    pub ids: Vec<String>,
    /// Read from the newest end instead of the oldest.
    pub newest_first: bool,
    /// At most this many messages.
    pub limit: usize,
}

/// The answer to an [`ArchiveQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryOutcome {
    /// The messages, in the order asked for (oldest first, or newest first).
    Found(Vec<Archived>),
    /// `after_id` or `before_id` names no message of this archive.
    UnknownId(String),
}

/// An account's default archiving rule (XEP-0313 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveDefault {
    /// Archive every message (the default when the account never said otherwise).
    Always,
    /// Archive nothing, except what the `always` list names.
    Never,
    /// Archive messages with contacts in the roster.
    Roster,
}

impl ArchiveDefault {
    /// The name XEP-0313 uses in `<prefs default='…'/>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Roster => "roster",
        }
    }

    /// Reads the XEP-0313 name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(Self::Always),
            "never" => Some(Self::Never),
            "roster" => Some(Self::Roster),
            _ => None,
        }
    }
}

/// An account's archiving preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePrefs {
    pub default: ArchiveDefault,
    /// JIDs whose messages are always archived.
    pub always: Vec<String>,
    /// JIDs whose messages are never archived (a JID in both lists counts as `never`).
    pub never: Vec<String>,
}

impl Default for ArchivePrefs {
    fn default() -> Self {
        Self {
            default: ArchiveDefault::Always,
            always: Vec::new(),
            never: Vec::new(),
        }
    }
}

/// What an account's preferences say about one JID: its own rule if it is listed, else the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveRule {
    pub default: ArchiveDefault,
    /// `Some(true)`: in the `always` list; `Some(false)`: in the `never` list.
    pub listed: Option<bool>,
}

/// The archive repository. Owns a clone of the [`Store`].
#[derive(Debug, Clone)]
pub struct Archive {
    store: Store,
}

impl Archive {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Archives a message and returns the stanza id it was given, or `None` when `owner` has no account.
    pub async fn append(&self, message: &NewArchived<'_>) -> Result<Option<String>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::append(s, message).await,
        }
    }

    /// Archives many messages in one transaction (imports, benchmarks). Every owner must have an account.
    pub async fn append_all(&self, messages: &[NewArchived<'_>]) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::append_all(s, messages).await,
        }
    }

    /// Reads a page of `owner`'s archive.
    pub async fn query(
        &self,
        owner: &str,
        query: &ArchiveQuery,
    ) -> Result<QueryOutcome, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::query(s, owner, query).await,
        }
    }

    /// Deletes every message archived before `cutoff` (unix milliseconds), in every archive. Returns how many were
    /// deleted.
    pub async fn delete_older_than(&self, cutoff: i64) -> Result<u64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::delete_older_than(s, cutoff).await,
        }
    }

    /// `owner`'s preferences (the defaults if it never set any).
    pub async fn prefs(&self, owner: &str) -> Result<ArchivePrefs, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::prefs(s, owner).await,
        }
    }

    /// Replaces `owner`'s preferences. Returns `false` when `owner` has no account.
    pub async fn set_prefs(&self, owner: &str, prefs: &ArchivePrefs) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::set_prefs(s, owner, prefs).await,
        }
    }

    /// What `owner`'s preferences say about messages with `jid` (a bare JID): one indexed read.
    pub async fn rule_for(&self, owner: &str, jid: &str) -> Result<ArchiveRule, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::rule_for(s, owner, jid).await,
        }
    }
}

impl Archive {
    /// EXPLAIN QUERY PLAN of the page query for `query`, one line per step: lets tests check that every filter
    /// is answered from an index.
    #[doc(hidden)]
    pub async fn query_plan(
        &self,
        owner: &str,
        query: &ArchiveQuery,
    ) -> Result<Vec<String>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::archive::explain_page(s, owner, query).await,
        }
    }
}

/// A new XEP-0359 stanza id: 128 random bits in URL-safe base64 (22 characters), so ids cannot be guessed and never
/// repeat in practice; the unique index turns the improbable repeat into a retry.
pub(crate) fn new_stanza_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
