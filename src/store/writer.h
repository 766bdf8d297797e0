/* writer.h: the store's writer thread and its job queue (private).
 *
 * The writer takes every queued job at once, runs each in a nested LMDB
 * transaction of one outer write transaction (a lone job outside bulk mode
 * runs in the outer one itself), commits that (one durable sync for the
 * group), then completes the jobs in queue order: a commit job
 * with a callback calls it (and never touches the txn again); any other job
 * is marked done and its waiter woken. On MDB_MAP_FULL it grows the map and
 * runs the group again. In bulk mode the outer transaction stays open across
 * groups and is committed, unsynced, every few MB.
 */
#ifndef ZEOLITE_STORE_WRITER_H
#define ZEOLITE_STORE_WRITER_H

#include "store/store_internal.h"

int store__writer_start(store *s, zerr *err);
/* Finish queued jobs, commit an open bulk transaction, join the thread. */
void store__writer_stop(store *s);
/* Queue a job (s->mu held by the caller) and wake the writer. */
void store__writer_enqueue_locked(store *s, st_job *job);
/* Wait until a job without callback is done; returns its rc (err filled). */
int store__writer_wait(store *s, st_job *job, zerr *err);

#endif
