//! Rookery's benchmarks: the XMPP load generator (`loadgen`) and its building blocks.
//!
//! The load generator talks raw XMPP over TCP (STARTTLS, SASL SCRAM, resource binding) and then counts stanzas
//! with cheap byte scans, so that it stays far faster than the server under test. See `w1/README.md`. `imbench`
//! measures instant-messaging work (presence fan-out, a large roster, offline storage); see `im/README.md`.
//! `onboardbench` measures registration by invite and login storms; see `onboarding/run.sh`. `reconnectbench`
//! measures what a phone's reconnection costs (full login, FAST, XEP-0198 resumption); see `reconnect/run.sh`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod conn;
pub mod hist;
pub mod im;
pub mod onboard;
pub mod procstat;
pub mod reconnect;
pub mod scan;
pub mod scram;
pub mod tls;
pub mod w1;
pub mod xml_corpus;
