//! RFC 6121 §2: the roster. Get (with versioning, §2.6), set and remove, pushes to every resource that asked for
//! its roster, and the checks on items. Subscription states change in the presence module; both write through
//! [`save_item`] so that every change is stored and pushed the same way.

use std::sync::Arc;

use jid::BareJid;
use rookery_core::{
    BoxFuture, Handled, IqHandler, IqOutcome, IqRequest, Module, Origin, Registry, Server,
    StanzaEvent, StanzaHandler, StanzaHook, Target,
};
use rookery_proto::stanza::new_iq;
use rookery_proto::{IqType, StanzaCondition, StanzaError, StanzaKind};
use rookery_store::{RosterItem, StoreError};
use rookery_xml::Element;
use tracing::warn;

pub const NS_ROSTER: &str = "jabber:iq:roster";
const NS_ROSTER_VERSIONING: &str = "urn:xmpp:features:rosterver";
const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";

/// Longest item name and group name, in bytes. RFC 6121 leaves it to the server; 1 KiB is far beyond any real
/// contact or group name and keeps a full roster of the largest size small.
pub const MAX_NAME_BYTES: usize = 1024;
/// Most groups one item may be in.
pub const MAX_GROUPS_PER_ITEM: usize = 64;

pub struct RosterModule;

impl Module for RosterModule {
    fn name(&self) -> &'static str {
        "roster"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let handler: Arc<dyn IqHandler> = Arc::new(RosterIq);
        for iq_type in [IqType::Get, IqType::Set] {
            for target in [Target::Own, Target::Bare] {
                registry
                    .hooks
                    .on_iq(iq_type, target, NS_ROSTER, "query", 0, Arc::clone(&handler));
            }
        }
        // Roster pushes come only from the user's own server (RFC 6121 §2.1.6). A client that forgets to check
        // `from` would take one routed from someone else as its roster: such IQs never reach a client.
        registry.hooks.on_stanza(
            StanzaHook::Deliver(StanzaKind::Iq, Target::Full),
            50,
            Arc::new(SpoofedPushGuard),
        );
        registry
            .stream_features
            .push(Element::new("ver", NS_ROSTER_VERSIONING));
        registry
            .stream_features
            .push(Element::new("sub", NS_PRE_APPROVAL));
    }
}

struct RosterIq;

struct SpoofedPushGuard;

impl StanzaHandler for SpoofedPushGuard {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            let is_push = event.stanza.attr("type") == Some("set")
                && event
                    .stanza
                    .first_child()
                    .is_some_and(|c| c.is("query", NS_ROSTER));
            if !is_push || event.from.to_bare() == event.to.to_bare() {
                return Handled::Pass;
            }
            let error = StanzaError::with_text(
                StanzaCondition::Forbidden,
                "only the user's own server changes its roster",
            );
            server.bounce(&event.stanza, error).await;
            Handled::Yes
        })
    }
}

impl IqHandler for RosterIq {
    fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome> {
        Box::pin(async move {
            // RFC 6121 §2.1.5: only the account's own client may read or change its roster.
            let Origin::Client(session) = request.origin else {
                return IqOutcome::Error(StanzaError::new(StanzaCondition::Forbidden));
            };
            if request.to.node().map(|n| n.as_str()) != Some(session.username()) {
                return IqOutcome::Error(StanzaError::with_text(
                    StanzaCondition::Forbidden,
                    "a roster belongs to its account alone",
                ));
            }
            let Some(query) = request.payload() else {
                return IqOutcome::Error(StanzaError::new(StanzaCondition::BadRequest));
            };
            let username = session.username();
            let result = if IqType::of(request.stanza) == Some(IqType::Get) {
                session.state().roster_requested = true;
                // The result is queued before the lock is released, so no push of a later version can overtake
                // it: a client applying them in order never ends with an older roster under a newer `ver`.
                let _lock = lock_roster(username).await;
                match get(request.server, username, query).await {
                    Ok(payload) => {
                        let mut reply = rookery_proto::stanza::iq_result(request.stanza);
                        if let Some(payload) = payload {
                            reply.append_child(payload);
                        }
                        request.server.send_local(reply, request.origin).await;
                        return IqOutcome::Answered;
                    }
                    Err(err) => Err(err),
                }
            } else {
                set(request.server, username, query).await
            };
            match result {
                Ok(payload) => IqOutcome::Result(payload),
                Err(err) => IqOutcome::Error(err),
            }
        })
    }
}

