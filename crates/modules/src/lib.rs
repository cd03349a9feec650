//! The server's features, one module each. Every module registers hooks and disco entries in `register`; none
//! touches the router.
#![forbid(unsafe_code)]

pub mod disco;
pub mod message;
pub mod offline;
pub mod ping;
pub mod presence_stub;
pub mod session;

use std::sync::Arc;

use rookery_core::Module;

/// The modules every server runs, in load order.
pub fn default_modules() -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(disco::DiscoModule),
        Arc::new(ping::Ping),
        Arc::new(session::LegacySession),
        Arc::new(message::MessageModule),
        Arc::new(offline::OfflineModule::default()),
        // TEMPORARY: until the presence module is merged.
        Arc::new(presence_stub::PresenceStub),
    ]
}
