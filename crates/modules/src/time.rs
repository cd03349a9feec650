//! XEP-0202 Entity Time. The server answers for itself and, like Prosody's mod_time, for its accounts' bare JIDs
//! (with its own clock: it is the one answering). Always in UTC, offset `+00:00`, as Prosody.

use std::sync::Arc;

use rookery_core::{IqOutcome, IqRequest, Module, Registry, SyncIq, Target};
use rookery_proto::IqType;
use rookery_proto::datetime::xep0082;
use rookery_xml::Element;

use crate::support::{AsyncIq, account_exists, addressed_account, no_such_account, storage_failed};

/// `urn:xmpp:time`.
pub const NS: &str = "urn:xmpp:time";

pub struct EntityTime;

impl Module for EntityTime {
    fn name(&self) -> &'static str {
        "time"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature(NS);
        let now = Arc::new(SyncIq(|_: &IqRequest<'_>| {
            IqOutcome::Result(Some(time_now()))
        }));
        registry
            .hooks
            .on_iq(IqType::Get, Target::Host, NS, "time", 0, now.clone());
        registry
            .hooks
            .on_iq(IqType::Get, Target::Own, NS, "time", 0, now);
        registry.hooks.on_iq(
            IqType::Get,
            Target::Bare,
            NS,
            "time",
            0,
            Arc::new(AsyncIq(|req| Box::pin(account_time(req)))),
        );
    }
}

async fn account_time(req: IqRequest<'_>) -> IqOutcome {
    match account_exists(req.server, addressed_account(&req)).await {
        Ok(true) => IqOutcome::Result(Some(time_now())),
        Ok(false) => no_such_account(),
        Err(error) => storage_failed("looking up an account", &error),
    }
}

fn time_now() -> Element {
    Element::new("time", NS)
        .with_child(Element::new("tzo", NS).with_text("+00:00"))
        .with_child(
            Element::new("utc", NS)
                .with_text(xep0082(time::OffsetDateTime::now_utc().unix_timestamp())),
        )
}