/// A roster get: the whole roster, or nothing when the client's `ver` is current (RFC 6121 §2.6.3: the changes
/// since then would come as pushes, and there are none).
async fn get(
    server: &Arc<Server>,
    username: &str,
    query: &Element,
) -> Result<Option<Element>, StanzaError> {
    let store = server.store.roster();
    if let Some(known) = query.attr("ver") {
        let current = store.version(username).await.map_err(internal)?;
        if known == current.to_string() {
            return Ok(None);
        }
    }
    let roster = store.get(username).await.map_err(internal)?;
    let mut result = Element::new("query", NS_ROSTER).with_attr("ver", roster.version.to_string());
    for item in &roster.items {
        result.append_child(item_element(item));
    }
    Ok(Some(result))
}

/// A roster set: one item, added, updated or removed.
async fn set(
    server: &Arc<Server>,
    username: &str,
    query: &Element,
) -> Result<Option<Element>, StanzaError> {
    let mut items = query.children().filter(|c| c.is("item", NS_ROSTER));
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(StanzaError::with_text(
            StanzaCondition::BadRequest,
            "a roster set carries exactly one item",
        ));
    };
    let contact = item
        .attr("jid")
        .and_then(|j| BareJid::new(j).ok())
        .ok_or_else(|| StanzaError::with_text(StanzaCondition::JidMalformed, "invalid 'jid'"))?;
    if contact.node().map(|n| n.as_str()) == Some(username)
        && contact.domain().as_str() == server.domain
    {
        return Err(StanzaError::with_text(
            StanzaCondition::NotAllowed,
            "your own JID cannot be in your roster",
        ));
    }
    let contact = contact.to_string();
    if item.attr("subscription") == Some("remove") {
        return remove(server, username, &contact).await.map(|()| None);
    }
    let name = item.attr("name").filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.len() > MAX_NAME_BYTES) {
        return Err(StanzaError::with_text(
            StanzaCondition::NotAcceptable,
            format!("a name has at most {MAX_NAME_BYTES} bytes"),
        ));
    }
    let mut groups = Vec::new();
    for group in item.children().filter(|c| c.is("group", NS_ROSTER)) {
        if groups.len() == MAX_GROUPS_PER_ITEM {
            return Err(StanzaError::with_text(
                StanzaCondition::NotAcceptable,
                format!("an item is in at most {MAX_GROUPS_PER_ITEM} groups"),
            ));
        }
        let group = group.text();
        if group.is_empty() || group.len() > MAX_NAME_BYTES {
            return Err(StanzaError::with_text(
                StanzaCondition::NotAcceptable,
                format!("a group name has 1 to {MAX_NAME_BYTES} bytes"),
            ));
        }
        if groups.contains(&group) {
            return Err(StanzaError::with_text(
                StanzaCondition::BadRequest,
                "the same group twice",
            ));
        }
        groups.push(group);
    }
    groups.sort();
    let _lock = lock_roster(username).await;
    // The client sets the name and groups only; subscription state is the server's (RFC 6121 §2.1.2.5).
    let existing = server
        .store
        .roster()
        .item(username, &contact)
        .await
        .map_err(internal)?;
    let mut updated = existing.unwrap_or_else(|| RosterItem::new(contact));
    updated.name = name.map(str::to_owned);
    updated.groups = groups;
    save_item(server, username, &updated).await?;
    Ok(None)
}

/// Removes a contact (RFC 6121 §2.5.2): its subscriptions both ways are cancelled, and it is told so.
async fn remove(server: &Arc<Server>, username: &str, contact: &str) -> Result<(), StanzaError> {
    let (existing, had_pending_in) = {
        let _lock = lock_roster(username).await;
        let roster = server.store.roster();
        let existing = roster.item(username, contact).await.map_err(internal)?;
        if let Some(existing) = &existing {
            let version = roster
                .remove(username, contact)
                .await
                .map_err(internal)?
                .unwrap_or(0);
            push(server, username, existing, version, true).await;
        }
        let had_pending_in = roster
            .remove_pending_in(username, contact)
            .await
            .map_err(internal)?;
        (existing, had_pending_in)
    };
    // The contact is told after the lock is released (see `lock_roster`).
    let (has_to, has_from) = match &existing {
        Some(item) => (
            item.subscription.has_to() || item.ask,
            item.subscription.has_from(),
        ),
        None if had_pending_in => (false, false),
        None => return Err(StanzaError::new(StanzaCondition::ItemNotFound)),
    };
    if has_to {
        crate::presence::send_from_bare(server, username, contact, "unsubscribe").await;
    }
    if has_from || had_pending_in {
        // Ends its subscription, or declines the request the user never answered.
        crate::presence::send_from_bare(server, username, contact, "unsubscribed").await;
    }
    if has_from {
        // It saw the user's resources: it sees them go (RFC 6121 §3.2.2).
        crate::presence::send_unavailable_presences(server, username, contact).await;
    }
    Ok(())
}

