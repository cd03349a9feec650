//! The server-side exchange state machine for every mechanism.

use std::fmt;
use std::mem;

use subtle::ConstantTimeEq;

use crate::channel_binding::{ChannelBindingType, ChannelBindings};
use crate::credentials::{decoy_keys, prepare_password};
use crate::scram::{self, CbindFlag};
use crate::{Condition, Credentials, Failure, HashAlgo, Mechanism, ScramKeys, Step};

/// Client messages longer than this are refused. Real ones are a few hundred bytes; the XMPP layer
/// bounds stanzas too, but this keeps the work per message small whatever calls us.
pub const MAX_CLIENT_MESSAGE_LEN: usize = 8 * 1024;

/// The result of looking an account up, fed back into the exchange with
/// [`ServerExchange::provide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Credentials),
    NotFound,
    /// The account exists but may not log in. The exchange runs with its real credentials exactly as
    /// for [`Lookup::Found`] and answers `account-disabled` (with `text`, if any: "Account deleted",
    /// say) only where it would have succeeded: only someone who knows the password learns that the
    /// account is disabled, and why.
    Disabled {
        credentials: Credentials,
        text: Option<String>,
    },
}

impl Lookup {
    /// The stored credentials (none for an unknown account), and what a valid proof gets instead of
    /// success when the account is disabled.
    fn into_parts(self) -> (Option<Credentials>, Option<Failure>) {
        match self {
            Self::Found(credentials) => (Some(credentials), None),
            Self::NotFound => (None, None),
            Self::Disabled { credentials, text } => {
                let failure = match text {
                    Some(text) => Failure::with_text(Condition::AccountDisabled, text),
                    None => Failure::new(Condition::AccountDisabled),
                };
                (Some(credentials), Some(failure))
            }
        }
    }
}

/// One server-side SASL exchange (sans-IO: no I/O, no clock).
///
/// Call [`step`](Self::step) with the client's initial response, answer
/// [`Step::NeedCredentials`] with [`provide`](Self::provide), send each [`Step::Challenge`]
/// and feed the client's response back with `step`, until [`Step::Success`] or
/// [`Step::Failure`]. After either, every further call fails.
///
/// A SCRAM-SHA-256 exchange for an account that has only SHA-1 keys (as accounts imported from
/// Prosody do) runs to the end with decoy keys and fails with `not-authorized`, exactly like an
/// unknown account, because revealing "this account exists but lacks SHA-256 keys" would reveal
/// that it exists. Mechanisms are offered before the account is known and clients do not fall
/// back to a weaker one, so a server holding such accounts must not offer SCRAM-SHA-256(-PLUS).
pub struct ServerExchange {
    mechanism: Mechanism,
    bindings: ChannelBindings,
    verified_identities: Vec<String>,
    fixed_server_nonce: Option<String>,
    state: State,
}

enum State {
    /// Nothing received yet.
    Start,
    /// The client sent no initial response; we sent an empty challenge and wait for it.
    AwaitingInitialResponse,
    ScramAwaitingCredentials(Box<ScramFirst>),
    ScramAwaitingFinal(Box<ScramChallenged>),
    PlainAwaitingCredentials(PlainAttempt),
    Finished,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::AwaitingInitialResponse => "awaiting initial response",
            Self::ScramAwaitingCredentials(_) | Self::PlainAwaitingCredentials(_) => {
                "awaiting credentials"
            }
            Self::ScramAwaitingFinal(_) => "awaiting client-final-message",
            Self::Finished => "finished",
        }
    }
}

/// What a SCRAM exchange keeps between the client-first-message and the credential lookup.
struct ScramFirst {
    algo: HashAlgo,
    username: String,
    authzid: Option<String>,
    client_nonce: String,
    client_first_bare: String,
    /// What `c=` must decode to: the gs2 header followed by the channel-binding data.
    expected_channel_binding: Vec<u8>,
}

/// What a SCRAM exchange keeps between the server-first-message and the client-final-message.
struct ScramChallenged {
    algo: HashAlgo,
    username: String,
    authzid: Option<String>,
    nonce: String,
    expected_channel_binding: Vec<u8>,
    /// client-first-message-bare "," server-first-message ",": the AuthMessage up to the
    /// client-final-message-without-proof.
    auth_message_prefix: String,
    keys: ScramKeys,
    /// False when `keys` are decoys: the exchange then fails whatever the proof.
    genuine: bool,
    /// For a disabled account, what a valid proof gets instead of success.
    disabled: Option<Failure>,
}

