//! RFC 6121 §3–4: presence and subscriptions.
//!
//! - A client's presence without a `to` is broadcast: to the contacts subscribed to it (`from`/`both`) and to the
//!   account's own available resources, including the one that sent it (§4.2.2). The first one (initial presence)
//!   also probes the contacts it is subscribed to, shows the new resource its siblings' presence and the pending
//!   subscription requests, and fires [`SessionHook::Available`] (offline messages come then).
//! - Presence with a `to` is directed presence (§4.6); recipients outside the subscriptions are remembered and told
//!   when the session goes unavailable.
//! - Subscription stanzas drive the state machine of §3 on both sides; each change is stored and pushed through the
//!   roster module. Every stanza leaves through the router, so blocking and (later) federation apply to all.
//! - When a connection ends without unavailable presence, the server sends it for the client (§4.5.2).

use std::sync::Arc;

use jid::{BareJid, Jid};
use rookery_core::{
    BoxFuture, Caps, Handled, Module, Origin, Registry, Server, Session, SessionHandler,
    SessionHook, StanzaEvent, StanzaHandler, StanzaHook, Target,
};
use rookery_proto::{StanzaCondition, StanzaError, StanzaKind};
use rookery_store::{InviteKind, RosterItem, StoreError};
use rookery_xml::{Element, ns};
use tracing::warn;

use crate::roster::{lock_roster, save_item};

const NS_CAPS: &str = "http://jabber.org/protocol/caps";

pub struct PresenceModule;

impl Module for PresenceModule {
    fn name(&self) -> &'static str {
        "presence"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry
            .hooks
            .on_stanza(StanzaHook::Pre(StanzaKind::Presence), 0, Arc::new(Outbound));
        for target in [Target::Bare, Target::Own, Target::Full, Target::Host] {
            registry.hooks.on_stanza(
                StanzaHook::Deliver(StanzaKind::Presence, target),
                0,
                Arc::new(Inbound),
            );
        }
        registry
            .hooks
            .on_session(SessionHook::Ended, 0, Arc::new(ConnectionEnded));
    }
}

/// The `type` of a presence stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PresenceType {
    Available,
    Unavailable,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Probe,
    Error,
}

impl PresenceType {
    fn of(stanza: &Element) -> Option<Self> {
        Some(match stanza.attr("type") {
            None => Self::Available,
            Some("unavailable") => Self::Unavailable,
            Some("subscribe") => Self::Subscribe,
            Some("subscribed") => Self::Subscribed,
            Some("unsubscribe") => Self::Unsubscribe,
            Some("unsubscribed") => Self::Unsubscribed,
            Some("probe") => Self::Probe,
            Some("error") => Self::Error,
            Some(_) => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Unavailable => "unavailable",
            Self::Subscribe => "subscribe",
            Self::Subscribed => "subscribed",
            Self::Unsubscribe => "unsubscribe",
            Self::Unsubscribed => "unsubscribed",
            Self::Probe => "probe",
            Self::Error => "error",
        }
    }

    fn is_subscription(self) -> bool {
        matches!(
            self,
            Self::Subscribe | Self::Subscribed | Self::Unsubscribe | Self::Unsubscribed
        )
    }
}

/// Presence a local client sends.
struct Outbound;

impl StanzaHandler for Outbound {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            let Origin::Client(session) = &event.origin else {
                return Handled::Pass;
            };
            let session = Arc::clone(session);
            let Some(kind) = PresenceType::of(&event.stanza) else {
                reject(
                    server,
                    &event.stanza,
                    StanzaCondition::BadRequest,
                    "unknown presence type",
                )
                .await;
                return Handled::Yes;
            };
            let has_to = event.stanza.attr("to").is_some();
            match kind {
                PresenceType::Available | PresenceType::Unavailable if !has_to => {
                    broadcast(server, &session, event.stanza.clone(), kind).await;
                }
                PresenceType::Available | PresenceType::Unavailable => {
                    directed(server, &session, event, kind).await;
                }
                _ if kind.is_subscription() => {
                    let Ok(contact) = BareJid::new(event.to.to_bare().as_str()) else {
                        return Handled::Yes;
                    };
                    if !has_to || is_own(&session, &contact) {
                        reject(
                            server,
                            &event.stanza,
                            StanzaCondition::BadRequest,
                            "a subscription is with another JID; your own is always there",
                        )
                        .await;
                        return Handled::Yes;
                    }
                    outbound_subscription(server, &session, &event.stanza, kind, &contact).await;
                }
                PresenceType::Probe if has_to => {
                    // Clients should leave probes to the server (RFC 6121 §4.3), but one asked for is answered
                    // as the server's own: sent from the bare JID.
                    let mut probe = Element::new("presence", ns::CLIENT).with_attr("type", "probe");
                    probe.set_attr("from", session.bare_jid().as_str());
                    probe.set_attr("to", event.to.to_bare().as_str());
                    let from = Jid::from(session.bare_jid());
                    let to = Jid::from(event.to.to_bare());
                    server
                        .route(
                            StanzaKind::Presence,
                            probe,
                            from,
                            Some(to),
                            event.origin.clone(),
                        )
                        .await;
                }
                // An error answering someone's presence goes where it is addressed, like any stanza.
                PresenceType::Error if has_to => return Handled::Pass,
                _ => {}
            }
            Handled::Yes
        })
    }
}

