//! The elements of SASL2 (XEP-0388), Bind2 (XEP-0386) and FAST (XEP-0484): parsing what the client sends in
//! `<authenticate/>` and building the server's feature, challenge, failure and success elements. The state machine
//! that uses them is [`crate::c2s::C2sNegotiator`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rookery_sasl::ht::HtMechanism;
use rookery_xml::{Element, ns};
use sha2::{Digest as _, Sha256};

pub const NS_SASL2: &str = "urn:xmpp:sasl:2";
pub const NS_BIND2: &str = "urn:xmpp:bind:0";
pub const NS_FAST: &str = "urn:xmpp:fast:0";
/// XEP-0198's namespace: its `<enable/>` travels inside Bind2, its `<resume/>` inside `<authenticate/>`.
pub const NS_SM: &str = "urn:xmpp:sm:3";

/// Longest `<user-agent id>` accepted (bytes). The XEP asks for a UUID (36 characters); this leaves room for other
/// stable identifiers without letting one client id take kilobytes of storage.
pub const MAX_CLIENT_ID_BYTES: usize = 128;
/// `<software/>` and `<device/>` are kept to this many characters (they are only shown to the user).
pub const MAX_USER_AGENT_TEXT_CHARS: usize = 128;
/// The Bind2 `<tag/>` is kept to this many characters before the server's suffix is added.
pub const MAX_TAG_CHARS: usize = 64;

/// XEP-0388 `<user-agent/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    pub id: String,
    pub software: Option<String>,
    pub device: Option<String>,
}

/// What `<authenticate/>` asks for besides the mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateRequest {
    pub mechanism: String,
    /// Base64 text of `<initial-response/>` (None when absent).
    pub initial_response: Option<String>,
    pub user_agent: Option<UserAgent>,
    /// `<bind xmlns='urn:xmpp:bind:0'/>`.
    pub bind: Option<Element>,
    /// `<request-token mechanism='...'/>`: a FAST token to issue with the success.
    pub token_request: Option<String>,
    /// `<fast/>`: this authentication uses a FAST token.
    pub fast: Option<FastOptions>,
    /// XEP-0198 `<resume/>` inside `<authenticate/>` (XEP-0388 §inline). Kept for stream management to act on.
    pub sm_resume: Option<Element>,
}

/// The attributes of `<fast/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastOptions {
    pub count: Option<u64>,
    pub invalidate: bool,
}

/// Why an `<authenticate/>` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedAuthenticate(pub &'static str);

fn truncated(text: String, max_chars: usize) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(max_chars).collect())
}

/// Parses `<authenticate xmlns='urn:xmpp:sasl:2'/>`.
pub fn parse_authenticate(el: &Element) -> Result<AuthenticateRequest, MalformedAuthenticate> {
    let mechanism = el
        .attr("mechanism")
        .ok_or(MalformedAuthenticate("a mechanism is required"))?
        .to_owned();
    let initial_response = el
        .get_child("initial-response", NS_SASL2)
        .map(Element::text);
    let user_agent = match el.get_child("user-agent", NS_SASL2) {
        None => None,
        Some(ua) => {
            let id = ua
                .attr("id")
                .ok_or(MalformedAuthenticate("<user-agent/> needs an id"))?;
            if id.is_empty() || id.len() > MAX_CLIENT_ID_BYTES {
                return Err(MalformedAuthenticate(
                    "the user-agent id is empty or too long",
                ));
            }
            let text = |name| {
                ua.get_child(name, NS_SASL2)
                    .and_then(|c| truncated(c.text(), MAX_USER_AGENT_TEXT_CHARS))
            };
            Some(UserAgent {
                id: id.to_owned(),
                software: text("software"),
                device: text("device"),
            })
        }
    };
    let fast = match el.get_child("fast", NS_FAST) {
        None => None,
        Some(fast) => {
            let count =
                match fast.attr("count") {
                    None => None,
                    Some(c) => Some(c.parse::<u64>().map_err(|_| {
                        MalformedAuthenticate("count must be a non-negative integer")
                    })?),
                };
            let invalidate = matches!(fast.attr("invalidate"), Some("true" | "1"));
            Some(FastOptions { count, invalidate })
        }
    };
    Ok(AuthenticateRequest {
        mechanism,
        initial_response,
        user_agent,
        bind: el.get_child("bind", NS_BIND2).cloned(),
        token_request: el
            .get_child("request-token", NS_FAST)
            .and_then(|r| r.attr("mechanism"))
            .map(str::to_owned),
        fast,
        sm_resume: el.get_child("resume", NS_SM).cloned(),
    })
}

