//! Feeds arbitrary bytes to the STUN and ChannelData decoders; see `rookery_stun::fuzzing::decode` for what it
//! checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rookery_stun::fuzzing::decode(data));