/// Presence arriving for a local account, from anyone (a contact, the account itself, the server).
struct Inbound;

impl StanzaHandler for Inbound {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            let Some(kind) = PresenceType::of(&event.stanza) else {
                return Handled::Yes;
            };
            let Some(owner) = event.to.node().map(|n| n.as_str().to_owned()) else {
                answer_for_host(server, event, kind).await;
                return Handled::Yes;
            };
            if kind.is_subscription() {
                inbound_subscription(server, &owner, event, kind).await;
                return Handled::Yes;
            }
            if kind == PresenceType::Probe {
                answer_probe(server, &owner, &event.from, &event.origin).await;
                return Handled::Yes;
            }
            if event.to.resource().is_some() {
                // Directed to one resource: the router's default delivers it if that resource is bound.
                return Handled::Pass;
            }
            // To the bare JID: every available resource (RFC 6121 §8.5.2.1.2... presence), none when offline.
            for session in available_sessions(server, &owner) {
                let mut copy = event.stanza.clone();
                copy.set_attr("to", session.jid.as_str());
                let _ = session
                    .deliver(copy, event.origin.wait_for(&session, server))
                    .await;
            }
            Handled::Yes
        })
    }
}

/// A connection that ended while available: its contacts see it go (RFC 6121 §4.5.2).
struct ConnectionEnded;

impl SessionHandler for ConnectionEnded {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if session.state().presence.is_none() {
                return;
            }
            // Replaced by a new connection with the same resource that is already available: the contacts must
            // keep seeing the new one. Only those this one sent directed presence to hear it is gone (the new
            // one has not joined them).
            if server
                .sessions
                .get(&session.jid)
                .is_some_and(|s| s.available_priority().is_some())
            {
                let directed: Vec<Jid> = {
                    let mut state = session.state();
                    state.presence = None;
                    state.directed_presence.drain().collect()
                };
                let unavailable =
                    Element::new("presence", ns::CLIENT).with_attr("type", "unavailable");
                let from = Jid::from(session.jid.clone());
                for jid in directed {
                    send_to(server, &unavailable, &from, jid.as_str(), &Origin::Local).await;
                }
                return;
            }
            let unavailable = Element::new("presence", ns::CLIENT)
                .with_attr("type", "unavailable")
                .with_attr("from", session.jid.as_str());
            broadcast(server, session, unavailable, PresenceType::Unavailable).await;
        })
    }
}