/// The resource Bind2 binds: the client's tag (if any) and a suffix the server chooses (XEP-0386 §4). The suffix
/// is derived from the account and client id, as Prosody derives it, so that the same client reconnecting gets
/// the same resource and replaces its stale session instead of piling up resources; without a client id it is
/// random.
pub fn bind2_resource(tag: Option<&str>, username: &str, client_id: Option<&str>) -> String {
    let suffix = match client_id {
        Some(id) => {
            let mut hash = Sha256::new();
            hash.update(username.as_bytes());
            hash.update([0]);
            hash.update(id.as_bytes());
            let digest = hash.finalize();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..6])
        }
        None => {
            let bytes: [u8; 6] = rand::random();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }
    };
    let tag: Option<String> = tag
        .map(|t| {
            t.chars()
                .filter(|c| !c.is_control() && *c != '/')
                .take(MAX_TAG_CHARS)
                .collect::<String>()
        })
        .filter(|t| !t.trim().is_empty());
    match tag {
        Some(tag) => format!("{}.{suffix}", tag.trim()),
        None => suffix,
    }
}

/// `<authentication xmlns='urn:xmpp:sasl:2'>`: the mechanisms, and inline Bind2 (with its inline features) and
/// FAST (with its mechanisms), then any further inline features.
pub fn authentication_feature(
    mechanisms: &[&str],
    bind2_features: &[String],
    fast_mechanisms: &[HtMechanism],
    extra_inline: &[Element],
) -> Element {
    let mut auth = Element::new("authentication", NS_SASL2);
    for m in mechanisms {
        auth.append_child(Element::new("mechanism", NS_SASL2).with_text(*m));
    }
    let mut bind_inline = Element::new("inline", NS_BIND2);
    for var in bind2_features {
        bind_inline.append_child(Element::new("feature", NS_BIND2).with_attr("var", var));
    }
    let mut inline = Element::new("inline", NS_SASL2)
        .with_child(Element::new("bind", NS_BIND2).with_child(bind_inline));
    if !fast_mechanisms.is_empty() {
        let mut fast = Element::new("fast", NS_FAST);
        for m in fast_mechanisms {
            fast.append_child(Element::new("mechanism", NS_FAST).with_text(m.name()));
        }
        inline.append_child(fast);
    }
    for extra in extra_inline {
        inline.append_child(extra.clone());
    }
    auth.append_child(inline);
    auth
}

/// `<failure xmlns='urn:xmpp:sasl:2'>`: the RFC 6120 condition (in the SASL namespace) and an optional text.
pub fn failure(condition: &str, text: Option<&str>) -> Element {
    let mut failure =
        Element::new("failure", NS_SASL2).with_child(Element::new(condition, ns::SASL));
    if let Some(text) = text {
        failure.append_child(
            Element::new("text", NS_SASL2)
                .with_attr("xml:lang", "en")
                .with_text(text),
        );
    }
    failure
}

/// `<challenge xmlns='urn:xmpp:sasl:2'>`.
pub fn challenge(data: &[u8]) -> Element {
    Element::new("challenge", NS_SASL2).with_text(BASE64.encode(data))
}

/// A token issued with a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub secret: String,
    /// XEP-0082 date-time.
    pub expiry: String,
}

