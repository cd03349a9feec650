//! Client stream negotiation (RFC 6120 §4–§7) as a sans-IO state machine.
//!
//! The connection task feeds it stream events, TLS completion, account look-ups and bind results; it answers with
//! [`Action`]s: things to send, a TLS upgrade, a parser reset, a look-up to make, a resource to bind, or a stream to
//! close. Once a resource is bound the stream is established and stanzas go to the router instead.
//!
//! Policy (as Snikket's Prosody): TLS is required before SASL; nothing but negotiation is accepted before a
//! resource is bound, except in-band registration by invite (XEP-0077 with XEP-0401/XEP-0445 `<preauth/>`, spec
//! §5.5 A), offered over TLS only and when the server has a registrar.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jid::{BareJid, FullJid, ResourcePart};
use rookery_sasl::ht::{self, HtInitialResponse, HtMechanism, StoredToken, TokenSlot};
use rookery_sasl::{ChannelBindings, Condition, Lookup, Mechanism, ServerExchange, Step};
use rookery_xml::{Element, StreamEvent, StreamHeader, ns};

use crate::errors::{StanzaCondition, StanzaError, StreamCondition, StreamError};
use crate::sasl2::{
    self, AuthenticateRequest, FastOptions, IssuedToken, NS_BIND2, NS_SASL2, UserAgent,
};
use crate::sm::{self, SmParseError, SmRequest};
use crate::stanza::{IqType, error_reply, iq_result_with};

/// What the server allows on client streams; fixed for one connection.
#[derive(Clone, Debug)]
pub struct C2sSettings {
    /// The XMPP domain this server serves (already normalised).
    pub domain: String,
    /// SASL mechanisms allowed, most preferred first, without the -PLUS variants: those are offered in front of
    /// their plain variants whenever the TLS layer gives channel-binding data.
    pub mechanisms: Vec<Mechanism>,
    /// The stanza size limit once logged in, advertised with XEP-0478.
    pub max_stanza_bytes: usize,
    /// The stanza size limit before login, advertised before login.
    pub max_unauthenticated_stanza_bytes: usize,
    /// After this many failed SASL attempts the stream is closed.
    pub max_auth_failures: u32,
    /// Further features offered after login, next to `<bind/>` (roster versioning and the like).
    pub session_features: Vec<Element>,
    /// Whether in-band registration (by invite) is offered after TLS, before login.
    pub registration: bool,
    /// Bind2 inline features (XEP-0386 `<feature var/>`), from the modules' [Bind2 registry] (carbons, ...).
    /// Stream management adds `urn:xmpp:sm:3` here once it handles an inline `<enable/>` (see
    /// [`LoginCompletion::bind`]).
    ///
    /// [Bind2 registry]: https://xmpp.org/extensions/xep-0386.html
    pub bind2_features: Vec<String>,
    /// Further SASL2 inline features, after Bind2 and FAST. Stream management adds `<sm xmlns='urn:xmpp:sm:3'/>`
    /// here once it handles `<resume/>` inside `<authenticate/>` (see [`LoginCompletion::sm_resume`]).
    pub sasl2_inline: Vec<Element>,
}

/// FAST tokens expire this long after they are issued: Prosody's default (`sasl2_fast_token_ttl`, 21 days). A
/// phone that stays offline longer logs in with its password again.
pub const FAST_TOKEN_TTL_SECS: i64 = 21 * 86_400;
/// A FAST token older than this is replaced by a new one when used: Prosody's default
/// (`sasl2_fast_token_min_ttl`, one day), so a token in daily use never gets near its expiry.
pub const FAST_ROTATE_AFTER_SECS: i64 = 86_400;

/// XEP-0077's registration namespace.
pub const NS_REGISTER: &str = "jabber:iq:register";
/// The stream feature announcing XEP-0077 registration.
pub const NS_REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";
/// XEP-0401's legacy stream feature.
pub const NS_INVITE: &str = "urn:xmpp:invite";
/// XEP-0445's stream feature: a `<preauth/>` token is accepted before registering.
pub const NS_IBR_TOKEN: &str = "urn:xmpp:ibr-token:0";
/// XEP-0379's pre-authentication token element.
pub const NS_PARS: &str = "urn:xmpp:pars:0";
const NS_DATA: &str = "jabber:x:data";

/// Registration IQs of type `set` (tokens and registrations) one stream may send; the stream is closed at the next.
/// Enough for an app's flow with a couple of retries (a taken username, a short password); few enough that a stream
/// cannot be used to guess tokens or usernames at length.
pub const MAX_REGISTRATION_ATTEMPTS: u32 = 5;

/// What the connection found for a `<preauth/>` token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteStatus {
    /// A valid invite that allows registration: the token is remembered for this stream.
    Valid,
    /// A valid invite that does not allow registration (a contact-only invite).
    NoRegistration,
    /// Malformed, unknown or expired.
    Invalid,
}

/// Why the core refused to bind a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindRefusal {
    /// The account has as many resources as it may (Snikket's `max_resources`): the stream is closed with
    /// `<policy-violation/>`, as Prosody's mod_c2s_limit_sessions does.
    TooManyResources,
    /// Any other refusal, answered on the bind IQ.
    Error(StanzaError),
}

/// Something that happened on the connection.
#[derive(Debug)]
pub enum Input {
    /// A stream event from the XML parser.
    Stream(StreamEvent),
    /// The TLS handshake finished; `bindings` are its channel-binding data.
    TlsEstablished { bindings: ChannelBindings },
    /// The answer to [`Action::LookupCredentials`].
    Credentials(Lookup),
    /// The answer to [`Action::Bind`].
    Bound(Result<FullJid, BindRefusal>),
    /// The answer to [`Action::CheckInvite`].
    InviteChecked(InviteStatus),
    /// The answer to [`Action::Register`]: the error is sent back on the registration IQ.
    Registered(Result<(), StanzaError>),
    /// The answer to [`Action::Resume`]: the session taken over, or the `<failed/>` to send.
    Resumed(Result<ResumedSession, Element>),
    /// The answer to [`Action::LookupFastTokens`].
    FastTokens(FastLookup),
    /// The answer to [`Action::CompleteLogin`].
    LoginCompleted(Result<LoginResult, BindRefusal>),
}

/// A session taken over by XEP-0198 resumption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumedSession {
    pub jid: FullJid,
    pub previd: String,
    /// The server's count of stanzas handled from the client, for `<resumed/>`.
    pub handled: u32,
}

/// The account and tokens a FAST authentication is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastLookup {
    pub account: FastAccount,
    /// The client's stored tokens (none for an unknown account).
    pub tokens: Vec<StoredToken>,
    /// Unix seconds.
    pub now: i64,
}

/// The state of the account a FAST authentication names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastAccount {
    Active,
    Missing,
    /// As for SCRAM, only a valid token learns that the account is disabled (and why).
    Disabled(Option<String>),
}

/// What a successful SASL2 authentication asks the connection to do before `<success/>` is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginCompletion {
    pub username: String,
    /// The client, recorded for client management (XEP-0388 `<user-agent/>`).
    pub user_agent: Option<UserAgent>,
    /// The FAST token this login used: promoted, counted or invalidated in the store.
    pub used_token: Option<(TokenSlot, FastOptions)>,
    /// Issue a new FAST token for this mechanism (requested, or rotation of an old one). Only with a user agent.
    pub issue_token: Option<HtMechanism>,
    /// Bind2: bind this resource, then hand each inline request to the Bind2 registry.
    pub bind: Option<Bind2Request>,
    /// XEP-0198 `<resume/>` sent inside `<authenticate/>`. THE PLACE FOR STREAM MANAGEMENT: when it is set and SM
    /// advertises inline resumption (through [`C2sSettings::sasl2_inline`]), the connection resumes the session
    /// instead of binding (`bind` is then ignored, XEP-0388 §6.1) and answers with `<resumed/>` inside the success.
    /// Until then nothing is advertised and it is ignored.
    pub sm_resume: Option<Element>,
}

/// Bind2's request (XEP-0386).
#[derive(Debug, Clone, PartialEq)]
pub struct Bind2Request {
    /// The resource: the client's `<tag/>` and the server's suffix.
    pub resource: String,
    /// Every child of `<bind/>` other than `<tag/>`: inline feature requests (carbons' `<enable/>`, and XEP-0198's
    /// `<enable xmlns='urn:xmpp:sm:3'/>`, which stream management handles where the connection runs them).
    pub inline: Vec<Element>,
}

/// The connection's answer to [`Action::CompleteLogin`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoginResult {
    pub token: Option<IssuedToken>,
    /// The bound JID and the inline features' results, for `<bound/>`.
    pub bound: Option<(FullJid, Vec<Element>)>,
    /// The session resumed by an inline XEP-0198 `<resume/>`: no binding then, and `<resumed/>` in the success.
    pub resumed: Option<ResumedSession>,
    /// The `<failed/>` of an inline resumption that could not happen, for the success.
    pub sm_failed: Option<Element>,
}

/// What the connection task must do, in order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Write these bytes (a stream header).
    SendRaw(String),
    /// Write this top-level element (see [`crate::write_top_level`]).
    Send(Element),
    /// After writing everything before it: make sure the peer sent nothing after `<starttls/>`, run the TLS
    /// handshake, reset the parser, then feed [`Input::TlsEstablished`].
    StartTls,
    /// Reset the parser: the peer restarts the stream after SASL success.
    ResetParser,
    /// Look this account up (the username is nodeprepped) and feed [`Input::Credentials`].
    LookupCredentials { username: String },
    /// Bind a resource for the account (the server picks one when `resource` is None) and feed [`Input::Bound`].
    Bind {
        username: String,
        resource: Option<String>,
    },
    /// Look the FAST tokens of this client up (the username is nodeprepped) and feed [`Input::FastTokens`].
    LookupFastTokens { username: String, client_id: String },
    /// Remove an expired token a client tried (no input follows).
    RemoveFastToken {
        username: String,
        client_id: String,
        slot: TokenSlot,
    },
    /// SASL2 succeeded: record the client and tokens, bind if asked (all with the logged-in stanza size limit:
    /// there is no stream restart), and feed [`Input::LoginCompleted`].
    CompleteLogin(Box<LoginCompletion>),
    /// Look this invite token up and feed [`Input::InviteChecked`].
    CheckInvite { token: String },
    /// Register the account (the username is nodeprepped; the token is the stream's accepted one) and feed
    /// [`Input::Registered`].
    Register {
        username: String,
        password: String,
        invite_token: Option<String>,
    },
    /// The stream is established for this full JID; from now on stanzas go to the router.
    Established(FullJid),
    /// XEP-0198: take over the session `previd` of this account, the client having handled `h` of its stanzas, and
    /// feed [`Input::Resumed`].
    Resume {
        username: String,
        previd: String,
        h: u32,
    },
    /// `<resumed/>` is queued: the stream carries on the resumed session, whose unacknowledged stanzas are written
    /// next.
    ResumedSession(FullJid),
    /// Write this stream error and the closing tag, then close the connection.
    Close(StreamError),
    /// The peer closed its stream: write the closing tag and close the connection.
    CloseStream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the client's stream header.
    AwaitHeader,
    /// Header answered, features sent; waiting for `<starttls/>`, `<auth/>` or the bind IQ.
    Negotiating,
    /// `<proceed/>` sent; the TLS handshake is the connection task's.
    TlsPending,
    /// A SASL exchange is under way.
    Authenticating,
    /// Waiting for the account look-up.
    LookingUp,
    /// Waiting for the core to bind.
    Binding,
    /// Waiting for a XEP-0198 resumption.
    Resuming,
    /// Waiting for an invite look-up or a registration.
    Registering,
    /// Waiting for a client's FAST tokens.
    LookingUpTokens,
    /// Waiting for the connection to finish a SASL2 login.
    CompletingLogin,
    Established,
    Closed,
}