/// Broadcasts a session's available or unavailable presence (RFC 6121 §4.2, §4.4, §4.5).
async fn broadcast(
    server: &Arc<Server>,
    session: &Arc<Session>,
    presence: Element,
    kind: PresenceType,
) {
    let username = session.username();
    let (initial, directed) = {
        let mut state = session.state();
        if kind == PresenceType::Unavailable {
            let was_available = state.presence.take().is_some();
            state.priority = 0;
            state.caps = None;
            let directed: Vec<Jid> = state.directed_presence.drain().collect();
            if !was_available && directed.is_empty() {
                // Unavailable from a session nobody sees: nothing to tell.
                return;
            }
            (false, directed)
        } else {
            let initial = state.presence.is_none();
            state.priority = priority_of(&presence);
            state.caps = caps_of(&presence);
            state.presence = Some(presence.clone());
            (initial, Vec::new())
        }
    };
    let contacts = match server.store.roster().subscriptions(username).await {
        Ok(contacts) => contacts,
        Err(err) => {
            warn!(%err, "roster unavailable; presence reaches own resources only");
            Vec::new()
        }
    };
    let origin = Origin::Client(Arc::clone(session));
    let from = Jid::from(session.jid.clone());
    for (contact, _) in contacts.iter().filter(|(_, s)| s.has_from()) {
        send_to(server, &presence, &from, contact, &origin).await;
    }
    for jid in &directed {
        send_to(server, &presence, &from, jid.as_str(), &origin).await;
    }
    // The account's own resources see it too, the sender included (§4.2.2, §4.4.2).
    for other in server.sessions.sessions_of(username) {
        if other.available_priority().is_some() || other.id == session.id {
            let mut copy = presence.clone();
            copy.set_attr("to", other.jid.as_str());
            let _ = other.deliver(copy, origin.wait_for(&other, server)).await;
        }
    }
    if !initial {
        return;
    }
    // Initial presence: learn the contacts' presence, see the siblings' and the pending requests.
    // Probes come from this resource, so the answers reach it alone: the siblings already know (as Prosody).
    let probe = Element::new("presence", ns::CLIENT).with_attr("type", "probe");
    for (contact, _) in contacts.iter().filter(|(_, s)| s.has_to()) {
        send_to(server, &probe, &from, contact, &origin).await;
    }
    for other in server.sessions.sessions_of(username) {
        if other.id == session.id {
            continue;
        }
        let sibling = other.state().presence.clone();
        if let Some(mut sibling) = sibling {
            sibling.set_attr("to", session.jid.as_str());
            let _ = session.deliver(sibling, None).await;
        }
    }
    match server.store.roster().pending_in(username).await {
        Ok(pending) => {
            for request in pending {
                if let Ok(mut request) = rookery_xml::parse_element(&request.request) {
                    request.set_attr("to", session.jid.as_str());
                    let _ = session.deliver(request, None).await;
                }
            }
        }
        Err(err) => warn!(%err, "pending subscription requests unavailable"),
    }
    server
        .hooks
        .run_session(server, SessionHook::Available, session)
        .await;
}

/// Directed presence (RFC 6121 §4.6).
async fn directed(
    server: &Arc<Server>,
    session: &Arc<Session>,
    event: &StanzaEvent,
    kind: PresenceType,
) {
    let target = event.to.clone();
    let covered = server
        .store
        .roster()
        .subscription(session.username(), event.to.to_bare().as_str())
        .await
        .is_ok_and(|s| s.has_from());
    {
        let mut state = session.state();
        if kind == PresenceType::Unavailable {
            state.directed_presence.remove(&target);
        } else if !covered && state.presence.is_some() {
            // Only while available: an unavailable session's directed presence ends nothing later.
            if state.directed_presence.len() < MAX_DIRECTED_PRESENCE {
                state.directed_presence.insert(target.clone());
            }
        }
    }
    server
        .route(
            StanzaKind::Presence,
            event.stanza.clone(),
            event.from.clone(),
            Some(target),
            event.origin.clone(),
        )
        .await;
}

/// Most directed-presence recipients a session remembers (each gets unavailable presence at the end). Group chats
/// joined are the usual case; beyond this many, the oldest sessions' peers learn from the rooms' own timeouts.
const MAX_DIRECTED_PRESENCE: usize = 1000;

