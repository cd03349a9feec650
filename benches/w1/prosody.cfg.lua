-- Debian Prosody 0.12 configuration for benchmark W1 (benches/w1/run.sh), equivalent to Snikket's defaults for
-- what W1 exercises: epoll backend with default network_settings, c2s with STARTTLS required, internal_hashed
-- accounts (SCRAM-SHA-1), and the modules roster, saslauth, tls, disco, ping. No s2s, no HTTP, no posix.
--
-- run.sh sets these environment variables (Prosody reads ENV_<NAME> as $NAME):
--   W1_DIR    scratch directory: data/, certs/bench.local.{crt,key}, prosody.pid, prosody.log
--   W1_PORT   the c2s port (on 127.0.0.1)
--   W1_NAGLE  "0" for the tuned variant network_settings = { nagle = false } (best Prosody result in
--             performance.md); anything else keeps Prosody's defaults, as Snikket does.
--   W1_FLOOR  "1" for the configuration of performance.md's published figures instead: plaintext c2s and SASL
--             ANONYMOUS (the cheapest possible login and stream, not what Snikket does)

local dir = ENV_W1_DIR or error("W1_DIR is not set")
local port = tonumber(ENV_W1_PORT) or error("W1_PORT is not set")

run_as_root = true -- benchmarks run as root here; Prosody would otherwise refuse or try to setuid
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
certificates = dir .. "/certs"
log = { warn = dir .. "/prosody.log" }

network_backend = "epoll" -- set explicitly by Snikket (also the 0.12 default)
if ENV_W1_NAGLE == "0" then
	network_settings = { nagle = false }
end

interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { port }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
http_ports = {}
https_ports = {}
component_ports = {}

local floor = ENV_W1_FLOOR == "1"
c2s_require_encryption = not floor
authentication = floor and "anonymous" or "internal_hashed"
storage = "internal"

-- W1_SNIKKET=1: also the modules Snikket loads that act on every chat message, as Snikket configures them.
local snikket = ENV_W1_SNIKKET == "1"
modules_enabled = snikket
	and { "roster"; "saslauth"; "tls"; "disco"; "ping"; "mam"; "carbons"; "smacks"; "csi_simple"; "blocklist"; "pep" }
	or { "roster"; "saslauth"; "tls"; "disco"; "ping" }
archive_expires_after = "1w"
default_archive_policy = true
modules_disabled = { "s2s"; "posix" }

VirtualHost "bench.local"
	ssl = {
		certificate = dir .. "/certs/bench.local.crt";
		key = dir .. "/certs/bench.local.key";
	}
