-- 0005_broadcast_log.sql - broadcasts that do not grow with the room.
-- A broadcast at or above broadcast_log_min recipients is one queue row per
-- frame with sid = '' (so it shares the seq order with every session's own
-- frames) and its target: the namespace, the rooms (a JSON array, NULL =
-- the whole namespace), the rooms excepted (a JSON array or NULL) and a
-- socket skipped (or NULL). A session takes its own rows and the '' rows
-- whose target its sockets match, merged by seq; bcast_seen is the highest
-- seq of '' rows it has evaluated (it only grows). Before a socket of a
-- session joins, leaves, connects or disconnects, the '' rows it matched
-- until then are copied into its own rows (membership at emit time).
-- '' rows at or below every open session's max(sent_upto, bcast_seen) are
-- deleted by the sweep. Existing rows are untouched: their new columns are
-- NULL, and no '' row exists before this migration.
ALTER TABLE queue ADD COLUMN nsp TEXT;
ALTER TABLE queue ADD COLUMN rooms TEXT;
ALTER TABLE queue ADD COLUMN except_rooms TEXT;
ALTER TABLE queue ADD COLUMN skip TEXT;
ALTER TABLE sessions ADD COLUMN bcast_seen INTEGER NOT NULL DEFAULT 0;
