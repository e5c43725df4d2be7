-- 0004_limits.sql - what the handshake limits read (config max_sessions,
-- handshakes_per_second), kept so that every process sees the same counts.
--
-- The number of open sessions, kept by triggers: count(*) over the open
-- sessions walks the index, 3-7 ms with 100,000 open sessions (on the
-- project's 2-core machine), which every handshake would pay, inside the
-- write lock. The counter row is one more page in each commit that opens
-- or closes a session: a store-only loop of open + close (two commits)
-- took 375 us instead of 270-290 us (20,000 sessions); reading it costs
-- 0.4 us.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, n)
    SELECT 'open_sessions', count(*) FROM sessions WHERE state = 0;
CREATE TRIGGER sessions_count_insert AFTER INSERT ON sessions WHEN NEW.state = 0
BEGIN
    UPDATE counters SET n = n + 1 WHERE name = 'open_sessions';
END;
CREATE TRIGGER sessions_count_delete AFTER DELETE ON sessions WHEN OLD.state = 0
BEGIN
    UPDATE counters SET n = n - 1 WHERE name = 'open_sessions';
END;
CREATE TRIGGER sessions_count_update AFTER UPDATE OF state ON sessions
    WHEN (OLD.state = 0) <> (NEW.state = 0)
BEGIN
    UPDATE counters SET n = n + (CASE WHEN NEW.state = 0 THEN 1 ELSE -1 END)
        WHERE name = 'open_sessions';
END;

-- Handshakes per remote address: a token bucket per address that holds
-- handshakes_per_second tokens at most and refills at that rate. A row
-- whose bucket is full again (at least a second old) means nothing and is
-- deleted by the sweep.
CREATE TABLE handshake_rate (
    address TEXT PRIMARY KEY,
    tokens  REAL NOT NULL,       -- left at time `at`
    at      INTEGER NOT NULL     -- ms
) WITHOUT ROWID;