/// Stores an item and pushes it to the account's interested resources.
pub async fn save_item(
    server: &Arc<Server>,
    username: &str,
    item: &RosterItem,
) -> Result<(), StanzaError> {
    let max = server.config.limits.roster_max_items;
    let version = match server.store.roster().put(username, item, max).await {
        Ok(version) => version,
        Err(StoreError::LimitReached(text)) => {
            return Err(StanzaError::with_text(
                StanzaCondition::ResourceConstraint,
                text,
            ));
        }
        Err(err) => return Err(internal(err)),
    };
    push(server, username, item, version, false).await;
    Ok(())
}

/// A roster push (RFC 6121 §2.1.6) to every resource of the account that has asked for its roster.
pub(crate) async fn push(
    server: &Arc<Server>,
    username: &str,
    item: &RosterItem,
    version: i64,
    removed: bool,
) {
    let mut element = item_element(item);
    if removed {
        element.set_attr("subscription", "remove");
        element.remove_attr("ask");
        element.remove_attr("approved");
    }
    let query = Element::new("query", NS_ROSTER)
        .with_attr("ver", version.to_string())
        .with_child(element);
    for session in server.sessions.sessions_of(username) {
        if !session.state().roster_requested {
            continue;
        }
        let id = format!("push{:x}", rand::random::<u64>());
        let iq = new_iq(IqType::Set, &id)
            .with_attr("to", session.jid.as_str())
            .with_child(query.clone());
        // The server's own stanza: never waits on the queue; a stalled client is closed instead.
        let _ = session.deliver(iq, None).await;
    }
}

/// A roster item as it appears in results and pushes.
pub fn item_element(item: &RosterItem) -> Element {
    let mut el = Element::new("item", NS_ROSTER)
        .with_attr("jid", item.contact.as_str())
        .with_attr("subscription", item.subscription.as_str());
    if let Some(name) = &item.name {
        el.set_attr("name", name.as_str());
    }
    if item.ask {
        el.set_attr("ask", "subscribe");
    }
    if item.approved {
        el.set_attr("approved", "true");
    }
    for group in &item.groups {
        el.append_child(Element::new("group", NS_ROSTER).with_text(group.as_str()));
    }
    el
}

/// Serialises the read-modify-write changes to one account's roster: two of its resources (or a resource and a
/// contact) answering at once would otherwise each write back what they read. Striped, so the locks take fixed
/// memory. Never hold one while routing: the recipient's handler may need another (or the same) stripe.
pub(crate) async fn lock_roster(username: &str) -> tokio::sync::MutexGuard<'static, ()> {
    let stripes = roster_lock_stripes();
    stripes[stripe_of(username)].lock().await
}

/// Locks the rosters of many accounts at once (a circle's members), taking their stripes in ascending order so
/// that two such callers cannot deadlock; single-account callers take one stripe and never wait while holding it.
pub(crate) async fn lock_rosters<'a>(
    usernames: impl IntoIterator<Item = &'a str>,
) -> Vec<tokio::sync::MutexGuard<'static, ()>> {
    let mut indices: Vec<usize> = usernames.into_iter().map(stripe_of).collect();
    indices.sort_unstable();
    indices.dedup();
    let stripes = roster_lock_stripes();
    let mut guards = Vec::with_capacity(indices.len());
    for index in indices {
        guards.push(stripes[index].lock().await);
    }
    guards
}

fn roster_lock_stripes() -> &'static [tokio::sync::Mutex<()>] {
    static STRIPES: std::sync::LazyLock<Vec<tokio::sync::Mutex<()>>> =
        std::sync::LazyLock::new(|| {
            (0..ROSTER_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect()
        });
    &STRIPES
}

fn stripe_of(username: &str) -> usize {
    use std::hash::BuildHasher;
    static HASHER: std::sync::LazyLock<std::collections::hash_map::RandomState> =
        std::sync::LazyLock::new(std::collections::hash_map::RandomState::new);
    usize::try_from(HASHER.hash_one(username) % ROSTER_LOCK_STRIPES as u64).unwrap_or(0)
}

const ROSTER_LOCK_STRIPES: usize = 64;

fn internal(err: StoreError) -> StanzaError {
    warn!(%err, "roster storage failed");
    StanzaError::new(StanzaCondition::InternalServerError)
}
