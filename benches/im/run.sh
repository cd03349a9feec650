#!/usr/bin/env bash
# Instant-messaging benchmarks (issue 3), Rookery and Debian's Prosody 0.12 in the same run:
#   fanout   a user with CONTACTS mutual contacts, all online, sends initial presence
#   roster   login, then a roster get of a ROSTER_ITEMS-item roster
#   offline  OFFLINE_MESSAGES messages to an offline account, which then logs in
# See README.md beside this file. Every knob is an environment variable:
#
#   SERVERS        which servers, in this order (default: "rookery prosody prosody-nonagle")
#                  rookery          target/release/rookery, Snikket-style environment
#                  prosody          Debian Prosody 0.12, prosody.cfg.lua (Snikket's settings)
#                  prosody-nonagle  the same with network_settings = { nagle = false }
#   BENCHES        which benchmarks (default: "fanout roster offline")
#   REPS           server starts per server; each start runs every benchmark once (default 1; the benchmarks
#                  repeat inside: FANOUT_REPS 5, ROSTER_REPS 10, OFFLINE_REPS 3)
#   CONTACTS ROSTER_ITEMS OFFLINE_MESSAGES   the sizes (200, 1000, 10000)
#   SERVER_CPU LOADGEN_CPU                   cores for taskset (0 and 1)
#   CARGO_TARGET_DIR                         where cargo builds (default <workspace>/target)
#   SKIP_BUILD=1                             use the binaries already built
#   ROOKERY_BIN IMBENCH_BIN                  use these binaries instead
#   KEEP=1                                   keep the scratch directory (logs, configs, raw results)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

SERVERS=${SERVERS:-rookery prosody prosody-nonagle}
BENCHES=${BENCHES:-fanout roster offline}
REPS=${REPS:-1}
FANOUT_REPS=${FANOUT_REPS:-5}
ROSTER_REPS=${ROSTER_REPS:-10}
OFFLINE_REPS=${OFFLINE_REPS:-3}
CONTACTS=${CONTACTS:-200}
ROSTER_ITEMS=${ROSTER_ITEMS:-1000}
OFFLINE_MESSAGES=${OFFLINE_MESSAGES:-10000}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DOMAIN=bench.local
NUSERS=$((CONTACTS + 4)) # the hub, its contacts, the roster owner, the offline sender and receiver

BENCH_NAME=im
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

for s in $SERVERS; do
	case $s in rookery | prosody | prosody-nonagle) ;; *) die "unknown server '$s' in SERVERS (rookery, prosody, prosody-nonagle)" ;; esac
done
for b in $BENCHES; do
	case $b in fanout | roster | offline) ;; *) die "unknown benchmark '$b' in BENCHES (fanout, roster, offline)" ;; esac
done
uses_prosody() { uses prosody || uses prosody-nonagle; }

# ---- tools ------------------------------------------------------------------------------------------------------
command -v taskset >/dev/null || apt_install util-linux
command -v ss >/dev/null || apt_install iproute2
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
IMBENCH=${IMBENCH_BIN:-$CARGO_TARGET_DIR/release/imbench}
ROOKERY=${ROOKERY_BIN:-$CARGO_TARGET_DIR/release/rookery}
[[ -x $IMBENCH ]] || die "no imbench at $IMBENCH"
if uses rookery; then [[ -x $ROOKERY ]] || die "no rookery binary at $ROOKERY"; fi

# ---- scratch space and cleanup ----------------------------------------------------------------------------------
make_scratch

# ---- the servers ------------------------------------------------------------------------------------------------
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
	env "${ROOKERY_ENV[@]}" taskset -c "$SERVER_CPU" "$ROOKERY" serve >>"$ROOKERY_DIR/server.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	SERVER_PORT=$ROOKERY_PORT
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$ROOKERY_DIR/server.log"
}

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
		env IM_DIR="$PROSODY_DIR" IM_PORT="$PROSODY_PORT" IM_NAGLE=1 prosodyctl --config "$HERE/prosody.cfg.lua" register "bench$n" "$DOMAIN" "benchpass-$n" \
			>>"$PROSODY_DIR/users.log" 2>&1 || die "prosodyctl register bench$n failed: $(tail -n 5 "$PROSODY_DIR/users.log")"
	done
}
start_prosody() { # $1: IM_NAGLE
	env IM_DIR="$PROSODY_DIR" IM_PORT="$PROSODY_PORT" IM_NAGLE="$1" taskset -c "$SERVER_CPU" prosody -F --config "$HERE/prosody.cfg.lua" >>"$PROSODY_DIR/stdout.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	SERVER_PORT=$PROSODY_PORT
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$PROSODY_DIR/prosody.log"
}
start_server() {
	case $1 in
	rookery) start_rookery ;;
	prosody) start_prosody 1 ;;
	prosody-nonagle) start_prosody 0 ;;
	esac
}

