/* test_engine.c - the protocol engine with a real store and the echo
 * plugin, driven the way the polling front drives it. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "doorbell.h"
#include "engine.h"
#include "socketio.h"
#include "store.h"
#include "log.h"
#include "tap.h"

static char dir[64];
static char echo_path[512];
static sg_config cfg;
static sg_engine *eng;
static sg_worker *w;

/* set by a test before setup(): applied to the next configuration */
static void (*tune)(sg_config *c);

/* a fresh engine (and store) with the given heartbeat */
static void setup(int64_t interval, int64_t timeout)
{
    static int n;
    sg_worker_free(w);
    sg_engine_free(eng);
    sg_config_free(&cfg);
    sg_config_defaults(&cfg);
    char db[128];
    snprintf(db, sizeof db, "%s/e%d.db", dir, n++);
    free(cfg.db);
    cfg.db = strdup(db);
    cfg.plugins = calloc(1, sizeof *cfg.plugins);
    cfg.plugins[0] = strdup(echo_path);
    cfg.nplugins = 1;
    cfg.ping_interval = interval;
    cfg.ping_timeout = timeout;
    cfg.max_payload = 1000;
    if (tune)
        tune(&cfg);
    tune = NULL;
    eng = sg_engine_new(&cfg);
    w = eng ? sg_worker_new(eng) : NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Open a session; return its sid in sid. */
static int open_session(char sid[SG_ID_LEN + 1])
{
    sg_buf open = SG_BUF_INIT;
    const char *headers[] = {"user-agent", "test", NULL};
    sg_handshake hs = {.address = "127.0.0.1",
                       .url = "/socket.io/?EIO=4&transport=polling&x=1",
                       .query = "EIO=4&transport=polling&x=1",
                       .headers = headers};
    int rc = sg_engine_open(w, &hs, "polling", sid, &open);
    sg_buf_free(&open);
    return rc;
}

static int post(const char *sid, const char *body) { return sg_engine_post(w, sid, body, strlen(body)); }
static int postn(const char *sid, const char *body, size_t n) { return sg_engine_post(w, sid, body, n); }

/* Poll once with token; the payload (new) in *out, NULL on SG_WAIT/error. */
static int poll_tok(const char *sid, const char *token, char **out)
{
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    int rc = sg_engine_poll(w, sid, token, &b, &wake);
    *out = rc == SG_OK ? sg_buf_steal(&b) : NULL;
    sg_buf_free(&b);
    if (rc == SG_WAIT)
        sg_engine_poll_release(w, sid, token);
    return rc;
}

static char tok[SG_TOKEN_MAX];
static const char *token(void)
{
    static uint64_t n;
    sg_token_make(tok, (long)getpid(), ++n);
    return tok;
}

static char *poll1(const char *sid)
{
    char *out = NULL;
    poll_tok(sid, token(), &out);
    return out;
}

/* A session the server forgot at once, as the reference server forgets a
 * client that broke the transport: the next GET gets 400 (SG_E_SID), no
 * close packet first. */
static void forgotten(const char *sid, int *tap_failed)
{
    char *p = NULL;
    CHECK_INT(poll_tok(sid, token(), &p), SG_E_SID);
    free(p);
}

/* A session the server closed: the next GET gets the close packet alone
 * (buffered, as from the reference server), then the session is unknown. */
static void closed_by_server(const char *sid, int *tap_failed)
{
    char *p = NULL;
    CHECK_INT(poll_tok(sid, token(), &p), SG_OK);
    CHECK_STR(p, "1");
    free(p);
    p = NULL;
    CHECK_INT(poll_tok(sid, token(), &p), SG_E_SID);
    free(p);
}

/* Connect sid to "/" and read the CONNECT reply and "auth"; socket id in id. */
static void connect_root(const char *sid, char id[SG_ID_LEN + 1], int *tap_failed)
{
    CHECK_INT(post(sid, "40"), SG_OK);
    char *p = poll1(sid);
    CHECK(p && strncmp(p, "40{\"sid\":\"", 10) == 0);
    if (p && strlen(p) > 30) {
        memcpy(id, p + 10, SG_ID_LEN);
        id[SG_ID_LEN] = '\0';
        CHECK_STR(p + 30, "\"}\x1e" "42[\"auth\",{}]");
    }
    free(p);
}

TEST("engine: open packet is exact and the sid is fresh")
{
    setup(25000, 20000);
    CHECK(eng && w);
    sg_buf open = SG_BUF_INIT;
    char sid[SG_ID_LEN + 1], sid2[SG_ID_LEN + 1];
    sg_handshake hs = {0};
    CHECK_INT(sg_engine_open(w, &hs, "polling", sid, &open), SG_OK);
    char want[256];
    snprintf(want, sizeof want,
             "0{\"sid\":\"%s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
             "\"pingTimeout\":20000,\"maxPayload\":1000}", sid);
    CHECK_STR(sg_buf_str(&open), want);
    CHECK(sg_id_valid(sid));
    sg_buf_reset(&open);
    CHECK_INT(sg_engine_open(w, &hs, "polling", sid2, &open), SG_OK);
    CHECK(strcmp(sid, sid2) != 0);
    CHECK_INT(sg_engine_open(w, &hs, "carrier-pigeon", sid2, &open), SG_E_TRANSPORT);
    sg_buf_free(&open);
}

TEST("engine: connect to / and /custom, auth payload round trip")
{
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1] = "";
    CHECK_INT(open_session(sid), SG_OK);
    connect_root(sid, id, tap_failed);
    CHECK(sg_id_valid(id) && strcmp(id, sid) != 0);
    CHECK_INT(post(sid, "40/custom,{\"token\":\"abc\",\"n\":1}"), SG_OK);
    char *p = poll1(sid);
    CHECK(p && strncmp(p, "40/custom,{\"sid\":\"", 18) == 0);
    CHECK(p && strstr(p, "\x1e" "42/custom,[\"auth\",{\"token\":\"abc\",\"n\":1}]"));
    free(p);
}

TEST("engine: an event comes back, an ack is answered, in order")
{
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(sid);
    connect_root(sid, id, tap_failed);
    CHECK_INT(post(sid, "42[\"message\",1,\"two\",{\"three\":3}]\x1e" "4212[\"message-with-ack\",\"x\"]"),
              SG_OK);
    char *p = poll1(sid);
    CHECK_STR(p, "42[\"message-back\",1,\"two\",{\"three\":3}]\x1e" "4312[\"x\"]");
    free(p);
    /* an event nobody handles changes nothing and is no error */
    CHECK_INT(post(sid, "42[\"nobody-listens\"]"), SG_OK);
}

static void recovery_on(sg_config *c) { c->recovery_window = 60000; }

