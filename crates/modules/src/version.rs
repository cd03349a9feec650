//! XEP-0092 Software Version, for the server itself: `Rookery` and the crate version. No operating system, as
//! Prosody by default and as Snikket's mod_snikket_version (it tells an attacker more than it helps anyone).

use std::sync::Arc;

use rookery_core::{IqOutcome, IqRequest, Module, Registry, SyncIq, Target};
use rookery_proto::IqType;
use rookery_xml::Element;

/// `jabber:iq:version`.
pub const NS: &str = "jabber:iq:version";

/// The name the server gives.
pub const SOFTWARE_NAME: &str = "Rookery";

pub struct SoftwareVersion;

impl Module for SoftwareVersion {
    fn name(&self) -> &'static str {
        "version"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature(NS);
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            NS,
            "query",
            0,
            Arc::new(SyncIq(|_: &IqRequest<'_>| {
                IqOutcome::Result(Some(
                    Element::new("query", NS)
                        .with_child(Element::new("name", NS).with_text(SOFTWARE_NAME))
                        .with_child(
                            Element::new("version", NS).with_text(env!("CARGO_PKG_VERSION")),
                        ),
                ))
            })),
        );
    }
}