/// The negotiation of one client stream.
pub struct C2sNegotiator {
    settings: C2sSettings,
    state: State,
    /// Whether the stream runs over TLS.
    secure: bool,
    bindings: ChannelBindings,
    header_sent: bool,
    exchange: Option<ServerExchange>,
    /// The nodeprepped username of the exchange under way, then of the authenticated account.
    username: Option<String>,
    authenticated: bool,
    auth_failures: u32,
    bind_request: Option<Element>,
    /// The registration IQ awaiting its answer.
    registration_request: Option<Element>,
    /// The `<preauth/>` token accepted on this stream.
    invite_token: Option<String>,
    registration_attempts: u32,
    /// Whether the last exchange started was SASL2's (its elements and failures are in SASL2's namespace).
    sasl2_exchange: bool,
    /// The SASL2 `<authenticate/>` under way.
    sasl2: Option<Sasl2Pending>,
    /// The server's additional data for a SASL2 success, kept while the connection completes the login.
    additional_data: Option<Vec<u8>>,
}

/// What a SASL2 exchange keeps until it ends.
struct Sasl2Pending {
    request: AuthenticateRequest,
    /// A FAST authentication: its mechanism and initial response, checked when the tokens arrive.
    fast: Option<(HtMechanism, HtInitialResponse)>,
}

impl C2sNegotiator {
    /// A negotiator for a new connection; `tls` is Some when the connection is direct TLS (XEP-0368), with the
    /// handshake already done.
    pub fn new(settings: C2sSettings, tls: Option<ChannelBindings>) -> Self {
        Self {
            settings,
            state: State::AwaitHeader,
            secure: tls.is_some(),
            bindings: tls.unwrap_or_default(),
            header_sent: false,
            exchange: None,
            username: None,
            authenticated: false,
            auth_failures: 0,
            bind_request: None,
            registration_request: None,
            invite_token: None,
            registration_attempts: 0,
            sasl2_exchange: false,
            sasl2: None,
            additional_data: None,
        }
    }

    /// Sets the SASL mechanisms to offer. The connection decides them once TLS is up (they depend on the accounts,
    /// and asking costs a query that a peer should not get for free).
    pub fn set_mechanisms(&mut self, mechanisms: Vec<Mechanism>) {
        self.settings.mechanisms = mechanisms;
    }

    /// The authenticated account's username, once SASL succeeded.
    pub fn authenticated_user(&self) -> Option<&str> {
        if self.authenticated {
            self.username.as_deref()
        } else {
            None
        }
    }

