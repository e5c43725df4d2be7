-- 0006_queue_volatile.sql - what max_queued_packets drops first.
-- A frame of a volatile packet (a volatile emit queued for a session that
-- could take it at the emit) is marked 1; NULL for every other frame (and
-- for every row before this migration: ADD COLUMN with no default rewrites
-- nothing). When a session is found over max_queued_packets, its volatile
-- frames not handed to the transport yet are deleted first, whole packets
-- only (see store.c, ST_QUEUE_SHED); only if it is still over is it
-- closed. Broadcast log rows (sid = '') are never volatile: volatile emits
-- always go per recipient.
ALTER TABLE queue ADD COLUMN volatile INTEGER;
