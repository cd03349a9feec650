//! STUN attributes (RFC 8489 §14) and TURN's (RFC 8656 §18) as typed values.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::message::{DecodeError, EncodeError, MAGIC_COOKIE, TransactionId, padded};

/// Attribute types.
pub mod kind {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    pub const SOFTWARE: u16 = 0x8022;
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    pub const FINGERPRINT: u16 = 0x8028;
}

/// Byte limits on text attributes. USERNAME: "fewer than 509 bytes"; REALM, NONCE, SOFTWARE and the ERROR-CODE
/// reason: "fewer than 128 characters (which can be as long as 763 bytes)" (RFC 8489 §14).
const MAX_USERNAME_BYTES: usize = 508;
const MAX_TEXT_BYTES: usize = 763;

/// An address family as TURN's REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY carry it. Values other than
/// IPv4 and IPv6 are kept so that the server can answer 440 (RFC 8656 §7.2) rather than 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    V4,
    V6,
    Other(u8),
}

impl AddressFamily {
    fn from_byte(byte: u8) -> Self {
        match byte {
            0x01 => Self::V4,
            0x02 => Self::V6,
            other => Self::Other(other),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Self::V4 => 0x01,
            Self::V6 => 0x02,
            Self::Other(other) => other,
        }
    }
}

/// ERROR-CODE: a code from 300 to 699 (others do not encode) and a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: u16,
    pub reason: String,
}

impl ErrorCode {
    /// `code` with the RFC's reason phrase.
    pub fn new(code: u16) -> Self {
        Self {
            code,
            reason: crate::error_codes::reason(code).to_owned(),
        }
    }
}

/// A password algorithm (RFC 8489 §14.11, §18.5): 1 = MD5, 2 = SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordAlgorithm {
    pub id: u16,
    pub parameters: Vec<u8>,
}

impl PasswordAlgorithm {
    pub const MD5: u16 = 0x0001;
    pub const SHA256: u16 = 0x0002;
}

/// One attribute. Addresses of the XOR- attributes are held in the clear; the codec XORs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    MappedAddress(SocketAddr),
    XorMappedAddress(SocketAddr),
    Username(String),
    Userhash([u8; 32]),
    MessageIntegrity([u8; 20]),
    /// 16 to 32 bytes, a multiple of 4 (RFC 8489 §14.6 allows truncation).
    MessageIntegritySha256(Vec<u8>),
    Fingerprint(u32),
    ErrorCode(ErrorCode),
    Realm(String),
    Nonce(String),
    PasswordAlgorithms(Vec<PasswordAlgorithm>),
    PasswordAlgorithm(PasswordAlgorithm),
    UnknownAttributes(Vec<u16>),
    Software(String),
    AlternateServer(SocketAddr),
    /// Any 16-bit value: whether it lies in 0x4000–0x4FFF is for the server to check (400, RFC 8656 §11.2).
    ChannelNumber(u16),
    /// Seconds.
    Lifetime(u32),
    XorPeerAddress(SocketAddr),
    Data(Vec<u8>),
    XorRelayedAddress(SocketAddr),
    RequestedAddressFamily(AddressFamily),
    /// The R bit: reserve the next higher port too.
    EvenPort(bool),
    /// An IP protocol number (17 = UDP).
    RequestedTransport(u8),
    DontFragment,
    ReservationToken([u8; 8]),
    AdditionalAddressFamily(AddressFamily),
    /// An attribute this codec does not know, kept as it came.
    Unknown {
        kind: u16,
        value: Vec<u8>,
    },
}

