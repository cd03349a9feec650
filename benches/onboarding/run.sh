#!/usr/bin/env bash
# Onboarding benchmarks (issue 4), Rookery and Debian's Prosody 0.12 in the same run:
#   register  N accounts registered by invite, as the Snikket app does it: a fresh connection each, STARTTLS, the
#             features, <preauth/> with the token, jabber:iq:register get, register set, close
#   login     a login storm of the same N accounts: STARTTLS + SCRAM-SHA-1 + bind + roster get, close;
#             LOGIN_REPS storms in a row (the first one after registration, then warm)
# Every account is in a circle of CIRCLE_SIZE members, so each roster has CIRCLE_SIZE - 1 contacts. On Rookery the
# circles are made with `rookery circle create` (or the default circle when CIRCLE_SIZE >= N) and each invite names
# its circle (`rookery create-invite --group ID`); on Prosody they are mod_groups groups (a groups file).
# Invites: Rookery's CLI (`rookery create-invite`, one process per invite, timed); Prosody's admin shell
# (`invite:create_account(HOST)`, one shell session for all of them).
#
# Knobs (environment variables):
#   SERVERS            which servers, in this order (default "rookery prosody prosody-nonagle"); each is set up
#                      afresh: prosody-nonagle is Prosody with network_settings = { nagle = false }
#   N                  accounts (default 1000)
#   CIRCLE_SIZE        members per circle (default 50)
#   CONCURRENCY        connections at a time (default 4)
#   LOGIN_REPS         login storms after registration (default 2)
#   SERVER_CPU LOADGEN_CPU   cores for taskset (0 and 1)
#   CARGO_TARGET_DIR   where cargo builds (default <workspace>/target); SKIP_BUILD=1 uses what is built
#   ROOKERY_BIN ONBOARDBENCH_BIN   use these binaries instead
#   KEEP=1             keep the scratch directory (logs, configs, tokens, raw results)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

SERVERS=${SERVERS:-rookery prosody prosody-nonagle}
N=${N:-1000}
CIRCLE_SIZE=${CIRCLE_SIZE:-50}
CONCURRENCY=${CONCURRENCY:-4}
LOGIN_REPS=${LOGIN_REPS:-2}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DOMAIN=bench.local

BENCH_NAME=onboarding
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

for s in $SERVERS; do
	case $s in rookery | prosody | prosody-nonagle) ;; *) die "unknown server '$s' in SERVERS (rookery, prosody, prosody-nonagle)" ;; esac
done
((N >= 1 && CIRCLE_SIZE >= 1 && CONCURRENCY >= 1)) || die "N, CIRCLE_SIZE and CONCURRENCY must be at least 1"
((CIRCLE_SIZE <= N)) || CIRCLE_SIZE=$N
((N % CIRCLE_SIZE == 0)) || die "N ($N) must be a multiple of CIRCLE_SIZE ($CIRCLE_SIZE)"
CIRCLES=$((N / CIRCLE_SIZE))

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
BENCH=${ONBOARDBENCH_BIN:-$CARGO_TARGET_DIR/release/onboardbench}
ROOKERY=${ROOKERY_BIN:-$CARGO_TARGET_DIR/release/rookery}
[[ -x $BENCH ]] || die "no onboardbench at $BENCH"
if uses rookery; then [[ -x $ROOKERY ]] || die "no rookery binary at $ROOKERY"; fi

# ---- scratch space and cleanup ----------------------------------------------------------------------------------
make_scratch
# The circle (0-based) of account n (1-based): accounts 1..CIRCLE_SIZE are in circle 0, and so on.
circle_of() { echo $((($1 - 1) / CIRCLE_SIZE)); }

# ---- the servers ------------------------------------------------------------------------------------------------
SERVER_PID=
SERVER_PORT=
TOKENS=
INVITE_SECONDS=

