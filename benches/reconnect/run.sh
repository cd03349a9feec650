#!/usr/bin/env bash
# Reconnect cost (issue 5), Rookery and Debian's Prosody 0.12 in the same run: PHONES accounts reconnect over and
# over, RECONNECTS timed reconnects per measurement, each server's CPU per reconnect read from /proc:
#   full         STARTTLS + SASL1 SCRAM-SHA-1 + stream restart + bind + <enable resume='true'/>; then </stream>
#   fast         STARTTLS + SASL2 with a FAST token (HT-SHA-256-NONE) + Bind2, then <enable resume='true'/> (inside
#                Bind2 if offered); then </stream>. Rookery only: Prosody 0.12 has no SASL2.
#   resume       STARTTLS + SASL1 SCRAM-SHA-1 + stream restart + XEP-0198 <resume/> of the session whose connection
#                the previous reconnect cut; then the connection is cut again (no </stream>)
#   fast-resume  STARTTLS + SASL2 FAST with <resume/> inline (one round trip after the features); Rookery only,
#                and only once it offers resumption inside SASL2 (until then the row says "not offered")
# See benches/src/reconnect.rs. Each measurement runs against a freshly started server and is repeated REPS times
# (servers and modes interleaved); the summary gives the median and the range.
#
# Knobs (environment variables):
#   SERVERS            which servers, in this order (default "rookery prosody prosody-nonagle"); prosody-nonagle is
#                      Prosody with network_settings = { nagle = false }
#   MODES              default "full fast resume fast-resume"
#   RECONNECTS         timed reconnects per measurement (default 1000)
#   PHONES             accounts reconnecting at the same time (default 4)
#   WARMUP             untimed reconnects per phone before each measurement (default 5)
#   REPS               repetitions (default 3)
#   ONE_SERVER=1       start each server once and run every repetition and mode in that process, instead of a fresh
#                      server for every measurement
#   SERVER_CPU LOADGEN_CPU   cores for taskset (0 and 1)
#   CARGO_TARGET_DIR   where cargo builds (default <workspace>/target); SKIP_BUILD=1 uses what is built
#   ROOKERY_BIN RECONNECTBENCH_BIN   use these binaries instead
#   KEEP=1             keep the scratch directory (logs, configs, raw results)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

SERVERS=${SERVERS:-rookery prosody prosody-nonagle}
MODES=${MODES:-full fast resume fast-resume}
RECONNECTS=${RECONNECTS:-1000}
PHONES=${PHONES:-4}
WARMUP=${WARMUP:-5}
REPS=${REPS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
ONE_SERVER=${ONE_SERVER:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DOMAIN=bench.local

BENCH_NAME=reconnect
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

for s in $SERVERS; do
	case $s in rookery | prosody | prosody-nonagle) ;; *) die "unknown server '$s' in SERVERS (rookery, prosody, prosody-nonagle)" ;; esac
done
for m in $MODES; do
	case $m in full | fast | resume | fast-resume) ;; *) die "unknown mode '$m' in MODES (full, fast, resume, fast-resume)" ;; esac
done
((RECONNECTS >= 1 && PHONES >= 1 && REPS >= 1 && WARMUP >= 0)) || die "RECONNECTS, PHONES and REPS must be at least 1"

# ---- tools ------------------------------------------------------------------------------------------------------
command -v taskset >/dev/null || apt_install util-linux
command -v ss >/dev/null || apt_install iproute2
if uses prosody || uses prosody-nonagle; then
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
BENCH=${RECONNECTBENCH_BIN:-$CARGO_TARGET_DIR/release/reconnectbench}
ROOKERY=${ROOKERY_BIN:-$CARGO_TARGET_DIR/release/rookery}
[[ -x $BENCH ]] || die "no reconnectbench at $BENCH"
if uses rookery; then [[ -x $ROOKERY ]] || die "no rookery binary at $ROOKERY"; fi

# ---- scratch space and cleanup ----------------------------------------------------------------------------------
make_scratch

# ---- the servers ------------------------------------------------------------------------------------------------
SERVER_PID=
SERVER_PORT=

