//! TURN ChannelData messages (RFC 8656 §12.4): a 2-byte channel number, a 2-byte length, the data, and over TCP
//! padding to a multiple of 4.

use std::ops::RangeInclusive;

use crate::message::padded;

/// The channel numbers a client may bind (RFC 8656 §12).
pub const CHANNEL_NUMBERS: RangeInclusive<u16> = 0x4000..=0x4FFF;
const HEADER_LEN: usize = 4;

/// A ChannelData message, borrowing its data from the received bytes (no copy on the relay's hot path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    pub channel: u16,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelDataError {
    #[error("fewer than the 4 bytes of a ChannelData header")]
    TruncatedHeader,
    #[error("channel number {0:#06x} is outside 0x4000-0x4FFF")]
    ChannelOutOfRange(u16),
    #[error("the header announces {declared} bytes of data but {actual} follow")]
    Truncated { declared: usize, actual: usize },
    #[error("{0} bytes follow the data, more than padding")]
    TrailingBytes(usize),
}

impl<'a> ChannelData<'a> {
    /// Decodes one whole ChannelData message: a UDP datagram, or a frame cut by [`crate::stream_frame_len`].
    /// Up to 3 bytes of padding after the data are accepted (required over TCP, allowed over UDP); more is an
    /// error rather than data silently dropped.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ChannelDataError> {
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(ChannelDataError::TruncatedHeader);
        };
        let channel = u16::from_be_bytes([header[0], header[1]]);
        if !CHANNEL_NUMBERS.contains(&channel) {
            return Err(ChannelDataError::ChannelOutOfRange(channel));
        }
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let Some(data) = rest.get(..length) else {
            return Err(ChannelDataError::Truncated {
                declared: length,
                actual: rest.len(),
            });
        };
        if rest.len() > padded(length) {
            return Err(ChannelDataError::TrailingBytes(rest.len() - length));
        }
        Ok(Self { channel, data })
    }

    /// Appends the message to `out`, padded to a multiple of 4 when `pad` (over TCP and TLS). `None` when the
    /// data does not fit the 16-bit length.
    pub fn encode(&self, pad: bool, out: &mut Vec<u8>) -> Option<()> {
        let length = u16::try_from(self.data.len()).ok()?;
        out.extend_from_slice(&self.channel.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(self.data);
        if pad {
            out.resize(out.len() + padded(self.data.len()) - self.data.len(), 0);
        }
        Some(())
    }
}

/// Bytes of the ChannelData frame at the start of a TCP stream, padding included, once its header is there.
pub(crate) fn stream_frame_len(bytes: &[u8]) -> Option<usize> {
    let length = bytes.get(2..4)?;
    Some(HEADER_LEN + padded(usize::from(u16::from_be_bytes([length[0], length[1]]))))
}
