/* fanout.c - what a broadcast to a room costs, a row per recipient against
 * the broadcast log, and what a take costs with log rows pending.
 *
 *   tests/bench/fanout [DIR]
 *
 * In a scratch store under DIR (default /tmp): rooms of 100, 1,000 and
 * 10,000 sockets (one session each, inserted directly), then emits to the
 * room through the engine as a plugin's emit_to would, with
 * broadcast_log_min above the room (a queue row per recipient) and at 0
 * (the log); and to a room of 10 among the 10,000 (a chat room's emit).
 * The emit is one transaction (BEGIN IMMEDIATE .. COMMIT): its wall time
 * is the time the write lock is held. Each figure is the median
 * of ROUNDS emits. Then the take of one session (sg_store_stream_read, as a
 * GET does it) with K log rows after its frontier, none or all of them for
 * it. Last, with 1,000 more sessions in another room of the namespace, the
 * sessions one log row names, as a process finds the connections to wake:
 * all of them listed (sg_store_bcast_sessions), or K of the members asked
 * about by name. Prints numbers; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "store.h"
#include "util.h"

#define ROUNDS 7

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* n sessions, each with a socket on "/" in room (and its own room). */
static int populate(sg_store *s, int n, const char *room, char (*sids)[SG_ID_LEN + 1])
{
    if (sg_store_begin(s) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        sg_session ss;
        memset(&ss, 0, sizeof ss);
        sg_buf_init(&ss.partial);
        char id[SG_ID_LEN + 1];
        if (sg_id_new(ss.sid) < 0 || sg_id_new(id) < 0)
            return -1;
        snprintf(ss.transport, sizeof ss.transport, "polling");
        ss.created_at = sg_now_ms();
        ss.next_ping_at = ss.expires_at = ss.created_at + 3600000;
        if (sg_store_session_insert(s, &ss, "{}") != 0 ||
            sg_store_socket_insert(s, id, ss.sid, "/", ss.created_at) != 0 ||
            sg_store_room_join(s, "/", room, id) != 0)
            return -1;
        if (sids)
            memcpy(sids[i], ss.sid, sizeof sids[i]);
    }
    return sg_store_commit(s);
}

static void count_sid(void *ud, const char *sid)
{
    (void)sid;
    (*(int *)ud)++;
}

