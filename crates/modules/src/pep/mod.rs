//! XEP-0163 personal eventing: a publish-subscribe service (XEP-0060) on every account's bare JID.
//!
//! - Nodes belong to the account and are created on first publish (`auto-create`), with the configuration of
//!   `publish-options` if given; on an existing node those options are preconditions (§7.1.5): a mismatch is
//!   `conflict` + `precondition-not-met` and nothing is published. `pubsub#max_items` takes `max`
//!   (`config-node-max`), which is [`Limits::pep_max_items`](rookery_config::Limits).
//! - Only the owner publishes, retracts, creates, configures, purges and deletes (`forbidden` for anyone else).
//!   Anyone may ask for items or subscribe, within the node's access model: `presence` (the default: contacts
//!   subscribed to the owner's presence), `open`, `roster` (allowed roster groups) and `whitelist` (the owner
//!   alone).
//! - Notifications go to the owner's resources and to contacts with a presence subscription who may see the node,
//!   each resource only if its entity capabilities (XEP-0115) list `node+notify` (filtered notifications), and to
//!   explicit subscribers. A resource that becomes available with such capabilities gets the last item of each
//!   node it is interested in (`send_last_published_item` = `on_sub_and_presence`, the default), as does an
//!   explicit subscriber when it subscribes.
//! - Limits: items per node ([`Limits::pep_max_items`]), bytes per item ([`Limits::pep_item_max_bytes`], refused
//!   with `not-acceptable` + `payload-too-big`), nodes per account and bytes of items per account (refused with
//!   `resource-constraint`), node and item ids of at most [`MAX_ID_BYTES`].
//!
//! Explicit subscriptions are kept in memory (Prosody keeps PEP subscribers in memory too); the capability-based
//! ones, which is what clients use, are rebuilt at every login.

pub mod caps;
pub mod config;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use jid::{BareJid, Jid};
use rookery_core::{
    BoxFuture, Handled, IqOutcome, IqRequest, Module, Origin, Registry, Server, Session,
    SessionHandler, SessionHook, StanzaEvent, StanzaHandler, StanzaHook, Target,
};
use rookery_proto::{ErrorType, IqType, StanzaCondition, StanzaError, StanzaKind};
use rookery_store::{PepItem, PepNode, PepQuota, Published, StoreError};
use rookery_xml::{Element, ns};
use tracing::{debug, warn};

use crate::forms::{Form, FormKind};
use crate::support::{AsyncIq, unix_now};
use caps::{CapsCache, Interests};
use config::{AccessModel, NodeConfig, PUBLISH_OPTIONS, SendLast};

pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
const NS_CAPS: &str = "http://jabber.org/protocol/caps";

/// Longest node name or item id, in bytes. Real ones are namespaces, hashes and ids of a few dozen bytes
/// (`eu.siacs.conversations.axolotl.bundles:1234567`); this bounds what a client can make the server index.
pub const MAX_ID_BYTES: usize = 1024;

/// Explicit subscriptions to one node. Clients subscribe through their capabilities; this only stops a client
/// that subscribes in a loop.
pub const MAX_SUBSCRIBERS_PER_NODE: usize = 1000;

/// The XEP-0060 features the account's disco#info lists (as `pubsub#…`), those Prosody's PEP lists; the apps check
/// `publish-options` and `config-node-max` before publishing OMEMO keys and bookmarks.
const FEATURES: &[&str] = &[
    "access-open",
    "access-presence",
    "access-roster",
    "access-whitelist",
    "auto-create",
    "auto-subscribe",
    "config-node",
    "config-node-max",
    "create-and-configure",
    "create-nodes",
    "delete-items",
    "delete-nodes",
    "filtered-notifications",
    "instant-nodes",
    "item-ids",
    "last-published",
    "persistent-items",
    "presence-notifications",
    "presence-subscribe",
    "publish",
    "publish-options",
    "purge-nodes",
    "retract-items",
    "retrieve-default",
    "retrieve-items",
    "subscribe",
];

/// State the PEP handlers share, kept in the server's extensions.
#[derive(Default)]
pub struct PepState {
    pub caps: CapsCache,
    /// Explicit subscribers of each (owner, node).
    subscribers: Mutex<HashMap<(String, String), HashSet<Jid>>>,
}

