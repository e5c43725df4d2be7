-- 0007_recovery.sql - connection state recovery (config recovery_window).
-- A socket gets a private id (pid) that its client sends back with the
-- offset of the last event it saw; an event that can be recovered (no
-- ack, not volatile) carries its offset (eid, from the counter row 'eid':
-- max(previous + 1, emit time in ms * 1000), so that it also tells its
-- age) as its last argument, and its queue rows keep eid and the
-- namespace. On a recoverable disconnect the session's sockets move, with
-- their rooms, data and queued events, into a "ghost" session: sid '~' +
-- the old sid, state 2, expires_at = the end of the recovery window. A
-- ghost's sockets keep receiving the events sent to their rooms; they are
-- not counted by emits nor listed by fetchSockets. A CONNECT carrying the
-- pid within the window moves the socket back and replays its events
-- after the offset. Existing rows are untouched (pid, eid NULL); with
-- recovery_window = 0 (the default) nothing here is written.
ALTER TABLE sockets ADD COLUMN pid TEXT;
CREATE UNIQUE INDEX sockets_pid ON sockets (pid) WHERE pid IS NOT NULL;
ALTER TABLE queue ADD COLUMN eid INTEGER;
INSERT INTO counters (name, n) VALUES ('eid', 0);
