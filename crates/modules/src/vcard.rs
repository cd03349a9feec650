//! XEP-0054 vcard-temp, and the server's own vCard.
//!
//! Each account has one vCard, kept as the XML its owner set. XEP-0398 (`urn:xmpp:pep-vcard-conversion:0`), as
//! Prosody's mod_vcard_legacy: a vCard set with a PHOTO also publishes that avatar to PEP (XEP-0084 data and
//! metadata) and the vCard's main fields as vCard4 (XEP-0292, node `urn:xmpp:vcard4`), on nodes created `open` if
//! they do not exist yet, and a vCard set without a PHOTO removes the PEP avatar (empty metadata, XEP-0084 §4.6);
//! a vCard get answers with the account's current PEP avatar as PHOTO when the requester may see it, whatever
//! avatar the stored vCard had, and with no PHOTO when that avatar was removed. The
//! owner sets it (`Target::Own`); anyone may read it, the server answering for the account (`Target::Bare`). An
//! account without one answers with an empty `<vCard/>`, as Prosody's mod_vcard_legacy does, rather than
//! `item-not-found`. A vCard over `Limits::vcard_max_bytes` is refused with `not-acceptable`
//! and nothing is stored. Only the owner may set it: a set for another account is `forbidden` (mod_vcard).
//!
//! The server's vCard (Snikket's mod_snikket_server_vcard) has FN = the site name; Rookery has no logo, so no
//! PHOTO.

use std::sync::Arc;

use base64::Engine;
use rookery_core::{IqOutcome, IqRequest, Module, Registry, SyncIq, Target};
use rookery_proto::{IqType, StanzaCondition, StanzaError};
use rookery_xml::Element;
use sha1::{Digest, Sha1};

use crate::forms::{Field, FieldKind, Form, FormKind};
use crate::pep::{self, config::PUBLISH_OPTIONS};
use crate::support::{AsyncIq, account_exists, addressed_account, no_such_account, storage_failed};

/// `vcard-temp`.
pub const NS: &str = "vcard-temp";
/// XEP-0398.
pub const NS_CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";
const NS_VCARD4: &str = "urn:ietf:params:xml:ns:vcard-4.0";
const NODE_VCARD4: &str = "urn:xmpp:vcard4";
const NODE_AVATAR_DATA: &str = "urn:xmpp:avatar:data";
const NODE_AVATAR_METADATA: &str = "urn:xmpp:avatar:metadata";

pub struct VCardModule;

