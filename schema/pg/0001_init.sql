-- pg/0001_init.sql - the whole store on PostgreSQL: what SQLite's
-- schema/0001..0007 make, in one migration (see those files for why each
-- table, column and index is there). The store (gateway/store_pg.c) runs
-- it inside one transaction holding its advisory lock, and records the
-- version in schema_version.
--
-- Times are milliseconds since the Unix epoch (bigint). Identifiers and
-- room names are TEXT COLLATE "C": compared and ordered bytewise, as
-- SQLite's BINARY collation does (sockets are listed by (created_at, id),
-- a socket's rooms by name), whatever the database's locale. JSON values
-- are TEXT (read with jsonb_array_elements_text where SQLite uses
-- json_each). Frames and the partial buffer are bytea.

-- One row per Engine.IO session; a recovery ghost ('~' + sid) is state 2.
CREATE TABLE sessions (
    sid          TEXT COLLATE "C" PRIMARY KEY,
    state        integer NOT NULL DEFAULT 0,  -- 0 open, 1 closed, 2 recovery ghost
    transport    TEXT NOT NULL,               -- 'polling' | 'websocket' | 'ghost'
    created_at   bigint NOT NULL,
    next_ping_at bigint NOT NULL,
    ping_sent    integer NOT NULL DEFAULT 0,
    expires_at   bigint NOT NULL,
    connect_by   bigint,
    sent_upto    bigint NOT NULL DEFAULT 0,
    poller       TEXT,
    upgrading    bigint NOT NULL DEFAULT 0,
    partial      bytea,
    closed_at    bigint,
    close_reason TEXT,
    bcast_seen   bigint NOT NULL DEFAULT 0
);
CREATE INDEX sessions_expiry ON sessions (state, expires_at);
CREATE INDEX sessions_upgrading ON sessions (upgrading) WHERE upgrading <> 0;
CREATE INDEX sessions_connect_by ON sessions (connect_by)
    WHERE state = 0 AND connect_by IS NOT NULL;

-- The handshake apart from the session's hot columns (SQLite's 0003).
CREATE TABLE handshakes (
    sid       TEXT COLLATE "C" PRIMARY KEY,
    handshake TEXT NOT NULL       -- JSON: address, url, query, headers, time
);

CREATE TABLE sockets (
    id         TEXT COLLATE "C" PRIMARY KEY,
    sid        TEXT COLLATE "C" NOT NULL,
    nsp        TEXT COLLATE "C" NOT NULL,
    data       TEXT,                          -- socket.data as JSON, NULL when unset
    created_at bigint NOT NULL,
    next_ack   bigint NOT NULL DEFAULT 0,
    pid        TEXT COLLATE "C",              -- connection state recovery
    UNIQUE (sid, nsp)
);
CREATE UNIQUE INDEX sockets_pid ON sockets (pid) WHERE pid IS NOT NULL;

CREATE TABLE rooms (
    nsp       TEXT COLLATE "C" NOT NULL,
    room      TEXT COLLATE "C" NOT NULL,
    socket_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (nsp, room, socket_id)
);
CREATE INDEX rooms_by_socket ON rooms (socket_id);

-- Outbound frames per session, and the broadcast log (sid ''). seq comes
-- from a sequence, allocated inside the store's write lock, so it grows
-- in commit order (sg_store_changed_since's mark relies on it).
CREATE TABLE queue (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid          TEXT COLLATE "C" NOT NULL,
    "binary"     integer NOT NULL,
    frame        bytea NOT NULL,
    nsp          TEXT COLLATE "C",
    rooms        TEXT,                        -- JSON array, NULL = the whole namespace
    except_rooms TEXT,                        -- JSON array or NULL
    skip         TEXT COLLATE "C",
    volatile     integer,                     -- 1: a frame of a volatile packet
    eid          bigint                       -- a recoverable event's offset
);
CREATE INDEX queue_by_sid ON queue (sid, seq);

CREATE TABLE acks (
    socket_id TEXT COLLATE "C" NOT NULL,
    id        bigint NOT NULL,
    sid       TEXT NOT NULL,
    nsp       TEXT NOT NULL,
    name      TEXT NOT NULL,
    deadline  bigint NOT NULL,
    data      TEXT,
    PRIMARY KEY (socket_id, id)
);
CREATE INDEX acks_by_deadline ON acks (deadline);

-- id: SQLite's rowid (the order replies came in).
CREATE TABLE ack_replies (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      TEXT COLLATE "C" NOT NULL,
    socket_id TEXT NOT NULL,
    args      TEXT NOT NULL,
    at        bigint NOT NULL
);
CREATE INDEX ack_replies_by_name ON ack_replies (name);

-- Counters: 'open_sessions' (kept by the triggers below, so that the
-- handshake limit reads one row) and 'eid' (the last event offset).
CREATE TABLE counters (
    name TEXT COLLATE "C" PRIMARY KEY,
    n    bigint NOT NULL
);
INSERT INTO counters (name, n) VALUES ('open_sessions', 0), ('eid', 0);

CREATE FUNCTION sg_sessions_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE counters SET n = n + 1 WHERE name = 'open_sessions';
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE counters SET n = n - 1 WHERE name = 'open_sessions';
    ELSIF NEW.state = 0 THEN
        UPDATE counters SET n = n + 1 WHERE name = 'open_sessions';
    ELSE
        UPDATE counters SET n = n - 1 WHERE name = 'open_sessions';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_count_insert AFTER INSERT ON sessions
    FOR EACH ROW WHEN (NEW.state = 0) EXECUTE FUNCTION sg_sessions_count();
CREATE TRIGGER sessions_count_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.state = 0) EXECUTE FUNCTION sg_sessions_count();
CREATE TRIGGER sessions_count_update AFTER UPDATE OF state ON sessions
    FOR EACH ROW WHEN ((OLD.state = 0) <> (NEW.state = 0))
    EXECUTE FUNCTION sg_sessions_count();

-- Handshakes per remote address: a token bucket (SQLite's 0004).
CREATE TABLE handshake_rate (
    address TEXT COLLATE "C" PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      bigint NOT NULL
);
