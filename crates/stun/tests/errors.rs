//! Every way a STUN message, a ChannelData frame, credentials or a nonce can be refused gives its error.

use hmac::{Hmac, KeyInit, Mac};
use rookery_stun::attribute::kind;
use rookery_stun::channel_data::CHANNEL_NUMBERS;
use rookery_stun::credentials::{
    RestError, check_rest_credentials, long_term_key, make_rest_credentials, rest_long_term_key,
    rest_password,
};
use rookery_stun::integrity::{
    IntegrityError, append_fingerprint, append_message_integrity, append_message_integrity_sha256,
    verify_message_integrity, verify_message_integrity_sha256,
};
use rookery_stun::nonce::{self, NonceError};
use rookery_stun::{
    Attribute, ChannelData, ChannelDataError, Class, DecodeError, EncodeError, ErrorCode, Message,
    Method, PacketKind, TransactionId, classify, error_codes, stream_frame_len,
};
use sha2::Sha256;

const TID: TransactionId = TransactionId([7; 12]);

fn allocate() -> Message {
    Message::new(Method::ALLOCATE, Class::Request, TID)
        .with(Attribute::RequestedTransport(17))
        .with(Attribute::Username("1735689600:alice".into()))
        .with(Attribute::Realm("example.org".into()))
}

/// Sets the header's length field to what follows the header.
fn fix_length(bytes: &mut [u8]) {
    let length = (bytes.len() - 20) as u16;
    bytes[2..4].copy_from_slice(&length.to_be_bytes());
}

fn signed(message: &Message, key: &[u8]) -> Vec<u8> {
    let mut bytes = message.encode().unwrap();
    append_message_integrity(&mut bytes, key).unwrap();
    append_fingerprint(&mut bytes).unwrap();
    bytes
}

#[test]
fn truncated_header() {
    let bytes = allocate().encode().unwrap();
    for len in 0..20 {
        assert_eq!(
            Message::decode(&bytes[..len]),
            Err(DecodeError::TruncatedHeader)
        );
    }
}

#[test]
fn truncated_body() {
    let bytes = allocate().encode().unwrap();
    assert_eq!(
        Message::decode(&bytes[..bytes.len() - 4]),
        Err(DecodeError::LengthMismatch {
            declared: bytes.len() - 20,
            actual: bytes.len() - 24
        })
    );
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4]);
    assert!(matches!(
        Message::decode(&longer),
        Err(DecodeError::LengthMismatch { .. })
    ));
}

#[test]
fn bad_magic_cookie() {
    let mut bytes = allocate().encode().unwrap();
    bytes[4] ^= 1;
    assert_eq!(Message::decode(&bytes), Err(DecodeError::BadMagicCookie));
    assert_eq!(classify(&bytes), PacketKind::Other);
}

#[test]
fn top_bits_set() {
    let mut bytes = allocate().encode().unwrap();
    bytes[0] |= 0x80;
    assert_eq!(Message::decode(&bytes), Err(DecodeError::NotStun));
}

#[test]
fn length_not_a_multiple_of_4() {
    let mut bytes = allocate().encode().unwrap();
    bytes[3] += 1;
    bytes.push(0);
    assert!(matches!(
        Message::decode(&bytes),
        Err(DecodeError::UnalignedLength(_))
    ));
}

#[test]
fn attribute_running_past_the_end() {
    let mut bytes = Message::new(Method::BINDING, Class::Request, TID)
        .with(Attribute::Software("rookery".into()))
        .encode()
        .unwrap();
    // SOFTWARE claims 64 bytes where 8 (7 and padding) follow.
    bytes[22..24].copy_from_slice(&64u16.to_be_bytes());
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::AttributeOverrun { offset: 20 })
    );
    // An attribute header announcing a value that is not there at all.
    let mut cut = Message::new(Method::BINDING, Class::Request, TID)
        .encode()
        .unwrap();
    cut.extend_from_slice(&[0x80, 0x22, 0, 4]);
    fix_length(&mut cut);
    assert_eq!(
        Message::decode(&cut),
        Err(DecodeError::AttributeOverrun { offset: 20 })
    );
}

