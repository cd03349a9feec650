#!/usr/bin/env bash
# Workload W1 (1:1 chat between logged-in sessions), Rookery and Debian's Prosody 0.12 side by side.
# See README.md beside this file. Every knob is an environment variable:
#
#   SERVERS      which servers, in this order each repetition (default: "rookery prosody prosody-nonagle")
#                rookery          target/release/rookery, Snikket-style environment
#                prosody          Debian Prosody 0.12, prosody.cfg.lua (Snikket's defaults for W1)
#                prosody-nonagle  the same with network_settings = { nagle = false } (best-tuned baseline)
#                prosody-floor    plaintext c2s + SASL ANONYMOUS, default network_settings: the set-up of the
#                                 published Prosody figures in performance.md (not in the default list)
#                prosody-snikket  prosody with the modules Snikket loads that act on every message (mam with its
#                                 default internal storage, carbons, smacks, csi_simple, blocklist, pep): what
#                                 Rookery, which always runs its equivalents, is compared with like for like
#   REPS         repetitions per server (3); the summary gives the median and the min-max spread
#   PAIRS BODY WINDOW DURATION WARMUP   the workload (100, 100, 20, 10, 2)
#   SERVER_CPU LOADGEN_CPU              cores for taskset (0 and 1)
#   CARGO_TARGET_DIR                    where cargo builds (default <workspace>/target)
#   SKIP_BUILD=1                        use the binaries already built
#   ROOKERY_BIN LOADGEN_BIN             use these binaries instead
#   KEEP=1                              keep the scratch directory (logs, configs, raw results)
#   LOADGEN_ARGS                        extra arguments for `loadgen w1`
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

SERVERS=${SERVERS:-rookery prosody prosody-nonagle}
REPS=${REPS:-3}
PAIRS=${PAIRS:-100}
BODY=${BODY:-100}
WINDOW=${WINDOW:-20}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DOMAIN=bench.local
NUSERS=$((2 * PAIRS))

BENCH_NAME=w1
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

for s in $SERVERS; do
	case $s in
	rookery | prosody | prosody-nonagle | prosody-floor | prosody-snikket) ;;
	*) die "unknown server '$s' in SERVERS (rookery, prosody, prosody-nonagle, prosody-floor, prosody-snikket)" ;;
	esac
done
uses_prosody() { uses prosody || uses prosody-nonagle || uses prosody-floor || uses prosody-snikket; }

# ---- tools ------------------------------------------------------------------------------------------------------
command -v taskset >/dev/null || apt_install util-linux
command -v ss >/dev/null || apt_install iproute2
command -v getconf >/dev/null || apt_install libc-bin
if uses_prosody; then
	command -v prosody >/dev/null && command -v prosodyctl >/dev/null || apt_install prosody
	command -v openssl >/dev/null || apt_install openssl
fi
(($(nproc) >= 2)) || log "warning: fewer than 2 cores; server and load generator will share one"

if [[ $SKIP_BUILD != 1 ]]; then
	packages=(-p rookery-benches)
	uses rookery && packages+=(-p rookery)
	log "building ${packages[*]} (release) in $CARGO_TARGET_DIR"
	(cd "$ROOT" && cargo build --release "${packages[@]}" >&2)
fi
LOADGEN=${LOADGEN_BIN:-$CARGO_TARGET_DIR/release/loadgen}
ROOKERY=${ROOKERY_BIN:-$CARGO_TARGET_DIR/release/rookery}
[[ -x $LOADGEN ]] || die "no load generator at $LOADGEN"
if uses rookery; then [[ -x $ROOKERY ]] || die "no rookery binary at $ROOKERY"; fi

# ---- scratch space and cleanup ----------------------------------------------------------------------------------
make_scratch

# ---- Rookery ----------------------------------------------------------------------------------------------------
ROOKERY_DIR=$WORK/rookery
ROOKERY_PORT=
ROOKERY_ENV=()
setup_rookery() {
	mkdir -p "$ROOKERY_DIR/data"
	ROOKERY_PORT=$(pick_port)
	ROOKERY_ENV=(SNIKKET_DOMAIN=$DOMAIN SNIKKET_ADMIN_EMAIL=a@$DOMAIN SNIKKET_TWEAK_DATA_DIR="$ROOKERY_DIR/data"
		SNIKKET_TWEAK_INTERFACES=127.0.0.1 SNIKKET_TWEAK_C2S_PORT="$ROOKERY_PORT" SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT=0
		SNIKKET_LOGLEVEL=warn)
	log "rookery: creating $NUSERS accounts in $ROOKERY_DIR/data"
	local n
	for ((n = 1; n <= NUSERS; n++)); do
		env "${ROOKERY_ENV[@]}" "$ROOKERY" user add "bench$n" --password "benchpass-$n" >>"$ROOKERY_DIR/users.log" 2>&1 ||
			die "rookery user add bench$n failed: $(tail -n 5 "$ROOKERY_DIR/users.log")"
	done
}
start_rookery() {
	# A simple command in the background: $! is the PID that env and taskset exec into the server.
	env "${ROOKERY_ENV[@]}" taskset -c "$SERVER_CPU" "$ROOKERY" serve >>"$ROOKERY_DIR/server.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	SERVER_PORT=$ROOKERY_PORT
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$ROOKERY_DIR/server.log"
}

