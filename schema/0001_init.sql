-- 0001_init.sql - sessions, sockets, rooms and the outbound queue.
-- Times are milliseconds since the Unix epoch (CLOCK_REALTIME), so that
-- every process on the host agrees on them.

-- One row per Engine.IO session.
CREATE TABLE sessions (
    sid          TEXT PRIMARY KEY,
    state        INTEGER NOT NULL DEFAULT 0,  -- 0 open, 1 closed
    transport    TEXT NOT NULL,               -- 'polling' | 'websocket'
    created_at   INTEGER NOT NULL,
    next_ping_at INTEGER NOT NULL,            -- when the server's next ping is due
    ping_sent    INTEGER NOT NULL DEFAULT 0,  -- 1 while a ping awaits its pong
    expires_at   INTEGER NOT NULL,            -- closed with "ping timeout" after this
    connect_by   INTEGER,                     -- closed unless a namespace is joined by then
    sent_upto    INTEGER NOT NULL DEFAULT 0,  -- highest queue.seq handed to the transport
    poller       TEXT,                        -- polling: token of the GET in flight;
                                              -- websocket: the connection holding it
    upgrading    INTEGER NOT NULL DEFAULT 0,  -- when "2probe" came, until "5"; 0 = no
    partial      BLOB,                        -- incomplete binary packet (polling form)
    closed_at    INTEGER,
    close_reason TEXT,
    handshake    TEXT NOT NULL                -- JSON: address, url, query, headers, time
) WITHOUT ROWID;
CREATE INDEX sessions_expiry ON sessions (state, expires_at);

-- One row per Socket.IO socket (a session's connection to a namespace).
CREATE TABLE sockets (
    id         TEXT PRIMARY KEY,
    sid        TEXT NOT NULL,
    nsp        TEXT NOT NULL,
    data       TEXT,                          -- socket.data as JSON, NULL when unset
    created_at INTEGER NOT NULL,
    next_ack   INTEGER NOT NULL DEFAULT 0,    -- next id for a server-to-client ack
    UNIQUE (sid, nsp)
) WITHOUT ROWID;

-- Room membership; every socket is in the room named by its own id.
CREATE TABLE rooms (
    nsp       TEXT NOT NULL,
    room      TEXT NOT NULL,
    socket_id TEXT NOT NULL,
    PRIMARY KEY (nsp, room, socket_id)
) WITHOUT ROWID;
CREATE INDEX rooms_by_socket ON rooms (socket_id);

-- Outbound Engine.IO frames per session, in order. A text frame holds the
-- whole text packet ("42[...]"), a binary frame the raw bytes. Rows up to
-- sessions.sent_upto were handed to the transport; they are deleted when
-- the next GET proves the previous response arrived.
CREATE TABLE queue (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    sid    TEXT NOT NULL,
    binary INTEGER NOT NULL,
    frame  BLOB NOT NULL
);
CREATE INDEX queue_by_sid ON queue (sid, seq);

-- Server-to-client acknowledgements awaited: the reply (or the timeout)
-- goes to the plugin ack handler `name`, in whichever process sees it.
CREATE TABLE acks (
    socket_id TEXT NOT NULL,
    id        INTEGER NOT NULL,
    sid       TEXT NOT NULL,
    nsp       TEXT NOT NULL,
    name      TEXT NOT NULL,
    deadline  INTEGER NOT NULL,
    data      TEXT,                           -- JSON handed to the handler
    PRIMARY KEY (socket_id, id)
) WITHOUT ROWID;
CREATE INDEX acks_by_deadline ON acks (deadline);

-- Replies to acknowledgements asked by a caller outside the servers (the
-- CLI's emit --ack): the caller's mailbox `name` ('@…') collects them.
CREATE TABLE ack_replies (
    name      TEXT NOT NULL,
    socket_id TEXT NOT NULL,
    args      TEXT NOT NULL,                  -- the client's reply, a JSON array
    at        INTEGER NOT NULL
);
CREATE INDEX ack_replies_by_name ON ack_replies (name);
