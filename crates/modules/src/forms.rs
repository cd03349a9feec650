//! XEP-0004 data forms: building the forms the server shows (ad-hoc commands, XEP-0128 extensions) and reading the
//! ones clients submit.

use std::fmt;

use jid::Jid;
use rookery_xml::Element;

/// `jabber:x:data`.
pub const NS: &str = "jabber:x:data";

/// What a form is for (its `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormKind {
    /// A form to fill in.
    Form,
    /// A filled-in form.
    Submit,
    /// The requester gave up on the form.
    Cancel,
    /// Data returned.
    Result,
}

impl FormKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Form => "form",
            Self::Submit => "submit",
            Self::Cancel => "cancel",
            Self::Result => "result",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "form" => Some(Self::Form),
            "submit" => Some(Self::Submit),
            "cancel" => Some(Self::Cancel),
            "result" => Some(Self::Result),
            _ => None,
        }
    }
}

/// A field's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Boolean,
    Fixed,
    Hidden,
    JidMulti,
    JidSingle,
    ListMulti,
    ListSingle,
    TextMulti,
    TextPrivate,
    TextSingle,
}

impl FieldKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Fixed => "fixed",
            Self::Hidden => "hidden",
            Self::JidMulti => "jid-multi",
            Self::JidSingle => "jid-single",
            Self::ListMulti => "list-multi",
            Self::ListSingle => "list-single",
            Self::TextMulti => "text-multi",
            Self::TextPrivate => "text-private",
            Self::TextSingle => "text-single",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Boolean,
            Self::Fixed,
            Self::Hidden,
            Self::JidMulti,
            Self::JidSingle,
            Self::ListMulti,
            Self::ListSingle,
            Self::TextMulti,
            Self::TextPrivate,
            Self::TextSingle,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// One field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    pub var: Option<String>,
    /// `None` when the field has no `type` (submitted forms usually leave it out).
    pub kind: Option<FieldKind>,
    pub label: Option<String>,
    pub desc: Option<String>,
    pub required: bool,
    pub values: Vec<String>,
    /// The choices of a list field: (label, value).
    pub options: Vec<(Option<String>, String)>,
}

impl Field {
    pub fn new(var: &str, kind: FieldKind) -> Self {
        Self {
            var: Some(var.to_owned()),
            kind: Some(kind),
            ..Self::default()
        }
    }

    #[must_use]
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }

    #[must_use]
    pub fn with_desc(mut self, desc: &str) -> Self {
        self.desc = Some(desc.to_owned());
        self
    }

    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    #[must_use]
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.values.push(value.into());
        self
    }

    #[must_use]
    pub fn with_option(mut self, label: Option<&str>, value: &str) -> Self {
        self.options
            .push((label.map(str::to_owned), value.to_owned()));
        self
    }

    fn to_element(&self) -> Element {
        let mut el = Element::new("field", NS);
        if let Some(var) = &self.var {
            el.set_attr("var", var.as_str());
        }
        if let Some(kind) = self.kind {
            el.set_attr("type", kind.name());
        }
        if let Some(label) = &self.label {
            el.set_attr("label", label.as_str());
        }
        if let Some(desc) = &self.desc {
            el.append_child(Element::new("desc", NS).with_text(desc.as_str()));
        }
        if self.required {
            el.append_child(Element::new("required", NS));
        }
        for value in &self.values {
            el.append_child(Element::new("value", NS).with_text(value.as_str()));
        }
        for (label, value) in &self.options {
            let mut option = Element::new("option", NS)
                .with_child(Element::new("value", NS).with_text(value.as_str()));
            if let Some(label) = label {
                option.set_attr("label", label.as_str());
            }
            el.append_child(option);
        }
        el
    }

    fn parse(el: &Element) -> Result<Self, FormError> {
        let kind = match el.attr("type") {
            None => None,
            Some(t) => Some(
                FieldKind::parse(t)
                    .ok_or_else(|| FormError::Invalid(format!("unknown field type {t:?}")))?,
            ),
        };
        let mut field = Self {
            var: el.attr("var").map(str::to_owned),
            kind,
            label: el.attr("label").map(str::to_owned),
            ..Self::default()
        };
        for child in el.children().filter(|c| c.ns() == NS) {
            match child.name() {
                "value" => field.values.push(child.text()),
                "required" => field.required = true,
                "desc" => field.desc = Some(child.text()),
                "option" => {
                    let value = child
                        .get_child("value", NS)
                        .map(Element::text)
                        .unwrap_or_default();
                    field
                        .options
                        .push((child.attr("label").map(str::to_owned), value));
                }
                _ => {}
            }
        }
        Ok(field)
    }
}