TEST("engine: recovery: CONNECT reply {sid, pid}, offsets on events (not acks), recovered after a close")
{
    tune = recovery_on;
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1] = "", pid[SG_ID_LEN + 1] = "";
    CHECK_INT(open_session(sid), SG_OK);
    CHECK_INT(post(sid, "40"), SG_OK);
    char *p = poll1(sid);
    /* 40{"sid":"<20>","pid":"<20>"}\x1e42["auth",{},"<offset>"] */
    CHECK(p && strlen(p) > 66 && strncmp(p, "40{\"sid\":\"", 10) == 0 &&
          strncmp(p + 30, "\",\"pid\":\"", 9) == 0 && strncmp(p + 59, "\"}\x1e", 3) == 0);
    long long off1 = 0, off2 = 0, off3 = 0;
    if (p && strlen(p) > 66) {
        memcpy(id, p + 10, SG_ID_LEN);
        memcpy(pid, p + 39, SG_ID_LEN);
        CHECK_INT(sscanf(p + 62, "42[\"auth\",{},\"%lld\"]", &off1), 1);
    }
    free(p);
    CHECK(off1 > 0);
    CHECK_INT(post(sid, "42[\"message\",1]\x1e" "4212[\"message-with-ack\",\"x\"]"), SG_OK);
    p = poll1(sid);
    char tail[64] = "";
    CHECK(p && sscanf(p, "42[\"message-back\",1,\"%lld\"]\x1e%63s", &off2, tail) == 2);
    CHECK_STR(tail, "4312[\"x\"]"); /* an ack carries no offset */
    CHECK(off2 > off1);
    free(p);
    /* one more event the client never reads, then its transport closes */
    CHECK_INT(post(sid, "42[\"message\",2]"), SG_OK);
    CHECK_INT(sg_engine_close(w, sid, "transport close"), SG_OK);
    /* back on a new session with pid and the last offset it saw (off2) */
    char sid2[SG_ID_LEN + 1], body[160];
    CHECK_INT(open_session(sid2), SG_OK);
    snprintf(body, sizeof body, "40{\"pid\":\"%s\",\"offset\":\"%lld\"}", pid, off2);
    CHECK_INT(post(sid2, body), SG_OK);
    p = poll1(sid2);
    char want[160];
    snprintf(want, sizeof want, "40{\"sid\":\"%s\",\"pid\":\"%s\"}\x1e" "42[\"message-back\",2,\"", id,
             pid);
    CHECK(p && strncmp(p, want, strlen(want)) == 0);
    if (p && strlen(p) > strlen(want))
        CHECK_INT(sscanf(p + strlen(want), "%lld", &off3), 1);
    CHECK(off3 > off2);
    snprintf(want, sizeof want, "42[\"auth\",{\"pid\":\"%s\",\"offset\":\"%lld\"},\"", pid, off2);
    CHECK(p && strstr(p, want) != NULL); /* the connection handler ran, after the replay */
    free(p);
    /* the pid again, from a third session: its socket is connected now (on
     * sid2, open): that session is closed and the socket comes over */
    char sid3[SG_ID_LEN + 1];
    CHECK_INT(open_session(sid3), SG_OK);
    snprintf(body, sizeof body, "40{\"pid\":\"%s\",\"offset\":\"%lld\"}", pid, off3);
    CHECK_INT(post(sid3, body), SG_OK);
    p = poll1(sid3);
    snprintf(want, sizeof want, "40{\"sid\":\"%s\",\"pid\":\"%s\"}\x1e" "42[\"auth\",", id, pid);
    CHECK(p && strncmp(p, want, strlen(want)) == 0);
    free(p);
    forgotten(sid2, tap_failed); /* closed as "transport close": forgotten */
    /* an unknown pid, or a bad offset: a new socket with a new pid */
    char sid4[SG_ID_LEN + 1];
    CHECK_INT(open_session(sid4), SG_OK);
    CHECK_INT(post(sid4, "40{\"pid\":\"nobody\",\"offset\":\"12\"}"), SG_OK);
    p = poll1(sid4);
    CHECK(p && strncmp(p, "40{\"sid\":\"", 10) == 0 && strncmp(p + 10, id, SG_ID_LEN) != 0);
    free(p);
    /* recovery off: no pid, no offsets (the connect_root helper checks it) */
    setup(25000, 20000);
    char id5[SG_ID_LEN + 1];
    CHECK_INT(open_session(sid), SG_OK);
    connect_root(sid, id5, tap_failed);
}

TEST("engine: binary event and binary ack, attachments in one or two POSTs")
{
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(sid);
    connect_root(sid, id, tap_failed);
    CHECK_INT(post(sid, "451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1e" "bAQID"), SG_OK);
    char *p = poll1(sid);
    CHECK_STR(p, "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1e" "bAQID");
    free(p);
    CHECK_INT(post(sid, "452-7[\"message-with-ack\",{\"_placeholder\":true,\"num\":1},"
                        "{\"_placeholder\":true,\"num\":0}]\x1e" "bAA=="), SG_OK);
    p = poll1(sid);
    CHECK(p == NULL); /* waiting for the second attachment */
    free(p);
    CHECK_INT(post(sid, "bAQ=="), SG_OK);
    p = poll1(sid);
    CHECK_STR(p, "462-7[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"
                 "\x1e" "bAQ==\x1e" "bAA==");
    free(p);
}

TEST("engine: invalid namespace gets CONNECT_ERROR and the session lives on")
{
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(sid);
    CHECK_INT(post(sid, "40/nope,"), SG_OK);
    char *p = poll1(sid);
    CHECK_STR(p, "44/nope,{\"message\":\"Invalid namespace\"}");
    free(p);
    connect_root(sid, id, tap_failed);
}

TEST("engine: garbage payload closes the session (the POST itself gets ok)")
{
    char sid[SG_ID_LEN + 1];
    open_session(sid);
    CHECK_INT(post(sid, "zzz"), SG_OK); /* "ok", and the session is gone */
    forgotten(sid, tap_failed);
    CHECK_INT(post(sid, "40"), SG_E_SID);
    open_session(sid);
    CHECK_INT(post(sid, ""), SG_OK); /* not Engine.IO either */
    forgotten(sid, tap_failed);
    open_session(sid);
    CHECK_INT(post(sid, "4{garbage"), SG_OK); /* Engine.IO fine, Socket.IO not */
    closed_by_server(sid, tap_failed);
    open_session(sid);
    CHECK_INT(postn(sid, "42[\"a\0\"]", 8), SG_OK);
    closed_by_server(sid, tap_failed);
    open_session(sid);
    CHECK_INT(post(sid, "bAQID"), SG_OK); /* attachment with no packet */
    closed_by_server(sid, tap_failed);
}

TEST("engine: packets for a namespace not joined, or a second CONNECT, close")
{
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(sid);
    CHECK_INT(post(sid, "42/custom,[\"message\"]"), SG_OK);
    closed_by_server(sid, tap_failed);
    open_session(sid);
    connect_root(sid, id, tap_failed);
    CHECK_INT(post(sid, "40"), SG_OK);
    closed_by_server(sid, tap_failed);
}

TEST("engine: unknown and malformed sids")
{
    char *p = NULL;
    CHECK_INT(post("AAAAAAAAAAAAAAAAAAAA", "40"), SG_E_SID);
    CHECK_INT(post("short", "40"), SG_E_SID);
    CHECK_INT(post("' OR 1=1 --aaaaaaaaa", "40"), SG_E_SID);
    CHECK_INT(poll_tok("AAAAAAAAAAAAAAAAAAAA", token(), &p), SG_E_SID);
}

TEST("engine: a body beyond max_payload is refused and closes the session")
{
    char sid[SG_ID_LEN + 1];
    open_session(sid);
    char big[2001];
    memset(big, 'a', 2000);
    big[0] = '4';
    big[2000] = '\0';
    CHECK_INT(post(sid, big), SG_E_TOOLARGE); /* closed: "transport error" */
    forgotten(sid, tap_failed);
}