    /// Handles one input and returns the actions it calls for.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, input) {
            (State::Closed, _) => {}
            (_, Input::Stream(StreamEvent::Close)) => {
                self.state = State::Closed;
                out.push(Action::CloseStream);
            }
            (State::AwaitHeader, Input::Stream(StreamEvent::Open(header))) => {
                self.on_header(&header, &mut out)
            }
            (State::AwaitHeader, Input::Stream(StreamEvent::Element(_))) => {
                // The parser only yields elements after a header; this is a protocol bug of ours if reached.
                self.close(
                    &mut out,
                    StreamError::new(StreamCondition::InternalServerError),
                );
            }
            (State::Negotiating, Input::Stream(StreamEvent::Element(el))) => {
                self.on_negotiation_element(el, &mut out)
            }
            (State::Authenticating, Input::Stream(StreamEvent::Element(el))) => {
                self.on_sasl_element(&el, &mut out)
            }
            (State::TlsPending, Input::TlsEstablished { bindings }) => {
                self.secure = true;
                self.bindings = bindings;
                self.state = State::AwaitHeader;
            }
            (State::LookingUp, Input::Credentials(lookup)) => {
                self.state = State::Authenticating;
                let step = match self.exchange.as_mut() {
                    Some(exchange) => exchange.provide(lookup),
                    None => return self.internal_error(),
                };
                self.on_sasl_step(step, &mut out);
            }
            (State::Binding, Input::Bound(result)) => self.on_bound(result, &mut out),
            (State::Resuming, Input::Resumed(result)) => self.on_resumed(result, &mut out),
            (State::Registering, Input::InviteChecked(status)) => {
                self.on_invite_checked(status, &mut out)
            }
            (State::Registering, Input::Registered(result)) => self.on_registered(result, &mut out),
            (State::LookingUpTokens, Input::FastTokens(lookup)) => {
                self.on_fast_tokens(lookup, &mut out)
            }
            (State::CompletingLogin, Input::LoginCompleted(result)) => {
                self.on_login_completed(result, &mut out)
            }
            (_, Input::Stream(StreamEvent::Open(_))) => {
                self.close(
                    &mut out,
                    StreamError::with_text(StreamCondition::InvalidXml, "unexpected stream header"),
                );
            }
            (state, input) => {
                // Inputs out of order (e.g. a look-up result nobody asked for) are our own bug, never the peer's.
                debug_assert!(false, "c2s negotiation got {input:?} in state {state:?}");
                return self.internal_error();
            }
        }
        out
    }

    fn internal_error(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.close(
            &mut out,
            StreamError::new(StreamCondition::InternalServerError),
        );
        out
    }

    /// A stream error, with a header first when none was sent yet.
    pub fn close(&mut self, out: &mut Vec<Action>, error: StreamError) {
        if !self.header_sent {
            out.push(Action::SendRaw(self.header_xml(None)));
            self.header_sent = true;
        }
        self.state = State::Closed;
        out.push(Action::Close(error));
    }

    fn header_xml(&self, to: Option<&str>) -> String {
        let id = random_id();
        let mut header = String::with_capacity(256);
        header.push_str("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='");
        header.push_str(ns::STREAMS);
        header.push_str("' id='");
        header.push_str(&id);
        header.push_str("' from='");
        push_escaped_attr(&mut header, &self.settings.domain);
        if let Some(to) = to {
            header.push_str("' to='");
            push_escaped_attr(&mut header, to);
        }
        header.push_str("' version='1.0' xml:lang='en'>");
        header
    }

    fn on_header(&mut self, header: &StreamHeader, out: &mut Vec<Action>) {
        let el = &header.element;
        // Answer with our own header first, so that any error below can follow it.
        let to_client = el.attr("from").filter(|f| BareJid::new(f).is_ok());
        out.push(Action::SendRaw(self.header_xml(to_client)));
        self.header_sent = true;

        if !el.is("stream", ns::STREAMS) {
            return self.close(
                out,
                StreamError::with_text(StreamCondition::InvalidNamespace, "expected a stream"),
            );
        }
        if header.default_ns != ns::CLIENT {
            return self.close(
                out,
                StreamError::with_text(
                    StreamCondition::InvalidNamespace,
                    "client streams use jabber:client",
                ),
            );
        }
        match el.attr("version") {
            Some(v) if v.split('.').next() == Some("1") => {}
            _ => {
                return self.close(
                    out,
                    StreamError::with_text(
                        StreamCondition::UnsupportedVersion,
                        "XMPP 1.0 is required",
                    ),
                );
            }
        }
        let Some(to) = el.attr("to") else {
            return self.close(
                out,
                StreamError::with_text(
                    StreamCondition::ImproperAddressing,
                    "a 'to' attribute is required",
                ),
            );
        };
        match jid::DomainPart::new(to) {
            Ok(domain) if domain.as_str() == self.settings.domain => {}
            Ok(_) => {
                return self.close(
                    out,
                    StreamError::with_text(
                        StreamCondition::HostUnknown,
                        "this server does not serve that domain",
                    ),
                );
            }
            Err(_) => {
                return self.close(
                    out,
                    StreamError::with_text(
                        StreamCondition::ImproperAddressing,
                        "the 'to' attribute is not a domain",
                    ),
                );
            }
        }
        self.state = State::Negotiating;
        out.push(Action::Send(self.features()));
    }

    /// The mechanisms offered on this connection, most preferred first.
    pub fn offered_mechanisms(&self) -> Vec<Mechanism> {
        let mut offered = Vec::new();
        for &m in &self.settings.mechanisms {
            if !self.bindings.is_empty() {
                let plus = match m {
                    Mechanism::ScramSha1 => Some(Mechanism::ScramSha1Plus),
                    Mechanism::ScramSha256 => Some(Mechanism::ScramSha256Plus),
                    _ => None,
                };
                offered.extend(plus);
            }
            offered.push(m);
        }
        offered
    }

    fn features(&self) -> Element {
        let mut features = Element::new("features", ns::STREAMS);
        if !self.secure {
            features.append_child(
                Element::new("starttls", ns::TLS).with_child(Element::new("required", ns::TLS)),
            );
        } else if !self.authenticated {
            let mut mechanisms = Element::new("mechanisms", ns::SASL);
            for m in self.offered_mechanisms() {
                mechanisms.append_child(Element::new("mechanism", ns::SASL).with_text(m.name()));
            }
            features.append_child(mechanisms);
            let names: Vec<&str> = self
                .offered_mechanisms()
                .into_iter()
                .map(Mechanism::name)
                .collect();
            features.append_child(sasl2::authentication_feature(
                &names,
                &self.settings.bind2_features,
                &HtMechanism::available(&self.bindings),
                &self.settings.sasl2_inline,
            ));
            // XEP-0440: tell the client which channel-binding types it can use with -PLUS.
            if !self.bindings.is_empty() {
                let mut cb = Element::new("sasl-channel-binding", ns::SASL_CB);
                if self.bindings.tls_server_end_point.is_some() {
                    cb.append_child(
                        Element::new("channel-binding", ns::SASL_CB)
                            .with_attr("type", "tls-server-end-point"),
                    );
                }
                if self.bindings.tls_exporter.is_some() {
                    cb.append_child(
                        Element::new("channel-binding", ns::SASL_CB)
                            .with_attr("type", "tls-exporter"),
                    );
                }
                features.append_child(cb);
            }
            if self.settings.registration {
                for ns in [NS_REGISTER_FEATURE, NS_INVITE, NS_IBR_TOKEN] {
                    features.append_child(Element::new("register", ns));
                }
            }
            features.append_child(self.limits_feature());
        } else {
            features.append_child(Element::new("bind", ns::BIND));
            for feature in &self.settings.session_features {
                features.append_child(feature.clone());
            }
            // RFC 3921 sessions are a no-op kept for old clients (RFC 6121 §1.4); Prosody offers it as optional.
            features.append_child(
                Element::new("session", ns::SESSION)
                    .with_child(Element::new("optional", ns::SESSION)),
            );
            features.append_child(self.limits_feature());
        }
        features
    }

    /// XEP-0478 stream limits: the largest stanza we accept at this point of the stream.
    fn limits_feature(&self) -> Element {
        let max = if self.authenticated {
            self.settings.max_stanza_bytes
        } else {
            self.settings.max_unauthenticated_stanza_bytes
        };
        Element::new("limits", ns::STREAM_LIMITS)
            .with_child(Element::new("max-bytes", ns::STREAM_LIMITS).with_text(max.to_string()))
    }

    fn on_negotiation_element(&mut self, el: Element, out: &mut Vec<Action>) {
        if el.is("starttls", ns::TLS) {
            if self.secure {
                return self.close(
                    out,
                    StreamError::with_text(StreamCondition::PolicyViolation, "TLS is already on"),
                );
            }
            self.state = State::TlsPending;
            out.push(Action::Send(Element::new("proceed", ns::TLS)));
            out.push(Action::StartTls);
            return;
        }
        if el.is("auth", ns::SASL) {
            if !self.secure {
                out.push(Action::Send(sasl_failure(
                    "encryption-required",
                    Some("TLS is required before login"),
                )));
                return;
            }
            if self.authenticated {
                return self.close(
                    out,
                    StreamError::with_text(StreamCondition::PolicyViolation, "already logged in"),
                );
            }
            return self.on_auth(&el, out);
        }
        if el.is("authenticate", NS_SASL2) {
            if !self.secure {
                out.push(Action::Send(sasl2::failure(
                    "encryption-required",
                    Some("TLS is required before login"),
                )));
                return;
            }
            if self.authenticated {
                return self.close(
                    out,
                    StreamError::with_text(StreamCondition::PolicyViolation, "already logged in"),
                );
            }
            return self.on_authenticate(&el, out);
        }
        if !self.secure {
            return self.close(
                out,
                StreamError::with_text(StreamCondition::PolicyViolation, "TLS is required"),
            );
        }
        if !self.authenticated {
            if self.settings.registration && is_registration_iq(&el) {
                return self.on_registration_iq(el, out);
            }
            return self.close(
                out,
                StreamError::with_text(StreamCondition::NotAuthorized, "log in first"),
            );
        }
        // Authenticated, not yet bound: only the bind IQ is accepted.
        if el.is("iq", ns::CLIENT)
            && IqType::of(&el) == Some(IqType::Set)
            && let Some(bind) = el.get_child("bind", ns::BIND)
        {
            {
                let resource = bind.get_child("resource", ns::BIND).map(Element::text);
                let resource = match resource.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(r) => match ResourcePart::new(r) {
                        Ok(r) => Some(r.as_str().to_owned()),
                        Err(_) => {
                            let err = StanzaError::with_text(
                                StanzaCondition::BadRequest,
                                "invalid resource",
                            );
                            out.push(Action::Send(error_reply(&el, &err)));
                            return;
                        }
                    },
                };
                let Some(username) = self.username.clone() else {
                    return self.close(out, StreamError::new(StreamCondition::InternalServerError));
                };
                self.state = State::Binding;
                self.bind_request = Some(el);
                out.push(Action::Bind { username, resource });
                return;
            }
        }
        if let Some(request) = SmRequest::parse(&el) {
            return self.on_sm_before_bind(request, out);
        }
        if el.is("iq", ns::CLIENT) {
            // An IQ before bind: answer it rather than dropping the stream (some clients query early).
            if IqType::of(&el).is_some_and(IqType::is_request) {
                let err =
                    StanzaError::with_text(StanzaCondition::NotAllowed, "bind a resource first");
                out.push(Action::Send(error_reply(&el, &err)));
                return;
            }
        }
        self.close(
            out,
            StreamError::with_text(StreamCondition::NotAuthorized, "bind a resource first"),
        );
    }

    /// A registration IQ before login (see [`is_registration_iq`]).
    fn on_registration_iq(&mut self, el: Element, out: &mut Vec<Action>) {
        if IqType::of(&el) == Some(IqType::Get) {
            out.push(Action::Send(pre_login_reply(iq_result_with(
                &el,
                registration_form(),
            ))));
            return;
        }
        self.registration_attempts += 1;
        if self.registration_attempts > MAX_REGISTRATION_ATTEMPTS {
            return self.close(
                out,
                StreamError::with_text(
                    StreamCondition::PolicyViolation,
                    "too many registration attempts",
                ),
            );
        }
        if let Some(preauth) = el.get_child("preauth", NS_PARS) {
            let token = preauth.attr("token").unwrap_or_default().to_owned();
            self.state = State::Registering;
            self.registration_request = Some(el);
            out.push(Action::CheckInvite { token });
            return;
        }
        let Some(query) = el.get_child("query", NS_REGISTER) else {
            return self.registration_error(
                &el,
                StanzaError::new(StanzaCondition::BadRequest),
                out,
            );
        };
        let field = |name: &str| query.get_child(name, NS_REGISTER).map(Element::text);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            let err = StanzaError::with_text(
                StanzaCondition::BadRequest,
                "a registration needs <username/> and <password/>",
            );
            return self.registration_error(&el, err, out);
        };
        // Nodeprep (RFC 7622's predecessor profile, as Prosody), which also bounds the length.
        let Ok(node) = jid::NodePart::new(&username) else {
            let err = StanzaError::with_text(
                StanzaCondition::NotAcceptable,
                "The requested username is invalid.",
            );
            return self.registration_error(&el, err, out);
        };
        self.state = State::Registering;
        self.registration_request = Some(el);
        out.push(Action::Register {
            username: node.as_str().to_owned(),
            password,
            invite_token: self.invite_token.clone(),
        });
    }

    fn registration_error(&mut self, request: &Element, err: StanzaError, out: &mut Vec<Action>) {
        out.push(Action::Send(pre_login_reply(error_reply(request, &err))));
    }

    fn on_invite_checked(&mut self, status: InviteStatus, out: &mut Vec<Action>) {
        let Some(request) = self.registration_request.take() else {
            return self.close(out, StreamError::new(StreamCondition::InternalServerError));
        };
        self.state = State::Negotiating;
        let err = match status {
            InviteStatus::Valid => {
                self.invite_token = request
                    .get_child("preauth", NS_PARS)
                    .and_then(|p| p.attr("token"))
                    .map(str::to_owned);
                out.push(Action::Send(pre_login_reply(crate::stanza::iq_result(
                    &request,
                ))));
                return;
            }
            // item-not-found rather than Prosody's forbidden: Snikket Android shows "invalid invite" for it only
            // (spec §5.5 A, DECISION).
            InviteStatus::Invalid => StanzaError::with_text(
                StanzaCondition::ItemNotFound,
                "The invite token is invalid or expired",
            )
            .with_type(crate::errors::ErrorType::Cancel),
            InviteStatus::NoRegistration => StanzaError::with_text(
                StanzaCondition::Forbidden,
                "This invite does not allow registration",
            ),
        };
        self.registration_error(&request, err, out);
    }

    fn on_registered(&mut self, result: Result<(), StanzaError>, out: &mut Vec<Action>) {
        let Some(request) = self.registration_request.take() else {
            return self.close(out, StreamError::new(StreamCondition::InternalServerError));
        };
        self.state = State::Negotiating;
        match result {
            Ok(()) => {
                // The invite is spent; a further registration on this stream needs a new one.
                self.invite_token = None;
                out.push(Action::Send(pre_login_reply(crate::stanza::iq_result(
                    &request,
                ))));
            }
            Err(err) => self.registration_error(&request, err, out),
        }
    }

    fn on_auth(&mut self, el: &Element, out: &mut Vec<Action>) {
        self.sasl2_exchange = false;
        let offered = self.offered_mechanisms();
        let mechanism = el
            .attr("mechanism")
            .and_then(Mechanism::from_name)
            .filter(|m| offered.contains(m));
        let Some(mechanism) = mechanism else {
            out.push(Action::Send(sasl_failure("invalid-mechanism", None)));
            return;
        };
        let Ok(initial) = decode_sasl_payload(el) else {
            out.push(Action::Send(sasl_failure("incorrect-encoding", None)));
            return;
        };
        let mut exchange = ServerExchange::new(mechanism, self.bindings.clone());
        let step = exchange.step(initial.as_deref());
        self.exchange = Some(exchange);
        self.state = State::Authenticating;
        self.on_sasl_step(step, out);
    }

    fn on_sasl_element(&mut self, el: &Element, out: &mut Vec<Action>) {
        let sasl_ns = if self.sasl2_exchange {
            NS_SASL2
        } else {
            ns::SASL
        };
        if el.is("abort", sasl_ns) {
            self.exchange = None;
            self.state = State::Negotiating;
            let failure = self.failure_element("aborted", None);
            out.push(Action::Send(failure));
            return;
        }
        if !el.is("response", sasl_ns) {
            return self.close(
                out,
                StreamError::with_text(StreamCondition::NotAuthorized, "finish logging in first"),
            );
        }
        let data = match decode_sasl_payload(el) {
            Ok(data) => data.unwrap_or_default(),
            Err(()) => {
                self.exchange = None;
                self.state = State::Negotiating;
                let failure = self.failure_element("incorrect-encoding", None);
                out.push(Action::Send(failure));
                return;
            }
        };
        let step = match self.exchange.as_mut() {
            Some(exchange) => exchange.step(Some(&data)),
            None => return self.close(out, StreamError::new(StreamCondition::InternalServerError)),
        };
        self.on_sasl_step(step, out);
    }

    fn on_sasl_step(&mut self, step: Step, out: &mut Vec<Action>) {
        match step {
            Step::NeedCredentials { username } => {
                // Usernames compare as nodeprepped localparts, as in Prosody. One that cannot be a localpart
                // cannot exist, so the exchange goes on as for an unknown account.
                match jid::NodePart::new(&username) {
                    Ok(node) => {
                        let username = node.as_str().to_owned();
                        self.username = Some(username.clone());
                        self.state = State::LookingUp;
                        out.push(Action::LookupCredentials { username });
                    }
                    Err(_) => {
                        let step = match self.exchange.as_mut() {
                            Some(exchange) => exchange.provide(Lookup::NotFound),
                            None => {
                                return self.close(
                                    out,
                                    StreamError::new(StreamCondition::InternalServerError),
                                );
                            }
                        };
                        self.on_sasl_step(step, out);
                    }
                }
            }
            Step::Challenge(data) if self.sasl2_exchange => {
                out.push(Action::Send(sasl2::challenge(&data)));
            }
            Step::Challenge(data) => {
                out.push(Action::Send(
                    Element::new("challenge", ns::SASL).with_text(encode_sasl_payload(&data)),
                ));
            }
            Step::Success {
                username,
                authzid,
                additional_data,
            } => {
                self.exchange = None;
                let Ok(node) = jid::NodePart::new(&username) else {
                    return self.sasl_failed(out, "not-authorized", None);
                };
                let own = format!("{}@{}", node.as_str(), self.settings.domain);
                if let Some(authzid) = authzid.filter(|a| !a.is_empty()) {
                    // Only the account's own bare JID is an acceptable authorization identity.
                    if BareJid::new(&authzid).map(|j| j.to_string()) != Ok(own) {
                        return self.sasl_failed(out, "invalid-authzid", None);
                    }
                }
                self.username = Some(node.as_str().to_owned());
                self.authenticated = true;
                if self.sasl2_exchange {
                    return self.complete_sasl2(additional_data, None, out);
                }
                self.state = State::AwaitHeader;
                let mut success = Element::new("success", ns::SASL);
                if let Some(data) = additional_data {
                    success.append_text(encode_sasl_payload(&data));
                }
                out.push(Action::Send(success));
                out.push(Action::ResetParser);
            }
            Step::Failure(failure) => {
                self.exchange = None;
                self.sasl_failed(out, failure.condition.name(), failure.text.as_deref());
            }
        }
    }

    /// A `<failure/>` in the namespace of the exchange under way (SASL2 or RFC 6120), which it ends.
    fn failure_element(&mut self, condition: &str, text: Option<&str>) -> Element {
        self.sasl2 = None;
        if self.sasl2_exchange {
            sasl2::failure(condition, text)
        } else {
            sasl_failure(condition, text)
        }
    }

    fn sasl_failed(&mut self, out: &mut Vec<Action>, condition: &str, text: Option<&str>) {
        self.auth_failures += 1;
        self.state = State::Negotiating;
        if !self.authenticated {
            self.username = None;
        }
        let failure = self.failure_element(condition, text);
        out.push(Action::Send(failure));
        if self.auth_failures >= self.settings.max_auth_failures {
            self.close(
                out,
                StreamError::with_text(
                    StreamCondition::PolicyViolation,
                    "too many failed login attempts",
                ),
            );
        }
    }

    /// XEP-0198 after login and before bind: `<resume/>` takes the place of bind; `<enable/>` needs a bound
    /// resource first.
    fn on_sm_before_bind(
        &mut self,
        request: Result<SmRequest, SmParseError>,
        out: &mut Vec<Action>,
    ) {
        match request {
            Ok(SmRequest::Resume { previd, h }) => {
                let Some(username) = self.username.clone() else {
                    return self.close(out, StreamError::new(StreamCondition::InternalServerError));
                };
                self.state = State::Resuming;
                out.push(Action::Resume {
                    username,
                    previd,
                    h,
                });
            }
            Ok(SmRequest::Enable { .. }) => {
                out.push(Action::Send(sm::failed("unexpected-request", None)));
            }
            // Nothing to acknowledge yet.
            Ok(SmRequest::AckRequest | SmRequest::Ack { .. }) => {}
            Err(SmParseError::Unknown(_)) => {
                out.push(Action::Send(sm::failed("unexpected-request", None)));
            }
            Err(SmParseError::BadCount | SmParseError::MissingPrevid) => {
                out.push(Action::Send(sm::failed("bad-request", None)));
            }
        }
    }

    fn on_resumed(&mut self, result: Result<ResumedSession, Element>, out: &mut Vec<Action>) {
        match result {
            Ok(resumed) => {
                out.push(Action::Send(sm::resumed(&resumed.previd, resumed.handled)));
                self.state = State::Established;
                out.push(Action::ResumedSession(resumed.jid));
            }
            Err(failed) => {
                // The client may bind a new session instead.
                self.state = State::Negotiating;
                out.push(Action::Send(failed));
            }
        }
    }

    /// SASL2's `<authenticate/>` (XEP-0388): a password mechanism runs through the same exchange as SASL1, a FAST
    /// one (XEP-0484) is checked against the client's tokens.
    fn on_authenticate(&mut self, el: &Element, out: &mut Vec<Action>) {
        self.sasl2_exchange = true;
        let request = match sasl2::parse_authenticate(el) {
            Ok(request) => request,
            Err(sasl2::MalformedAuthenticate(text)) => {
                return self.sasl_failed(out, "malformed-request", Some(text));
            }
        };
        let Ok(initial) = decode_sasl2_payload(request.initial_response.as_deref()) else {
            out.push(Action::Send(sasl2::failure("incorrect-encoding", None)));
            return;
        };
        if let Some(ht) = HtMechanism::from_name(&request.mechanism)
            .filter(|m| HtMechanism::available(&self.bindings).contains(m))
        {
            let Some(client_id) = request.user_agent.as_ref().map(|ua| ua.id.clone()) else {
                return self.sasl_failed(
                    out,
                    "malformed-request",
                    Some("FAST needs a <user-agent id/>"),
                );
            };
            let response = match ht::parse_initial_response(&initial.unwrap_or_default()) {
                Ok(response) => response,
                Err(failure) => {
                    return self.sasl_failed(
                        out,
                        failure.condition.name(),
                        failure.text.as_deref(),
                    );
                }
            };
            // An unusable username cannot have tokens: it fails as a wrong token does, after the look-up step.
            let username = jid::NodePart::new(&response.username)
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default();
            self.username = Some(username.clone());
            self.sasl2 = Some(Sasl2Pending {
                request,
                fast: Some((ht, response)),
            });
            self.state = State::LookingUpTokens;
            out.push(Action::LookupFastTokens {
                username,
                client_id,
            });
            return;
        }
        let offered = self.offered_mechanisms();
        let Some(mechanism) =
            Mechanism::from_name(&request.mechanism).filter(|m| offered.contains(m))
        else {
            out.push(Action::Send(sasl2::failure("invalid-mechanism", None)));
            return;
        };
        self.sasl2 = Some(Sasl2Pending {
            request,
            fast: None,
        });
        let mut exchange = ServerExchange::new(mechanism, self.bindings.clone());
        let step = exchange.step(initial.as_deref());
        self.exchange = Some(exchange);
        self.state = State::Authenticating;
        self.on_sasl_step(step, out);
    }

    fn on_fast_tokens(&mut self, lookup: FastLookup, out: &mut Vec<Action>) {
        let Some(pending) = self.sasl2.as_ref() else {
            return self.close(out, StreamError::new(StreamCondition::InternalServerError));
        };
        let (Some((mechanism, response)), Some(user_agent)) =
            (pending.fast.as_ref(), pending.request.user_agent.as_ref())
        else {
            return self.close(out, StreamError::new(StreamCondition::InternalServerError));
        };
        let fast = pending.request.fast.unwrap_or(FastOptions {
            count: None,
            invalidate: false,
        });
        let tokens = match lookup.account {
            FastAccount::Missing => &[][..],
            _ => &lookup.tokens[..],
        };
        let attempt = ht::FastAttempt {
            mechanism: *mechanism,
            response,
            count: fast.count,
            bindings: &self.bindings,
            now: lookup.now,
            rotate_after: FAST_ROTATE_AFTER_SECS,
        };
        let username = self.username.clone().unwrap_or_default();
        match (ht::verify(&attempt, tokens), lookup.account) {
            (Err(failure), _) => {
                if let Some(slot) = failure.expired {
                    out.push(Action::RemoveFastToken {
                        username,
                        client_id: user_agent.id.clone(),
                        slot,
                    });
                }
                let failure = failure.failure;
                self.sasl_failed(out, failure.condition.name(), failure.text.as_deref());
            }
            (Ok(_), FastAccount::Disabled(text)) => {
                self.sasl_failed(out, Condition::AccountDisabled.name(), text.as_deref());
            }
            (Ok(success), _) => {
                let mechanism = *mechanism;
                self.authenticated = true;
                // A token due for rotation is replaced by one for the same mechanism, unless the client is
                // throwing it away or asked for another one itself.
                let rotate = (success.rotate && !fast.invalidate).then_some(mechanism);
                self.complete_sasl2(
                    Some(success.additional_data),
                    Some(((success.slot, fast), rotate)),
                    out,
                );
            }
        }
    }

    /// Authenticated through SASL2: the connection records the client and tokens and binds; the success follows in
    /// [`Self::on_login_completed`].
    #[allow(clippy::type_complexity)]
    fn complete_sasl2(
        &mut self,
        additional_data: Option<Vec<u8>>,
        fast: Option<((TokenSlot, FastOptions), Option<HtMechanism>)>,
        out: &mut Vec<Action>,
    ) {
        let (Some(pending), Some(username)) = (self.sasl2.as_ref(), self.username.clone()) else {
            return self.close(out, StreamError::new(StreamCondition::InternalServerError));
        };
        let request = &pending.request;
        let user_agent = request.user_agent.clone();
        let (used_token, rotation) = match fast {
            Some((used, rotation)) => (Some(used), rotation),
            None => (None, None),
        };
        let requested = request
            .token_request
            .as_deref()
            .and_then(HtMechanism::from_name)
            .filter(|m| HtMechanism::available(&self.bindings).contains(m));
        // Tokens belong to a client: without a user agent none is issued (as Prosody).
        let issue_token = requested.or(rotation).filter(|_| user_agent.is_some());
        let bind = request.bind.as_ref().map(|bind| {
            let tag = bind.get_child("tag", NS_BIND2).map(Element::text);
            Bind2Request {
                resource: sasl2::bind2_resource(
                    tag.as_deref(),
                    &username,
                    user_agent.as_ref().map(|ua| ua.id.as_str()),
                ),
                inline: bind
                    .children()
                    .filter(|c| !c.is("tag", NS_BIND2))
                    .cloned()
                    .collect(),
            }
        });
        let completion = LoginCompletion {
            username,
            user_agent,
            used_token,
            issue_token,
            bind,
            sm_resume: request.sm_resume.clone(),
        };
        self.exchange = None;
        self.additional_data = additional_data;
        self.state = State::CompletingLogin;
        out.push(Action::CompleteLogin(Box::new(completion)));
    }

    fn on_login_completed(
        &mut self,
        result: Result<LoginResult, BindRefusal>,
        out: &mut Vec<Action>,
    ) {
        self.sasl2 = None;
        let additional_data = self.additional_data.take();
        let Some(username) = self.username.clone() else {
            return self.close(out, StreamError::new(StreamCondition::InternalServerError));
        };
        match result {
            Ok(LoginResult {
                token,
                resumed: Some(resumed),
                ..
            }) => {
                let mut success = sasl2::success(
                    additional_data.as_deref(),
                    resumed.jid.as_str(),
                    token.as_ref(),
                    None,
                );
                success.append_child(sm::resumed(&resumed.previd, resumed.handled));
                out.push(Action::Send(success));
                self.state = State::Established;
                out.push(Action::ResumedSession(resumed.jid));
            }
            Ok(LoginResult {
                token,
                bound,
                sm_failed,
                ..
            }) => {
                let (identifier, bound_el, jid) = match bound {
                    Some((jid, results)) => {
                        let mut bound = Element::new("bound", NS_BIND2);
                        for result in results {
                            bound.append_child(result);
                        }
                        (jid.to_string(), Some(bound), Some(jid))
                    }
                    None => (format!("{username}@{}", self.settings.domain), None, None),
                };
                let mut success = sasl2::success(
                    additional_data.as_deref(),
                    &identifier,
                    token.as_ref(),
                    None,
                );
                // XEP-0198 §SASL2: a failed inline resumption is said before the new session's `<bound/>`.
                if let Some(failed) = sm_failed {
                    success.append_child(failed);
                }
                if let Some(bound_el) = bound_el {
                    success.append_child(bound_el);
                }
                out.push(Action::Send(success));
                match jid {
                    Some(jid) => {
                        self.state = State::Established;
                        out.push(Action::Established(jid));
                    }
                    // No stream restart (XEP-0388): the client may bind the RFC 6120 way on this stream.
                    None => self.state = State::Negotiating,
                }
            }
            Err(BindRefusal::TooManyResources) => self.close(
                out,
                StreamError::with_text(StreamCondition::PolicyViolation, "too many resources"),
            ),
            Err(BindRefusal::Error(_)) => {
                self.close(out, StreamError::new(StreamCondition::InternalServerError))
            }
        }
    }

    fn on_bound(&mut self, result: Result<FullJid, BindRefusal>, out: &mut Vec<Action>) {
        let Some(request) = self.bind_request.take() else {
            return self.close(out, StreamError::new(StreamCondition::InternalServerError));
        };
        match result {
            Ok(jid) => {
                let payload = Element::new("bind", ns::BIND)
                    .with_child(Element::new("jid", ns::BIND).with_text(jid.to_string()));
                let mut reply = iq_result_with(&request, payload);
                reply.remove_attr("from");
                reply.remove_attr("to");
                out.push(Action::Send(reply));
                self.state = State::Established;
                out.push(Action::Established(jid));
            }
            Err(BindRefusal::TooManyResources) => {
                self.close(
                    out,
                    StreamError::with_text(StreamCondition::PolicyViolation, "too many resources"),
                );
            }
            Err(BindRefusal::Error(err)) => {
                self.state = State::Negotiating;
                out.push(Action::Send(error_reply(&request, &err)));
            }
        }
    }
}

