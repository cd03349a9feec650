-- Personal eventing (XEP-0163): each account's publish-subscribe nodes and their items. Everything goes with its
-- account (ON DELETE CASCADE), and items go with their node.

-- One row per node. `config` is the node's configuration as the PEP module writes it (this store does not read
-- it); `max_items` is copied out of it because the store trims items to it.
CREATE TABLE pep_nodes (
    owner      TEXT    NOT NULL REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    node       TEXT    NOT NULL,
    config     TEXT    NOT NULL,
    max_items  INTEGER NOT NULL,
    created_at INTEGER NOT NULL, -- unix seconds
    PRIMARY KEY (owner, node)
);

-- Items, in publishing order (`seq` grows within a node; republishing an id moves it to the end).
CREATE TABLE pep_items (
    owner        TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    item_id      TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    publisher    TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    -- Bytes of `payload` (UTF-8), so that the per-account quota is one SUM in every backend.
    size         INTEGER NOT NULL,
    published_at INTEGER NOT NULL, -- unix seconds
    PRIMARY KEY (owner, node, item_id),
    FOREIGN KEY (owner, node) REFERENCES pep_nodes (owner, node) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE INDEX pep_items_by_seq ON pep_items (owner, node, seq);
