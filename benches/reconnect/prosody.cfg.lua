-- Debian Prosody 0.12 configuration for the reconnect benchmark (benches/reconnect/run.sh): the settings of
-- benches/im/prosody.cfg.lua (Snikket's, for what they exercise) plus XEP-0198 stream management (mod_smacks, built
-- into 0.12, with its defaults, which are Snikket's: 600 s hibernation, 500 unacknowledged stanzas at most).
-- Prosody 0.12 has no SASL2, Bind2 or FAST, so only the full login and SASL1 + <resume/> run against it.
--
-- run.sh sets (Prosody reads ENV_<NAME> as $NAME):
--   RC_DIR    scratch directory: data/, certs/bench.local.{crt,key}, prosody.pid, prosody.log
--   RC_PORT   the c2s port (on 127.0.0.1)
--   RC_NAGLE  "0" for network_settings = { nagle = false }; anything else keeps Prosody's defaults, as Snikket does

local dir = ENV_RC_DIR or error("RC_DIR is not set")
local port = tonumber(ENV_RC_PORT) or error("RC_PORT is not set")

run_as_root = true -- benchmarks run as root here; Prosody would otherwise refuse or try to setuid
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
certificates = dir .. "/certs"
log = { warn = dir .. "/prosody.log" }

network_backend = "epoll"
if ENV_RC_NAGLE == "0" then
	network_settings = { nagle = false }
end

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

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "blocklist"; "carbons"; "pep"; "vcard4"; "vcard_legacy"; "private";
	"smacks";
}
modules_disabled = { "s2s"; "posix" }

VirtualHost "bench.local"
	ssl = {
		certificate = dir .. "/certs/bench.local.crt";
		key = dir .. "/certs/bench.local.key";
	}
