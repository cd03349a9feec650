//! XEP-0115 entity capabilities, as PEP uses them: which nodes a client wants notifications for (its `+notify`
//! features, XEP-0163 §4), learnt by asking the client for the disco#info behind its `ver` once and kept by the
//! hash the server computed itself, as Prosody does: a client announcing a `ver` that does not match what it
//! answers is asked again each time and never changes what other clients with that `ver` get.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use rookery_xml::{Element, ns};
use sha1::{Digest, Sha1};

use crate::forms::NS as DATA_FORMS;

/// Distinct capability sets kept. Each is a few hundred bytes; real deployments see a few dozen client versions.
pub const CACHE_MAX: usize = 1000;

/// The nodes a client wants notifications for.
pub type Interests = Arc<HashSet<String>>;

/// What is known of clients' capabilities.
#[derive(Default)]
pub struct CapsCache {
    /// `+notify` nodes by verified `ver` (sha-1).
    by_ver: Mutex<HashMap<String, Interests>>,
    /// `+notify` nodes of each session with known capabilities, by session id.
    by_session: Mutex<HashMap<u64, Interests>>,
}

impl CapsCache {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The interests behind a verified `ver`, if already learnt.
    pub fn known(&self, ver: &str) -> Option<Interests> {
        Self::lock(&self.by_ver).get(ver).cloned()
    }

    /// Remembers the interests behind a verified `ver`. When full, an arbitrary entry makes room: a forgotten
    /// `ver` only costs one more query.
    pub fn remember(&self, ver: String, interests: Interests) {
        let mut by_ver = Self::lock(&self.by_ver);
        let evicted = (by_ver.len() >= CACHE_MAX && !by_ver.contains_key(&ver))
            .then(|| by_ver.keys().next().cloned())
            .flatten();
        if let Some(evicted) = evicted {
            by_ver.remove(&evicted);
        }
        by_ver.insert(ver, interests);
    }

    /// Sets a session's interests, returning what they were.
    pub fn set_session(&self, session: u64, interests: Interests) -> Option<Interests> {
        Self::lock(&self.by_session).insert(session, interests)
    }

    /// A session's interests (none until its capabilities are known).
    pub fn session(&self, session: u64) -> Option<Interests> {
        Self::lock(&self.by_session).get(&session).cloned()
    }

    /// Forgets a session (it ended or went unavailable).
    pub fn forget_session(&self, session: u64) {
        Self::lock(&self.by_session).remove(&session);
    }
}

/// The nodes named by `+notify` features in a disco#info answer.
pub fn interests_of(query: &Element) -> HashSet<String> {
    query
        .children()
        .filter(|c| c.is("feature", ns::DISCO_INFO))
        .filter_map(|c| c.attr("var")?.strip_suffix("+notify"))
        .map(str::to_owned)
        .collect()
}

/// The XEP-0115 §5.1 verification string of a disco#info answer: identities, features and extension forms, each
/// sorted. `None` when the answer breaks §5.4's rules (duplicate identities or features, forms without FORM_TYPE):
/// such an answer cannot stand for a `ver`.
fn verification_string(query: &Element) -> Option<String> {
    let mut identities: Vec<String> = query
        .children()
        .filter(|c| c.is("identity", ns::DISCO_INFO))
        .map(|c| {
            format!(
                "{}/{}/{}/{}<",
                c.attr("category").unwrap_or(""),
                c.attr("type").unwrap_or(""),
                c.attr("xml:lang").unwrap_or(""),
                c.attr("name").unwrap_or("")
            )
        })
        .collect();
    let mut features: Vec<String> = query
        .children()
        .filter(|c| c.is("feature", ns::DISCO_INFO))
        .map(|c| format!("{}<", c.attr("var").unwrap_or("")))
        .collect();
    let mut forms = Vec::new();
    for form in query.children().filter(|c| c.is("x", DATA_FORMS)) {
        let mut form_type = None;
        let mut fields = Vec::new();
        for field in form.children().filter(|c| c.is("field", DATA_FORMS)) {
            let var = field.attr("var").unwrap_or("");
            let mut values: Vec<String> = field
                .children()
                .filter(|v| v.is("value", DATA_FORMS))
                .map(Element::text)
                .collect();
            values.sort();
            if var == "FORM_TYPE" {
                form_type = Some(values.concat());
                continue;
            }
            let mut s = format!("{var}<");
            for value in values {
                s.push_str(&value);
                s.push('<');
            }
            fields.push(s);
        }
        fields.sort();
        forms.push((form_type?, fields.concat()));
    }
    for list in [&mut identities, &mut features] {
        let before = list.len();
        list.sort();
        list.dedup();
        if list.len() != before {
            return None;
        }
    }
    forms.sort();
    let mut s = identities.concat() + &features.concat();
    for (form_type, fields) in forms {
        s.push_str(&form_type);
        s.push('<');
        s.push_str(&fields);
    }
    Some(s)
}

/// The sha-1 `ver` of a disco#info answer (XEP-0115 §5.1), if it can have one.
pub fn sha1_ver(query: &Element) -> Option<String> {
    let s = verification_string(query)?;
    Some(base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(var: &str) -> Element {
        Element::new("feature", ns::DISCO_INFO).with_attr("var", var)
    }

    /// XEP-0115 §5.2, the simple example.
    #[test]
    fn the_simple_example_of_the_xep_hashes_as_published() {
        let query = Element::new("query", ns::DISCO_INFO)
            .with_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "client")
                    .with_attr("type", "pc")
                    .with_attr("name", "Exodus 0.9.1"),
            )
            .with_child(feature("http://jabber.org/protocol/caps"))
            .with_child(feature("http://jabber.org/protocol/disco#info"))
            .with_child(feature("http://jabber.org/protocol/disco#items"))
            .with_child(feature("http://jabber.org/protocol/muc"));
        assert_eq!(
            sha1_ver(&query).as_deref(),
            Some("QgayPKawpkPSDYmwT/WM94uAlu0=")
        );
    }

    #[test]
    fn duplicate_features_have_no_ver_and_notify_features_are_found() {
        let query = Element::new("query", ns::DISCO_INFO)
            .with_child(feature("urn:xmpp:avatar:metadata+notify"))
            .with_child(feature("urn:xmpp:avatar:metadata+notify"));
        assert_eq!(sha1_ver(&query), None);
        assert_eq!(
            interests_of(&query),
            HashSet::from(["urn:xmpp:avatar:metadata".to_owned()])
        );
    }
}
