//! TEMPORARY: a stand-in for the presence module, so that sessions can become available on this branch. It only
//! records a client's own presence (no broadcast, no subscriptions) and fires [`SessionHook::Available`] at its
//! initial presence. Dropped when the real presence module is merged.

use std::sync::Arc;

use rookery_core::{
    BoxFuture, Handled, Module, Origin, Registry, Server, SessionHook, StanzaEvent, StanzaHandler,
    StanzaHook,
};
use rookery_proto::StanzaKind;
use rookery_xml::{Element, ns};

pub struct PresenceStub;

impl Module for PresenceStub {
    fn name(&self) -> &'static str {
        "presence-stub"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.hooks.on_stanza(
            StanzaHook::Pre(StanzaKind::Presence),
            0,
            Arc::new(OwnPresence),
        );
    }
}

struct OwnPresence;

impl StanzaHandler for OwnPresence {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            let Origin::Client(session) = &event.origin else {
                return Handled::Pass;
            };
            if event.stanza.attr("to").is_some() {
                return Handled::Pass;
            }
            let initial = {
                let mut state = session.state();
                match event.stanza.attr("type") {
                    None => {
                        let initial = state.presence.is_none();
                        state.priority = priority_of(&event.stanza);
                        state.presence = Some(event.stanza.clone());
                        initial
                    }
                    Some("unavailable") => {
                        state.presence = None;
                        state.priority = 0;
                        false
                    }
                    Some(_) => return Handled::Pass,
                }
            };
            if initial {
                let session = Arc::clone(session);
                server
                    .hooks
                    .run_session(server, SessionHook::Available, &session)
                    .await;
            }
            Handled::Yes
        })
    }
}

/// RFC 6121 §4.7.2.3: -128..=127, 0 when absent or unreadable.
fn priority_of(presence: &Element) -> i8 {
    presence
        .get_child("priority", ns::CLIENT)
        .and_then(|p| p.text().trim().parse::<i64>().ok())
        .map_or(0, |p| i8::try_from(p.clamp(-128, 127)).unwrap_or(0))
}
