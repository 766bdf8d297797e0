/* libFuzzer target: pickle_decode in both modes, on arbitrary bytes.
 * Beyond "no crash": every decoded wire value must re-encode, and decoding
 * that encoding must give an equal value. */
#include <stdlib.h>

#include "pickle/pickle.h"
#include "fuzz.h"

static void check_round_trip(const zv *v, zv_arena *a)
{
    zbuf out = ZBUF_INIT;
    zv *back;
    size_t used;
    int rc = pickle_encode(v, &out, NULL);
    /* The encoder writes a value reached twice (DUP, a memo GET) twice, so
     * the encoding can cost more to decode than a message of its length may:
     * the bound held for the input, and is not what this checks. */
    if (rc == 0) {
        if (pickle_decode_max(out.data, out.len, 0, UINT64_MAX, a, &back, &used, NULL) ||
            used != out.len ||
            !zv_equal(back, v))
            abort();
    } else if (rc != ZE_INVAL) { /* sets are not encodable */
        abort();
    }
    zbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zv_arena *a = zv_arena_new();
    zv *v;
    size_t used;
    zerr err;
    if (pickle_decode(data, size, 0, a, &v, &used, &err) == 0)
        check_round_trip(v, a);
    zv_arena_reset(a);
    if (pickle_decode(data, size, PICKLE_ALLOW_OBJECTS, a, &v, &used, &err) == 0) {
        char *text = NULL; /* walks the whole tree: bounded depth, no cycles */
        zv_repr(v, &text);
        free(text);
        if (!zv_equal(v, v) || !zv_copy(a, v))
            abort();
    }
    zv_arena_free(a);
    return 0;
}
