//! Bind2 inline features (XEP-0386): a module that can be enabled inside the Bind2 request (carbons, ...) adds a
//! [`Bind2Inline`] to the [`Bind2Features`] registry in [`crate::Registry::extensions`]. The connection lists their
//! namespaces in the SASL2 feature and hands each request element in `<bind/>` to the one registered for its
//! namespace, for the session just bound; what it returns goes into `<bound/>`.
//!
//! XEP-0198's inline `<enable/>` is not one of these: stream management lives in the connection task, which handles
//! it where it runs the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use rookery_xml::Element;

use crate::{BoxFuture, Server, Session};

/// One feature that can be requested inside Bind2.
pub trait Bind2Inline: Send + Sync {
    /// The namespace advertised as `<feature var='...'/>` and matched against the request elements.
    fn namespace(&self) -> &'static str;

    /// Carries out `request` (a child of `<bind/>` in [`Self::namespace`]) for the session just bound; the element
    /// returned, if any, goes into `<bound/>`.
    fn enable<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
        request: Element,
    ) -> BoxFuture<'a, Option<Element>>;
}

/// The registry of Bind2 inline features, keyed by namespace.
#[derive(Default)]
pub struct Bind2Features {
    by_namespace: BTreeMap<&'static str, Arc<dyn Bind2Inline>>,
}

impl Bind2Features {
    /// Adds a feature; a second one for the same namespace replaces the first.
    pub fn add(&mut self, feature: Arc<dyn Bind2Inline>) {
        self.by_namespace.insert(feature.namespace(), feature);
    }

    /// The namespaces to advertise, in a stable order.
    pub fn namespaces(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_namespace.keys().copied()
    }

    /// Runs the inline requests for a session just bound, in the order the client sent them; requests in a
    /// namespace nobody registered are ignored, as XEP-0386 asks.
    pub async fn enable_all(
        &self,
        server: &Arc<Server>,
        session: &Arc<Session>,
        requests: Vec<Element>,
    ) -> Vec<Element> {
        let mut results = Vec::new();
        for request in requests {
            let Some(feature) = self.by_namespace.get(request.ns()) else {
                continue;
            };
            if let Some(result) = feature.enable(server, session, request).await {
                results.push(result);
            }
        }
        results
    }
}
