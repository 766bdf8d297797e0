/* blob_dir.c: which records carry a file in the blob directory. */
#include "convert/convert.h"

#include <string.h>

int zfs_is_blob_record(const uint8_t *p, size_t len)
{
    static const char cls[] = "cZODB.blob\nBlob\n";
    size_t i = 0;
    if (len >= 2 && p[0] == 0x80)
        i = 2;
    if (i < len && p[i] == '(')   /* (class, args) form */
        i++;
    return len - i >= sizeof cls - 1 && !memcmp(p + i, cls, sizeof cls - 1);
}
