//! Sans-IO STUN (RFC 8489) and TURN (RFC 8656) codec, message integrity and credentials.
//!
//! Bytes and time come in, values go out: nothing here owns a socket or reads a clock. The relay
//! (`rookery-turn`) reads a datagram, asks [`classify`] what it is, decodes it with [`Message::decode`] or
//! [`ChannelData::decode`], checks it with [`integrity`] and the keys of [`credentials`], and encodes its answers
//! with [`Message::encode`] followed by [`integrity::append_message_integrity`] and
//! [`integrity::append_fingerprint`].
#![forbid(unsafe_code)]

pub mod attribute;
pub mod channel_data;
pub mod credentials;
pub mod fuzzing;
pub mod integrity;
pub mod message;
pub mod nonce;

pub use attribute::{AddressFamily, Attribute, ErrorCode, PasswordAlgorithm};
pub use channel_data::{ChannelData, ChannelDataError};
pub use message::{Class, DecodeError, EncodeError, MAGIC_COOKIE, Message, Method, TransactionId};

/// What the first bytes of a datagram or of a TCP stream say it is (RFC 8656 §12, RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// The two top bits are zero and the magic cookie is in place: a STUN message.
    Stun,
    /// The first byte is 0x40–0x4F: a TURN ChannelData message (channels 0x4000–0x4FFF).
    ChannelData,
    /// Anything else (or too few bytes to tell), which a TURN server drops.
    Other,
}

/// Tells STUN from ChannelData from anything else by the first bytes: 8 for STUN (type, length and the magic
/// cookie), 1 for ChannelData.
pub fn classify(bytes: &[u8]) -> PacketKind {
    match bytes.first() {
        Some(0x40..=0x4F) => PacketKind::ChannelData,
        Some(first) if first & 0xC0 == 0 && message::has_magic_cookie(bytes) => PacketKind::Stun,
        _ => PacketKind::Other,
    }
}

/// How many bytes the next STUN message or ChannelData frame on a TCP (or TLS) stream takes, padding included,
/// once enough of it has arrived to tell (RFC 8656 §12.5); `None` when more bytes are needed or when the stream
/// holds neither, which [`classify`] tells apart.
pub fn stream_frame_len(bytes: &[u8]) -> Option<usize> {
    match classify(bytes) {
        PacketKind::Stun => message::frame_len(bytes),
        PacketKind::ChannelData => channel_data::stream_frame_len(bytes),
        PacketKind::Other => None,
    }
}

/// Error codes (RFC 8489 §14.8, RFC 8656 §19) with the reason phrases the RFCs suggest.
pub mod error_codes {
    pub const TRY_ALTERNATE: u16 = 300;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHENTICATED: u16 = 401;
    pub const FORBIDDEN: u16 = 403;
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    pub const ALLOCATION_MISMATCH: u16 = 437;
    pub const STALE_NONCE: u16 = 438;
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    pub const WRONG_CREDENTIALS: u16 = 441;
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: u16 = 442;
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    pub const SERVER_ERROR: u16 = 500;
    pub const INSUFFICIENT_CAPACITY: u16 = 508;

    /// The RFC's reason phrase for `code`, or an empty one for codes it does not name.
    pub fn reason(code: u16) -> &'static str {
        match code {
            TRY_ALTERNATE => "Try Alternate",
            BAD_REQUEST => "Bad Request",
            UNAUTHENTICATED => "Unauthenticated",
            FORBIDDEN => "Forbidden",
            UNKNOWN_ATTRIBUTE => "Unknown Attribute",
            ALLOCATION_MISMATCH => "Allocation Mismatch",
            STALE_NONCE => "Stale Nonce",
            ADDRESS_FAMILY_NOT_SUPPORTED => "Address Family not Supported",
            WRONG_CREDENTIALS => "Wrong Credentials",
            UNSUPPORTED_TRANSPORT_PROTOCOL => "Unsupported Transport Protocol",
            PEER_ADDRESS_FAMILY_MISMATCH => "Peer Address Family Mismatch",
            ALLOCATION_QUOTA_REACHED => "Allocation Quota Reached",
            SERVER_ERROR => "Server Error",
            INSUFFICIENT_CAPACITY => "Insufficient Capacity",
            _ => "",
        }
    }
}
