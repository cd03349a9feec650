//! XEP-0054 vcard-temp, and the server's own vCard.
//!
//! Each account has one vCard, kept as the XML its owner set (a later issue converts it to vCard4 in PEP). The
//! owner sets it (`Target::Own`); anyone may read it, the server answering for the account (`Target::Bare`). An
//! account without one answers with an empty `<vCard/>`, as Prosody's mod_vcard_legacy does, rather than
//! `item-not-found`. A vCard over `Limits::vcard_max_bytes` is refused with `not-acceptable`
//! and nothing is stored. Only the owner may set it: a set for another account is `forbidden` (mod_vcard).
//!
//! The server's vCard (Snikket's mod_snikket_server_vcard) has FN = the site name; Rookery has no logo, so no
//! PHOTO.

use std::sync::Arc;

use rookery_core::{IqOutcome, IqRequest, Module, Registry, SyncIq, Target};
use rookery_proto::{IqType, StanzaCondition, StanzaError};
use rookery_xml::Element;

use crate::support::{AsyncIq, account_exists, addressed_account, no_such_account, storage_failed};

/// `vcard-temp`.
pub const NS: &str = "vcard-temp";

pub struct VCardModule;

impl Module for VCardModule {
    fn name(&self) -> &'static str {
        "vcard"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature(NS);
        let get = Arc::new(AsyncIq(|req| Box::pin(get_vcard(req))));
        registry
            .hooks
            .on_iq(IqType::Get, Target::Own, NS, "vCard", 0, get.clone());
        registry
            .hooks
            .on_iq(IqType::Get, Target::Bare, NS, "vCard", 0, get);
        registry.hooks.on_iq(
            IqType::Set,
            Target::Own,
            NS,
            "vCard",
            0,
            Arc::new(AsyncIq(|req| Box::pin(set_vcard(req)))),
        );
        registry.hooks.on_iq(
            IqType::Set,
            Target::Bare,
            NS,
            "vCard",
            0,
            Arc::new(SyncIq(|_: &IqRequest<'_>| {
                IqOutcome::Error(StanzaError::with_text(
                    StanzaCondition::Forbidden,
                    "only the owner of an account may change its vCard",
                ))
            })),
        );
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            NS,
            "vCard",
            0,
            Arc::new(SyncIq(server_vcard)),
        );
    }
}

fn empty_vcard() -> Element {
    Element::new("vCard", NS)
}

async fn get_vcard(req: IqRequest<'_>) -> IqOutcome {
    let username = addressed_account(&req);
    let stored = match req.server.store.vcards().get(username).await {
        Ok(stored) => stored,
        Err(error) => return storage_failed("reading a vCard", &error),
    };
    let Some(xml) = stored else {
        // No vCard: an empty one, unless the account itself does not exist.
        return match account_exists(req.server, username).await {
            Ok(true) => IqOutcome::Result(Some(empty_vcard())),
            Ok(false) => no_such_account(),
            Err(error) => storage_failed("looking up an account", &error),
        };
    };
    match rookery_xml::parse_element(&xml) {
        Ok(vcard) => IqOutcome::Result(Some(vcard)),
        Err(error) => {
            tracing::warn!(%error, username, "a stored vCard cannot be read");
            IqOutcome::Error(StanzaError::new(StanzaCondition::InternalServerError))
        }
    }
}

async fn set_vcard(req: IqRequest<'_>) -> IqOutcome {
    let Some(vcard) = req.payload() else {
        return IqOutcome::Error(StanzaError::new(StanzaCondition::BadRequest));
    };
    let xml = vcard.to_xml_string();
    let limit = req.server.config.limits.vcard_max_bytes;
    if xml.len() > limit {
        return IqOutcome::Error(StanzaError::with_text(
            StanzaCondition::NotAcceptable,
            format!(
                "a vCard may take at most {limit} bytes; this one takes {}",
                xml.len()
            ),
        ));
    }
    match req
        .server
        .store
        .vcards()
        .set(addressed_account(&req), &xml)
        .await
    {
        Ok(()) => IqOutcome::Result(None),
        Err(error) => storage_failed("storing a vCard", &error),
    }
}

/// The server's vCard: its name, which is `SNIKKET_SITE_NAME` or else the domain.
fn server_vcard(req: &IqRequest<'_>) -> IqOutcome {
    let config = &req.server.config;
    let name = if config.site_name.is_empty() {
        req.server.domain.as_str()
    } else {
        config.site_name.as_str()
    };
    IqOutcome::Result(Some(
        empty_vcard().with_child(Element::new("FN", NS).with_text(name)),
    ))
}
