//! Writes the parse benchmark's corpus to standard output, for parsers measured outside Rust (Prosody's).
//! `xml-corpus [ROUNDS]` (default 25 000 rounds, 26 MB).
#![forbid(unsafe_code)]

use std::io::Write as _;

fn main() -> std::io::Result<()> {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(25_000);
    std::io::stdout()
        .lock()
        .write_all(rookery_benches::xml_corpus::corpus(rounds).as_bytes())
}