start_rookery() { # $1: the scratch directory
	local dir=$1 n
	mkdir -p "$dir/data"
	SERVER_PORT=$(pick_port)
	local env=(SNIKKET_DOMAIN=$DOMAIN SNIKKET_ADMIN_EMAIL=a@$DOMAIN SNIKKET_TWEAK_DATA_DIR="$dir/data"
		SNIKKET_TWEAK_INTERFACES=127.0.0.1 SNIKKET_TWEAK_C2S_PORT="$SERVER_PORT" SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT=0
		SNIKKET_LOGLEVEL=warn)
	for ((n = 1; n <= PHONES; n++)); do
		env "${env[@]}" "$ROOKERY" user add "bench$n" --password "benchpass-$n" >>"$dir/users.log" 2>&1 ||
			die "rookery user add bench$n failed: $(tail -n 5 "$dir/users.log")"
	done
	env "${env[@]}" taskset -c "$SERVER_CPU" "$ROOKERY" serve >>"$dir/server.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$dir/server.log"
}

start_prosody() { # $1: the scratch directory, $2: RC_NAGLE
	local dir=$1 n
	mkdir -p "$dir/data" "$dir/certs"
	SERVER_PORT=$(pick_port)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj "/CN=$DOMAIN" \
		-addext "subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN" \
		-keyout "$dir/certs/$DOMAIN.key" -out "$dir/certs/$DOMAIN.crt" 2>"$dir/openssl.log" ||
		die "openssl failed: $(cat "$dir/openssl.log")"
	local env=(RC_DIR="$dir" RC_PORT="$SERVER_PORT" RC_NAGLE="$2")
	for ((n = 1; n <= PHONES; n++)); do
		env "${env[@]}" prosodyctl --config "$HERE/prosody.cfg.lua" register "bench$n" "$DOMAIN" "benchpass-$n" \
			>>"$dir/users.log" 2>&1 || die "prosodyctl register bench$n failed: $(tail -n 5 "$dir/users.log")"
	done
	env "${env[@]}" taskset -c "$SERVER_CPU" prosody -F --config "$HERE/prosody.cfg.lua" >>"$dir/stdout.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$dir/prosody.log"
}

# Whether a server can run a mode at all: Prosody 0.12 has no SASL2, so no FAST.
runs_mode() { # $1 server, $2 mode
	[[ $1 == rookery || $2 == full || $2 == resume ]]
}

# ---- runs -------------------------------------------------------------------------------------------------------
RESULTS=$WORK/results.txt
: >"$RESULTS"
bench() { # $1: server name, $2: rep, $3: mode, $4: output file
	local name=$1 rep=$2 mode=$3 out=$4 skip=()
	# Inline resumption is measured only once Rookery offers it; every other mode must work.
	[[ $mode == fast-resume ]] && skip=(--skip-if-unsupported)
	taskset -c "$LOADGEN_CPU" "$BENCH" --server "127.0.0.1:$SERVER_PORT" --domain "$DOMAIN" --tls starttls --insecure \
		--auth scram-sha-1 --user-prefix bench --first-user 1 --password 'benchpass-{n}' --server-pid "$SERVER_PID" \
		--mode "$mode" --reconnects "$RECONNECTS" --phones "$PHONES" --warmup "$WARMUP" --label "$name" \
		"${skip[@]}" >"$out" 2>&1 &
	CLIENT_PID=$!
	if ! wait "$CLIENT_PID"; then
		CLIENT_PID=
		cat "$out" >&2
		die "reconnectbench --mode $mode failed against $name"
	fi
	CLIENT_PID=
	sed 's/^/    /' "$out" | grep -v '^    RESULT' >&2
	grep '^RESULT ' "$out" | sed "s/ label=$name / label=$name rep=$rep /" >>"$RESULTS" || true
}

start_server() { # $1: the server name, $2: the scratch directory
	case $1 in
	rookery) start_rookery "$2" ;;
	prosody) start_prosody "$2" 1 ;;
	prosody-nonagle) start_prosody "$2" 0 ;;
	esac
	log "$1: PID $SERVER_PID ($(cat "/proc/$SERVER_PID/comm")) on core $SERVER_CPU, reconnectbench on core $LOADGEN_CPU"
}

