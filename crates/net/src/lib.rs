//! Network listeners and the tasks that own each connection: client streams (STARTTLS and direct TLS) today,
//! federation later. The protocol logic they drive lives in `rookery-proto`; routing in `rookery-core`.
#![forbid(unsafe_code)]

pub mod c2s;
pub mod csi;
mod limiter;
mod resumption;
mod transport;

pub use c2s::{C2sListener, C2sMode};
pub use limiter::{ConnectionLimiter, ConnectionSlot};
pub use resumption::ResumableSessions;
