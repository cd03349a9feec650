-- The message archive (XEP-0313) of each account, and its archiving preferences.
--
-- Built for archives of a million messages per owner: every query names one owner and pages by keyset on
-- (archived_at, id) through one of the indexes below, so a page costs a few index seeks whatever the archive's size.
-- No query pages with OFFSET.

CREATE TABLE archive (
    -- The row id: orders messages archived in the same millisecond, and is the second half of every page key.
    id          INTEGER PRIMARY KEY,
    owner       TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    -- The XEP-0359 stanza id given to the message: random, URL-safe, unique within the owner's archive.
    stanza_id   TEXT    NOT NULL,
    archived_at INTEGER NOT NULL, -- unix milliseconds
    -- The other party: its bare JID, and its resource when it had one (for `with` filters on a full JID).
    with_bare   TEXT    NOT NULL,
    with_resource TEXT,
    -- The message as archived, serialised with its namespace declared (xmlns='jabber:client').
    stanza      TEXT    NOT NULL
);

CREATE UNIQUE INDEX archive_stanza_ids ON archive (owner, stanza_id);
CREATE INDEX archive_by_time ON archive (owner, archived_at, id);
CREATE INDEX archive_by_peer ON archive (owner, with_bare, archived_at, id);

-- XEP-0313 §6 preferences. No row: the default, 'always' (Snikket archives everything).
CREATE TABLE archive_prefs (
    owner        TEXT NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    default_mode TEXT NOT NULL CHECK (default_mode IN ('always', 'never', 'roster'))
);

-- The JIDs whose messages are always or never archived, whatever the default.
CREATE TABLE archive_pref_jids (
    owner  TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    jid    TEXT    NOT NULL,
    always INTEGER NOT NULL CHECK (always IN (0, 1)),
    PRIMARY KEY (owner, jid)
) WITHOUT ROWID;
