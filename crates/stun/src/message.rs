//! STUN messages (RFC 8489 §5): the 20-byte header and the attribute list, decoded with every length check.

use crate::attribute::{self, Attribute, kind};
use crate::integrity;

/// The fixed value in bytes 4–8 of every STUN message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Bytes in the message header.
pub const HEADER_LEN: usize = 20;
/// Bytes in an attribute header (type and length).
pub(crate) const ATTRIBUTE_HEADER_LEN: usize = 4;

/// The 96-bit transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

/// The message class (RFC 8489 §5): two bits spread over the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// A 12-bit STUN method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(u16);

impl Method {
    pub const BINDING: Self = Self(0x001);
    pub const ALLOCATE: Self = Self(0x003);
    pub const REFRESH: Self = Self(0x004);
    pub const SEND: Self = Self(0x006);
    pub const DATA: Self = Self(0x007);
    pub const CREATE_PERMISSION: Self = Self(0x008);
    pub const CHANNEL_BIND: Self = Self(0x009);

    /// The method numbered `value`, or `None` above the 12 bits a method has.
    pub fn new(value: u16) -> Option<Self> {
        (value <= 0x0FFF).then_some(Self(value))
    }

    pub fn value(self) -> u16 {
        self.0
    }
}

/// What is wrong with bytes that do not decode as a STUN message. A server drops such a datagram, or answers 400
/// when it got far enough to know it was a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("fewer than the 20 bytes of a STUN header")]
    TruncatedHeader,
    #[error("the two top bits of the message type are not zero")]
    NotStun,
    #[error("the magic cookie is wrong")]
    BadMagicCookie,
    #[error("the message length {0} is not a multiple of 4")]
    UnalignedLength(u16),
    #[error("the header announces {declared} bytes of attributes but {actual} follow")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("the attribute at offset {offset} runs past the end of the message")]
    AttributeOverrun { offset: usize },
    #[error("attribute {kind:#06x} is malformed: {reason}")]
    BadAttribute { kind: u16, reason: &'static str },
    #[error("an attribute follows FINGERPRINT")]
    FingerprintNotLast,
    #[error("the FINGERPRINT does not match the message")]
    BadFingerprint,
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("attribute {kind:#06x} is longer than an attribute may be")]
    AttributeTooLong { kind: u16 },
    #[error("the message is longer than the 16-bit length field allows")]
    MessageTooLong,
    #[error("error code {0} is outside 300-699")]
    BadErrorCode(u16),
}

/// A decoded STUN message. Attributes keep their order; when one occurs twice, the first counts
/// (RFC 8489 §14), which is what the accessors return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub method: Method,
    pub class: Class,
    pub transaction_id: TransactionId,
    pub attributes: Vec<Attribute>,
}

impl Message {
    pub fn new(method: Method, class: Class, transaction_id: TransactionId) -> Self {
        Self {
            method,
            class,
            transaction_id,
            attributes: Vec::new(),
        }
    }

    /// Adds an attribute; for building messages in one expression.
    pub fn with(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// Decodes one whole STUN message: `bytes` must hold exactly the header and the length it announces (a UDP
    /// datagram, or a frame cut by [`crate::stream_frame_len`]).
    ///
    /// Attributes after MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, and attributes
    /// after MESSAGE-INTEGRITY-SHA256 other than FINGERPRINT, are ignored as RFC 8489 §14.5/§14.6 require: they
    /// are not covered by the integrity check. A FINGERPRINT is checked here, since a message that fails it is not
    /// STUN at all (§14.7); integrity needs a key and is checked with [`crate::integrity`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header = Header::decode(bytes)?;
        let actual = bytes.len() - HEADER_LEN;
        if usize::from(header.length) != actual {
            return Err(DecodeError::LengthMismatch {
                declared: header.length.into(),
                actual,
            });
        }
        let mut attributes = Vec::new();
        let mut after_integrity = false;
        let mut after_integrity_sha256 = false;
        for raw in RawAttributes::new(bytes) {
            let raw = raw?;
            if raw.kind == kind::FINGERPRINT {
                if raw.end() != bytes.len() {
                    return Err(DecodeError::FingerprintNotLast);
                }
                let attribute = attribute::decode(raw.kind, raw.value, &header.transaction_id)?;
                // The header's length already counts the FINGERPRINT, as the RFC's computation wants, since it is last.
                if attribute != Attribute::Fingerprint(integrity::fingerprint(&bytes[..raw.offset]))
                {
                    return Err(DecodeError::BadFingerprint);
                }
                attributes.push(attribute);
                break;
            }
            let ignored = after_integrity_sha256
                || (after_integrity && raw.kind != kind::MESSAGE_INTEGRITY_SHA256);
            if ignored {
                continue;
            }
            after_integrity |= raw.kind == kind::MESSAGE_INTEGRITY;
            after_integrity_sha256 |= raw.kind == kind::MESSAGE_INTEGRITY_SHA256;
            attributes.push(attribute::decode(
                raw.kind,
                raw.value,
                &header.transaction_id,
            )?);
        }
        Ok(Self {
            method: header.method,
            class: header.class,
            transaction_id: header.transaction_id,
            attributes,
        })
    }

