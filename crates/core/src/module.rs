//! The `Module` trait: every feature registers itself here, so the router never changes when a feature is added.

use std::any::{Any, TypeId};
use std::collections::HashMap;
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
    /// Registries modules keep for each other (the XEP-0050 command list, ...).
    pub extensions: Extensions,
}

/// Registries that one module defines and others fill at start-up, one per type: a module providing ad-hoc
/// commands adds them to the commands module's list without either knowing the other, as with Prosody's
/// `module:provides()`. Filled through [`Registry::extensions`], read-only afterwards through
/// [`crate::Server::extensions`].
#[derive(Default)]
pub struct Extensions(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Extensions {
    /// The registry of type `T`, created empty on first use.
    pub fn get_or_default<T: Any + Send + Sync + Default>(&mut self) -> &mut T {
        self.0
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut()
            .expect("keyed by its own type")
    }

    /// The registry of type `T`, if any module created it.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}
