-- Prosody's own stream parser (util.xmppstream: lua-expat building stanza tables, as mod_c2s uses it) on the
-- parse benchmark's corpus, fed in 4 KiB chunks like a socket read. Reports MB/s and stanzas/s of CPU time.
-- Usage: lua5.4 benches/xml/prosody_parse.lua CORPUS_FILE [REPETITIONS]   (needs Debian's prosody package)
package.path = "/usr/lib/prosody/?.lua;" .. package.path
package.cpath = "/usr/lib/prosody/?.so;" .. package.cpath

local xmppstream = require "util.xmppstream"

local path = assert(arg[1], "usage: prosody_parse.lua CORPUS_FILE [REPETITIONS]")
local reps = tonumber(arg[2] or "5")
local f = assert(io.open(path, "rb"))
local doc = f:read("a")
f:close()

local CHUNK = 4096
local stanzas = 0
local callbacks = {
	stream_ns = "http://etherx.jabber.org/streams",
	default_ns = "jabber:client",
	-- As mod_c2s does: the session is "not open" until the stream header arrives.
	streamopened = function(session) session.notopen = nil end,
	streamclosed = function() end,
	handlestanza = function(_, stanza) stanzas = stanzas + 1 end,
	error = function(_, err, data) error("parse error: " .. tostring(err) .. " " .. tostring(data)) end,
}

local best = math.huge
for _ = 1, reps do
	stanzas = 0
	local session = { notopen = true }
	-- No stanza limit: the byte accounting behind it needs mod_c2s's session bookkeeping, and the corpus is valid.
	local stream = xmppstream.new(session, callbacks, math.huge)
	local t0 = os.clock()
	for i = 1, #doc, CHUNK do
		local ok, err = stream:feed(doc:sub(i, i + CHUNK - 1))
		if not ok then error("feed failed: " .. tostring(err)) end
	end
	local t = os.clock() - t0
	if t < best then best = t end
end

print(string.format("prosody util.xmppstream: %d bytes, %d stanzas, best of %d: %.1f MB/s, %.0f stanzas/s (CPU time)",
	#doc, stanzas, reps, #doc / best / 1e6, stanzas / best))
