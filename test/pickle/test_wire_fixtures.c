/* Every Z5 frame recorded between the real Python ZEO client and server
 * (fixtures/wire/z5): decoding gives the value ZEO's own decoder saw (the
 * "decoded" field), and re-encoding gives the recorded bytes exactly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "jsonmini.h"
#include "pickle/pickle.h"
#include "pktest.h"
#include "testutil.h"

typedef struct tally {
    size_t frames, files;
} tally;

/* The message tuple (msgid, flag, name, args) the fixture line describes. */
static zv *expected_message(zv_arena *a, const zv *decoded)
{
    zv *t = zv_tuple(a, 4);
    static const char *const keys[] = {"msgid", "flag", "name", "args"};
    for (int i = 0; i < 4; i++) {
        const zv *j = json_get(decoded, keys[i]);
        cr_assert_not_null(j, "decoded lacks %s", keys[i]);
        t->u.seq.items[i] = pt_from_fixture_json(a, j);
    }
    return t;
}

static void check_frame(zv_arena *a, const char *file, size_t line, const zv *rec)
{
    size_t len;
    uint8_t *frame = json_unhex(json_str(rec, "hex"), &len);
    cr_assert_not_null(frame, "%s:%zu: bad hex", file, line);
    zv *v;
    size_t used;
    zerr err = {0};
    int rc = pickle_decode(frame, len, 0, a, &v, &used, &err);
    cr_assert_eq(rc, 0, "%s:%zu: %s", file, line, err.msg);
    cr_assert_eq(used, len, "%s:%zu: bytes after STOP", file, line);

    zv *want = expected_message(a, json_get(rec, "decoded"));
    if (!zv_equal(v, want)) {
        char *g = NULL, *w = NULL;
        zv_repr(v, &g);
        zv_repr(want, &w);
        cr_assert_fail("%s:%zu: decoded %s, ZEO saw %s", file, line, g, w);
    }

    zbuf out = ZBUF_INIT;
    cr_assert_eq(pickle_encode(v, &out, &err), 0, "%s:%zu: %s", file, line, err.msg);
    cr_assert_eq(out.len, len, "%s:%zu: re-encoded length %zu, recorded %zu", file, line,
                 out.len, len);
    cr_assert_arr_eq(out.data, frame, len, "%s:%zu: re-encoded bytes differ", file, line);
    zbuf_free(&out);
    free(frame);
}

static void check_file(const char *dir, const char *name, tally *t)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t size;
    char *text = (char *)tu_read_file(path, &size);
    cr_assert_not_null(text, "cannot read %s", path);
    zv_arena *a = zv_arena_new();
    size_t lineno = 0;
    for (char *line = text; line < text + size;) {
        char *nl = memchr(line, '\n', (size_t)(text + size - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(text + size - line);
        lineno++;
        zv *rec;
        zerr err = {0};
        if (n) {
            cr_assert_eq(json_parse(line, n, a, &rec, &err), 0, "%s:%zu: %s", name, lineno,
                         err.msg);
            const zv *dec = json_get(rec, "decoded");
            const char *kind = dec ? json_str(dec, "kind") : NULL;
            if (kind && strcmp(kind, "handshake") && strcmp(kind, "ruok-reply")) {
                check_frame(a, name, lineno, rec);
                t->frames++;
            }
        }
        zv_arena_reset(a);
        line += n + 1;
    }
    zv_arena_free(a);
    free(text);
    t->files++;
}

Test(pickle_wire_fixtures, every_z5_frame_round_trips)
{
    char *dir = tu_shared("fixtures/wire/z5");
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    tally t = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 6 && !strcmp(e->d_name + n - 6, ".jsonl"))
            check_file(dir, e->d_name, &t);
    }
    closedir(d);
    free(dir);
    cr_assert_gt(t.files, 0);
    cr_assert_gt(t.frames, 0);
    cr_log_info("%zu Z5 frames in %zu files decoded and re-encoded identically", t.frames,
                t.files);
}
