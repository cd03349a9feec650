//! An account file written by Prosody 0.12 (see tests/fixtures/prosody/README.md) logs in here.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{expect_failure, expect_need_credentials, server_first_for};
use rookery_sasl::{
    ChannelBindings, Condition, Credentials, HashAlgo, Lookup, Mechanism, ScramKeys,
    ServerExchange, Step,
};
use sasl::client::Mechanism as _;
use sasl::client::mechanisms::Scram;
use sasl::common::ChannelBinding;
use sasl::common::scram::Sha1;

const FIXTURE: &str = "tests/fixtures/prosody/alice.dat";
const PASSWORD: &str = "correct horse battery";

/// The `["key"] = value;` lines of a Prosody `internal` store file (a Lua table constructor),
/// with string values unquoted. Only the flat tables account files hold are understood.
fn parse_prosody_dat(text: &str) -> HashMap<String, String> {
    let body = text
        .trim()
        .strip_prefix("return {")
        .and_then(|rest| rest.strip_suffix("};"))
        .expect("a `return { ... };` table");
    body.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (key, value) = line
                .strip_prefix("[\"")
                .and_then(|rest| rest.split_once("\"] = "))
                .expect("a [\"key\"] = value; line");
            let value = value.strip_suffix(';').expect("a trailing ;");
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn alice() -> Credentials {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let fields = parse_prosody_dat(&std::fs::read_to_string(path).unwrap());
    let keys = ScramKeys::from_prosody(
        HashAlgo::Sha1,
        &fields["salt"],
        fields["iteration_count"].parse().unwrap(),
        &fields["stored_key"],
        &fields["server_key"],
    )
    .unwrap();
    Credentials {
        sha1: Some(keys),
        sha256: None,
    }
}

#[test]
fn fixture_has_prosody_shape() {
    let keys = alice().sha1.unwrap();
    assert_eq!(keys.iterations, Credentials::DEFAULT_ITERATIONS);
    let salt = String::from_utf8(keys.salt).unwrap();
    assert_eq!(salt.len(), 36, "a UUID string: {salt}");
    assert_eq!(keys.stored_key.len(), 20);
    assert_eq!(keys.server_key.len(), 20);
}

#[test]
fn verify_password_on_prosody_keys() {
    let credentials = alice();
    assert!(credentials.verify_password(PASSWORD));
    assert!(!credentials.verify_password("correct horse battery staple"));
    assert!(!credentials.verify_password("Correct horse battery"));
    let keys = credentials.sha1.as_ref().unwrap();
    assert!(keys.verify_password(HashAlgo::Sha1, PASSWORD));
    // Re-deriving with Prosody's salt and count reproduces its keys exactly.
    let derived = ScramKeys::derive(HashAlgo::Sha1, PASSWORD, &keys.salt, keys.iterations).unwrap();
    assert_eq!(&derived, keys);
}

fn login(password: &str) -> Step {
    let mut client = Scram::<Sha1>::new("alice", password, ChannelBinding::None).unwrap();
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    let server_first = server_first_for(&mut exchange, &client.initial(), Lookup::Found(alice()));
    let step = exchange.step(Some(&client.response(&server_first).unwrap()));
    if let Step::Success {
        additional_data: Some(server_final),
        ..
    } = &step
    {
        client.success(server_final).unwrap();
    }
    step
}

#[test]
fn scram_sha1_login_with_prosody_credentials() {
    match login(PASSWORD) {
        Step::Success {
            username,
            authzid: None,
            additional_data: Some(_),
        } => assert_eq!(username, "alice"),
        other => panic!("expected success, got {other:?}"),
    }
}

#[test]
fn scram_sha1_login_with_wrong_password() {
    assert_eq!(
        expect_failure(login("wrong horse battery")).condition,
        Condition::NotAuthorized
    );
}

#[test]
fn plain_login_with_prosody_credentials() {
    let mut exchange = ServerExchange::new(Mechanism::Plain, ChannelBindings::default());
    expect_need_credentials(exchange.step(Some(format!("\0alice\0{PASSWORD}").as_bytes())));
    assert!(matches!(
        exchange.provide(Lookup::Found(alice())),
        Step::Success { .. }
    ));
}

#[test]
fn from_prosody_rejects_bad_records() {
    use rookery_sasl::SaslError;
    let good = "0c3cf21c8274a9037a348313749645f40b761807";
    assert_eq!(
        ScramKeys::from_prosody(HashAlgo::Sha1, "salt", 10_000, "zz", good),
        Err(SaslError::InvalidHex {
            field: "stored_key"
        })
    );
    assert_eq!(
        ScramKeys::from_prosody(HashAlgo::Sha256, "salt", 10_000, good, good),
        Err(SaslError::KeyLength {
            field: "stored_key",
            algo: HashAlgo::Sha256,
            expected: 32,
            actual: 20
        })
    );
    assert_eq!(
        ScramKeys::from_prosody(HashAlgo::Sha1, "salt", 0, good, good),
        Err(SaslError::ZeroIterations)
    );
    assert_eq!(
        ScramKeys::from_prosody(HashAlgo::Sha1, "", 10_000, good, good),
        Err(SaslError::EmptySalt)
    );
}