/// What a subscription stanza leads to once the roster is updated; carried out after the account's roster lock
/// is released, because delivering may need the contact's lock (and a stripe may hold both).
#[derive(Default)]
struct FollowUp {
    /// Route the stanza on to the contact.
    route: bool,
    /// Answer the contact with `subscribed` on the account's behalf.
    reply_subscribed: bool,
    /// Show the contact the account's available resources (it may now see them).
    send_presence: bool,
    /// Tell the contact the account's resources are gone for it.
    send_unavailable: bool,
    /// Show the stanza to the account's resources.
    deliver: bool,
    /// Forget the contact's unanswered request (after the roster change is stored).
    clear_pending: bool,
}

/// A subscription stanza from a local user to a contact (RFC 6121 §3, the user's server's side).
async fn outbound_subscription(
    server: &Arc<Server>,
    session: &Arc<Session>,
    stanza: &Element,
    kind: PresenceType,
    contact: &BareJid,
) {
    let username = session.username();
    if kind == PresenceType::Subscribe
        && accept_contact_invite(server, username, stanza, contact).await
    {
        return;
    }
    let follow_up = {
        let _lock = lock_roster(username).await;
        match update_outbound(server, username, kind, contact.as_str()).await {
            Ok(follow_up) => follow_up,
            Err(err) => {
                server.bounce(stanza, err).await;
                return;
            }
        }
    };
    if follow_up.route {
        // The request's extensions (a <status/>, a XEP-0379 token) travel with it; the addresses are bare.
        let mut outgoing = stanza.clone();
        outgoing.set_attr("from", session.bare_jid().as_str());
        outgoing.set_attr("to", contact.as_str());
        server
            .route(
                StanzaKind::Presence,
                outgoing,
                Jid::from(session.bare_jid()),
                Some(Jid::from(contact.clone())),
                Origin::Client(Arc::clone(session)),
            )
            .await;
    }
    if follow_up.send_presence {
        send_available_presences(server, username, contact.as_str()).await;
    }
    if follow_up.send_unavailable {
        send_unavailable_presences(server, username, contact.as_str()).await;
    }
}

/// XEP-0379 (spec §5.5 B): a request to a local account carrying a valid contact invite of that account is approved
/// by the server for the inviter, who subscribes back: both end with `both`, the token is spent, both sides get
/// roster pushes and each other's presence. True when that happened; otherwise (no token, or one that is not a valid
/// contact invite of this contact) the request goes on as any other, and the token is ignored without a word.
async fn accept_contact_invite(
    server: &Arc<Server>,
    username: &str,
    stanza: &Element,
    contact: &BareJid,
) -> bool {
    let Some(token) = stanza
        .get_child("preauth", crate::invite_register::NS_PARS)
        .and_then(|p| p.attr("token"))
    else {
        return false;
    };
    let Some(inviter) = contact
        .node()
        .filter(|_| contact.domain().as_str() == server.domain)
    else {
        return false;
    };
    let inviter = inviter.as_str();
    if inviter == username {
        return false;
    }
    let invite = match server.store.invites().get(token).await {
        Ok(Some(invite)) => invite,
        Ok(None) => return false,
        Err(err) => {
            warn!(%err, "invite look-up failed");
            return false;
        }
    };
    let for_this_inviter = invite.kind == InviteKind::Contact
        && invite.username.as_deref() == Some(inviter)
        && invite.is_valid_at(crate::support::unix_now());
    if !for_this_inviter {
        return false;
    }
    match server.store.invites().consume(token).await {
        Ok(true) => {}
        Ok(false) => return false,
        Err(err) => {
            warn!(%err, "cannot spend the contact invite");
            return false;
        }
    }
    crate::invite_register::make_mutual_contacts(server, inviter, username).await;
    let user_jid = format!("{username}@{}", server.domain);
    // A request the inviter had not answered yet is answered now.
    if let Err(err) = server
        .store
        .roster()
        .remove_pending_in(inviter, &user_jid)
        .await
    {
        warn!(%err, "cannot clear the answered request");
    }
    // No `subscribed` stanza follows: both rosters already say `both` (pushed), so it would change nothing and
    // the user's server side would not show it (RFC 6121 §3.1.6: an answer without a request is ignored).
    send_available_presences(server, inviter, &user_jid).await;
    send_available_presences(server, username, contact.as_str()).await;
    true
}

