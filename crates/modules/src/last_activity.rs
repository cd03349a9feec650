//! XEP-0012 Last Activity.
//!
//! - To the server: its uptime, in seconds since it started (Prosody's mod_uptime).
//! - To an account's bare JID, answered by the server (Prosody's mod_lastactivity, with XEP-0012 §3's rules): the
//!   seconds since the account's last session ended and the status of the unavailable presence it sent last. A
//!   requester may ask only about itself or an account whose presence it may see (a subscription `from` in the
//!   account's roster); anyone else gets `forbidden` (XEP-0012 §3, as Prosody). An account that has a session now
//!   answers `0` seconds with no status (XEP-0012 §3: "MUST ... a value of '0'"). One that never logged out since
//!   this was recorded also answers `0`, as Prosody does for an account it knows nothing of.
//!
//! The logout is recorded (in the database, so it survives restarts) when an account's last session ends. Its
//! status is the `<status/>` of the last unavailable presence that session broadcast, if it sent one after its
//! last available presence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jid::BareJid;
use rookery_core::{
    BoxFuture, Handled, IqOutcome, IqRequest, Module, Origin, Registry, Server, Session,
    SessionHandler, SessionHook, StanzaEvent, StanzaHandler, StanzaHook, SyncIq, Target,
};
use rookery_proto::{IqType, StanzaCondition, StanzaError, StanzaKind};
use rookery_store::{LastLogout, StoreError};
use rookery_xml::{Element, ns};

use crate::support::{
    AsyncIq, account_exists, addressed_account, no_such_account, storage_failed, unix_now,
};

/// `jabber:iq:last`.
pub const NS: &str = "jabber:iq:last";

/// Longest status kept, in bytes: statuses are a line of text, and each session's is held in memory until it ends.
const MAX_STATUS_BYTES: usize = 1024;

/// Records logouts, answers last-activity queries.
#[derive(Default)]
pub struct LastActivity {
    /// The status of each session's last unavailable presence, by session id, until the session ends.
    statuses: Mutex<HashMap<u64, String>>,
}

impl Module for LastActivity {
    fn name(&self) -> &'static str {
        "last_activity"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature(NS);
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            NS,
            "query",
            0,
            Arc::new(SyncIq(uptime)),
        );
        let account = Arc::new(AsyncIq(|req| Box::pin(account_last_activity(req))));
        for target in [Target::Own, Target::Bare] {
            registry
                .hooks
                .on_iq(IqType::Get, target, NS, "query", 0, account.clone());
        }
        // It only watches: it runs ahead of the presence module, which takes the stanza.
        registry
            .hooks
            .on_stanza(StanzaHook::Pre(StanzaKind::Presence), 10, self.clone());
        registry.hooks.on_session(SessionHook::Ended, 0, self);
    }
}

fn last_query(seconds: u64, status: Option<&str>) -> Element {
    let mut query = Element::new("query", NS).with_attr("seconds", seconds.to_string());
    if let Some(status) = status.filter(|s| !s.is_empty()) {
        query.append_text(status);
    }
    query
}

fn uptime(req: &IqRequest<'_>) -> IqOutcome {
    let seconds = req.server.started_at.elapsed().map_or(0, |d| d.as_secs());
    IqOutcome::Result(Some(last_query(seconds, None)))
}

/// Whether `requester` may see `owner`'s presence: a subscription `from` in the owner's roster (RFC 6121 §3).
async fn may_see_presence(
    server: &Server,
    owner: &str,
    requester: &BareJid,
) -> Result<bool, StoreError> {
    Ok(server
        .store
        .roster()
        .item(owner, requester.as_str())
        .await?
        .is_some_and(|item| item.subscription.has_from()))
}

async fn account_last_activity(req: IqRequest<'_>) -> IqOutcome {
    let server = req.server;
    let owner = addressed_account(&req);
    let asks_about_itself = req.from.node().map(|n| n.as_str()) == Some(owner)
        && req.from.domain().as_str() == server.domain;
    if !asks_about_itself {
        match account_exists(server, owner).await {
            Ok(true) => {}
            Ok(false) => return no_such_account(),
            Err(error) => return storage_failed("looking up an account", &error),
        }
        match may_see_presence(server, owner, &req.from.to_bare()).await {
            Ok(true) => {}
            Ok(false) => {
                return IqOutcome::Error(StanzaError::new(StanzaCondition::Forbidden));
            }
            Err(error) => return storage_failed("reading a roster", &error),
        }
    }
    if !server.sessions.sessions_of(owner).is_empty() {
        return IqOutcome::Result(Some(last_query(0, None)));
    }
    match server.store.last_logouts().get(owner).await {
        Ok(Some(logout)) => {
            let seconds = u64::try_from(unix_now().saturating_sub(logout.at)).unwrap_or(0);
            IqOutcome::Result(Some(last_query(seconds, logout.status.as_deref())))
        }
        Ok(None) => IqOutcome::Result(Some(last_query(0, None))),
        Err(error) => storage_failed("reading the last logout", &error),
    }
}

/// The first `<status/>` of a presence, cut to [`MAX_STATUS_BYTES`] on a character boundary.
fn status_of(presence: &Element) -> String {
    let mut status = presence
        .get_child("status", ns::CLIENT)
        .map(Element::text)
        .unwrap_or_default();
    if status.len() > MAX_STATUS_BYTES {
        let mut end = MAX_STATUS_BYTES;
        while !status.is_char_boundary(end) {
            end -= 1;
        }
        status.truncate(end);
    }
    status
}

impl LastActivity {
    fn statuses(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.statuses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Watches the presence each session broadcasts (no `to`): unavailable keeps its status, available forgets it.
impl StanzaHandler for LastActivity {
    fn handle<'a>(
        &'a self,
        _server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        if let Origin::Client(session) = &event.origin
            && event.stanza.attr("to").is_none()
        {
            match event.stanza.attr("type") {
                None => {
                    self.statuses().remove(&session.id);
                }
                Some("unavailable") => {
                    let status = status_of(&event.stanza);
                    self.statuses().insert(session.id, status);
                }
                Some(_) => {}
            }
        }
        Box::pin(std::future::ready(Handled::Pass))
    }
}

/// Records the logout when an account's last session ends.
impl SessionHandler for LastActivity {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()> {
        let status = self.statuses().remove(&session.id);
        Box::pin(async move {
            let username = session.username();
            // The session is already unbound: if none is left, the account has logged out.
            if !server.sessions.sessions_of(username).is_empty() {
                return;
            }
            let logout = LastLogout {
                at: unix_now(),
                status: status.filter(|s| !s.is_empty()),
            };
            match server.store.last_logouts().record(username, &logout).await {
                Ok(()) => {}
                // Deleted while logged in: nothing to record.
                Err(StoreError::InvalidInput(_)) => {}
                Err(error) => tracing::warn!(%error, username, "cannot record a logout"),
            }
        })
    }
}
