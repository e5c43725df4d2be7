/* fuzz_engine.c - stateful fuzz target for the protocol engine
 * (gateway/engine.h) over a real store: a fresh SQLite database in a
 * temporary directory (in /dev/shm when there is one) for each input, and the echo plugin when
 * SG_FUZZ_PLUGIN names it (make fuzz and make check do).
 *
 * The input's first byte picks the configuration (bit 0: every broadcast
 * through the broadcast log, broadcast_log_min 0; bit 1: connection state
 * recovery on, recovery_window 60 s; bit 2: max_queued_packets 4), the
 * rest is a sequence of steps, each one byte -- its low 4 bits the
 * operation, bit 4 the second set of operations, bit 5 a variant, its top
 * 2 bits one of 4 session slots -- then, for the steps that carry data, a
 * length byte and that many bytes:
 *
 *   0 open a polling session (data: the query string)   8 ws: take frames
 *   1 open a WebSocket session and attach it            9 ws: abort the probe
 *   2 POST data                                        10 close ("transport close")
 *   3 GET (held when it waits; released by the next)   11 tick: sweep
 *   4 the held GET again, or release it                12 may a WebSocket upgrade?
 *   5 ws: probe ("2probe")                             13 batch: begin, or end
 *   6 ws: upgrade ("5")                                14 emit data's event to "/"
 *   7 ws: receive data (a polling payload)             15 receive data (payload)
 *
 * and, with bit 4 set (other operations: nothing):
 *
 *  16 CONNECT to "/" with the last private id (pid) and offset seen in
 *     any answer, to recover that socket (the variant: over the slot's
 *     WebSocket, else as a POST)
 *  17 emit data's event to the room of the last socket id seen (the
 *     variant: to "/" except that room); flags from data's first byte
 *  18 emit data's event to "/" asking each socket for an acknowledgement
 *     into the mailbox "@fuzz" (answers: ACK packets in steps 7 and 15)
 *  19 take the replies that reached "@fuzz"
 *
 * A slot without a session uses a well-formed sid no session has.
 *
 * Invariants (any broken one aborts): every result is one the call may
 * return, and never SG_E_INTERNAL (the store is healthy: a failure is a
 * bug); the open packet is "0{...}" with the new, valid sid; every GET
 * answer and every frame taken or passed to a WebSocket decodes as
 * Engine.IO (payload, or one packet), and each Socket.IO packet in it
 * decodes too (the pid, socket id and offset an answer carries are kept
 * for steps 16 and 17); nothing crashes or leaks (ASan) when the engine is freed
 * with sessions open, GETs held and a batch open. Time is real, with
 * the default timers, so nothing expires during an input. See
 * tests/fuzz/README. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "socketio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { SLOTS = 4 };

struct slot {
    char sid[SG_ID_LEN + 1];
    char owner[48];
    char held[32]; /* token of the GET held, or "" */
};

static char dir[64];
static unsigned long tokens;
/* from the answers: the last CONNECT reply's socket id and private id
 * (with recovery on), the last event's offset (its last argument) */
static char seen_sid[SG_ID_LEN + 1], seen_pid[SG_ID_LEN + 1], seen_offset[24];

