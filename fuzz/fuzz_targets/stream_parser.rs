//! Feeds arbitrary bytes to the XMPP stream parser in fragments; see `rookery_xml::fuzzing::stream_parser` for
//! what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rookery_xml::fuzzing::stream_parser(data));