/// A data form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    pub kind: FormKind,
    pub title: Option<String>,
    pub instructions: Option<String>,
    pub fields: Vec<Field>,
}

/// Why a submitted form cannot be used. Its text is meant for the person who filled it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    /// Not a data form at all, or one that breaks XEP-0004's syntax.
    Invalid(String),
    /// A required field is missing or empty.
    Missing(String),
    /// A field's value is not what it must be.
    BadValue { var: String, problem: String },
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(why) => write!(f, "invalid form: {why}"),
            Self::Missing(var) => write!(f, "the field {var:?} is required"),
            Self::BadValue { var, problem } => write!(f, "the field {var:?} {problem}"),
        }
    }
}

impl std::error::Error for FormError {}

impl Form {
    pub fn new(kind: FormKind) -> Self {
        Self {
            kind,
            title: None,
            instructions: None,
            fields: Vec::new(),
        }
    }

    /// A form whose first field is the hidden `FORM_TYPE` (XEP-0068) with this value.
    pub fn with_form_type(kind: FormKind, form_type: &str) -> Self {
        Self::new(kind).with_field(Field::new("FORM_TYPE", FieldKind::Hidden).with_value(form_type))
    }

    #[must_use]
    pub fn with_title(mut self, title: &str) -> Self {
        self.title = Some(title.to_owned());
        self
    }

    #[must_use]
    pub fn with_instructions(mut self, instructions: &str) -> Self {
        self.instructions = Some(instructions.to_owned());
        self
    }

