//! XEP-0313 message archive management (`urn:xmpp:mam:2` with the `#extended` query fields), XEP-0359 stanza ids
//! and XEP-0059 paging, with the behaviour of Prosody 0.12's mod_mam, which Snikket runs.
//!
//! What is archived (Prosody's `should_store`): chat and normal messages with a body, a subject, an encrypted
//! payload (XEP-0380), a receipt (XEP-0184), a chat marker (XEP-0333), a room invitation or a call (XEP-0353);
//! `<store/>` (XEP-0334) forces archiving, `<no-store/>` and `<no-permanent-store/>` prevent it. Never: headlines,
//! errors, groupchat (rooms keep their own archive), messages that carry only chat states. Chat states are taken
//! out of the archived copy. The account's preferences (`always`/`never` lists, then the default: `always`,
//! `never` or `roster`) decide last.
//!
//! Where:
//! - the sender's copy, in the sender's archive, when a local client sends (`Pre(Message)`);
//! - the recipient's copy, in the recipient's archive, at delivery to a local account (`Deliver` at priority 10,
//!   before carbons at 0 and delivery at -1), stamped `<stanza-id by='recipient' id='…'/>` before anyone sees it;
//!   any stanza id a sender forged in the recipient's name is removed first.
//!
//! A message to one's own account is archived once, at its delivery. A message re-routed after its session ended
//! ([`Origin::Rerouted`]) passed the delivery hooks already and is not archived again. The sender's stanza id is
//! stamped for the modules that copy the sent message to the sender's other clients (carbons), and removed again
//! before the message leaves (priority -1), so that the recipient never learns the sender's archive ids (as
//! Prosody does).
//!
//! Queries are answered only for one's own account (Prosody's `iq/self`): to another account the router answers
//! `service-unavailable`. A page holds at most `max_archive_query_results` messages (a larger `max` is clamped),
//! and stops early once its messages reach `session_queue_bytes`, so that a page of large messages always fits
//! the session's queue; `complete` is then not set and the client pages on. RSM `<count/>` is given when it costs
//! nothing: when the page holds the whole result (complete, with no page key).
//!
//! Retention: [`run_archive_cleanup`] deletes messages older than `SNIKKET_RETENTION_DAYS` every
//! `archive_cleanup_interval`.

use std::sync::Arc;

use jid::Jid;
use rookery_core::{
    BoxFuture, Handled, IqOutcome, IqRequest, Module, Origin, Registry, Server, StanzaEvent,
    StanzaHandler, StanzaHook, Target,
};
use rookery_proto::stanza::MessageType;
use rookery_proto::{IqType, StanzaCondition, StanzaError, StanzaKind};
use rookery_store::{
    ArchiveDefault, ArchivePrefs, ArchiveQuery, Archived, NewArchived, QueryOutcome,
};
use rookery_xml::{Element, ns};
use tracing::{debug, info, warn};

use crate::forms::{Field, FieldKind, Form, FormKind};
use crate::offline::parse_stored;
use crate::support::{AsyncIq, storage_failed};

pub const NS_MAM: &str = "urn:xmpp:mam:2";
pub const NS_MAM_EXTENDED: &str = "urn:xmpp:mam:2#extended";
pub const NS_STANZA_ID: &str = "urn:xmpp:sid:0";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_DELAY: &str = "urn:xmpp:delay";
const NS_HINTS: &str = "urn:xmpp:hints";
const NS_CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";

/// Runs before carbons (0) and delivery (-1): the stanza id must be on the message before anyone copies it.
const ARCHIVE_PRIORITY: i32 = 10;
/// Runs after everything else that sees a sent message (carbons copy it with the sender's stanza id), before it is
/// routed: Prosody's -1.
const STRIP_PRIORITY: i32 = -1;

/// Prosody's page size when the client gives no `max`.
const DEFAULT_PAGE: usize = 20;

pub struct MamModule;