/* abort(), saying which invariant broke */
#define fail_if(bad)                                                              \
    do {                                                                          \
        if (bad) {                                                                \
            fprintf(stderr, "fuzz_engine.c:%d: broken: %s\n", __LINE__, #bad);   \
            abort();                                                              \
        }                                                                         \
    } while (0)

static void keep(char *to, size_t size, const json_t *v)
{
    if (json_is_string(v) && json_string_length(v) < size)
        memcpy(to, json_string_value(v), json_string_length(v) + 1);
}

/* A Socket.IO packet text (in an Engine.IO message) must decode. */
static void check_sio(const char *text, size_t len)
{
    sg_sio_packet p;
    int rc = sg_sio_decode(text, len, &p);
    fail_if(rc != SG_SIO_OK && rc != SG_SIO_ENOMEM);
    if (rc != SG_SIO_OK)
        return;
    if (p.type == SG_SIO_CONNECT) {
        keep(seen_sid, sizeof seen_sid, json_object_get(p.data, "sid"));
        keep(seen_pid, sizeof seen_pid, json_object_get(p.data, "pid"));
    } else if (p.type == SG_SIO_EVENT && json_array_size(p.data) > 1) {
        keep(seen_offset, sizeof seen_offset,
             json_array_get(p.data, json_array_size(p.data) - 1));
    }
    sg_sio_packet_clear(&p);
}

static void check_packets(const sg_eio_packets *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        if (!ps->v[i].binary && ps->v[i].type == SG_EIO_MESSAGE)
            check_sio(ps->v[i].data, ps->v[i].len);
}

/* A GET answer: an Engine.IO payload. */
static void check_payload(const sg_buf *b)
{
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    int rc = sg_eio_decode_payload(b->data ? b->data : "", b->len, &ps);
    fail_if(rc != SG_EIO_OK && rc != SG_EIO_ENOMEM);
    if (rc == SG_EIO_OK)
        check_packets(&ps);
    sg_eio_packets_free(&ps);
}

/* A WebSocket frame: a text frame is one Engine.IO packet. */
static int check_frame(void *ud, bool binary, const void *frame, size_t len)
{
    (void)ud;
    if (binary)
        return 0;
    sg_eio_packet p;
    int rc = sg_eio_decode_packet(frame, len, &p);
    fail_if(rc != SG_EIO_OK && rc != SG_EIO_ENOMEM);
    if (rc == SG_EIO_OK) {
        if (!p.binary && p.type == SG_EIO_MESSAGE)
            check_sio(p.data, p.len);
        sg_eio_packet_clear(&p);
    }
    return 0;
}

/* rc must be one of the allowed results (a bit per -result, SG_OK and
 * SG_WAIT as bits 10 and 11). */
#define R(x) (1u << ((x) == SG_OK ? 10 : (x) == SG_WAIT ? 11 : -(x)))
#define allowed(rc, set)                                                          \
    do {                                                                          \
        int rc_ = (rc);                                                           \
        if (rc_ > SG_WAIT || rc_ < SG_E_INTERNAL || !(R(rc_) & (set))) {           \
            fprintf(stderr, "fuzz_engine.c:%d: result %d\n", __LINE__, rc_);       \
            abort();                                                              \
        }                                                                         \
    } while (0)

static void db_path(char *path, size_t size) { snprintf(path, size, "%s/fuzz.db", dir); }

static void remove_db(void)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char db[128], path[160];
    db_path(db, sizeof db);
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(path, sizeof path, "%s%s", db, suffix[i]);
        unlink(path);
    }
}

/* The store as sg_engine_new leaves it on a new file (the schema
 * migrated), written back before each input: a third of an input's time
 * was creating the schema again. */
static char *tmpl;
static size_t tmpl_len;

static void fresh_db(void)
{
    remove_db();
    char path[128];
    db_path(path, sizeof path);
    FILE *f = fopen(path, "wb");
    fail_if(!f || fwrite(tmpl, 1, tmpl_len, f) != tmpl_len || fclose(f) != 0);
}

static void keep_template(void)
{
    char path[128];
    db_path(path, sizeof path);
    FILE *f = fopen(path, "rb");
    fail_if(!f || fseek(f, 0, SEEK_END) != 0);
    long n = ftell(f);
    fail_if(n <= 0 || fseek(f, 0, SEEK_SET) != 0 || !(tmpl = malloc((size_t)n)) ||
            fread(tmpl, 1, (size_t)n, f) != (size_t)n);
    tmpl_len = (size_t)n;
    fclose(f);
}

static void cleanup(void)
{
    free(tmpl);
    remove_db();
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* the doorbell's files too */
    if (system(cmd) != 0)
        return;
}

static void open_session(sg_worker *w, struct slot *s, int ws, const char *query)
{
    static const char *const headers[] = {"host", "localhost", "user-agent", "fuzz", NULL};
    sg_handshake hs = {.address = "127.0.0.1", .url = "/socket.io/", .query = query, .headers = headers};
    sg_buf open = SG_BUF_INIT;
    char sid[SG_ID_LEN + 1];
    int rc = sg_engine_open(w, &hs, ws ? "websocket" : "polling", sid, &open);
    allowed(rc, R(SG_OK) | R(SG_E_FORBIDDEN));
    if (rc == SG_OK) {
        char want[64];
        snprintf(want, sizeof want, "0{\"sid\":\"%s\",", sid);
        fail_if(!sg_id_valid(sid) || !open.data || strncmp(open.data, want, strlen(want)) != 0 ||
                open.data[open.len - 1] != '}');
        memcpy(s->sid, sid, sizeof sid);
        s->held[0] = '\0';
        if (ws)
            allowed(sg_engine_ws_attach(w, s->sid, s->owner), R(SG_OK));
    }
    sg_buf_free(&open);
}

