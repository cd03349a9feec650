//! The Prosody account fixture: SCRAM-SHA-1 keys that Debian's Prosody 0.12 wrote with `prosodyctl register`
//! (crates/sasl/tests/fixtures/prosody/README.md says how).

use rookery_sasl::{Credentials, HashAlgo, ScramKeys};

/// The fixture account's original password.
pub const PROSODY_ALICE_PASSWORD: &str = "correct horse battery";

/// Alice's credentials as Prosody stored them: SHA-1 keys only.
pub fn prosody_alice_credentials() -> Credentials {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sasl/tests/fixtures/prosody/alice.dat"
    );
    let dat = std::fs::read_to_string(path).expect("the Prosody fixture");
    let keys = ScramKeys::from_prosody(
        HashAlgo::Sha1,
        dat_field(&dat, "salt"),
        dat_field(&dat, "iteration_count")
            .parse()
            .expect("a number"),
        dat_field(&dat, "stored_key"),
        dat_field(&dat, "server_key"),
    )
    .expect("valid keys");
    Credentials {
        sha1: Some(keys),
        sha256: None,
    }
}

/// The value of a `["key"] = value;` line of a Prosody `.dat` file (enough for this fixture, not a Lua parser).
fn dat_field<'a>(dat: &'a str, key: &str) -> &'a str {
    let prefix = format!("[\"{key}\"] = ");
    let line = dat
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .expect("the field is there");
    line[prefix.len()..].trim_end_matches(';').trim_matches('"')
}