struct PlainAttempt {
    username: String,
    authzid: Option<String>,
    prepared_password: String,
}

impl ServerExchange {
    /// An exchange for `mechanism` over a connection with these channel bindings (empty when not
    /// over TLS). A -PLUS mechanism fails unless the client binds to a type with data here.
    /// `Mechanism::External` here has no verified identity and always fails; use
    /// [`new_external`](Self::new_external).
    pub fn new(mechanism: Mechanism, bindings: ChannelBindings) -> Self {
        Self {
            mechanism,
            bindings,
            verified_identities: Vec::new(),
            fixed_server_nonce: None,
            state: State::Start,
        }
    }

    /// EXTERNAL (for federation later): the identities the TLS layer verified for the peer. It
    /// succeeds when the client's authzid is one of them (ASCII case-insensitively, as domain names
    /// compare), or when the authzid is empty and there is exactly one.
    pub fn new_external(verified_identities: Vec<String>) -> Self {
        Self {
            verified_identities,
            ..Self::new(Mechanism::External, ChannelBindings::default())
        }
    }

    /// Use this server nonce part instead of a random one, to reproduce published test vectors.
    /// It must be `printable` (RFC 5802: ASCII 0x21-0x7E except `,`). Never use it outside tests.
    #[doc(hidden)]
    pub fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.fixed_server_nonce = Some(nonce.to_owned());
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether the exchange has ended (with success, failure or abort).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Feed the client's data: the initial response (None when the client sent none; `Some(b"")`
    /// for an empty one), then each response to a challenge. After the first call, `None` is taken
    /// as an empty response.
    pub fn step(&mut self, input: Option<&[u8]>) -> Step {
        // Every path that does not store a new state leaves the exchange finished.
        match mem::replace(&mut self.state, State::Finished) {
            State::Start => match input {
                None => {
                    self.state = State::AwaitingInitialResponse;
                    Step::Challenge(Vec::new())
                }
                Some(data) => self.first_message(data),
            },
            State::AwaitingInitialResponse => self.first_message(input.unwrap_or_default()),
            State::ScramAwaitingFinal(challenged) => {
                scram_final(*challenged, input.unwrap_or_default())
            }
            State::ScramAwaitingCredentials(_) | State::PlainAwaitingCredentials(_) => {
                out_of_order("step() called while waiting for provide()")
            }
            State::Finished => out_of_order("the exchange has finished"),
        }
    }

    /// Answer a [`Step::NeedCredentials`].
    pub fn provide(&mut self, lookup: Lookup) -> Step {
        match mem::replace(&mut self.state, State::Finished) {
            State::ScramAwaitingCredentials(first) => self.scram_server_first(*first, lookup),
            State::PlainAwaitingCredentials(attempt) => plain_verify(attempt, lookup),
            _ => out_of_order("provide() called without NeedCredentials"),
        }
    }

    /// The client aborted (`<abort/>`): end the exchange with `aborted`.
    pub fn abort(&mut self) -> Step {
        self.state = State::Finished;
        Failure::new(Condition::Aborted).into()
    }

    fn first_message(&mut self, data: &[u8]) -> Step {
        if data.len() > MAX_CLIENT_MESSAGE_LEN {
            return Failure::with_text(Condition::MalformedRequest, "message too long").into();
        }
        match self.mechanism.hash_algo() {
            Some(algo) => self.scram_first(algo, data),
            None if self.mechanism == Mechanism::Plain => self.plain_first(data),
            None => self.external(data),
        }
    }

    fn scram_first(&mut self, algo: HashAlgo, data: &[u8]) -> Step {
        match self.parse_scram_first(algo, data) {
            Ok(first) => {
                let username = first.username.clone();
                self.state = State::ScramAwaitingCredentials(Box::new(first));
                Step::NeedCredentials { username }
            }
            Err(failure) => failure.into(),
        }
    }

    fn parse_scram_first(&self, algo: HashAlgo, data: &[u8]) -> Result<ScramFirst, Failure> {
        let message = utf8(data)?;
        let first = scram::parse_client_first(message)?;
        let binding_data = self.channel_binding_data(first.cbind)?;
        let username = saslprep_name(&first.username)?;
        let mut expected_channel_binding = first.gs2_header.as_bytes().to_vec();
        expected_channel_binding.extend_from_slice(binding_data);
        Ok(ScramFirst {
            algo,
            username,
            authzid: first.authzid,
            client_nonce: first.nonce.to_owned(),
            client_first_bare: first.bare.to_owned(),
            expected_channel_binding,
        })
    }

