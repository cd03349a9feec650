#!/usr/bin/env bash
# XML stream parsing, one run: Rookery's parser, raw quick-xml and rxml (criterion), then Prosody's own parser
# (util.xmppstream) on the very same corpus. Installs Debian's prosody if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -f /usr/lib/prosody/util/xmppstream.lua ]; then
    apt-get -o DPkg::Lock::Timeout=300 install -y prosody >/dev/null
fi
corpus=$(mktemp /tmp/rookery-xml-corpus.XXXXXX)
trap 'rm -f "$corpus"' EXIT
cargo build --quiet --release -p rookery-benches --bin xml-corpus
"${CARGO_TARGET_DIR:-target}/release/xml-corpus" >"$corpus"
cargo bench --quiet -p rookery-benches --bench xml_parse 2>&1 | grep -E '^xml_parse/|thrpt:'
lua5.4 benches/xml/prosody_parse.lua "$corpus" 5