if [[ $ONE_SERVER == 1 ]]; then
	for s in $SERVERS; do
		start_server "$s" "$WORK/$s"
		for ((rep = 1; rep <= REPS; rep++)); do
			for m in $MODES; do
				runs_mode "$s" "$m" || continue
				log "$s: $m, repetition $rep of $REPS (same server process)"
				bench "$s" "$rep" "$m" "$WORK/$s/$m-$rep.txt"
			done
		done
		stop_pid "$SERVER_PID"
	done
else
	# Every measurement gets a freshly started server: Prosody's cost per resumption grows with the resumptions it
	# served in the last hibernation period (see docs/benchmarks.md), which would make one mode's figure depend on
	# the modes measured before it.
	for ((rep = 1; rep <= REPS; rep++)); do
		for s in $SERVERS; do
			for m in $MODES; do
				runs_mode "$s" "$m" || continue
				start_server "$s" "$WORK/$s-$m-$rep"
				log "$s: $m, repetition $rep of $REPS"
				bench "$s" "$rep" "$m" "$WORK/$s-$m-$rep/reconnectbench.txt"
				stop_pid "$SERVER_PID"
			done
		done
	done
fi

# ---- summary ----------------------------------------------------------------------------------------------------
values() { # $1 mode, $2 server, $3 field: the field of every repetition, one a line
	{ grep "^RESULT bench=reconnect mode=$1 label=$2 " "$RESULTS" || true; } | tr ' ' '\n' | sed -n "s/^$3=//p"
}
median() { # $1 mode, $2 server, $3 field
	local v
	v=$(values "$1" "$2" "$3" | grep -v '^NA$' | sort -g)
	[[ -n $v ]] || {
		echo NA
		return
	}
	awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }' <<<"$v"
}
spread() { # $1 mode, $2 server, $3 field: "min-max" over the repetitions
	values "$1" "$2" "$3" | grep -v '^NA$' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi }'
}
cell() { # $1 mode, $2 server
	if ! runs_mode "$2" "$1"; then
		echo "no SASL2"
	elif values "$1" "$2" skipped | grep -q 1; then
		echo "not offered"
	else
		printf '%.0f us [%s], p50 %.1f ms, rtt %s\n' "$(median "$1" "$2" cpu_ticks_us_per)" "$(spread "$1" "$2" cpu_ticks_us_per)" \
			"$(median "$1" "$2" p50_ms)" "$(values "$1" "$2" rtt_after_tls | sort -u | paste -sd/)"
	fi
}
echo
echo "Reconnect cost: $RECONNECTS timed reconnects per measurement, $PHONES phones at a time, $REPS repetitions, STARTTLS;"
echo "server on core $SERVER_CPU, reconnectbench on core $LOADGEN_CPU. Per server: server CPU per reconnect (median"
echo "[range] over the repetitions, from clock ticks), latency p50, round trips after TLS (2 more before it + the TLS handshake)."
echo
for m in $MODES; do
	echo "$m"
	for s in $SERVERS; do printf '  %-16s %s\n' "$s" "$(cell "$m" "$s")"; done
	r=$(median "$m" rookery cpu_ticks_us_per)
	for s in $SERVERS; do
		[[ $s == rookery ]] && continue
		runs_mode "$s" "$m" || continue
		v=$(median "$m" "$s" cpu_ticks_us_per)
		if [[ $r != NA && $v != NA ]]; then
			awk -v r="$r" -v v="$v" -v s="$s" 'BEGIN { if (r > 0) printf "  %s / rookery: x%.2f CPU per reconnect\n", s, v / r }'
		fi
	done
done
r=$(median full rookery cpu_ticks_us_per)
for m in fast resume fast-resume; do
	v=$(median "$m" rookery cpu_ticks_us_per)
	if [[ $r != NA && $v != NA ]]; then
		awk -v r="$r" -v v="$v" -v m="$m" 'BEGIN { if (v > 0) printf "rookery: full / %s: x%.2f\n", m, r / v }'
	fi
done
p=$(median full prosody-nonagle cpu_ticks_us_per)
v=$(median resume prosody-nonagle cpu_ticks_us_per)
if [[ $p != NA && $v != NA ]]; then
	awk -v p="$p" -v v="$v" 'BEGIN { if (v > 0) printf "prosody-nonagle: full / resume: x%.2f\n", p / v }'
fi
echo
echo "raw results: $RESULTS$([[ $KEEP == 1 ]] || echo ' (deleted at exit; KEEP=1 keeps it)')"
