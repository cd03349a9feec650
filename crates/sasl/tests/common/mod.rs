//! Helpers shared by the integration tests.

// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rookery_sasl::{ChannelBindings, Credentials, Failure, HashAlgo, Lookup, ServerExchange, Step};
use sasl::common::Password;
use sasl::common::scram::{ScramProvider, Sha1, Sha256};

pub(crate) const USER: &str = "user";
pub(crate) const PASSWORD: &str = "pencil";
/// Low, to keep debug-build tests fast; the RFC vectors and the Prosody fixture use real counts.
pub(crate) const TEST_ITERATIONS: u32 = 64;

pub(crate) const EXPORTER_DATA: &[u8] = b"exporter-data-32-bytes-long-....";
pub(crate) const END_POINT_DATA: &[u8] = b"certificate-hash-of-the-server..";

/// Credentials for [`PASSWORD`] with both hashes, derived once per test binary.
pub(crate) fn credentials() -> Credentials {
    static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();
    CREDENTIALS
        .get_or_init(|| {
            Credentials::from_password_with_iterations(PASSWORD, TEST_ITERATIONS).unwrap()
        })
        .clone()
}

pub(crate) fn both_bindings() -> ChannelBindings {
    ChannelBindings {
        tls_exporter: Some(EXPORTER_DATA.to_vec()),
        tls_server_end_point: Some(END_POINT_DATA.to_vec()),
    }
}

pub(crate) fn expect_need_credentials(step: Step) -> String {
    match step {
        Step::NeedCredentials { username } => username,
        other => panic!("expected NeedCredentials, got {other:?}"),
    }
}

pub(crate) fn expect_challenge(step: Step) -> Vec<u8> {
    match step {
        Step::Challenge(data) => data,
        other => panic!("expected Challenge, got {other:?}"),
    }
}

pub(crate) fn expect_failure(step: Step) -> Failure {
    match step {
        Step::Failure(failure) => failure,
        other => panic!("expected Failure, got {other:?}"),
    }
}

/// Feed the client-first-message, answer the lookup, and return the server-first-message.
pub(crate) fn server_first_for(
    exchange: &mut ServerExchange,
    client_first: &[u8],
    lookup: Lookup,
) -> Vec<u8> {
    expect_need_credentials(exchange.step(Some(client_first)));
    expect_challenge(exchange.provide(lookup))
}

/// The fields of a server-first-message.
pub(crate) struct ServerFirst {
    pub(crate) nonce: String,
    pub(crate) salt: Vec<u8>,
    pub(crate) iterations: u32,
}

pub(crate) fn parse_server_first(message: &[u8]) -> ServerFirst {
    let text = std::str::from_utf8(message).unwrap();
    let fields: Vec<&str> = text.split(',').collect();
    assert_eq!(fields.len(), 3, "{text}");
    ServerFirst {
        nonce: fields[0].strip_prefix("r=").unwrap().to_owned(),
        salt: BASE64
            .decode(fields[1].strip_prefix("s=").unwrap())
            .unwrap(),
        iterations: fields[2].strip_prefix("i=").unwrap().parse().unwrap(),
    }
}

/// A SCRAM client assembled by hand from the `sasl` crate's primitives (which use their own hmac,
/// sha and pbkdf2 versions), for what that crate's client cannot send: `tls-server-end-point`, an
/// authzid, escaped names, extensions, and tampered messages.
pub(crate) struct HandClient {
    algo: HashAlgo,
    password: String,
    pub(crate) gs2_header: String,
    cb_data: Vec<u8>,
    pub(crate) client_nonce: String,
    pub(crate) client_first_bare: String,
}

impl HandClient {
    /// `username` is sent as is, so it must already be escaped.
    pub(crate) fn new(
        algo: HashAlgo,
        username: &str,
        password: &str,
        gs2_header: &str,
        cb_data: &[u8],
    ) -> Self {
        let client_nonce = "hand+made/client-nonce~!".to_owned();
        Self {
            algo,
            password: password.to_owned(),
            gs2_header: gs2_header.to_owned(),
            cb_data: cb_data.to_vec(),
            client_first_bare: format!("n={username},r={client_nonce}"),
            client_nonce,
        }
    }

    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
    }

    /// What `c=` carries: base64(gs2 header + channel-binding data).
    pub(crate) fn channel_binding(&self) -> String {
        let mut input = self.gs2_header.clone().into_bytes();
        input.extend_from_slice(&self.cb_data);
        BASE64.encode(input)
    }

    /// client-final-message-without-proof as a well-behaved client sends it.
    pub(crate) fn without_proof(&self, server_first: &[u8]) -> String {
        format!(
            "c={},r={}",
            self.channel_binding(),
            parse_server_first(server_first).nonce
        )
    }

    pub(crate) fn client_final(&self, server_first: &[u8]) -> Vec<u8> {
        self.sign(server_first, &self.without_proof(server_first))
    }

    /// `without_proof` followed by a proof that is valid for it.
    pub(crate) fn sign(&self, server_first: &[u8], without_proof: &str) -> Vec<u8> {
        let proof = self.proof(server_first, without_proof);
        format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes()
    }

    pub(crate) fn proof(&self, server_first: &[u8], without_proof: &str) -> Vec<u8> {
        let salted = self.salted_password(server_first);
        let client_key = self.hmac(b"Client Key", &salted);
        let stored_key = self.hash(&client_key);
        let signature = self.hmac(&self.auth_message(server_first, without_proof), &stored_key);
        client_key
            .iter()
            .zip(&signature)
            .map(|(key, sig)| key ^ sig)
            .collect()
    }

    /// The server-final-message the server must send for this exchange.
    pub(crate) fn expected_server_final(
        &self,
        server_first: &[u8],
        without_proof: &str,
    ) -> Vec<u8> {
        let salted = self.salted_password(server_first);
        let server_key = self.hmac(b"Server Key", &salted);
        let signature = self.hmac(&self.auth_message(server_first, without_proof), &server_key);
        format!("v={}", BASE64.encode(signature)).into_bytes()
    }

    fn auth_message(&self, server_first: &[u8], without_proof: &str) -> Vec<u8> {
        let mut message = format!("{},", self.client_first_bare).into_bytes();
        message.extend_from_slice(server_first);
        message.push(b',');
        message.extend_from_slice(without_proof.as_bytes());
        message
    }

    fn salted_password(&self, server_first: &[u8]) -> Vec<u8> {
        let first = parse_server_first(server_first);
        let password = Password::Plain(self.password.clone());
        match self.algo {
            HashAlgo::Sha1 => Sha1::derive(&password, &first.salt, first.iterations).unwrap(),
            HashAlgo::Sha256 => Sha256::derive(&password, &first.salt, first.iterations).unwrap(),
        }
    }

    fn hmac(&self, data: &[u8], key: &[u8]) -> Vec<u8> {
        match self.algo {
            HashAlgo::Sha1 => Sha1::hmac(data, key).unwrap(),
            HashAlgo::Sha256 => Sha256::hmac(data, key).unwrap(),
        }
    }

    fn hash(&self, data: &[u8]) -> Vec<u8> {
        match self.algo {
            HashAlgo::Sha1 => Sha1::hash(data),
            HashAlgo::Sha256 => Sha256::hash(data),
        }
    }
}
