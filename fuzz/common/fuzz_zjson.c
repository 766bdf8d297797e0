/* fuzz_zjson.c: the JSON reader, which reads what a server sends to ruok. */
#include <stddef.h>
#include <stdint.h>

#include "common/zjson.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zv_arena *a = zv_arena_new();
    zv *v;
    if (a)
        zjson_parse((const char *)data, size, a, &v, NULL);
    zv_arena_free(a);
    return 0; /* crashes and sanitizer reports are the findings */
}
