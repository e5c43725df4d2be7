-- 0003_handshakes.sql - the handshake apart from the session's hot columns.
-- A session row is rewritten by every polling request (sent_upto, poller,
-- the heartbeat deadlines), and SQLite writes whole pages to the WAL: with
-- the handshake JSON (the request's headers: ~200 bytes from a bare client,
-- ~1 KB from a browser) in the same row, 1,000 sessions spread over 4-15
-- times as many pages. Measured with the write pattern of a broadcast to
-- 1,000 held polls (a queue row each, the answers and the next GETs in
-- batches of 250), 20 rounds: WAL written 52.6 MB -> 13.9 MB with 205-byte
-- handshakes, 252 MB -> 14.1 MB with 1 KB ones. The handshake is written
-- once and read only by fetchSockets / `siogate sockets --details`.
CREATE TABLE handshakes (
    sid       TEXT PRIMARY KEY,
    handshake TEXT NOT NULL       -- JSON: address, url, query, headers, time
) WITHOUT ROWID;
INSERT INTO handshakes (sid, handshake) SELECT sid, handshake FROM sessions;
ALTER TABLE sessions DROP COLUMN handshake;
