//! What the server says about itself in service discovery (XEP-0030), filled in by the modules.

use std::collections::BTreeSet;

/// A disco#info identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub category: String,
    pub kind: String,
    pub name: Option<String>,
}

/// A disco#items item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub jid: String,
    pub name: Option<String>,
}

/// Builds a XEP-0128 extension form for the host's disco#info from the running server (its configuration, say),
/// or `None` when there is nothing to say.
pub type ExtensionForm = fn(&crate::Server) -> Option<rookery_xml::Element>;

/// The host's identities, features and items.
#[derive(Clone, Debug, Default)]
pub struct Disco {
    pub identities: BTreeSet<Identity>,
    pub features: BTreeSet<String>,
    pub items: Vec<Item>,
    /// Identities of each account's bare JID besides `account/registered` (PEP's `pubsub/pep`).
    pub account_identities: BTreeSet<Identity>,
    /// Features of each account's bare JID (PEP and the like).
    pub account_features: BTreeSet<String>,
    /// XEP-0128 extension forms of the host's disco#info (XEP-0157 contact addresses, ...).
    pub extension_forms: Vec<ExtensionForm>,
}

impl Disco {
    pub fn add_identity(&mut self, category: &str, kind: &str, name: Option<&str>) {
        self.identities.insert(Identity {
            category: category.to_owned(),
            kind: kind.to_owned(),
            name: name.map(str::to_owned),
        });
    }

    pub fn add_feature(&mut self, feature: &str) {
        self.features.insert(feature.to_owned());
    }

    pub fn add_account_identity(&mut self, category: &str, kind: &str, name: Option<&str>) {
        self.account_identities.insert(Identity {
            category: category.to_owned(),
            kind: kind.to_owned(),
            name: name.map(str::to_owned),
        });
    }

    pub fn add_account_feature(&mut self, feature: &str) {
        self.account_features.insert(feature.to_owned());
    }

    /// Adds a XEP-0128 extension form to the host's disco#info.
    pub fn add_extension_form(&mut self, form: ExtensionForm) {
        self.extension_forms.push(form);
    }

    pub fn add_item(&mut self, jid: &str, name: Option<&str>) {
        self.items.push(Item {
            jid: jid.to_owned(),
            name: name.map(str::to_owned),
        });
    }
}