impl Module for MamModule {
    fn name(&self) -> &'static str {
        "mam"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        // Clients look for these on their own account (disco#info to their bare JID).
        for feature in [NS_MAM, NS_MAM_EXTENDED, NS_STANZA_ID] {
            registry.disco.add_account_feature(feature);
        }
        let message = StanzaKind::Message;
        registry.hooks.on_stanza(
            StanzaHook::Pre(message),
            ARCHIVE_PRIORITY,
            Arc::new(ArchiveSent),
        );
        registry.hooks.on_stanza(
            StanzaHook::Pre(message),
            STRIP_PRIORITY,
            Arc::new(StripSendersId),
        );
        for target in [Target::Bare, Target::Full, Target::Own] {
            registry.hooks.on_stanza(
                StanzaHook::Deliver(message, target),
                ARCHIVE_PRIORITY,
                Arc::new(ArchiveReceived),
            );
        }
        let iq = |registry: &mut Registry, iq_type, name, handler: AsyncIq| {
            registry
                .hooks
                .on_iq(iq_type, Target::Own, NS_MAM, name, 0, Arc::new(handler));
        };
        iq(registry, IqType::Set, "query", AsyncIq(query));
        iq(registry, IqType::Get, "query", AsyncIq(query_form));
        iq(registry, IqType::Get, "prefs", AsyncIq(prefs));
        iq(registry, IqType::Set, "prefs", AsyncIq(prefs));
        iq(registry, IqType::Get, "metadata", AsyncIq(metadata));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Archiving

/// The sender's copy of a message a local client sends.
struct ArchiveSent;

impl StanzaHandler for ArchiveSent {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            let Origin::Client(session) = &event.origin else {
                return Handled::Pass;
            };
            let owner = session.username().to_owned();
            let own_bare = session.jid.to_bare();
            // To one's own account: archived once, when it is delivered.
            if event.to.to_bare() == own_bare {
                return Handled::Pass;
            }
            strip_stanza_ids_by(&mut event.stanza, own_bare.as_str());
            let peer = event.to.clone();
            if let Some(id) = archive(server, &owner, &peer, &event.stanza).await {
                event.stanza.append_child(stanza_id(own_bare.as_str(), &id));
            }
            Handled::Pass
        })
    }
}

/// Takes the sender's own stanza id off a sent message before it leaves, once the modules that copy it to the
/// sender's other clients have seen it.
struct StripSendersId;

impl StanzaHandler for StripSendersId {
    fn handle<'a>(
        &'a self,
        _server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            if let Origin::Client(session) = &event.origin {
                strip_stanza_ids_by(&mut event.stanza, session.jid.to_bare().as_str());
            }
            Handled::Pass
        })
    }
}

/// The recipient's copy of a message delivered to a local account.
struct ArchiveReceived;

impl StanzaHandler for ArchiveReceived {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            // Already through these hooks once, before the session it was queued for ended.
            if matches!(event.origin, Origin::Rerouted) {
                return Handled::Pass;
            }
            let Some(owner) = event.to.node().map(|n| n.as_str().to_owned()) else {
                return Handled::Pass;
            };
            let archive_jid = event.to.to_bare();
            // Only the archive's own ids may say they are ours; anything else claiming so is forged.
            strip_stanza_ids_by(&mut event.stanza, archive_jid.as_str());
            let peer = event.from.clone();
            if let Some(id) = archive(server, &owner, &peer, &event.stanza).await {
                event
                    .stanza
                    .append_child(stanza_id(archive_jid.as_str(), &id));
            }
            Handled::Pass
        })
    }
}

/// Archives `stanza` in `owner`'s archive, as exchanged with `peer`, if the rules and the owner's preferences
/// say so. Returns the stanza id it was given.
async fn archive(server: &Server, owner: &str, peer: &Jid, stanza: &Element) -> Option<String> {
    if let Err(why) = should_store(stanza) {
        debug!(%owner, why, "not archiving");
        return None;
    }
    let stored = without_chat_states(stanza);
    let peer_bare = peer.to_bare();
    match wants_archived(server, owner, peer_bare.as_str()).await {
        Ok(true) => {}
        Ok(false) => {
            debug!(%owner, "not archiving: preferences");
            return None;
        }
        Err(err) => {
            warn!(%err, %owner, "cannot read archiving preferences; not archiving");
            return None;
        }
    }
    let xml = stored.to_xml_string();
    let message = NewArchived {
        owner,
        with_bare: peer_bare.as_str(),
        with_resource: peer.resource().map(|r| r.as_str()),
        stanza: &xml,
        archived_at: unix_millis_now(),
    };
    match server.store.archive().append(&message).await {
        Ok(Some(id)) => Some(id),
        // Not an account (a message to a user who does not exist): nothing to archive into.
        Ok(None) => None,
        Err(err) => {
            warn!(%err, %owner, "cannot archive a message");
            None
        }
    }
}

