//! The `Module` trait: every feature registers itself here, so the router never changes when a feature is added.

use std::sync::Arc;

use rookery_proto::IqType;

use crate::disco::Disco;
use crate::hooks::{Hooks, IqHandler, StanzaHandler, StanzaHook, Target};

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
}

impl Registry {
    /// Registers an IQ handler for `iq_type` requests to `target` whose payload is `<name xmlns=ns>`.
    pub fn on_iq(
        &mut self,
        iq_type: IqType,
        target: Target,
        ns: &str,
        name: &str,
        priority: i32,
        handler: Arc<dyn IqHandler>,
    ) {
        self.hooks
            .on_iq(iq_type, target, ns, name, priority, handler);
    }

    /// Registers a message or presence handler.
    pub fn on_stanza(&mut self, hook: StanzaHook, priority: i32, handler: Arc<dyn StanzaHandler>) {
        self.hooks.on_stanza(hook, priority, handler);
    }
}
