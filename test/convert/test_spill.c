/* test_spill.c: index memory moves to a temporary file past its heap limit. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "convert/convert_int.h"

static void fill(uint64_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        p[i] = i * 0x9E3779B97F4A7C15ull;
}

static int intact(const uint64_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != i * 0x9E3779B97F4A7C15ull)
            return 0;
    return 1;
}

Test(spill, keeps_its_contents_from_heap_to_file_and_while_growing)
{
    zfs_spill r = ZFS_SPILL_INIT;
    size_t small = 1 << 20, big = 32 << 20, bigger = 64 << 20;
    cr_assert_eq(zfs__spill_resize(&r, small, NULL), 0);
    cr_expect_eq(r.fd, -1, "small regions stay on the heap");
    fill(r.p, 0, small / 8);
    cr_assert_eq(zfs__spill_resize(&r, big, NULL), 0);
    cr_expect_geq(r.fd, 0, "large regions live in a file");
    cr_expect(intact(r.p, small / 8));
    fill(r.p, small / 8, big / 8);
    cr_assert_eq(zfs__spill_resize(&r, bigger, NULL), 0);
    cr_expect(intact(r.p, big / 8));
    zfs__spill_free(&r);
    cr_expect_null(r.p);
}

Test(spill, an_index_past_the_heap_limit_still_answers)
{
    zfs_index *ix = zfs__index_new();
    cr_assert_not_null(ix);
    /* 600,000 oids need a 1M-slot map (16 MB): it spills */
    const uint64_t n = 600000;
    cr_assert_eq(zfs__index_add_txn(ix, 1, 4, NULL), 0);
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(zfs__index_add_record(ix, i, 100 + 50 * i, NULL), 0);
    cr_assert_eq(zfs__index_end_txn(ix, NULL), 0);
    uint64_t tid, pos;
    uint32_t index;
    for (uint64_t i = 0; i < n; i += 997) {
        cr_expect_eq(zfs__index_last(ix, i), 100 + 50 * i);
        cr_expect_eq(zfs__index_find_pos(ix, 100 + 50 * i, &tid, &index), 0);
        cr_expect_eq(index, (uint32_t)i);
        cr_expect_eq(zfs__index_find_rec(ix, 1, (uint32_t)i, &pos), 0);
        cr_expect_eq(pos, 100 + 50 * i);
    }
    cr_expect_eq(zfs__index_last(ix, n + 5), 0);
    cr_expect_eq(zfs__index_find_pos(ix, 101, &tid, &index), ZE_NOTFOUND);
    zfs__index_free(ix);
}