static void get(sg_worker *w, struct slot *s, int again)
{
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    int rc;
    if (again) {
        if (!s->held[0])
            return;
        rc = sg_engine_poll_again(w, s->sid, s->held, &b, &wake);
    } else {
        if (s->held[0]) { /* the web server hung up on it */
            sg_engine_poll_release(w, s->sid, s->held);
            s->held[0] = '\0';
        }
        snprintf(s->held, sizeof s->held, "%ld.%lu", (long)getpid(), ++tokens);
        rc = sg_engine_poll(w, s->sid, s->held, &b, &wake);
    }
    allowed(rc, R(SG_OK) | R(SG_WAIT) | R(SG_E_SID) | R(SG_E_BADREQ));
    if (rc == SG_OK)
        check_payload(&b);
    if (rc != SG_WAIT)
        s->held[0] = '\0';
    sg_buf_free(&b);
}

static void receive(sg_worker *w, struct slot *s, int ws, const uint8_t *d, size_t n)
{
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    int rc = sg_eio_decode_payload((const char *)d, n, &ps);
    if (rc == SG_EIO_OK) {
        bool due = false;
        /* data of an odd length: a connection with room for 64 bytes, so
         * that the fast path's answers go to the store past it */
        size_t room = n % 2 ? 64 : SIZE_MAX;
        rc = ws ? sg_engine_ws_receive(w, s->sid, s->owner, &ps, room, check_frame, NULL, &due)
                : sg_engine_receive(w, s->sid, &ps);
        allowed(rc, R(SG_OK) | R(SG_E_SID) | R(SG_E_BADREQ));
    }
    sg_eio_packets_free(&ps);
}

static void emit(sg_worker *w, const uint8_t *d, size_t n, const sg_target *t)
{
    char event[64];
    size_t l = strnlen((const char *)d, n < sizeof event - 1 ? n : sizeof event - 1);
    memcpy(event, d, l);
    event[l] = '\0';
    json_t *name = json_string(event);
    if (!name)
        return; /* not UTF-8: refused (-1), as it should be */
    json_decref(name);
    json_t *args = json_pack("[s#]", (const char *)d, n); /* may fail: not UTF-8 */
    fail_if(sg_engine_emit(w, t, event, args) < 0);
}

/* step 17: to the last socket's room, or to all but it */
static void emit_room(sg_worker *w, const uint8_t *d, size_t n, bool except)
{
    const char *room[] = {seen_sid, NULL};
    sg_target t = {.nsp = "/", .rooms = except ? NULL : room, .except = except ? room : NULL,
                   .flags = n ? d[0] & (SG_EMIT_VOLATILE | SG_EMIT_BROADCAST) : 0};
    emit(w, d, n, &t);
}

static void take_reply(void *ud, const char *socket_id, json_t *args)
{
    (void)ud;
    fail_if(!sg_id_valid(socket_id) || !json_is_array(args));
}

/* step 16: what a socket.io client sends to recover its socket */
static void recover(sg_worker *w, struct slot *s, bool ws)
{
    json_t *auth = json_pack("{ss}", "pid", seen_pid);
    if (seen_offset[0])
        json_object_set_new(auth, "offset", json_string(seen_offset));
    char *text = auth ? json_dumps(auth, JSON_COMPACT) : NULL;
    json_decref(auth);
    char packet[128]; /* the ids are short: {"pid":20,"offset":up to 23} */
    int n = text ? snprintf(packet, sizeof packet, "40%s", text) : -1;
    free(text);
    if (n > 0 && (size_t)n < sizeof packet)
        receive(w, s, ws, (const uint8_t *)packet, (size_t)n);
}

