//! XEP-0402 Bookmarks 2 and its compatibility views (§5.3 `#compat`, `#compat-pep`): the PEP node
//! `urn:xmpp:bookmarks:1` (one item per room, its id the room's JID) is the truth; the legacy XEP-0048
//! `<storage xmlns='storage:bookmarks'/>` in private XML storage (XEP-0049) and in the PEP node `storage:bookmarks`
//! are kept in step with it, both ways:
//!
//! - a client publishing or retracting a Bookmarks 2 item gets the legacy document rewritten in both places;
//! - a client storing the legacy document (private XML or legacy PEP) gets each room published to Bookmarks 2 where
//!   it differs, rooms no longer listed retracted (with notifications, so its other clients follow), and the other
//!   legacy place rewritten.
//!
//! The views are written through the PEP and private-storage repositories directly, not through the client paths,
//! so a change never comes back round. Legacy `<url/>` bookmarks have no Bookmarks 2 form and are not kept, as in
//! Prosody's mod_bookmarks.

use std::sync::Arc;

use rookery_core::Server;
use rookery_proto::StanzaError;
use rookery_store::PrivateChange;
use rookery_xml::Element;
use tracing::warn;

use crate::forms::{Field, FieldKind, Form, FormKind};
use crate::pep::{self, config::PUBLISH_OPTIONS};

/// The Bookmarks 2 node and payload namespace.
pub const NS_BOOKMARKS2: &str = "urn:xmpp:bookmarks:1";
/// The legacy bookmarks namespace (XEP-0048), also the legacy PEP node.
pub const NS_LEGACY: &str = "storage:bookmarks";

/// What XEP-0402 §4 asks the node to be: private, every room kept, nothing pushed on login.
fn node_options() -> Element {
    let field = |var: &str, value: &str| Field::new(var, FieldKind::TextSingle).with_value(value);
    Form::with_form_type(FormKind::Submit, PUBLISH_OPTIONS)
        .with_field(field("pubsub#persist_items", "true"))
        .with_field(field("pubsub#max_items", "max"))
        .with_field(field("pubsub#send_last_published_item", "never"))
        .with_field(field("pubsub#access_model", "whitelist"))
        .to_element()
}

