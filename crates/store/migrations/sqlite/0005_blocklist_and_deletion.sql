-- XEP-0191 blocklists, and the accounts waiting out Snikket's deletion grace period. Both reference accounts with
-- ON DELETE CASCADE, like every table holding an account's data: deleting the account row deletes all of it.

-- The JIDs an account blocked, normalised by the caller: a full JID, a bare JID or a domain.
CREATE TABLE blocklist_items (
    owner      TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    jid        TEXT    NOT NULL,
    blocked_at INTEGER NOT NULL, -- unix seconds
    PRIMARY KEY (owner, jid)
);

-- Accounts whose owner asked for deletion (XEP-0077 <remove/>): disabled at once and deleted for good once
-- pending_until has passed, unless an admin re-enables them first. Prosody's accounts_cleanup store.
CREATE TABLE account_deletions (
    username      TEXT    NOT NULL PRIMARY KEY
                          REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    deleted_at    INTEGER NOT NULL, -- unix seconds: when the owner asked
    pending_until INTEGER NOT NULL  -- unix seconds: the end of the grace period
);

CREATE INDEX account_deletions_by_pending_until ON account_deletions (pending_until);
