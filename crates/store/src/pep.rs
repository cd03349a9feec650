//! Personal eventing (XEP-0163): each account's publish-subscribe nodes and their items. A node's configuration is
//! kept as text the PEP module writes and reads; the store only knows how many items a node keeps.

use crate::{Backend, Store, StoreError, sqlite};

/// A node of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepNode {
    pub node: String,
    /// The configuration, as the PEP module wrote it.
    pub config: String,
    /// Items the node keeps; publishing more drops the oldest.
    pub max_items: u32,
}

/// A published item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepItem {
    pub id: String,
    /// The bare JID that published it.
    pub publisher: String,
    /// The payload, written out.
    pub payload: String,
    /// Unix seconds.
    pub published_at: i64,
}

/// What one account may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PepQuota {
    pub max_nodes: usize,
    /// All items' payloads together.
    pub max_total_bytes: u64,
}

/// What became of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Stored; `created` says whether the node was created for it. `node` is the node as it now is.
    Stored { created: bool, node: PepNode },
    /// The node exists and the caller's check refused its configuration: nothing changed.
    Refused(PepNode),
}

/// The PEP repository.
#[derive(Debug, Clone)]
pub struct Pep {
    store: Store,
}

impl Pep {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// One node.
    pub async fn node(&self, owner: &str, node: &str) -> Result<Option<PepNode>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::node(s, owner, node).await,
        }
    }

    /// Every node of the account, by name.
    pub async fn nodes(&self, owner: &str) -> Result<Vec<PepNode>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::nodes(s, owner).await,
        }
    }

    /// Creates a node. `false` if it exists already (nothing changes); [`StoreError::LimitReached`] when the
    /// account has `quota.max_nodes` nodes; [`StoreError::InvalidInput`] if there is no such account.
    pub async fn create(
        &self,
        owner: &str,
        node: &PepNode,
        quota: PepQuota,
    ) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::create(s, owner, node, quota).await,
        }
    }

    /// Replaces a node's configuration and drops the oldest items beyond its new `max_items`. `false` if there is
    /// no such node.
    pub async fn configure(&self, owner: &str, node: &PepNode) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::configure(s, owner, node).await,
        }
    }

    /// Publishes an item in one transaction: creates the node with `new_node` if it does not exist (within
    /// `quota.max_nodes`), else asks `accept` whether its configuration allows this publish (XEP-0060 publish
    /// preconditions) and changes nothing if not. An item with the same id is replaced and becomes the newest; the
    /// oldest items beyond the node's `max_items` are dropped. [`StoreError::LimitReached`] when the account's items
    /// would take more than `quota.max_total_bytes`, nothing changed.
    pub async fn publish(
        &self,
        owner: &str,
        new_node: &PepNode,
        item: &PepItem,
        accept: impl FnOnce(&PepNode) -> bool + Send,
        quota: PepQuota,
    ) -> Result<Published, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => {
                sqlite::pep::publish(s, owner, new_node, item, accept, quota).await
            }
        }
    }

    /// Items of a node in publishing order, oldest first: those with the given ids (all when `ids` is empty), at
    /// most the newest `max`.
    pub async fn items(
        &self,
        owner: &str,
        node: &str,
        ids: &[String],
        max: Option<u32>,
    ) -> Result<Vec<PepItem>, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::items(s, owner, node, ids, max).await,
        }
    }

    /// Removes one item. `false` if the node has no such item.
    pub async fn retract(&self, owner: &str, node: &str, id: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::retract(s, owner, node, id).await,
        }
    }

    /// Removes every item of a node, keeping the node. `false` if there is no such node.
    pub async fn purge(&self, owner: &str, node: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::purge(s, owner, node).await,
        }
    }

    /// Deletes a node with its items. `false` if there is no such node.
    pub async fn delete(&self, owner: &str, node: &str) -> Result<bool, StoreError> {
        match &self.store.backend {
            Backend::Sqlite(s) => sqlite::pep::delete(s, owner, node).await,
        }
    }
}