impl Attribute {
    /// The attribute type.
    pub fn kind(&self) -> u16 {
        match self {
            Self::MappedAddress(_) => kind::MAPPED_ADDRESS,
            Self::XorMappedAddress(_) => kind::XOR_MAPPED_ADDRESS,
            Self::Username(_) => kind::USERNAME,
            Self::Userhash(_) => kind::USERHASH,
            Self::MessageIntegrity(_) => kind::MESSAGE_INTEGRITY,
            Self::MessageIntegritySha256(_) => kind::MESSAGE_INTEGRITY_SHA256,
            Self::Fingerprint(_) => kind::FINGERPRINT,
            Self::ErrorCode(_) => kind::ERROR_CODE,
            Self::Realm(_) => kind::REALM,
            Self::Nonce(_) => kind::NONCE,
            Self::PasswordAlgorithms(_) => kind::PASSWORD_ALGORITHMS,
            Self::PasswordAlgorithm(_) => kind::PASSWORD_ALGORITHM,
            Self::UnknownAttributes(_) => kind::UNKNOWN_ATTRIBUTES,
            Self::Software(_) => kind::SOFTWARE,
            Self::AlternateServer(_) => kind::ALTERNATE_SERVER,
            Self::ChannelNumber(_) => kind::CHANNEL_NUMBER,
            Self::Lifetime(_) => kind::LIFETIME,
            Self::XorPeerAddress(_) => kind::XOR_PEER_ADDRESS,
            Self::Data(_) => kind::DATA,
            Self::XorRelayedAddress(_) => kind::XOR_RELAYED_ADDRESS,
            Self::RequestedAddressFamily(_) => kind::REQUESTED_ADDRESS_FAMILY,
            Self::EvenPort(_) => kind::EVEN_PORT,
            Self::RequestedTransport(_) => kind::REQUESTED_TRANSPORT,
            Self::DontFragment => kind::DONT_FRAGMENT,
            Self::ReservationToken(_) => kind::RESERVATION_TOKEN,
            Self::AdditionalAddressFamily(_) => kind::ADDITIONAL_ADDRESS_FAMILY,
            Self::Unknown { kind, .. } => *kind,
        }
    }
}

/// Decodes the value of an attribute of type `kind`.
pub(crate) fn decode(
    kind: u16,
    value: &[u8],
    tid: &TransactionId,
) -> Result<Attribute, DecodeError> {
    let bad = |reason| DecodeError::BadAttribute { kind, reason };
    let attribute = match kind {
        kind::MAPPED_ADDRESS => Attribute::MappedAddress(address(value, None).ok_or(bad(ADDRESS))?),
        kind::XOR_MAPPED_ADDRESS => {
            Attribute::XorMappedAddress(address(value, Some(tid)).ok_or(bad(ADDRESS))?)
        }
        kind::XOR_PEER_ADDRESS => {
            Attribute::XorPeerAddress(address(value, Some(tid)).ok_or(bad(ADDRESS))?)
        }
        kind::XOR_RELAYED_ADDRESS => {
            Attribute::XorRelayedAddress(address(value, Some(tid)).ok_or(bad(ADDRESS))?)
        }
        kind::ALTERNATE_SERVER => {
            Attribute::AlternateServer(address(value, None).ok_or(bad(ADDRESS))?)
        }
        kind::USERNAME => Attribute::Username(text(value, MAX_USERNAME_BYTES).ok_or(bad(TEXT))?),
        kind::REALM => Attribute::Realm(text(value, MAX_TEXT_BYTES).ok_or(bad(TEXT))?),
        kind::NONCE => Attribute::Nonce(text(value, MAX_TEXT_BYTES).ok_or(bad(TEXT))?),
        kind::SOFTWARE => Attribute::Software(text(value, MAX_TEXT_BYTES).ok_or(bad(TEXT))?),
        kind::USERHASH => Attribute::Userhash(value.try_into().map_err(|_| bad(LENGTH))?),
        kind::MESSAGE_INTEGRITY => {
            Attribute::MessageIntegrity(value.try_into().map_err(|_| bad(LENGTH))?)
        }
        kind::MESSAGE_INTEGRITY_SHA256 => {
            if !(16..=32).contains(&value.len()) || !value.len().is_multiple_of(4) {
                return Err(bad(LENGTH));
            }
            Attribute::MessageIntegritySha256(value.to_vec())
        }
        kind::FINGERPRINT => Attribute::Fingerprint(u32::from_be_bytes(
            value.try_into().map_err(|_| bad(LENGTH))?,
        )),
        kind::ERROR_CODE => {
            Attribute::ErrorCode(error_code(value).ok_or(bad("not a code 300-699 and a reason"))?)
        }
        kind::UNKNOWN_ATTRIBUTES => {
            if !value.len().is_multiple_of(2) {
                return Err(bad(LENGTH));
            }
            Attribute::UnknownAttributes(
                value
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            )
        }
        kind::PASSWORD_ALGORITHM => {
            let (algorithm, rest) = password_algorithm(value).ok_or(bad(LENGTH))?;
            if !rest.is_empty() {
                return Err(bad(LENGTH));
            }
            Attribute::PasswordAlgorithm(algorithm)
        }
        kind::PASSWORD_ALGORITHMS => {
            let mut algorithms = Vec::new();
            let mut rest = value;
            while !rest.is_empty() {
                let (algorithm, after) = password_algorithm(rest).ok_or(bad(LENGTH))?;
                algorithms.push(algorithm);
                rest = after;
            }
            Attribute::PasswordAlgorithms(algorithms)
        }
        kind::CHANNEL_NUMBER => {
            Attribute::ChannelNumber(u16::from_be_bytes(first_of_four(value).ok_or(bad(LENGTH))?))
        }
        kind::LIFETIME => Attribute::Lifetime(u32::from_be_bytes(
            value.try_into().map_err(|_| bad(LENGTH))?,
        )),
        kind::DATA => Attribute::Data(value.to_vec()),
        kind::REQUESTED_ADDRESS_FAMILY => Attribute::RequestedAddressFamily(
            AddressFamily::from_byte(byte_of_four(value).ok_or(bad(LENGTH))?),
        ),
        kind::ADDITIONAL_ADDRESS_FAMILY => Attribute::AdditionalAddressFamily(
            AddressFamily::from_byte(byte_of_four(value).ok_or(bad(LENGTH))?),
        ),
        kind::EVEN_PORT => match value {
            [flags] => Attribute::EvenPort(flags & 0x80 != 0),
            _ => return Err(bad(LENGTH)),
        },
        kind::REQUESTED_TRANSPORT => {
            Attribute::RequestedTransport(byte_of_four(value).ok_or(bad(LENGTH))?)
        }
        kind::DONT_FRAGMENT if value.is_empty() => Attribute::DontFragment,
        kind::DONT_FRAGMENT => return Err(bad(LENGTH)),
        kind::RESERVATION_TOKEN => {
            Attribute::ReservationToken(value.try_into().map_err(|_| bad(LENGTH))?)
        }
        _ => Attribute::Unknown {
            kind,
            value: value.to_vec(),
        },
    };
    Ok(attribute)
}

