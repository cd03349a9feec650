//! TEMPORARY: a stand-in for the presence module, which is being written at the same time, so that the effects of
//! blocking on presence can be tested the way a client causes them (by sending `<presence/>`). To be dropped when
//! the real module is merged.
//!
//! Presence without a `to` sets or clears the session's available presence and priority (firing
//! `SessionHook::Available` for the first one); nothing is broadcast. Presence with a `to` is routed as it is; an
//! available or unavailable one is remembered as directed presence (RFC 6121 §4.6).

use std::sync::Arc;

use rookery_core::{
    BoxFuture, Handled, Module, Registry, Server, SessionHook, StanzaEvent, StanzaHandler,
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
        registry
            .hooks
            .on_stanza(StanzaHook::Pre(StanzaKind::Presence), 0, Arc::new(Outbound));
    }
}

struct Outbound;

impl StanzaHandler for Outbound {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            let rookery_core::Origin::Client(session) = &event.origin else {
                return Handled::Pass;
            };
            let kind = event.stanza.attr("type");
            if event.stanza.attr("to").is_some() {
                if matches!(kind, None | Some("unavailable")) {
                    let mut state = session.state();
                    if kind.is_none() {
                        state.directed_presence.insert(event.to.clone());
                    } else {
                        state.directed_presence.remove(&event.to);
                    }
                }
                return Handled::Pass;
            }
            let first = match kind {
                None => {
                    let priority = event
                        .stanza
                        .get_child("priority", ns::CLIENT)
                        .and_then(|p| p.text().trim().parse::<i8>().ok())
                        .unwrap_or(0);
                    let mut state = session.state();
                    let first = state.presence.is_none();
                    state.presence = Some(Element::clone(&event.stanza));
                    state.priority = priority;
                    first
                }
                Some("unavailable") => {
                    let mut state = session.state();
                    state.presence = None;
                    state.priority = 0;
                    false
                }
                Some(_) => false,
            };
            if first {
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