/// The user's side of the state machine: updates the roster item for `contact` (RFC 6121 §3.1.2, §3.1.5, §3.2,
/// §3.3.2, §3.4). Runs under the account's roster lock.
async fn update_outbound(
    server: &Arc<Server>,
    username: &str,
    kind: PresenceType,
    contact: &str,
) -> Result<FollowUp, StanzaError> {
    let roster = server.store.roster();
    let existing = roster
        .item(username, contact)
        .await
        .map_err(storage_failed)?;
    let mut item = existing.clone().unwrap_or_else(|| RosterItem::new(contact));
    let mut follow_up = FollowUp {
        route: true,
        ..FollowUp::default()
    };
    // A request is forgotten only once its answer is stored: a failed write must leave it pending.
    let mut clear_pending = false;
    match kind {
        PresenceType::Subscribe => {
            if !item.subscription.has_to() {
                item.ask = true;
            }
        }
        PresenceType::Subscribed => {
            let pending = roster
                .has_pending_in(username, contact)
                .await
                .map_err(storage_failed)?;
            clear_pending = pending;
            if item.subscription.has_from() {
                follow_up.route = false;
            } else if pending {
                item.subscription = item.subscription.with_from(true);
                item.approved = false;
                follow_up.send_presence = true;
            } else {
                // Pre-approval (§3.4): the contact's future request is approved without asking.
                item.approved = true;
                follow_up.route = false;
            }
        }
        PresenceType::Unsubscribe => {
            item.subscription = item.subscription.with_to(false);
            item.ask = false;
        }
        PresenceType::Unsubscribed => {
            let pending = roster
                .has_pending_in(username, contact)
                .await
                .map_err(storage_failed)?;
            clear_pending = pending;
            if item.subscription.has_from() {
                item.subscription = item.subscription.with_from(false);
                follow_up.send_unavailable = true;
            } else if item.approved && !pending {
                // Cancelling a pre-approval is the user's own business (§3.4.1).
                follow_up.route = false;
            }
            item.approved = false;
        }
        _ => return Ok(FollowUp::default()),
    }
    // Store only what changed; a new item only when there is something to keep (§3.1.2, §3.4).
    let changed = match &existing {
        Some(existing) => *existing != item,
        None => item != RosterItem::new(contact),
    };
    if changed {
        save_item(server, username, &item).await?;
    }
    if clear_pending {
        roster
            .remove_pending_in(username, contact)
            .await
            .map_err(storage_failed)?;
    }
    Ok(follow_up)
}

