-- Clients (XEP-0388 user agents) seen logging in to each account, and their FAST tokens (XEP-0484), as Prosody's
-- mod_client_management and mod_sasl2_fast keep them.

CREATE TABLE clients (
    username   TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    -- The <user-agent id='...'/> the client sent (a UUID by the XEP's recommendation).
    client_id  TEXT    NOT NULL,
    software   TEXT,
    device     TEXT,
    first_seen INTEGER NOT NULL, -- unix seconds
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (username, client_id)
);

CREATE INDEX clients_by_last_seen ON clients (username, last_seen);

-- At most two tokens per client: the one last issued ('new') and the one in use before it ('current'). The secret
-- is kept as issued: the HT mechanisms key their HMAC with it, so the server needs the token itself.
CREATE TABLE fast_tokens (
    username   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    slot       TEXT    NOT NULL CHECK (slot IN ('new', 'current')),
    mechanism  TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- The highest <fast count='...'/> seen with this token (replay protection), NULL if none.
    last_count INTEGER,
    PRIMARY KEY (username, client_id, slot),
    FOREIGN KEY (username, client_id) REFERENCES clients (username, client_id) ON DELETE CASCADE ON UPDATE CASCADE
);