TEST("engine: overlapping GETs close the session; the held GET gets close")
{
    char sid[SG_ID_LEN + 1];
    open_session(sid);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    char a_tok[SG_TOKEN_MAX];
    snprintf(a_tok, sizeof a_tok, "%s", token());
    CHECK_INT(sg_engine_poll(w, sid, a_tok, &b, &wake), SG_WAIT);
    CHECK(wake > 0);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_E_BADREQ);
    CHECK_INT(sg_engine_poll_again(w, sid, a_tok, &b, &wake), SG_OK);
    CHECK_STR(sg_buf_str(&b), "1");
    sg_buf_free(&b);
}

TEST("engine: a GET held on another host (a token of another pid space) does not block the next")
{
    /* the same pid as ours, but of another pid space: not this process */
    char sid[SG_ID_LEN + 1];
    open_session(sid);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    char other[SG_TOKEN_MAX];
    snprintf(other, sizeof other, "%ld.1@%s", (long)getpid(),
             strcmp(sg_pid_space(), "000000000000") ? "000000000000" : "000000000001");
    CHECK_INT(sg_engine_poll(w, sid, other, &b, &wake), SG_WAIT);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_WAIT);
    sg_buf_free(&b);
}

TEST("engine: a GET held by a process that died (a zombie not yet reaped) does not block the next")
{
    char sid[SG_ID_LEN + 1];
    open_session(sid);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    CHECK(child > 0);
    siginfo_t si;
    /* WNOWAIT: it has exited and stays a zombie */
    CHECK_INT(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
    char dead[SG_TOKEN_MAX];
    snprintf(dead, sizeof dead, "%ld.1", (long)child);
    CHECK_INT(sg_engine_poll(w, sid, dead, &b, &wake), SG_WAIT);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_WAIT);
    CHECK_INT(waitpid(child, NULL, 0), child);
    /* the same with it reaped */
    open_session(sid);
    CHECK_INT(sg_engine_poll(w, sid, dead, &b, &wake), SG_WAIT);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_WAIT);
    sg_buf_free(&b);
}

TEST("engine: a client close while a GET is held answers it noop")
{
    char sid[SG_ID_LEN + 1];
    open_session(sid);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    char a_tok[SG_TOKEN_MAX];
    snprintf(a_tok, sizeof a_tok, "%s", token());
    CHECK_INT(sg_engine_poll(w, sid, a_tok, &b, &wake), SG_WAIT);
    CHECK_INT(post(sid, "1"), SG_OK);
    CHECK_INT(sg_engine_poll_again(w, sid, a_tok, &b, &wake), SG_OK);
    CHECK_STR(sg_buf_str(&b), "6");
    sg_buf_reset(&b);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_E_SID);
    sg_buf_free(&b);
}

TEST("engine: a released GET frees the slot for the next one")
{
    char sid[SG_ID_LEN + 1];
    char *p = NULL;
    open_session(sid);
    CHECK_INT(poll_tok(sid, token(), &p), SG_WAIT); /* poll_tok releases */
    CHECK_INT(poll_tok(sid, token(), &p), SG_WAIT);
}

TEST("engine: what a response carried is not sent again")
{
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    char *p = NULL;
    open_session(sid);
    connect_root(sid, id, tap_failed);
    CHECK_INT(poll_tok(sid, token(), &p), SG_WAIT);
    post(sid, "42[\"message\",1]");
    p = poll1(sid);
    CHECK_STR(p, "42[\"message-back\",1]");
    free(p);
    CHECK_INT(poll_tok(sid, token(), &p), SG_WAIT);
}

TEST("engine: the server pings on the GET; without a pong the session dies")
{
    setup(50, 60);
    char sid[SG_ID_LEN + 1];
    open_session(sid);
    char *p = NULL;
    CHECK_INT(poll_tok(sid, token(), &p), SG_WAIT);
    sleep_ms(60);
    p = poll1(sid);
    CHECK_STR(p, "2");
    free(p);
    CHECK_INT(post(sid, "3"), SG_OK); /* pong: the next ping is due in 50 ms */
    CHECK_INT(poll_tok(sid, token(), &p), SG_WAIT);
    sleep_ms(60);
    p = poll1(sid);
    CHECK_STR(p, "2");
    free(p);
    sleep_ms(80); /* no pong within ping_timeout, and no GET held */
    CHECK_INT(sg_engine_sweep(w), 1);
    /* the client had stopped polling: the session is unknown at once, no
     * close packet (the reference server forgets it) */
    CHECK_INT(poll_tok(sid, token(), &p), SG_E_SID);
    CHECK_INT(post(sid, "3"), SG_E_SID);
}

