//! SCRAM-SHA-1 and SCRAM-SHA-256 (and -PLUS) exchanges: RFC test vectors, the `sasl` crate's
//! client, channel binding and downgrade rules, malformed messages, unknown and disabled accounts.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{
    END_POINT_DATA, EXPORTER_DATA, HandClient, PASSWORD, USER, both_bindings, credentials,
    expect_challenge, expect_failure, expect_need_credentials, parse_server_first,
    server_first_for,
};
use rookery_sasl::{
    ChannelBindings, Condition, Credentials, Failure, HashAlgo, Lookup, Mechanism, ScramKeys,
    ServerExchange, Step,
};
use sasl::client::Mechanism as _;
use sasl::client::mechanisms::Scram;
use sasl::common::ChannelBinding;
use sasl::common::scram::{ScramProvider, Sha1, Sha256};

const SCRAM_MECHANISMS: [Mechanism; 4] = [
    Mechanism::ScramSha1,
    Mechanism::ScramSha1Plus,
    Mechanism::ScramSha256,
    Mechanism::ScramSha256Plus,
];

fn algo_of(mechanism: Mechanism) -> HashAlgo {
    mechanism.hash_algo().unwrap()
}

/// Run a whole exchange, feeding `client_final` instead of the client's own final message when
/// given, and return the last step.
fn run_exchange(
    exchange: &mut ServerExchange,
    client: &HandClient,
    lookup: Lookup,
) -> (Vec<u8>, Step) {
    let server_first = server_first_for(exchange, &client.client_first(), lookup);
    let step = exchange.step(Some(&client.client_final(&server_first)));
    (server_first, step)
}

fn assert_success(step: &Step, username: &str, authzid: Option<&str>) {
    match step {
        Step::Success {
            username: got_user,
            authzid: got_authzid,
            additional_data: Some(_),
        } => {
            assert_eq!(got_user, username);
            assert_eq!(got_authzid.as_deref(), authzid);
        }
        other => panic!("expected Success with additional data, got {other:?}"),
    }
}

fn not_authorized() -> Failure {
    Failure::new(Condition::NotAuthorized)
}

// ---- RFC test vectors ------------------------------------------------------------------------

fn run_vector(mechanism: Mechanism, salt_b64: &str, server_nonce: &str, messages: [&str; 4]) {
    let [client_first, server_first, client_final, server_final] = messages;
    let algo = algo_of(mechanism);
    let keys = ScramKeys::derive(algo, "pencil", &BASE64.decode(salt_b64).unwrap(), 4096).unwrap();
    let credentials = match algo {
        HashAlgo::Sha1 => Credentials {
            sha1: Some(keys),
            sha256: None,
        },
        HashAlgo::Sha256 => Credentials {
            sha1: None,
            sha256: Some(keys),
        },
    };
    let mut exchange =
        ServerExchange::new(mechanism, ChannelBindings::default()).with_server_nonce(server_nonce);
    assert_eq!(
        exchange.step(Some(client_first.as_bytes())),
        Step::NeedCredentials {
            username: "user".into()
        }
    );
    assert_eq!(
        exchange.provide(Lookup::Found(credentials)),
        Step::Challenge(server_first.as_bytes().to_vec())
    );
    assert_eq!(
        exchange.step(Some(client_final.as_bytes())),
        Step::Success {
            username: "user".into(),
            authzid: None,
            additional_data: Some(server_final.as_bytes().to_vec()),
        }
    );
    assert!(exchange.is_finished());
}

#[test]
fn rfc5802_scram_sha1_vector() {
    run_vector(
        Mechanism::ScramSha1,
        "QSXCR+Q6sek8bf92",
        "3rfcNHYJY1ZVvWVs7j",
        [
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        ],
    );
}

#[test]
fn rfc7677_scram_sha256_vector() {
    run_vector(
        Mechanism::ScramSha256,
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        [
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ],
    );
}

#[test]
fn rfc5802_vector_with_wrong_proof_fails() {
    let keys = ScramKeys::derive(
        HashAlgo::Sha1,
        "pencil",
        &BASE64.decode("QSXCR+Q6sek8bf92").unwrap(),
        4096,
    )
    .unwrap();
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default())
        .with_server_nonce("3rfcNHYJY1ZVvWVs7j");
    server_first_for(
        &mut exchange,
        b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        Lookup::Found(Credentials {
            sha1: Some(keys),
            sha256: None,
        }),
    );
    // The vector's proof with its last base64 digit changed (still canonical base64).
    let tampered =
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4To=";
    assert_eq!(
        exchange.step(Some(tampered)),
        Step::Failure(not_authorized())
    );
}

// ---- the `sasl` crate's client ---------------------------------------------------------------

