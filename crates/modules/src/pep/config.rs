//! A PEP node's configuration (XEP-0060 §8.2, `pubsub#node_config`): what the owner may set, how it is shown and
//! stored, and how publish-options preconditions (§7.1.5) are compared with it.

use crate::forms::{Field, FieldKind, Form, FormKind};

/// `http://jabber.org/protocol/pubsub#node_config`.
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// `http://jabber.org/protocol/pubsub#publish-options`.
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// Who may retrieve items and receive notifications (XEP-0060 §4.5). `authorize` is not offered, as in Prosody's
/// PEP: nobody is there to approve requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessModel {
    /// Anyone.
    Open,
    /// Contacts subscribed to the owner's presence (`from` or `both`): PEP's default (XEP-0163 §3).
    Presence,
    /// Contacts in one of the allowed roster groups.
    Roster,
    /// The owner alone (Rookery keeps no whitelist of other JIDs).
    Whitelist,
}

impl AccessModel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Presence => "presence",
            Self::Roster => "roster",
            Self::Whitelist => "whitelist",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "presence" => Some(Self::Presence),
            "roster" => Some(Self::Roster),
            "whitelist" => Some(Self::Whitelist),
            _ => None,
        }
    }
}

/// When the last item goes to someone who starts receiving a node's notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendLast {
    Never,
    OnSub,
    /// On subscription and whenever a contact becomes available with `+notify` capabilities (PEP's default).
    OnSubAndPresence,
}

impl SendLast {
    fn name(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::OnSub => "on_sub",
            Self::OnSubAndPresence => "on_sub_and_presence",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "never" => Some(Self::Never),
            "on_sub" => Some(Self::OnSub),
            "on_sub_and_presence" => Some(Self::OnSubAndPresence),
            _ => None,
        }
    }
}

/// A node's configuration. The defaults are Prosody's PEP defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub title: Option<String>,
    pub description: Option<String>,
    pub access_model: AccessModel,
    /// For [`AccessModel::Roster`].
    pub roster_groups_allowed: Vec<String>,
    pub max_items: u32,
    pub persist_items: bool,
    pub send_last_published_item: SendLast,
    pub notify_retract: bool,
    pub notify_delete: bool,
    /// Notifications are `headline` (the default) or `normal` messages.
    pub notification_type: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            title: None,
            description: None,
            access_model: AccessModel::Presence,
            roster_groups_allowed: Vec::new(),
            max_items: 1,
            persist_items: true,
            send_last_published_item: SendLast::OnSubAndPresence,
            notify_retract: true,
            notify_delete: true,
            notification_type: "headline".to_owned(),
        }
    }
}

/// An empty text field sets nothing.
fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn parse_bool(var: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!("{var} is not a boolean: {other:?}")),
    }
}

fn single<'a>(var: &str, values: &'a [String]) -> Result<&'a str, String> {
    match values {
        [value] => Ok(value.as_str()),
        [] => Ok(""),
        _ => Err(format!("{var} takes one value")),
    }
}

