//! The roster repository: each account's contacts, their subscription state, and pending subscription requests.

use crate::{Backend, Store, StoreError, sqlite};

/// The subscription state of a roster item (RFC 6121 §2.1.2.5), without its pending flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Subscription {
    #[default]
    None,
    /// The owner sees the contact's presence.
    To,
    /// The contact sees the owner's presence.
    From,
    Both,
}

impl Subscription {
    /// The value of the roster item's `subscription` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "to" => Self::To,
            "from" => Self::From,
            "both" => Self::Both,
            _ => return None,
        })
    }

    /// Whether the contact receives the owner's presence.
    pub fn has_from(self) -> bool {
        matches!(self, Self::From | Self::Both)
    }

    /// Whether the owner receives the contact's presence.
    pub fn has_to(self) -> bool {
        matches!(self, Self::To | Self::Both)
    }

    /// This state with the `to` half set or cleared.
    #[must_use]
    pub fn with_to(self, to: bool) -> Self {
        Self::from_halves(to, self.has_from())
    }

    /// This state with the `from` half set or cleared.
    #[must_use]
    pub fn with_from(self, from: bool) -> Self {
        Self::from_halves(self.has_to(), from)
    }

    fn from_halves(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Self::None,
            (true, false) => Self::To,
            (false, true) => Self::From,
            (true, true) => Self::Both,
        }
    }
}

/// One contact in an account's roster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterItem {
    /// The contact's bare JID, normalised.
    pub contact: String,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// Pending-out: the owner's subscription request awaits the contact's answer (`ask='subscribe'`).
    pub ask: bool,
    /// Pre-approved: a request from the contact is approved at once (RFC 6121 §3.4).
    pub approved: bool,
    /// Sorted, without duplicates.
    pub groups: Vec<String>,
}

impl RosterItem {
    /// A new item with no subscription.
    pub fn new(contact: impl Into<String>) -> Self {
        Self {
            contact: contact.into(),
            ..Self::default()
        }
    }
}

/// An account's whole roster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    /// Raised by every change; 0 for an account that never had a roster.
    pub version: i64,
    /// Ordered by contact.
    pub items: Vec<RosterItem>,
}

/// A subscription request the owner has not answered yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    pub contact: String,
    /// The `<presence type='subscribe'/>` as received, serialised.
    pub request: String,
    pub received_at: i64,
}

/// The roster repository.
#[derive(Debug, Clone)]
pub struct Rosters {
    store: Store,
}

impl Rosters {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The owner's roster and its version.
    pub async fn get(&self, owner: &str) -> Result<Roster, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::get(s, owner).await,
        }
    }

    /// The roster's version alone.
    pub async fn version(&self, owner: &str) -> Result<i64, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::version(s, owner).await,
        }
    }

    /// Every contact with its subscription, without names or groups: what presence broadcasts and probes need,
    /// read in one query.
    pub async fn subscriptions(
        &self,
        owner: &str,
    ) -> Result<Vec<(String, Subscription)>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::subscriptions(s, owner).await,
        }
    }

    /// The owner's subscription with one contact (`None` when it is not in the roster), in one query.
    pub async fn subscription(
        &self,
        owner: &str,
        contact: &str,
    ) -> Result<Subscription, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::subscription(s, owner, contact).await,
        }
    }

    /// One item.
    pub async fn item(&self, owner: &str, contact: &str) -> Result<Option<RosterItem>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::item(s, owner, contact).await,
        }
    }

    /// How many items the roster has.
    pub async fn count(&self, owner: &str) -> Result<usize, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::count(s, owner).await,
        }
    }

    /// Adds or replaces an item (with its groups) and returns the roster's new version. `max_items` bounds the
    /// roster: adding a contact beyond it fails with [`StoreError::LimitReached`]; replacing never does.
    pub async fn put(
        &self,
        owner: &str,
        item: &RosterItem,
        max_items: usize,
    ) -> Result<i64, StoreError> {
        if item.contact.is_empty() {
            return Err(StoreError::InvalidInput(
                "a roster item needs a contact".into(),
            ));
        }
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::put(s, owner, item, max_items).await,
        }
    }

    /// Adds or replaces many items of many rosters in one transaction (one commit, however many), forgetting the
    /// pending request of each item's contact: what joining a circle of hundreds needs. Each item gets its owner's
    /// new roster version, or `None` when that roster is full (the item is then left out, the others stored).
    pub async fn put_many(
        &self,
        changes: &[(String, RosterItem)],
        max_items: usize,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if changes.iter().any(|(_, item)| item.contact.is_empty()) {
            return Err(StoreError::InvalidInput(
                "a roster item needs a contact".into(),
            ));
        }
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::put_many(s, changes, max_items).await,
        }
    }

    /// Removes an item; the roster's new version, or `None` if there was no such item.
    pub async fn remove(&self, owner: &str, contact: &str) -> Result<Option<i64>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::remove(s, owner, contact).await,
        }
    }

    /// Unanswered subscription requests, oldest first.
    pub async fn pending_in(&self, owner: &str) -> Result<Vec<PendingRequest>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::pending_in(s, owner).await,
        }
    }

    /// Whether the contact has an unanswered request to the owner.
    pub async fn has_pending_in(&self, owner: &str, contact: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::has_pending_in(s, owner, contact).await,
        }
    }

    /// Records (or replaces) a request. `max_pending` bounds how many an account keeps: beyond it the request is
    /// refused with [`StoreError::LimitReached`].
    pub async fn add_pending_in(
        &self,
        owner: &str,
        contact: &str,
        request: &str,
        max_pending: usize,
    ) -> Result<(), StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => {
                sqlite::roster::add_pending_in(s, owner, contact, request, max_pending).await
            }
        }
    }

    /// Forgets a request; `false` if there was none.
    pub async fn remove_pending_in(&self, owner: &str, contact: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::roster::remove_pending_in(s, owner, contact).await,
        }
    }
}