/// Whether a stanza before login belongs to registration: a `<preauth/>` set, or a `jabber:iq:register` get or set.
fn is_registration_iq(el: &Element) -> bool {
    if !el.is("iq", ns::CLIENT) {
        return false;
    }
    match IqType::of(el) {
        Some(IqType::Set) => el.has_child("preauth", NS_PARS) || el.has_child("query", NS_REGISTER),
        Some(IqType::Get) => el.has_child("query", NS_REGISTER),
        _ => false,
    }
}

/// The registration form (spec §5.5 A step 3): instructions, the legacy fields the apps need, and the same as a
/// data form.
fn registration_form() -> Element {
    let field = |var: &str, kind: &str, label: &str| {
        Element::new("field", NS_DATA)
            .with_attr("var", var)
            .with_attr("type", kind)
            .with_attr("label", label)
            .with_child(Element::new("required", NS_DATA))
    };
    let form = Element::new("x", NS_DATA)
        .with_attr("type", "form")
        .with_child(Element::new("title", NS_DATA).with_text("Creating a new account"))
        .with_child(
            Element::new("instructions", NS_DATA)
                .with_text("Choose a username and password for use with this service."),
        )
        .with_child(
            Element::new("field", NS_DATA)
                .with_attr("var", "FORM_TYPE")
                .with_attr("type", "hidden")
                .with_child(Element::new("value", NS_DATA).with_text(NS_REGISTER)),
        )
        .with_child(field("username", "text-single", "Username"))
        .with_child(field("password", "text-private", "Password"));
    Element::new("query", NS_REGISTER)
        .with_child(
            Element::new("instructions", NS_REGISTER)
                .with_text("Choose a username and password for use with this service."),
        )
        .with_child(Element::new("username", NS_REGISTER))
        .with_child(Element::new("password", NS_REGISTER))
        .with_child(form)
}