TEST("engine: past its heartbeat deadline, the next GET or POST closes the session and gets SG_E_SID")
{
    setup(50, 60);
    char a[SG_ID_LEN + 1], b[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(a);
    open_session(b);
    connect_root(a, id, tap_failed);
    connect_root(b, id, tap_failed);
    sleep_ms(130); /* nobody polls, no sweep runs */
    char *p = NULL;
    CHECK_INT(poll_tok(a, token(), &p), SG_E_SID);
    CHECK_INT(post(b, "3"), SG_E_SID); /* a pong too late */
    CHECK_INT(sg_engine_sweep(w), 0);  /* closed already, and once */
    CHECK_INT(poll_tok(a, token(), &p), SG_E_SID);
    CHECK_INT(poll_tok(b, token(), &p), SG_E_SID);
    CHECK_INT(sg_engine_ws_can_upgrade(w, a), SG_E_SID);
}

TEST("engine: a GET held at the heartbeat deadline gets the close packet, then SG_E_SID")
{
    setup(50, 60);
    char sid[SG_ID_LEN + 1], sid2[SG_ID_LEN + 1];
    open_session(sid);
    open_session(sid2);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    char t1[SG_TOKEN_MAX], t2[SG_TOKEN_MAX];
    snprintf(t1, sizeof t1, "%s", token());
    snprintf(t2, sizeof t2, "%s", token());
    CHECK_INT(sg_engine_poll(w, sid, t1, &b, &wake), SG_WAIT);
    CHECK_INT(sg_engine_poll(w, sid2, t2, &b, &wake), SG_WAIT);
    sleep_ms(130); /* the ping was due, then the deadline passed: both held */
    /* the held GET's own wake-up closes it */
    CHECK_INT(sg_engine_poll_again(w, sid, t1, &b, &wake), SG_OK);
    CHECK_STR(sg_buf_str(&b), "1");
    /* the sweep closes the other one; its held GET gets the close packet */
    CHECK_INT(sg_engine_sweep(w), 1);
    sg_buf_reset(&b);
    CHECK_INT(sg_engine_poll_again(w, sid2, t2, &b, &wake), SG_OK);
    CHECK_STR(sg_buf_str(&b), "1");
    char *p = NULL;
    CHECK_INT(poll_tok(sid, token(), &p), SG_E_SID);
    CHECK_INT(poll_tok(sid2, token(), &p), SG_E_SID);
    sg_buf_free(&b);
}

TEST("engine: a session that joins no namespace is closed after connect_timeout")
{
    setup(25000, 20000);
    sg_worker_free(w);
    sg_engine_free(eng);
    cfg.connect_timeout = 30;
    eng = sg_engine_new(&cfg);
    w = sg_worker_new(eng);
    char sid[SG_ID_LEN + 1], sid2[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(sid);
    open_session(sid2);
    connect_root(sid2, id, tap_failed);
    sleep_ms(50);
    CHECK_INT(sg_engine_sweep(w), 1);
    char *p = NULL;
    closed_by_server(sid, tap_failed);
    CHECK_INT(poll_tok(sid2, token(), &p), SG_WAIT);
}

struct frames { sg_buf all; int n; };
static int collect_frame(void *ud, bool binary, const void *f, size_t len)
{
    struct frames *fr = ud;
    if (fr->all.len)
        sg_buf_putc(&fr->all, '|');
    if (binary)
        sg_buf_putc(&fr->all, 'B');
    sg_buf_append(&fr->all, f, len);
    fr->n++;
    return 0;
}

TEST("engine: upgrade: probe, the held GET answers noop, frames move to the WebSocket")
{
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(sid);
    connect_root(sid, id, tap_failed);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    char a_tok[SG_TOKEN_MAX];
    snprintf(a_tok, sizeof a_tok, "%s", token());
    CHECK_INT(sg_engine_poll(w, sid, a_tok, &b, &wake), SG_WAIT);
    CHECK_INT(sg_engine_ws_upgrade(w, sid, "1.1"), SG_E_BADREQ); /* no probe yet */
    CHECK_INT(sg_engine_ws_can_upgrade(w, sid), SG_OK);
    CHECK_INT(sg_engine_ws_probe(w, sid), SG_OK);
    CHECK_INT(sg_engine_ws_probe(w, sid), SG_E_BADREQ); /* a second WebSocket */
    CHECK_INT(sg_engine_ws_can_upgrade(w, sid), SG_E_BADREQ);
    /* the held GET is answered noop at the upgrade's first tick, 100 ms
     * after the probe (the reference server's upgrade timer) */
    int64_t t0 = sg_now_ms();
    CHECK_INT(sg_engine_poll_again(w, sid, a_tok, &b, &wake), SG_WAIT);
    CHECK(wake > t0 && wake <= t0 + 100);
    sleep_ms(110);
    CHECK_INT(sg_engine_poll_again(w, sid, a_tok, &b, &wake), SG_OK);
    CHECK_STR(sg_buf_str(&b), "6");
    /* after it, a GET with nothing to carry gets the noop at once */
    sg_buf_reset(&b);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_OK);
    CHECK_STR(sg_buf_str(&b), "6");
    /* an event during the upgrade: its reply waits in the store */
    CHECK_INT(post(sid, "42[\"message\",\"during\"]"), SG_OK);
    CHECK_INT(sg_engine_ws_upgrade(w, sid, "1.1"), SG_OK);
    CHECK_INT(sg_engine_ws_can_upgrade(w, sid), SG_E_BADREQ); /* upgraded */
    sg_buf_reset(&b);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_E_BADREQ); /* polling refused */
    CHECK_INT(post(sid, "42[\"x\"]"), SG_E_BADREQ);
    struct frames fr = {SG_BUF_INIT, 0};
    CHECK_INT(sg_engine_ws_take(w, sid, "9.9", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_E_BADREQ);
    CHECK_INT(sg_engine_ws_take(w, sid, "1.1", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_OK);
    CHECK_STR(sg_buf_str(&fr.all), "42[\"message-back\",\"during\"]");
    CHECK(wake > sg_now_ms());
    /* taken frames are gone: nothing twice */
    sg_buf_reset(&fr.all);
    CHECK_INT(sg_engine_ws_take(w, sid, "1.1", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_OK);
    CHECK_INT(fr.all.len, 0);
    /* packets from the WebSocket go through the same engine */
    sg_eio_packets pk;
    sg_eio_packets_init(&pk);
    const char *ev = "51-[\"message\",{\"_placeholder\":true,\"num\":0}]";
    sg_eio_packets_push(&pk, SG_EIO_MESSAGE, false, ev, strlen(ev));
    sg_eio_packets_push(&pk, SG_EIO_MESSAGE, true, "\x01\x02", 2);
    CHECK_INT(sg_engine_receive(w, sid, &pk), SG_OK);
    sg_eio_packets_free(&pk);
    /* a take reads up to max_bytes (one frame at least), and says so */
    bool more = false;
    CHECK_INT(sg_engine_ws_take(w, sid, "1.1", 1, collect_frame, &fr, &wake, &more), SG_OK);
    CHECK_MEM(fr.all.data, fr.all.len, "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]", 50);
    CHECK(more);
    CHECK_INT(sg_engine_ws_take(w, sid, "1.1", SIZE_MAX, collect_frame, &fr, &wake, &more), SG_OK);
    CHECK_MEM(fr.all.data, fr.all.len,
              "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]|B\x01\x02", 54);
    CHECK(!more);
    /* the server closes: the WebSocket is told to go */
    CHECK_INT(sg_engine_close(w, sid, "transport close"), SG_OK);
    CHECK_INT(sg_engine_ws_take(w, sid, "1.1", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_E_SID);
    sg_buf_free(&fr.all);
    sg_buf_free(&b);
}

TEST("engine: a GET within 100 ms of the probe is held; a 5 committed meanwhile makes it SG_E_BADREQ")
{
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1], sid2[SG_ID_LEN + 1];
    open_session(sid);
    open_session(sid2);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    char t1[SG_TOKEN_MAX], t2[SG_TOKEN_MAX];
    snprintf(t1, sizeof t1, "%s", token());
    snprintf(t2, sizeof t2, "%s", token());
    CHECK_INT(sg_engine_ws_probe(w, sid), SG_OK);
    CHECK_INT(sg_engine_ws_probe(w, sid2), SG_OK);
    int64_t t0 = sg_now_ms();
    CHECK_INT(sg_engine_poll(w, sid, t1, &b, &wake), SG_WAIT);
    CHECK(wake > t0 - 10 && wake <= t0 + 100);
    CHECK_INT(sg_engine_poll(w, sid2, t2, &b, &wake), SG_WAIT);
    /* a re-check before the tick (a ring, the safety net) holds it again */
    CHECK_INT(sg_engine_poll_again(w, sid, t1, &b, &wake), SG_WAIT);
    CHECK_INT(sg_engine_ws_upgrade(w, sid, "1.1"), SG_OK);
    CHECK_INT(sg_engine_poll_again(w, sid, t1, &b, &wake), SG_E_BADREQ);
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_E_BADREQ);
    /* without a "5" the held GET gets the noop at the tick */
    sleep_ms(110);
    CHECK_INT(sg_engine_poll_again(w, sid2, t2, &b, &wake), SG_OK);
    CHECK_STR(sg_buf_str(&b), "6");
    sg_buf_free(&b);
}

TEST("engine: a WebSocket-only session, pinged by ws_take")
{
    setup(50, 1000);
    char sid[SG_ID_LEN + 1];
    sg_buf open = SG_BUF_INIT;
    sg_handshake hs = {0};
    CHECK_INT(sg_engine_open(w, &hs, "websocket", sid, &open), SG_OK);
    CHECK(strstr(sg_buf_str(&open), "\"upgrades\":[],") != NULL);
    CHECK_INT(sg_engine_ws_probe(w, sid), SG_E_BADREQ);
    CHECK_INT(sg_engine_ws_can_upgrade(w, sid), SG_E_BADREQ);
    CHECK_INT(sg_engine_ws_can_upgrade(w, "AAAAAAAAAAAAAAAAAAAA"), SG_E_SID);
    CHECK_INT(sg_engine_ws_attach(w, sid, "1.2"), SG_OK);
    CHECK_INT(sg_engine_ws_attach(w, sid, "1.3"), SG_E_BADREQ);
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    CHECK_INT(sg_engine_poll(w, sid, token(), &b, &wake), SG_E_BADREQ);
    struct frames fr = {SG_BUF_INIT, 0};
    sleep_ms(60);
    CHECK_INT(sg_engine_ws_take(w, sid, "1.2", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_OK);
    CHECK_STR(sg_buf_str(&fr.all), "2");
    sg_buf_free(&fr.all);
    sg_buf_free(&b);
    sg_buf_free(&open);
}

/* One WebSocket message (text) through sg_engine_ws_receive, for a
 * connection with room for room bytes. */
static int ws_recv_room(const char *sid, const char *owner, const char *msg, size_t room,
                        struct frames *fr, bool *take_due)
{
    sg_eio_packets ps;
    sg_eio_packets_init(&ps);
    sg_eio_packets_push(&ps, (enum sg_eio_type)(msg[0] - '0'), false, msg + 1, strlen(msg + 1));
    int rc = sg_engine_ws_receive(w, sid, owner, &ps, room, collect_frame, fr, take_due);
    sg_eio_packets_free(&ps);
    return rc;
}

static int ws_recv(const char *sid, const char *owner, const char *msg, struct frames *fr,
                   bool *take_due)
{
    return ws_recv_room(sid, owner, msg, SIZE_MAX, fr, take_due);
}

TEST("engine: ws_receive hands the answers to its own WebSocket unless queued frames come first")
{
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1];
    sg_buf open = SG_BUF_INIT;
    sg_handshake hs = {0};
    CHECK_INT(sg_engine_open(w, &hs, "websocket", sid, &open), SG_OK);
    CHECK_INT(sg_engine_ws_attach(w, sid, "1.2"), SG_OK);
    struct frames fr = {SG_BUF_INIT, 0};
    bool take_due = false;
    /* the CONNECT reply and the plugin's "auth" come straight back */
    CHECK_INT(ws_recv(sid, "1.2", "40", &fr, &take_due), SG_OK);
    CHECK(!take_due);
    CHECK(strncmp(sg_buf_str(&fr.all), "40{\"sid\":\"", 10) == 0);
    CHECK(strstr(sg_buf_str(&fr.all), "\"}|42[\"auth\",{}]") != NULL);
    sg_buf_reset(&fr.all);
    /* an event and its ack: both direct, nothing in the store */
    CHECK_INT(ws_recv(sid, "1.2", "4212[\"message-with-ack\",\"x\"]", &fr, &take_due), SG_OK);
    CHECK(!take_due);
    CHECK_STR(sg_buf_str(&fr.all), "4312[\"x\"]");
    sg_buf_reset(&fr.all);
    int64_t wake = 0; /* nothing was queued: a take finds nothing */
    CHECK_INT(sg_engine_ws_take(w, sid, "1.2", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_OK);
    CHECK_INT(sg_buf_str(&fr.all)[0], '\0');
    /* something queued first (an emit from elsewhere): the ack queues
     * behind it and a take is due, which sends both in order */
    sg_target all = {"/", NULL, NULL, 0};
    CHECK_INT(sg_engine_emit(w, &all, "news", NULL), 1);
    CHECK_INT(ws_recv(sid, "1.2", "4213[\"message-with-ack\",\"y\"]", &fr, &take_due), SG_OK);
    CHECK(take_due);
    CHECK_INT(sg_buf_str(&fr.all)[0], '\0');
    CHECK_INT(sg_engine_ws_take(w, sid, "1.2", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_OK);
    CHECK_STR(sg_buf_str(&fr.all), "42[\"news\"]|4313[\"y\"]");
    sg_buf_reset(&fr.all);
    /* another owner does not hold the session: nothing direct */
    CHECK_INT(ws_recv(sid, "1.9", "4214[\"message-with-ack\",\"z\"]", &fr, &take_due), SG_OK);
    CHECK(take_due);
    CHECK_INT(sg_buf_str(&fr.all)[0], '\0');
    sg_buf_free(&fr.all);
    sg_buf_free(&open);
}

TEST("engine: what was queued before a close still goes out, then the close")
{
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1];
    open_session(sid);
    connect_root(sid, id, tap_failed);
    CHECK_INT(post(sid, "42[\"message\",1]\x1e" "4{bad"), SG_OK); /* parse error closes */
    char *p = NULL;
    CHECK_INT(poll_tok(sid, token(), &p), SG_OK); /* a GET gets the rest */
    CHECK_STR(p, "42[\"message-back\",1]");
    free(p);
    CHECK_INT(poll_tok(sid, token(), &p), SG_OK); /* the next one the close, alone */
    CHECK_STR(p, "1");
    free(p);
    CHECK_INT(poll_tok(sid, token(), &p), SG_E_SID); /* then the session is unknown */
}

struct replies { int n; char sock[SG_ID_LEN + 1]; char *args; };
static void got_reply(void *ud, const char *socket_id, json_t *args)
{
    struct replies *r = ud;
    r->n++;
    snprintf(r->sock, sizeof r->sock, "%s", socket_id);
    free(r->args);
    r->args = json_dumps(args, JSON_COMPACT);
}

TEST("engine: emit to a namespace, a room, except a room; emit with ack into a mailbox")
{
    setup(25000, 20000);
    char a[SG_ID_LEN + 1], b[SG_ID_LEN + 1], ida[SG_ID_LEN + 1], idb[SG_ID_LEN + 1];
    open_session(a);
    open_session(b);
    connect_root(a, ida, tap_failed);
    connect_root(b, idb, tap_failed);
    sg_target all = {"/", NULL, NULL, 0};
    CHECK_INT(sg_engine_emit(w, &all, "news", json_pack("[i]", 1)), 2);
    char *p = poll1(a);
    CHECK_STR(p, "42[\"news\",1]");
    free(p);
    p = poll1(b);
    CHECK_STR(p, "42[\"news\",1]");
    free(p);
    const char *only_a[] = {ida, NULL};
    sg_target to_a = {"/", only_a, NULL, 0};
    CHECK_INT(sg_engine_emit(w, &to_a, "dm", NULL), 1);
    sg_target not_a = {"/", NULL, only_a, 0};
    CHECK_INT(sg_engine_emit(w, &not_a, "others", NULL), 1);
    p = poll1(a);
    CHECK_STR(p, "42[\"dm\"]");
    free(p);
    p = poll1(b);
    CHECK_STR(p, "42[\"others\"]");
    free(p);
    /* volatile: nobody holds a GET now, so nobody is ready */
    sg_target vol = {"/", NULL, NULL, SG_EMIT_VOLATILE};
    CHECK_INT(sg_engine_emit(w, &vol, "v", NULL), 0);
    sg_target nobody = {"/custom", NULL, NULL, 0};
    CHECK_INT(sg_engine_emit(w, &nobody, "x", NULL), 0);
    /* ack into a mailbox */
    json_t *asked = json_array();
    CHECK_INT(sg_engine_emit_ack(w, &to_a, "q", json_pack("[s]", "?"), "@test.1", 5000, asked), 1);
    CHECK_STR(json_string_value(json_array_get(asked, 0)), ida);
    json_decref(asked);
    p = poll1(a);
    CHECK_STR(p, "420[\"q\",\"?\"]");
    free(p);
    struct replies r = {0, "", NULL};
    CHECK_INT(sg_engine_ack_replies(w, "@test.1", got_reply, &r), 0);
    CHECK_INT(post(a, "430[\"yes\"]"), SG_OK);
    CHECK_INT(post(a, "430[\"twice\"]"), SG_OK); /* a second reply is ignored */
    CHECK_INT(post(a, "437[\"never asked\"]"), SG_OK);
    CHECK_INT(sg_engine_ack_replies(w, "@test.1", got_reply, &r), 1);
    CHECK_STR(r.sock, ida);
    CHECK_STR(r.args, "[\"yes\"]");
    CHECK_INT(sg_engine_ack_replies(w, "@test.1", got_reply, &r), 0);
    /* binary replies are kept with placeholders */
    CHECK_INT(sg_engine_emit_ack(w, &to_a, "q", NULL, "@test.2", 5000, NULL), 1);
    free(poll1(a));
    CHECK_INT(post(a, "461-1[{\"_placeholder\":true,\"num\":0}]\x1e" "bAQID"), SG_OK);
    CHECK_INT(sg_engine_ack_replies(w, "@test.2", got_reply, &r), 1);
    CHECK_STR(r.args, "[{\"_placeholder\":true,\"num\":0}]");
    CHECK_INT(sg_engine_ack_forget(w, "@test.2"), 0);
    free(r.args);
}

TEST("engine: a wide fan-out reaches everyone and rings re-check-all once")
{
    setup(25000, 20000);
    enum { N = 300 };
    cfg.broadcast_log_min = N + 1; /* a row per recipient, not the log */
    static char sids[N][SG_ID_LEN + 1];
    char id[SG_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        open_session(sids[i]);
        connect_root(sids[i], id, tap_failed);
    }
    char *bells = sg_config_bell_dir(&cfg);
    sg_bell *waiter = sg_bell_waiter(bells);
    CHECK(waiter != NULL);
    char buf[SG_BELL_MAX + 1];
    while (waiter && sg_bell_recv(waiter, buf, sizeof buf) > 0)
        ;
    sg_target all = {"/", NULL, NULL, 0};
    CHECK_INT(sg_engine_emit(w, &all, "wide", NULL), N);
    /* 300 ids do not fit one datagram: one "*" instead */
    int n = waiter ? sg_bell_recv(waiter, buf, sizeof buf) : -1;
    CHECK_INT(n, 1);
    CHECK(n == 1 && buf[0] == '*');
    CHECK_INT(waiter ? sg_bell_recv(waiter, buf, sizeof buf) : -1, 0);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        char *p = poll1(sids[i]);
        ok += p && strcmp(p, "42[\"wide\"]") == 0;
        free(p);
    }
    CHECK_INT(ok, N);
    sg_bell_close(waiter);
    free(bells);
}

TEST("engine: the broadcast log: order with own frames, binary, members at the emit, gc")
{
    setup(25000, 20000);
    cfg.broadcast_log_min = 0; /* every broadcast through the log */
    char a[SG_ID_LEN + 1], b[SG_ID_LEN + 1], ida[SG_ID_LEN + 1], idb[SG_ID_LEN + 1];
    open_session(a);
    open_session(b);
    connect_root(a, ida, tap_failed);
    connect_root(b, idb, tap_failed);
    CHECK_INT(post(a, "42[\"message\",1]"), SG_OK);
    sg_target all = {"/", NULL, NULL, 0};
    json_t *bin = json_array();
    json_array_append_new(bin, json_integer(7));
    json_array_append_new(bin, sg_sio_binary_new("\x01\x02", 2));
    CHECK_INT(sg_engine_emit(w, &all, "news", bin), 2);
    CHECK_INT(post(a, "42[\"message\",2]"), SG_OK);
    CHECK(sg_store_latest_version(":memory:") >= 4);
    char *p = poll1(a);
    CHECK_STR(p, "42[\"message-back\",1]\x1e"
                 "451-[\"news\",7,{\"_placeholder\":true,\"num\":0}]\x1e" "bAQI=\x1e"
                 "42[\"message-back\",2]");
    free(p);
    /* b disconnects its socket after the emit: it still gets it, first */
    CHECK_INT(sg_engine_emit(w, &all, "late", NULL), 2);
    CHECK_INT(post(b, "41"), SG_OK);
    p = poll1(b);
    CHECK_STR(p, "451-[\"news\",7,{\"_placeholder\":true,\"num\":0}]\x1e" "bAQI=\x1e"
                 "42[\"late\"]");
    free(p);
    /* a connection after the emit does not get it */
    CHECK_INT(sg_engine_emit(w, &all, "before-b", NULL), 1);
    CHECK_INT(post(b, "40"), SG_OK);
    p = poll1(b);
    CHECK(p && strncmp(p, "40{\"sid\":\"", 10) == 0 && !strstr(p, "before-b"));
    free(p);
    p = poll1(a);
    CHECK_STR(p, "42[\"late\"]\x1e" "42[\"before-b\"]");
    free(p);
    /* the sweep deletes the log rows every open session has taken */
    sg_store *s = sg_store_open(cfg.db);
    CHECK(s != NULL);
    CHECK_INT(s ? sg_store_scalar(s, "SELECT count(*) FROM queue WHERE sid = ''") : -1, 4);
    CHECK_INT(sg_engine_emit(w, &all, "pending", NULL), 2);
    CHECK(sg_engine_sweep(w) >= 0);
    CHECK_INT(s ? sg_store_scalar(s, "SELECT count(*) FROM queue WHERE sid = ''") : -1, 1);
    free(poll1(a));
    free(poll1(b));
    CHECK(sg_engine_sweep(w) >= 0);
    CHECK_INT(s ? sg_store_scalar(s, "SELECT count(*) FROM queue WHERE sid = ''") : -1, 0);
    sg_store_close(s);
}

TEST("engine: disconnect a socket by id, and a whole client")
{
    char a[SG_ID_LEN + 1], ida[SG_ID_LEN + 1];
    open_session(a);
    connect_root(a, ida, tap_failed);
    CHECK_INT(post(a, "40/custom,"), SG_OK);
    char *p = poll1(a);
    CHECK(p && strncmp(p, "40/custom,{\"sid\":\"", 18) == 0);
    char idc[SG_ID_LEN + 1] = "";
    if (p && strlen(p) >= 18 + SG_ID_LEN) {
        memcpy(idc, p + 18, SG_ID_LEN);
        idc[SG_ID_LEN] = '\0';
    }
    free(p);
    CHECK_INT(sg_engine_disconnect(w, ida, false), SG_OK);
    p = poll1(a);
    CHECK_STR(p, "41");
    free(p);
    CHECK_INT(sg_engine_disconnect(w, ida, false), SG_E_SID);
    json_t *f = sg_engine_fetch_sockets(w, "/custom", NULL);
    CHECK(f != NULL);
    int found = 0;
    size_t i;
    json_t *o;
    json_array_foreach(f, i, o)
        found += strcmp(json_string_value(json_object_get(o, "id")), idc) == 0;
    CHECK_INT(found, 1);
    json_decref(f);
    CHECK_INT(sg_engine_disconnect(w, idc, true), SG_OK);
    p = poll1(a);
    CHECK_STR(p, "41/custom,");
    free(p);
    p = poll1(a);
    CHECK_STR(p, "1");
    free(p);
}

TEST("engine: error results map to HTTP and Engine.IO codes")
{
    int st, code;
    const char *msg;
    sg_engine_error(SG_E_TRANSPORT, &st, &code, &msg);
    CHECK(st == 400 && code == 0 && strcmp(msg, "Transport unknown") == 0);
    sg_engine_error(SG_E_SID, &st, &code, &msg);
    CHECK(st == 400 && code == 1 && strcmp(msg, "Session ID unknown") == 0);
    sg_engine_error(SG_E_METHOD, &st, &code, &msg);
    CHECK(st == 400 && code == 2 && strcmp(msg, "Bad handshake method") == 0);
    sg_engine_error(SG_E_BADREQ, &st, &code, &msg);
    CHECK(st == 400 && code == 3 && strcmp(msg, "Bad request") == 0);
    sg_engine_error(SG_E_FORBIDDEN, &st, &code, &msg);
    CHECK(st == 403 && code == 4 && strcmp(msg, "Forbidden") == 0);
    sg_engine_error(SG_E_VERSION, &st, &code, &msg);
    CHECK(st == 400 && code == 5 && strcmp(msg, "Unsupported protocol version") == 0);
    sg_engine_error(SG_E_TOOLARGE, &st, &code, &msg);
    CHECK(st == 413);
    sg_engine_error(SG_E_INTERNAL, &st, &code, &msg);
    CHECK(st == 500);
    sg_engine_error(SG_E_RATE, &st, &code, &msg);
    CHECK(st == 429 && code == 4 && strcmp(msg, "Too many handshakes") == 0);
    sg_engine_error(SG_E_FULL, &st, &code, &msg);
    CHECK(st == 503 && code == 4 && strcmp(msg, "Too many sessions") == 0);
    sg_engine_error(SG_E_REFUSED, &st, &code, &msg);
    CHECK(st == 403 && code == 4 && strcmp(msg, "Forbidden") == 0);
    sg_engine_error(-99, &st, &code, &msg);
    CHECK(st == 500);
    sg_handshake hs = {.refused_status = 400, .refused_code = 3, .refused_message = "no"};
    sg_engine_handshake_error(&hs, SG_E_REFUSED, &st, &code, &msg);
    CHECK(st == 400 && code == 3 && strcmp(msg, "no") == 0);
    sg_engine_handshake_error(&hs, SG_E_SID, &st, &code, &msg);
    CHECK(st == 400 && code == 1);
}

TEST("engine: the io cookie header, as engine.io's cookie option writes it")
{
    sg_config c;
    sg_config_defaults(&c);
    sg_buf b = SG_BUF_INIT;
    CHECK_INT(sg_engine_cookie(&c, "SID", &b), 0);
    CHECK_INT(b.len, 0); /* off by default */
    c.cookie = strdup("io");
    CHECK_INT(sg_engine_cookie(&c, "SID", &b), 0);
    CHECK_STR(sg_buf_str(&b), "Set-Cookie: io=SID; Path=/; HttpOnly; SameSite=Lax\r\n");
    sg_buf_reset(&b);
    free(c.cookie_path);
    c.cookie_path = strdup("/app");
    c.cookie_httponly = 0;
    c.cookie_secure = 1;
    c.cookie_samesite = SG_SAMESITE_NONE;
    CHECK_INT(sg_engine_cookie(&c, "SID", &b), 0);
    CHECK_STR(sg_buf_str(&b), "Set-Cookie: io=SID; Path=/app; Secure; SameSite=None\r\n");
    sg_buf_reset(&b);
    c.cookie_samesite = SG_SAMESITE_OFF;
    CHECK_INT(sg_engine_cookie(&c, "SID", &b), 0);
    CHECK_STR(sg_buf_str(&b), "Set-Cookie: io=SID; Path=/app; Secure\r\n");
    sg_buf_free(&b);
    sg_config_free(&c);
}

static void tune_max_sessions(sg_config *c) { c->max_sessions = 2; }

TEST("engine: max_sessions refuses a handshake beyond it until one closes")
{
    tune = tune_max_sessions;
    setup(25000, 20000);
    char a[SG_ID_LEN + 1], b[SG_ID_LEN + 1], c[SG_ID_LEN + 1];
    CHECK_INT(open_session(a), SG_OK);
    CHECK_INT(open_session(b), SG_OK);
    CHECK_INT(open_session(c), SG_E_FULL);
    CHECK_INT(post(a, "1"), SG_OK); /* the client closes: a place is free */
    CHECK_INT(open_session(c), SG_OK);
    CHECK_INT(open_session(a), SG_E_FULL);
    setup(25000, 20000);
}

static void tune_rate(sg_config *c) { c->handshakes_per_second = 1; }

TEST("engine: handshakes_per_second limits one address, not the others")
{
    tune = tune_rate;
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1];
    sg_buf open = SG_BUF_INIT;
    sg_handshake x = {.address = "192.0.2.1"}, y = {.address = "192.0.2.2"}, none = {0};
    CHECK_INT(sg_engine_open(w, &x, "polling", sid, &open), SG_OK);
    /* a second within the same second (rate 1, one token in the bucket) */
    CHECK_INT(sg_engine_open(w, &x, "websocket", sid, &open), SG_E_RATE);
    CHECK_INT(sg_engine_open(w, &y, "polling", sid, &open), SG_OK);
    CHECK_INT(sg_engine_open(w, &none, "polling", sid, &open), SG_OK); /* no address: no bucket */
    CHECK_INT(sg_engine_open(w, &none, "polling", sid, &open), SG_OK);
    sg_buf_free(&open);
    setup(25000, 20000);
}

static void tune_sockets(sg_config *c) { c->max_sockets_per_session = 1; }

TEST("engine: max_sockets_per_session answers CONNECT_ERROR beyond it")
{
    tune = tune_sockets;
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1] = "";
    CHECK_INT(open_session(sid), SG_OK);
    connect_root(sid, id, tap_failed);
    CHECK_INT(post(sid, "40/custom,"), SG_OK);
    char *p = poll1(sid);
    CHECK_STR(p, "44/custom,{\"message\":\"Too many sockets\"}");
    free(p);
    /* the session stays: leaving "/" makes room for /custom */
    CHECK_INT(post(sid, "41"), SG_OK);
    CHECK_INT(post(sid, "40/custom,"), SG_OK);
    p = poll1(sid);
    CHECK(p && strncmp(p, "40/custom,{\"sid\":\"", 18) == 0);
    free(p);
    setup(25000, 20000);
}

