# shellcheck shell=bash
# What every benchmark script in benches/*/run.sh needs: logging, installing tools, a scratch directory whose
# servers and client are stopped however the script ends, free ports, and waiting for a server to listen.
# Sourced after the script sets BENCH_NAME (the log prefix and the scratch directory's name).

log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
uses() { [[ " $SERVERS " == *" $1 "* ]]; }

apt_install() {
	log "installing $*"
	apt-get -o DPkg::Lock::Timeout=300 install -y "$@" >&2 ||
		{ apt-get -o DPkg::Lock::Timeout=300 update >&2 && apt-get -o DPkg::Lock::Timeout=300 install -y "$@" >&2; }
}

alive() { [[ -r /proc/$1/stat ]] && [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]; }
stop_pid() {
	local pid=$1 i
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			log "PID $pid did not stop within 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# Makes the scratch directory WORK. Every server PID the script starts goes into STARTED, and the client (load
# generator) it runs into CLIENT_PID: on exit, normal or not, they are stopped, and WORK is deleted unless the run
# failed or KEEP=1.
make_scratch() {
	WORK=$(mktemp -d "/tmp/rookery-$BENCH_NAME.XXXXXX")
	STARTED=()
	CLIENT_PID=
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}
cleanup() {
	local rc=$? pid
	if [[ -n $CLIENT_PID ]]; then stop_pid "$CLIENT_PID"; fi
	for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
	if [[ $rc == 0 && $KEEP != 1 ]]; then
		rm -rf "$WORK"
	else
		log "scratch directory kept: $WORK"
	fi
	exit "$rc"
}

# A TCP port nobody listens on, outside the ephemeral range (32768-60999), not handed out before.
USED_PORTS=" "
pick_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + RANDOM % 12000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if [[ -z $(ss -ltnH "sport = :$p") ]]; then
			USED_PORTS+="$p "
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# Waits until PID listens on PORT, at most SECONDS (30).
wait_listening() {
	local pid=$1 port=$2 logfile=$3 seconds=${4:-30} i
	for ((i = 0; i < seconds * 10; i++)); do
		alive "$pid" || die "the server (PID $pid) exited while starting; $logfile says: $(tail -n 20 "$logfile" 2>/dev/null)"
		if [[ -n $(ss -ltnH "sport = :$port") ]]; then return 0; fi
		sleep 0.1
	done
	die "the server (PID $pid) does not listen on port $port after $seconds s; see $logfile"
}
