-- Debian's Prosody 0.12 as the reference server for the xmpp.js scenarios (run-against-prosody.sh), with the
-- instant-messaging modules Snikket loads that the scenarios exercise. Paths and port come from the environment
-- (Prosody reads ENV_<NAME> as $NAME), so that this file stays fixed:
--   XMPPJS_DIR   scratch directory: data/, certs/, prosody.pid, prosody.log
--   XMPPJS_PORT  the c2s port (on 127.0.0.1)

local dir = ENV_XMPPJS_DIR or error("XMPPJS_DIR is not set")
local port = tonumber(ENV_XMPPJS_PORT) or error("XMPPJS_PORT is not set")

run_as_root = true -- the test machines run as root; Prosody would otherwise refuse or try to setuid
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
certificates = dir .. "/certs"
log = { info = dir .. "/prosody.log" }

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

-- As Snikket: roster, disco, ping, blocklist (XEP-0191), vcard4 + vcard_legacy (XEP-0054 over PEP), private
-- (XEP-0049), version (XEP-0092), time (XEP-0202), uptime (XEP-0012 on the host), register (XEP-0077 password
-- change). presence, message, iq and offline are loaded automatically.
modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "blocklist"; "pep"; "vcard4"; "vcard_legacy"; "private";
	"version"; "time"; "uptime"; "register"; "mam";
}
modules_disabled = { "s2s"; "posix" }
allow_registration = true -- mod_register's password change needs it in 0.12

VirtualHost "interop.test"
	ssl = {
		certificate = dir .. "/certs/interop.test.crt";
		key = dir .. "/certs/interop.test.key";
	}
