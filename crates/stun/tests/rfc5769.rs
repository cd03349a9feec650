//! The test vectors of RFC 5769 (and RFC 8489 Appendix B.1): each decodes, verifies and encodes again byte for byte.

use std::net::SocketAddr;

use rookery_stun::credentials::{long_term_key, long_term_key_sha256, short_term_key, userhash};
use rookery_stun::integrity::{
    IntegrityError, append_fingerprint, append_message_integrity, verify_message_integrity,
    verify_message_integrity_sha256,
};
use rookery_stun::{Attribute, Class, Message, Method, PasswordAlgorithm, TransactionId};

const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1: a Binding request with SOFTWARE, ICE's PRIORITY and ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY
/// and FINGERPRINT; padding is spaces.
const SAMPLE_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae\
    802200105354554e207465737420636c69656e74\
    002400046e0001ff\
    80290008932ff9b151263b36\
    000600096576746a3a68367659202020\
    000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2\
    80280004e57a3bcf";

/// RFC 5769 §2.2: a Binding success response to 192.0.2.1:32853.
const SAMPLE_IPV4_RESPONSE: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae\
    8022000b7465737420766563746f7220\
    002000080001a147e112a643\
    000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7\
    80280004c07d4c96";

/// RFC 5769 §2.3: the same to [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const SAMPLE_IPV6_RESPONSE: &str = "010100482112a442b7e7a701bc34d686fa87dfae\
    8022000b7465737420766563746f7220\
    002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9\
    00080014a382954e4be67bf11784c97c8292c275bfe3ed41\
    80280004c8fb0b4c";

/// RFC 5769 §2.4: a request with long-term authentication; padding is zeros.
const SAMPLE_LONG_TERM_REQUEST: &str = "000100602112a44278ad3433c6ad72c029da412e\
    00060012e3839ee38388e383aae38383e382afe382b90000\
    0015001c662f2f3439396b39353464364f4c33346f4c39465354767936347341\
    0014000b6578616d706c652e6f726700\
    00080014f67024656dd64a3e02b8e0712e85c9a28ca89666";

/// RFC 8489 Appendix B.1: USERHASH, PASSWORD-ALGORITHM and MESSAGE-INTEGRITY-SHA256.
const SAMPLE_SHA256_REQUEST: &str = "000100902112a44278ad3433c6ad72c029da412e\
    001e00204a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704\
    001500296f624d61744a6f73324141414366\
    2f2f3439396b39353464364f4c33346f4c39465354767936347341000000\
    0014000b6578616d706c652e6f726700\
    001d000400020000\
    001c0020b5c7bf005b6c52a21c51c5e892f81924136296cb927c43149309278cc6518e65";

/// The username of §2.4 and B.1 (Japanese katakana for "matrix").
const USERNAME: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
/// The password of §2.4 before SASLprep, which maps it to "TheMatrIX".
const PASSWORD: &str = "The\u{00AD}M\u{00AA}tr\u{2168}";
const REALM: &str = "example.org";

fn bytes(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("valid hex")
}

fn tid(hex_text: &str) -> TransactionId {
    TransactionId(bytes(hex_text).try_into().expect("12 bytes"))
}

#[test]
fn sample_request() {
    let wire = bytes(SAMPLE_REQUEST);
    let message = Message::decode(&wire).expect("decodes");
    assert_eq!(message.method, Method::BINDING);
    assert_eq!(message.class, Class::Request);
    assert_eq!(message.transaction_id, tid("b7e7a701bc34d686fa87dfae"));
    assert_eq!(
        message.attributes[0],
        Attribute::Software("STUN test client".into())
    );
    assert_eq!(message.username(), Some("evtj:h6vY"));
    // PRIORITY (0x0024) is comprehension-required and not a STUN/TURN attribute: a server would answer 420.
    assert_eq!(message.unknown_comprehension_required(), vec![0x0024]);

    let key = short_term_key(SHORT_TERM_PASSWORD).unwrap();
    assert_eq!(verify_message_integrity(&wire, &key), Ok(()));
    assert_eq!(
        verify_message_integrity(&wire, b"wrong"),
        Err(IntegrityError::Mismatch)
    );
    assert_eq!(message.encode_padded_with(b' ').unwrap(), wire);
}