    #[must_use]
    pub fn with_field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// The `<x xmlns='jabber:x:data'/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("x", NS).with_attr("type", self.kind.name());
        if let Some(title) = &self.title {
            el.append_child(Element::new("title", NS).with_text(title.as_str()));
        }
        if let Some(instructions) = &self.instructions {
            el.append_child(Element::new("instructions", NS).with_text(instructions.as_str()));
        }
        for field in &self.fields {
            el.append_child(field.to_element());
        }
        el
    }

    /// Reads a form from its `<x xmlns='jabber:x:data'/>` element.
    pub fn parse(el: &Element) -> Result<Self, FormError> {
        if !el.is("x", NS) {
            return Err(FormError::Invalid("not a jabber:x:data form".to_owned()));
        }
        let kind = el
            .attr("type")
            .and_then(FormKind::parse)
            .ok_or_else(|| FormError::Invalid("the form has no valid type".to_owned()))?;
        let mut form = Self::new(kind);
        for child in el.children().filter(|c| c.ns() == NS) {
            match child.name() {
                "title" => form.title = Some(child.text()),
                "instructions" => form.instructions = Some(child.text()),
                "field" => form.fields.push(Field::parse(child)?),
                _ => {}
            }
        }
        Ok(form)
    }

    /// The field named `var`.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The values of the field named `var` (none if there is no such field).
    pub fn values(&self, var: &str) -> &[String] {
        self.field(var).map_or(&[], |f| f.values.as_slice())
    }

    /// The first value of the field named `var`.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.values(var).first().map(String::as_str)
    }

    /// The `FORM_TYPE` the form declares, if any.
    pub fn form_type(&self) -> Option<&str> {
        self.value("FORM_TYPE")
    }

    /// A submitted form may leave `FORM_TYPE` out, but must not name another one.
    pub fn check_form_type(&self, expected: &str) -> Result<(), FormError> {
        match self.form_type() {
            Some(found) if found != expected => Err(FormError::BadValue {
                var: "FORM_TYPE".to_owned(),
                problem: format!("must be {expected}"),
            }),
            _ => Ok(()),
        }
    }

    /// The value of a required single-valued field: present and not empty.
    pub fn required(&self, var: &str) -> Result<&str, FormError> {
        match self.values(var) {
            [] => Err(FormError::Missing(var.to_owned())),
            [value] if value.is_empty() => Err(FormError::Missing(var.to_owned())),
            [value] => Ok(value),
            _ => Err(FormError::BadValue {
                var: var.to_owned(),
                problem: "takes one value".to_owned(),
            }),
        }
    }

    /// The value of a required JID field.
    pub fn required_jid(&self, var: &str) -> Result<Jid, FormError> {
        let value = self.required(var)?;
        Jid::new(value.trim()).map_err(|_| FormError::BadValue {
            var: var.to_owned(),
            problem: format!("is not a valid JID: {value:?}"),
        })
    }

    /// The value of a boolean field, `false` when absent (XEP-0004 §3.3: `1`/`true` or `0`/`false`).
    pub fn boolean(&self, var: &str) -> Result<bool, FormError> {
        match self.value(var) {
            None => Ok(false),
            Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(other) => Err(FormError::BadValue {
                var: var.to_owned(),
                problem: format!("is not a boolean: {other:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Form {
        Form::with_form_type(FormKind::Form, "urn:example")
            .with_title("Title")
            .with_instructions("Fill it in")
            .with_field(
                Field::new("who", FieldKind::JidSingle)
                    .with_label("Who")
                    .with_desc("an address")
                    .required(),
            )
            .with_field(
                Field::new("pick", FieldKind::ListSingle)
                    .with_option(Some("One"), "1")
                    .with_option(None, "2")
                    .with_value("2"),
            )
    }

    #[test]
    fn a_form_survives_being_written_and_read() {
        let form = sample();
        let el = form.to_element();
        assert_eq!(el.attr("type"), Some("form"));
        assert_eq!(Form::parse(&el).unwrap(), form);
        assert_eq!(form.form_type(), Some("urn:example"));
        assert_eq!(form.value("pick"), Some("2"));
        assert_eq!(form.values("nothing"), &[] as &[String]);
    }

    #[test]
    fn submitted_values_are_checked() {
        let submitted = Form::with_form_type(FormKind::Submit, "urn:example")
            .with_field(Field {
                var: Some("who".into()),
                values: vec!["alice@example.com".into()],
                ..Field::default()
            })
            .with_field(Field {
                var: Some("two".into()),
                values: vec!["a".into(), "b".into()],
                ..Field::default()
            })
            .with_field(Field {
                var: Some("empty".into()),
                values: vec![String::new()],
                ..Field::default()
            })
            .with_field(Field {
                var: Some("flag".into()),
                values: vec!["yes".into()],
                ..Field::default()
            })
            .with_field(Field {
                var: Some("bad-jid".into()),
                values: vec!["@@".into()],
                ..Field::default()
            });
        assert_eq!(
            submitted.required_jid("who").unwrap().as_str(),
            "alice@example.com"
        );
        assert!(submitted.check_form_type("urn:example").is_ok());
        assert!(submitted.check_form_type("urn:other").is_err());
        assert_eq!(
            submitted.required("missing"),
            Err(FormError::Missing("missing".into()))
        );
        assert_eq!(
            submitted.required("empty"),
            Err(FormError::Missing("empty".into()))
        );
        assert!(matches!(
            submitted.required("two"),
            Err(FormError::BadValue { .. })
        ));
        assert!(submitted.required_jid("bad-jid").is_err());
        assert!(submitted.boolean("flag").is_err());
        assert_eq!(submitted.boolean("absent"), Ok(false));
    }

    #[test]
    fn malformed_forms_are_refused() {
        assert!(Form::parse(&Element::new("x", "urn:other")).is_err());
        assert!(Form::parse(&Element::new("x", NS)).is_err());
        assert!(Form::parse(&Element::new("x", NS).with_attr("type", "weird")).is_err());
        let bad_field = Element::new("x", NS)
            .with_attr("type", "submit")
            .with_child(Element::new("field", NS).with_attr("type", "colour"));
        assert!(Form::parse(&bad_field).is_err());
    }
}
