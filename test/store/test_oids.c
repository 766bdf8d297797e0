/* new_oids: unique, durable, never wrapping, past every stored oid. */
#include "storetest.h"

Test(store_oids, new_oids_are_unique_and_durable)
{
    st_fixture f;
    stt_open(&f, NULL);
    uint64_t a[1000], b[3];
    zerr e;
    cr_assert_eq(store_new_oids(f.s, 3, b, &e), 0, "%s", e.msg);
    cr_assert_eq(b[0], 1);   /* 0 is the root */
    cr_assert_eq(b[1], 2);
    cr_assert_eq(b[2], 3);
    cr_assert_eq(store_new_oids(f.s, 1000, a, &e), 0);
    cr_assert_eq(a[0], 4);
    cr_assert_eq(a[999], 1003);
    cr_assert_eq(store_new_oids(f.s, 0, a, &e), ZE_INVAL);
    cr_assert_eq(store_new_oids(f.s, 1001, a, &e), ZE_INVAL);
    stt_close(&f);
    stt_reopen(&f, NULL);
    cr_assert_eq(store_new_oids(f.s, 1, b, &e), 0);
    cr_assert_gt(b[0], 1003);
    stt_done(&f);
}

Test(store_oids, restored_oids_move_the_counter)
{
    st_fixture f;
    stt_open(&f, NULL);
    stt_commit1(f.s, 5000, 0, "high");
    uint64_t oid;
    zerr e;
    cr_assert_eq(store_new_oids(f.s, 1, &oid, &e), 0);
    cr_assert_eq(oid, 5001);
    stt_done(&f);
}

Test(store_oids, new_oids_stop_below_the_last_oid)
{
    st_fixture f;
    stt_open(&f, NULL);
    stt_commit1(f.s, UINT64_MAX - 3, 0, "high");
    uint64_t oids[5];
    zerr e;
    /* Two oids are left below the ceiling: a call for more fails whole. */
    cr_assert_eq(store_new_oids(f.s, 3, oids, &e), ZE_FULL);
    cr_assert(strstr(e.msg, "no oids left"), "%s", e.msg);
    cr_assert_eq(store_new_oids(f.s, 2, oids, &e), 0, "%s", e.msg);
    cr_assert_eq(oids[0], UINT64_MAX - 2);
    cr_assert_eq(oids[1], UINT64_MAX - 1);
    cr_assert_eq(store_new_oids(f.s, 1, oids, &e), ZE_FULL);
    stt_close(&f);
    stt_reopen(&f, NULL);
    cr_assert_eq(store_new_oids(f.s, 1, oids, &e), ZE_FULL, "the counter went back");
    stt_done(&f);
}

Test(store_oids, storing_the_last_oid_uses_up_the_counter_for_good)
{
    st_fixture f;
    stt_open(&f, NULL);
    uint64_t oid;
    zerr e;
    cr_assert_eq(store_new_oids(f.s, 1, &oid, &e), 0);
    stt_commit1(f.s, oid, 0, "in use");
    stt_commit1(f.s, UINT64_MAX, 0, "last");
    cr_assert_eq(store_new_oids(f.s, 1, &oid, &e), ZE_FULL);
    stt_close(&f);
    stt_reopen(&f, NULL);
    cr_assert_eq(store_new_oids(f.s, 1, &oid, &e), ZE_FULL, "oid %016llx handed out again",
                 (unsigned long long)oid);
    stt_done(&f);
}
