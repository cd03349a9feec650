//! PLAIN (verified against the stored SCRAM keys) and EXTERNAL.

mod common;

use common::{PASSWORD, USER, credentials, expect_failure, expect_need_credentials};
use rookery_sasl::{
    ChannelBindings, Condition, Credentials, Failure, Lookup, Mechanism, ServerExchange, Step,
};
use sasl::client::Mechanism as _;
use sasl::client::mechanisms::Plain;

fn plain() -> ServerExchange {
    ServerExchange::new(Mechanism::Plain, ChannelBindings::default())
}

/// Feed one PLAIN message and answer the lookup.
fn plain_exchange(message: &[u8], lookup: Lookup) -> Step {
    let mut exchange = plain();
    expect_need_credentials(exchange.step(Some(message)));
    let step = exchange.provide(lookup);
    assert!(exchange.is_finished());
    step
}

fn plain_success(username: &str, authzid: Option<&str>) -> Step {
    Step::Success {
        username: username.into(),
        authzid: authzid.map(Into::into),
        additional_data: None,
    }
}

// ---- PLAIN -----------------------------------------------------------------------------------

#[test]
fn plain_with_sasl_client() {
    let mut client = Plain::new(USER, PASSWORD);
    assert_eq!(client.name(), Mechanism::Plain.name());
    let mut exchange = plain();
    assert_eq!(
        exchange.step(Some(&client.initial())),
        Step::NeedCredentials {
            username: USER.into()
        }
    );
    assert_eq!(
        exchange.provide(Lookup::Found(credentials())),
        plain_success(USER, None)
    );
}

#[test]
fn plain_without_initial_response() {
    let mut exchange = plain();
    assert_eq!(exchange.step(None), Step::Challenge(Vec::new()));
    expect_need_credentials(exchange.step(Some(b"\0user\0pencil")));
    assert_eq!(
        exchange.provide(Lookup::Found(credentials())),
        plain_success(USER, None)
    );
}

#[test]
fn plain_returns_authzid() {
    assert_eq!(
        plain_exchange(
            b"admin@example.com\0user\0pencil",
            Lookup::Found(credentials())
        ),
        plain_success(USER, Some("admin@example.com"))
    );
}

#[test]
fn plain_wrong_password_unknown_user_and_keyless_account_fail_alike() {
    let expected = Step::Failure(Failure::new(Condition::NotAuthorized));
    assert_eq!(
        plain_exchange(b"\0user\0Pencil", Lookup::Found(credentials())),
        expected
    );
    assert_eq!(
        plain_exchange(b"\0nobody\0pencil", Lookup::NotFound),
        expected
    );
    assert_eq!(
        plain_exchange(b"\0user\0pencil", Lookup::Found(Credentials::default())),
        expected
    );
}

#[test]
fn plain_disabled_account_is_revealed_only_by_the_right_password() {
    assert_eq!(
        plain_exchange(
            b"\0user\0pencil",
            Lookup::Disabled {
                credentials: credentials(),
                text: None,
            }
        ),
        Step::Failure(Failure::new(Condition::AccountDisabled))
    );
    let not_authorized = Step::Failure(Failure::new(Condition::NotAuthorized));
    assert_eq!(
        plain_exchange(
            b"\0user\0Pencil",
            Lookup::Disabled {
                credentials: credentials(),
                text: None,
            }
        ),
        not_authorized
    );
    assert_eq!(
        plain_exchange(
            b"\0user\0pencil",
            Lookup::Disabled {
                credentials: Credentials::default(),
                text: None,
            }
        ),
        not_authorized
    );
}

#[test]
fn plain_disabled_account_text_is_told_only_with_the_right_password() {
    let deleted = || Lookup::Disabled {
        credentials: credentials(),
        text: Some("Account deleted".into()),
    };
    assert_eq!(
        plain_exchange(b"\0user\0pencil", deleted()),
        Step::Failure(Failure::with_text(
            Condition::AccountDisabled,
            "Account deleted"
        ))
    );
    assert_eq!(
        plain_exchange(b"\0user\0Pencil", deleted()),
        Step::Failure(Failure::new(Condition::NotAuthorized))
    );
}

#[test]
fn plain_uses_sha1_keys_when_there_are_no_sha256_keys() {
    let sha1_only = Credentials {
        sha1: credentials().sha1,
        sha256: None,
    };
    assert_eq!(
        plain_exchange(b"\0user\0pencil", Lookup::Found(sha1_only.clone())),
        plain_success(USER, None)
    );
    assert_eq!(
        plain_exchange(b"\0user\0pencil!", Lookup::Found(sha1_only)),
        Step::Failure(Failure::new(Condition::NotAuthorized))
    );
}

#[test]
fn plain_saslpreps_password_and_username() {
    // RFC 4013 §3 examples: SOFT HYPHEN maps to nothing, and ROMAN NUMERAL NINE normalises to
    // "IX".
    let stored = Credentials::from_password_with_iterations("IX", common::TEST_ITERATIONS).unwrap();
    for password in ["IX", "I\u{ad}X", "\u{2168}"] {
        let message = format!("\0user\0{password}");
        assert_eq!(
            plain_exchange(message.as_bytes(), Lookup::Found(stored.clone())),
            plain_success(USER, None),
            "{password:?}"
        );
    }
    let mut exchange = plain();
    assert_eq!(
        expect_need_credentials(exchange.step(Some("\0us\u{ad}er\0pw".as_bytes()))),
        "user"
    );
}

