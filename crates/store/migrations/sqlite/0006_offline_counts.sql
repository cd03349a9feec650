-- How many offline messages each account holds, kept by triggers, so that checking the per-account limit before
-- storing one more is a single-row read instead of a count over up to the limit's number of rows.

CREATE TABLE offline_counts (
    owner TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE ON UPDATE CASCADE,
    held  INTEGER NOT NULL
);

INSERT INTO offline_counts (owner, held)
SELECT owner, COUNT(*) FROM offline_messages GROUP BY owner;

CREATE TRIGGER offline_messages_counted_in AFTER INSERT ON offline_messages
BEGIN
    INSERT INTO offline_counts (owner, held) VALUES (NEW.owner, 1)
    ON CONFLICT (owner) DO UPDATE SET held = held + 1;
END;

CREATE TRIGGER offline_messages_counted_out AFTER DELETE ON offline_messages
BEGIN
    UPDATE offline_counts SET held = held - 1 WHERE owner = OLD.owner;
END;