static void tune_queue(sg_config *c) { c->max_queued_packets = 4; }

/* The close reason of sid as stored ("" while open), into out[40]. */
static void close_reason(const char *sid, char out[40])
{
    sg_store *s = sg_store_open(cfg.db);
    sg_session ss;
    out[0] = '\0';
    if (s && sg_store_session_get(s, sid, &ss) == 0) {
        snprintf(out, 40, "%s", ss.state == SG_SESSION_OPEN ? "" : ss.close_reason);
        sg_session_clear(&ss);
    }
    sg_store_close(s);
}

TEST("engine: max_queued_packets over polling: volatile packets go first, then the session")
{
    tune = tune_queue;
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1] = "";
    char why[40];
    CHECK_INT(open_session(sid), SG_OK);
    connect_root(sid, id, tap_failed);
    /* a GET held: volatile packets are queued for it (marked volatile) */
    sg_buf b = SG_BUF_INIT;
    int64_t wake = 0;
    char held[SG_TOKEN_MAX];
    snprintf(held, sizeof held, "%s", token());
    CHECK_INT(sg_engine_poll(w, sid, held, &b, &wake), SG_WAIT);
    sg_target vol = {"/", NULL, NULL, SG_EMIT_VOLATILE};
    for (int i = 0; i < 3; i++)
        CHECK_INT(sg_engine_emit(w, &vol, "v", json_pack("[i]", i)), 1);
    sg_engine_poll_release(w, sid, held);
    /* 3 volatile + 2 echoes = 5 > 4: the volatile ones go, the session stays */
    CHECK_INT(post(sid, "42[\"message\",1]\x1e" "42[\"message\",2]"), SG_OK);
    close_reason(sid, why);
    CHECK_STR(why, "");
    char *p = poll1(sid);
    CHECK_STR(p, "42[\"message-back\",1]\x1e" "42[\"message-back\",2]");
    free(p);
    /* 4 is the limit, not over it */
    CHECK_INT(post(sid, "42[\"message\",1]\x1e" "42[\"message\",2]\x1e" "42[\"message\",3]\x1e"
                        "42[\"message\",4]"), SG_OK);
    close_reason(sid, why);
    CHECK_STR(why, "");
    /* 5 with nothing volatile: closed at this POST (answered ok, the
     * packets were received), its queue gone: the next GET gets 400 */
    CHECK_INT(post(sid, "42[\"message\",5]"), SG_OK);
    close_reason(sid, why);
    CHECK_STR(why, "transport error");
    forgotten(sid, tap_failed);
    /* over it by emits from elsewhere (no check there): the session's
     * next GET finds it over, closes it and gets SG_E_SID */
    CHECK_INT(open_session(sid), SG_OK);
    connect_root(sid, id, tap_failed);
    const char *only[] = {id, NULL};
    sg_target to = {"/", only, NULL, 0};
    for (int i = 0; i < 5; i++)
        CHECK_INT(sg_engine_emit(w, &to, "n", NULL), 1);
    close_reason(sid, why);
    CHECK_STR(why, "");
    p = NULL;
    CHECK_INT(poll_tok(sid, token(), &p), SG_E_SID);
    free(p);
    close_reason(sid, why);
    CHECK_STR(why, "transport error");
    sg_buf_free(&b);
    setup(25000, 20000);
}

