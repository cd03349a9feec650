-- Debian Prosody 0.12 configuration for the instant-messaging benchmarks (benches/im/run.sh): Snikket's settings
-- for what they exercise. epoll with default network_settings, c2s with STARTTLS required, internal_hashed
-- accounts (SCRAM-SHA-1), internal (file) storage, and the modules of Snikket that see presence, rosters and
-- messages: roster, presence/message/iq/offline (loaded automatically), blocklist, carbons, pep, vcard4 +
-- vcard_legacy, private, plus saslauth, tls, disco, ping. No s2s, HTTP, MAM, smacks or posix.
--
-- run.sh sets (Prosody reads ENV_<NAME> as $NAME):
--   IM_DIR    scratch directory: data/, certs/bench.local.{crt,key}, prosody.pid, prosody.log
--   IM_PORT   the c2s port (on 127.0.0.1)
--   IM_NAGLE  "0" for network_settings = { nagle = false }; anything else keeps Prosody's defaults, as Snikket does

local dir = ENV_IM_DIR or error("IM_DIR is not set")
local port = tonumber(ENV_IM_PORT) or error("IM_PORT is not set")

run_as_root = true -- benchmarks run as root here; Prosody would otherwise refuse or try to setuid
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
certificates = dir .. "/certs"
log = { warn = dir .. "/prosody.log" }

network_backend = "epoll" -- set explicitly by Snikket (also the 0.12 default)
if ENV_IM_NAGLE == "0" then
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
}
modules_disabled = { "s2s"; "posix" }

VirtualHost "bench.local"
	ssl = {
		certificate = dir .. "/certs/bench.local.crt";
		key = dir .. "/certs/bench.local.key";
	}