    /// Encodes the message with its attributes as they are, padding with zeros (RFC 8489 §14). To sign it, append
    /// MESSAGE-INTEGRITY and FINGERPRINT to the result with [`crate::integrity`] rather than listing them here.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.encode_padded_with(0)
    }

    /// Encodes with `padding` in the padding bytes. Only for reproducing messages from RFC 5389's time, which let
    /// senders pad with anything (RFC 5769's vectors pad with spaces); [`Message::encode`] is what to send.
    pub fn encode_padded_with(&self, padding: u8) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        out.extend_from_slice(&message_type(self.method, self.class).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0);
        for attribute in &self.attributes {
            attribute::encode(attribute, &self.transaction_id, padding, &mut out)?;
        }
        let length =
            u16::try_from(out.len() - HEADER_LEN).map_err(|_| EncodeError::MessageTooLong)?;
        set_length(&mut out, length);
        Ok(out)
    }

    /// The first attribute `pick` accepts, mapped.
    pub fn find<'a, T>(&'a self, pick: impl FnMut(&'a Attribute) -> Option<T>) -> Option<T> {
        self.attributes.iter().find_map(pick)
    }

    pub fn username(&self) -> Option<&str> {
        self.find(|a| match a {
            Attribute::Username(v) => Some(v.as_str()),
            _ => None,
        })
    }

    pub fn realm(&self) -> Option<&str> {
        self.find(|a| match a {
            Attribute::Realm(v) => Some(v.as_str()),
            _ => None,
        })
    }

    pub fn nonce(&self) -> Option<&str> {
        self.find(|a| match a {
            Attribute::Nonce(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// The comprehension-required attributes (types 0x0000–0x7FFF) this codec does not know, for the
    /// UNKNOWN-ATTRIBUTES of a 420 answer to a request (RFC 8489 §6.3.1.1); empty when it may be processed.
    pub fn unknown_comprehension_required(&self) -> Vec<u16> {
        self.attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::Unknown { kind, .. } if *kind < 0x8000 => Some(*kind),
                _ => None,
            })
            .collect()
    }
}

/// The message type: M11..M7 C1 M6..M4 C0 M3..M0 (RFC 8489 §5).
fn message_type(method: Method, class: Class) -> u16 {
    let m = method.0;
    let c: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::Success => 0b10,
        Class::Error => 0b11,
    };
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

/// Writes the message length field of an encoded message.
pub(crate) fn set_length(message: &mut [u8], length: u16) {
    message[2..4].copy_from_slice(&length.to_be_bytes());
}

/// The parts of the header a decoder needs.
pub(crate) struct Header {
    pub(crate) method: Method,
    pub(crate) class: Class,
    pub(crate) length: u16,
    pub(crate) transaction_id: TransactionId,
}

impl Header {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::TruncatedHeader);
        };
        let message_type = u16::from_be_bytes([header[0], header[1]]);
        if message_type & 0xC000 != 0 {
            return Err(DecodeError::NotStun);
        }
        if !has_magic_cookie(header) {
            return Err(DecodeError::BadMagicCookie);
        }
        let length = u16::from_be_bytes([header[2], header[3]]);
        if length % 4 != 0 {
            return Err(DecodeError::UnalignedLength(length));
        }
        let method = (message_type & 0x000F)
            | ((message_type >> 1) & 0x0070)
            | ((message_type >> 2) & 0x0F80);
        let class = match ((message_type >> 7) & 2) | ((message_type >> 4) & 1) {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        };
        let mut transaction_id = [0; 12];
        transaction_id.copy_from_slice(&header[8..20]);
        Ok(Self {
            method: Method(method),
            class,
            length,
            transaction_id: TransactionId(transaction_id),
        })
    }
}

pub(crate) fn has_magic_cookie(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(&MAGIC_COOKIE.to_be_bytes()[..])
}

/// Bytes of the STUN message at the start of `bytes` (header plus announced length), once its header is there.
pub(crate) fn frame_len(bytes: &[u8]) -> Option<usize> {
    let length = bytes.get(2..4)?;
    Some(HEADER_LEN + usize::from(u16::from_be_bytes([length[0], length[1]])))
}

/// One attribute as it lies in the message: where it starts and its value without padding.
pub(crate) struct RawAttribute<'a> {
    pub(crate) kind: u16,
    /// Offset of the attribute header in the message.
    pub(crate) offset: usize,
    pub(crate) value: &'a [u8],
}

impl RawAttribute<'_> {
    /// Offset just past the attribute and its padding.
    pub(crate) fn end(&self) -> usize {
        self.offset + ATTRIBUTE_HEADER_LEN + padded(self.value.len())
    }
}

/// Walks the attributes of a message whose header has been checked, with every bound checked: the one place that
/// finds attributes in bytes (decoding and integrity checks both use it).
pub(crate) struct RawAttributes<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> RawAttributes<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: HEADER_LEN,
            failed: false,
        }
    }
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = Result<RawAttribute<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.bytes.len() {
            return None;
        }
        let offset = self.offset;
        let overrun = Err(DecodeError::AttributeOverrun { offset });
        let Some(header) = self.bytes.get(offset..offset + ATTRIBUTE_HEADER_LEN) else {
            self.failed = true;
            return Some(overrun);
        };
        let kind = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value_start = offset + ATTRIBUTE_HEADER_LEN;
        let end = value_start + padded(length);
        if end > self.bytes.len() {
            self.failed = true;
            return Some(overrun);
        }
        self.offset = end;
        Some(Ok(RawAttribute {
            kind,
            offset,
            value: &self.bytes[value_start..value_start + length],
        }))
    }
}

/// `length` rounded up to a multiple of 4.
pub(crate) fn padded(length: usize) -> usize {
    length.div_ceil(4) * 4
}
