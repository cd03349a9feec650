//! XEP-0049 private XML storage (`jabber:iq:private`).
//!
//! An account keeps elements keyed by namespace and name, for its own eyes only: a get or set addressed to another
//! account is `forbidden` (the XEP's preferred answer). A set may carry several elements; they are stored together
//! or not at all. An element with no content and no attributes removes what is stored under its key (as Prosody's
//! mod_private does: storing it would give back the same answer as storing nothing). Refused with
//! `not-acceptable`, changing nothing:
//! - a query without an element (XEP-0049 §3);
//! - an element in the `jabber:iq:private` namespace itself (a child written without its own namespace) or in a
//!   stream content namespace (`jabber:client`, `jabber:server`): the XEP requires each element to have its own
//!   namespace. The other reserved namespaces the XEP lists as optional errors (`jabber:*`, `http://jabber.org/*`)
//!   are accepted, as by Prosody, since clients store data there;
//! - a set that would take the account's storage beyond `Limits::private_storage_max_bytes`.
//!
//! A get names exactly one element (`bad-request` for more); it is answered with the stored element, or with the
//! query as asked when nothing is stored.

use std::sync::Arc;

use rookery_core::{IqOutcome, IqRequest, Module, Registry, SyncIq, Target};
use rookery_proto::{IqType, StanzaCondition, StanzaError};
use rookery_store::{PrivateChange, StoreError};
use rookery_xml::{Element, ns};

use crate::bookmarks::{self, LegacyPlace};
use crate::support::{AsyncIq, addressed_account, storage_failed};

/// `jabber:iq:private`.
pub const NS: &str = "jabber:iq:private";

pub struct PrivateStorage;

impl Module for PrivateStorage {
    fn name(&self) -> &'static str {
        "private"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature(NS);
        registry.hooks.on_iq(
            IqType::Get,
            Target::Own,
            NS,
            "query",
            0,
            Arc::new(AsyncIq(|req| Box::pin(get(req)))),
        );
        registry.hooks.on_iq(
            IqType::Set,
            Target::Own,
            NS,
            "query",
            0,
            Arc::new(AsyncIq(|req| Box::pin(set(req)))),
        );
        let not_yours = Arc::new(SyncIq(|_: &IqRequest<'_>| {
            IqOutcome::Error(StanzaError::with_text(
                StanzaCondition::Forbidden,
                "private storage belongs to its account alone",
            ))
        }));
        for iq_type in [IqType::Get, IqType::Set] {
            registry
                .hooks
                .on_iq(iq_type, Target::Bare, NS, "query", 0, not_yours.clone());
        }
    }
}

fn not_acceptable(text: impl Into<String>) -> IqOutcome {
    IqOutcome::Error(StanzaError::with_text(StanzaCondition::NotAcceptable, text))
}

/// Why an element cannot be stored, if it cannot: it must be in a namespace of its own.
fn unstorable(el: &Element) -> Option<String> {
    match el.ns() {
        "" | NS => Some(format!("<{}/> needs a namespace of its own", el.name())),
        ns::CLIENT | ns::SERVER => Some(format!(
            "<{}/> is in a stream namespace ({}), which cannot be stored",
            el.name(),
            el.ns()
        )),
        _ => None,
    }
}

async fn get(req: IqRequest<'_>) -> IqOutcome {
    let Some(query) = req.payload() else {
        return IqOutcome::Error(StanzaError::new(StanzaCondition::BadRequest));
    };
    let mut wanted = query.children();
    let Some(el) = wanted.next() else {
        return not_acceptable("name the element to retrieve");
    };
    if wanted.next().is_some() {
        return IqOutcome::Error(StanzaError::with_text(
            StanzaCondition::BadRequest,
            "retrieve one element at a time",
        ));
    }
    if let Some(why) = unstorable(el) {
        return not_acceptable(why);
    }
    let stored = req
        .server
        .store
        .private_xml()
        .get(addressed_account(&req), el.ns(), el.name())
        .await;
    match stored {
        Ok(Some(xml)) => match rookery_xml::parse_element(&xml) {
            Ok(stored) => IqOutcome::Result(Some(Element::new("query", NS).with_child(stored))),
            Err(error) => {
                tracing::warn!(%error, "stored private XML cannot be read");
                IqOutcome::Error(StanzaError::new(StanzaCondition::InternalServerError))
            }
        },
        // Nothing stored: the query comes back as asked.
        Ok(None) => IqOutcome::Result(Some(query.clone())),
        Err(error) => storage_failed("reading private XML", &error),
    }
}

async fn set(req: IqRequest<'_>) -> IqOutcome {
    let Some(query) = req.payload() else {
        return IqOutcome::Error(StanzaError::new(StanzaCondition::BadRequest));
    };
    let mut changes = Vec::new();
    for el in query.children() {
        if let Some(why) = unstorable(el) {
            return not_acceptable(why);
        }
        let empty = el.nodes().is_empty() && el.attributes().is_empty();
        changes.push(PrivateChange {
            namespace: el.ns().to_owned(),
            name: el.name().to_owned(),
            xml: (!empty).then(|| el.to_xml_string()),
        });
    }
    if changes.is_empty() {
        return not_acceptable("give at least one element to store");
    }
    let limit = req.server.config.limits.private_storage_max_bytes;
    let applied = req
        .server
        .store
        .private_xml()
        .apply(
            addressed_account(&req),
            &changes,
            u64::try_from(limit).unwrap_or(u64::MAX),
        )
        .await;
    match applied {
        Ok(()) => {
            // Legacy bookmarks: Bookmarks 2 and the legacy PEP node follow (XEP-0402 §5.3).
            let bookmarks = changes
                .iter()
                .rev()
                .find(|c| c.namespace == bookmarks::NS_LEGACY && c.name == "storage");
            if let Some(change) = bookmarks {
                let storage = change
                    .xml
                    .as_deref()
                    .and_then(|xml| rookery_xml::parse_element(xml).ok())
                    .unwrap_or_else(|| Element::new("storage", bookmarks::NS_LEGACY));
                let owner = addressed_account(&req);
                let synced =
                    bookmarks::legacy_stored(req.server, owner, &storage, LegacyPlace::Private)
                        .await;
                if let Err(error) = synced {
                    return IqOutcome::Error(error);
                }
            }
            IqOutcome::Result(None)
        }
        Err(StoreError::LimitReached(_)) => not_acceptable(format!(
            "private storage is limited to {limit} bytes per account"
        )),
        Err(error) => storage_failed("storing private XML", &error),
    }
}