#[test]
fn sample_request_signed_afresh() {
    // Encoding the attributes before MESSAGE-INTEGRITY and signing again gives the vector's bytes back: the
    // integrity and fingerprint computations, not only their checks, follow the RFC.
    let wire = bytes(SAMPLE_REQUEST);
    let mut message = Message::decode(&wire).unwrap();
    message.attributes.retain(|a| {
        !matches!(
            a,
            Attribute::MessageIntegrity(_) | Attribute::Fingerprint(_)
        )
    });
    let mut signed = message.encode_padded_with(b' ').unwrap();
    append_message_integrity(&mut signed, &short_term_key(SHORT_TERM_PASSWORD).unwrap()).unwrap();
    append_fingerprint(&mut signed).unwrap();
    assert_eq!(signed, wire);
}

fn check_response(vector: &str, mapped: &str) {
    let wire = bytes(vector);
    let message = Message::decode(&wire).expect("decodes");
    assert_eq!(message.class, Class::Success);
    assert_eq!(
        message.attributes[0],
        Attribute::Software("test vector".into())
    );
    let expected: SocketAddr = mapped.parse().unwrap();
    assert_eq!(message.attributes[1], Attribute::XorMappedAddress(expected));
    let key = short_term_key(SHORT_TERM_PASSWORD).unwrap();
    assert_eq!(verify_message_integrity(&wire, &key), Ok(()));
    assert_eq!(message.encode_padded_with(b' ').unwrap(), wire);
}

#[test]
fn sample_ipv4_response() {
    check_response(SAMPLE_IPV4_RESPONSE, "192.0.2.1:32853");
}

#[test]
fn sample_ipv6_response() {
    check_response(
        SAMPLE_IPV6_RESPONSE,
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
    );
}

#[test]
fn sample_long_term_request() {
    let wire = bytes(SAMPLE_LONG_TERM_REQUEST);
    let message = Message::decode(&wire).expect("decodes");
    assert_eq!(message.transaction_id, tid("78ad3433c6ad72c029da412e"));
    assert_eq!(message.username(), Some(USERNAME));
    assert_eq!(message.nonce(), Some("f//499k954d6OL34oL9FSTvy64sA"));
    assert_eq!(message.realm(), Some(REALM));

    let key = long_term_key(USERNAME, REALM, PASSWORD).expect("SASLprep maps the password");
    assert_eq!(key, long_term_key(USERNAME, REALM, "TheMatrIX").unwrap());
    assert_eq!(verify_message_integrity(&wire, &key), Ok(()));
    let other = long_term_key(USERNAME, REALM, "TheMatrix").unwrap();
    assert_eq!(
        verify_message_integrity(&wire, &other),
        Err(IntegrityError::Mismatch)
    );
    assert_eq!(message.encode().unwrap(), wire);
}

#[test]
fn sample_sha256_request() {
    let wire = bytes(SAMPLE_SHA256_REQUEST);
    let message = Message::decode(&wire).expect("decodes");
    assert_eq!(
        message.attributes[0],
        Attribute::Userhash(userhash(USERNAME, REALM))
    );
    assert_eq!(
        message.nonce(),
        Some("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
    );
    assert_eq!(
        message.attributes[3],
        Attribute::PasswordAlgorithm(PasswordAlgorithm {
            id: PasswordAlgorithm::SHA256,
            parameters: vec![]
        })
    );
    let key = long_term_key_sha256(USERNAME, REALM, PASSWORD).unwrap();
    assert_eq!(verify_message_integrity_sha256(&wire, &key), Ok(()));
    assert_eq!(
        verify_message_integrity(&wire, &key),
        Err(IntegrityError::Missing)
    );
    assert_eq!(message.encode().unwrap(), wire);
}
