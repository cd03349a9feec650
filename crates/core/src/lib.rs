//! The heart of the server: hosts, sessions, the router and the hooks that modules plug into.
//!
//! It knows protocols and storage, not sockets: connection tasks (in `rookery-net`) hand it stanzas from bound
//! sessions and drain each session's queue.
#![forbid(unsafe_code)]

pub mod bind2;
pub mod disco;
pub mod hooks;
pub mod module;
pub mod registration;
pub mod requests;
pub mod router;
pub mod session;

use std::sync::Arc;

use rookery_config::Config;
use rookery_store::Store;
use tokio_util::sync::CancellationToken;

pub use bind2::{Bind2Features, Bind2Inline};
pub use disco::Disco;
pub use hooks::{
    BoxFuture, Handled, Hooks, IqHandler, IqOutcome, IqRequest, SessionHandler, SessionHook,
    StanzaEvent, StanzaHandler, StanzaHook, SyncIq, Target,
};
pub use module::{Extensions, Module, Registry};
pub use registration::{AccountRegistrar, NewAccount, Registration};
pub use requests::{PendingRequests, RequestError};
pub use router::Origin;
pub use session::{
    Caps, DeliveryError, Queued, Session, SessionRegistry, SessionState, estimated_size,
};

/// The running server's shared state. One per process, shared as `Arc<Server>`.
pub struct Server {
    pub config: Arc<Config>,
    /// The XMPP domain, normalised.
    pub domain: String,
    /// `groups.` and `share.` under the domain, where the group-chat and upload services live.
    pub groups_domain: String,
    pub share_domain: String,
    pub store: Store,
    pub sessions: SessionRegistry,
    pub hooks: Hooks,
    pub disco: Disco,
    /// Stream features modules add after login, next to `<bind/>` (roster versioning, ...).
    pub stream_features: Vec<rookery_xml::Element>,
    /// Registries modules keep for each other (see [`Extensions`]).
    pub extensions: Extensions,
    /// IQ requests the server sent to clients, waiting for their replies (see [`Server::request`]).
    pub requests: PendingRequests,
    /// When the server started, for uptime (XEP-0012).
    pub started_at: std::time::SystemTime,
    /// Cancelled when the server stops: every connection says `<system-shutdown/>` and closes.
    pub shutdown: CancellationToken,
}

impl Server {
    /// Builds the server and lets every module register its hooks.
    pub fn new(config: Arc<Config>, store: Store, modules: Vec<Arc<dyn Module>>) -> Arc<Self> {
        let mut registry = Registry::default();
        for module in modules {
            tracing::debug!(module = module.name(), "loading module");
            module.register(&mut registry);
        }
        let Registry {
            hooks,
            disco,
            stream_features,
            extensions,
        } = registry;
        Arc::new(Self {
            domain: config.domain.clone(),
            groups_domain: config.groups_domain(),
            share_domain: config.share_domain(),
            sessions: SessionRegistry::new(config.limits.session_queue_bytes),
            config,
            store,
            hooks,
            disco,
            stream_features,
            extensions,
            requests: PendingRequests::default(),
            started_at: std::time::SystemTime::now(),
            shutdown: CancellationToken::new(),
        })
    }
}
