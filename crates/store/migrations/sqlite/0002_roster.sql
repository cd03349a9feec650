-- Rosters (RFC 6121 §2) and subscription state (§3). One row per contact in an account's roster; the contact is a
-- bare JID, already normalised by the caller.

CREATE TABLE roster_items (
    owner        TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    contact      TEXT    NOT NULL,
    name         TEXT,
    -- 'none', 'to', 'from' or 'both', as in the roster item's 'subscription' attribute.
    subscription TEXT    NOT NULL,
    -- Pending-out: the owner asked to see the contact's presence and has no answer yet (ask='subscribe').
    ask          BOOLEAN NOT NULL DEFAULT FALSE,
    -- Pre-approved (RFC 6121 §3.4): a subscription request from the contact will be approved without asking.
    approved     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (owner, contact)
);

CREATE TABLE roster_groups (
    owner      TEXT NOT NULL,
    contact    TEXT NOT NULL,
    group_name TEXT NOT NULL,
    PRIMARY KEY (owner, contact, group_name),
    FOREIGN KEY (owner, contact) REFERENCES roster_items (owner, contact) ON DELETE CASCADE ON UPDATE CASCADE
);

-- Pending-in: subscription requests the owner has not answered, kept whether or not the contact is in the roster,
-- with the request as received (its <status/> and extensions), so it can be shown again at each login.
CREATE TABLE roster_pending_in (
    owner       TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    contact     TEXT    NOT NULL,
    request     TEXT    NOT NULL,
    received_at INTEGER NOT NULL, -- unix seconds
    PRIMARY KEY (owner, contact)
);

-- The roster version (RFC 6121 §2.6): raised by every change to an account's items.
CREATE TABLE roster_versions (
    owner   TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    version INTEGER NOT NULL
);
