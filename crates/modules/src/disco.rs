//! XEP-0030: Service Discovery for the server's domain, answered from what the modules registered.
//!
//! The server is `server/im`; disco#items lists the services (none yet: groups and upload arrive with their own
//! modules). An account answers for itself as `account/registered`. Queries to a node we do not have get
//! `item-not-found`.

use std::sync::Arc;

use rookery_core::{IqOutcome, IqRequest, Module, Registry, SyncIq, Target};
use rookery_proto::{IqType, StanzaCondition, StanzaError};
use rookery_xml::{Element, ns};

pub struct DiscoModule;

/// The priority of the handlers here: below everything else, so that a module answering for its own nodes (the
/// ad-hoc command list, ...) sees a query first and passes what is not its own to these general answers.
pub const DISCO_FALLBACK_PRIORITY: i32 = -10;

impl Module for DiscoModule {
    fn name(&self) -> &'static str {
        "disco"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_identity("server", "im", None);
        registry.disco.add_feature(ns::DISCO_INFO);
        registry.disco.add_feature(ns::DISCO_ITEMS);
        registry.disco.add_account_feature(ns::DISCO_INFO);
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            ns::DISCO_INFO,
            "query",
            DISCO_FALLBACK_PRIORITY,
            Arc::new(SyncIq(host_info)),
        );
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            ns::DISCO_ITEMS,
            "query",
            DISCO_FALLBACK_PRIORITY,
            Arc::new(SyncIq(host_items)),
        );
        // Clients ask their own account what it supports (PEP, MAM, ...) before using it.
        registry.hooks.on_iq(
            IqType::Get,
            Target::Own,
            ns::DISCO_INFO,
            "query",
            DISCO_FALLBACK_PRIORITY,
            Arc::new(SyncIq(account_info)),
        );
        registry.hooks.on_iq(
            IqType::Get,
            Target::Own,
            ns::DISCO_ITEMS,
            "query",
            DISCO_FALLBACK_PRIORITY,
            Arc::new(SyncIq(account_items)),
        );
    }
}

/// A request for a node that no other module answered: unknown.
fn asks_for_node(req: &IqRequest<'_>) -> bool {
    req.payload().and_then(|q| q.attr("node")).is_some()
}

fn host_info(req: &IqRequest<'_>) -> IqOutcome {
    if asks_for_node(req) {
        return IqOutcome::Error(StanzaError::new(StanzaCondition::ItemNotFound));
    }
    let disco = &req.server.disco;
    let mut query = Element::new("query", ns::DISCO_INFO);
    for identity in &disco.identities {
        let mut el = Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", identity.category.as_str())
            .with_attr("type", identity.kind.as_str());
        if let Some(name) = &identity.name {
            el.set_attr("name", name.as_str());
        }
        query.append_child(el);
    }
    for feature in &disco.features {
        query.append_child(
            Element::new("feature", ns::DISCO_INFO).with_attr("var", feature.as_str()),
        );
    }
    for form in &disco.extension_forms {
        if let Some(form) = form(req.server) {
            query.append_child(form);
        }
    }
    IqOutcome::Result(Some(query))
}

fn host_items(req: &IqRequest<'_>) -> IqOutcome {
    if asks_for_node(req) {
        return IqOutcome::Error(StanzaError::new(StanzaCondition::ItemNotFound));
    }
    let mut query = Element::new("query", ns::DISCO_ITEMS);
    for item in &req.server.disco.items {
        let mut el = Element::new("item", ns::DISCO_ITEMS).with_attr("jid", item.jid.as_str());
        if let Some(name) = &item.name {
            el.set_attr("name", name.as_str());
        }
        query.append_child(el);
    }
    IqOutcome::Result(Some(query))
}

/// The account's own disco#info: identity `account/registered`, as Prosody answers, and the features modules
/// registered for accounts.
fn account_info(req: &IqRequest<'_>) -> IqOutcome {
    if asks_for_node(req) {
        return IqOutcome::Error(StanzaError::new(StanzaCondition::ItemNotFound));
    }
    let mut query = Element::new("query", ns::DISCO_INFO).with_child(
        Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", "account")
            .with_attr("type", "registered"),
    );
    for identity in &req.server.disco.account_identities {
        let mut el = Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", identity.category.as_str())
            .with_attr("type", identity.kind.as_str());
        if let Some(name) = &identity.name {
            el.set_attr("name", name.as_str());
        }
        query.append_child(el);
    }
    for feature in &req.server.disco.account_features {
        query.append_child(
            Element::new("feature", ns::DISCO_INFO).with_attr("var", feature.as_str()),
        );
    }
    IqOutcome::Result(Some(query))
}

/// The account's own disco#items when the PEP module does not answer them: none.
fn account_items(req: &IqRequest<'_>) -> IqOutcome {
    if asks_for_node(req) {
        return IqOutcome::Error(StanzaError::new(StanzaCondition::ItemNotFound));
    }
    IqOutcome::Result(Some(Element::new("query", ns::DISCO_ITEMS)))
}