#[test]
fn malformed_attribute_values() {
    let cases: &[(u16, &[u8])] = &[
        (kind::XOR_MAPPED_ADDRESS, &[0, 3, 0, 1, 1, 2, 3, 4]), // family 3
        (kind::XOR_PEER_ADDRESS, &[0, 1, 0, 1, 1, 2, 3]),      // IPv4 with 3 bytes
        (kind::MAPPED_ADDRESS, &[0, 2, 0, 1, 1, 2, 3, 4]),     // IPv6 with 4 bytes
        (kind::USERNAME, &[0xff, 0xfe]),                       // not UTF-8
        (kind::MESSAGE_INTEGRITY, &[0; 16]),
        (kind::MESSAGE_INTEGRITY_SHA256, &[0; 12]),
        (kind::FINGERPRINT, &[0; 8]),
        (kind::ERROR_CODE, &[0, 0, 7, 0]),      // class 7
        (kind::ERROR_CODE, &[0, 0, 4, 100]),    // number 100
        (kind::UNKNOWN_ATTRIBUTES, &[0, 1, 0]), // odd length
        (kind::LIFETIME, &[0, 0, 1]),
        (kind::CHANNEL_NUMBER, &[0x40, 0]),
        (kind::REQUESTED_TRANSPORT, &[17]),
        (kind::DONT_FRAGMENT, &[0, 0, 0, 0]),
        (kind::EVEN_PORT, &[0x80, 0, 0, 0]),
        (kind::RESERVATION_TOKEN, &[0; 4]),
        (kind::USERHASH, &[0; 16]),
        (kind::PASSWORD_ALGORITHM, &[0, 1, 0, 8, 0, 0, 0, 0]), // parameters past the end
    ];
    for (attribute_kind, value) in cases {
        let message = Message::new(Method::BINDING, Class::Request, TID).with(Attribute::Unknown {
            kind: *attribute_kind,
            value: value.to_vec(),
        });
        let bytes = message.encode().unwrap();
        assert!(
            matches!(Message::decode(&bytes), Err(DecodeError::BadAttribute { kind, .. }) if kind == *attribute_kind),
            "{attribute_kind:#06x} {value:?}"
        );
    }
    let long_username = Attribute::Username("a".repeat(509));
    let bytes = Message::new(Method::BINDING, Class::Request, TID)
        .with(long_username)
        .encode()
        .unwrap();
    assert!(matches!(
        Message::decode(&bytes),
        Err(DecodeError::BadAttribute { .. })
    ));
}

#[test]
fn error_codes_outside_300_to_699_do_not_encode() {
    for code in [0, 299, 700, 999] {
        let message = Message::new(Method::ALLOCATE, Class::Error, TID)
            .with(Attribute::ErrorCode(ErrorCode::new(code)));
        assert_eq!(message.encode(), Err(EncodeError::BadErrorCode(code)));
    }
    let too_long =
        Message::new(Method::SEND, Class::Indication, TID).with(Attribute::Data(vec![0; 70_000]));
    assert_eq!(
        too_long.encode(),
        Err(EncodeError::AttributeTooLong { kind: kind::DATA })
    );
    let too_many = Message::new(Method::SEND, Class::Indication, TID)
        .with(Attribute::Data(vec![0; 40_000]))
        .with(Attribute::Data(vec![0; 40_000]));
    assert_eq!(too_many.encode(), Err(EncodeError::MessageTooLong));
}

#[test]
fn bad_fingerprint() {
    let mut bytes = signed(&allocate(), b"key");
    assert!(Message::decode(&bytes).is_ok());
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(Message::decode(&bytes), Err(DecodeError::BadFingerprint));
    // A flipped bit anywhere in the body is caught too.
    let mut bytes = signed(&allocate(), b"key");
    bytes[25] ^= 1;
    assert_eq!(Message::decode(&bytes), Err(DecodeError::BadFingerprint));
}

