-- Invites (Snikket's mod_invites) and circles (mod_groups_internal).

CREATE TABLE invites (
    -- 18 random bytes, base64url without padding (24 characters), as Prosody's id.medium().
    token              TEXT    NOT NULL PRIMARY KEY,
    -- 'account' (any or a fixed username), 'reset' (a new password for `username`) or 'contact' (become a contact
    -- of `username`, the inviter; Prosody's 'roster' invites).
    kind               TEXT    NOT NULL,
    -- The fixed username of an account invite, the account of a reset invite, the inviter of a contact invite.
    username           TEXT,
    -- Whether the invite lets someone create an account (always for account invites; for contact invites only
    -- when their creator may invite users).
    allow_registration BOOLEAN NOT NULL,
    -- Reusable invites are never consumed: any number of uses until they expire.
    reusable           BOOLEAN NOT NULL DEFAULT FALSE,
    note               TEXT,
    -- Who made it: `admin@DOMAIN/cli`, the ad-hoc requester's JID, ...
    source             TEXT,
    created_at         INTEGER NOT NULL, -- unix seconds
    expires_at         INTEGER NOT NULL  -- unix seconds
);

CREATE INDEX invites_by_expiry ON invites (expires_at);

-- Roles applied at registration, in order (the first is the primary role).
CREATE TABLE invite_roles (
    token    TEXT    NOT NULL REFERENCES invites (token) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role     TEXT    NOT NULL, -- Prosody's role name
    PRIMARY KEY (token, position)
);

-- Circles joined at registration.
CREATE TABLE invite_circles (
    token     TEXT NOT NULL REFERENCES invites (token) ON DELETE CASCADE,
    circle_id TEXT NOT NULL,
    PRIMARY KEY (token, circle_id)
);

CREATE TABLE circles (
    -- 'default', or 12 random base64url characters.
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE circle_members (
    circle_id TEXT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    username  TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    PRIMARY KEY (circle_id, username)
);

CREATE INDEX circle_members_by_user ON circle_members (username);

-- Each circle's group chats (filled by the group-chat issue).
CREATE TABLE circle_chats (
    circle_id TEXT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    room_jid  TEXT NOT NULL,
    name      TEXT,
    PRIMARY KEY (circle_id, room_jid)
);

-- Which invite each account registered with (Snikket's invites_tracking).
CREATE TABLE account_invites (
    username      TEXT NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    token         TEXT NOT NULL,
    invite_source TEXT
);
