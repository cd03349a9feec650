-- Offline messages (XEP-0160): chat and normal messages kept for an account that had no available resource, until
-- it next sends initial presence. Delivered in `id` order and removed only once handed to a session.

CREATE TABLE offline_messages (
    -- AUTOINCREMENT: ids only grow, even after the newest row is removed, so they give the order of arrival.
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    owner     TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    -- The message as received, serialised with its namespace declared (xmlns='jabber:client').
    stanza    TEXT    NOT NULL,
    stored_at INTEGER NOT NULL -- unix seconds: the XEP-0203 delay stamp given at delivery
);

CREATE INDEX offline_messages_by_owner ON offline_messages (owner, id);
