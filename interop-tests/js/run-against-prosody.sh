#!/usr/bin/env bash
# Runs every xmpp.js scenario against Debian's Prosody 0.12, each against a fresh throw-away Prosody on a free
# loopback port with its own data directory and a CA-signed certificate for interop.test: the proof that the
# scenarios check real, RFC-conforming server behaviour (interop-tests/tests/xmppjs.rs runs the same scripts
# against Rookery).
#
#   interop-tests/js/run-against-prosody.sh            all scenarios
#   interop-tests/js/run-against-prosody.sh roster     only these
#   KEEP=1 ...                                         keep the scratch directory (Prosody logs) even on success
#   STRICT=1 ...                                       allow none of Prosody's known deviations (those scenarios fail)
#
# Needs prosody/prosodyctl, openssl, ss and node (installs the Debian packages if missing, as root) and runs
# `npm ci` here when node_modules is missing. Exits non-zero if any scenario fails.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOMAIN=interop.test
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
ALL_SCENARIOS=(roster subscriptions messages blocking services password pep mam)
SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=("${ALL_SCENARIOS[@]}")
# The accounts every scenario gets (user:password).
ACCOUNTS=(alice:first-secret-1111 bob:second-secret-222 carol:third-secret-3333 dave:fourth-secret-444)

# Where Prosody 0.12 departs from the RFCs/XEPs the scenarios check. Each one is still checked, and reported as
# "KNOWN DEVIATION" instead of failing (see README.md beside this file for the details).
DEVIATIONS=(
	roster-duplicate-group # RFC 6121 §2.3.3: duplicate <group/>s MUST get bad-request; Prosody merges them
	roster-empty-group     # RFC 6121 §2.3.3: an empty <group/> MUST get not-acceptable; Prosody stores ""
	roster-ver-first-change # RFC 6121 §2.6.1: the version changes with the roster; Prosody reports "1" for an empty roster and again after the first change
	preapproval-approved-flag # RFC 6121 §3.4.2: a pre-approved contact is pushed with approved='true'; Prosody leaves it out
	roster-foreign-set     # RFC 6121 §2.3.3: a roster set for another account MUST get forbidden; Prosody says service-unavailable
	pep-presence-access-error # XEP-0060 §6.5.9.2: items of a presence-access node refused with not-authorized + presence-subscription-required; Prosody says forbidden
)

log() { printf '[xmppjs-prosody %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

apt_install() {
	log "installing $*"
	apt-get -o DPkg::Lock::Timeout=300 install -y "$@" >&2 ||
		{ apt-get -o DPkg::Lock::Timeout=300 update >&2 && apt-get -o DPkg::Lock::Timeout=300 install -y "$@" >&2; }
}
command -v prosody >/dev/null && command -v prosodyctl >/dev/null || apt_install prosody
command -v openssl >/dev/null || apt_install openssl
command -v ss >/dev/null || apt_install iproute2
command -v node >/dev/null || apt_install nodejs npm
if [[ ! -d $HERE/node_modules/@xmpp/client ]]; then
	log "npm ci in $HERE"
	(cd "$HERE" && npm ci --no-audit --no-fund >&2)
fi

WORK=$(mktemp -d /tmp/rookery-xmppjs-prosody.XXXXXX)
PROSODY_PID=

alive() { [[ -r /proc/$1/stat ]] && [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]; }
stop_prosody() {
	local i
	[[ -n $PROSODY_PID ]] || return 0
	if alive "$PROSODY_PID"; then
		kill -TERM "$PROSODY_PID" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$PROSODY_PID" || break
			sleep 0.1
		done
		alive "$PROSODY_PID" && kill -KILL "$PROSODY_PID" 2>/dev/null
	fi
	wait "$PROSODY_PID" 2>/dev/null || true
	PROSODY_PID=
}
FAILED=()
cleanup() {
	local rc=$?
	stop_prosody
	if [[ $rc == 0 && $KEEP != 1 ]]; then
		rm -rf "$WORK"
	else
		log "scratch directory kept: $WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port outside the ephemeral range.
pick_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + RANDOM % 12000))
		if [[ -z $(ss -ltnH "sport = :$p") ]]; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# A test CA and a certificate for the domain that it signed.
