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

/// The host's identities, features and items.
#[derive(Clone, Debug, Default)]
pub struct Disco {
    pub identities: BTreeSet<Identity>,
    pub features: BTreeSet<String>,
    pub items: Vec<Item>,
    /// Features of each account's bare JID (PEP and the like).
    pub account_features: BTreeSet<String>,
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

    pub fn add_account_feature(&mut self, feature: &str) {
        self.account_features.insert(feature.to_owned());
    }

    pub fn add_item(&mut self, jid: &str, name: Option<&str>) {
        self.items.push(Item {
            jid: jid.to_owned(),
            name: name.map(str::to_owned),
        });
    }
}