static void run(sg_worker *w, const uint8_t *data, size_t size)
{
    struct slot slots[SLOTS];
    bool batch = false;
    for (int i = 0; i < SLOTS; i++) {
        /* a well-formed sid that no session has */
        memset(slots[i].sid, 'A' + i, SG_ID_LEN);
        slots[i].sid[SG_ID_LEN] = '\0';
        snprintf(slots[i].owner, sizeof slots[i].owner, "%ld.%d", (long)getpid(), i + 1);
        slots[i].held[0] = '\0';
    }
    for (size_t pos = 0; pos < size;) {
        uint8_t op = data[pos] & 0x1f;
        bool variant = data[pos] & 0x20;
        struct slot *s = &slots[data[pos] >> 6];
        pos++;
        const uint8_t *d = data + pos;
        size_t n = 0;
        char text[257];
        if (op == 0 || op == 2 || op == 7 || op == 14 || op == 15 || op == 17 || op == 18) {
            n = pos < size ? data[pos++] : 0;
            d = data + pos;
            if (n > size - pos)
                n = size - pos;
            pos += n;
            memcpy(text, d, n);
            text[n] = '\0';
        }
        int64_t wake = 0;
        switch (op) {
        case 0: open_session(w, s, 0, text); break;
        case 1: open_session(w, s, 1, "EIO=4&transport=websocket"); break;
        case 2:
            allowed(sg_engine_post(w, s->sid, (const char *)d, n),
                    R(SG_OK) | R(SG_E_SID) | R(SG_E_BADREQ) | R(SG_E_TOOLARGE));
            break;
        case 3: get(w, s, 0); break;
        case 4:
            if (s->held[0] && (pos & 1)) {
                sg_engine_poll_release(w, s->sid, s->held);
                s->held[0] = '\0';
            } else {
                get(w, s, 1);
            }
            break;
        case 5: allowed(sg_engine_ws_probe(w, s->sid), R(SG_OK) | R(SG_E_SID) | R(SG_E_BADREQ)); break;
        case 6:
            allowed(sg_engine_ws_upgrade(w, s->sid, s->owner), R(SG_OK) | R(SG_E_SID) | R(SG_E_BADREQ));
            break;
        case 7: receive(w, s, 1, d, n); break;
        case 8:
            /* a byte of the input as the room left, 16 bytes a step */
            allowed(sg_engine_ws_take(w, s->sid, s->owner, n ? (size_t)d[0] * 16 : SIZE_MAX,
                                      check_frame, NULL, &wake, NULL),
                    R(SG_OK) | R(SG_E_SID) | R(SG_E_BADREQ));
            break;
        case 9: allowed(sg_engine_ws_abort(w, s->sid), R(SG_OK) | R(SG_E_SID)); break;
        case 10: allowed(sg_engine_close(w, s->sid, "transport close"), R(SG_OK) | R(SG_E_SID)); break;
        case 11: fail_if(sg_engine_sweep(w) < 0); break;
        case 12:
            allowed(sg_engine_ws_can_upgrade(w, s->sid), R(SG_OK) | R(SG_E_SID) | R(SG_E_BADREQ));
            break;
        case 13:
            allowed(batch ? sg_engine_batch_end(w) : sg_engine_batch_begin(w), R(SG_OK));
            batch = !batch;
            break;
        case 14: emit(w, d, n, &(sg_target){.nsp = "/"}); break;
        case 15: receive(w, s, 0, d, n); break;
        case 16: recover(w, s, variant); break;
        case 17: emit_room(w, d, n, variant); break;
        case 18:
            fail_if(sg_engine_emit_ack(w, &(sg_target){.nsp = "/"}, "q",
                                       json_pack("[s#]", (const char *)d, n), "@fuzz", 60000,
                                       NULL) < 0);
            break;
        case 19: fail_if(sg_engine_ack_replies(w, "@fuzz", take_reply, NULL) < 0); break;
        }
    }
    if (batch)
        allowed(sg_engine_batch_end(w), R(SG_OK));
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].held[0])
            sg_engine_poll_release(w, slots[i].sid, slots[i].held);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sg_config cfg;
    if (!dir[0]) {
        /* memory-backed when it can be: a store's fsyncs cost nothing there */
        snprintf(dir, sizeof dir, "%s/sg-fuzz-engine.XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        fail_if(!mkdtemp(dir));
        atexit(cleanup);
        sg_log_init("fuzz_engine", -1); /* refusals are logged: not here */
        fail_if(sg_config_defaults(&cfg) < 0);
        char db[128];
        db_path(db, sizeof db);
        free(cfg.db);
        fail_if(!(cfg.db = strdup(db)));
        cfg.max_payload = 1000;
        const char *plugin = getenv("SG_FUZZ_PLUGIN");
        if (plugin && *plugin) {
            fail_if(!(cfg.plugins = calloc(1, sizeof *cfg.plugins)) ||
                    !(cfg.plugins[0] = strdup(plugin)));
            cfg.nplugins = 1;
        }
        sg_engine *e = sg_engine_new(&cfg);
        fail_if(!e);
        sg_engine_free(e);
        keep_template();
    }
    if (size == 0)
        return 0;
    cfg.broadcast_log_min = data[0] & 1 ? 0 : SG_BROADCAST_LOG_MIN_DEFAULT;
    cfg.recovery_window = data[0] & 2 ? 60000 : 0;
    cfg.max_queued_packets = data[0] & 4 ? 4 : SG_MAX_QUEUED_PACKETS_DEFAULT;
    seen_sid[0] = seen_pid[0] = seen_offset[0] = '\0';
    fresh_db();
    sg_engine *e = sg_engine_new(&cfg);
    fail_if(!e);
    sg_worker *w = sg_worker_new(e);
    fail_if(!w);
    run(w, data + 1, size - 1);
    sg_worker_free(w);
    sg_engine_free(e);
    return 0;
}
