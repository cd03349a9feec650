//! Dev-only helpers shared by Rookery's tests and the interop tests.
//!
//! - [`ca`]: a throw-away certificate authority that issues leaf certificates in the shapes certbot writes them,
//!   and builds rustls clients that trust only it.
//! - [`client`]: a raw XMPP client that does exactly what a test says, well-behaved or not.
//! - `server` (feature `server`): the real server in-process on `127.0.0.1:0`.
#![forbid(unsafe_code)]

pub mod ca;
pub mod client;
mod der;
#[cfg(feature = "server")]
pub mod prosody;
#[cfg(feature = "server")]
pub mod server;

pub use ca::{IssueOptions, KeyFormat, LeafKey, TestCa};
pub use client::{Binding, Ending, SaslFailure, TestClient};
#[cfg(feature = "server")]
pub use prosody::{PROSODY_ALICE_PASSWORD, prosody_alice_credentials};
#[cfg(feature = "server")]
pub use server::{TEST_DOMAIN, TestOptions, TestServer};