setup_rookery() {
	local dir=$WORK/rookery n k start
	mkdir -p "$dir/data"
	SERVER_PORT=$(pick_port)
	ROOKERY_ENV=(SNIKKET_DOMAIN=$DOMAIN SNIKKET_ADMIN_EMAIL=a@$DOMAIN SNIKKET_TWEAK_DATA_DIR="$dir/data"
		SNIKKET_TWEAK_INTERFACES=127.0.0.1 SNIKKET_TWEAK_C2S_PORT="$SERVER_PORT" SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT=0
		SNIKKET_LOGLEVEL=warn)
	# The server makes the default circle when it first starts.
	env "${ROOKERY_ENV[@]}" taskset -c "$SERVER_CPU" "$ROOKERY" serve >>"$dir/server.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$dir/server.log"
	# The ports are bound a moment before the server has made its default circle: wait for it.
	for ((k = 0; k < 100; k++)); do
		env "${ROOKERY_ENV[@]}" "$ROOKERY" circle list 2>/dev/null | grep -qw default && break
		sleep 0.1
	done
	local circle_ids=()
	if ((CIRCLES == 1 && CIRCLE_SIZE == N)); then
		circle_ids=(default)
	else
		for ((k = 0; k < CIRCLES; k++)); do
			circle_ids+=("$(env "${ROOKERY_ENV[@]}" "$ROOKERY" circle create "Circle $k" 2>>"$dir/cli.log")") ||
				die "rookery circle create failed: $(tail -n 5 "$dir/cli.log")"
		done
	fi
	log "rookery: creating $N invites with \`rookery create-invite --group ID\` ($CIRCLES circle(s) of $CIRCLE_SIZE)"
	TOKENS=$dir/tokens.txt
	: >"$TOKENS"
	start=$(date +%s.%N)
	for ((n = 1; n <= N; n++)); do
		env "${ROOKERY_ENV[@]}" "$ROOKERY" create-invite --group="${circle_ids[$(circle_of "$n")]}" >"$dir/invite.out" 2>>"$dir/cli.log" ||
			die "rookery create-invite failed: $(tail -n 5 "$dir/cli.log")"
		sed -n 's#^Your invite link: .*/invite/\([^/]*\)/\{0,1\}$#\1#p' "$dir/invite.out" >>"$TOKENS"
	done
	INVITE_SECONDS=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	(($(wc -l <"$TOKENS") == N)) || die "expected $N tokens, got $(wc -l <"$TOKENS"); last output: $(cat "$dir/invite.out")"
}

setup_prosody() { # $1: the server name, $2: ONB_NAGLE
	local dir=$WORK/$1 n k
	mkdir -p "$dir/data" "$dir/certs"
	SERVER_PORT=$(pick_port)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj "/CN=$DOMAIN" \
		-addext "subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN" \
		-keyout "$dir/certs/$DOMAIN.key" -out "$dir/certs/$DOMAIN.crt" 2>"$dir/openssl.log" ||
		die "openssl failed: $(cat "$dir/openssl.log")"
	# mod_groups: one group per circle, every member in it (the accounts do not exist yet; they will).
	: >"$dir/groups.txt"
	for ((k = 0; k < CIRCLES; k++)); do
		echo "[Circle $k]" >>"$dir/groups.txt"
		for ((n = k * CIRCLE_SIZE + 1; n <= (k + 1) * CIRCLE_SIZE; n++)); do echo "bench$n@$DOMAIN=bench$n" >>"$dir/groups.txt"; done
	done
	PROSODY_ENV=(ONB_DIR="$dir" ONB_PORT="$SERVER_PORT" ONB_NAGLE="$2")
	env "${PROSODY_ENV[@]}" taskset -c "$SERVER_CPU" prosody -F --config "$HERE/prosody.cfg.lua" >>"$dir/stdout.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	wait_listening "$SERVER_PID" "$SERVER_PORT" "$dir/prosody.log"
	log "$1: creating $N invites with the admin shell (invite:create_account)"
	TOKENS=$dir/tokens.txt
	local start
	start=$(date +%s.%N)
	for ((n = 1; n <= N; n++)); do echo "invite:create_account(\"$DOMAIN\")"; done |
		env "${PROSODY_ENV[@]}" prosodyctl --config "$HERE/prosody.cfg.lua" shell >"$dir/shell.out" 2>&1 ||
		die "prosodyctl shell failed: $(tail -n 5 "$dir/shell.out")"
	INVITE_SECONDS=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	sed -n 's/.*OK: xmpp:.*preauth=\([A-Za-z0-9_-]*\).*/\1/p' "$dir/shell.out" >"$TOKENS"
	(($(wc -l <"$TOKENS") == N)) || die "expected $N tokens, got $(wc -l <"$TOKENS"); see $dir/shell.out"
}

