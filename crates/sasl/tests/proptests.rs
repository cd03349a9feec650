//! Property tests: hostile input never panics and never authenticates; credentials round-trip.

mod common;

use common::{EXPORTER_DATA, HandClient, both_bindings, credentials, server_first_for};
use proptest::prelude::*;
use rookery_sasl::{Credentials, HashAlgo, Lookup, Mechanism, ServerExchange, Step};

fn any_mechanism() -> impl Strategy<Value = Mechanism> {
    proptest::sample::select(Mechanism::ALL.to_vec())
}

fn any_lookup() -> impl Strategy<Value = Lookup> {
    prop_oneof![
        Just(Lookup::Found(credentials())),
        Just(Lookup::NotFound),
        Just(Lookup::Disabled {
            credentials: credentials(),
            text: None,
        }),
    ]
}

fn exchange_for(mechanism: Mechanism) -> ServerExchange {
    match mechanism {
        // Two identities, so that not even an empty response can succeed.
        Mechanism::External => {
            ServerExchange::new_external(vec!["a.example".into(), "b.example".into()])
        }
        _ => ServerExchange::new(mechanism, both_bindings()),
    }
}

/// Drive an exchange as a server would: each message in turn, answering every lookup.
fn drive(exchange: &mut ServerExchange, messages: &[Option<Vec<u8>>], lookup: &Lookup) -> Step {
    let mut step = Step::Challenge(Vec::new());
    for message in messages {
        step = exchange.step(message.as_deref());
        if let Step::NeedCredentials { .. } = step {
            step = exchange.provide(lookup.clone());
        }
        if matches!(step, Step::Success { .. } | Step::Failure(_)) {
            break;
        }
    }
    step
}

/// Bytes that look a little like SCRAM or PLAIN, so that parsing gets past the first checks.
fn sasl_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[nyp=,amrcsiv\\x00a-z0-9+/=-]{0,48}".prop_map(String::into_bytes),
        concat!(
            "(n|y|p=tls-exporter|p=tls-server-end-point),(a=[a-z=0-9]{0,4})?,",
            "n=[a-z=0-9]{0,6},r=[!-~]{0,8}(,[a-z]=[a-z,=]{0,4})?"
        )
        .prop_map(String::into_bytes),
        "c=[A-Za-z0-9+/=]{0,12},r=[!-~]{0,12}(,[a-z]=[a-z]{0,3})?,p=[A-Za-z0-9+/=]{0,44}"
            .prop_map(String::into_bytes),
    ]
}

/// A change that always alters the message: flip bits of one byte, insert a byte, or delete one.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { index: usize, mask: u8 },
    Insert { index: usize, byte: u8 },
    Delete { index: usize },
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(index, mask)| Mutation::Flip { index, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(index, byte)| Mutation::Insert { index, byte }),
        any::<usize>().prop_map(|index| Mutation::Delete { index }),
    ]
}

fn mutate(message: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut out = message.to_vec();
    match *mutation {
        Mutation::Flip { index, mask } => out[index % message.len()] ^= mask,
        Mutation::Insert { index, byte } => out.insert(index % (message.len() + 1), byte),
        Mutation::Delete { index } => {
            out.remove(index % message.len());
        }
    }
    out
}

fn scram_client(mechanism: Mechanism, username: &str, password: &str) -> HandClient {
    let algo = mechanism.hash_algo().unwrap();
    if mechanism.is_plus() {
        HandClient::new(algo, username, password, "p=tls-exporter,,", EXPORTER_DATA)
    } else {
        HandClient::new(algo, username, password, "n,,", b"")
    }
}

fn escape_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

const SCRAM: [Mechanism; 4] = [
    Mechanism::ScramSha1,
    Mechanism::ScramSha1Plus,
    Mechanism::ScramSha256,
    Mechanism::ScramSha256Plus,
];

