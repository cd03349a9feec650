//! XEP-0199: XMPP Ping. The server answers pings addressed to itself (and, like Prosody, to an account on its
//! behalf).

use std::sync::Arc;

use rookery_core::{IqOutcome, Module, Registry, SyncIq, Target};
use rookery_proto::IqType;
use rookery_xml::ns;

pub struct Ping;

impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let pong = Arc::new(SyncIq(|_: &rookery_core::IqRequest<'_>| {
            IqOutcome::Result(None)
        }));
        registry
            .hooks
            .on_iq(IqType::Get, Target::Host, ns::PING, "ping", 0, pong.clone());
        registry
            .hooks
            .on_iq(IqType::Get, Target::Own, ns::PING, "ping", 0, pong);
        registry.disco.add_feature(ns::PING);
    }
}