/// Prosody's rules of what is worth archiving; `Err` says why not.
fn should_store(stanza: &Element) -> Result<(), &'static str> {
    match MessageType::of(stanza) {
        MessageType::Headline => return Err("headline"),
        MessageType::Error => return Err("error"),
        MessageType::Groupchat => return Err("groupchat"),
        MessageType::Chat | MessageType::Normal => {}
    }
    let has = |name: &str, ns: &str| stanza.has_child(name, ns);
    let has_ns = |ns: &str| stanza.children().any(|c| c.ns() == ns);
    if has("no-store", NS_HINTS) || has("no-permanent-store", NS_HINTS) {
        return Err("hint");
    }
    let worth = has("store", NS_HINTS)
        || has("body", ns::CLIENT)
        || has("subject", ns::CLIENT)
        || has("encryption", "urn:xmpp:eme:0")
        || has_ns("urn:xmpp:receipts")
        || has_ns("urn:xmpp:chat-markers:0")
        || has("x", "jabber:x:conference")
        || stanza
            .get_child("x", "http://jabber.org/protocol/muc#user")
            .is_some_and(|x| x.has_child("invite", "http://jabber.org/protocol/muc#user"))
        || has_ns("urn:xmpp:jingle-message:0")
        || has_ns("urn:xmpp:jingle-message:1");
    if worth {
        Ok(())
    } else {
        Err("nothing worth archiving")
    }
}

/// The copy that is archived: chat states are of the moment, not history.
fn without_chat_states(stanza: &Element) -> Element {
    let mut stored = stanza.clone();
    stored.retain_children(|c| c.ns() != NS_CHAT_STATES);
    stored
}

/// What the owner's preferences say about archiving messages with `peer_bare`.
async fn wants_archived(
    server: &Server,
    owner: &str,
    peer_bare: &str,
) -> Result<bool, rookery_store::StoreError> {
    let rule = server.store.archive().rule_for(owner, peer_bare).await?;
    if let Some(listed) = rule.listed {
        return Ok(listed);
    }
    match rule.default {
        ArchiveDefault::Always => Ok(true),
        ArchiveDefault::Never => Ok(false),
        ArchiveDefault::Roster => Ok(server
            .store
            .roster()
            .item(owner, peer_bare)
            .await?
            .is_some()),
    }
}

/// Removes every `<stanza-id/>` whose `by` is `by` (a bare JID of ours).
fn strip_stanza_ids_by(stanza: &mut Element, by: &str) {
    let claims = |c: &Element| {
        c.is("stanza-id", NS_STANZA_ID)
            && c.attr("by")
                .and_then(|b| Jid::new(b).ok())
                .is_some_and(|b| b.as_str() == by)
    };
    if stanza.children().any(claims) {
        stanza.retain_children(|c| !claims(c));
    }
}

fn stanza_id(by: &str, id: &str) -> Element {
    Element::new("stanza-id", NS_STANZA_ID)
        .with_attr("by", by)
        .with_attr("id", id)
}

// ---------------------------------------------------------------------------------------------------------------
// Queries

/// The query form (XEP-0313 §5.1): the fields this archive can filter by.
fn query_form(_req: IqRequest<'_>) -> BoxFuture<'_, IqOutcome> {
    let field = |var: &str, kind| Field::new(var, kind);
    let form = Form::with_form_type(FormKind::Form, NS_MAM)
        .with_field(field("with", FieldKind::JidSingle))
        .with_field(field("start", FieldKind::TextSingle))
        .with_field(field("end", FieldKind::TextSingle))
        .with_field(field("before-id", FieldKind::TextSingle))
        .with_field(field("after-id", FieldKind::TextSingle))
        .with_field(field("ids", FieldKind::ListMulti));
    Box::pin(std::future::ready(IqOutcome::Result(Some(
        Element::new("query", NS_MAM).with_child(form.to_element()),
    ))))
}

/// A query, read and checked.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    query: ArchiveQuery,
    /// Send the page in the opposite of the order it was read in (Prosody's `flip`).
    flip: bool,
    /// The RSM page size asked for (clamped).
    max: usize,
    /// Whether the page starts from an id (then a complete page is not the whole result and has no count).
    keyed: bool,
}

fn bad_request(text: impl Into<String>) -> StanzaError {
    StanzaError::with_text(StanzaCondition::BadRequest, text)
}