/// A subscription stanza for a local account (RFC 6121 §3, the contact's server's side).
async fn inbound_subscription(
    server: &Arc<Server>,
    owner: &str,
    event: &StanzaEvent,
    kind: PresenceType,
) {
    let contact = event.from.to_bare().to_string();
    match server.store.accounts().exists(owner).await {
        Ok(true) => {}
        Ok(false) => {
            // No such account: a request is declined at once (§3.1.3), anything else has nothing to change.
            if kind == PresenceType::Subscribe {
                send_from_bare(server, owner, &contact, "unsubscribed").await;
            }
            return;
        }
        Err(err) => {
            warn!(%err, "account look-up failed");
            return;
        }
    }
    let follow_up = {
        let _lock = lock_roster(owner).await;
        match update_inbound(server, owner, &event.stanza, kind, &contact).await {
            Ok(follow_up) => follow_up,
            Err(err) => {
                warn!(?err, "subscription stanza not applied");
                return;
            }
        }
    };
    if follow_up.reply_subscribed {
        send_from_bare(server, owner, &contact, "subscribed").await;
    }
    if follow_up.send_presence {
        send_available_presences(server, owner, &contact).await;
    }
    if follow_up.send_unavailable {
        send_unavailable_presences(server, owner, &contact).await;
    }
    if follow_up.deliver {
        // The account's available resources see the stanza, with its extensions, from the contact's bare JID.
        let mut stanza = Element::new("presence", ns::CLIENT)
            .with_attr("type", kind.name())
            .with_attr("from", contact.as_str());
        for child in event.stanza.children() {
            stanza.append_child(child.clone());
        }
        // A request goes to the available resources (RFC 6121 §3.1.3); answers to the resources that keep a
        // roster, which they change (§3.1.6, §3.2.3, §3.3.3).
        let recipients = if kind == PresenceType::Subscribe {
            available_sessions(server, owner)
        } else {
            let mut sessions = server.sessions.sessions_of(owner);
            sessions.retain(|s| s.state().roster_requested);
            sessions
        };
        for session in recipients {
            let mut copy = stanza.clone();
            copy.set_attr("to", session.jid.as_str());
            let _ = session.deliver(copy, None).await;
        }
    }
}

/// Largest subscription request kept for re-delivery, as written out. A request carries a `<status/>`, a nickname
/// or an invitation token, all small; keeping only this much bounds what each login must send (up to
/// `pending_subscriptions_max` of them) and what the database holds.
const MAX_STORED_REQUEST_BYTES: usize = 2048;

/// The request as it is kept: from the contact's bare JID, with as many of its extensions as fit.
fn stored_request(stanza: &Element, contact: &str) -> Element {
    let mut request = Element::new("presence", ns::CLIENT)
        .with_attr("type", "subscribe")
        .with_attr("from", contact);
    let mut room = MAX_STORED_REQUEST_BYTES.saturating_sub(request.to_xml_string().len());
    for child in stanza.children() {
        let size = child.to_xml_string().len();
        if size <= room {
            room -= size;
            request.append_child(child.clone());
        }
    }
    request
}

/// The contact's side of the state machine (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3). Runs under the account's
/// roster lock.
async fn update_inbound(
    server: &Arc<Server>,
    owner: &str,
    stanza: &Element,
    kind: PresenceType,
    contact: &str,
) -> Result<FollowUp, StanzaError> {
    let roster = server.store.roster();
    let existing = roster.item(owner, contact).await.map_err(storage_failed)?;
    let mut item = existing.clone().unwrap_or_else(|| RosterItem::new(contact));
    let mut follow_up = FollowUp {
        deliver: true,
        ..FollowUp::default()
    };
    match kind {
        PresenceType::Subscribe => {
            if item.subscription.has_from() {
                // Already approved: the server answers for the user, and shows its presence again in case the
                // contact lost track of it.
                return Ok(FollowUp {
                    reply_subscribed: true,
                    send_presence: true,
                    ..FollowUp::default()
                });
            }
            if roster
                .has_pending_in(owner, contact)
                .await
                .map_err(storage_failed)?
            {
                // Asked already and not answered yet: no change, nothing shown again (RFC 6121 A.3.1).
                return Ok(FollowUp::default());
            }
            if item.approved {
                item.subscription = item.subscription.with_from(true);
                item.approved = false;
                save_item(server, owner, &item).await?;
                return Ok(FollowUp {
                    reply_subscribed: true,
                    send_presence: true,
                    ..FollowUp::default()
                });
            }
            // The request waits for an answer, shown now and at each login until then.
            let request = stored_request(stanza, contact);
            let max = server.config.limits.pending_subscriptions_max;
            roster
                .add_pending_in(owner, contact, &request.to_xml_string(), max)
                .await
                .map_err(storage_failed)?;
            return Ok(follow_up);
        }
        PresenceType::Subscribed => {
            if !item.ask {
                return Ok(FollowUp::default());
            }
            item.subscription = item.subscription.with_to(true);
            item.ask = false;
        }
        PresenceType::Unsubscribe => {
            let pending = roster
                .has_pending_in(owner, contact)
                .await
                .map_err(storage_failed)?;
            if !item.subscription.has_from() && !pending {
                return Ok(FollowUp::default());
            }
            follow_up.clear_pending = pending;
            follow_up.send_unavailable = item.subscription.has_from();
            item.subscription = item.subscription.with_from(false);
            item.approved = false;
        }
        PresenceType::Unsubscribed => {
            if !item.subscription.has_to() && !item.ask {
                return Ok(FollowUp::default());
            }
            item.subscription = item.subscription.with_to(false);
            item.ask = false;
        }
        _ => return Ok(FollowUp::default()),
    }
    // Only an item the account has changes; a contact cannot add itself to someone's roster.
    if existing.is_some() && existing.as_ref() != Some(&item) {
        save_item(server, owner, &item).await?;
    }
    if follow_up.clear_pending {
        roster
            .remove_pending_in(owner, contact)
            .await
            .map_err(storage_failed)?;
    }
    Ok(follow_up)
}