static int ignore_frame(void *ud, bool binary, const void *frame, size_t len)
{
    (void)binary, (void)frame, (void)len;
    (*(int *)ud)++;
    return 0;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sg-fanout-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    static const int sizes[] = {100, 1000, 10000};
    printf("emit to a room (median of %d; wall = write lock held)\n", ROUNDS);
    printf("%8s %18s %18s\n", "sockets", "row each (ms)", "log (ms)");
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k];
        char db[600];
        snprintf(db, sizeof db, "%s/f%d.db", dir, n);
        sg_config cfg;
        sg_config_defaults(&cfg);
        free(cfg.db);
        cfg.db = strdup(db);
        sg_engine *e = sg_engine_new_emitter(&cfg);
        sg_store *st = sg_store_open(db);
        sg_worker *w = e ? sg_worker_new(e) : NULL;
        if (!w || !st || populate(st, n, "r", NULL) != 0) {
            fprintf(stderr, "fanout: setup failed\n");
            return 1;
        }
        const char *rooms[] = {"r", NULL};
        sg_target t = {"/", rooms, NULL, 0};
        double t_rows[ROUNDS], t_log[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            cfg.broadcast_log_min = n + 1;
            double a = now_ms();
            int got = sg_engine_emit(w, &t, "news", json_pack("[s]", "hello"));
            t_rows[r] = now_ms() - a;
            cfg.broadcast_log_min = 0;
            a = now_ms();
            int got2 = sg_engine_emit(w, &t, "news", json_pack("[s]", "hello"));
            t_log[r] = now_ms() - a;
            if (got != n || got2 != n) {
                fprintf(stderr, "fanout: reached %d / %d of %d\n", got, got2, n);
                return 1;
            }
            /* keep the queue from growing between rounds */
            sg_store_scalar(st, "DELETE FROM queue RETURNING 0");
        }
        printf("%8d %18.2f %18.2f\n", n, median(t_rows, ROUNDS), median(t_log, ROUNDS));
        if (n == 10000) {
            /* a chat room's emit: 10 members among the namespace's 10,010 */
            const char *chat[] = {"s", NULL};
            sg_target ct = {"/", chat, NULL, 0};
            cfg.broadcast_log_min = SG_BROADCAST_LOG_MIN_DEFAULT;
            if (populate(st, 10, "s", NULL) != 0) {
                fprintf(stderr, "fanout: setup failed\n");
                return 1;
            }
            for (int r = 0; r < ROUNDS; r++) {
                double a = now_ms();
                int got = sg_engine_emit(w, &ct, "news", json_pack("[s]", "hello"));
                t_rows[r] = now_ms() - a;
                if (got != 10) {
                    fprintf(stderr, "fanout: reached %d of 10\n", got);
                    return 1;
                }
            }
            printf("%8s %18.2f %18s   (10 of the namespace's 10,010)\n", "10",
                   median(t_rows, ROUNDS), "-");
        }
        sg_worker_free(w);
        sg_store_close(st);
        sg_engine_free(e);
        sg_config_free(&cfg);
    }

    /* a take with K log rows pending: 1,000 sessions in room "r" */
    char db[600];
    snprintf(db, sizeof db, "%s/take.db", dir);
    sg_store *s = sg_store_open(db);
    static char sids[1000][SG_ID_LEN + 1];
    if (!s || populate(s, 1000, "r", sids) != 0) {
        fprintf(stderr, "fanout: setup failed\n");
        return 1;
    }
    printf("\ntake of one session with K log rows after its frontier (median of %d, ms)\n",
           ROUNDS);
    printf("%8s %18s %18s\n", "K", "none for it", "all for it");
    static const int ks[] = {0, 10, 100, 1000};
    int64_t base_seq = sg_store_bcast_max(s);
    for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++) {
        double t_none[ROUNDS], t_all[ROUNDS];
        for (int pass = 0; pass < 2; pass++) {
            sg_store_scalar(s, "DELETE FROM queue RETURNING 0");
            sg_store_begin(s);
            for (int i = 0; i < ks[k]; i++)
                sg_store_bcast_push(s, "/", pass ? "[\"r\"]" : "[\"elsewhere\"]", NULL, NULL,
                                    false, "42[\"news\",\"hello\"]", 19);
            sg_store_commit(s);
            for (int r = 0; r < ROUNDS; r++) {
                int64_t seen = base_seq, last = 0;
                int frames = 0;
                sg_store_begin(s);
                double a = now_ms();
                int got = sg_store_stream_read(s, sids[r], 0, &seen, SIZE_MAX, ignore_frame,
                                               &frames, &last, NULL);
                (pass ? t_all : t_none)[r] = now_ms() - a;
                sg_store_rollback(s);
                if (got != (pass ? ks[k] : 0)) {
                    fprintf(stderr, "fanout: take passed %d frames\n", got);
                    return 1;
                }
            }
        }
        printf("%8d %18.3f %18.3f\n", ks[k], median(t_none, ROUNDS), median(t_all, ROUNDS));
    }

    /* the sessions one row names: listed, or K of them asked about */
    if (populate(s, 1000, "other", NULL) != 0) {
        fprintf(stderr, "fanout: setup failed\n");
        return 1;
    }
    sg_store_scalar(s, "DELETE FROM queue RETURNING 0");
    int64_t row = sg_store_bcast_push(s, "/", "[\"r\"]", NULL, NULL, false, "42[\"news\"]", 10);
    printf("\nthe sessions a row naming a room of 1,000 names, 2,000 sessions in the"
           " namespace\n(median of %d, us per session listed or asked about)\n", ROUNDS);
    printf("%8s %18s\n", "asked", "us each");
    static const int asks[] = {0, 10, 100};
    const char *among[100];
    for (int i = 0; i < 100; i++)
        among[i] = sids[i];
    for (size_t k = 0; k < sizeof asks / sizeof asks[0]; k++) {
        double t[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            int named = 0;
            double a = now_ms();
            int got = sg_store_bcast_sessions(s, row - 1, row, asks[k] ? among : NULL,
                                              (size_t)asks[k], count_sid, &named);
            t[r] = (now_ms() - a) * 1e3 / (asks[k] ? asks[k] : 1000);
            if (got != (asks[k] ? asks[k] : 1000)) {
                fprintf(stderr, "fanout: %d sessions named\n", got);
                return 1;
            }
        }
        if (asks[k])
            printf("%8d %18.2f\n", asks[k], median(t, ROUNDS));
        else
            printf("%8s %18.2f\n", "(all)", median(t, ROUNDS));
    }
    sg_store_close(s);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
