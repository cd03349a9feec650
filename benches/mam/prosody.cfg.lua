-- Debian Prosody 0.12 configuration for the message archive benchmark (benches/mam/run.sh): Snikket's mod_mam
-- settings (archive everything, `archive_expires_after` one week, pages of at most 50) with the internal (file)
-- storage Snikket uses, c2s with STARTTLS required and internal_hashed accounts. The internal store's per-user
-- item limit (10,000 by default) is lifted so that archives of the benchmark's sizes fit.
--
-- run.sh sets (Prosody reads ENV_<NAME> as $NAME):
--   MAM_DIR   scratch directory: data/, certs/bench.local.{crt,key}, prosody.pid, prosody.log
--   MAM_PORT  the c2s port (on 127.0.0.1)

local dir = ENV_MAM_DIR or error("MAM_DIR is not set")
local port = tonumber(ENV_MAM_PORT) or error("MAM_PORT is not set")

run_as_root = true
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
certificates = dir .. "/certs"
log = { warn = dir .. "/prosody.log" }

network_backend = "epoll"
interfaces = { "127.0.0.1" }
c2s_ports = { port }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
http_ports = {}
https_ports = {}
component_ports = {}

c2s_require_encryption = true
authentication = "internal_hashed"
storage = "internal"
storage_archive_item_limit = 10000000

archive_expires_after = "1w"
max_archive_query_results = 50

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; "mam";
}
modules_disabled = { "s2s"; "posix" }

VirtualHost "bench.local"
	ssl = {
		certificate = dir .. "/certs/bench.local.crt";
		key = dir .. "/certs/bench.local.key";
	}