# ---- Prosody ----------------------------------------------------------------------------------------------------
PROSODY_DIR=$WORK/prosody
PROSODY_PORT=
setup_prosody() {
	mkdir -p "$PROSODY_DIR/data" "$PROSODY_DIR/certs"
	PROSODY_PORT=$(pick_port)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj "/CN=$DOMAIN" \
		-addext "subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN" \
		-keyout "$PROSODY_DIR/certs/$DOMAIN.key" -out "$PROSODY_DIR/certs/$DOMAIN.crt" 2>"$PROSODY_DIR/openssl.log" ||
		die "openssl failed: $(cat "$PROSODY_DIR/openssl.log")"
	log "prosody: creating $NUSERS accounts in $PROSODY_DIR/data"
	local n
	for ((n = 1; n <= NUSERS; n++)); do
		env W1_DIR="$PROSODY_DIR" W1_PORT="$PROSODY_PORT" W1_NAGLE=1 prosodyctl --config "$HERE/prosody.cfg.lua" register "bench$n" "$DOMAIN" "benchpass-$n" \
			>>"$PROSODY_DIR/users.log" 2>&1 || die "prosodyctl register bench$n failed: $(tail -n 5 "$PROSODY_DIR/users.log")"
	done
}
start_prosody() { # $1: W1_NAGLE, $2: W1_FLOOR, $3: W1_SNIKKET
	env W1_DIR="$PROSODY_DIR" W1_PORT="$PROSODY_PORT" W1_NAGLE="$1" W1_FLOOR="$2" W1_SNIKKET="${3:-0}" taskset -c "$SERVER_CPU" prosody -F --config "$HERE/prosody.cfg.lua" >>"$PROSODY_DIR/stdout.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	SERVER_PORT=$PROSODY_PORT
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$PROSODY_DIR/prosody.log"
}

# ---- one measurement --------------------------------------------------------------------------------------------
RESULTS=$WORK/results.txt
: >"$RESULTS"
measure() { # $1: server name, $2: repetition
	local name=$1 rep=$2 out=$WORK/$1-$2.txt
	local login=(--tls starttls --insecure --auth scram-sha-1)
	case $name in
	rookery) start_rookery ;;
	prosody) start_prosody 1 0 ;;
	prosody-nonagle) start_prosody 0 0 ;;
	prosody-snikket) start_prosody 1 0 1 ;;
	prosody-floor)
		start_prosody 1 1
		login=(--tls none --auth anonymous)
		;;
	esac
	log "$name #$rep: PID $SERVER_PID ($(cat "/proc/$SERVER_PID/comm"), CPU list $(taskset -cp "$SERVER_PID" | sed 's/.*: //')), port $SERVER_PORT"
	# In the background, so that a signal to this script is handled at once (the trap then stops it too).
	# shellcheck disable=SC2086 # LOADGEN_ARGS is a list of words
	taskset -c "$LOADGEN_CPU" "$LOADGEN" w1 --server "127.0.0.1:$SERVER_PORT" --domain "$DOMAIN" "${login[@]}" \
		--user-prefix bench --first-user 1 --password 'benchpass-{n}' --server-pid "$SERVER_PID" \
		--pairs "$PAIRS" --body "$BODY" --window "$WINDOW" --duration "$DURATION" --warmup "$WARMUP" \
		--label "$name" $LOADGEN_ARGS >"$out" 2>&1 &
	CLIENT_PID=$!
	if ! wait "$CLIENT_PID"; then
		CLIENT_PID=
		cat "$out" >&2
		die "the load generator failed against $name"
	fi
	CLIENT_PID=
	sed 's/^/    /' "$out" | grep -v '^    RESULT' >&2
	grep '^RESULT ' "$out" | sed "s/^RESULT /RESULT rep=$rep /" >>"$RESULTS"
	stop_pid "$SERVER_PID"
}