/// A whole exchange driven by the `sasl` 0.5 client, which also checks the server signature.
fn sasl_client_exchange<P: ScramProvider>(
    mechanism: Mechanism,
    bindings: ChannelBindings,
    client_binding: ChannelBinding,
    password: &str,
) -> Step {
    let mut client = Scram::<P>::new(USER, password, client_binding).unwrap();
    assert_eq!(client.name(), mechanism.name());
    let mut exchange = ServerExchange::new(mechanism, bindings);
    let client_first = client.initial();
    let server_first = server_first_for(&mut exchange, &client_first, Lookup::Found(credentials()));
    let client_final = client.response(&server_first).unwrap();
    let step = exchange.step(Some(&client_final));
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
fn sasl_client_scram_sha1_without_tls() {
    let step = sasl_client_exchange::<Sha1>(
        Mechanism::ScramSha1,
        ChannelBindings::default(),
        ChannelBinding::None,
        PASSWORD,
    );
    assert_success(&step, USER, None);
}

#[test]
fn sasl_client_scram_sha256_without_tls() {
    let step = sasl_client_exchange::<Sha256>(
        Mechanism::ScramSha256,
        ChannelBindings::default(),
        ChannelBinding::None,
        PASSWORD,
    );
    assert_success(&step, USER, None);
}

#[test]
fn sasl_client_non_plus_over_tls_without_client_binding_support() {
    // `n,,`: the client cannot bind, which is no downgrade even though we offer -PLUS.
    for step in [
        sasl_client_exchange::<Sha1>(
            Mechanism::ScramSha1,
            both_bindings(),
            ChannelBinding::None,
            PASSWORD,
        ),
        sasl_client_exchange::<Sha256>(
            Mechanism::ScramSha256,
            both_bindings(),
            ChannelBinding::None,
            PASSWORD,
        ),
    ] {
        assert_success(&step, USER, None);
    }
}

#[test]
fn sasl_client_y_flag_without_server_bindings() {
    // `y,,` is honest when we offered no -PLUS mechanism.
    let step = sasl_client_exchange::<Sha1>(
        Mechanism::ScramSha1,
        ChannelBindings::default(),
        ChannelBinding::Unsupported,
        PASSWORD,
    );
    assert_success(&step, USER, None);
}

#[test]
fn sasl_client_scram_sha1_plus_tls_exporter() {
    let step = sasl_client_exchange::<Sha1>(
        Mechanism::ScramSha1Plus,
        both_bindings(),
        ChannelBinding::TlsExporter(EXPORTER_DATA.to_vec()),
        PASSWORD,
    );
    assert_success(&step, USER, None);
}

#[test]
fn sasl_client_scram_sha256_plus_tls_exporter() {
    let only_exporter = ChannelBindings {
        tls_exporter: Some(EXPORTER_DATA.to_vec()),
        tls_server_end_point: None,
    };
    let step = sasl_client_exchange::<Sha256>(
        Mechanism::ScramSha256Plus,
        only_exporter,
        ChannelBinding::TlsExporter(EXPORTER_DATA.to_vec()),
        PASSWORD,
    );
    assert_success(&step, USER, None);
}

#[test]
fn sasl_client_wrong_password_is_not_authorized() {
    for step in [
        sasl_client_exchange::<Sha1>(
            Mechanism::ScramSha1,
            ChannelBindings::default(),
            ChannelBinding::None,
            "pencil2",
        ),
        sasl_client_exchange::<Sha256>(
            Mechanism::ScramSha256Plus,
            both_bindings(),
            ChannelBinding::TlsExporter(EXPORTER_DATA.to_vec()),
            "Pencil",
        ),
    ] {
        assert_eq!(step, Step::Failure(not_authorized()));
    }
}

#[test]
fn sasl_client_plus_with_other_exporter_data_is_not_authorized() {
    // A man in the middle terminates TLS twice, so the client sees different exporter data.
    let step = sasl_client_exchange::<Sha256>(
        Mechanism::ScramSha256Plus,
        both_bindings(),
        ChannelBinding::TlsExporter(b"the attacker's connection".to_vec()),
        PASSWORD,
    );
    assert_eq!(
        expect_failure(step),
        Failure::with_text(Condition::NotAuthorized, "channel binding mismatch")
    );
}

#[test]
fn sasl_client_tls_unique_is_unsupported() {
    let mut client = Scram::<Sha1>::new(
        USER,
        PASSWORD,
        ChannelBinding::TlsUnique(b"finished".to_vec()),
    )
    .unwrap();
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1Plus, both_bindings());
    let failure = expect_failure(exchange.step(Some(&client.initial())));
    assert_eq!(failure.condition, Condition::MalformedRequest);
}

// ---- tls-server-end-point, authzid, escapes (hand-built client) ------------------------------

