//! XEP-0202 Entity Time. The server answers for itself and, like Prosody's mod_time, for its accounts' bare JIDs
//! (with its own clock: it is the one answering). Always in UTC, offset `+00:00`, as Prosody.

use std::sync::Arc;

use rookery_core::{IqOutcome, IqRequest, Module, Registry, SyncIq, Target};
use rookery_proto::IqType;
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
            Element::new("utc", NS).with_text(xep0082_datetime(time::OffsetDateTime::now_utc())),
        )
}

/// XEP-0082 DateTime in UTC, to the second: `2024-05-01T12:00:00Z`.
pub fn xep0082_datetime(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_xep0082() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap();
        assert_eq!(xep0082_datetime(t), "2001-09-09T01:46:40Z");
        let t = time::OffsetDateTime::from_unix_timestamp(0).unwrap();
        assert_eq!(xep0082_datetime(t), "1970-01-01T00:00:00Z");
    }
}