    /// The gs2 channel-binding rules (RFC 5802 §6): the channel-binding data `c=` must carry after
    /// the gs2 header, or why the flag is unacceptable.
    fn channel_binding_data(&self, flag: CbindFlag<'_>) -> Result<&[u8], Failure> {
        match (self.mechanism.is_plus(), flag) {
            (false, CbindFlag::Binding(_)) => Err(Failure::with_text(
                Condition::MalformedRequest,
                "channel binding requires a -PLUS mechanism",
            )),
            // The client supports channel binding and thinks we do not, but we offered -PLUS
            // (bindings are present): someone removed it from the offer.
            (false, CbindFlag::ServerUnsupported) if !self.bindings.is_empty() => {
                Err(Failure::with_text(
                    Condition::NotAuthorized,
                    "channel binding downgrade detected",
                ))
            }
            (false, CbindFlag::ServerUnsupported | CbindFlag::ClientUnsupported) => Ok(&[]),
            (true, CbindFlag::ServerUnsupported | CbindFlag::ClientUnsupported) => {
                Err(Failure::with_text(
                    Condition::MalformedRequest,
                    "a -PLUS mechanism requires channel binding",
                ))
            }
            (true, CbindFlag::Binding(name)) => ChannelBindingType::from_name(name)
                .and_then(|kind| self.bindings.data(kind))
                .ok_or(Failure::with_text(
                    Condition::MalformedRequest,
                    "unsupported channel-binding type",
                )),
        }
    }

    fn scram_server_first(&mut self, first: ScramFirst, lookup: Lookup) -> Step {
        let (credentials, disabled) = lookup.into_parts();
        let stored = credentials.and_then(|c| c.for_algo(first.algo).cloned());
        let genuine = stored.is_some();
        let keys = stored.unwrap_or_else(|| decoy_keys(first.algo, &first.username));
        let server_nonce = self
            .fixed_server_nonce
            .clone()
            .unwrap_or_else(scram::generate_server_nonce);
        let nonce = format!("{}{server_nonce}", first.client_nonce);
        let server_first = scram::server_first(&nonce, &keys);
        let auth_message_prefix = format!("{},{server_first},", first.client_first_bare);
        self.state = State::ScramAwaitingFinal(Box::new(ScramChallenged {
            algo: first.algo,
            username: first.username,
            authzid: first.authzid,
            nonce,
            expected_channel_binding: first.expected_channel_binding,
            auth_message_prefix,
            keys,
            genuine,
            disabled,
        }));
        Step::Challenge(server_first.into_bytes())
    }

    fn plain_first(&mut self, data: &[u8]) -> Step {
        match parse_plain(data) {
            Ok(attempt) => {
                let username = attempt.username.clone();
                self.state = State::PlainAwaitingCredentials(attempt);
                Step::NeedCredentials { username }
            }
            Err(failure) => failure.into(),
        }
    }

    fn external(&self, data: &[u8]) -> Step {
        let authzid = match utf8(data) {
            Ok(authzid) => authzid,
            Err(failure) => return failure.into(),
        };
        if self.verified_identities.is_empty() {
            return Failure::with_text(Condition::NotAuthorized, "no verified identity").into();
        }
        if authzid.is_empty() {
            return match self.verified_identities.as_slice() {
                [only] => success(only.clone(), None, None),
                _ => Failure::with_text(
                    Condition::NotAuthorized,
                    "several identities verified: an authzid is required",
                )
                .into(),
            };
        }
        match self
            .verified_identities
            .iter()
            .find(|identity| identity.eq_ignore_ascii_case(authzid))
        {
            Some(identity) => success(identity.clone(), Some(authzid.to_owned()), None),
            None => Failure::new(Condition::InvalidAuthzid).into(),
        }
    }
}