proptest! {
    #[test]
    fn random_messages_never_authenticate(
        mechanism in any_mechanism(),
        first_is_none in any::<bool>(),
        messages in proptest::collection::vec(sasl_ish_bytes(), 1..4),
        lookup in any_lookup(),
    ) {
        let mut exchange = exchange_for(mechanism);
        let mut inputs: Vec<Option<Vec<u8>>> = messages.into_iter().map(Some).collect();
        if first_is_none {
            inputs.insert(0, None);
        }
        let step = drive(&mut exchange, &inputs, &lookup);
        prop_assert!(
            matches!(step, Step::Failure(_) | Step::Challenge(_)),
            "{mechanism}: {step:?}"
        );
        // Whatever happened, further calls are answered, never panic.
        let _ = exchange.step(Some(b"more"));
        let _ = exchange.provide(Lookup::NotFound);
    }

    #[test]
    fn mutated_client_messages_always_fail(
        mechanism in proptest::sample::select(SCRAM.to_vec()),
        mutate_first in any::<bool>(),
        mutation in any_mutation(),
    ) {
        let client = scram_client(mechanism, "user", common::PASSWORD);
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let original_first = client.client_first();
        let first = if mutate_first { mutate(&original_first, &mutation) } else { original_first };
        let mut step = exchange.step(Some(&first));
        if let Step::NeedCredentials { .. } = step {
            step = exchange.provide(Lookup::Found(credentials()));
        }
        if let Step::Challenge(server_first) = &step {
            let client_final = client.client_final(server_first);
            let client_final =
                if mutate_first { client_final } else { mutate(&client_final, &mutation) };
            step = exchange.step(Some(&client_final));
        }
        prop_assert!(matches!(step, Step::Failure(_)), "{mechanism}: {step:?}");
    }

    #[test]
    fn scram_round_trip_with_any_name_and_password(
        mechanism in proptest::sample::select(SCRAM.to_vec()),
        username in "[a-zA-Z0-9,=@.\u{e9}\u{4e2d}]{1,12}",
        password in "[ -~\u{e9}\u{df}\u{4e2d}]{1,16}",
    ) {
        let credentials = Credentials::from_password_with_iterations(&password, 8).unwrap();
        let client = scram_client(mechanism, &escape_saslname(&username), &password);
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let server_first =
            server_first_for(&mut exchange, &client.client_first(), Lookup::Found(credentials));
        let step = exchange.step(Some(&client.client_final(&server_first)));
        let without_proof = client.without_proof(&server_first);
        let expected_final = client.expected_server_final(&server_first, &without_proof);
        prop_assert_eq!(
            step,
            Step::Success { username, authzid: None, additional_data: Some(expected_final) }
        );
    }

    #[test]
    fn from_password_verify_password_round_trip(password in "\\PC{1,24}", other in "\\PC{1,24}") {
        match Credentials::from_password_with_iterations(&password, 4) {
            Ok(credentials) => {
                prop_assert!(credentials.verify_password(&password));
                for algo in [HashAlgo::Sha1, HashAlgo::Sha256] {
                    let keys = credentials.for_algo(algo).unwrap();
                    prop_assert!(keys.verify_password(algo, &password));
                }
                let wrong = format!("{password}x");
                prop_assert!(!credentials.verify_password(&wrong));
                if other != password {
                    // Passwords that SASLprep to the same string are the same password.
                    let same_after_prep = stringprep_equal(&password, &other);
                    prop_assert_eq!(credentials.verify_password(&other), same_after_prep);
                }
            }
            // Only passwords SASLprep refuses (or maps to nothing) are rejected.
            Err(_) => prop_assert!(!printable_ascii(&password)),
        }
    }

    #[test]
    fn printable_ascii_passwords_are_always_accepted(password in "[ -~]{1,32}") {
        let credentials = Credentials::from_password_with_iterations(&password, 2).unwrap();
        prop_assert!(credentials.verify_password(&password));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn from_password_defaults(password in "[ -~]{10,20}") {
        let credentials = Credentials::from_password(&password).unwrap();
        for algo in [HashAlgo::Sha1, HashAlgo::Sha256] {
            let keys = credentials.for_algo(algo).unwrap();
            prop_assert_eq!(keys.iterations, Credentials::DEFAULT_ITERATIONS);
            prop_assert_eq!(keys.salt.len(), 36);
            prop_assert_eq!(keys.stored_key.len(), algo.output_len());
            prop_assert_eq!(keys.server_key.len(), algo.output_len());
        }
        // Independent salts per hash.
        prop_assert_ne!(
            &credentials.sha1.as_ref().unwrap().salt,
            &credentials.sha256.as_ref().unwrap().salt
        );
        prop_assert!(credentials.verify_password(&password));
    }
}

fn printable_ascii(password: &str) -> bool {
    password.bytes().all(|byte| (b' '..=b'~').contains(&byte))
}

/// Whether two passwords derive the same keys: compare them through the crate itself with one
/// fixed salt, which is exactly "equal after SASLprep".
fn stringprep_equal(a: &str, b: &str) -> bool {
    let derive = |password| rookery_sasl::ScramKeys::derive(HashAlgo::Sha1, password, b"salt", 1);
    matches!((derive(a), derive(b)), (Ok(x), Ok(y)) if x == y)
}