#[test]
fn tls_server_end_point_for_both_plus_mechanisms() {
    for mechanism in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        let client = HandClient::new(
            algo_of(mechanism),
            USER,
            PASSWORD,
            "p=tls-server-end-point,,",
            END_POINT_DATA,
        );
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let (server_first, step) =
            run_exchange(&mut exchange, &client, Lookup::Found(credentials()));
        assert_success(&step, USER, None);
        let Step::Success {
            additional_data: Some(server_final),
            ..
        } = step
        else {
            unreachable!()
        };
        assert_eq!(
            server_final,
            client.expected_server_final(&server_first, &client.without_proof(&server_first))
        );
    }
}

#[test]
fn tls_exporter_for_both_plus_mechanisms_by_hand() {
    for mechanism in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        let client = HandClient::new(
            algo_of(mechanism),
            USER,
            PASSWORD,
            "p=tls-exporter,,",
            EXPORTER_DATA,
        );
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let (_, step) = run_exchange(&mut exchange, &client, Lookup::Found(credentials()));
        assert_success(&step, USER, None);
    }
}

#[test]
fn binding_type_without_data_is_refused() {
    let only_exporter = ChannelBindings {
        tls_exporter: Some(EXPORTER_DATA.to_vec()),
        tls_server_end_point: None,
    };
    let client = HandClient::new(
        HashAlgo::Sha256,
        USER,
        PASSWORD,
        "p=tls-server-end-point,,",
        END_POINT_DATA,
    );
    let mut exchange = ServerExchange::new(Mechanism::ScramSha256Plus, only_exporter);
    assert_eq!(
        expect_failure(exchange.step(Some(&client.client_first()))),
        Failure::with_text(
            Condition::MalformedRequest,
            "unsupported channel-binding type"
        )
    );
}

#[test]
fn plus_mechanism_without_any_bindings_fails() {
    let client = HandClient::new(
        HashAlgo::Sha1,
        USER,
        PASSWORD,
        "p=tls-exporter,,",
        EXPORTER_DATA,
    );
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1Plus, ChannelBindings::default());
    assert_eq!(
        expect_failure(exchange.step(Some(&client.client_first()))).condition,
        Condition::MalformedRequest
    );
}

#[test]
fn authzid_and_escaped_username() {
    let mut accounts = credentials();
    accounts.sha1 = None; // prove the SHA-256 path works alone too
    for (mechanism, gs2_header, cb_data) in [
        (
            Mechanism::ScramSha256,
            "n,a=admin=2Cboss=3D1@example.com,",
            &b""[..],
        ),
        (
            Mechanism::ScramSha256Plus,
            "p=tls-exporter,a=admin=2Cboss=3D1@example.com,",
            EXPORTER_DATA,
        ),
    ] {
        let client = HandClient::new(
            HashAlgo::Sha256,
            "us=2Cer=3D",
            PASSWORD,
            gs2_header,
            cb_data,
        );
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        assert_eq!(
            expect_need_credentials(exchange.step(Some(&client.client_first()))),
            "us,er="
        );
        let server_first = expect_challenge(exchange.provide(Lookup::Found(accounts.clone())));
        let step = exchange.step(Some(&client.client_final(&server_first)));
        assert_success(&step, "us,er=", Some("admin,boss=1@example.com"));
    }
}

#[test]
fn username_is_saslprepped() {
    // U+00A0 NO-BREAK SPACE maps to a space, U+00AD SOFT HYPHEN to nothing, and NFKC folds U+2168
    // ROMAN NUMERAL NINE into "IX".
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    assert_eq!(
        expect_need_credentials(
            exchange.step(Some("n,,n=a\u{a0}b\u{ad}\u{2168},r=abc".as_bytes()))
        ),
        "a bIX"
    );
}

#[test]
fn extensions_are_ignored_but_signed() {
    let client = HandClient::new(HashAlgo::Sha1, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    let first = format!("n,,{},x=first-ext", client.client_first_bare);
    let mut client = client;
    client.client_first_bare.push_str(",x=first-ext");
    let server_first = server_first_for(
        &mut exchange,
        first.as_bytes(),
        Lookup::Found(credentials()),
    );
    let without_proof = format!("{},y=final=ext", client.without_proof(&server_first));
    let step = exchange.step(Some(&client.sign(&server_first, &without_proof)));
    assert_success(&step, USER, None);
}

#[test]
fn server_first_shape_and_nonce() {
    let client = HandClient::new(HashAlgo::Sha256, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default());
    let server_first = server_first_for(
        &mut exchange,
        &client.client_first(),
        Lookup::Found(credentials()),
    );
    let first = parse_server_first(&server_first);
    let server_part = first.nonce.strip_prefix(&client.client_nonce).unwrap();
    // 24 random bytes in base64: 192 bits.
    assert_eq!(server_part.len(), 32);
    assert_eq!(first.iterations, common::TEST_ITERATIONS);
    assert_eq!(first.salt, credentials().sha256.unwrap().salt);

    let mut again = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default());
    let other = server_first_for(
        &mut again,
        &client.client_first(),
        Lookup::Found(credentials()),
    );
    assert_ne!(parse_server_first(&other).nonce, first.nonce);
}