# ---- runs -------------------------------------------------------------------------------------------------------
RESULTS=$WORK/results.txt
: >"$RESULTS"
bench() { # $1: server name, $2: output file, then onboardbench arguments
	local name=$1 out=$2
	shift 2
	taskset -c "$LOADGEN_CPU" "$BENCH" --server "127.0.0.1:$SERVER_PORT" --domain "$DOMAIN" --tls starttls --insecure \
		--auth scram-sha-1 --user-prefix bench --first-user 1 --password 'benchpass-{n}' --server-pid "$SERVER_PID" \
		--concurrency "$CONCURRENCY" --label "$name" "$@" >"$out" 2>&1 &
	CLIENT_PID=$!
	if ! wait "$CLIENT_PID"; then
		CLIENT_PID=
		cat "$out" >&2
		die "onboardbench $* failed against $name"
	fi
	CLIENT_PID=
	sed 's/^/    /' "$out" | grep -v '^    RESULT' >&2
	grep '^RESULT ' "$out" >>"$RESULTS" || true
}

for s in $SERVERS; do
	case $s in
	rookery) setup_rookery ;;
	prosody) setup_prosody "$s" 1 ;;
	prosody-nonagle) setup_prosody "$s" 0 ;;
	esac
	echo "RESULT bench=invites label=$s n=$N seconds=$INVITE_SECONDS" >>"$RESULTS"
	log "$s: $N invites in $INVITE_SECONDS s; PID $SERVER_PID ($(cat "/proc/$SERVER_PID/comm")) on core $SERVER_CPU, onboardbench on core $LOADGEN_CPU"
	bench "$s" "$WORK/$s-register.txt" register --tokens "$TOKENS"
	for ((rep = 1; rep <= LOGIN_REPS; rep++)); do
		bench "$s#$rep" "$WORK/$s-login-$rep.txt" login --count "$N" --min-roster-items $((CIRCLE_SIZE - 1))
	done
	stop_pid "$SERVER_PID"
done

# ---- summary ----------------------------------------------------------------------------------------------------
field() { # $1 bench, $2 label, $3 field
	{ grep "^RESULT bench=$1 label=$2 " "$RESULTS" || true; } | tr ' ' '\n' | sed -n "s/^$3=//p" | head -n 1 | grep . || echo NA
}
row() { # $1 bench, $2 label suffix, $3 field, $4 text
	local line r v s
	line=$(printf '%-44s' "$4")
	for s in $SERVERS; do line+=$(printf ' %12s' "$(field "$1" "$s$2" "$3")"); done
	r=$(field "$1" "rookery$2" "$3")
	for s in $SERVERS; do
		[[ $s == rookery ]] && continue
		v=$(field "$1" "$s$2" "$3")
		if [[ $r != NA && $v != NA ]]; then
			line+=$(awk -v r="$r" -v v="$v" -v s="$s" 'BEGIN { if (r > 0) printf "   %s/rookery x%.2f", s, v / r }')
		fi
	done
	echo "$line"
}
echo
echo "Onboarding benchmarks: $N accounts, circles of $CIRCLE_SIZE, $CONCURRENCY connections at a time, STARTTLS;"
echo "server on core $SERVER_CPU, onboardbench on core $LOADGEN_CPU. CPU = server CPU from clock ticks over the whole storm (schedstat beside it)."
echo
header=$(printf '%-44s' "")
for s in $SERVERS; do header+=$(printf ' %12s' "$s"); done
echo "$header"
row invites "" seconds "make $N invites (s)"
row register "" per_s "registrations per second"
row register "" cpu_ticks_ms_per "  server CPU per registration (ms)"
row register "" cpu_ms_per "  (schedstat) (ms)"
row register "" p50_ms "  latency p50 (ms)"
for ((rep = 1; rep <= LOGIN_REPS; rep++)); do
	row login "#$rep" per_s "login storm #$rep: logins per second"
	row login "#$rep" cpu_ticks_ms_per "  server CPU per login (ms)"
	row login "#$rep" cpu_ms_per "  (schedstat) (ms)"
	row login "#$rep" p50_ms "  latency p50 (ms)"
	row login "#$rep" roster_items_per "  roster items per login"
done
echo
echo "raw results: $RESULTS$([[ $KEEP == 1 ]] || echo ' (deleted at exit; KEEP=1 keeps it)')"