mkdir -p "$WORK/ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=xmppjs interop test CA" \
	-keyout "$WORK/ca/ca.key" -out "$WORK/ca/ca.pem" 2>>"$WORK/openssl.log" || die "openssl: $(cat "$WORK/openssl.log")"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$DOMAIN" \
	-keyout "$WORK/ca/$DOMAIN.key" -out "$WORK/ca/$DOMAIN.csr" 2>>"$WORK/openssl.log" || die "openssl: $(cat "$WORK/openssl.log")"
printf 'subjectAltName=DNS:%s,DNS:*.%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$DOMAIN" "$DOMAIN" >"$WORK/ca/leaf.ext"
openssl x509 -req -in "$WORK/ca/$DOMAIN.csr" -CA "$WORK/ca/ca.pem" -CAkey "$WORK/ca/ca.key" -CAcreateserial -days 2 \
	-extfile "$WORK/ca/leaf.ext" -out "$WORK/ca/$DOMAIN.crt" 2>>"$WORK/openssl.log" || die "openssl: $(cat "$WORK/openssl.log")"

# A fresh Prosody for one scenario, its accounts created, listening.
start_prosody() { # $1: scenario
	local dir=$WORK/$1 port i a
	mkdir -p "$dir/data" "$dir/certs"
	cp "$WORK/ca/$DOMAIN.crt" "$WORK/ca/$DOMAIN.key" "$dir/certs/"
	port=$(pick_port)
	for a in "${ACCOUNTS[@]}"; do
		XMPPJS_DIR=$dir XMPPJS_PORT=$port prosodyctl --config "$HERE/prosody.cfg.lua" register "${a%%:*}" "$DOMAIN" "${a#*:}" \
			>>"$dir/prosodyctl.log" 2>&1 || die "prosodyctl register ${a%%:*} failed: $(tail -n 5 "$dir/prosodyctl.log")"
	done
	XMPPJS_DIR=$dir XMPPJS_PORT=$port prosody -F --config "$HERE/prosody.cfg.lua" >>"$dir/stdout.log" 2>&1 &
	PROSODY_PID=$!
	for ((i = 0; i < 300; i++)); do
		alive "$PROSODY_PID" || die "Prosody exited while starting: $(tail -n 20 "$dir/prosody.log" "$dir/stdout.log" 2>/dev/null)"
		[[ -n $(ss -ltnH "sport = :$port") ]] && break
		sleep 0.1
	done
	[[ -n $(ss -ltnH "sport = :$port") ]] || die "Prosody does not listen on $port after 30 s"
	PROSODY_PORT=$port
}

PROSODY_VERSION=$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo unknown)
XMPPJS_VERSION=$(node -p "require('$HERE/node_modules/@xmpp/client/package.json').version")
log "Prosody $PROSODY_VERSION, node $(node --version), @xmpp/client $XMPPJS_VERSION"
for s in "${SCENARIOS[@]}"; do
	[[ -f $HERE/scenarios/$s.mjs ]] || die "no scenario $s (scenarios: ${ALL_SCENARIOS[*]})"
	start_prosody "$s"
	args=(--host 127.0.0.1 --port "$PROSODY_PORT" --domain "$DOMAIN" --ca "$WORK/ca/ca.pem")
	for a in "${ACCOUNTS[@]}"; do args+=(--account "$a"); done
	if [[ $STRICT != 1 ]]; then
		for d in "${DEVIATIONS[@]}"; do args+=(--allow-deviation "$d"); done
	fi
	log "scenario $s (Prosody PID $PROSODY_PID, port $PROSODY_PORT)"
	set +e
	node "$HERE/scenarios/$s.mjs" "${args[@]}" 2>&1 | tee "$WORK/$s/scenario.log"
	rc=${PIPESTATUS[0]}
	set -e
	if [[ $rc == 0 ]] && grep -q "^PASS $s\$" "$WORK/$s/scenario.log"; then
		log "scenario $s passed"
	else
		FAILED+=("$s")
		log "scenario $s FAILED; Prosody's log: $WORK/$s/prosody.log"
	fi
	stop_prosody
done

echo
echo "xmpp.js scenarios against Prosody: $((${#SCENARIOS[@]} - ${#FAILED[@]})) passed, ${#FAILED[@]} failed"
grep -h "^KNOWN DEVIATION" "$WORK"/*/scenario.log 2>/dev/null | sort -u | sed 's/^/  /' || true
((${#FAILED[@]} == 0)) || die "failed: ${FAILED[*]}"