#[test]
fn fingerprint_not_last() {
    let mut bytes = allocate().encode().unwrap();
    append_fingerprint(&mut bytes).unwrap();
    bytes.extend_from_slice(&[0x80, 0x22, 0, 0]);
    fix_length(&mut bytes);
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::FingerprintNotLast)
    );
}

#[test]
fn wrong_integrity() {
    let bytes = signed(&allocate(), b"right key");
    assert_eq!(verify_message_integrity(&bytes, b"right key"), Ok(()));
    assert_eq!(
        verify_message_integrity(&bytes, b"wrong key"),
        Err(IntegrityError::Mismatch)
    );
    // The tag covers the body: change a byte and fix the fingerprint up, and the check fails.
    let mut tampered = allocate();
    tampered.attributes[0] = Attribute::RequestedTransport(6);
    let mut bytes = tampered.encode().unwrap();
    let original = signed(&allocate(), b"right key");
    let tag_at = bytes.len();
    bytes.extend_from_slice(&original[tag_at..tag_at + 24]);
    fix_length(&mut bytes);
    assert_eq!(
        verify_message_integrity(&bytes, b"right key"),
        Err(IntegrityError::Mismatch)
    );
    // No MESSAGE-INTEGRITY at all.
    let unsigned = allocate().encode().unwrap();
    assert_eq!(
        verify_message_integrity(&unsigned, b"right key"),
        Err(IntegrityError::Missing)
    );
}

#[test]
fn sha256_integrity_and_its_truncation() {
    let mut bytes = allocate().encode().unwrap();
    append_message_integrity_sha256(&mut bytes, b"key").unwrap();
    assert_eq!(verify_message_integrity_sha256(&bytes, b"key"), Ok(()));
    assert_eq!(
        verify_message_integrity_sha256(&bytes, b"other"),
        Err(IntegrityError::Mismatch)
    );
    // A sender may truncate the tag to 16 bytes, computing it with the length field counting the truncated
    // attribute (RFC 8489 §14.6); such a tag checks out.
    let mut truncated = allocate().encode().unwrap();
    let length = (truncated.len() - 20 + 4 + 16) as u16;
    truncated[2..4].copy_from_slice(&length.to_be_bytes());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"key").unwrap();
    mac.update(&truncated);
    let tag = mac.finalize().into_bytes();
    truncated.extend_from_slice(&[0x00, 0x1C, 0, 16]);
    truncated.extend_from_slice(&tag[..16]);
    assert!(Message::decode(&truncated).is_ok());
    assert_eq!(verify_message_integrity_sha256(&truncated, b"key"), Ok(()));
    assert_eq!(
        verify_message_integrity_sha256(&truncated, b"other"),
        Err(IntegrityError::Mismatch)
    );
    // Cutting a full tag down without recomputing it does not.
    let mut cut = bytes[..bytes.len() - 16].to_vec();
    let at = cut.len() - 16 - 2;
    cut[at..at + 2].copy_from_slice(&16u16.to_be_bytes());
    fix_length(&mut cut);
    assert_eq!(
        verify_message_integrity_sha256(&cut, b"key"),
        Err(IntegrityError::Mismatch)
    );
}

#[test]
fn attributes_after_integrity_are_ignored() {
    let mut bytes = allocate().encode().unwrap();
    append_message_integrity(&mut bytes, b"key").unwrap();
    bytes.extend_from_slice(&[0x80, 0x22, 0, 4, b'e', b'v', b'i', b'l']);
    fix_length(&mut bytes);
    let message = Message::decode(&bytes).unwrap();
    assert!(matches!(
        message.attributes.last(),
        Some(Attribute::MessageIntegrity(_))
    ));
    assert_eq!(verify_message_integrity(&bytes, b"key"), Ok(()));
}

