/* run.h: the zeolite command as a process, for the command-line suites:
 * run it with arguments (no shell, so no quoting), capture what it prints,
 * and a fake ZEO server that answers one ruok probe with given bytes. */
#ifndef ZEOLITE_TEST_TOOLS_RUN_H
#define ZEOLITE_TEST_TOOLS_RUN_H

#include <pthread.h>

/* The running test's own empty folder: suites use tr_dir_init and
 * tr_dir_fini as .init and .fini (each test runs in its own process). */
extern char *tr_dir;
void tr_dir_init(void);
void tr_dir_fini(void);
/* tr_dir/name, malloc'd; asserts. */
char *tr_path(const char *name);

/* What one run printed and how it ended. */
typedef struct tr_result {
    int status;     /* exit status; -1 when killed by a signal */
    char *out;      /* stdout, malloc'd, NUL-terminated */
    char *err;      /* stderr, likewise */
} tr_result;

/* Run `zeolite ARGS...` (a NULL-terminated list); env: "NAME=VALUE" strings
 * added to the environment (NULL: none). stdin is /dev/null, stdout and
 * stderr are files (not terminals). Asserts that it could run. */
void tr_run(tr_result *r, const char *const *args, const char *const *env);
/* As tr_run with the arguments inline: tr_zeolite(&r, "status", addr, NULL). */
void tr_zeolite(tr_result *r, const char *arg, ...) __attribute__((sentinel));
void tr_free(tr_result *r);
/* Lines in text (the count of '\n'). */
int tr_lines(const char *text);
/* Names in a folder (not . and ..); -1 when it cannot be read. */
int tr_count_entries(const char *dir);

/* A fake ZEO server on 127.0.0.1 for one ruok probe: it announces Z5, reads
 * the client's "ruok" and answers with the given text, then closes. */
typedef struct tr_ruok {
    int fd;
    int port;
    const char *answer;
    int got_ruok;       /* the client sent exactly the ruok frame */
    pthread_t thread;
} tr_ruok;

/* Listen and serve in a thread; asserts. */
void tr_ruok_start(tr_ruok *s, const char *answer);
/* Wait for the thread (the probe has been answered or refused). */
void tr_ruok_join(tr_ruok *s);

/* A loopback port with a listener that never answers: a port that takes the
 * connection and says nothing (as a TLS server does to a plain client).
 * Returns the listening fd (close it when done) and the port in *port. */
int tr_silent_port(int *port);

#endif