#[test]
fn no_initial_response_gets_an_empty_challenge() {
    for mechanism in SCRAM_MECHANISMS {
        let (gs2_header, cb_data) = if mechanism.is_plus() {
            ("p=tls-exporter,,", EXPORTER_DATA)
        } else {
            ("n,,", &b""[..])
        };
        let client = HandClient::new(algo_of(mechanism), USER, PASSWORD, gs2_header, cb_data);
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        assert_eq!(exchange.step(None), Step::Challenge(Vec::new()));
        let (_, step) = run_exchange(&mut exchange, &client, Lookup::Found(credentials()));
        assert_success(&step, USER, None);
    }
}

// ---- gs2 header rules and downgrade protection -----------------------------------------------

#[test]
fn y_flag_when_plus_was_offered_is_a_downgrade() {
    for mechanism in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        assert_eq!(
            exchange.step(Some(b"y,,n=user,r=abc")),
            Step::Failure(Failure::with_text(
                Condition::NotAuthorized,
                "channel binding downgrade detected"
            ))
        );
        assert!(exchange.is_finished());
    }
    // Only one type of data is enough for -PLUS to have been offered.
    let end_point_only = ChannelBindings {
        tls_exporter: None,
        tls_server_end_point: Some(END_POINT_DATA.to_vec()),
    };
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, end_point_only);
    assert_eq!(
        expect_failure(exchange.step(Some(b"y,,n=user,r=abc"))).condition,
        Condition::NotAuthorized
    );
}

#[test]
fn y_flag_via_sasl_client_when_plus_was_offered() {
    let mut client = Scram::<Sha1>::new(USER, PASSWORD, ChannelBinding::Unsupported).unwrap();
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, both_bindings());
    assert_eq!(
        expect_failure(exchange.step(Some(&client.initial()))).condition,
        Condition::NotAuthorized
    );
}

#[test]
fn p_flag_with_non_plus_mechanism_is_malformed() {
    for mechanism in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        assert_eq!(
            exchange.step(Some(b"p=tls-exporter,,n=user,r=abc")),
            Step::Failure(Failure::with_text(
                Condition::MalformedRequest,
                "channel binding requires a -PLUS mechanism"
            ))
        );
    }
}

#[test]
fn plus_mechanism_without_p_flag_is_malformed() {
    for mechanism in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        for first in [&b"n,,n=user,r=abc"[..], b"y,,n=user,r=abc"] {
            let mut exchange = ServerExchange::new(mechanism, both_bindings());
            assert_eq!(
                exchange.step(Some(first)),
                Step::Failure(Failure::with_text(
                    Condition::MalformedRequest,
                    "a -PLUS mechanism requires channel binding"
                ))
            );
        }
    }
}

#[test]
fn channel_binding_value_must_match_exactly() {
    // Each case: (mechanism, gs2 header sent first, what c= decodes to in the final message).
    let exporter_header = "p=tls-exporter,,";
    let with_data = |header: &str, data: &[u8]| {
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes
    };
    let cases: Vec<(Mechanism, &str, Vec<u8>)> = vec![
        // biws/eSws swapped
        (Mechanism::ScramSha1, "n,,", b"y,,".to_vec()),
        (Mechanism::ScramSha1, "y,,", b"n,,".to_vec()),
        // authzid dropped from c=
        (Mechanism::ScramSha1, "n,a=x,", b"n,,".to_vec()),
        // data appended to a non-binding header
        (Mechanism::ScramSha1, "n,,", with_data("n,,", EXPORTER_DATA)),
        // -PLUS: header only, the other type's data, truncated data, another header
        (
            Mechanism::ScramSha256Plus,
            exporter_header,
            exporter_header.as_bytes().to_vec(),
        ),
        (
            Mechanism::ScramSha256Plus,
            exporter_header,
            with_data(exporter_header, END_POINT_DATA),
        ),
        (
            Mechanism::ScramSha256Plus,
            exporter_header,
            with_data(exporter_header, &EXPORTER_DATA[..31]),
        ),
        (
            Mechanism::ScramSha1Plus,
            exporter_header,
            with_data("p=tls-server-end-point,,", END_POINT_DATA),
        ),
    ];
    for (mechanism, gs2_header, channel_binding) in cases {
        let bindings = if gs2_header.starts_with('y') {
            ChannelBindings::default()
        } else {
            both_bindings()
        };
        let client = HandClient::new(algo_of(mechanism), USER, PASSWORD, gs2_header, b"");
        let mut exchange = ServerExchange::new(mechanism, bindings);
        let server_first = server_first_for(
            &mut exchange,
            &client.client_first(),
            Lookup::Found(credentials()),
        );
        let without_proof = format!(
            "c={},r={}",
            BASE64.encode(&channel_binding),
            parse_server_first(&server_first).nonce
        );
        assert_eq!(
            exchange.step(Some(&client.sign(&server_first, &without_proof))),
            Step::Failure(Failure::with_text(
                Condition::NotAuthorized,
                "channel binding mismatch"
            )),
            "{mechanism} {gs2_header} {:?}",
            String::from_utf8_lossy(&channel_binding)
        );
    }
}