/// A reply on a stream without an address yet: no `to` (the client has no JID). The `from` stays: clients match
/// replies by the address they asked (slixmpp waits for one from the domain when it sent `to` the domain).
fn pre_login_reply(mut reply: Element) -> Element {
    reply.remove_attr("to");
    reply
}

/// `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><condition/>[<text/>]</failure>`.
fn sasl_failure(condition: &str, text: Option<&str>) -> Element {
    let mut failure =
        Element::new("failure", ns::SASL).with_child(Element::new(condition, ns::SASL));
    if let Some(text) = text {
        failure.append_child(
            Element::new("text", ns::SASL)
                .with_attr("xml:lang", "en")
                .with_text(text),
        );
    }
    failure
}

/// The base64 payload of `<auth>`/`<response>`: None when there is none, empty for `=` (RFC 6120 §6.4.2).
fn decode_sasl_payload(el: &Element) -> Result<Option<Vec<u8>>, ()> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text == "=" {
        return Ok(Some(Vec::new()));
    }
    BASE64.decode(text).map(Some).map_err(|_| ())
}

/// The base64 of SASL2's `<initial-response/>`: None when absent, empty when empty (XEP-0388 has no `=`).
fn decode_sasl2_payload(text: Option<&str>) -> Result<Option<Vec<u8>>, ()> {
    match text.map(str::trim) {
        None => Ok(None),
        Some("" | "=") => Ok(Some(Vec::new())),
        Some(text) => BASE64.decode(text).map(Some).map_err(|_| ()),
    }
}

/// Base64 for `<challenge>`/`<success>`; `=` stands for empty data.
fn encode_sasl_payload(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        BASE64.encode(data)
    }
}

