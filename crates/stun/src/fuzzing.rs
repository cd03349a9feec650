//! The entry point shared by the cargo-fuzz target `fuzz/fuzz_targets/stun.rs` and the stable test that replays
//! its corpus.
//!
//! Not part of the API: it panics when it finds a bug, which is what a fuzzer wants.

use crate::{Attribute, ChannelData, Message, PacketKind, classify, integrity, stream_frame_len};

/// Decodes any bytes as STUN and as ChannelData; whatever decodes must encode again to something that decodes to
/// the same value, and nothing may panic.
pub fn decode(data: &[u8]) {
    let _ = classify(data);
    if let Some(len) = stream_frame_len(data) {
        assert!(len >= 4, "a frame has a header");
    }
    if let Ok(message) = Message::decode(data) {
        assert_eq!(classify(data), PacketKind::Stun);
        // Integrity checks of a decoded message fail cleanly with any key.
        let _ = integrity::verify_message_integrity(data, b"key");
        let _ = integrity::verify_message_integrity_sha256(data, b"key");
        // A FINGERPRINT covers the exact bytes, padding included, so compare without it.
        let mut unsigned = message.clone();
        unsigned
            .attributes
            .retain(|a| !matches!(a, Attribute::Fingerprint(_)));
        let encoded = unsigned
            .encode()
            .expect("a decoded message fits its length field");
        let decoded = Message::decode(&encoded).expect("an encoded message decodes");
        assert_eq!(decoded, unsigned);
        // Appending a FINGERPRINT (when the length field has room) gives a message that checks out.
        let mut signed = encoded;
        if integrity::append_fingerprint(&mut signed).is_ok() {
            let resigned = Message::decode(&signed).expect("a fresh FINGERPRINT matches");
            assert_eq!(
                resigned.attributes[..unsigned.attributes.len()],
                unsigned.attributes[..]
            );
        }
    }
    if let Ok(frame) = ChannelData::decode(data) {
        assert_eq!(classify(data), PacketKind::ChannelData);
        for pad in [false, true] {
            let mut encoded = Vec::new();
            frame.encode(pad, &mut encoded).expect("decoded data fits");
            assert_eq!(ChannelData::decode(&encoded), Ok(frame));
        }
    }
}