// ---- malformed messages ----------------------------------------------------------------------

#[test]
fn malformed_client_first_messages() {
    let too_long = format!(
        "n,,n=user,r={}",
        "a".repeat(rookery_sasl::MAX_CLIENT_MESSAGE_LEN)
    );
    let cases: Vec<&[u8]> = vec![
        b"",
        b"n",
        b"n,",
        b"n,,",
        b",,n=user,r=abc",
        b"N,,n=user,r=abc",
        b" n,,n=user,r=abc",
        b"x,,n=user,r=abc",
        b"yes,,n=user,r=abc",
        b"p,,n=user,r=abc",
        b"p=,,n=user,r=abc",
        b"p=tls exporter,,n=user,r=abc",
        b"p=tls_exporter,,n=user,r=abc",
        b"n,b=x,n=user,r=abc",
        b"n,a=,n=user,r=abc",
        b"n,a=x=41,n=user,r=abc",
        b"n,a=x,y,n=user,r=abc",
        b"n,,r=abc,n=user",
        b"n,,n=user",
        b"n,,n=user,",
        b"n,,n=user,r=",
        b"n,,n=user,r=a b",
        b"n,,n=user,r=\xc3\xa9",
        b"n,,n=,r=abc",
        b"n,,user,r=abc",
        b"n,,N=user,r=abc",
        b"n,,n=us=er,r=abc",
        b"n,,n=us=2cer,r=abc",
        b"n,,n=us=3,r=abc",
        b"n,,n=user=,r=abc",
        b"n,,n=us\0er,r=abc",
        b"n,,m=ext,n=user,r=abc",
        b"n,,n=user,r=abc,m=ext",
        b"n,,n=user,r=abc,foo=bar",
        b"n,,n=user,r=abc,x=",
        b"n,,n=user,r=abc,x",
        b"n,,n=user,r=abc,1=x",
        b"n,,n=user,r=abc,n=again",
        b"n,,n=user,r=abc,r=again",
        b"n,,n=user,r=abc,p=proof",
        b"n,,n=user,r=abc,x=a\0b",
        b"n,,n=user,r=abc,",
        b"n,,n=user,,r=abc",
        b"n,,n=\xff,r=abc",
        b"\xfe\xff",
        "n,,n=a\u{7}b,r=abc".as_bytes(),
        // SASLprep: a prohibited character, and bidi text mixing right-to-left with left-to-right.
        "n,,n=a\u{e000},r=abc".as_bytes(),
        "n,,n=\u{5d0}a,r=abc".as_bytes(),
        // Maps to nothing, leaving an empty username.
        "n,,n=\u{ad},r=abc".as_bytes(),
        too_long.as_bytes(),
    ];
    for mechanism in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        for case in &cases {
            let mut exchange = ServerExchange::new(mechanism, ChannelBindings::default());
            let failure = expect_failure(exchange.step(Some(case)));
            assert_eq!(
                failure.condition,
                Condition::MalformedRequest,
                "{mechanism}: {:?}",
                String::from_utf8_lossy(case)
            );
            assert!(exchange.is_finished());
        }
    }
}