/// A stream id: 128 random bits, hex.
fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut s = String::with_capacity(32);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn push_escaped_attr(out: &mut String, value: &str) {
    let mut buf = Vec::new();
    rookery_xml::escape_attr(&mut buf, value);
    out.push_str(&String::from_utf8_lossy(&buf));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_sasl::Credentials;
    use sasl::client::Mechanism as _;

    const DOMAIN: &str = "example.com";

    fn settings() -> C2sSettings {
        C2sSettings {
            domain: DOMAIN.into(),
            mechanisms: vec![Mechanism::ScramSha256, Mechanism::ScramSha1],
            max_stanza_bytes: 262_144,
            max_unauthenticated_stanza_bytes: 16_384,
            max_auth_failures: 2,
            session_features: Vec::new(),
            registration: true,
            bind2_features: vec!["urn:xmpp:carbons:2".into()],
            sasl2_inline: Vec::new(),
        }
    }

    fn header(ns: &str, to: Option<&str>, version: Option<&str>) -> Input {
        let mut el = Element::new("stream", ns::STREAMS);
        if let Some(to) = to {
            el.set_attr("to", to);
        }
        if let Some(v) = version {
            el.set_attr("version", v);
        }
        Input::Stream(StreamEvent::Open(StreamHeader {
            element: el,
            default_ns: ns.into(),
        }))
    }

    fn good_header() -> Input {
        header(ns::CLIENT, Some(DOMAIN), Some("1.0"))
    }

    fn element(el: Element) -> Input {
        Input::Stream(StreamEvent::Element(el))
    }

    fn closed_with(actions: &[Action]) -> Option<StreamCondition> {
        actions.iter().find_map(|a| match a {
            Action::Close(e) => Some(e.condition),
            _ => None,
        })
    }

    fn sent(actions: &[Action]) -> Vec<&Element> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(el) => Some(el),
                _ => None,
            })
            .collect()
    }

    fn secure_negotiator() -> C2sNegotiator {
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![7; 32]),
            tls_server_end_point: Some(vec![9; 32]),
        };
        let mut n = C2sNegotiator::new(settings(), Some(bindings));
        n.handle(good_header());
        n
    }

    #[test]
    fn header_errors() {
        let cases = [
            (
                header("jabber:server", Some(DOMAIN), Some("1.0")),
                StreamCondition::InvalidNamespace,
            ),
            (
                header(ns::CLIENT, Some("other.example"), Some("1.0")),
                StreamCondition::HostUnknown,
            ),
            (
                header(ns::CLIENT, None, Some("1.0")),
                StreamCondition::ImproperAddressing,
            ),
            (
                header(ns::CLIENT, Some(DOMAIN), None),
                StreamCondition::UnsupportedVersion,
            ),
            (
                header(ns::CLIENT, Some(DOMAIN), Some("2.0")),
                StreamCondition::UnsupportedVersion,
            ),
        ];
        for (input, condition) in cases {
            let mut n = C2sNegotiator::new(settings(), None);
            let actions = n.handle(input);
            assert!(
                matches!(actions[0], Action::SendRaw(_)),
                "a header comes first: {actions:?}"
            );
            assert_eq!(closed_with(&actions), Some(condition));
        }
    }

    #[test]
    fn tls_is_required_first() {
        let mut n = C2sNegotiator::new(settings(), None);
        let actions = n.handle(good_header());
        let features = sent(&actions)[0];
        assert!(
            features
                .get_child("starttls", ns::TLS)
                .unwrap()
                .has_child("required", ns::TLS)
        );
        assert!(!features.has_child("mechanisms", ns::SASL));

        let actions = n.handle(element(
            Element::new("auth", ns::SASL).with_attr("mechanism", "SCRAM-SHA-1"),
        ));
        assert!(sent(&actions)[0].has_child("encryption-required", ns::SASL));

        let actions = n.handle(element(Element::new("message", ns::CLIENT)));
        assert_eq!(
            closed_with(&actions),
            Some(StreamCondition::PolicyViolation)
        );
    }

    #[test]
    fn starttls_then_mechanisms_with_plus() {
        let mut n = C2sNegotiator::new(settings(), None);
        n.handle(good_header());
        let actions = n.handle(element(Element::new("starttls", ns::TLS)));
        assert!(sent(&actions)[0].is("proceed", ns::TLS));
        assert_eq!(actions.last(), Some(&Action::StartTls));
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![1; 32]),
            tls_server_end_point: None,
        };
        assert!(n.handle(Input::TlsEstablished { bindings }).is_empty());
        let actions = n.handle(good_header());
        let features = sent(&actions)[0];
        let mechs: Vec<String> = features
            .get_child("mechanisms", ns::SASL)
            .unwrap()
            .children()
            .map(Element::text)
            .collect();
        assert_eq!(
            mechs,
            [
                "SCRAM-SHA-256-PLUS",
                "SCRAM-SHA-256",
                "SCRAM-SHA-1-PLUS",
                "SCRAM-SHA-1"
            ]
        );
        let cb = features
            .get_child("sasl-channel-binding", ns::SASL_CB)
            .unwrap();
        assert_eq!(
            cb.children()
                .filter_map(|c| c.attr("type"))
                .collect::<Vec<_>>(),
            ["tls-exporter"]
        );
        assert!(features.has_child("limits", ns::STREAM_LIMITS));
    }

    /// Runs a SCRAM-SHA-1 login with the xmpp-rs client against the negotiator.
    fn scram_login(n: &mut C2sNegotiator, password: &str, stored: &Credentials) -> Vec<Action> {
        // "n": the client does not do channel binding. (The crate's default, "y", is a downgrade we refuse.)
        let creds = sasl::common::Credentials::default()
            .with_username("alice")
            .with_password(password)
            .with_channel_binding(sasl::common::ChannelBinding::None);
        let mut client =
            sasl::client::mechanisms::Scram::<sasl::common::scram::Sha1>::from_credentials(creds)
                .unwrap();
        let initial = BASE64.encode(client.initial());
        let actions = n.handle(element(
            Element::new("auth", ns::SASL)
                .with_attr("mechanism", "SCRAM-SHA-1")
                .with_text(initial),
        ));
        assert_eq!(
            actions,
            [Action::LookupCredentials {
                username: "alice".into()
            }]
        );
        let actions = n.handle(Input::Credentials(Lookup::Found(stored.clone())));
        let challenge = sent(&actions)[0];
        assert!(challenge.is("challenge", ns::SASL));
        let response = client
            .response(&BASE64.decode(challenge.text()).unwrap())
            .unwrap();
        n.handle(element(
            Element::new("response", ns::SASL).with_text(BASE64.encode(response)),
        ))
    }

    #[test]
    fn resumption_takes_the_place_of_bind() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let mut n = secure_negotiator();
        scram_login(&mut n, "correct horse battery", &stored);
        n.handle(good_header());
        let sm_el = |xml: &str| element(rookery_xml::parse_element(xml).unwrap());
        // Enabling needs a bound resource; acknowledgements before bind mean nothing.
        let actions = n.handle(sm_el("<enable xmlns='urn:xmpp:sm:3' resume='true'/>"));
        assert_eq!(
            sent(&actions)[0].to_xml_string(),
            sm::failed("unexpected-request", None).to_xml_string()
        );
        assert!(n.handle(sm_el("<r xmlns='urn:xmpp:sm:3'/>")).is_empty());
        let actions = n.handle(sm_el("<resume xmlns='urn:xmpp:sm:3' previd='x'/>"));
        assert!(sent(&actions)[0].has_child("bad-request", ns::STANZA_ERRORS));

        let actions = n.handle(sm_el("<resume xmlns='urn:xmpp:sm:3' previd='s1' h='3'/>"));
        assert_eq!(
            actions,
            [Action::Resume {
                username: "alice".into(),
                previd: "s1".into(),
                h: 3
            }]
        );
        // Unknown: <failed/> and the client may bind instead.
        let failed = sm::failed("item-not-found", None);
        let actions = n.handle(Input::Resumed(Err(failed.clone())));
        assert_eq!(actions, [Action::Send(failed)]);
        let actions = n.handle(sm_el("<resume xmlns='urn:xmpp:sm:3' previd='s2' h='0'/>"));
        assert_eq!(actions.len(), 1);
        let jid = FullJid::new("alice@example.com/phone").unwrap();
        let actions = n.handle(Input::Resumed(Ok(ResumedSession {
            jid: jid.clone(),
            previd: "s2".into(),
            handled: 5,
        })));
        assert_eq!(
            actions,
            [
                Action::Send(sm::resumed("s2", 5)),
                Action::ResumedSession(jid)
            ]
        );
    }

    #[test]
    fn login_bind_and_resource_limit() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let mut n = secure_negotiator();
        let actions = scram_login(&mut n, "correct horse battery", &stored);
        assert!(sent(&actions)[0].is("success", ns::SASL));
        assert_eq!(actions.last(), Some(&Action::ResetParser));
        assert_eq!(n.authenticated_user(), Some("alice"));

        let actions = n.handle(good_header());
        assert!(sent(&actions)[0].has_child("bind", ns::BIND));

        let bind = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "b")
            .with_child(
                Element::new("bind", ns::BIND)
                    .with_child(Element::new("resource", ns::BIND).with_text("phone")),
            );
        let actions = n.handle(element(bind.clone()));
        assert_eq!(
            actions,
            [Action::Bind {
                username: "alice".into(),
                resource: Some("phone".into())
            }]
        );
        let actions = n.handle(Input::Bound(Err(BindRefusal::TooManyResources)));
        assert_eq!(
            closed_with(&actions),
            Some(StreamCondition::PolicyViolation)
        );
    }

    #[test]
    fn bind_success_replies_with_the_jid() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let mut n = secure_negotiator();
        scram_login(&mut n, "correct horse battery", &stored);
        n.handle(good_header());
        let bind = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "b")
            .with_child(Element::new("bind", ns::BIND));
        assert_eq!(
            n.handle(element(bind)),
            [Action::Bind {
                username: "alice".into(),
                resource: None
            }]
        );
        let jid = FullJid::new("alice@example.com/abc").unwrap();
        let actions = n.handle(Input::Bound(Ok(jid.clone())));
        let reply = sent(&actions)[0];
        assert_eq!(reply.attr("type"), Some("result"));
        assert_eq!(
            reply
                .get_child("bind", ns::BIND)
                .unwrap()
                .get_child("jid", ns::BIND)
                .unwrap()
                .text(),
            jid.to_string()
        );
        assert_eq!(actions.last(), Some(&Action::Established(jid)));
    }

    #[test]
    fn wrong_password_then_too_many_failures() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let mut n = secure_negotiator();
        let actions = scram_login(&mut n, "wrong password!", &stored);
        assert!(sent(&actions)[0].has_child("not-authorized", ns::SASL));
        assert_eq!(closed_with(&actions), None);
        let actions = scram_login(&mut n, "still wrong!!", &stored);
        assert_eq!(
            closed_with(&actions),
            Some(StreamCondition::PolicyViolation)
        );
    }

    #[test]
    fn unknown_mechanism_and_bad_base64() {
        let mut n = secure_negotiator();
        let actions = n.handle(element(
            Element::new("auth", ns::SASL).with_attr("mechanism", "PLAIN"),
        ));
        assert!(sent(&actions)[0].has_child("invalid-mechanism", ns::SASL));
        let actions = n.handle(element(
            Element::new("auth", ns::SASL)
                .with_attr("mechanism", "SCRAM-SHA-1")
                .with_text("not base64!"),
        ));
        assert!(sent(&actions)[0].has_child("incorrect-encoding", ns::SASL));
    }

    #[test]
    fn stanzas_before_login_close_the_stream() {
        let mut n = secure_negotiator();
        let actions = n.handle(element(Element::new("message", ns::CLIENT)));
        assert_eq!(closed_with(&actions), Some(StreamCondition::NotAuthorized));
    }

    fn iq(kind: &str, id: &str, payload: Element) -> Input {
        element(
            Element::new("iq", ns::CLIENT)
                .with_attr("type", kind)
                .with_attr("id", id)
                .with_attr("to", DOMAIN)
                .with_child(payload),
        )
    }

    fn preauth(token: &str) -> Input {
        iq(
            "set",
            "p",
            Element::new("preauth", NS_PARS).with_attr("token", token),
        )
    }

    fn register_set(username: &str, password: &str) -> Input {
        iq(
            "set",
            "r",
            Element::new("query", NS_REGISTER)
                .with_child(Element::new("username", NS_REGISTER).with_text(username))
                .with_child(Element::new("password", NS_REGISTER).with_text(password)),
        )
    }

    fn error_condition(el: &Element) -> Option<String> {
        let error = el.get_child("error", ns::CLIENT)?;
        error.first_child().map(|c| c.name().to_owned())
    }

    #[test]
    fn registration_features_only_after_tls() {
        let mut n = C2sNegotiator::new(settings(), None);
        let actions = n.handle(good_header());
        let features = sent(&actions)[0];
        assert!(!features.has_child("register", NS_REGISTER_FEATURE));
        // Before TLS a registration IQ is refused like any stanza.
        let actions = n.handle(preauth("abc"));
        assert_eq!(
            closed_with(&actions),
            Some(StreamCondition::PolicyViolation)
        );

        let mut n = C2sNegotiator::new(settings(), Some(ChannelBindings::default()));
        let actions = n.handle(good_header());
        let features = sent(&actions)[0];
        for ns in [NS_REGISTER_FEATURE, NS_INVITE, NS_IBR_TOKEN] {
            assert!(features.has_child("register", ns), "{ns}");
        }

        let mut off = settings();
        off.registration = false;
        let mut n = C2sNegotiator::new(off, Some(ChannelBindings::default()));
        let actions = n.handle(good_header());
        assert!(!sent(&actions)[0].has_child("register", NS_REGISTER_FEATURE));
        let actions = n.handle(preauth("abc"));
        assert_eq!(closed_with(&actions), Some(StreamCondition::NotAuthorized));
    }

    #[test]
    fn registration_form_has_legacy_fields_and_data_form() {
        let mut n = secure_negotiator();
        let actions = n.handle(iq("get", "g", Element::new("query", NS_REGISTER)));
        let reply = sent(&actions)[0];
        assert_eq!(reply.attr("type"), Some("result"));
        assert_eq!(reply.attr("to"), None);
        let query = reply.get_child("query", NS_REGISTER).unwrap();
        assert!(query.has_child("username", NS_REGISTER));
        assert!(query.has_child("password", NS_REGISTER));
        let form = query.get_child("x", NS_DATA).unwrap();
        let vars: Vec<_> = form.children().filter_map(|f| f.attr("var")).collect();
        assert_eq!(vars, ["FORM_TYPE", "username", "password"]);
    }

    #[test]
    fn preauth_token_is_checked_and_remembered() {
        let mut n = secure_negotiator();
        let actions = n.handle(preauth("bad"));
        assert_eq!(
            actions,
            [Action::CheckInvite {
                token: "bad".into()
            }]
        );
        let actions = n.handle(Input::InviteChecked(InviteStatus::Invalid));
        let reply = sent(&actions)[0];
        assert_eq!(error_condition(reply).as_deref(), Some("item-not-found"));

        // Without an accepted token, the registration goes on with none (the registrar refuses it).
        assert_eq!(
            n.handle(register_set("Alice", "long enough password")),
            [Action::Register {
                username: "alice".into(),
                password: "long enough password".into(),
                invite_token: None
            }]
        );
        n.handle(Input::Registered(Err(StanzaError::new(
            StanzaCondition::NotAcceptable,
        ))));

        n.handle(preauth("good"));
        let actions = n.handle(Input::InviteChecked(InviteStatus::Valid));
        assert_eq!(sent(&actions)[0].attr("type"), Some("result"));
        assert_eq!(
            n.handle(register_set("bob", "long enough password")),
            [Action::Register {
                username: "bob".into(),
                password: "long enough password".into(),
                invite_token: Some("good".into())
            }]
        );
        let actions = n.handle(Input::Registered(Ok(())));
        assert_eq!(sent(&actions)[0].attr("type"), Some("result"));
        // Registered: the stream may log in now.
        let actions = n.handle(element(
            Element::new("auth", ns::SASL).with_attr("mechanism", "SCRAM-SHA-1"),
        ));
        assert!(
            matches!(actions.last(), Some(Action::Send(el)) if el.is("challenge", ns::SASL)),
            "login goes on: {actions:?}"
        );
    }

    #[test]
    fn registration_input_errors_and_attempt_limit() {
        let mut n = secure_negotiator();
        let actions = n.handle(register_set("not a@node", "long enough password"));
        let reply = sent(&actions)[0];
        assert_eq!(error_condition(reply).as_deref(), Some("not-acceptable"));
        let actions = n.handle(iq(
            "set",
            "x",
            Element::new("query", NS_REGISTER)
                .with_child(Element::new("username", NS_REGISTER).with_text("carol")),
        ));
        assert_eq!(
            error_condition(sent(&actions)[0]).as_deref(),
            Some("bad-request")
        );
        for _ in 2..MAX_REGISTRATION_ATTEMPTS {
            n.handle(preauth("x"));
            n.handle(Input::InviteChecked(InviteStatus::Invalid));
        }
        let actions = n.handle(preauth("x"));
        assert_eq!(
            closed_with(&actions),
            Some(StreamCondition::PolicyViolation)
        );
    }

    #[test]
    fn client_close_is_answered() {
        let mut n = secure_negotiator();
        assert_eq!(
            n.handle(Input::Stream(StreamEvent::Close)),
            [Action::CloseStream]
        );
        assert!(n.handle(good_header()).is_empty());
    }

    // SASL2, Bind2 and FAST.

    use crate::sasl2::{NS_FAST, NS_SASL2 as SASL2};

    fn sasl2_child<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
        el.get_child(name, SASL2)
    }

    fn failure_condition(el: &Element) -> Option<String> {
        assert!(el.is("failure", SASL2), "a SASL2 failure: {el:?}");
        el.children()
            .find(|c| c.ns() == ns::SASL)
            .map(|c| c.name().to_owned())
    }

    fn user_agent(id: &str) -> Element {
        Element::new("user-agent", SASL2)
            .with_attr("id", id)
            .with_child(Element::new("software", SASL2).with_text("Snikket"))
            .with_child(Element::new("device", SASL2).with_text("Pixel"))
    }

    fn scram_client(password: &str) -> sasl::client::mechanisms::Scram<sasl::common::scram::Sha1> {
        let creds = sasl::common::Credentials::default()
            .with_username("alice")
            .with_password(password)
            .with_channel_binding(sasl::common::ChannelBinding::None);
        sasl::client::mechanisms::Scram::<sasl::common::scram::Sha1>::from_credentials(creds)
            .unwrap()
    }

    /// A SCRAM-SHA-1 login through SASL2 with `extra` children in `<authenticate/>`; returns the actions after the
    /// client's final message.
    fn sasl2_scram(
        n: &mut C2sNegotiator,
        password: &str,
        stored: &Credentials,
        extra: Vec<Element>,
    ) -> Vec<Action> {
        let mut client = scram_client(password);
        let mut auth = Element::new("authenticate", SASL2)
            .with_attr("mechanism", "SCRAM-SHA-1")
            .with_child(
                Element::new("initial-response", SASL2).with_text(BASE64.encode(client.initial())),
            );
        for child in extra {
            auth.append_child(child);
        }
        assert_eq!(
            n.handle(element(auth)),
            [Action::LookupCredentials {
                username: "alice".into()
            }]
        );
        let actions = n.handle(Input::Credentials(Lookup::Found(stored.clone())));
        let challenge = sent(&actions)[0];
        assert!(challenge.is("challenge", SASL2), "{challenge:?}");
        let response = client
            .response(&BASE64.decode(challenge.text()).unwrap())
            .unwrap();
        n.handle(element(
            Element::new("response", SASL2).with_text(BASE64.encode(response)),
        ))
    }

    fn completion(actions: &[Action]) -> &LoginCompletion {
        match actions.last() {
            Some(Action::CompleteLogin(c)) => c,
            other => panic!("expected CompleteLogin, got {other:?}"),
        }
    }

    #[test]
    fn sasl2_is_offered_only_over_tls_with_bind2_and_fast() {
        let mut n = C2sNegotiator::new(settings(), None);
        let actions = n.handle(good_header());
        assert!(!sent(&actions)[0].has_child("authentication", SASL2));
        let actions = n.handle(element(
            Element::new("authenticate", SASL2).with_attr("mechanism", "SCRAM-SHA-1"),
        ));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("encryption-required")
        );

        let bindings = ChannelBindings {
            tls_exporter: Some(vec![7; 32]),
            tls_server_end_point: Some(vec![9; 32]),
        };
        let mut n = C2sNegotiator::new(settings(), Some(bindings));
        let actions = n.handle(good_header());
        let features = sent(&actions)[0];
        assert!(features.has_child("mechanisms", ns::SASL), "SASL1 stays");
        let auth = features.get_child("authentication", SASL2).unwrap();
        let mechs: Vec<String> = auth
            .children()
            .filter(|c| c.is("mechanism", SASL2))
            .map(Element::text)
            .collect();
        assert_eq!(
            mechs,
            [
                "SCRAM-SHA-256-PLUS",
                "SCRAM-SHA-256",
                "SCRAM-SHA-1-PLUS",
                "SCRAM-SHA-1"
            ]
        );
        let inline = sasl2_child(auth, "inline").unwrap();
        let bind = inline.get_child("bind", NS_BIND2).unwrap();
        let vars: Vec<&str> = bind
            .get_child("inline", NS_BIND2)
            .unwrap()
            .children()
            .filter_map(|f| f.attr("var"))
            .collect();
        assert_eq!(vars, ["urn:xmpp:carbons:2"]);
        let fast: Vec<String> = inline
            .get_child("fast", NS_FAST)
            .unwrap()
            .children()
            .map(Element::text)
            .collect();
        assert_eq!(
            fast,
            ["HT-SHA-256-EXPR", "HT-SHA-256-ENDP", "HT-SHA-256-NONE"]
        );
    }

    #[test]
    fn sasl2_scram_with_bind2_and_token_request() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let mut n = secure_negotiator();
        let actions = sasl2_scram(
            &mut n,
            "correct horse battery",
            &stored,
            vec![
                user_agent("d4565fa7-4d72-4749-b3d3-740edbf87770"),
                Element::new("bind", NS_BIND2)
                    .with_child(Element::new("tag", NS_BIND2).with_text("Snikket"))
                    .with_child(Element::new("enable", "urn:xmpp:carbons:2")),
                Element::new("request-token", NS_FAST).with_attr("mechanism", "HT-SHA-256-NONE"),
            ],
        );
        assert!(
            sent(&actions).is_empty(),
            "nothing before the login is complete: {actions:?}"
        );
        let c = completion(&actions);
        assert_eq!(c.username, "alice");
        assert_eq!(
            c.user_agent.as_ref().unwrap().software.as_deref(),
            Some("Snikket")
        );
        assert_eq!(c.issue_token, Some(HtMechanism::Sha256None));
        assert_eq!(c.used_token, None);
        let bind = c.bind.as_ref().unwrap();
        assert!(bind.resource.starts_with("Snikket."));
        assert_eq!(bind.inline.len(), 1);
        assert!(bind.inline[0].is("enable", "urn:xmpp:carbons:2"));
        assert_eq!(n.authenticated_user(), Some("alice"));

        let jid = FullJid::new(&format!("alice@example.com/{}", bind.resource)).unwrap();
        let token = IssuedToken {
            secret: "tok".into(),
            expiry: "2030-01-01T00:00:00Z".into(),
        };
        let actions = n.handle(Input::LoginCompleted(Ok(LoginResult {
            token: Some(token),
            resumed: None,
            sm_failed: None,
            bound: Some((jid.clone(), Vec::new())),
        })));
        let success = sent(&actions)[0];
        assert!(success.is("success", SASL2));
        let server_final = BASE64
            .decode(sasl2_child(success, "additional-data").unwrap().text())
            .unwrap();
        assert!(server_final.starts_with(b"v="));
        assert_eq!(
            sasl2_child(success, "authorization-identifier")
                .unwrap()
                .text(),
            jid.to_string()
        );
        let t = success.get_child("token", NS_FAST).unwrap();
        assert_eq!(t.attr("token"), Some("tok"));
        assert_eq!(t.attr("expiry"), Some("2030-01-01T00:00:00Z"));
        assert!(success.has_child("bound", NS_BIND2));
        assert_eq!(actions.last(), Some(&Action::Established(jid)));
        assert!(
            !actions.contains(&Action::ResetParser),
            "no stream restart after SASL2"
        );
    }

    #[test]
    fn sasl2_inline_resumption_and_its_failure() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let jid = FullJid::new("alice@example.com/phone").unwrap();
        // Resumed: `<resumed/>` in the success, and the stream carries on the old session.
        let mut n = secure_negotiator();
        sasl2_scram(&mut n, "correct horse battery", &stored, Vec::new());
        let actions = n.handle(Input::LoginCompleted(Ok(LoginResult {
            token: None,
            bound: None,
            resumed: Some(ResumedSession {
                jid: jid.clone(),
                previd: "s1".into(),
                handled: 7,
            }),
            sm_failed: None,
        })));
        let success = sent(&actions)[0];
        let resumed = success.get_child("resumed", sm::NS_SM).unwrap();
        assert_eq!(resumed.attr("previd"), Some("s1"));
        assert_eq!(resumed.attr("h"), Some("7"));
        assert!(!success.has_child("bound", NS_BIND2));
        assert_eq!(actions.last(), Some(&Action::ResumedSession(jid.clone())));
        // Failed: `<failed/>`, then the new session's `<bound/>`.
        let mut n = secure_negotiator();
        sasl2_scram(&mut n, "correct horse battery", &stored, Vec::new());
        let actions = n.handle(Input::LoginCompleted(Ok(LoginResult {
            token: None,
            bound: Some((jid.clone(), Vec::new())),
            resumed: None,
            sm_failed: Some(sm::failed("item-not-found", None)),
        })));
        let success = sent(&actions)[0];
        let names: Vec<&str> = success.children().map(Element::name).collect();
        assert_eq!(names[names.len() - 2..], ["failed", "bound"]);
        assert_eq!(actions.last(), Some(&Action::Established(jid)));
    }

    #[test]
    fn sasl2_without_bind_then_rfc6120_bind() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let mut n = secure_negotiator();
        let actions = sasl2_scram(&mut n, "correct horse battery", &stored, Vec::new());
        let c = completion(&actions);
        assert!(c.bind.is_none() && c.user_agent.is_none() && c.issue_token.is_none());
        let actions = n.handle(Input::LoginCompleted(Ok(LoginResult {
            token: None,
            bound: None,
            resumed: None,
            sm_failed: None,
        })));
        let success = sent(&actions)[0];
        assert_eq!(
            sasl2_child(success, "authorization-identifier")
                .unwrap()
                .text(),
            "alice@example.com"
        );
        let bind = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "b")
            .with_child(Element::new("bind", ns::BIND));
        assert_eq!(
            n.handle(element(bind)),
            [Action::Bind {
                username: "alice".into(),
                resource: None
            }]
        );
    }

    #[test]
    fn sasl2_failures() {
        let stored = Credentials::from_password("correct horse battery").unwrap();
        let mut n = secure_negotiator();
        let actions = sasl2_scram(&mut n, "wrong password!", &stored, Vec::new());
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("not-authorized")
        );

        let mut n = secure_negotiator();
        let actions = n.handle(element(
            Element::new("authenticate", SASL2).with_attr("mechanism", "DIGEST-MD5"),
        ));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("invalid-mechanism")
        );
        let actions = n.handle(element(
            Element::new("authenticate", SASL2)
                .with_attr("mechanism", "SCRAM-SHA-1")
                .with_child(Element::new("initial-response", SASL2).with_text("!!")),
        ));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("incorrect-encoding")
        );
        let actions = n.handle(element(Element::new("authenticate", SASL2)));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("malformed-request")
        );

        // Abort in the middle of an exchange.
        let mut n = secure_negotiator();
        let mut client = scram_client("x");
        let _ = n.handle(element(
            Element::new("authenticate", SASL2)
                .with_attr("mechanism", "SCRAM-SHA-1")
                .with_child(
                    Element::new("initial-response", SASL2)
                        .with_text(BASE64.encode(client.initial())),
                ),
        ));
        n.handle(Input::Credentials(Lookup::Found(stored)));
        let actions = n.handle(element(Element::new("abort", SASL2)));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("aborted")
        );
    }

    fn fast_authenticate(mechanism: &str, token: &str, cb: &[u8], extra: Vec<Element>) -> Input {
        let mut data = b"alice\0".to_vec();
        data.extend_from_slice(&ht::client_proof(token, cb));
        let mut auth = Element::new("authenticate", SASL2)
            .with_attr("mechanism", mechanism)
            .with_child(Element::new("initial-response", SASL2).with_text(BASE64.encode(data)));
        for child in extra {
            auth.append_child(child);
        }
        element(auth)
    }

    fn stored_token(slot: TokenSlot, mechanism: &str, secret: &str, issued_at: i64) -> StoredToken {
        StoredToken {
            slot,
            mechanism: mechanism.into(),
            secret: secret.into(),
            issued_at,
            expires_at: issued_at + FAST_TOKEN_TTL_SECS,
            last_count: None,
        }
    }

    fn tokens_input(account: FastAccount, tokens: Vec<StoredToken>, now: i64) -> Input {
        Input::FastTokens(FastLookup {
            account,
            tokens,
            now,
        })
    }

    #[test]
    fn fast_login_uses_and_rotates_tokens() {
        let mut n = secure_negotiator();
        let actions = n.handle(fast_authenticate(
            "HT-SHA-256-NONE",
            "secret",
            b"",
            vec![
                user_agent("c1"),
                Element::new("fast", NS_FAST).with_attr("count", "4"),
                Element::new("bind", NS_BIND2),
            ],
        ));
        assert_eq!(
            actions,
            [Action::LookupFastTokens {
                username: "alice".into(),
                client_id: "c1".into()
            }]
        );
        let issued = 1_000_000;
        let now = issued + FAST_ROTATE_AFTER_SECS + 1;
        let actions = n.handle(tokens_input(
            FastAccount::Active,
            vec![stored_token(
                TokenSlot::Current,
                "HT-SHA-256-NONE",
                "secret",
                issued,
            )],
            now,
        ));
        let c = completion(&actions);
        assert_eq!(
            c.used_token,
            Some((
                TokenSlot::Current,
                FastOptions {
                    count: Some(4),
                    invalidate: false
                }
            ))
        );
        assert_eq!(
            c.issue_token,
            Some(HtMechanism::Sha256None),
            "old token: rotated"
        );
        let jid = FullJid::new("alice@example.com/x").unwrap();
        let actions = n.handle(Input::LoginCompleted(Ok(LoginResult {
            token: None,
            resumed: None,
            sm_failed: None,
            bound: Some((jid.clone(), Vec::new())),
        })));
        let success = sent(&actions)[0];
        assert_eq!(
            BASE64
                .decode(sasl2_child(success, "additional-data").unwrap().text())
                .unwrap(),
            ht::server_proof("secret", b"")
        );
        assert_eq!(actions.last(), Some(&Action::Established(jid)));
    }

    #[test]
    fn fast_errors() {
        let token = |issued| {
            vec![stored_token(
                TokenSlot::Current,
                "HT-SHA-256-NONE",
                "secret",
                issued,
            )]
        };
        // A wrong (or superseded, or revoked) token.
        let mut n = secure_negotiator();
        n.handle(fast_authenticate(
            "HT-SHA-256-NONE",
            "old-token",
            b"",
            vec![user_agent("c1")],
        ));
        let actions = n.handle(tokens_input(FastAccount::Active, token(0), 10));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("not-authorized")
        );

        // Expired: credentials-expired, and the token is removed.
        n.handle(fast_authenticate(
            "HT-SHA-256-NONE",
            "secret",
            b"",
            vec![user_agent("c1")],
        ));
        let actions = n.handle(tokens_input(
            FastAccount::Active,
            token(0),
            FAST_TOKEN_TTL_SECS,
        ));
        assert_eq!(
            actions[0],
            Action::RemoveFastToken {
                username: "alice".into(),
                client_id: "c1".into(),
                slot: TokenSlot::Current
            }
        );
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("credentials-expired")
        );

        // Replayed count: the stream is closed after the third failure (max_auth_failures is 2 in these tests).
        let mut n = secure_negotiator();
        n.handle(fast_authenticate(
            "HT-SHA-256-NONE",
            "secret",
            b"",
            vec![
                user_agent("c1"),
                Element::new("fast", NS_FAST).with_attr("count", "3"),
            ],
        ));
        let mut replayed = token(0);
        replayed[0].last_count = Some(3);
        let actions = n.handle(tokens_input(FastAccount::Active, replayed, 10));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("not-authorized")
        );

        // Disabled account: told only with a valid token.
        n.handle(fast_authenticate(
            "HT-SHA-256-NONE",
            "secret",
            b"",
            vec![user_agent("c1")],
        ));
        let actions = n.handle(tokens_input(
            FastAccount::Disabled(Some("Account deleted".into())),
            token(0),
            10,
        ));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("account-disabled")
        );
        assert_eq!(
            closed_with(&actions),
            Some(StreamCondition::PolicyViolation)
        );

        // No client id: FAST is refused at once.
        let mut n = secure_negotiator();
        let actions = n.handle(fast_authenticate(
            "HT-SHA-256-NONE",
            "secret",
            b"",
            Vec::new(),
        ));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("malformed-request")
        );
        // A malformed initial response.
        let actions = n.handle(element(
            Element::new("authenticate", SASL2)
                .with_attr("mechanism", "HT-SHA-256-NONE")
                .with_child(user_agent("c1"))
                .with_child(
                    Element::new("initial-response", SASL2).with_text(BASE64.encode("alice")),
                ),
        ));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("malformed-request")
        );
    }

    #[test]
    fn fast_channel_binding() {
        // secure_negotiator's exporter is [7; 32].
        let mut n = secure_negotiator();
        n.handle(fast_authenticate(
            "HT-SHA-256-EXPR",
            "secret",
            &[7; 32],
            vec![user_agent("c1")],
        ));
        let good = vec![stored_token(TokenSlot::New, "HT-SHA-256-EXPR", "secret", 0)];
        let actions = n.handle(tokens_input(FastAccount::Active, good.clone(), 10));
        let c = completion(&actions);
        assert_eq!(c.used_token.map(|(slot, _)| slot), Some(TokenSlot::New));
        assert_eq!(c.issue_token, None, "young token: no rotation");

        // Bound to another connection's exporter.
        let mut n = secure_negotiator();
        n.handle(fast_authenticate(
            "HT-SHA-256-EXPR",
            "secret",
            &[8; 32],
            vec![user_agent("c1")],
        ));
        let actions = n.handle(tokens_input(FastAccount::Active, good, 10));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("not-authorized")
        );

        // Without exporter data, -EXPR is not offered and not accepted.
        let bindings = ChannelBindings {
            tls_exporter: None,
            tls_server_end_point: Some(vec![9; 32]),
        };
        let mut n = C2sNegotiator::new(settings(), Some(bindings));
        n.handle(good_header());
        let actions = n.handle(fast_authenticate(
            "HT-SHA-256-EXPR",
            "secret",
            &[],
            vec![user_agent("c1")],
        ));
        assert_eq!(
            failure_condition(sent(&actions)[0]).as_deref(),
            Some("invalid-mechanism")
        );
    }

    #[test]
    fn sasl1_then_sasl2_namespaces_do_not_mix() {
        // A SASL1 exchange answers in SASL1's namespace, even after a SASL2 failure.
        let mut n = secure_negotiator();
        n.handle(element(
            Element::new("authenticate", SASL2).with_attr("mechanism", "X"),
        ));
        let actions = n.handle(element(
            Element::new("auth", ns::SASL).with_attr("mechanism", "X"),
        ));
        assert!(sent(&actions)[0].is("failure", ns::SASL));
    }
}
