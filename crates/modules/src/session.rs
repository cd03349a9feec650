//! RFC 3921 session establishment, a no-op since RFC 6121 but still sent by old clients; Prosody answers it, and
//! so do we.

use std::sync::Arc;

use rookery_core::{IqOutcome, Module, Registry, SyncIq, Target};
use rookery_proto::IqType;
use rookery_xml::ns;

pub struct LegacySession;

impl Module for LegacySession {
    fn name(&self) -> &'static str {
        "session"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let ok = Arc::new(SyncIq(|_: &rookery_core::IqRequest<'_>| {
            IqOutcome::Result(None)
        }));
        registry.hooks.on_iq(
            IqType::Set,
            Target::Host,
            ns::SESSION,
            "session",
            0,
            ok.clone(),
        );
        registry
            .hooks
            .on_iq(IqType::Set, Target::Own, ns::SESSION, "session", 0, ok);
    }
}
