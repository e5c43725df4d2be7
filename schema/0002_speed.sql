-- 0002_speed.sql - what the polling loop's safety re-check reads.
-- siogate-fcgi asks once a second which sessions may have something for
-- a held GET: those with frames after the last queue seq it saw (a range of
-- the queue's primary key) and those in the middle of an upgrade. This
-- partial index makes the second part a lookup of the few upgrading
-- sessions instead of a scan of all of them.
CREATE INDEX sessions_upgrading ON sessions (upgrading) WHERE upgrading <> 0;

-- The sweep (once a second in every daemon) asks for the open sessions
-- whose connect deadline passed: only those that have not joined a
-- namespace yet have one, so a partial index keeps that a lookup instead of
-- a scan of every session (5,000 idle sessions: most of the sweep's cost).
CREATE INDEX sessions_connect_by ON sessions (connect_by)
    WHERE state = 0 AND connect_by IS NOT NULL;
