/* pg_child.c: a second process on a PostgreSQL store, for test_pg_shared
 * and test_pg_faults, started with pg_child_spawn (child.h: why not fork).
 *
 *   pg_child URI increment N   add 1 to the counter in oid 1, N times
 *                              (retrying on conflicts); print each tid
 *   pg_child URI vote [alone]  vote a transaction on oids 1 and 2, print
 *                              "voted", then wait to be killed; alone: on
 *                              a store opened not shared (the database lock
 *                              exclusive)
 * Tids are printed as 16 hex digits, one a line. Exit 0, or 1 with the
 * error on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgs.h"
#include "store/store.h"

static int fail(const char *what, int rc, const zerr *e)
{
    fprintf(stderr, "pg_child: %s: %s: %s\n", what, zerr_name(rc), e ? e->msg : "");
    return 1;
}

static int increment(store *s, int times)
{
    zbuf d = ZBUF_INIT;
    zerr e;
    int rc = 0;
    for (int done = 0; done < times && !rc;) {
        store_reader *r;
        uint64_t serial = 0, end, tid;
        long n = 0;
        if ((rc = store_reader_new(s, &r, &e)))
            break;
        rc = store_load_before(r, 1, STORE_TID_MAX, &d, &serial, &end, &e);
        store_reader_free(r);
        if (rc == 0) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.*s", (int)d.len, (const char *)d.data);
            n = strtol(buf, NULL, 10);
        } else if (rc != ZE_NOTFOUND) {
            break;
        }
        char next[32];
        snprintf(next, sizeof next, "%ld", n + 1);
        rc = pgs_commit(s, 1, serial, next, &tid, &e);
        if (rc == ZE_CONFLICT) {
            rc = 0;
            continue;
        }
        if (!rc) {
            printf("%016llx\n", (unsigned long long)tid);
            fflush(stdout);
            done++;
        }
    }
    zbuf_free(&d);
    return rc ? fail("increment", rc, &e) : 0;
}

static int vote_and_wait(store *s)
{
    store_txn_meta m = {.status = ' '};
    store_txn *t;
    zerr e;
    int rc = store_txn_begin(s, &m, &t, &e);
    if (!rc)
        rc = store_txn_store(t, 1, 0, "child", 5, &e);
    if (!rc)
        rc = store_txn_store(t, 2, 0, "child2", 6, &e);
    if (!rc)
        rc = store_txn_vote(t, NULL, &e);
    if (rc)
        return fail("vote", rc, &e);
    printf("voted\n");
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    int vote = argc >= 3 && !strcmp(argv[2], "vote");
    int alone = vote && argc == 4 && !strcmp(argv[3], "alone");
    if (argc < 3 || (!vote && strcmp(argv[2], "increment")) ||
        (!vote && argc != 4) || (vote && argc == 4 && !alone) || argc > 4) {
        fprintf(stderr, "usage: pg_child URI increment N | pg_child URI vote [alone]\n");
        return 2;
    }
    store_options opt = {.shared = !alone, .lock_timeout_ms = 30000};
    store *s;
    zerr e;
    int rc = store_open(&s, argv[1], &opt, &e);
    if (rc)
        return fail("open", rc, &e);
    rc = !strcmp(argv[2], "vote") ? vote_and_wait(s) : increment(s, atoi(argv[3]));
    store_close(s);
    return rc;
}
