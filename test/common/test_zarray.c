/* zarray_room: the growth step of the modules' arrays. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/zarray.h"

Test(zarray, grows_from_first_then_doubles_and_keeps_the_elements)
{
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t *p = zarray_room(v, n, &cap, sizeof *p, 4);
        cr_assert_not_null(p);
        v = p;
        v[n++] = i * 3;
        if (i == 0)
            cr_expect_eq(cap, 4, "the first room is `first` elements");
    }
    cr_expect_eq(cap, 128, "4 doubled five times holds 100");
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(v[i], i * 3);
    /* With room left, the same array comes back untouched. */
    cr_expect_eq(zarray_room(v, n, &cap, sizeof *v, 4), v);
    cr_expect_eq(cap, 128);
    free(v);
}

Test(zarray, an_impossible_size_fails_and_leaves_the_array)
{
    char *v = malloc(8);
    cr_assert_not_null(v);
    size_t cap = 8;
    cr_expect_null(zarray_room(v, 8, &cap, SIZE_MAX / 8, 16));
    cr_expect_eq(cap, 8, "the capacity stays as it was");
    v[7] = 'x';   /* still ours */
    free(v);
}
