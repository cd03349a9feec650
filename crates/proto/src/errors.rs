//! RFC 6120 stream errors (§4.9) and stanza errors (§8.3), and the elements that carry them.

use rookery_xml::{Element, ns};

/// A stream error condition (RFC 6120 §4.9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamCondition {
    BadFormat,
    BadNamespacePrefix,
    Conflict,
    ConnectionTimeout,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    Reset,
    ResourceConstraint,
    RestrictedXml,
    SeeOtherHost,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamCondition {
    /// The condition's element name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadFormat => "bad-format",
            Self::BadNamespacePrefix => "bad-namespace-prefix",
            Self::Conflict => "conflict",
            Self::ConnectionTimeout => "connection-timeout",
            Self::HostGone => "host-gone",
            Self::HostUnknown => "host-unknown",
            Self::ImproperAddressing => "improper-addressing",
            Self::InternalServerError => "internal-server-error",
            Self::InvalidFrom => "invalid-from",
            Self::InvalidNamespace => "invalid-namespace",
            Self::InvalidXml => "invalid-xml",
            Self::NotAuthorized => "not-authorized",
            Self::NotWellFormed => "not-well-formed",
            Self::PolicyViolation => "policy-violation",
            Self::RemoteConnectionFailed => "remote-connection-failed",
            Self::Reset => "reset",
            Self::ResourceConstraint => "resource-constraint",
            Self::RestrictedXml => "restricted-xml",
            Self::SeeOtherHost => "see-other-host",
            Self::SystemShutdown => "system-shutdown",
            Self::UndefinedCondition => "undefined-condition",
            Self::UnsupportedEncoding => "unsupported-encoding",
            Self::UnsupportedFeature => "unsupported-feature",
            Self::UnsupportedStanzaType => "unsupported-stanza-type",
            Self::UnsupportedVersion => "unsupported-version",
        }
    }
}

/// A stream error with optional human-readable text; sending one ends the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    pub condition: StreamCondition,
    pub text: Option<String>,
    /// An application-specific condition (RFC 6120 §4.9.4), such as XEP-0198's `<handled-count-too-high/>`.
    pub app_condition: Option<Element>,
}

impl StreamError {
    pub fn new(condition: StreamCondition) -> Self {
        Self {
            condition,
            text: None,
            app_condition: None,
        }
    }

    pub fn with_text(condition: StreamCondition, text: impl Into<String>) -> Self {
        Self {
            condition,
            text: Some(text.into()),
            app_condition: None,
        }
    }

    /// Adds an application-specific condition.
    pub fn with_app_condition(mut self, condition: Element) -> Self {
        self.app_condition = Some(condition);
        self
    }

    /// `<stream:error>` as an element in the streams namespace.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("error", ns::STREAMS)
            .with_child(Element::new(self.condition.name(), ns::STREAM_ERRORS));
        if let Some(text) = &self.text {
            el.append_child(Element::new("text", ns::STREAM_ERRORS).with_text(text.as_str()));
        }
        if let Some(app) = &self.app_condition {
            el.append_child(app.clone());
        }
        el
    }
}

impl From<&rookery_xml::XmlError> for StreamError {
    fn from(err: &rookery_xml::XmlError) -> Self {
        use rookery_xml::XmlError;
        let condition = match err {
            XmlError::NotWellFormed(_) => StreamCondition::NotWellFormed,
            XmlError::Restricted(_) => StreamCondition::RestrictedXml,
            XmlError::TooLarge(_) => StreamCondition::PolicyViolation,
        };
        Self::with_text(condition, err.to_string())
    }
}

/// The type of a stanza error (RFC 6120 §8.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Cancel => "cancel",
            Self::Continue => "continue",
            Self::Modify => "modify",
            Self::Wait => "wait",
        }
    }
}

/// A stanza error condition (RFC 6120 §8.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StanzaCondition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