fn scram_final(challenged: ScramChallenged, data: &[u8]) -> Step {
    if data.len() > MAX_CLIENT_MESSAGE_LEN {
        return Failure::with_text(Condition::MalformedRequest, "message too long").into();
    }
    let message = match utf8(data) {
        Ok(message) => message,
        Err(failure) => return failure.into(),
    };
    let last = match scram::parse_client_final(message) {
        Ok(last) => last,
        Err(failure) => return failure.into(),
    };
    if !bool::from(last.nonce.as_bytes().ct_eq(challenged.nonce.as_bytes())) {
        return Failure::with_text(Condition::MalformedRequest, "nonce mismatch").into();
    }
    if last.proof.len() != challenged.algo.output_len() {
        return Failure::with_text(Condition::MalformedRequest, "proof has the wrong length")
            .into();
    }
    // Independent of the account, so failing here early reveals nothing about it.
    if !bool::from(
        last.channel_binding
            .ct_eq(&challenged.expected_channel_binding),
    ) {
        return Failure::with_text(Condition::NotAuthorized, "channel binding mismatch").into();
    }
    let mut auth_message = challenged.auth_message_prefix.into_bytes();
    auth_message.extend_from_slice(last.without_proof.as_bytes());
    // The proof is checked against decoy keys too, so that both paths do the same work.
    let proof_ok = scram::proof_matches(
        challenged.algo,
        &challenged.keys,
        &auth_message,
        &last.proof,
    );
    if bool::from(proof_ok & subtle::Choice::from(u8::from(challenged.genuine))) {
        if let Some(failure) = challenged.disabled {
            return failure.into();
        }
        let server_final = scram::server_final(challenged.algo, &challenged.keys, &auth_message);
        success(challenged.username, challenged.authzid, Some(server_final))
    } else {
        Failure::new(Condition::NotAuthorized).into()
    }
}

/// PLAIN's message (RFC 4616): `[authzid] NUL authcid NUL passwd`.
fn parse_plain(data: &[u8]) -> Result<PlainAttempt, Failure> {
    if data.len() > MAX_CLIENT_MESSAGE_LEN {
        return Err(Failure::with_text(
            Condition::MalformedRequest,
            "message too long",
        ));
    }
    let message = utf8(data)?;
    let mut fields = message.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Failure::with_text(
            Condition::MalformedRequest,
            "expected authzid NUL authcid NUL password",
        ));
    };
    let username = saslprep_name(authcid)?;
    let prepared_password = prepare_password(password)
        .map_err(|_| Failure::with_text(Condition::MalformedRequest, "invalid password"))?
        .into_owned();
    Ok(PlainAttempt {
        username,
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        prepared_password,
    })
}

fn plain_verify(attempt: PlainAttempt, lookup: Lookup) -> Step {
    let password = attempt.prepared_password.as_bytes();
    let (credentials, disabled) = lookup.into_parts();
    let verified = match credentials {
        Some(credentials) if credentials.sha1.is_some() || credentials.sha256.is_some() => {
            credentials.verify_prepared_password(password)
        }
        // Spend the same PBKDF2 work as for a real account, so timing does not reveal existence.
        _ => {
            let decoy = decoy_keys(HashAlgo::Sha256, &attempt.username);
            let _ = decoy.verify_prepared_password(HashAlgo::Sha256, password);
            false
        }
    };
    match (verified, disabled) {
        (true, None) => success(attempt.username, attempt.authzid, None),
        (true, Some(failure)) => failure.into(),
        (false, _) => Failure::new(Condition::NotAuthorized).into(),
    }
}

fn success(username: String, authzid: Option<String>, additional_data: Option<Vec<u8>>) -> Step {
    Step::Success {
        username,
        authzid,
        additional_data,
    }
}

fn utf8(data: &[u8]) -> Result<&str, Failure> {
    std::str::from_utf8(data)
        .map_err(|_| Failure::with_text(Condition::MalformedRequest, "not UTF-8"))
}

/// SASLprep a username (RFC 4013), refusing one that is empty afterwards.
fn saslprep_name(name: &str) -> Result<String, Failure> {
    match stringprep::saslprep(name) {
        Ok(prepared) if !prepared.is_empty() => Ok(prepared.into_owned()),
        _ => Err(Failure::with_text(
            Condition::MalformedRequest,
            "invalid username",
        )),
    }
}

/// The caller used the exchange out of order: a server bug, not the client's fault.
fn out_of_order(text: &'static str) -> Step {
    Failure::with_text(Condition::TemporaryAuthFailure, text).into()
}

// Hand-written so that secrets in the state (keys, a PLAIN password) never reach a log.
impl fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerExchange")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}