/// Reads a `<query xmlns='urn:xmpp:mam:2'/>`.
fn parse_query(query: &Element, max_page: usize) -> Result<Request, StanzaError> {
    let mut q = ArchiveQuery::default();
    if let Some(x) = query.get_child("x", "jabber:x:data") {
        let form = Form::parse(x).map_err(|e| bad_request(e.to_string()))?;
        form.check_form_type(NS_MAM)
            .map_err(|e| bad_request(e.to_string()))?;
        for field in &form.fields {
            let var = field.var.as_deref().unwrap_or("");
            // An empty field is no filter (clients send the whole form with blanks).
            let value = field.values.first().map(String::as_str).unwrap_or("");
            match var {
                "FORM_TYPE" => {}
                "with" if !value.is_empty() => {
                    let jid = Jid::new(value.trim())
                        .map_err(|_| bad_request(format!("'with' is not a JID: {value:?}")))?;
                    q.with_bare = Some(jid.to_bare().as_str().to_owned());
                    q.with_resource = jid.resource().map(|r| r.as_str().to_owned());
                }
                "start" if !value.is_empty() => q.start = Some(parse_datetime(var, value)?),
                "end" if !value.is_empty() => q.end = Some(parse_datetime(var, value)?),
                "before-id" if !value.is_empty() => q.before_id = Some(value.to_owned()),
                "after-id" if !value.is_empty() => q.after_id = Some(value.to_owned()),
                "ids" => {
                    q.ids = field
                        .values
                        .iter()
                        .filter(|v| !v.is_empty())
                        .cloned()
                        .collect();
                    if q.ids.len() > max_page {
                        return Err(bad_request(format!(
                            "at most {max_page} ids can be asked for at once"
                        )));
                    }
                }
                "with" | "start" | "end" | "before-id" | "after-id" => {}
                other => {
                    return Err(bad_request(format!(
                        "this archive cannot filter by {other:?}"
                    )));
                }
            }
        }
    }
    let mut max = DEFAULT_PAGE;
    let mut keyed = q.after_id.is_some() || q.before_id.is_some();
    if let Some(set) = query.get_child("set", NS_RSM) {
        if set.has_child("index", NS_RSM) {
            // XEP-0059 §2.6: paging by index is optional; keyset paging cannot offer it cheaply.
            return Err(StanzaError::with_text(
                StanzaCondition::FeatureNotImplemented,
                "paging by index is not supported; page with 'after' and 'before'",
            ));
        }
        if let Some(el) = set.get_child("max", NS_RSM) {
            max = parse_max(&el.text())?;
        }
        // RSM keys take the place of the form's before-id/after-id, as in Prosody.
        if let Some(after) = set.get_child("after", NS_RSM).map(Element::text)
            && !after.is_empty()
        {
            q.after_id = Some(after);
            keyed = true;
        }
        if let Some(before) = set.get_child("before", NS_RSM).map(Element::text) {
            // An empty <before/> asks for the last page; otherwise the page before that id.
            q.newest_first = true;
            if !before.is_empty() {
                q.before_id = Some(before);
                keyed = true;
            }
        }
    }
    let max = max.min(max_page);
    q.limit = max + 1;
    let flip = q.newest_first != query.has_child("flip-page", NS_MAM);
    Ok(Request {
        query: q,
        flip,
        max,
        keyed,
    })
}

/// An RSM `max`: a non-negative integer; one too large for any integer is as good as the largest (it is clamped).
fn parse_max(text: &str) -> Result<usize, StanzaError> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request("'max' must be a non-negative integer"));
    }
    Ok(digits.parse().unwrap_or(usize::MAX))
}

/// A XEP-0082 date-time as unix milliseconds.
fn parse_datetime(var: &str, value: &str) -> Result<i64, StanzaError> {
    let parsed =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| bad_request(format!("'{var}' is not a XEP-0082 date-time: {value:?}")))?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| bad_request(format!("'{var}' is out of range")))
}