const ADDRESS: &str = "not an IPv4 or IPv6 address";
const TEXT: &str = "not UTF-8 or too long";
const LENGTH: &str = "wrong length";

/// Appends the attribute (header, value, padding) to `out`.
pub(crate) fn encode(
    attribute: &Attribute,
    tid: &TransactionId,
    padding: u8,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let kind = attribute.kind();
    let header_at = out.len();
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    let value_at = out.len();
    match attribute {
        Attribute::MappedAddress(a) | Attribute::AlternateServer(a) => put_address(out, *a, None),
        Attribute::XorMappedAddress(a)
        | Attribute::XorPeerAddress(a)
        | Attribute::XorRelayedAddress(a) => put_address(out, *a, Some(tid)),
        Attribute::Username(s)
        | Attribute::Realm(s)
        | Attribute::Nonce(s)
        | Attribute::Software(s) => out.extend_from_slice(s.as_bytes()),
        Attribute::Userhash(v) => out.extend_from_slice(v),
        Attribute::MessageIntegrity(v) => out.extend_from_slice(v),
        Attribute::MessageIntegritySha256(v) | Attribute::Data(v) => out.extend_from_slice(v),
        Attribute::Fingerprint(v) => out.extend_from_slice(&v.to_be_bytes()),
        Attribute::ErrorCode(e) => {
            if !(300..=699).contains(&e.code) {
                return Err(EncodeError::BadErrorCode(e.code));
            }
            out.extend_from_slice(&[0, 0, (e.code / 100) as u8 & 0x07, (e.code % 100) as u8]);
            out.extend_from_slice(e.reason.as_bytes());
        }
        Attribute::PasswordAlgorithms(list) => {
            for algorithm in list {
                put_password_algorithm(out, algorithm, kind)?;
            }
        }
        Attribute::PasswordAlgorithm(algorithm) => put_password_algorithm(out, algorithm, kind)?,
        Attribute::UnknownAttributes(kinds) => kinds
            .iter()
            .for_each(|k| out.extend_from_slice(&k.to_be_bytes())),
        Attribute::ChannelNumber(n) => {
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        Attribute::Lifetime(seconds) => out.extend_from_slice(&seconds.to_be_bytes()),
        Attribute::RequestedAddressFamily(f) | Attribute::AdditionalAddressFamily(f) => {
            out.extend_from_slice(&[f.byte(), 0, 0, 0])
        }
        Attribute::EvenPort(reserve) => out.push(if *reserve { 0x80 } else { 0 }),
        Attribute::RequestedTransport(protocol) => out.extend_from_slice(&[*protocol, 0, 0, 0]),
        Attribute::DontFragment => {}
        Attribute::ReservationToken(token) => out.extend_from_slice(token),
        Attribute::Unknown { value, .. } => out.extend_from_slice(value),
    }
    let length = out.len() - value_at;
    let length = u16::try_from(length).map_err(|_| EncodeError::AttributeTooLong { kind })?;
    out[header_at + 2..header_at + 4].copy_from_slice(&length.to_be_bytes());
    out.resize(value_at + padded(length.into()), padding);
    Ok(())
}

/// The XOR mask of an address (RFC 8489 §14.2): the magic cookie, then the transaction id for IPv6.
fn xor_mask(tid: &TransactionId) -> [u8; 16] {
    let mut mask = [0; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(&tid.0);
    mask
}

/// A (possibly XOR-ed) address value: reserved byte, family, port, address.
fn address(value: &[u8], xor: Option<&TransactionId>) -> Option<SocketAddr> {
    let mask = xor.map(xor_mask).unwrap_or([0; 16]);
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?])
        ^ u16::from_be_bytes([mask[0], mask[1]]);
    let ip = match (value.get(1)?, &value[4..]) {
        (0x01, bytes) if bytes.len() == 4 => {
            let mut octets = [0u8; 4];
            octets
                .iter_mut()
                .enumerate()
                .for_each(|(i, o)| *o = bytes[i] ^ mask[i]);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        (0x02, bytes) if bytes.len() == 16 => {
            let mut octets = [0u8; 16];
            octets
                .iter_mut()
                .enumerate()
                .for_each(|(i, o)| *o = bytes[i] ^ mask[i]);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn put_address(out: &mut Vec<u8>, address: SocketAddr, xor: Option<&TransactionId>) {
    let mask = xor.map(xor_mask).unwrap_or([0; 16]);
    let port = address.port() ^ u16::from_be_bytes([mask[0], mask[1]]);
    let (family, octets): (u8, Vec<u8>) = match address.ip() {
        IpAddr::V4(ip) => (0x01, ip.octets().to_vec()),
        IpAddr::V6(ip) => (0x02, ip.octets().to_vec()),
    };
    out.extend_from_slice(&[0, family]);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend(octets.iter().zip(mask).map(|(o, m)| o ^ m));
}

fn text(value: &[u8], max_bytes: usize) -> Option<String> {
    if value.len() > max_bytes {
        return None;
    }
    String::from_utf8(value.to_vec()).ok()
}

/// ERROR-CODE: 21 reserved bits, the class (hundreds, 3 to 6) in 3 bits, the number (0 to 99) in 8, a reason.
fn error_code(value: &[u8]) -> Option<ErrorCode> {
    let (head, reason) = value.split_first_chunk::<4>()?;
    let class = u16::from(head[2] & 0x07);
    let number = u16::from(head[3]);
    if !(3..=6).contains(&class) || number > 99 {
        return None;
    }
    Some(ErrorCode {
        code: class * 100 + number,
        reason: text(reason, MAX_TEXT_BYTES)?,
    })
}

/// One password algorithm (id, parameter length, parameters padded to 4) and what follows it.
fn password_algorithm(value: &[u8]) -> Option<(PasswordAlgorithm, &[u8])> {
    let (head, rest) = value.split_first_chunk::<4>()?;
    let id = u16::from_be_bytes([head[0], head[1]]);
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let parameters = rest.get(..length)?.to_vec();
    let rest = rest.get(padded(length)..)?;
    Some((PasswordAlgorithm { id, parameters }, rest))
}

fn put_password_algorithm(
    out: &mut Vec<u8>,
    algorithm: &PasswordAlgorithm,
    kind: u16,
) -> Result<(), EncodeError> {
    let length = u16::try_from(algorithm.parameters.len())
        .map_err(|_| EncodeError::AttributeTooLong { kind })?;
    out.extend_from_slice(&algorithm.id.to_be_bytes());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&algorithm.parameters);
    out.resize(out.len() + padded(length.into()) - usize::from(length), 0);
    Ok(())
}

/// A 4-byte value whose first two bytes count (CHANNEL-NUMBER: number, then RFFU).
fn first_of_four(value: &[u8]) -> Option<[u8; 2]> {
    let bytes: &[u8; 4] = value.try_into().ok()?;
    Some([bytes[0], bytes[1]])
}

/// A 4-byte value whose first byte counts (REQUESTED-TRANSPORT, the address family attributes).
fn byte_of_four(value: &[u8]) -> Option<u8> {
    let bytes: &[u8; 4] = value.try_into().ok()?;
    Some(bytes[0])
}