/// Presence to the server's own domain: like Prosody, it approves a subscription to itself and answers probes as
/// always available, so a roster item for the domain does not stay pending for ever.
async fn answer_for_host(server: &Arc<Server>, event: &StanzaEvent, kind: PresenceType) {
    let reply_type = match kind {
        PresenceType::Subscribe => Some("subscribed"),
        PresenceType::Probe => None,
        _ => return,
    };
    let Ok(host) = Jid::new(&server.domain) else {
        return;
    };
    let mut reply = Element::new("presence", ns::CLIENT);
    if let Some(reply_type) = reply_type {
        reply.set_attr("type", reply_type);
    }
    let to = if kind == PresenceType::Subscribe {
        event.from.to_bare().to_string()
    } else {
        event.from.to_string()
    };
    send_to(server, &reply, &host, &to, &Origin::Local).await;
    if kind == PresenceType::Subscribe {
        send_to(
            server,
            &Element::new("presence", ns::CLIENT),
            &host,
            &to,
            &Origin::Local,
        )
        .await;
    }
}

/// A probe for a local account's presence (RFC 6121 §4.3.2).
async fn answer_probe(server: &Arc<Server>, owner: &str, prober: &Jid, origin: &Origin) {
    let prober_bare = prober.to_bare();
    let own = prober.node().map(|n| n.as_str()) == Some(owner)
        && prober.domain().as_str() == server.domain;
    let subscribed = own
        || match server
            .store
            .roster()
            .subscription(owner, prober_bare.as_str())
            .await
        {
            Ok(subscription) => subscription.has_from(),
            Err(err) => {
                warn!(%err, "roster unavailable; probe not answered");
                return;
            }
        };
    if !subscribed {
        // Not allowed to see it: the prober's server learns that its subscription is gone (as Prosody does).
        send_from_bare(server, owner, prober_bare.as_str(), "unsubscribed").await;
        return;
    }
    let sessions = available_sessions(server, owner);
    if sessions.is_empty() {
        send_from_bare(server, owner, prober.as_str(), "unavailable").await;
        return;
    }
    for session in sessions {
        let presence = session.state().presence.clone();
        if let Some(presence) = presence {
            let from = Jid::from(session.jid.clone());
            send_to(server, &presence, &from, prober.as_str(), origin).await;
        }
    }
}

/// Sends the current presence of each of the account's available resources to a contact (after it was allowed
/// to see them).
pub(crate) async fn send_available_presences(server: &Arc<Server>, username: &str, contact: &str) {
    for session in available_sessions(server, username) {
        let presence = session.state().presence.clone();
        if let Some(presence) = presence {
            let from = Jid::from(session.jid.clone());
            send_to(server, &presence, &from, contact, &Origin::Local).await;
        }
    }
}