#[test]
fn well_formed_client_first_variants_are_accepted() {
    let cases: [(&[u8], &str); 5] = [
        (b"n,,n=user,r=abc", "user"),
        (b"n,,n=user,r=abc,x=ext", "user"),
        (b"n,,n=user,r=abc,x=a=b,Z=c", "user"),
        (b"n,a=someone,n=user,r=!\"#$%&'()*+-./~", "user"),
        ("n,,n=j\u{fc}rgen,r=abc".as_bytes(), "j\u{fc}rgen"),
    ];
    for (case, username) in cases {
        let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
        assert_eq!(
            expect_need_credentials(exchange.step(Some(case))),
            username,
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn malformed_client_final_messages() {
    let client = HandClient::new(HashAlgo::Sha1, USER, PASSWORD, "n,,", b"");
    let setup = || {
        // A fixed server nonce, so that every case carries the right combined nonce and fails for
        // the reason it is about.
        let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default())
            .with_server_nonce("fixed-server-nonce");
        let server_first = server_first_for(
            &mut exchange,
            &client.client_first(),
            Lookup::Found(credentials()),
        );
        (exchange, server_first)
    };
    let (_, reference_first) = setup();
    let nonce = parse_server_first(&reference_first).nonce;
    let fake_proof = BASE64.encode([7u8; 20]);
    let too_long = format!("c=biws,r={nonce},x={},p={fake_proof}", "a".repeat(9000));

    let cases: Vec<(Vec<u8>, Condition)> = vec![
        (b"".to_vec(), Condition::MalformedRequest),
        (b"c=biws".to_vec(), Condition::MalformedRequest),
        (
            format!("c=biws,r={nonce}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("r={nonce},c=biws,p={fake_proof}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,p={fake_proof},r={nonce}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},p={fake_proof},x=y").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},m=x,p={fake_proof}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},xx=y,p={fake_proof}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},,p={fake_proof}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},p=").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=,r={nonce},p={fake_proof}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("C=biws,r={nonce},p={fake_proof}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},P={fake_proof}").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},p=AAAA").into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=biws,r={nonce},p={}", BASE64.encode([7u8; 32])).into_bytes(),
            Condition::MalformedRequest,
        ),
        (
            format!("c=bi ws,r={nonce},p={fake_proof}").into_bytes(),
            Condition::IncorrectEncoding,
        ),
        (
            format!("c=biws=,r={nonce},p={fake_proof}").into_bytes(),
            Condition::IncorrectEncoding,
        ),
        (
            format!("c=biw,r={nonce},p={fake_proof}").into_bytes(),
            Condition::IncorrectEncoding,
        ),
        (
            format!("c=biws,r={nonce},p=!!!!").into_bytes(),
            Condition::IncorrectEncoding,
        ),
        (
            format!("c=biws,r={nonce},p={}", &fake_proof[..27]).into_bytes(),
            Condition::IncorrectEncoding,
        ),
        (
            format!("c=biws,r={nonce},p={fake_proof}\n").into_bytes(),
            Condition::IncorrectEncoding,
        ),
        (
            b"c=biws,r=\xff,p=AAAA".to_vec(),
            Condition::MalformedRequest,
        ),
        (too_long.into_bytes(), Condition::MalformedRequest),
    ];
    for (case, condition) in cases {
        let (mut exchange, _) = setup();
        assert_eq!(
            expect_failure(exchange.step(Some(&case))).condition,
            condition,
            "{:?}",
            String::from_utf8_lossy(&case)
        );
        assert!(exchange.is_finished());
    }

    // Control: the same setup with a well-formed message succeeds.
    let (mut exchange, server_first) = setup();
    assert_eq!(server_first, reference_first);
    assert_success(
        &exchange.step(Some(&client.client_final(&server_first))),
        USER,
        None,
    );
}

#[test]
fn client_final_nonce_must_be_the_combined_nonce() {
    let client = HandClient::new(HashAlgo::Sha1, USER, PASSWORD, "n,,", b"");
    let variants = |nonce: &str| -> Vec<String> {
        vec![
            client.client_nonce.clone(),
            format!("{nonce}x"),
            nonce[..nonce.len() - 1].to_owned(),
            nonce.to_uppercase(),
            format!("x{}", &nonce[1..]),
        ]
    };
    for index in 0..5 {
        let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
        let server_first = server_first_for(
            &mut exchange,
            &client.client_first(),
            Lookup::Found(credentials()),
        );
        let nonce = parse_server_first(&server_first).nonce;
        let wrong = &variants(&nonce)[index];
        assert_ne!(wrong, &nonce);
        let without_proof = format!("c=biws,r={wrong}");
        assert_eq!(
            exchange.step(Some(&client.sign(&server_first, &without_proof))),
            Step::Failure(Failure::with_text(
                Condition::MalformedRequest,
                "nonce mismatch"
            ))
        );
    }
}

#[test]
fn corrupted_proof_is_not_authorized() {
    for mechanism in SCRAM_MECHANISMS {
        let (gs2_header, cb_data) = if mechanism.is_plus() {
            ("p=tls-exporter,,", EXPORTER_DATA)
        } else {
            ("n,,", &b""[..])
        };
        let client = HandClient::new(algo_of(mechanism), USER, PASSWORD, gs2_header, cb_data);
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let server_first = server_first_for(
            &mut exchange,
            &client.client_first(),
            Lookup::Found(credentials()),
        );
        let without_proof = client.without_proof(&server_first);
        let mut proof = client.proof(&server_first, &without_proof);
        proof[0] ^= 1;
        let message = format!("{without_proof},p={}", BASE64.encode(proof));
        assert_eq!(
            exchange.step(Some(message.as_bytes())),
            Step::Failure(not_authorized())
        );
    }
}

#[test]
fn proof_for_another_auth_message_is_not_authorized() {
    // A valid proof over an AuthMessage that differs from what the server saw (here: an extension
    // the client signed but did not send) must fail.
    let client = HandClient::new(HashAlgo::Sha256, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default());
    let server_first = server_first_for(
        &mut exchange,
        &client.client_first(),
        Lookup::Found(credentials()),
    );
    let without_proof = client.without_proof(&server_first);
    let proof = client.proof(&server_first, &format!("{without_proof},x=1"));
    let message = format!("{without_proof},p={}", BASE64.encode(proof));
    assert_eq!(
        exchange.step(Some(message.as_bytes())),
        Step::Failure(not_authorized())
    );
}