impl PepState {
    fn subscribers(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), HashSet<Jid>>> {
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn state(server: &Server) -> &PepState {
    server
        .extensions
        .get::<PepState>()
        .expect("the PEP module registers its state")
}

pub struct PepModule;

impl Module for PepModule {
    fn name(&self) -> &'static str {
        "pep"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.extensions.get_or_default::<PepState>();
        registry.disco.add_account_identity("pubsub", "pep", None);
        registry.disco.add_account_feature(NS_PUBSUB);
        // Bookmarks 2 with both legacy views kept in step (crate::bookmarks), advertised as Prosody does.
        registry
            .disco
            .add_account_feature(&format!("{}#compat", crate::bookmarks::NS_BOOKMARKS2));
        registry
            .disco
            .add_account_feature(&format!("{}#compat-pep", crate::bookmarks::NS_BOOKMARKS2));
        for feature in FEATURES {
            registry
                .disco
                .add_account_feature(&format!("{NS_PUBSUB}#{feature}"));
        }
        let pubsub = Arc::new(AsyncIq(|req| Box::pin(handle_pubsub(req))));
        for target in [Target::Own, Target::Bare] {
            for iq_type in [IqType::Get, IqType::Set] {
                for namespace in [NS_PUBSUB, NS_OWNER] {
                    registry
                        .hooks
                        .on_iq(iq_type, target, namespace, "pubsub", 0, pubsub.clone());
                }
            }
            registry.hooks.on_iq(
                IqType::Get,
                target,
                ns::DISCO_ITEMS,
                "query",
                0,
                Arc::new(AsyncIq(|req| Box::pin(disco_items(req)))),
            );
            registry.hooks.on_iq(
                IqType::Get,
                target,
                ns::DISCO_INFO,
                "query",
                0,
                Arc::new(AsyncIq(|req| Box::pin(disco_node_info(req)))),
            );
        }
        // Before the presence module (0) has stored the new presence: the old one tells what changed.
        registry.hooks.on_stanza(
            StanzaHook::Pre(StanzaKind::Presence),
            10,
            Arc::new(CapsWatcher),
        );
        registry
            .hooks
            .on_session(SessionHook::Ended, 0, Arc::new(SessionEnded));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

/// A XEP-0060 error: a stanza condition with an optional `pubsub#errors` condition.
pub fn pubsub_error(condition: StanzaCondition, specific: Option<&str>) -> StanzaError {
    let error = StanzaError::new(condition);
    match specific {
        Some(name) => error.with_app_condition(Element::new(name, NS_ERRORS)),
        None => error,
    }
}

fn storage_error(what: &str, error: &StoreError) -> StanzaError {
    match error {
        StoreError::LimitReached(why) => {
            StanzaError::with_text(StanzaCondition::ResourceConstraint, why.clone())
        }
        _ => {
            warn!(%error, "{what} failed");
            StanzaError::new(StanzaCondition::InternalServerError).with_type(ErrorType::Wait)
        }
    }
}

fn no_node() -> StanzaError {
    StanzaError::new(StanzaCondition::ItemNotFound)
}

fn only_owner() -> StanzaError {
    StanzaError::with_text(
        StanzaCondition::Forbidden,
        "only the owner of an account may change its nodes",
    )
}

fn node_name(el: &Element) -> Result<&str, StanzaError> {
    match el.attr("node") {
        None | Some("") => Err(pubsub_error(
            StanzaCondition::BadRequest,
            Some("nodeid-required"),
        )),
        Some(node) if node.len() > MAX_ID_BYTES => Err(StanzaError::with_text(
            StanzaCondition::NotAcceptable,
            format!("node names are limited to {MAX_ID_BYTES} bytes"),
        )),
        Some(node) => Ok(node),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Limits and nodes

fn max_items(server: &Server) -> u32 {
    u32::try_from(server.config.limits.pep_max_items).unwrap_or(u32::MAX)
}

fn quota(server: &Server) -> PepQuota {
    let limits = &server.config.limits;
    PepQuota {
        max_nodes: limits.pep_nodes_per_account,
        max_total_bytes: u64::try_from(limits.pep_storage_max_bytes).unwrap_or(u64::MAX),
    }
}

fn stored_node(server: &Server, name: &str, config: &NodeConfig) -> PepNode {
    PepNode {
        node: name.to_owned(),
        config: config.to_stored(max_items(server)),
        // A node that does not persist items still keeps its last one, to send it to who becomes interested
        // (Prosody keeps it in memory).
        max_items: if config.persist_items {
            config.max_items
        } else {
            1
        },
    }
}

/// A node and its configuration.
pub async fn node_config(
    server: &Server,
    owner: &str,
    node: &str,
) -> Result<Option<NodeConfig>, StanzaError> {
    let found = server
        .store
        .pep()
        .node(owner, node)
        .await
        .map_err(|e| storage_error("reading a PEP node", &e))?;
    Ok(found.map(|n| NodeConfig::from_stored(&n.config, max_items(server))))
}

/// A configuration submitted in a form (node configuration or publish-options), applied onto `base`:
/// `not-acceptable` for values this server cannot take, `bad-request` for what is not a form of that type.
fn configured(
    server: &Server,
    base: &NodeConfig,
    form_el: &Element,
    form_type: &str,
) -> Result<(NodeConfig, Form), StanzaError> {
    let form = Form::parse(form_el)
        .map_err(|e| StanzaError::with_text(StanzaCondition::BadRequest, e.to_string()))?;
    if form.form_type().is_some_and(|t| t != form_type) {
        return Err(StanzaError::with_text(
            StanzaCondition::BadRequest,
            format!("the form must be a {form_type} form"),
        ));
    }
    let mut config = base.clone();
    config
        .apply(&form, max_items(server))
        .map_err(|why| StanzaError::with_text(StanzaCondition::NotAcceptable, why))?;
    Ok((config, form))
}

// ---------------------------------------------------------------------------------------------------------------
// Access

/// Whether `requester` (a bare JID) may retrieve a node's items and receive its notifications; the error to
/// answer with if not (XEP-0060 §6.5.9: the access model's own condition).
async fn check_access(
    server: &Server,
    owner: &str,
    requester: &BareJid,
    config: &NodeConfig,
) -> Result<(), StanzaError> {
    if is_owner(server, owner, requester) || config.access_model == AccessModel::Open {
        return Ok(());
    }
    let roster = server.store.roster();
    let contact = requester.as_str();
    match config.access_model {
        AccessModel::Open => Ok(()),
        AccessModel::Presence => {
            let subscription = roster
                .subscription(owner, contact)
                .await
                .map_err(|e| storage_error("reading a subscription", &e))?;
            if subscription.has_from() {
                Ok(())
            } else {
                Err(pubsub_error(
                    StanzaCondition::NotAuthorized,
                    Some("presence-subscription-required"),
                ))
            }
        }
        AccessModel::Roster => {
            let item = roster
                .item(owner, contact)
                .await
                .map_err(|e| storage_error("reading a roster item", &e))?;
            let allowed = item.is_some_and(|item| {
                item.groups
                    .iter()
                    .any(|g| config.roster_groups_allowed.contains(g))
            });
            if allowed {
                Ok(())
            } else {
                Err(pubsub_error(
                    StanzaCondition::NotAuthorized,
                    Some("not-in-roster-group"),
                ))
            }
        }
        AccessModel::Whitelist => Err(pubsub_error(
            StanzaCondition::NotAllowed,
            Some("closed-node"),
        )),
    }
}

fn is_owner(server: &Server, owner: &str, jid: &BareJid) -> bool {
    jid.domain().as_str() == server.domain && jid.node().is_some_and(|n| n.as_str() == owner)
}

fn owner_jid(server: &Server, owner: &str) -> String {
    format!("{owner}@{}", server.domain)
}

// ---------------------------------------------------------------------------------------------------------------
// The IQ handlers

async fn handle_pubsub(req: IqRequest<'_>) -> IqOutcome {
    let Some(pubsub) = req.payload() else {
        return IqOutcome::Pass;
    };
    let owner = req.to.node().map_or("", |n| n.as_str()).to_owned();
    let requester = req.from.to_bare();
    let mine = is_owner(req.server, &owner, &requester);
    let set = IqType::of(req.stanza) == Some(IqType::Set);
    let owner_ns = pubsub.ns() == NS_OWNER;
    let Some(action) = pubsub.children().next() else {
        return IqOutcome::Error(StanzaError::with_text(
            StanzaCondition::BadRequest,
            "the pubsub element names no action",
        ));
    };
    let server = req.server;
    let result = match (owner_ns, set, action.name()) {
        (false, true, "publish" | "retract" | "create") | (true, _, _) if !mine => {
            Err(only_owner())
        }
        (false, false, "items") => get_items(server, &owner, &requester, action).await,
        (false, true, "publish") => {
            publish_request(server, &owner, &requester, pubsub, action).await
        }
        (false, true, "retract") => retract_request(server, &owner, action).await,
        (false, true, "create") => create_request(server, &owner, pubsub, action).await,
        (false, true, "subscribe") => subscribe(server, &owner, &requester, req.from, action).await,
        (false, true, "unsubscribe") => unsubscribe(server, &owner, req.from, action),
        (false, false, "subscriptions" | "affiliations") => Ok(Some(
            Element::new("pubsub", NS_PUBSUB).with_child(Element::new(action.name(), NS_PUBSUB)),
        )),
        (true, false, "configure") => configure_get(server, &owner, action).await,
        (true, true, "configure") => configure_set(server, &owner, action).await,
        (true, false, "default") => Ok(Some(
            Element::new("pubsub", NS_OWNER).with_child(
                Element::new("default", NS_OWNER).with_child(
                    NodeConfig::default()
                        .to_form(FormKind::Form, max_items(server))
                        .to_element(),
                ),
            ),
        )),
        (true, true, "delete") => delete_request(server, &owner, action).await,
        (true, true, "purge") => purge_request(server, &owner, action).await,
        _ => Err(StanzaError::with_text(
            StanzaCondition::FeatureNotImplemented,
            format!("<{}/> is not supported here", action.name()),
        )),
    };
    match result {
        Ok(payload) => IqOutcome::Result(payload),
        Err(error) => IqOutcome::Error(error),
    }
}

fn item_element(item: &PepItem, ns: &'static str) -> Element {
    let mut el = Element::new("item", ns).with_attr("id", item.id.as_str());
    match rookery_xml::parse_element(&item.payload) {
        Ok(payload) => {
            el.append_child(payload);
        }
        Err(error) => warn!(%error, "a stored PEP item cannot be read"),
    }
    el
}

/// Items of one of `owner`'s nodes as `requester` may see them (see [`get_items`]): the node's access model is
/// checked; `item-not-found` if there is no such node.
pub async fn read_items(
    server: &Server,
    owner: &str,
    requester: &BareJid,
    node: &str,
    ids: &[String],
    max: Option<u32>,
) -> Result<Vec<PepItem>, StanzaError> {
    let config = node_config(server, owner, node)
        .await?
        .ok_or_else(no_node)?;
    check_access(server, owner, requester, &config).await?;
    server
        .store
        .pep()
        .items(owner, node, ids, max)
        .await
        .map_err(|e| storage_error("reading PEP items", &e))
}

async fn get_items(
    server: &Server,
    owner: &str,
    requester: &BareJid,
    items: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(items)?;
    let max = match items.attr("max_items") {
        None => None,
        Some(n) => Some(n.parse::<u32>().map_err(|_| {
            StanzaError::with_text(StanzaCondition::BadRequest, "max_items must be a number")
        })?),
    };
    let ids: Vec<String> = items
        .children()
        .filter(|c| c.is("item", NS_PUBSUB))
        .filter_map(|c| c.attr("id").map(str::to_owned))
        .collect();
    let found = read_items(server, owner, requester, node, &ids, max).await?;
    let mut list = Element::new("items", NS_PUBSUB).with_attr("node", node);
    for item in &found {
        list.append_child(item_element(item, NS_PUBSUB));
    }
    Ok(Some(Element::new("pubsub", NS_PUBSUB).with_child(list)))
}

/// What a publish names: the node, the item's id (if given) and its one payload.
fn publish_parts(publish: &Element) -> Result<(&str, Option<&str>, &Element), StanzaError> {
    let node = node_name(publish)?;
    let mut items = publish.children().filter(|c| c.is("item", NS_PUBSUB));
    let item = items
        .next()
        .ok_or_else(|| pubsub_error(StanzaCondition::BadRequest, Some("item-required")))?;
    if items.next().is_some() {
        return Err(StanzaError::with_text(
            StanzaCondition::BadRequest,
            "publish one item at a time",
        ));
    }
    let id = item.attr("id").filter(|id| !id.is_empty());
    if id.is_some_and(|id| id.len() > MAX_ID_BYTES) {
        return Err(StanzaError::with_text(
            StanzaCondition::NotAcceptable,
            format!("item ids are limited to {MAX_ID_BYTES} bytes"),
        ));
    }
    let mut payloads = item.children();
    let payload = payloads
        .next()
        .ok_or_else(|| pubsub_error(StanzaCondition::BadRequest, Some("payload-required")))?;
    if payloads.next().is_some() {
        return Err(pubsub_error(
            StanzaCondition::BadRequest,
            Some("invalid-payload"),
        ));
    }
    Ok((node, id, payload))
}

async fn publish_request(
    server: &Arc<Server>,
    owner: &str,
    publisher: &BareJid,
    pubsub: &Element,
    publish: &Element,
) -> Result<Option<Element>, StanzaError> {
    let (node, id, payload) = publish_parts(publish)?;
    let options = pubsub
        .get_child("publish-options", NS_PUBSUB)
        .and_then(|o| o.get_child("x", crate::forms::NS));
    let id = publish_item(
        server,
        owner,
        node,
        id,
        payload.clone(),
        options,
        publisher.as_str(),
    )
    .await?;
    // The compatibility views follow what clients publish (not what they themselves write, which would loop).
    crate::bookmarks::published(server, owner, node, payload).await;
    Ok(Some(
        Element::new("pubsub", NS_PUBSUB).with_child(
            Element::new("publish", NS_PUBSUB)
                .with_attr("node", node)
                .with_child(Element::new("item", NS_PUBSUB).with_attr("id", id)),
        ),
    ))
}

/// Publishes an item to one of `owner`'s nodes, creating the node if needed, and notifies who wants to know.
/// `options` is a publish-options form. Returns the item's id (made up when not given). The compatibility views
/// (legacy bookmarks, vCard) publish through here too, without coming back to themselves.
pub async fn publish_item(
    server: &Arc<Server>,
    owner: &str,
    node: &str,
    id: Option<&str>,
    payload: Element,
    options: Option<&Element>,
    publisher: &str,
) -> Result<String, StanzaError> {
    let limit = server.config.limits.pep_item_max_bytes;
    let xml = payload.to_xml_string();
    if xml.len() > limit {
        return Err(StanzaError::with_text(
            StanzaCondition::NotAcceptable,
            format!(
                "an item may take at most {limit} bytes; this one takes {}",
                xml.len()
            ),
        )
        .with_app_condition(Element::new("payload-too-big", NS_ERRORS)));
    }
    let (requested, options) = match options {
        Some(form) => {
            let (config, form) = configured(server, &NodeConfig::default(), form, PUBLISH_OPTIONS)?;
            (config, Some(form))
        }
        None => (NodeConfig::default(), None),
    };
    let id = id.map_or_else(new_id, str::to_owned);
    let item = PepItem {
        id: id.clone(),
        publisher: publisher.to_owned(),
        payload: xml,
        published_at: unix_now(),
    };
    let max = max_items(server);
    let unmet = Mutex::new(None);
    let published = server
        .store
        .pep()
        .publish(
            owner,
            &stored_node(server, node, &requested),
            &item,
            |existing| {
                let Some(options) = &options else {
                    return true;
                };
                let config = NodeConfig::from_stored(&existing.config, max);
                let field = config.unmet_precondition(options, &requested);
                let met = field.is_none();
                *unmet
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = field.map(str::to_owned);
                met
            },
            quota(server),
        )
        .await
        .map_err(|e| storage_error("publishing a PEP item", &e))?;
    let stored = match published {
        Published::Stored { node, .. } => node,
        Published::Refused(_) => {
            let field = unmet
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or_default();
            return Err(StanzaError::with_text(
                StanzaCondition::Conflict,
                format!("the node's {field} differs from the publish-options"),
            )
            .with_app_condition(Element::new("precondition-not-met", NS_ERRORS)));
        }
    };
    let config = NodeConfig::from_stored(&stored.config, max);
    let event = Element::new("items", NS_EVENT)
        .with_attr("node", node)
        .with_child(item_element(&item, NS_EVENT));
    notify(server, owner, node, &config, event).await;
    Ok(id)
}

/// A random item or node id, as Prosody makes them when the client gives none.
fn new_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

async fn retract_request(
    server: &Arc<Server>,
    owner: &str,
    retract: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(retract)?;
    let id = retract
        .get_child("item", NS_PUBSUB)
        .and_then(|i| i.attr("id"))
        .ok_or_else(|| pubsub_error(StanzaCondition::BadRequest, Some("item-required")))?;
    let notify = matches!(retract.attr("notify"), Some("1" | "true"));
    retract_item(server, owner, node, id, notify).await?;
    crate::bookmarks::retracted(server, owner, node).await;
    Ok(None)
}

/// Retracts an item; with `notify`, who wants to know hears of it (if the node notifies retractions).
/// `item-not-found` when there is no such node or item.
pub async fn retract_item(
    server: &Arc<Server>,
    owner: &str,
    node: &str,
    id: &str,
    notify_them: bool,
) -> Result<(), StanzaError> {
    let config = node_config(server, owner, node)
        .await?
        .ok_or_else(no_node)?;
    let removed = server
        .store
        .pep()
        .retract(owner, node, id)
        .await
        .map_err(|e| storage_error("retracting a PEP item", &e))?;
    if !removed {
        return Err(no_node());
    }
    if notify_them && config.notify_retract {
        let event = Element::new("items", NS_EVENT)
            .with_attr("node", node)
            .with_child(Element::new("retract", NS_EVENT).with_attr("id", id));
        notify(server, owner, node, &config, event).await;
    }
    Ok(())
}

async fn create_request(
    server: &Server,
    owner: &str,
    pubsub: &Element,
    create: &Element,
) -> Result<Option<Element>, StanzaError> {
    // Without a name, an instant node (XEP-0060 §8.1.2): the server names it and says so.
    let (node, instant) = match create.attr("node") {
        None | Some("") => (new_id(), true),
        Some(_) => (node_name(create)?.to_owned(), false),
    };
    let config = match pubsub
        .get_child("configure", NS_PUBSUB)
        .and_then(|c| c.get_child("x", crate::forms::NS))
    {
        Some(form) => configured(server, &NodeConfig::default(), form, config::NODE_CONFIG)?.0,
        None => NodeConfig::default(),
    };
    let created = server
        .store
        .pep()
        .create(owner, &stored_node(server, &node, &config), quota(server))
        .await
        .map_err(|e| storage_error("creating a PEP node", &e))?;
    if !created {
        return Err(StanzaError::with_text(
            StanzaCondition::Conflict,
            "that node exists already",
        ));
    }
    Ok(instant.then(|| {
        Element::new("pubsub", NS_PUBSUB)
            .with_child(Element::new("create", NS_PUBSUB).with_attr("node", node))
    }))
}

async fn configure_get(
    server: &Server,
    owner: &str,
    configure: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(configure)?;
    let config = node_config(server, owner, node)
        .await?
        .ok_or_else(no_node)?;
    Ok(Some(
        Element::new("pubsub", NS_OWNER).with_child(
            Element::new("configure", NS_OWNER)
                .with_attr("node", node)
                .with_child(
                    config
                        .to_form(FormKind::Form, max_items(server))
                        .to_element(),
                ),
        ),
    ))
}

async fn configure_set(
    server: &Server,
    owner: &str,
    configure: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(configure)?;
    let current = node_config(server, owner, node)
        .await?
        .ok_or_else(no_node)?;
    let Some(form) = configure.get_child("x", crate::forms::NS) else {
        return Err(StanzaError::with_text(
            StanzaCondition::BadRequest,
            "a configuration form is needed",
        ));
    };
    if form.attr("type") == Some("cancel") {
        return Ok(None);
    }
    let (config, _) = configured(server, &current, form, config::NODE_CONFIG)?;
    server
        .store
        .pep()
        .configure(owner, &stored_node(server, node, &config))
        .await
        .map_err(|e| storage_error("configuring a PEP node", &e))?;
    Ok(None)
}

async fn delete_request(
    server: &Arc<Server>,
    owner: &str,
    delete: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(delete)?;
    let config = node_config(server, owner, node)
        .await?
        .ok_or_else(no_node)?;
    // Who hears of it is decided while the node is still there.
    let recipients = recipients(server, owner, node, &config).await;
    let deleted = server
        .store
        .pep()
        .delete(owner, node)
        .await
        .map_err(|e| storage_error("deleting a PEP node", &e))?;
    if !deleted {
        return Err(no_node());
    }
    state(server)
        .subscribers()
        .remove(&(owner.to_owned(), node.to_owned()));
    if config.notify_delete {
        let event = Element::new("delete", NS_EVENT).with_attr("node", node);
        send_event(server, owner, &config, event, &recipients).await;
    }
    Ok(None)
}

async fn purge_request(
    server: &Arc<Server>,
    owner: &str,
    purge: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(purge)?;
    let config = node_config(server, owner, node)
        .await?
        .ok_or_else(no_node)?;
    let purged = server
        .store
        .pep()
        .purge(owner, node)
        .await
        .map_err(|e| storage_error("purging a PEP node", &e))?;
    if !purged {
        return Err(no_node());
    }
    let event = Element::new("purge", NS_EVENT).with_attr("node", node);
    notify(server, owner, node, &config, event).await;
    Ok(None)
}

async fn subscribe(
    server: &Arc<Server>,
    owner: &str,
    requester: &BareJid,
    from: &Jid,
    subscribe: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(subscribe)?;
    let jid = subscribed_jid(subscribe, from)?;
    let config = node_config(server, owner, node)
        .await?
        .ok_or_else(no_node)?;
    check_access(server, owner, requester, &config).await?;
    {
        let state = state(server);
        let mut subscribers = state.subscribers();
        let set = subscribers
            .entry((owner.to_owned(), node.to_owned()))
            .or_default();
        if set.len() >= MAX_SUBSCRIBERS_PER_NODE && !set.contains(&jid) {
            return Err(StanzaError::with_text(
                StanzaCondition::ResourceConstraint,
                "this node has too many subscribers",
            ));
        }
        set.insert(jid.clone());
    }
    // The reply first, then the last item (XEP-0060 §6.1.7).
    let reply = Element::new("pubsub", NS_PUBSUB).with_child(
        Element::new("subscription", NS_PUBSUB)
            .with_attr("node", node)
            .with_attr("jid", jid.as_str())
            .with_attr("subscription", "subscribed"),
    );
    if config.send_last_published_item != SendLast::Never {
        let server = Arc::clone(server);
        let (owner, node) = (owner.to_owned(), node.to_owned());
        tokio::spawn(async move {
            send_last_item(&server, &owner, &node, &config, &jid).await;
        });
    }
    Ok(Some(reply))
}

/// The `jid` of a subscribe or unsubscribe: the requester's own, bare or full (`bad-request` + `invalid-jid`).
fn subscribed_jid(el: &Element, from: &Jid) -> Result<Jid, StanzaError> {
    let invalid = || pubsub_error(StanzaCondition::BadRequest, Some("invalid-jid"));
    let jid = el
        .attr("jid")
        .ok_or_else(|| pubsub_error(StanzaCondition::BadRequest, Some("jid-required")))
        .and_then(|j| Jid::new(j).map_err(|_| invalid()))?;
    if jid.to_bare() != from.to_bare() {
        return Err(invalid());
    }
    Ok(jid)
}

fn unsubscribe(
    server: &Server,
    owner: &str,
    from: &Jid,
    unsubscribe: &Element,
) -> Result<Option<Element>, StanzaError> {
    let node = node_name(unsubscribe)?;
    let jid = subscribed_jid(unsubscribe, from)?;
    let removed = state(server)
        .subscribers()
        .get_mut(&(owner.to_owned(), node.to_owned()))
        .is_some_and(|set| set.remove(&jid));
    if removed {
        Ok(None)
    } else {
        Err(pubsub_error(
            StanzaCondition::UnexpectedRequest,
            Some("not-subscribed"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Service discovery of nodes

async fn disco_items(req: IqRequest<'_>) -> IqOutcome {
    let owner = req.to.node().map_or("", |n| n.as_str());
    let requester = req.from.to_bare();
    let server = req.server;
    let asked_node = req.payload().and_then(|q| q.attr("node"));
    let nodes = match server.store.pep().nodes(owner).await {
        Ok(nodes) => nodes,
        Err(e) => return IqOutcome::Error(storage_error("listing PEP nodes", &e)),
    };
    let owner_bare = owner_jid(server, owner);
    let mut query = Element::new("query", ns::DISCO_ITEMS);
    match asked_node {
        // The nodes the requester may see.
        None => {
            for node in nodes {
                let config = NodeConfig::from_stored(&node.config, max_items(server));
                if check_access(server, owner, &requester, &config)
                    .await
                    .is_err()
                {
                    continue;
                }
                let mut item = Element::new("item", ns::DISCO_ITEMS)
                    .with_attr("jid", owner_bare.as_str())
                    .with_attr("node", node.node.as_str());
                if let Some(title) = config.title.filter(|t| !t.is_empty()) {
                    item.set_attr("name", title);
                }
                query.append_child(item);
            }
        }
        // A node's items, by id (XEP-0060 §5.5).
        Some(name) => {
            let Some(node) = nodes.iter().find(|n| n.node == name) else {
                return IqOutcome::Pass;
            };
            let config = NodeConfig::from_stored(&node.config, max_items(server));
            if let Err(e) = check_access(server, owner, &requester, &config).await {
                return IqOutcome::Error(e);
            }
            let items = match server.store.pep().items(owner, name, &[], None).await {
                Ok(items) => items,
                Err(e) => return IqOutcome::Error(storage_error("reading PEP items", &e)),
            };
            query.set_attr("node", name);
            for item in items {
                query.append_child(
                    Element::new("item", ns::DISCO_ITEMS)
                        .with_attr("jid", owner_bare.as_str())
                        .with_attr("name", item.id),
                );
            }
        }
    }
    IqOutcome::Result(Some(query))
}

/// disco#info of one node (XEP-0060 §5.3); queries without a node are the disco module's.
async fn disco_node_info(req: IqRequest<'_>) -> IqOutcome {
    let Some(name) = req.payload().and_then(|q| q.attr("node")) else {
        return IqOutcome::Pass;
    };
    let owner = req.to.node().map_or("", |n| n.as_str());
    let config = match node_config(req.server, owner, name).await {
        Ok(Some(config)) => config,
        Ok(None) => return IqOutcome::Pass,
        Err(e) => return IqOutcome::Error(e),
    };
    if let Err(e) = check_access(req.server, owner, &req.from.to_bare(), &config).await {
        return IqOutcome::Error(e);
    }
    IqOutcome::Result(Some(
        Element::new("query", ns::DISCO_INFO)
            .with_attr("node", name)
            .with_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "pubsub")
                    .with_attr("type", "leaf"),
            )
            .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", NS_PUBSUB)),
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Notifications

/// Whether a session wants notifications of `node` (its capabilities list `node+notify`).
fn interested(server: &Server, session: &Session, node: &str) -> bool {
    session.available_priority().is_some()
        && state(server)
            .caps
            .session(session.id)
            .is_some_and(|interests| interests.contains(node))
}

/// Who gets a node's notifications: the owner's interested resources, the interested resources of contacts
/// subscribed to the owner's presence who may see the node, and explicit subscribers.
async fn recipients(server: &Server, owner: &str, node: &str, config: &NodeConfig) -> Vec<Jid> {
    let mut to: Vec<Jid> = server
        .sessions
        .sessions_of(owner)
        .into_iter()
        .filter(|s| interested(server, s, node))
        .map(|s| Jid::from(s.jid.clone()))
        .collect();
    if config.access_model != AccessModel::Whitelist {
        let roster = match server.store.roster().get(owner).await {
            Ok(roster) => roster,
            Err(error) => {
                warn!(%error, "roster unavailable; PEP notifications reach the owner only");
                Default::default()
            }
        };
        for item in roster.items.iter().filter(|i| i.subscription.has_from()) {
            let allowed = match config.access_model {
                AccessModel::Roster => item
                    .groups
                    .iter()
                    .any(|g| config.roster_groups_allowed.contains(g)),
                _ => true,
            };
            let Ok(contact) = BareJid::new(&item.contact) else {
                continue;
            };
            if !allowed || contact.domain().as_str() != server.domain {
                continue;
            }
            let username = contact.node().map_or("", |n| n.as_str());
            to.extend(
                server
                    .sessions
                    .sessions_of(username)
                    .into_iter()
                    .filter(|s| interested(server, s, node))
                    .map(|s| Jid::from(s.jid.clone())),
            );
        }
    }
    let explicit: Vec<Jid> = state(server)
        .subscribers()
        .get(&(owner.to_owned(), node.to_owned()))
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default();
    for jid in explicit {
        // Access is checked again: the subscriber may have lost its subscription to the owner's presence since.
        if check_access(server, owner, &jid.to_bare(), config)
            .await
            .is_ok()
        {
            to.push(jid);
        }
    }
    to.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    to.dedup();
    to
}

/// Sends an event about one of `owner`'s nodes to everyone who wants it.
async fn notify(
    server: &Arc<Server>,
    owner: &str,
    node: &str,
    config: &NodeConfig,
    event: Element,
) {
    let to = recipients(server, owner, node, config).await;
    send_event(server, owner, config, event, &to).await;
}

async fn send_event(
    server: &Arc<Server>,
    owner: &str,
    config: &NodeConfig,
    event: Element,
    to: &[Jid],
) {
    let from = owner_jid(server, owner);
    let Ok(from_jid) = Jid::new(&from) else {
        return;
    };
    let message = Element::new("message", ns::CLIENT)
        .with_attr("from", from.as_str())
        .with_attr("type", config.notification_type.as_str())
        .with_child(Element::new("event", NS_EVENT).with_child(event));
    for jid in to {
        let mut copy = message.clone();
        copy.set_attr("to", jid.as_str());
        copy.set_attr("id", new_id());
        server
            .route(
                StanzaKind::Message,
                copy,
                from_jid.clone(),
                Some(jid.clone()),
                Origin::Local,
            )
            .await;
    }
}

/// Sends a node's last item to one JID.
async fn send_last_item(
    server: &Arc<Server>,
    owner: &str,
    node: &str,
    config: &NodeConfig,
    to: &Jid,
) {
    let items = match server.store.pep().items(owner, node, &[], Some(1)).await {
        Ok(items) => items,
        Err(error) => {
            warn!(%error, "reading the last PEP item failed");
            return;
        }
    };
    let Some(item) = items.first() else {
        return;
    };
    let event = Element::new("items", NS_EVENT)
        .with_attr("node", node)
        .with_child(item_element(item, NS_EVENT));
    send_event(server, owner, config, event, std::slice::from_ref(to)).await;
}

/// A session became interested in `nodes`: the last item of each such node of its own account and of the contacts
/// whose presence it receives, where it may see them.
async fn send_last_items(server: &Arc<Server>, session: &Arc<Session>, nodes: &HashSet<String>) {
    if nodes.is_empty() {
        return;
    }
    let me = session.username().to_owned();
    let requester = session.bare_jid();
    let mut owners = vec![me.clone()];
    match server.store.roster().subscriptions(&me).await {
        Ok(contacts) => owners.extend(contacts.into_iter().filter(|(_, s)| s.has_to()).filter_map(
            |(contact, _)| {
                let contact = BareJid::new(&contact).ok()?;
                (contact.domain().as_str() == server.domain)
                    .then(|| contact.node().map(|n| n.as_str().to_owned()))
                    .flatten()
            },
        )),
        Err(error) => {
            warn!(%error, "roster unavailable; only the account's own PEP items are sent")
        }
    }
    let to = Jid::from(session.jid.clone());
    for owner in owners {
        let owned = match server.store.pep().nodes(&owner).await {
            Ok(owned) => owned,
            Err(error) => {
                warn!(%error, "listing PEP nodes failed");
                continue;
            }
        };
        for node in owned.iter().filter(|n| nodes.contains(&n.node)) {
            let config = NodeConfig::from_stored(&node.config, max_items(server));
            if config.send_last_published_item != SendLast::OnSubAndPresence
                || check_access(server, &owner, &requester, &config)
                    .await
                    .is_err()
            {
                continue;
            }
            send_last_item(server, &owner, &node.node, &config, &to).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Capabilities

/// Watches clients' broadcast presence for entity capabilities (XEP-0115).
struct CapsWatcher;

impl StanzaHandler for CapsWatcher {
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
            match event.stanza.attr("type") {
                None => {}
                Some("unavailable") => {
                    state(server).caps.forget_session(session.id);
                    return Handled::Pass;
                }
                Some(_) => return Handled::Pass,
            }
            let Some(c) = event.stanza.get_child("c", NS_CAPS) else {
                return Handled::Pass;
            };
            let (Some(node), Some(ver)) = (c.attr("node"), c.attr("ver")) else {
                return Handled::Pass;
            };
            let hash = c.attr("hash").unwrap_or("sha-1");
            let unchanged = {
                let current = session.state();
                current.presence.is_some()
                    && current
                        .caps
                        .as_ref()
                        .is_some_and(|c| c.ver == ver && c.node == node)
            };
            if unchanged && state(server).caps.session(session.id).is_some() {
                return Handled::Pass;
            }
            // The client answers the disco query only once this handler is done with its presence: ask from a
            // task of its own.
            let (server, session) = (Arc::clone(server), Arc::clone(session));
            let query_node = format!("{node}#{ver}");
            let verified = (hash == "sha-1").then(|| ver.to_owned());
            tokio::spawn(async move {
                learn_caps(&server, &session, query_node, verified).await;
            });
            Handled::Pass
        })
    }
}

/// Learns what a session wants notifications for (from the cache, else by asking it), then sends it the last items
/// it did not want before.
async fn learn_caps(
    server: &Arc<Server>,
    session: &Arc<Session>,
    query_node: String,
    claimed_ver: Option<String>,
) {
    let caps = &state(server).caps;
    let cached = claimed_ver.as_deref().and_then(|ver| caps.known(ver));
    let interests: Interests = match cached {
        Some(interests) => interests,
        None => {
            let query =
                Element::new("query", ns::DISCO_INFO).with_attr("node", query_node.as_str());
            let reply = match server.request(IqType::Get, &session.jid, query).await {
                Ok(reply) => reply,
                Err(error) => {
                    debug!(?error, jid = %session.jid, "no answer to the capabilities query");
                    return;
                }
            };
            let Some(info) = reply
                .get_child("query", ns::DISCO_INFO)
                .filter(|_| reply.attr("type") == Some("result"))
            else {
                return;
            };
            let interests = Arc::new(caps::interests_of(info));
            if let Some(ver) = claimed_ver.filter(|v| caps::sha1_ver(info).as_deref() == Some(v)) {
                caps.remember(ver, Arc::clone(&interests));
            }
            interests
        }
    };
    if session.is_closing() {
        return;
    }
    let before = caps.set_session(session.id, Arc::clone(&interests));
    let new: HashSet<String> = match before {
        Some(before) => interests.difference(&before).cloned().collect(),
        None => (*interests).clone(),
    };
    send_last_items(server, session, &new).await;
}

struct SessionEnded;

impl SessionHandler for SessionEnded {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            state(server).caps.forget_session(session.id);
        })
    }
}
