/* Handshake: announcement and the client's first frame (spec 2, 3). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "wirefix.h"

static proto_hello hello(const char *s)
{
    return proto_parse_hello((const uint8_t *)s, strlen(s));
}

Test(proto_hello, announcements)
{
    cr_assert_str_eq(proto_announcement(PROTO_PICKLE), "Z5");
    cr_assert_str_eq(proto_announcement(PROTO_MSGPACK), "M5");
    cr_assert_null(proto_announcement((proto_enc)'X'));
}

Test(proto_hello, accepted_replies)
{
    cr_assert_eq(hello("Z5"), PROTO_HELLO_Z5);
    cr_assert_eq(hello("M5"), PROTO_HELLO_M5);
    cr_assert_eq(hello("ruok"), PROTO_HELLO_RUOK);
}

/* Spec 2.3 and checklist item 4: old, future and unknown versions/letters. */
Test(proto_hello, refused_replies)
{
    static const char *const bad[] = {"X5", "Z4", "Z6", "M4", "Z3101", "Z309", "Z55", "Z",
                                      "5",  "",   "z5", "ruo", "ruok\n", "RUOK"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(hello(bad[i]), PROTO_HELLO_BAD, "%s", bad[i]);
    static const uint8_t nul[2] = {'Z', 0};
    cr_assert_eq(proto_parse_hello(nul, 2), PROTO_HELLO_BAD);
}

/* Every first frame of every recorded connection, both ways. */
static void check_recorded(const char *enc, proto_hello want)
{
    size_t n, checked = 0;
    char **paths = wf_list(enc, &n);
    cr_assert_not_null(paths);
    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        wf_file f;
        cr_assert_eq(wf_load(paths[i], &f), 0, "%s", paths[i]);
        for (size_t j = 0; j < f.n; j++) {
            const wf_frame *fr = &f.frames[j];
            if (strcmp(fr->kind, "handshake") != 0)
                continue;
            proto_hello h = proto_parse_hello(fr->payload, fr->len);
            if (fr->dir == WF_C2S && fr->len == 4)
                cr_assert_eq(h, PROTO_HELLO_RUOK, "%s:%zu", paths[i], fr->line);
            else
                cr_assert_eq(h, want, "%s:%zu", paths[i], fr->line);
            if (fr->dir == WF_S2C)
                cr_assert(fr->len == 2 && !memcmp(fr->payload, proto_announcement(want ==
                          PROTO_HELLO_Z5 ? PROTO_PICKLE : PROTO_MSGPACK), 2));
            checked++;
        }
        wf_free(&f);
    }
    cr_assert_gt(checked, 0);
    wf_list_free(paths, n);
}

Test(proto_hello, recorded_handshakes_z5) { check_recorded("z5", PROTO_HELLO_Z5); }
Test(proto_hello, recorded_handshakes_m5) { check_recorded("m5", PROTO_HELLO_M5); }