/// Tells a contact that each of the account's available resources is gone for it (its subscription ended).
pub(crate) async fn send_unavailable_presences(
    server: &Arc<Server>,
    username: &str,
    contact: &str,
) {
    for session in available_sessions(server, username) {
        let presence = Element::new("presence", ns::CLIENT).with_attr("type", "unavailable");
        let from = Jid::from(session.jid.clone());
        send_to(server, &presence, &from, contact, &Origin::Local).await;
    }
}

/// Sends a copy of `presence` from `from` to `to` through the router.
async fn send_to(server: &Arc<Server>, presence: &Element, from: &Jid, to: &str, origin: &Origin) {
    let Ok(to) = Jid::new(to) else { return };
    let mut copy = presence.clone();
    copy.set_attr("from", from.as_str());
    copy.set_attr("to", to.as_str());
    server
        .route(
            StanzaKind::Presence,
            copy,
            from.clone(),
            Some(to),
            origin.clone(),
        )
        .await;
}

/// Sends a presence of type `kind` from the account's bare JID to `to`, through the router.
pub(crate) async fn send_from_bare(server: &Arc<Server>, username: &str, to: &str, kind: &str) {
    let Ok(from) = BareJid::new(&format!("{username}@{}", server.domain)) else {
        return;
    };
    let presence = Element::new("presence", ns::CLIENT).with_attr("type", kind);
    send_to(server, &presence, &Jid::from(from), to, &Origin::Local).await;
}

fn available_sessions(server: &Server, username: &str) -> Vec<Arc<Session>> {
    let mut sessions = server.sessions.sessions_of(username);
    sessions.retain(|s| s.available_priority().is_some());
    sessions
}

fn is_own(session: &Session, jid: &BareJid) -> bool {
    *jid == session.bare_jid()
}

/// The `<priority/>` of a presence (RFC 6121 §4.7.2.3): -128..=127, 0 when absent or unreadable.
fn priority_of(presence: &Element) -> i8 {
    presence
        .get_child("priority", ns::CLIENT)
        .and_then(|p| p.text().trim().parse::<i64>().ok())
        .map_or(0, |p| i8::try_from(p.clamp(-128, 127)).unwrap_or(0))
}

/// XEP-0115 capabilities announced in a presence.
fn caps_of(presence: &Element) -> Option<Caps> {
    let c = presence.get_child("c", NS_CAPS)?;
    Some(Caps {
        node: c.attr("node")?.to_owned(),
        ver: c.attr("ver")?.to_owned(),
        hash: c.attr("hash").unwrap_or("sha-1").to_owned(),
    })
}

async fn reject(server: &Server, stanza: &Element, condition: StanzaCondition, text: &str) {
    server
        .bounce(stanza, StanzaError::with_text(condition, text))
        .await;
}

fn storage_failed(err: StoreError) -> StanzaError {
    warn!(%err, "roster storage failed");
    StanzaError::new(StanzaCondition::InternalServerError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_clamped_and_default_to_zero() {
        let with = |p: &str| {
            Element::new("presence", ns::CLIENT)
                .with_child(Element::new("priority", ns::CLIENT).with_text(p))
        };
        assert_eq!(priority_of(&with("5")), 5);
        assert_eq!(priority_of(&with(" -3 ")), -3);
        assert_eq!(priority_of(&with("1000")), 127);
        assert_eq!(priority_of(&with("-1000")), -128);
        assert_eq!(priority_of(&with("high")), 0);
        assert_eq!(priority_of(&Element::new("presence", ns::CLIENT)), 0);
    }

    #[test]
    fn stored_requests_parse_back() {
        let request = Element::new("presence", ns::CLIENT)
            .with_attr("type", "subscribe")
            .with_attr("from", "bob@example.com")
            .with_child(Element::new("status", ns::CLIENT).with_text("it's me & <you>"));
        let back = rookery_xml::parse_element(&request.to_xml_string()).unwrap();
        assert_eq!(back.attr("from"), Some("bob@example.com"));
        assert_eq!(
            back.get_child("status", ns::CLIENT).unwrap().text(),
            "it's me & <you>"
        );
    }
}
