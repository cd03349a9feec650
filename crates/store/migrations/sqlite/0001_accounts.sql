-- Accounts of the server's user domain (one per server, as in Snikket). Later stores (roster, archive, invites,
-- circles, ...) come in their own migrations.

CREATE TABLE accounts (
    -- Stored exactly as given: callers have applied nodeprep already.
    username   TEXT    NOT NULL PRIMARY KEY,
    -- Prosody's role name (prosody:admin, prosody:registered, prosody:restricted), so that imported data and
    -- OAuth scopes use the same words.
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL, -- unix seconds
    disabled   BOOLEAN NOT NULL DEFAULT FALSE
);

-- SCRAM keys, one row per hash: Prosody's internal_hashed data, never a password. Accounts imported from Prosody
-- have only SHA-1 until their next password change.
CREATE TABLE account_scram_keys (
    username   TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    hash       TEXT    NOT NULL, -- 'SHA-1' or 'SHA-256', as in the SASL mechanism name
    salt       BLOB    NOT NULL,
    iterations INTEGER NOT NULL,
    stored_key BLOB    NOT NULL,
    server_key BLOB    NOT NULL,
    updated_at INTEGER NOT NULL, -- unix seconds: when this password was set
    PRIMARY KEY (username, hash)
);
