#!/usr/bin/env bash
# Message archive benchmark (workload W6, issue 5): 50-message page queries over XMPP in archives of several sizes,
# and the server CPU that archiving costs per message, for Rookery and Debian's Prosody 0.12 in the same run.
#
#   SIZES          archive sizes for Rookery (default "10000 100000 1000000"), seeded in bulk through the store
#   PROSODY_SIZES  archive sizes for Prosody (default "10000"), filled through the protocol (mambench send): its
#                  internal storage has no bulk path, and filling it costs what the write benchmark measures
#   SERVERS        "rookery prosody" (default) or either
#   REPS           queries of each kind per size for Rookery (default 200)
#   PROSODY_REPS   the same for Prosody (default 50: its internal storage reads the whole archive for every query)
#   WRITE_MESSAGES messages sent to measure the write cost, on top of each archive (default 2000)
#   SERVER_CPU LOADGEN_CPU   cores for taskset (0 and 1)
#   SKIP_BUILD=1   use the binaries already built; KEEP=1 keeps the scratch directory
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

SERVERS=${SERVERS:-rookery prosody}
SIZES=${SIZES:-10000 100000 1000000}
PROSODY_SIZES=${PROSODY_SIZES:-10000}
REPS=${REPS:-200}
PROSODY_REPS=${PROSODY_REPS:-50}
WRITE_MESSAGES=${WRITE_MESSAGES:-2000}
PEERS=10
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DOMAIN=bench.local
NUSERS=$((PEERS + 1))

BENCH_NAME=mam
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

if [[ $SKIP_BUILD != 1 ]]; then
	log "building rookery and mambench (release) in $CARGO_TARGET_DIR"
	(cd "$ROOT" && cargo build --release -p rookery -p rookery-benches --bin rookery --bin mambench >&2)
fi
MAMBENCH=$CARGO_TARGET_DIR/release/mambench
ROOKERY=$CARGO_TARGET_DIR/release/rookery
[[ -x $MAMBENCH ]] || die "no mambench at $MAMBENCH"

make_scratch

RESULTS=$WORK/results.txt
: >"$RESULTS"
mambench() { # $1: label, $2: port, then arguments
	local label=$1 port=$2 out
	shift 2
	out=$WORK/mambench-$label-$RANDOM.txt
	taskset -c "$LOADGEN_CPU" "$MAMBENCH" --server "127.0.0.1:$port" --domain "$DOMAIN" --insecure --auth scram-sha-1 \
		--user-prefix bench --first-user 1 --password 'benchpass-{n}' --peers "$PEERS" --label "$label" --timeout 60 \
		"$@" >"$out" 2>&1 || {
		cat "$out" >&2
		die "mambench $* failed against $label"
	}
	cat "$out" >&2
	grep '^RESULT ' "$out" >>"$RESULTS" || true
}

run_rookery() { # $1: size
	local size=$1 dir=$WORK/rookery-$1 port pid n
	mkdir -p "$dir/data"
	port=$(pick_port)
	local env=(SNIKKET_DOMAIN=$DOMAIN SNIKKET_ADMIN_EMAIL=a@$DOMAIN SNIKKET_TWEAK_DATA_DIR="$dir/data"
		SNIKKET_TWEAK_INTERFACES=127.0.0.1 SNIKKET_TWEAK_C2S_PORT="$port" SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT=0
		SNIKKET_LOGLEVEL=warn)
	for ((n = 1; n <= NUSERS; n++)); do
		env "${env[@]}" "$ROOKERY" user add "bench$n" --password "benchpass-$n" >>"$dir/users.log" 2>&1 ||
			die "rookery user add failed: $(tail -n 5 "$dir/users.log")"
	done
	log "rookery: seeding $size messages through the store"
	mambench "rookery-$size" 0 seed --db "$dir/data/rookery/rookery.sqlite" --messages "$size"
	env "${env[@]}" taskset -c "$SERVER_CPU" "$ROOKERY" serve >>"$dir/server.log" 2>&1 &
	pid=$!
	STARTED+=("$pid")
	wait_listening "$pid" "$port" "$dir/server.log" 60
	log "rookery ($size): queries"
	mambench "rookery-$size" "$port" query --reps "$REPS" --server-pid "$pid"
	log "rookery ($size): write cost"
	mambench "rookery-$size" "$port" send --messages "$WRITE_MESSAGES" --server-pid "$pid"
	stop_pid "$pid"
}

run_prosody() { # $1: size
	local size=$1 dir=$WORK/prosody-$1 port pid n
	mkdir -p "$dir/data" "$dir/certs"
	port=$(pick_port)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj "/CN=$DOMAIN" \
		-addext "subjectAltName=DNS:$DOMAIN" -keyout "$dir/certs/$DOMAIN.key" -out "$dir/certs/$DOMAIN.crt" 2>"$dir/openssl.log" ||
		die "openssl failed: $(cat "$dir/openssl.log")"
	for ((n = 1; n <= NUSERS; n++)); do
		env MAM_DIR="$dir" MAM_PORT="$port" prosodyctl --config "$HERE/prosody.cfg.lua" register "bench$n" "$DOMAIN" "benchpass-$n" \
			>>"$dir/users.log" 2>&1 || die "prosodyctl register failed: $(tail -n 5 "$dir/users.log")"
	done
	env MAM_DIR="$dir" MAM_PORT="$port" taskset -c "$SERVER_CPU" prosody -F --config "$HERE/prosody.cfg.lua" >>"$dir/stdout.log" 2>&1 &
	pid=$!
	STARTED+=("$pid")
	wait_listening "$pid" "$port" "$dir/prosody.log" 60
	log "prosody: filling the archive with $size messages through the protocol"
	mambench "prosody-$size" "$port" send --messages "$size" --server-pid "$pid"
	log "prosody ($size): queries"
	mambench "prosody-$size" "$port" query --reps "$PROSODY_REPS" --server-pid "$pid"
	log "prosody ($size): write cost"
	mambench "prosody-$size" "$port" send --messages "$WRITE_MESSAGES" --server-pid "$pid"
	stop_pid "$pid"
}

if uses rookery; then for size in $SIZES; do run_rookery "$size"; done; fi
if uses prosody; then for size in $PROSODY_SIZES; do run_prosody "$size"; done; fi

echo
echo "W6 message archive: 50-message pages over STARTTLS c2s; server on core $SERVER_CPU, mambench on core $LOADGEN_CPU; $REPS (Rookery) / $PROSODY_REPS (Prosody) queries per kind"
cat "$RESULTS"
