-- Debian Prosody 0.12 configuration for the onboarding benchmarks (benches/onboarding/run.sh): the settings of
-- benches/im/prosody.cfg.lua (Snikket's, for what they exercise) plus what onboarding needs: in-band registration
-- by invite only (mod_register with allow_registration, mod_invites, mod_invites_register, which turns on
-- registration_invite_only and loads mod_register_ibr and mod_register_limits), the admin shell (to make the
-- invites), and mod_groups with a groups file for the circles (Snikket uses the community mod_groups_internal,
-- which Debian does not ship).
--
-- run.sh sets (Prosody reads ENV_<NAME> as $NAME):
--   ONB_DIR    scratch directory: data/, certs/bench.local.{crt,key}, groups.txt, prosody.pid, prosody.log
--   ONB_PORT   the c2s port (on 127.0.0.1)
--   ONB_NAGLE  "0" for network_settings = { nagle = false }; anything else keeps Prosody's defaults, as Snikket does

local dir = ENV_ONB_DIR or error("ONB_DIR is not set")
local port = tonumber(ENV_ONB_PORT) or error("ONB_PORT is not set")

run_as_root = true -- benchmarks run as root here; Prosody would otherwise refuse or try to setuid
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
certificates = dir .. "/certs"
log = { warn = dir .. "/prosody.log" }
admin_socket = dir .. "/prosody.sock"

network_backend = "epoll"
if ENV_ONB_NAGLE == "0" then
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

allow_registration = true
registration_invite_only = true -- the 0.12 default, stated: no registration without an invite
-- mod_register_limits allows 127.0.0.1 without throttling by default (registration_allowlist); nothing to change.

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "blocklist"; "carbons"; "pep"; "vcard4"; "vcard_legacy"; "private";
	"register"; "invites"; "invites_register"; "groups"; "admin_shell";
}
modules_disabled = { "s2s"; "posix" }
groups_file = dir .. "/groups.txt"

VirtualHost "bench.local"
	ssl = {
		certificate = dir .. "/certs/bench.local.crt";
		key = dir .. "/certs/bench.local.key";
	}
