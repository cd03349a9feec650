//! Replays the committed fuzzing corpus of the `stun` target through its entry function on stable, so that what
//! the fuzzer once found stays fixed without nightly.

use std::path::Path;

#[test]
fn stun_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stun");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| rookery_stun::fuzzing::decode(&data));
        assert!(outcome.is_ok(), "corpus input {} fails", path.display());
        count += 1;
    }
    assert!(
        count >= 20,
        "the corpus should not be empty ({count} inputs in {})",
        dir.display()
    );
}

/// The seeds are what their names say: the valid ones decode and the broken ones fail as named, so the fuzzer
/// starts from both sides of every check.
#[test]
fn stun_corpus_seeds_are_what_they_say() {
    use rookery_stun::{ChannelData, ChannelDataError, DecodeError, Message};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stun");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    for valid in [
        "rfc5769_sample_request",
        "rfc5769_ipv4_response",
        "rfc5769_ipv6_response",
        "rfc5769_long_term_request",
        "rfc8489_b1_sha256_request",
        "wrong_integrity",
        "allocate_request_signed",
        "send_indication",
        "channel_bind_request",
        "error_420_unknown_attributes",
        "password_algorithms",
    ] {
        assert!(Message::decode(&read(valid)).is_ok(), "{valid}");
    }
    let fails = |name: &str| Message::decode(&read(name)).unwrap_err();
    assert_eq!(fails("truncated_header"), DecodeError::TruncatedHeader);
    assert!(matches!(
        fails("truncated_body"),
        DecodeError::LengthMismatch { .. }
    ));
    assert!(matches!(
        fails("length_mismatch"),
        DecodeError::LengthMismatch { .. }
    ));
    assert_eq!(fails("bad_magic_cookie"), DecodeError::BadMagicCookie);
    assert_eq!(fails("top_bits_set"), DecodeError::NotStun);
    assert!(matches!(
        fails("length_unaligned"),
        DecodeError::UnalignedLength(_)
    ));
    assert!(matches!(
        fails("attribute_overrun"),
        DecodeError::AttributeOverrun { .. }
    ));
    assert_eq!(fails("bad_fingerprint"), DecodeError::BadFingerprint);
    assert_eq!(
        fails("fingerprint_not_last"),
        DecodeError::FingerprintNotLast
    );
    for bad in ["bad_address_family", "bad_error_code", "bad_utf8_username"] {
        assert!(
            matches!(fails(bad), DecodeError::BadAttribute { .. }),
            "{bad}"
        );
    }
    for valid in [
        "channel_data_padded",
        "channel_data_unpadded",
        "channel_data_empty",
    ] {
        assert!(ChannelData::decode(&read(valid)).is_ok(), "{valid}");
    }
    let bad_frame = |name: &str| ChannelData::decode(&read(name)).unwrap_err();
    assert_eq!(
        bad_frame("channel_out_of_range"),
        ChannelDataError::ChannelOutOfRange(0x5000)
    );
    assert!(matches!(
        bad_frame("channel_data_truncated"),
        ChannelDataError::Truncated { .. }
    ));
    assert!(matches!(
        bad_frame("channel_data_trailing"),
        ChannelDataError::TrailingBytes(_)
    ));
}