fn unix_millis_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn query(req: IqRequest<'_>) -> BoxFuture<'_, IqOutcome> {
    Box::pin(async move {
        let Some(query) = req.payload() else {
            return IqOutcome::Error(bad_request("no query"));
        };
        let limits = &req.server.config.limits;
        let request = match parse_query(query, limits.max_archive_query_results) {
            Ok(request) => request,
            Err(error) => return IqOutcome::Error(error),
        };
        let owner = crate::support::addressed_account(&req);
        let found = match req
            .server
            .store
            .archive()
            .query(owner, &request.query)
            .await
        {
            Ok(QueryOutcome::Found(found)) => found,
            Ok(QueryOutcome::UnknownId(id)) => {
                return IqOutcome::Error(StanzaError::with_text(
                    StanzaCondition::ItemNotFound,
                    format!("no message {id:?} in this archive"),
                ));
            }
            Err(err) => return storage_failed("an archive query", &err),
        };
        let page = Page::cut(found, request.max, limits.session_queue_bytes);
        let query_id = query.attr("queryid");
        let mut results: Vec<Element> = page
            .messages
            .iter()
            .filter_map(|m| result_message(&req, query_id, m))
            .collect();
        if request.flip {
            results.reverse();
        }
        for result in results {
            req.server.send_local(result, req.origin).await;
        }
        let fin = page.fin(request.query.newest_first, request.keyed);
        let reply = rookery_proto::stanza::iq_result_with(req.stanza, fin);
        req.server.send_local(reply, req.origin).await;
        IqOutcome::Answered
    })
}

/// The messages of one page, in the order they were read.
struct Page {
    messages: Vec<Archived>,
    complete: bool,
}

impl Page {
    /// At most `max` of the `max + 1` messages read (one more means there is more), and no more than `budget`
    /// bytes of them (at least one, which the stanza size limit bounds).
    fn cut(mut found: Vec<Archived>, max: usize, budget: usize) -> Self {
        let mut complete = found.len() <= max;
        found.truncate(max);
        let mut bytes = 0;
        let fits = found
            .iter()
            .position(|m| {
                bytes += m.stanza.len();
                bytes > budget
            })
            .map_or(found.len(), |over| over.max(1));
        if fits < found.len() {
            found.truncate(fits);
            complete = false;
        }
        Self {
            messages: found,
            complete,
        }
    }

    /// `<fin/>` with the RSM first and last ids in chronological order, whichever way the page was read.
    fn fin(&self, newest_first: bool, keyed: bool) -> Element {
        let mut fin = Element::new("fin", NS_MAM);
        if self.complete {
            fin.set_attr("complete", "true");
        }
        let mut set = Element::new("set", NS_RSM);
        let (mut first, mut last) = (self.messages.first(), self.messages.last());
        if newest_first {
            std::mem::swap(&mut first, &mut last);
        }
        if let (Some(first), Some(last)) = (first, last) {
            set.append_child(Element::new("first", NS_RSM).with_text(first.stanza_id.as_str()));
            set.append_child(Element::new("last", NS_RSM).with_text(last.stanza_id.as_str()));
        }
        // The whole result is this page: its size is the count, for free.
        if self.complete && !keyed {
            set.append_child(
                Element::new("count", NS_RSM).with_text(self.messages.len().to_string()),
            );
        }
        fin.with_child(set)
    }
}

/// `<message><result queryid id><forwarded><delay/><message/></forwarded></result></message>`, or `None` for a
/// row that cannot be read (logged; the rest of the page still goes).
fn result_message(
    req: &IqRequest<'_>,
    query_id: Option<&str>,
    archived: &Archived,
) -> Option<Element> {
    let Some(stanza) = parse_stored(&archived.stanza) else {
        warn!(id = %archived.stanza_id, "an archived message cannot be read; skipped");
        return None;
    };
    let forwarded = Element::new("forwarded", NS_FORWARD)
        .with_child(Element::new("delay", NS_DELAY).with_attr(
            "stamp",
            rookery_proto::datetime::xep0082_millis(archived.archived_at),
        ))
        .with_child(stanza);
    let mut result = Element::new("result", NS_MAM).with_attr("id", archived.stanza_id.as_str());
    if let Some(query_id) = query_id {
        result.set_attr("queryid", query_id);
    }
    Some(
        Element::new("message", ns::CLIENT)
            .with_attr("to", req.from.as_str())
            .with_attr("from", req.to.as_str())
            .with_child(result.with_child(forwarded)),
    )
}

/// `<metadata/>` (XEP-0313 §7.1): the first and last message of the archive, two index seeks.
fn metadata(req: IqRequest<'_>) -> BoxFuture<'_, IqOutcome> {
    Box::pin(async move {
        let owner = crate::support::addressed_account(&req);
        let mut metadata = Element::new("metadata", NS_MAM);
        for (name, newest_first) in [("start", false), ("end", true)] {
            let one = ArchiveQuery {
                newest_first,
                limit: 1,
                ..ArchiveQuery::default()
            };
            match req.server.store.archive().query(owner, &one).await {
                Ok(QueryOutcome::Found(found)) => {
                    if let Some(m) = found.first() {
                        metadata.append_child(
                            Element::new(name, NS_MAM)
                                .with_attr("id", m.stanza_id.as_str())
                                .with_attr(
                                    "timestamp",
                                    rookery_proto::datetime::xep0082_millis(m.archived_at),
                                ),
                        );
                    }
                }
                Ok(QueryOutcome::UnknownId(_)) => {}
                Err(err) => return storage_failed("reading archive metadata", &err),
            }
        }
        IqOutcome::Result(Some(metadata))
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Preferences

fn prefs(req: IqRequest<'_>) -> BoxFuture<'_, IqOutcome> {
    Box::pin(async move {
        let owner = crate::support::addressed_account(&req);
        let archive = req.server.store.archive();
        if IqType::of(req.stanza) == Some(IqType::Set) {
            let Some(el) = req.payload() else {
                return IqOutcome::Error(bad_request("no prefs"));
            };
            let new = match parse_prefs(el, req.server.config.limits.archive_prefs_max_jids) {
                Ok(new) => new,
                Err(error) => return IqOutcome::Error(error),
            };
            match archive.set_prefs(owner, &new).await {
                Ok(true) => {}
                Ok(false) => return crate::support::no_such_account(),
                Err(err) => return storage_failed("storing archive preferences", &err),
            }
        }
        match archive.prefs(owner).await {
            Ok(stored) => IqOutcome::Result(Some(prefs_element(&stored))),
            Err(err) => storage_failed("reading archive preferences", &err),
        }
    })
}

fn parse_prefs(el: &Element, max_jids: usize) -> Result<ArchivePrefs, StanzaError> {
    let default = el
        .attr("default")
        .and_then(ArchiveDefault::parse)
        .ok_or_else(|| bad_request("'default' must be always, never or roster"))?;
    let list = |name: &str| -> Result<Vec<String>, StanzaError> {
        let Some(list) = el.get_child(name, NS_MAM) else {
            return Ok(Vec::new());
        };
        list.children()
            .filter(|c| c.is("jid", NS_MAM))
            .map(|c| {
                let text = c.text();
                Jid::new(text.trim())
                    .map(|j| j.as_str().to_owned())
                    .map_err(|_| {
                        StanzaError::with_text(
                            StanzaCondition::JidMalformed,
                            format!("not a JID: {text:?}"),
                        )
                    })
            })
            .collect()
    };
    let prefs = ArchivePrefs {
        default,
        always: list("always")?,
        never: list("never")?,
    };
    if prefs.always.len() + prefs.never.len() > max_jids {
        return Err(StanzaError::with_text(
            StanzaCondition::PolicyViolation,
            format!("at most {max_jids} JIDs in the archiving preferences"),
        ));
    }
    Ok(prefs)
}

fn prefs_element(prefs: &ArchivePrefs) -> Element {
    let list = |name: &str, jids: &[String]| {
        let mut el = Element::new(name, NS_MAM);
        for jid in jids {
            el.append_child(Element::new("jid", NS_MAM).with_text(jid.as_str()));
        }
        el
    };
    Element::new("prefs", NS_MAM)
        .with_attr("default", prefs.default.as_str())
        .with_child(list("always", &prefs.always))
        .with_child(list("never", &prefs.never))
}

// ---------------------------------------------------------------------------------------------------------------
// Retention

/// Deletes the messages archived before `now_millis` minus the retention. Returns how many were deleted.
pub async fn expire_archives(server: &Server, now_millis: i64) -> u64 {
    let retention = i64::try_from(server.config.retention().as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_millis.saturating_sub(retention);
    match server.store.archive().delete_older_than(cutoff).await {
        Ok(deleted) => {
            if deleted > 0 {
                info!(deleted, "expired archived messages deleted");
            }
            deleted
        }
        Err(err) => {
            warn!(%err, "cannot delete expired archived messages");
            0
        }
    }
}

/// The background job: one pass now, then one every `archive_cleanup_interval`, until the server stops.
pub async fn run_archive_cleanup(server: Arc<Server>) {
    let interval = server.config.limits.archive_cleanup_interval;
    loop {
        expire_archives(&server, unix_millis_now()).await;
        tokio::select! {
            () = server.shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