#[test]
fn unknown_attributes_are_reported_by_comprehension() {
    let message = Message::new(Method::BINDING, Class::Request, TID)
        .with(Attribute::Unknown {
            kind: 0x7000,
            value: vec![1],
        })
        .with(Attribute::Unknown {
            kind: 0xC000,
            value: vec![],
        });
    let decoded = Message::decode(&message.encode().unwrap()).unwrap();
    assert_eq!(decoded.unknown_comprehension_required(), vec![0x7000]);
    let answer = Message::new(Method::BINDING, Class::Error, TID)
        .with(Attribute::ErrorCode(ErrorCode::new(
            error_codes::UNKNOWN_ATTRIBUTE,
        )))
        .with(Attribute::UnknownAttributes(
            decoded.unknown_comprehension_required(),
        ));
    let answer = Message::decode(&answer.encode().unwrap()).unwrap();
    assert_eq!(
        answer.attributes[0],
        Attribute::ErrorCode(ErrorCode {
            code: 420,
            reason: "Unknown Attribute".into()
        })
    );
}

#[test]
fn channel_data_errors() {
    assert_eq!(
        ChannelData::decode(&[0x40, 0, 0]),
        Err(ChannelDataError::TruncatedHeader)
    );
    for channel in [0x3FFFu16, 0x5000, 0x0001, 0xFFFF] {
        let mut bytes = channel.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(
            ChannelData::decode(&bytes),
            Err(ChannelDataError::ChannelOutOfRange(channel))
        );
    }
    assert_eq!(
        ChannelData::decode(&[0x40, 0x00, 0, 8, 1, 2, 3]),
        Err(ChannelDataError::Truncated {
            declared: 8,
            actual: 3
        })
    );
    assert_eq!(
        ChannelData::decode(&[0x40, 0x00, 0, 1, 1, 0, 0, 0, 0]),
        Err(ChannelDataError::TrailingBytes(4))
    );
    // Padding after the data is accepted and not part of the data.
    let frame = ChannelData::decode(&[0x4F, 0xFF, 0, 1, 9, 0, 0, 0]).unwrap();
    assert_eq!(
        frame,
        ChannelData {
            channel: 0x4FFF,
            data: &[9]
        }
    );
    assert_eq!(CHANNEL_NUMBERS, 0x4000..=0x4FFF);
}

#[test]
fn demultiplexing_and_stream_framing() {
    let stun = signed(&allocate(), b"key");
    assert_eq!(classify(&stun), PacketKind::Stun);
    assert_eq!(stream_frame_len(&stun), Some(stun.len()));
    let mut channel = Vec::new();
    ChannelData {
        channel: 0x4001,
        data: b"hello",
    }
    .encode(true, &mut channel)
    .unwrap();
    assert_eq!(channel.len(), 12);
    assert_eq!(classify(&channel), PacketKind::ChannelData);
    assert_eq!(stream_frame_len(&channel), Some(12));
    let mut unpadded = Vec::new();
    ChannelData {
        channel: 0x4001,
        data: b"hello",
    }
    .encode(false, &mut unpadded)
    .unwrap();
    assert_eq!(unpadded.len(), 9);
    // TLS, DTLS and RTP start with bytes of neither kind.
    for other in [&[0x16u8, 3, 1][..], &[0x80, 0], &[], &[0x00, 0x01, 0, 0]] {
        assert_eq!(classify(other), PacketKind::Other, "{other:?}");
        assert_eq!(stream_frame_len(other), None);
    }
    // Too few bytes of a STUN header to see the length yet.
    assert_eq!(stream_frame_len(&stun[..1]), None);
}

