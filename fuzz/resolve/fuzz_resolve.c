/* libFuzzer target for src/resolve: three arbitrary states for each
 * resolver.
 *
 * Input: one byte choosing a class (of the 37 resolved, and a few others),
 * one byte of mode, two 2-byte little-endian lengths, then the three
 * pieces (old, committed, new; the last takes the rest). Mode bit 0 set:
 * each piece is a whole record; clear: a state, after which the class's
 * own class pickle is put in front, so that most inputs reach the class's
 * resolver rather than stopping at the class. Malformed, huge and deeply
 * nested states must fall back; the fuzzer's -timeout and -rss_limit_mb
 * catch any that would take more than linear time or memory.
 *
 * Besides crashes and sanitizer reports, it checks that a resolved record
 * decodes, names the class, and that the outcome is one of the statuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle/pickle.h"
#include "pickle/record.h"
#include "resolve/resolve.h"
#include "fuzz.h"

static const char *const families[] = {"IO", "II", "IF", "LO", "LL", "LF", "OO", "OI", "OL"};
static const char *const shapes[] = {"Bucket", "Set", "BTree", "TreeSet"};

/* Class number k as module and name: the 36 BTrees classes, Length, and
 * two that are not resolved. */
static void class_of(unsigned k, char *module, char *name)
{
    k %= 39;
    if (k < 36) {
        sprintf(module, "BTrees.%sBTree", families[k / 4]);
        sprintf(name, "%s%s", families[k / 4], shapes[k % 4]);
    } else {
        strcpy(module, k == 36 ? "BTrees.Length" : k == 37 ? "BTrees.QQBTree" : "app");
        strcpy(name, k == 36 ? "Length" : k == 37 ? "QQBucket" : "Counter");
    }
}

static void piece(zbuf *rec, int whole, const char *module, const char *name, const uint8_t *p,
                  size_t n)
{
    if (!whole) {
        char head[128];
        int len = snprintf(head, sizeof head, "\x80\x03" "c%s\n%s\nq%c.", module, name, 0);
        zbuf_append(rec, head, (size_t)len);
    }
    zbuf_append(rec, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    char module[64], name[64];
    class_of(data[0], module, name);
    int whole = data[1] & 1;
    size_t n0 = data[2] | (size_t)data[3] << 8, n1 = data[4] | (size_t)data[5] << 8;
    data += 6;
    size -= 6;
    n0 = n0 < size ? n0 : size;
    n1 = n1 < size - n0 ? n1 : size - n0;
    zbuf recs[3] = {ZBUF_INIT, ZBUF_INIT, ZBUF_INIT}, out = ZBUF_INIT;
    piece(&recs[0], whole, module, name, data, n0);
    piece(&recs[1], whole, module, name, data + n0, n1);
    piece(&recs[2], whole, module, name, data + n0 + n1, size - n0 - n1);
    resolve_info info;
    resolve_status s = resolve_records(recs[0].data, recs[0].len, recs[1].data, recs[1].len,
                                       recs[2].data, recs[2].len, &out, &info);
    if ((unsigned)s > RESOLVE_NOMEM)
        abort();
    if (s == RESOLVE_OK) {
        zv_arena *a = zv_arena_new();
        zv *meta, *state;
        char want[160];
        snprintf(want, sizeof want, "%s.%s", module, name);
        if (record_decode(a, out.data, out.len, PICKLE_PY2_ASCII, &meta, &state, NULL) ||
            (!whole && strcmp(info.klass, want)) || !resolve_class_known(out.data, out.len))
            abort(); /* a resolved record that is not one */
        zv_arena_free(a);
    } else if (out.len) {
        abort(); /* output written on a fallback */
    }
    for (int i = 0; i < 3; i++)
        zbuf_free(&recs[i]);
    zbuf_free(&out);
    return 0;
}
