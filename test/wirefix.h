/* wirefix.h: the recorded ZEO conversations of shared/fixtures/wire/ as frames.
 *
 * Each fixture file (JSON Lines; format in shared/fixtures/wire/README.md)
 * becomes its frames in file order: connection, direction, the reference
 * decoder's `kind`, and the payload bytes from `hex` (which is
 * authoritative). Note lines are skipped. Within one connection and
 * direction the order is the wire order; across connections it is the order
 * the recording proxy saw, which replays use for causality.
 *
 * Shared by the codec tests (test/proto) and the server replay tests. Build
 * it with test/jsonmini.c (the JSON reader) and link zl_common:
 *   zl_add_test(NAME SOURCES ... ${CMAKE_SOURCE_DIR}/test/wirefix.c
 *               ${CMAKE_SOURCE_DIR}/test/jsonmini.c LIBS ...)
 */
#ifndef ZEOLITE_WIREFIX_H
#define ZEOLITE_WIREFIX_H

#include <stddef.h>
#include <stdint.h>

typedef enum wf_dir { WF_C2S, WF_S2C } wf_dir;

typedef struct wf_frame {
    int conn;         /* connection number within the file, 1-based, in accept order */
    char label[32];   /* the driver's name for that client: "A", "B", "A-reconnect", "P1" */
    wf_dir dir;
    char kind[16];    /* handshake, call, async, reply, error, heartbeat, ruok-reply */
    size_t line;      /* 1-based line in the file, for failure messages */
    uint8_t *payload; /* the frame payload, without the 4-byte length prefix */
    size_t len;
} wf_frame;

typedef struct wf_file {
    char scenario[64];    /* meta.scenario, e.g. "loads" */
    char encoding[4];     /* meta.encoding: "z5" or "m5" */
    char server_mode[16]; /* meta.server_mode: "default" or "ccr" */
    int msgpack;          /* server_config: announced M5 */
    int read_only;        /* server_config: read-only server */
    char blob_dir[16];    /* server_config blob-dir: "", "server" or "shared" */
    wf_frame *frames;     /* n frames, owned by the file */
    size_t n;
} wf_file;

/* Load one fixture file into *out (zeroed first). Returns 0, or -1 when the
 * file cannot be read or a frame line is malformed (reason on stderr); *out
 * then holds nothing to free. */
int wf_load(const char *path, wf_file *out);
void wf_free(wf_file *f);

/* Sorted paths of every fixture file of one encoding ("z5" or "m5"), found
 * through tu_shared("fixtures/wire/<enc>"). Returns a malloc'd array of
 * malloc'd strings and its length in *n, or NULL. */
char **wf_list(const char *enc, size_t *n);
void wf_list_free(char **paths, size_t n);

#endif