// ---- accounts: unknown, disabled, SHA-1 only -------------------------------------------------

#[test]
fn unknown_user_looks_like_a_real_one_and_fails_at_the_end() {
    for mechanism in SCRAM_MECHANISMS {
        let (gs2_header, cb_data) = if mechanism.is_plus() {
            ("p=tls-exporter,,", EXPORTER_DATA)
        } else {
            ("n,,", &b""[..])
        };
        let client = HandClient::new(algo_of(mechanism), "nobody", PASSWORD, gs2_header, cb_data);
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let (server_first, step) = run_exchange(&mut exchange, &client, Lookup::NotFound);
        assert_eq!(step, Step::Failure(not_authorized()));

        let first = parse_server_first(&server_first);
        assert_eq!(first.iterations, Credentials::DEFAULT_ITERATIONS);
        // Shaped like the UUID salts Prosody and `Credentials::from_password` make.
        let salt = String::from_utf8(first.salt.clone()).unwrap();
        assert_eq!(salt.len(), 36);
        assert_eq!(salt.matches('-').count(), 4);

        // Asking again shows the same salt, as a real account would.
        let mut again = ServerExchange::new(mechanism, both_bindings());
        let server_first_again =
            server_first_for(&mut again, &client.client_first(), Lookup::NotFound);
        assert_eq!(parse_server_first(&server_first_again).salt, first.salt);

        // Another unknown user gets another salt.
        let other = HandClient::new(
            algo_of(mechanism),
            "somebody",
            PASSWORD,
            gs2_header,
            cb_data,
        );
        let mut third = ServerExchange::new(mechanism, both_bindings());
        let server_first_other =
            server_first_for(&mut third, &other.client_first(), Lookup::NotFound);
        assert_ne!(parse_server_first(&server_first_other).salt, first.salt);
    }
}