# ---- runs -------------------------------------------------------------------------------------------------------
RESULTS=$WORK/results.txt
: >"$RESULTS"
imbench() { # $1: server name, $2: output file, then imbench arguments
	local name=$1 out=$2
	shift 2
	taskset -c "$LOADGEN_CPU" "$IMBENCH" --server "127.0.0.1:$SERVER_PORT" --domain "$DOMAIN" --tls starttls --insecure \
		--auth scram-sha-1 --user-prefix bench --first-user 1 --password 'benchpass-{n}' --server-pid "$SERVER_PID" \
		--contacts "$CONTACTS" --roster-items "$ROSTER_ITEMS" --offline-messages "$OFFLINE_MESSAGES" --label "$name" \
		"$@" >"$out" 2>&1 &
	CLIENT_PID=$!
	if ! wait "$CLIENT_PID"; then
		CLIENT_PID=
		cat "$out" >&2
		die "imbench $* failed against $name"
	fi
	CLIENT_PID=
	sed 's/^/    /' "$out" | grep -v '^    RESULT' >&2
	grep '^RESULT ' "$out" >>"$RESULTS" || true
}

PROVISIONED=" "
for s in $SERVERS; do
	# The Prosody variants share one data directory, set up and provisioned once.
	base=${s%-nonagle}
	if [[ $PROVISIONED != *" $base "* ]]; then
		if [[ $base == rookery ]]; then setup_rookery; else setup_prosody; fi
		start_server "$s"
		log "$base: provisioning rosters and subscriptions through the protocol (PID $SERVER_PID, port $SERVER_PORT)"
		imbench "$s" "$WORK/$base-provision.txt" provision
		stop_pid "$SERVER_PID"
		PROVISIONED+="$base "
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		start_server "$s"
		log "$s #$rep: PID $SERVER_PID ($(cat "/proc/$SERVER_PID/comm")), server on core $SERVER_CPU, imbench on core $LOADGEN_CPU"
		for b in $BENCHES; do
			case $b in
			fanout) imbench "$s" "$WORK/$s-$rep-$b.txt" fanout --reps "$FANOUT_REPS" ;;
			roster) imbench "$s" "$WORK/$s-$rep-$b.txt" roster --reps "$ROSTER_REPS" ;;
			offline) imbench "$s" "$WORK/$s-$rep-$b.txt" offline --reps "$OFFLINE_REPS" ;;
			esac
		done
		stop_pid "$SERVER_PID"
	done
done

# ---- summary ----------------------------------------------------------------------------------------------------
# The median over the server starts of a RESULT field of one benchmark and server.
field() { # $1 bench, $2 server, $3 field
	{ grep "^RESULT bench=$1 label=$2 " "$RESULTS" || true; } | tr ' ' '\n' | sed -n "s/^$3=//p" | { grep -v '^NA$' || true; } | sort -g |
		awk '{v[NR]=$1} END {if (NR==0) {print "NA"; exit} print (NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2}'
}
row() { # $1 bench, $2 field, $3 label, $4 unit
	local line r v s
	line=$(printf '%-46s' "$3 ($4)")
	for s in $SERVERS; do line+=$(printf ' %16s' "$(field "$1" "$s" "$2")"); done
	r=$(field "$1" rookery "$2")
	for s in $SERVERS; do
		[[ $s == rookery ]] && continue
		v=$(field "$1" "$s" "$2")
		if [[ $r != NA && $v != NA ]]; then
			line+=$(awk -v r="$r" -v v="$v" -v s="$s" 'BEGIN { if (r > 0) printf "   %s/rookery x%.1f", s, v / r }')
		fi
	done
	echo "$line"
}
echo
echo "Instant-messaging benchmarks: STARTTLS + SCRAM-SHA-1 logins; server on core $SERVER_CPU, imbench on core $LOADGEN_CPU;"
echo "medians over the repetitions inside each run (fan-out $FANOUT_REPS, roster $ROSTER_REPS, offline $OFFLINE_REPS) and over $REPS server start(s)."
echo "CPU = server CPU time summed over its threads (schedstat) between the first stanza sent and the last received."
echo
header=$(printf '%-46s' "")
for s in $SERVERS; do header+=$(printf ' %16s' "$s"); done
echo "$header"
for b in $BENCHES; do
	case $b in
	fanout)
		row fanout all_ms "fan-out to $CONTACTS contacts: all done" ms
		row fanout contacts_ms "  every contact has the presence" ms
		row fanout probes_ms "  the user has every contact's presence" ms
		row fanout cpu_ms "  server CPU" ms
		row fanout cpu_us_per_contact "  server CPU per contact" us
		;;
	roster)
		row roster fetch_ms "roster get of $ROSTER_ITEMS items" ms
		row roster first_fetch_ms "  first fetch after start (cold)" ms
		row roster login_to_roster_ms "  from TCP connect to the roster" ms
		row roster cpu_ms "  server CPU per fetch" ms
		row roster cpu_us_per_item "  server CPU per item" us
		;;
	offline)
		row offline store_ms "store $OFFLINE_MESSAGES offline messages" ms
		row offline store_cpu_ms "  server CPU" ms
		row offline store_cpu_us_per_msg "  server CPU per message" us
		row offline deliver_ms "deliver them at login" ms
		row offline deliver_cpu_ms "  server CPU" ms
		row offline deliver_cpu_us_per_msg "  server CPU per message" us
		;;
	esac
done
echo
echo "raw results: $RESULTS$([[ $KEEP == 1 ]] || echo ' (deleted at exit; KEEP=1 keeps it)')"
