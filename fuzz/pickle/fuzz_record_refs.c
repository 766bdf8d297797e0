/* libFuzzer target: record_refs and record_class_name on arbitrary bytes. */
#include <string.h>

#include "pickle/record.h"
#include "fuzz.h"

static int count_ref(const record_ref *ref, void *ud)
{
    size_t *n = ud;
    /* The database name must be a readable C string during the callback. */
    if (ref->database)
        *n += strlen(ref->database);
    ++*n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    char cls[128];
    zerr err;
    record_refs(data, size, count_ref, &n, &err);
    record_class_name(data, size, cls, sizeof cls);
    return 0;
}