if uses rookery; then setup_rookery; fi
if uses_prosody; then setup_prosody; fi
log "W1: $PAIRS pairs, $BODY B bodies, window $WINDOW, ${WARMUP} s warm-up + ${DURATION} s; servers on core $SERVER_CPU, load generator on core $LOADGEN_CPU; $REPS repetitions"
for ((rep = 1; rep <= REPS; rep++)); do
	for s in $SERVERS; do measure "$s" "$rep"; done
done

# ---- summary ----------------------------------------------------------------------------------------------------
# Median and min-max of a RESULT field for one server.
stat_of() { # $1 server, $2 field -> "median min max"
	grep " label=$1 " "$RESULTS" | tr ' ' '\n' | sed -n "s/^$2=//p" | grep -v '^NA$' | sort -g |
		awk '{v[NR]=$1} END {if (NR==0) {print "NA NA NA"; exit} m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; print m, v[1], v[NR]}'
}
median_of() { stat_of "$1" "$2" | cut -d' ' -f1; }

echo
echo "W1 summary: $PAIRS pairs, $BODY B bodies, window $WINDOW, ${DURATION} s measured after ${WARMUP} s warm-up;"
echo "STARTTLS + SCRAM-SHA-1 logins (prosody-floor: plaintext + ANONYMOUS);"
echo "median of $REPS runs [min-max]; server pinned to core $SERVER_CPU, load generator to core $LOADGEN_CPU;"
echo "core = server CPU time / window; (waiting) = time the server was runnable but another process had its core."
echo
printf '%-16s %-24s %-16s %-24s %-15s %-16s %s\n' server 'msg/s' 'core (waiting)' 'us CPU/msg' 'RSS after (MB)' 'p50/p99 (ms)' 'loadgen core'

for s in $SERVERS; do
	read -r mps mps_lo mps_hi <<<"$(stat_of "$s" msgs_per_s)"
	read -r cpu cpu_lo cpu_hi <<<"$(stat_of "$s" cpu_us_per_msg)"
	core=$(median_of "$s" server_core)
	wait_share=$(median_of "$s" server_wait)
	rss=$(median_of "$s" rss_after_kb)
	p50=$(median_of "$s" p50_us)
	p99=$(median_of "$s" p99_us)
	lg=$(median_of "$s" loadgen_core)
	printf '%-16s %-24s %-16s %-24s %-15s %-16s %s\n' "$s" \
		"$(printf '%.0f [%.0f-%.0f]' "$mps" "$mps_lo" "$mps_hi")" \
		"$(awk -v c="$core" -v w="$wait_share" 'BEGIN {printf "%.0f%% (%.0f%%)", c * 100, w * 100}')" \
		"$(printf '%.2f [%.2f-%.2f]' "$cpu" "$cpu_lo" "$cpu_hi")" \
		"$(awk -v r="$rss" 'BEGIN {printf "%.1f", r / 1024}')" \
		"$(awk -v a="$p50" -v b="$p99" 'BEGIN {printf "%.2f/%.2f", a / 1000, b / 1000}')" \
		"$(awk -v c="$lg" 'BEGIN {printf "%.0f%%", c * 100}')"
done

if uses rookery; then
	r_mps=$(median_of rookery msgs_per_s)
	r_cpu=$(median_of rookery cpu_us_per_msg)
	r_core=$(median_of rookery server_core)
	echo
	for base in prosody prosody-nonagle; do
		uses "$base" || continue
		b_mps=$(median_of "$base" msgs_per_s)
		b_cpu=$(median_of "$base" cpu_us_per_msg)
		awk -v rm="$r_mps" -v rc="$r_cpu" -v bm="$b_mps" -v bc="$b_cpu" -v b="$base" 'BEGIN {
			printf "Rookery/%s: msg/s on one core x%.1f; CPU per message x%.3f (%s uses %.1fx the CPU of Rookery per message)\n",
				b, rm / bm, rc / bc, b, bc / rc }'
	done
	awk -v c="$r_core" 'BEGIN { if (c < 0.9) printf "note: Rookery used only %.0f%% of its core, so its msg/s is a lower bound of its capacity (see the notes in the runs above); compare CPU per message\n", c * 100 }'
	awk -v rc="$r_cpu" -v rm="$r_mps" 'BEGIN { printf "targets (performance.md W1): >= 150000 msg/s per core -> %s (%.0f msg per CPU-second); <= 6 us CPU/msg -> %s\n",
		(1e6 / rc >= 150000 ? "met" : "not met"), 1e6 / rc, (rc <= 6 ? "met" : "not met") }'
fi
echo
echo "raw results: $RESULTS$([[ $KEEP == 1 ]] || echo ' (deleted at exit; KEEP=1 keeps it)')"