#[test]
fn unknown_user_and_wrong_password_fail_identically() {
    let real_wrong = HandClient::new(HashAlgo::Sha1, USER, "wrong", "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    let (_, wrong_password) =
        run_exchange(&mut exchange, &real_wrong, Lookup::Found(credentials()));

    let unknown = HandClient::new(HashAlgo::Sha1, "nobody", PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    let (_, unknown_user) = run_exchange(&mut exchange, &unknown, Lookup::NotFound);

    assert_eq!(wrong_password, unknown_user);
    assert_eq!(unknown_user, Step::Failure(not_authorized()));
}

#[test]
fn found_without_any_keys_behaves_like_unknown() {
    let client = HandClient::new(HashAlgo::Sha1, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    let (_, step) = run_exchange(
        &mut exchange,
        &client,
        Lookup::Found(Credentials::default()),
    );
    assert_eq!(step, Step::Failure(not_authorized()));
}

/// A client for `mechanism` that binds to tls-exporter when it is a -PLUS one.
fn client_for(mechanism: Mechanism, username: &str, password: &str) -> HandClient {
    let (gs2_header, cb_data) = if mechanism.is_plus() {
        ("p=tls-exporter,,", EXPORTER_DATA)
    } else {
        ("n,,", &b""[..])
    };
    HandClient::new(algo_of(mechanism), username, password, gs2_header, cb_data)
}

#[test]
fn disabled_account_is_revealed_only_by_a_valid_proof() {
    for mechanism in SCRAM_MECHANISMS {
        let client = client_for(mechanism, USER, PASSWORD);
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let (server_first, step) = run_exchange(
            &mut exchange,
            &client,
            Lookup::Disabled {
                credentials: credentials(),
                text: None,
            },
        );
        assert_eq!(
            step,
            Step::Failure(Failure::new(Condition::AccountDisabled)),
            "{mechanism}"
        );
        assert!(exchange.is_finished());
        // The exchange ran with the account's real keys, not decoys.
        let keys = credentials().for_algo(algo_of(mechanism)).cloned().unwrap();
        let first = parse_server_first(&server_first);
        assert_eq!((first.salt, first.iterations), (keys.salt, keys.iterations));
    }
}

#[test]
fn disabled_account_text_is_told_only_after_a_valid_proof() {
    let deleted = || Lookup::Disabled {
        credentials: credentials(),
        text: Some("Account deleted".into()),
    };
    for mechanism in SCRAM_MECHANISMS {
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let client = client_for(mechanism, USER, PASSWORD);
        let (_, step) = run_exchange(&mut exchange, &client, deleted());
        assert_eq!(
            step,
            Step::Failure(Failure::with_text(
                Condition::AccountDisabled,
                "Account deleted"
            )),
            "{mechanism}"
        );
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        let wrong = client_for(mechanism, USER, "wrong");
        let (_, step) = run_exchange(&mut exchange, &wrong, deleted());
        assert_eq!(step, Step::Failure(not_authorized()), "{mechanism}");
    }
}

#[test]
fn disabled_account_with_a_wrong_password_fails_like_any_other() {
    for mechanism in SCRAM_MECHANISMS {
        let client = client_for(mechanism, USER, "wrong");
        let mut exchange = ServerExchange::new(mechanism, both_bindings());
        // Nothing before the proof tells a disabled account from an enabled one.
        let first = client.client_first();
        assert_eq!(
            exchange.step(Some(&first)),
            Step::NeedCredentials {
                username: USER.into()
            }
        );
        let server_first = expect_challenge(exchange.provide(Lookup::Disabled {
            credentials: credentials(),
            text: None,
        }));
        let mut enabled = ServerExchange::new(mechanism, both_bindings());
        let enabled_first = server_first_for(&mut enabled, &first, Lookup::Found(credentials()));
        let (disabled_first, enabled_first) = (
            parse_server_first(&server_first),
            parse_server_first(&enabled_first),
        );
        assert_eq!(
            (disabled_first.salt, disabled_first.iterations),
            (enabled_first.salt, enabled_first.iterations)
        );

        let step = exchange.step(Some(&client.client_final(&server_first)));
        assert_eq!(step, Step::Failure(not_authorized()), "{mechanism}");
    }
}

#[test]
fn disabled_account_without_keys_for_the_hash_fails_like_unknown() {
    let sha1_only = Credentials {
        sha1: credentials().sha1,
        sha256: None,
    };
    let client = client_for(Mechanism::ScramSha256, USER, PASSWORD);
    let mut exchange = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default());
    let (_, step) = run_exchange(
        &mut exchange,
        &client,
        Lookup::Disabled {
            credentials: sha1_only,
            text: None,
        },
    );
    assert_eq!(step, Step::Failure(not_authorized()));
}

#[test]
fn sha256_exchange_for_sha1_only_account_fails_like_unknown() {
    let sha1_only = Credentials {
        sha1: credentials().sha1,
        sha256: None,
    };
    let client = HandClient::new(HashAlgo::Sha256, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default());
    let (server_first, step) =
        run_exchange(&mut exchange, &client, Lookup::Found(sha1_only.clone()));
    assert_eq!(step, Step::Failure(not_authorized()));
    // The decoy salt, not the SHA-1 salt, so nothing about the stored keys leaks.
    let shown = parse_server_first(&server_first).salt;
    assert_ne!(shown, sha1_only.sha1.as_ref().unwrap().salt);

    // The same account logs in with SCRAM-SHA-1.
    let client = HandClient::new(HashAlgo::Sha1, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    let (_, step) = run_exchange(&mut exchange, &client, Lookup::Found(sha1_only));
    assert_success(&step, USER, None);
}

// ---- call order ------------------------------------------------------------------------------

#[test]
fn calls_out_of_order_fail_without_panicking() {
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    assert_eq!(
        expect_failure(exchange.provide(Lookup::NotFound)).condition,
        Condition::TemporaryAuthFailure
    );
    assert!(exchange.is_finished());
    assert_eq!(
        expect_failure(exchange.step(Some(b"n,,n=user,r=abc"))).condition,
        Condition::TemporaryAuthFailure
    );

    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    expect_need_credentials(exchange.step(Some(b"n,,n=user,r=abc")));
    assert_eq!(
        expect_failure(exchange.step(Some(b"c=biws"))).condition,
        Condition::TemporaryAuthFailure
    );

    // After success, nothing more is accepted.
    let client = HandClient::new(HashAlgo::Sha1, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    let (server_first, step) = run_exchange(&mut exchange, &client, Lookup::Found(credentials()));
    assert_success(&step, USER, None);
    assert!(matches!(
        exchange.step(Some(&client.client_final(&server_first))),
        Step::Failure(_)
    ));
    assert!(matches!(
        exchange.provide(Lookup::NotFound),
        Step::Failure(_)
    ));
}

#[test]
fn abort_ends_the_exchange() {
    let mut exchange = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default());
    expect_need_credentials(exchange.step(Some(b"n,,n=user,r=abc")));
    assert_eq!(
        exchange.abort(),
        Step::Failure(Failure::new(Condition::Aborted))
    );
    assert!(exchange.is_finished());
    assert!(matches!(
        exchange.provide(Lookup::NotFound),
        Step::Failure(_)
    ));
}

#[test]
fn debug_output_shows_no_secrets() {
    let client = HandClient::new(HashAlgo::Sha1, USER, PASSWORD, "n,,", b"");
    let mut exchange = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default());
    server_first_for(
        &mut exchange,
        &client.client_first(),
        Lookup::Found(credentials()),
    );
    let shown = format!("{exchange:?}");
    assert!(shown.contains("ScramSha1"), "{shown}");
    assert!(shown.contains("awaiting client-final-message"), "{shown}");
    assert!(!shown.contains("key"), "{shown}");
}