impl NodeConfig {
    /// Applies the fields of a submitted form (node configuration or publish-options). Fields this server does not
    /// know are ignored, as Prosody does; a known field with a value it cannot take is an error (the text says
    /// which). `max_max_items` is what `max` means and the most a node may keep.
    pub fn apply(&mut self, form: &Form, max_max_items: u32) -> Result<(), String> {
        for field in &form.fields {
            let Some(var) = field.var.as_deref() else {
                continue;
            };
            let values = field.values.as_slice();
            match var {
                "pubsub#title" => self.title = non_empty(single(var, values)?),
                "pubsub#description" => self.description = non_empty(single(var, values)?),
                "pubsub#access_model" => {
                    let value = single(var, values)?;
                    self.access_model = AccessModel::parse(value)
                        .ok_or_else(|| format!("access model {value:?} is not offered"))?;
                }
                "pubsub#roster_groups_allowed" => self.roster_groups_allowed = values.to_vec(),
                "pubsub#max_items" => {
                    let value = single(var, values)?;
                    self.max_items = if value == "max" {
                        max_max_items
                    } else {
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|n| (1..=max_max_items).contains(n))
                            .ok_or_else(|| {
                                format!("max_items must be 1 to {max_max_items} or \"max\", not {value:?}")
                            })?
                    };
                }
                "pubsub#persist_items" => {
                    self.persist_items = parse_bool(var, single(var, values)?)?
                }
                "pubsub#send_last_published_item" => {
                    let value = single(var, values)?;
                    self.send_last_published_item = SendLast::parse(value)
                        .ok_or_else(|| format!("send_last_published_item {value:?} is unknown"))?;
                }
                "pubsub#notify_retract" => {
                    self.notify_retract = parse_bool(var, single(var, values)?)?
                }
                "pubsub#notify_delete" => {
                    self.notify_delete = parse_bool(var, single(var, values)?)?
                }
                "pubsub#notification_type" => {
                    let value = single(var, values)?;
                    if !matches!(value, "headline" | "normal") {
                        return Err(format!("notification_type {value:?} is not offered"));
                    }
                    value.clone_into(&mut self.notification_type);
                }
                // Fields that exist but can take one value only here: a form asking for another is refused.
                "pubsub#publish_model" if single(var, values)? != "publishers" => {
                    return Err(format!("{var} can only be publishers"));
                }
                "pubsub#deliver_payloads" | "pubsub#deliver_notifications"
                    if !parse_bool(var, single(var, values)?)? =>
                {
                    return Err(format!("{var} can only be true"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The value of a field in a canonical form, for comparing preconditions; `None` for fields not kept.
    fn canonical(&self, var: &str) -> Option<Vec<String>> {
        let one = |s: &str| Some(vec![s.to_owned()]);
        match var {
            "pubsub#title" => one(self.title.as_deref().unwrap_or("")),
            "pubsub#description" => one(self.description.as_deref().unwrap_or("")),
            "pubsub#access_model" => one(self.access_model.name()),
            "pubsub#roster_groups_allowed" => {
                let mut groups = self.roster_groups_allowed.clone();
                groups.sort();
                Some(groups)
            }
            "pubsub#max_items" => one(&self.max_items.to_string()),
            "pubsub#persist_items" => one(&self.persist_items.to_string()),
            "pubsub#send_last_published_item" => one(self.send_last_published_item.name()),
            "pubsub#notify_retract" => one(&self.notify_retract.to_string()),
            "pubsub#notify_delete" => one(&self.notify_delete.to_string()),
            "pubsub#notification_type" => one(&self.notification_type),
            "pubsub#publish_model" => one("publishers"),
            "pubsub#deliver_payloads" | "pubsub#deliver_notifications" => one("true"),
            _ => None,
        }
    }

    /// XEP-0060 §7.1.5: the first field of `options` (already checked with [`apply`](Self::apply)) on which this
    /// node's configuration differs from `requested`, the node defaults with the options applied.
    pub fn unmet_precondition<'a>(&self, options: &'a Form, requested: &Self) -> Option<&'a str> {
        options
            .fields
            .iter()
            .filter_map(|f| f.var.as_deref())
            .filter(|var| *var != "FORM_TYPE")
            .find(|var| {
                let (mine, wanted) = (self.canonical(var), requested.canonical(var));
                mine.is_some() && mine != wanted
            })
    }

    /// The configuration as a form: `form` to show the owner, `submit` to store it.
    pub fn to_form(&self, kind: FormKind, max_max_items: u32) -> Form {
        let bool_value = |b: bool| if b { "1" } else { "0" };
        let mut access = Field::new("pubsub#access_model", FieldKind::ListSingle)
            .with_label("Who may subscribe and retrieve items")
            .with_value(self.access_model.name());
        for model in [
            AccessModel::Open,
            AccessModel::Presence,
            AccessModel::Roster,
            AccessModel::Whitelist,
        ] {
            access = access.with_option(None, model.name());
        }
        let mut groups = Field::new("pubsub#roster_groups_allowed", FieldKind::ListMulti)
            .with_label("Roster groups allowed to subscribe");
        groups.values.clone_from(&self.roster_groups_allowed);
        let mut send_last = Field::new("pubsub#send_last_published_item", FieldKind::ListSingle)
            .with_label("When to send the last published item")
            .with_value(self.send_last_published_item.name());
        for option in [SendLast::Never, SendLast::OnSub, SendLast::OnSubAndPresence] {
            send_last = send_last.with_option(None, option.name());
        }
        let notification_type = Field::new("pubsub#notification_type", FieldKind::ListSingle)
            .with_label("Message type of notifications")
            .with_value(self.notification_type.as_str())
            .with_option(None, "headline")
            .with_option(None, "normal");
        Form::with_form_type(kind, NODE_CONFIG)
            .with_field(
                Field::new("pubsub#title", FieldKind::TextSingle)
                    .with_label("A friendly name for the node")
                    .with_value(self.title.as_deref().unwrap_or("")),
            )
            .with_field(
                Field::new("pubsub#description", FieldKind::TextSingle)
                    .with_label("A description of the node")
                    .with_value(self.description.as_deref().unwrap_or("")),
            )
            .with_field(access)
            .with_field(groups)
            .with_field(
                Field::new("pubsub#max_items", FieldKind::TextSingle)
                    .with_label(&format!("Items to keep (1 to {max_max_items}, or max)"))
                    .with_value(self.max_items.to_string()),
            )
            .with_field(
                Field::new("pubsub#persist_items", FieldKind::Boolean)
                    .with_label("Keep items in storage")
                    .with_value(bool_value(self.persist_items)),
            )
            .with_field(send_last)
            .with_field(
                Field::new("pubsub#notify_retract", FieldKind::Boolean)
                    .with_label("Notify subscribers when items are removed")
                    .with_value(bool_value(self.notify_retract)),
            )
            .with_field(
                Field::new("pubsub#notify_delete", FieldKind::Boolean)
                    .with_label("Notify subscribers when the node is deleted")
                    .with_value(bool_value(self.notify_delete)),
            )
            .with_field(notification_type)
            .with_field(
                Field::new("pubsub#publish_model", FieldKind::ListSingle)
                    .with_label("Who may publish")
                    .with_value("publishers")
                    .with_option(None, "publishers"),
            )
    }

    /// The configuration written out for storage.
    pub fn to_stored(&self, max_max_items: u32) -> String {
        self.to_form(FormKind::Submit, max_max_items)
            .to_element()
            .to_xml_string()
    }

    /// Reads a stored configuration. What cannot be read falls back to the defaults field by field, so a node
    /// stored by another version stays usable.
    pub fn from_stored(stored: &str, max_max_items: u32) -> Self {
        let mut config = Self::default();
        let form = rookery_xml::parse_element(stored)
            .ok()
            .and_then(|el| Form::parse(&el).ok());
        if let Some(form) = form {
            for field in form.fields {
                let one = Form::new(FormKind::Submit).with_field(field);
                let mut candidate = config.clone();
                if candidate.apply(&one, max_max_items).is_ok() {
                    config = candidate;
                }
            }
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(fields: &[(&str, &str)]) -> Form {
        let mut form = Form::with_form_type(FormKind::Submit, PUBLISH_OPTIONS);
        for (var, value) in fields {
            form = form.with_field(Field {
                var: Some((*var).to_owned()),
                values: vec![(*value).to_owned()],
                ..Field::default()
            });
        }
        form
    }

    #[test]
    fn max_means_the_server_maximum_and_larger_is_refused() {
        let mut config = NodeConfig::default();
        config
            .apply(&options(&[("pubsub#max_items", "max")]), 256)
            .unwrap();
        assert_eq!(config.max_items, 256);
        assert!(
            config
                .apply(&options(&[("pubsub#max_items", "257")]), 256)
                .is_err()
        );
        assert!(
            config
                .apply(&options(&[("pubsub#max_items", "0")]), 256)
                .is_err()
        );
        assert!(
            config
                .apply(&options(&[("pubsub#max_items", "x")]), 256)
                .is_err()
        );
    }

    #[test]
    fn preconditions_compare_canonical_values() {
        let mut node = NodeConfig::default();
        node.apply(
            &options(&[("pubsub#access_model", "open"), ("pubsub#max_items", "max")]),
            256,
        )
        .unwrap();
        let asked = options(&[
            ("pubsub#access_model", "open"),
            ("pubsub#max_items", "256"),
            ("pubsub#persist_items", "1"),
            ("pubsub#unknown", "whatever"),
        ]);
        let mut requested = NodeConfig::default();
        requested.apply(&asked, 256).unwrap();
        assert_eq!(node.unmet_precondition(&asked, &requested), None);
        let asked = options(&[("pubsub#access_model", "whitelist")]);
        let mut requested = NodeConfig::default();
        requested.apply(&asked, 256).unwrap();
        assert_eq!(
            node.unmet_precondition(&asked, &requested),
            Some("pubsub#access_model")
        );
    }

    #[test]
    fn stored_configurations_read_back() {
        let mut config = NodeConfig::default();
        config
            .apply(
                &options(&[
                    ("pubsub#access_model", "roster"),
                    ("pubsub#send_last_published_item", "never"),
                    ("pubsub#title", "Things & <stuff>"),
                    ("pubsub#max_items", "12"),
                ]),
                256,
            )
            .unwrap();
        config.roster_groups_allowed = vec!["Family".to_owned(), "Friends".to_owned()];
        assert_eq!(NodeConfig::from_stored(&config.to_stored(256), 256), config);
        assert_eq!(
            NodeConfig::from_stored("garbage", 256),
            NodeConfig::default()
        );
    }

    #[test]
    fn fixed_fields_take_their_one_value() {
        let mut config = NodeConfig::default();
        assert!(
            config
                .apply(&options(&[("pubsub#publish_model", "publishers")]), 256)
                .is_ok()
        );
        assert!(
            config
                .apply(&options(&[("pubsub#publish_model", "open")]), 256)
                .is_err()
        );
        assert!(
            config
                .apply(&options(&[("pubsub#deliver_payloads", "0")]), 256)
                .is_err()
        );
    }
}