static void tune_queue_off(sg_config *c) { c->max_queued_packets = 0; }

TEST("engine: max_queued_packets = 0 is no limit")
{
    tune = tune_queue_off;
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1], id[SG_ID_LEN + 1] = "";
    char why[40];
    CHECK_INT(open_session(sid), SG_OK);
    connect_root(sid, id, tap_failed);
    for (int i = 0; i < 3; i++)
        CHECK_INT(post(sid, "42[\"message\",1]\x1e" "42[\"message\",2]\x1e" "42[\"message\",3]\x1e"
                            "42[\"message\",4]\x1e" "42[\"message\",5]"), SG_OK);
    close_reason(sid, why);
    CHECK_STR(why, "");
    setup(25000, 20000);
}

TEST("engine: ws_receive beyond the connection's room: the answers go to the store, in order")
{
    tune = tune_queue;
    setup(25000, 20000);
    char sid[SG_ID_LEN + 1];
    char why[40];
    sg_buf open = SG_BUF_INIT;
    sg_handshake hs = {0};
    CHECK_INT(sg_engine_open(w, &hs, "websocket", sid, &open), SG_OK);
    CHECK_INT(sg_engine_ws_attach(w, sid, "1.2"), SG_OK);
    struct frames fr = {SG_BUF_INIT, 0};
    bool take_due = false;
    /* the CONNECT reply (38 bytes with its head) fits in 40, "auth" does
     * not: both go to the store, the first too (nothing overtakes) */
    CHECK_INT(ws_recv_room(sid, "1.2", "40", 40, &fr, &take_due), SG_OK);
    CHECK(take_due);
    CHECK_INT(sg_buf_str(&fr.all)[0], '\0');
    int64_t wake = 0;
    CHECK_INT(sg_engine_ws_take(w, sid, "1.2", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_OK);
    CHECK(strncmp(sg_buf_str(&fr.all), "40{\"sid\":\"", 10) == 0);
    CHECK(strstr(sg_buf_str(&fr.all), "\"}|42[\"auth\",{}]") != NULL);
    sg_buf_reset(&fr.all);
    /* a connection that takes nothing (a client that does not read): its
     * acks pile up in the store until max_queued_packets (4) closes it */
    for (int i = 0; i < 4; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "42%d[\"message-with-ack\",%d]", i, i);
        CHECK_INT(ws_recv_room(sid, "1.2", msg, 0, &fr, &take_due), SG_OK);
        CHECK(take_due);
    }
    close_reason(sid, why);
    CHECK_STR(why, "");
    CHECK_INT(sg_buf_str(&fr.all)[0], '\0');
    CHECK_INT(ws_recv_room(sid, "1.2", "424[\"message-with-ack\",4]", 0, &fr, &take_due), SG_OK);
    CHECK(take_due);
    close_reason(sid, why);
    CHECK_STR(why, "transport error");
    CHECK_INT(sg_engine_ws_take(w, sid, "1.2", SIZE_MAX, collect_frame, &fr, &wake, NULL), SG_E_SID);
    CHECK_INT(sg_buf_str(&fr.all)[0], '\0'); /* its queue went with it */
    sg_buf_free(&fr.all);
    sg_buf_free(&open);
    setup(25000, 20000);
}

TEST("engine: a plugin that does not exist stops the engine, naming the file")
{
    sg_config bad;
    sg_config_defaults(&bad);
    free(bad.db);
    char db[128];
    snprintf(db, sizeof db, "%s/bad.db", dir);
    bad.db = strdup(db);
    bad.plugins = calloc(1, sizeof *bad.plugins);
    bad.plugins[0] = strdup("/nonexistent/plugin.so");
    bad.nplugins = 1;
    CHECK(sg_engine_new(&bad) == NULL);
    sg_config_free(&bad);
}

int main(void)
{
    sg_log_init("test_engine", getenv("SG_DEBUG") ? SG_LOG_DEBUG : SG_LOG_ERROR);
    const char *b = getenv("SG_BUILDDIR");
    snprintf(echo_path, sizeof echo_path, "%s/plugins/echo.so", b ? b : ".");
    snprintf(dir, sizeof dir, "/tmp/sg-test-engine-XXXXXX");
    if (!mkdtemp(dir))
        return 99;
    setup(25000, 20000);
    int rc = tap_run();
    sg_worker_free(w);
    sg_engine_free(eng);
    sg_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