#[test]
fn malformed_plain_messages() {
    let too_long = format!(
        "\0user\0{}",
        "p".repeat(rookery_sasl::MAX_CLIENT_MESSAGE_LEN)
    );
    let cases: Vec<&[u8]> = vec![
        b"",
        b"pencil",
        b"user\0pencil",
        b"\0user",
        b"\0\0pencil",
        b"\0user\0",
        b"a\0user\0pencil\0",
        b"a\0b\0c\0d",
        b"\0us\xffer\0pencil",
        b"\0user\0pen\xffcil",
        b"\xff\0user\0pencil",
        b"\0user\0pen\x07cil",
        "\0user\0\u{ad}".as_bytes(),
        "\0us\u{7}er\0pencil".as_bytes(),
        "\0\u{ad}\0pencil".as_bytes(),
        too_long.as_bytes(),
    ];
    for case in cases {
        let mut exchange = plain();
        assert_eq!(
            expect_failure(exchange.step(Some(case))).condition,
            Condition::MalformedRequest,
            "{:?}",
            String::from_utf8_lossy(case)
        );
        assert!(exchange.is_finished());
    }
}

#[test]
fn plain_out_of_order() {
    let mut exchange = plain();
    expect_need_credentials(exchange.step(Some(b"\0user\0pencil")));
    assert_eq!(
        expect_failure(exchange.step(Some(b"\0user\0pencil"))).condition,
        Condition::TemporaryAuthFailure
    );
    assert!(matches!(
        exchange.provide(Lookup::NotFound),
        Step::Failure(_)
    ));
}

#[test]
fn plain_debug_does_not_show_the_password() {
    let mut exchange = plain();
    expect_need_credentials(exchange.step(Some(b"\0user\0sup3r-secret")));
    let shown = format!("{exchange:?}");
    assert!(!shown.contains("sup3r-secret"), "{shown}");
}

// ---- EXTERNAL --------------------------------------------------------------------------------

fn external(identities: &[&str], response: &[u8]) -> Step {
    let mut exchange =
        ServerExchange::new_external(identities.iter().map(|&id| id.to_owned()).collect());
    assert_eq!(exchange.mechanism(), Mechanism::External);
    let step = exchange.step(Some(response));
    assert!(exchange.is_finished());
    step
}

fn external_success(username: &str, authzid: Option<&str>) -> Step {
    Step::Success {
        username: username.into(),
        authzid: authzid.map(Into::into),
        additional_data: None,
    }
}

#[test]
fn external_empty_authzid_with_one_identity() {
    assert_eq!(
        external(&["a.example"], b""),
        external_success("a.example", None)
    );
}

#[test]
fn external_without_initial_response() {
    let mut exchange = ServerExchange::new_external(vec!["a.example".into()]);
    assert_eq!(exchange.step(None), Step::Challenge(Vec::new()));
    assert_eq!(
        exchange.step(Some(b"")),
        external_success("a.example", None)
    );
    // `None` after the first call counts as an empty response.
    let mut exchange = ServerExchange::new_external(vec!["a.example".into()]);
    assert_eq!(exchange.step(None), Step::Challenge(Vec::new()));
    assert_eq!(exchange.step(None), external_success("a.example", None));
}

#[test]
fn external_authzid_must_be_a_verified_identity() {
    let identities = ["a.example", "groups.a.example"];
    assert_eq!(
        external(&identities, b"groups.a.example"),
        external_success("groups.a.example", Some("groups.a.example"))
    );
    // Domain names compare case-insensitively; the verified spelling is returned.
    assert_eq!(
        external(&identities, b"A.Example"),
        external_success("a.example", Some("A.Example"))
    );
    assert_eq!(
        external(&identities, b"b.example"),
        Step::Failure(Failure::new(Condition::InvalidAuthzid))
    );
    assert_eq!(
        external(&identities, b"a.example\0"),
        Step::Failure(Failure::new(Condition::InvalidAuthzid))
    );
}

#[test]
fn external_empty_authzid_with_several_identities_is_not_authorized() {
    assert_eq!(
        expect_failure(external(&["a.example", "b.example"], b"")).condition,
        Condition::NotAuthorized
    );
}

#[test]
fn external_without_verified_identity_is_not_authorized() {
    for response in [&b""[..], b"a.example"] {
        assert_eq!(
            expect_failure(external(&[], response)).condition,
            Condition::NotAuthorized
        );
        let mut exchange = ServerExchange::new(Mechanism::External, ChannelBindings::default());
        assert_eq!(
            expect_failure(exchange.step(Some(response))).condition,
            Condition::NotAuthorized
        );
    }
}

#[test]
fn external_non_utf8_is_malformed() {
    assert_eq!(
        expect_failure(external(&["a.example"], b"a.\xffexample")).condition,
        Condition::MalformedRequest
    );
}
