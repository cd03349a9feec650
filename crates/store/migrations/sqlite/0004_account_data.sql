-- Small per-account documents: the vCard (XEP-0054), private XML storage (XEP-0049) and when the account last
-- logged out (XEP-0012). Each goes with its account (ON DELETE CASCADE).

-- One vCard per account, kept as the XML the client set (a later migration may convert it to vCard4 in PEP).
CREATE TABLE vcards (
    username   TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    xml        TEXT    NOT NULL,
    updated_at INTEGER NOT NULL -- unix seconds
);

-- Private XML storage: one element per (account, namespace, element name), as written out.
CREATE TABLE private_xml (
    username  TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    xml       TEXT    NOT NULL,
    -- Bytes of `xml` (UTF-8), kept so that the per-account quota is one SUM in every backend.
    size      INTEGER NOT NULL,
    PRIMARY KEY (username, namespace, name)
);

-- When each account's last session ended, and the status of its last unavailable presence.
CREATE TABLE last_logouts (
    username      TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    logged_out_at INTEGER NOT NULL, -- unix seconds
    status        TEXT
);