impl Module for VCardModule {
    fn name(&self) -> &'static str {
        "vcard"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature(NS);
        registry.disco.add_account_feature(NS_CONVERSION);
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
            Ok(true) => IqOutcome::Result(Some(with_pep_avatar(&req, empty_vcard()).await)),
            Ok(false) => no_such_account(),
            Err(error) => storage_failed("looking up an account", &error),
        };
    };
    match rookery_xml::parse_element(&xml) {
        Ok(vcard) => IqOutcome::Result(Some(with_pep_avatar(&req, vcard).await)),
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
    // PEP first: if it refuses, nothing is stored.
    if let Err(error) = publish_to_pep(&req, vcard).await {
        return IqOutcome::Error(error);
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

/// The vCard with the account's PEP avatar as its PHOTO, if it has one the requester may see.
async fn with_pep_avatar(req: &IqRequest<'_>, mut vcard: Element) -> Element {
    let owner = addressed_account(req);
    let requester = req.from.to_bare();
    let server = req.server;
    let Ok(metadata) = pep::read_items(
        server,
        owner,
        &requester,
        NODE_AVATAR_METADATA,
        &[],
        Some(1),
    )
    .await
    else {
        return vcard;
    };
    let Some(latest) = metadata
        .first()
        .and_then(|item| rookery_xml::parse_element(&item.payload).ok())
    else {
        return vcard;
    };
    let Some(info) = latest.get_child("info", NODE_AVATAR_METADATA).cloned() else {
        // Empty metadata: the avatar is disabled (XEP-0084 §4.6). A PHOTO left in the stored vCard would bring
        // it back for vcard-temp readers.
        vcard.retain_children(|c| !c.is("PHOTO", NS));
        return vcard;
    };
    let mut photo = Element::new("PHOTO", NS);
    if let Some(kind) = info.attr("type") {
        photo.append_child(Element::new("TYPE", NS).with_text(kind));
    }
    if let Some(url) = info.attr("url") {
        photo.append_child(Element::new("EXTVAL", NS).with_text(url));
    } else {
        let Some(id) = info.attr("id") else {
            return vcard;
        };
        let data = pep::read_items(
            server,
            owner,
            &requester,
            NODE_AVATAR_DATA,
            &[id.to_owned()],
            None,
        )
        .await
        .ok()
        .and_then(|items| items.into_iter().next())
        .and_then(|item| rookery_xml::parse_element(&item.payload).ok());
        let Some(data) = data else {
            return vcard;
        };
        photo.append_child(Element::new("BINVAL", NS).with_text(data.text()));
    }
    vcard.retain_children(|c| !c.is("PHOTO", NS));
    vcard.append_child(photo);
    vcard
}

/// Options for the nodes the conversion publishes to: created open (what the apps use for avatars), and an
/// existing node is used as it is (Prosody's `_defaults_only`).
async fn open_if_new(
    server: &rookery_core::Server,
    owner: &str,
    node: &str,
) -> Result<Option<Element>, StanzaError> {
    Ok(pep::node_config(server, owner, node)
        .await?
        .is_none()
        .then(|| {
            Form::with_form_type(FormKind::Submit, PUBLISH_OPTIONS)
                .with_field(
                    Field::new("pubsub#access_model", FieldKind::ListSingle).with_value("open"),
                )
                .to_element()
        }))
}

/// The vCard's fields that have a vCard4 form, as a vCard4 (XEP-0292); `None` if there are none.
fn to_vcard4(vcard: &Element) -> Option<Element> {
    let text = |name: &str| {
        vcard
            .get_child(name, NS)
            .map(Element::text)
            .filter(|t| !t.trim().is_empty())
    };
    let mut v4 = Element::new("vcard", NS_VCARD4);
    let mut add = |prop: &str, kind: &str, value: String| {
        v4.append_child(
            Element::new(prop, NS_VCARD4)
                .with_child(Element::new(kind, NS_VCARD4).with_text(value)),
        );
    };
    if let Some(v) = text("FN") {
        add("fn", "text", v);
    }
    if let Some(v) = text("NICKNAME") {
        add("nickname", "text", v);
    }
    if let Some(v) = text("BDAY") {
        add("bday", "date", v);
    }
    if let Some(v) = text("URL") {
        add("url", "uri", v);
    }
    if let Some(v) = text("NOTE") {
        add("note", "text", v);
    }
    for email in vcard.children().filter(|c| c.is("EMAIL", NS)) {
        if let Some(v) = email
            .get_child("USERID", NS)
            .map(Element::text)
            .filter(|t| !t.is_empty())
        {
            add("email", "text", v);
        }
    }
    for tel in vcard.children().filter(|c| c.is("TEL", NS)) {
        if let Some(v) = tel
            .get_child("NUMBER", NS)
            .map(Element::text)
            .filter(|t| !t.is_empty())
        {
            add("tel", "uri", format!("tel:{v}"));
        }
    }
    let empty = v4.first_child().is_none();
    (!empty).then_some(v4)
}

/// Whether the account's latest avatar metadata names an avatar (a missing node or empty metadata do not).
async fn has_avatar(req: &IqRequest<'_>) -> bool {
    let owner = addressed_account(req);
    let latest = pep::read_items(
        req.server,
        owner,
        &req.from.to_bare(),
        NODE_AVATAR_METADATA,
        &[],
        Some(1),
    )
    .await;
    latest.ok().is_some_and(|items| {
        items.first().is_some_and(|item| {
            rookery_xml::parse_element(&item.payload)
                .is_ok_and(|m| m.has_child("info", NODE_AVATAR_METADATA))
        })
    })
}

/// XEP-0398: the vCard's PHOTO becomes the PEP avatar (a vCard without one removes it) and its fields the vCard4.
async fn publish_to_pep(req: &IqRequest<'_>, vcard: &Element) -> Result<(), StanzaError> {
    let server = req.server;
    let owner = addressed_account(req);
    let publisher = req.from.to_bare().to_string();
    let photo = vcard.get_child("PHOTO", NS);
    let binval = photo
        .and_then(|p| p.get_child("BINVAL", NS))
        .map(|b| b.text().split_whitespace().collect::<String>())
        .filter(|b| !b.is_empty());
    if let Some(binval) = binval {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(binval.as_bytes())
            .map_err(|_| {
                StanzaError::with_text(StanzaCondition::BadRequest, "the PHOTO is not base64")
            })?;
        let id: String = Sha1::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let kind = photo
            .and_then(|p| p.get_child("TYPE", NS))
            .map(Element::text)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "image/png".to_owned());
        let data = Element::new("data", NODE_AVATAR_DATA).with_text(binval);
        let options = open_if_new(server, owner, NODE_AVATAR_DATA).await?;
        pep::publish_item(
            server,
            owner,
            NODE_AVATAR_DATA,
            Some(&id),
            data,
            options.as_ref(),
            &publisher,
        )
        .await?;
        let metadata = Element::new("metadata", NODE_AVATAR_METADATA).with_child(
            Element::new("info", NODE_AVATAR_METADATA)
                .with_attr("id", id.as_str())
                .with_attr("bytes", bytes.len().to_string())
                .with_attr("type", kind),
        );
        let options = open_if_new(server, owner, NODE_AVATAR_METADATA).await?;
        pep::publish_item(
            server,
            owner,
            NODE_AVATAR_METADATA,
            Some(&id),
            metadata,
            options.as_ref(),
            &publisher,
        )
        .await?;
    } else if has_avatar(req).await {
        // A vCard without a photo removes the avatar, as Prosody's mod_vcard_legacy does; the XEP-0084 way of
        // saying so (§4.6), so that contacts showing it are told.
        pep::publish_item(
            server,
            owner,
            NODE_AVATAR_METADATA,
            Some("current"),
            Element::new("metadata", NODE_AVATAR_METADATA),
            None,
            &publisher,
        )
        .await?;
    }
    if let Some(v4) = to_vcard4(vcard) {
        let options = open_if_new(server, owner, NODE_VCARD4).await?;
        pep::publish_item(
            server,
            owner,
            NODE_VCARD4,
            Some("current"),
            v4,
            options.as_ref(),
            &publisher,
        )
        .await?;
    }
    Ok(())
}