impl StanzaCondition {
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Conflict => "conflict",
            Self::FeatureNotImplemented => "feature-not-implemented",
            Self::Forbidden => "forbidden",
            Self::Gone => "gone",
            Self::InternalServerError => "internal-server-error",
            Self::ItemNotFound => "item-not-found",
            Self::JidMalformed => "jid-malformed",
            Self::NotAcceptable => "not-acceptable",
            Self::NotAllowed => "not-allowed",
            Self::NotAuthorized => "not-authorized",
            Self::PolicyViolation => "policy-violation",
            Self::RecipientUnavailable => "recipient-unavailable",
            Self::Redirect => "redirect",
            Self::RegistrationRequired => "registration-required",
            Self::RemoteServerNotFound => "remote-server-not-found",
            Self::RemoteServerTimeout => "remote-server-timeout",
            Self::ResourceConstraint => "resource-constraint",
            Self::ServiceUnavailable => "service-unavailable",
            Self::SubscriptionRequired => "subscription-required",
            Self::UndefinedCondition => "undefined-condition",
            Self::UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type RFC 6120 §8.3.3 gives for the condition in its examples.
    pub fn default_type(self) -> ErrorType {
        match self {
            Self::BadRequest
            | Self::JidMalformed
            | Self::NotAcceptable
            | Self::PolicyViolation
            | Self::Redirect => ErrorType::Modify,
            Self::Forbidden
            | Self::NotAuthorized
            | Self::RegistrationRequired
            | Self::SubscriptionRequired => ErrorType::Auth,
            Self::RecipientUnavailable | Self::RemoteServerTimeout | Self::ResourceConstraint => {
                ErrorType::Wait
            }
            Self::InternalServerError => ErrorType::Cancel,
            Self::UnexpectedRequest => ErrorType::Modify,
            _ => ErrorType::Cancel,
        }
    }
}

/// A stanza error to send back to whoever sent a stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanzaError {
    pub condition: StanzaCondition,
    pub kind: ErrorType,
    pub text: Option<String>,
    /// An application-specific condition (RFC 6120 §8.3.2), such as XEP-0050's `<bad-sessionid/>`. Boxed: errors
    /// travel in `Result`s, which should stay small.
    pub app_condition: Option<Box<Element>>,
}

impl StanzaError {
    pub fn new(condition: StanzaCondition) -> Self {
        Self {
            condition,
            kind: condition.default_type(),
            text: None,
            app_condition: None,
        }
    }

    pub fn with_text(condition: StanzaCondition, text: impl Into<String>) -> Self {
        Self {
            condition,
            kind: condition.default_type(),
            text: Some(text.into()),
            app_condition: None,
        }
    }

    /// Adds an application-specific condition element.
    #[must_use]
    pub fn with_app_condition(mut self, condition: Element) -> Self {
        self.app_condition = Some(Box::new(condition));
        self
    }

    /// Overrides the error type where a specification gives another than RFC 6120's usual one.
    #[must_use]
    pub fn with_type(mut self, kind: ErrorType) -> Self {
        self.kind = kind;
        self
    }

    /// The `<error/>` child element, in the namespace of the stanza it goes into.
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut el = Element::new("error", rookery_xml::Namespace::shared(stanza_ns))
            .with_attr("type", self.kind.name())
            .with_child(Element::new(self.condition.name(), ns::STANZA_ERRORS));
        if let Some(text) = &self.text {
            el.append_child(Element::new("text", ns::STANZA_ERRORS).with_text(text.as_str()));
        }
        if let Some(condition) = &self.app_condition {
            el.append_child(Element::clone(condition));
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_error_element() {
        let el = StreamError::with_text(StreamCondition::PolicyViolation, "too big").to_element();
        assert_eq!(
            el.to_xml_string(),
            "<error xmlns='http://etherx.jabber.org/streams'>\
             <policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too big</text></error>"
        );
    }

    #[test]
    fn stanza_error_element_has_type() {
        let el = StanzaError::new(StanzaCondition::ServiceUnavailable).to_element(ns::CLIENT);
        assert_eq!(el.attr("type"), Some("cancel"));
        assert!(el.has_child("service-unavailable", ns::STANZA_ERRORS));
    }

    #[test]
    fn application_condition_comes_last() {
        let el = StanzaError::with_text(StanzaCondition::BadRequest, "which session?")
            .with_app_condition(Element::new(
                "bad-sessionid",
                "http://jabber.org/protocol/commands",
            ))
            .to_element(ns::CLIENT);
        let names: Vec<&str> = el.children().map(Element::name).collect();
        assert_eq!(names, ["bad-request", "text", "bad-sessionid"]);
        assert_eq!(el.attr("type"), Some("modify"));
    }
}