#[test]
fn rest_credentials() {
    let secret = b"s3cr3t/base64+text=";
    let made = make_rest_credentials(secret, 1_735_689_600, None);
    assert_eq!(made.username, "1735689600");
    assert_eq!(made.password, rest_password(secret, "1735689600"));
    assert_eq!(
        check_rest_credentials(secret, &made.username, &made.password, 1_735_689_000),
        Ok(())
    );
    assert_eq!(
        check_rest_credentials(secret, &made.username, &made.password, 1_735_689_600),
        Ok(())
    );
    assert_eq!(
        check_rest_credentials(secret, &made.username, &made.password, 1_735_689_601),
        Err(RestError::Expired)
    );
    assert_eq!(
        check_rest_credentials(secret, &made.username, "AAAA", 0),
        Err(RestError::WrongPassword)
    );
    assert_eq!(
        check_rest_credentials(b"other secret", &made.username, &made.password, 0),
        Err(RestError::WrongPassword)
    );
    for bad in [
        "",
        "alice",
        ":1735689600",
        "17356x",
        "99999999999999999999999",
    ] {
        assert_eq!(
            check_rest_credentials(secret, bad, "x", 0),
            Err(RestError::MalformedUsername),
            "{bad}"
        );
    }
    let with_user = make_rest_credentials(secret, 1_735_689_600, Some("alice"));
    assert_eq!(with_user.username, "1735689600:alice");
    assert_eq!(
        check_rest_credentials(secret, &with_user.username, &with_user.password, 0),
        Ok(())
    );
    // Another user's name with this password is refused.
    assert_eq!(
        check_rest_credentials(secret, "1735689600:bob", &with_user.password, 0),
        Err(RestError::WrongPassword)
    );
    // The key a TURN server checks MESSAGE-INTEGRITY with is the client's long-term key.
    assert_eq!(
        rest_long_term_key(secret, &made.username, "example.org", 0),
        Ok(long_term_key(&made.username, "example.org", &made.password).unwrap())
    );
    assert_eq!(
        rest_long_term_key(secret, &made.username, "example.org", u64::MAX),
        Err(RestError::Expired)
    );
}

#[test]
fn rest_password_is_base64_hmac_sha1_of_the_username() {
    // The widely published HMAC-SHA1 example: key "key" over "The quick brown fox jumps over the lazy dog" is
    // de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9, in standard base64 3nybhbi3iqa8ino29wqQcBydtNk=.
    assert_eq!(
        rest_password(b"key", "The quick brown fox jumps over the lazy dog"),
        "3nybhbi3iqa8ino29wqQcBydtNk="
    );
}

#[test]
fn nonces() {
    let key = b"server nonce key";
    let nonce = nonce::issue(key, 1000, b"192.0.2.1:5000");
    assert_eq!(nonce.len(), 48);
    assert_eq!(nonce::check(key, &nonce, b"192.0.2.1:5000", 999), Ok(()));
    assert_eq!(nonce::check(key, &nonce, b"192.0.2.1:5000", 1000), Ok(()));
    assert_eq!(
        nonce::check(key, &nonce, b"192.0.2.1:5000", 1001),
        Err(NonceError::Expired)
    );
    assert_eq!(
        nonce::check(key, &nonce, b"192.0.2.2:5000", 999),
        Err(NonceError::Forged)
    );
    assert_eq!(
        nonce::check(b"another key", &nonce, b"192.0.2.1:5000", 999),
        Err(NonceError::Forged)
    );
    // Pushing the expiry forward breaks the MAC.
    let forged = format!("{:016x}{}", 5000u64, &nonce[16..]);
    assert_eq!(
        nonce::check(key, &forged, b"192.0.2.1:5000", 999),
        Err(NonceError::Forged)
    );
    for bad in [
        "",
        "f//499k954d6OL34oL9FSTvy64sA",
        &"z".repeat(48),
        &nonce[..47],
        "é".repeat(24).as_str(),
    ] {
        assert_eq!(
            nonce::check(key, bad, b"192.0.2.1:5000", 0),
            Err(NonceError::Malformed),
            "{bad}"
        );
    }
}
