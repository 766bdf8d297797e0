/* child.h: starting test/store_pg/pg_child, the second process of the
 * shared-store and fault tests. */
#ifndef ZEOLITE_TEST_CHILD_H
#define ZEOLITE_TEST_CHILD_H

#include <stdio.h>
#include <sys/types.h>

/* Start pg_child URI mode [arg] (arg NULL: none) with posix_spawn, never
 * fork: a forked copy of a process with threads (a store's, the test
 * runner's) may inherit a lock another thread held, the sanitizers'
 * allocator's say, and hang. Its standard output in *out. Fails the test
 * when it cannot start. */
pid_t pg_child_spawn(const char *uri, const char *mode, const char *arg, FILE **out);

#endif