/// `<success xmlns='urn:xmpp:sasl:2'>`: additional data, the authorization identifier (the full JID once bound),
/// then the FAST token and Bind2's `<bound/>` if any.
pub fn success(
    additional_data: Option<&[u8]>,
    authorization_identifier: &str,
    token: Option<&IssuedToken>,
    bound: Option<Element>,
) -> Element {
    let mut success = Element::new("success", NS_SASL2);
    if let Some(data) = additional_data {
        success
            .append_child(Element::new("additional-data", NS_SASL2).with_text(BASE64.encode(data)));
    }
    success.append_child(
        Element::new("authorization-identifier", NS_SASL2).with_text(authorization_identifier),
    );
    if let Some(token) = token {
        success.append_child(
            Element::new("token", NS_FAST)
                .with_attr("expiry", &token.expiry)
                .with_attr("token", &token.secret),
        );
    }
    if let Some(bound) = bound {
        success.append_child(bound);
    }
    success
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_from_tags() {
        let a = bind2_resource(Some("Snikket"), "alice", Some("c1"));
        assert!(a.starts_with("Snikket."), "{a}");
        assert_eq!(
            a,
            bind2_resource(Some("Snikket"), "alice", Some("c1")),
            "stable per client"
        );
        assert_ne!(a, bind2_resource(Some("Snikket"), "alice", Some("c2")));
        assert_ne!(a, bind2_resource(Some("Snikket"), "bob", Some("c1")));
        let untagged = bind2_resource(None, "alice", None);
        assert_eq!(untagged.len(), 8);
        assert_ne!(untagged, bind2_resource(None, "alice", None));
        let long = "x".repeat(500);
        assert!(bind2_resource(Some(&long), "alice", Some("c")).len() < 80);
        assert!(!bind2_resource(Some("a/b\n"), "alice", Some("c")).contains('/'));
        assert!(bind2_resource(Some("  "), "alice", Some("c")).len() == 8);
    }

    #[test]
    fn authenticate_parsing() {
        let el = Element::new("authenticate", NS_SASL2)
            .with_attr("mechanism", "SCRAM-SHA-1")
            .with_child(Element::new("initial-response", NS_SASL2).with_text("abc="))
            .with_child(
                Element::new("user-agent", NS_SASL2)
                    .with_attr("id", "d4565fa7-4d72-4749-b3d3-740edbf87770")
                    .with_child(Element::new("software", NS_SASL2).with_text(" Snikket "))
                    .with_child(Element::new("device", NS_SASL2).with_text("x".repeat(300))),
            )
            .with_child(
                Element::new("request-token", NS_FAST).with_attr("mechanism", "HT-SHA-256-NONE"),
            )
            .with_child(
                Element::new("fast", NS_FAST)
                    .with_attr("count", "3")
                    .with_attr("invalidate", "true"),
            );
        let req = parse_authenticate(&el).unwrap();
        assert_eq!(req.initial_response.as_deref(), Some("abc="));
        let ua = req.user_agent.unwrap();
        assert_eq!(ua.software.as_deref(), Some("Snikket"));
        assert_eq!(
            ua.device.unwrap().chars().count(),
            MAX_USER_AGENT_TEXT_CHARS
        );
        assert_eq!(req.token_request.as_deref(), Some("HT-SHA-256-NONE"));
        assert_eq!(
            req.fast,
            Some(FastOptions {
                count: Some(3),
                invalidate: true
            })
        );

        let no_id = Element::new("authenticate", NS_SASL2)
            .with_attr("mechanism", "X")
            .with_child(Element::new("user-agent", NS_SASL2));
        assert!(parse_authenticate(&no_id).is_err());
        let long_id = Element::new("authenticate", NS_SASL2)
            .with_attr("mechanism", "X")
            .with_child(Element::new("user-agent", NS_SASL2).with_attr("id", "i".repeat(200)));
        assert!(parse_authenticate(&long_id).is_err());
        let bad_count = Element::new("authenticate", NS_SASL2)
            .with_attr("mechanism", "X")
            .with_child(Element::new("fast", NS_FAST).with_attr("count", "-1"));
        assert!(parse_authenticate(&bad_count).is_err());
        assert!(parse_authenticate(&Element::new("authenticate", NS_SASL2)).is_err());
    }
}
