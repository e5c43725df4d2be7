/* pq.h - libpq, loaded when a PostgreSQL store is first used.
 *
 * Linking libpq would load it, with its 22 libraries (OpenSSL, GnuTLS,
 * Kerberos, LDAP, SASL, ...), into every siogate process at start: 11 ms
 * more for each `siogate emit` on the 2-core VM (4.8 ms -> 15.7 ms for
 * `siogate --version`, 200 runs each), also on a SQLite store. So the
 * programs do not link it: the code of the PostgreSQL store includes this
 * header instead of <libpq-fe.h>, whose functions it then calls through
 * pointers that sg_pq_load() fills from dlopen("libpq.so.5").
 *
 * Call sg_pq_load() before the first libpq call of a path (a connect, or
 * PQconninfoParse): every other call takes a PGconn or a PGresult, which
 * only those make. */
#ifndef SG_PQ_H
#define SG_PQ_H

#include <libpq-fe.h>

/* The libpq functions siogate uses. */
#define SG_PQ_FUNCS(X) \
    X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconninfoFree) X(PQconninfoParse) \
    X(PQconnectdb) X(PQconnectdbParams) X(PQconnectPoll) X(PQconnectStartParams) \
    X(PQconsumeInput) X(PQenterPipelineMode) X(PQerrorMessage) X(PQexec) \
    X(PQexecParams) X(PQexecPrepared) X(PQexitPipelineMode) X(PQfformat) X(PQfinish) \
    X(PQflush) X(PQfreemem) X(PQgetisnull) X(PQgetlength) X(PQgetResult) X(PQgetvalue) \
    X(PQisBusy) X(PQnfields) X(PQnotifies) X(PQntuples) X(PQpipelineSync) X(PQprepare) \
    X(PQreset) X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus) \
    X(PQsendPrepare) X(PQsendQuery) X(PQsendQueryParams) X(PQsendQueryPrepared) \
    X(PQsetNoticeProcessor) X(PQsetnonblocking) X(PQsocket) X(PQstatus) \
    X(PQtransactionStatus)

struct sg_pq {
#define SG_PQ_FIELD(f) __typeof__(f) *f;
    SG_PQ_FUNCS(SG_PQ_FIELD)
#undef SG_PQ_FIELD
};
extern struct sg_pq sg_pq;

/* Load libpq once per process (thread-safe). 0, or -1 with the reason in
 * sg_pq_error() (logged once). */
int sg_pq_load(void);
/* Why the load failed (a static string; "" when it did not). */
const char *sg_pq_error(void);

#ifndef SG_PQ_IMPL
#define PQclear (sg_pq.PQclear)
#define PQcmdStatus (sg_pq.PQcmdStatus)
#define PQcmdTuples (sg_pq.PQcmdTuples)
#define PQconninfoFree (sg_pq.PQconninfoFree)
#define PQconninfoParse (sg_pq.PQconninfoParse)
#define PQconnectdb (sg_pq.PQconnectdb)
#define PQconnectdbParams (sg_pq.PQconnectdbParams)
#define PQconnectPoll (sg_pq.PQconnectPoll)
#define PQconnectStartParams (sg_pq.PQconnectStartParams)
#define PQconsumeInput (sg_pq.PQconsumeInput)
#define PQenterPipelineMode (sg_pq.PQenterPipelineMode)
#define PQerrorMessage (sg_pq.PQerrorMessage)
#define PQexec (sg_pq.PQexec)
#define PQexecParams (sg_pq.PQexecParams)
#define PQexecPrepared (sg_pq.PQexecPrepared)
#define PQexitPipelineMode (sg_pq.PQexitPipelineMode)
#define PQfformat (sg_pq.PQfformat)
#define PQfinish (sg_pq.PQfinish)
#define PQflush (sg_pq.PQflush)
#define PQfreemem (sg_pq.PQfreemem)
#define PQgetisnull (sg_pq.PQgetisnull)
#define PQgetlength (sg_pq.PQgetlength)
#define PQgetResult (sg_pq.PQgetResult)
#define PQgetvalue (sg_pq.PQgetvalue)
#define PQisBusy (sg_pq.PQisBusy)
#define PQnfields (sg_pq.PQnfields)
#define PQnotifies (sg_pq.PQnotifies)
#define PQntuples (sg_pq.PQntuples)
#define PQpipelineSync (sg_pq.PQpipelineSync)
#define PQprepare (sg_pq.PQprepare)
#define PQreset (sg_pq.PQreset)
#define PQresultErrorField (sg_pq.PQresultErrorField)
#define PQresultErrorMessage (sg_pq.PQresultErrorMessage)
#define PQresultStatus (sg_pq.PQresultStatus)
#define PQsendPrepare (sg_pq.PQsendPrepare)
#define PQsendQuery (sg_pq.PQsendQuery)
#define PQsendQueryParams (sg_pq.PQsendQueryParams)
#define PQsendQueryPrepared (sg_pq.PQsendQueryPrepared)
#define PQsetNoticeProcessor (sg_pq.PQsetNoticeProcessor)
#define PQsetnonblocking (sg_pq.PQsetnonblocking)
#define PQsocket (sg_pq.PQsocket)
#define PQstatus (sg_pq.PQstatus)
#define PQtransactionStatus (sg_pq.PQtransactionStatus)
#endif

#endif
