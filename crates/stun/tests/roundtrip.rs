//! Property tests: whatever the codec encodes, it decodes back to the same value, signed or not.

use std::net::{IpAddr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;
use rookery_stun::integrity::{
    append_fingerprint, append_message_integrity, append_message_integrity_sha256,
    verify_message_integrity, verify_message_integrity_sha256,
};
use rookery_stun::{
    AddressFamily, Attribute, ChannelData, Class, ErrorCode, Message, Method, PasswordAlgorithm,
    TransactionId,
};

fn address() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
    ]
}

fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(".{{0,{max_chars}}}")).unwrap()
}

fn family() -> impl Strategy<Value = AddressFamily> {
    prop_oneof![
        Just(AddressFamily::V4),
        Just(AddressFamily::V6),
        (3u8..).prop_map(AddressFamily::Other)
    ]
}

fn algorithm() -> impl Strategy<Value = PasswordAlgorithm> {
    (any::<u16>(), vec(any::<u8>(), 0..8))
        .prop_map(|(id, parameters)| PasswordAlgorithm { id, parameters })
}

/// Any attribute but the three integrity ones, which are appended by signing.
fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        address().prop_map(Attribute::MappedAddress),
        address().prop_map(Attribute::XorMappedAddress),
        address().prop_map(Attribute::XorPeerAddress),
        address().prop_map(Attribute::XorRelayedAddress),
        address().prop_map(Attribute::AlternateServer),
        text(100).prop_map(Attribute::Username),
        text(127).prop_map(Attribute::Realm),
        text(127).prop_map(Attribute::Nonce),
        text(127).prop_map(Attribute::Software),
        any::<[u8; 32]>().prop_map(Attribute::Userhash),
        (3u16..=6, 0u16..=99, text(60)).prop_map(|(class, number, reason)| Attribute::ErrorCode(
            ErrorCode {
                code: class * 100 + number,
                reason
            }
        )),
        vec(algorithm(), 0..4).prop_map(Attribute::PasswordAlgorithms),
        algorithm().prop_map(Attribute::PasswordAlgorithm),
        vec(any::<u16>(), 0..8).prop_map(Attribute::UnknownAttributes),
        any::<u16>().prop_map(Attribute::ChannelNumber),
        any::<u32>().prop_map(Attribute::Lifetime),
        vec(any::<u8>(), 0..300).prop_map(Attribute::Data),
        family().prop_map(Attribute::RequestedAddressFamily),
        family().prop_map(Attribute::AdditionalAddressFamily),
        any::<bool>().prop_map(Attribute::EvenPort),
        any::<u8>().prop_map(Attribute::RequestedTransport),
        Just(Attribute::DontFragment),
        any::<[u8; 8]>().prop_map(Attribute::ReservationToken),
        // Types this codec does not know: above the known comprehension-required and optional ones.
        (
            prop_oneof![0x0100u16..0x8000, 0x8100u16..=0xFFFF],
            vec(any::<u8>(), 0..20)
        )
            .prop_map(|(kind, value)| Attribute::Unknown { kind, value }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        0u16..=0x0FFF,
        prop_oneof![
            Just(Class::Request),
            Just(Class::Indication),
            Just(Class::Success),
            Just(Class::Error)
        ],
        any::<[u8; 12]>(),
        vec(attribute(), 0..12),
    )
        .prop_map(|(method, class, tid, attributes)| Message {
            method: Method::new(method).unwrap(),
            class,
            transaction_id: TransactionId(tid),
            attributes,
        })
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_message_back(message in message()) {
        let bytes = message.encode().unwrap();
        prop_assert_eq!(Message::decode(&bytes), Ok(message));
    }

    #[test]
    fn signed_messages_decode_and_verify(message in message(), key in vec(any::<u8>(), 1..40), sha256 in any::<bool>()) {
        let mut bytes = message.encode().unwrap();
        append_message_integrity(&mut bytes, &key).unwrap();
        if sha256 {
            append_message_integrity_sha256(&mut bytes, &key).unwrap();
        }
        append_fingerprint(&mut bytes).unwrap();
        let decoded = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded.attributes[..message.attributes.len()], &message.attributes[..]);
        prop_assert_eq!(decoded.attributes.len(), message.attributes.len() + 2 + usize::from(sha256));
        prop_assert_eq!(verify_message_integrity(&bytes, &key), Ok(()));
        if sha256 {
            prop_assert_eq!(verify_message_integrity_sha256(&bytes, &key), Ok(()));
        }
        // Re-encoding the decoded message, integrity attributes as values, gives the same bytes.
        prop_assert_eq!(decoded.encode().unwrap(), bytes);
    }

    #[test]
    fn channel_data_round_trips(channel in 0x4000u16..=0x4FFF, data in vec(any::<u8>(), 0..1500), pad in any::<bool>()) {
        let frame = ChannelData { channel, data: &data };
        let mut bytes = Vec::new();
        frame.encode(pad, &mut bytes).unwrap();
        prop_assert_eq!(ChannelData::decode(&bytes), Ok(frame));
        prop_assert_eq!(rookery_stun::stream_frame_len(&bytes), Some(4 + data.len().div_ceil(4) * 4));
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in vec(any::<u8>(), 0..200)) {
        rookery_stun::fuzzing::decode(&bytes);
    }

    #[test]
    fn decoding_any_stun_shaped_bytes_never_panics(body in vec(any::<u8>(), 0..50).prop_map(|mut b| { b.truncate(b.len() / 4 * 4); b }), first in 0u8..4, second in any::<u8>(), tid in any::<[u8; 12]>()) {
        let mut bytes = vec![first, second];
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&rookery_stun::MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(&tid);
        bytes.extend_from_slice(&body);
        rookery_stun::fuzzing::decode(&bytes);
    }
}