fn is_true(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// A legacy `<conference/>` as a Bookmarks 2 item: (room JID, payload).
fn from_legacy(conference: &Element) -> Option<(String, Element)> {
    let jid = jid::BareJid::new(conference.attr("jid")?).ok()?;
    let mut el = Element::new("conference", NS_BOOKMARKS2);
    if let Some(name) = conference.attr("name") {
        el.set_attr("name", name);
    }
    if is_true(conference.attr("autojoin")) {
        el.set_attr("autojoin", "true");
    }
    for child in ["nick", "password"] {
        if let Some(value) = conference.get_child(child, NS_LEGACY) {
            el.append_child(Element::new(child, NS_BOOKMARKS2).with_text(value.text()));
        }
    }
    Some((jid.to_string(), el))
}

/// A Bookmarks 2 item as a legacy `<conference/>`.
fn to_legacy(jid: &str, conference: &Element) -> Element {
    let mut el = Element::new("conference", NS_LEGACY).with_attr("jid", jid);
    if let Some(name) = conference.attr("name") {
        el.set_attr("name", name);
    }
    el.set_attr(
        "autojoin",
        if is_true(conference.attr("autojoin")) {
            "true"
        } else {
            "false"
        },
    );
    for child in ["nick", "password"] {
        if let Some(value) = conference.get_child(child, NS_BOOKMARKS2) {
            el.append_child(Element::new(child, NS_LEGACY).with_text(value.text()));
        }
    }
    el
}

/// The account's Bookmarks 2 items: (room JID, payload).
async fn current(server: &Server, owner: &str) -> Result<Vec<(String, Element)>, String> {
    let items = server
        .store
        .pep()
        .items(owner, NS_BOOKMARKS2, &[], None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(items
        .into_iter()
        .filter_map(|item| {
            let payload = rookery_xml::parse_element(&item.payload).ok()?;
            Some((item.id, payload))
        })
        .collect())
}

/// The legacy document for the current Bookmarks 2 items.
async fn legacy_document(server: &Server, owner: &str) -> Result<Element, String> {
    let mut storage = Element::new("storage", NS_LEGACY);
    for (jid, conference) in current(server, owner).await? {
        storage.append_child(to_legacy(&jid, &conference));
    }
    Ok(storage)
}

/// Where the legacy document is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyPlace {
    /// Private XML storage (XEP-0049).
    Private,
    /// The PEP node `storage:bookmarks`.
    Pep,
}

/// Writes the legacy document to the given places.
async fn write_legacy(
    server: &Arc<Server>,
    owner: &str,
    storage: &Element,
    places: &[LegacyPlace],
) {
    if places.contains(&LegacyPlace::Private) {
        let change = PrivateChange {
            namespace: NS_LEGACY.to_owned(),
            name: "storage".to_owned(),
            xml: Some(storage.to_xml_string()),
        };
        let limit =
            u64::try_from(server.config.limits.private_storage_max_bytes).unwrap_or(u64::MAX);
        if let Err(error) = server
            .store
            .private_xml()
            .apply(owner, &[change], limit)
            .await
        {
            warn!(%error, "legacy bookmarks could not be written to private storage");
        }
    }
    if places.contains(&LegacyPlace::Pep) {
        let options = pep::node_config(server, owner, NS_LEGACY)
            .await
            .ok()
            .flatten()
            .is_none()
            .then(node_options);
        let publisher = format!("{owner}@{}", server.domain);
        if let Err(error) = pep::publish_item(
            server,
            owner,
            NS_LEGACY,
            Some("current"),
            storage.clone(),
            options.as_ref(),
            &publisher,
        )
        .await
        {
            warn!(?error, "legacy bookmarks could not be written to PEP");
        }
    }
}

/// A client published to one of the account's PEP nodes.
pub async fn published(server: &Arc<Server>, owner: &str, node: &str, payload: &Element) {
    match node {
        NS_BOOKMARKS2 => bookmarks2_changed(server, owner).await,
        NS_LEGACY if payload.is("storage", NS_LEGACY) => {
            if let Err(error) = legacy_stored(server, owner, payload, LegacyPlace::Pep).await {
                warn!(?error, "legacy PEP bookmarks could not be converted");
            }
        }
        _ => {}
    }
}

/// A client retracted an item of one of the account's PEP nodes.
pub async fn retracted(server: &Arc<Server>, owner: &str, node: &str) {
    if node == NS_BOOKMARKS2 {
        bookmarks2_changed(server, owner).await;
    }
}

async fn bookmarks2_changed(server: &Arc<Server>, owner: &str) {
    match legacy_document(server, owner).await {
        Ok(storage) => {
            write_legacy(
                server,
                owner,
                &storage,
                &[LegacyPlace::Private, LegacyPlace::Pep],
            )
            .await;
        }
        Err(error) => warn!(%error, "Bookmarks 2 could not be read for the legacy views"),
    }
}

/// A client stored the legacy document in one place: Bookmarks 2 follows it, and so does the other legacy place.
pub async fn legacy_stored(
    server: &Arc<Server>,
    owner: &str,
    storage: &Element,
    stored_in: LegacyPlace,
) -> Result<(), StanzaError> {
    let wanted: Vec<(String, Element)> = storage
        .children()
        .filter(|c| c.is("conference", NS_LEGACY))
        .filter_map(from_legacy)
        .collect();
    let existing = current(server, owner).await.unwrap_or_default();
    let publisher = format!("{owner}@{}", server.domain);
    let mut options = pep::node_config(server, owner, NS_BOOKMARKS2)
        .await?
        .is_none()
        .then(node_options);
    for (jid, conference) in &wanted {
        if existing.iter().any(|(j, c)| j == jid && c == conference) {
            continue;
        }
        pep::publish_item(
            server,
            owner,
            NS_BOOKMARKS2,
            Some(jid),
            conference.clone(),
            options.take().as_ref(),
            &publisher,
        )
        .await?;
    }
    for (jid, _) in &existing {
        if !wanted.iter().any(|(j, _)| j == jid) {
            pep::retract_item(server, owner, NS_BOOKMARKS2, jid, true).await?;
        }
    }
    let storage = legacy_document(server, owner).await.map_err(|error| {
        warn!(%error, "Bookmarks 2 could not be read back");
        StanzaError::new(rookery_proto::StanzaCondition::InternalServerError)
    })?;
    let other = match stored_in {
        LegacyPlace::Private => LegacyPlace::Pep,
        LegacyPlace::Pep => LegacyPlace::Private,
    };
    write_legacy(server, owner, &storage, &[other]).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conferences_convert_both_ways() {
        let legacy = Element::new("conference", NS_LEGACY)
            .with_attr("jid", "room@groups.example.com")
            .with_attr("name", "The Room")
            .with_attr("autojoin", "1")
            .with_child(Element::new("nick", NS_LEGACY).with_text("ali"));
        let (jid, b2) = from_legacy(&legacy).unwrap();
        assert_eq!(jid, "room@groups.example.com");
        assert_eq!(b2.attr("autojoin"), Some("true"));
        assert_eq!(b2.get_child("nick", NS_BOOKMARKS2).unwrap().text(), "ali");
        let back = to_legacy(&jid, &b2);
        assert_eq!(back.attr("autojoin"), Some("true"));
        assert_eq!(back.attr("name"), Some("The Room"));
        assert_eq!(back.get_child("nick", NS_LEGACY).unwrap().text(), "ali");
        assert!(
            from_legacy(&Element::new("conference", NS_LEGACY).with_attr("jid", "not a jid@"))
                .is_none()
        );
    }
}
