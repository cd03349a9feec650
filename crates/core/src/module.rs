//! The `Module` trait: every feature registers itself here, so the router never changes when a feature is added.

use std::sync::Arc;

use crate::disco::Disco;
use crate::hooks::Hooks;

/// A feature of the server (ping, disco, roster, ...).
pub trait Module: Send + Sync + 'static {
    /// A short name for logs, like Prosody's module names.
    fn name(&self) -> &'static str;

    /// Registers the module's hooks and service-discovery entries.
    fn register(self: Arc<Self>, registry: &mut Registry);
}

/// What modules register into at start-up.
#[derive(Default)]
pub struct Registry {
    pub hooks: Hooks,
    pub disco: Disco,
    /// Stream features offered after login, next to `<bind/>`.
    pub stream_features: Vec<rookery_xml::Element>,
}
