/* child.c: see child.h. */
#include <criterion/criterion.h>
#include <spawn.h>
#include <unistd.h>

#include "child.h"

extern char **environ;

pid_t pg_child_spawn(const char *uri, const char *mode, const char *arg, FILE **out)
{
    static const char path[] = ZEOLITE_BINARY_DIR "/test/store_pg/pg_child";
    int p[2];
    pid_t pid;
    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    char *argv[] = {(char *)path, (char *)uri, (char *)mode, (char *)arg, NULL};
    cr_assert_eq(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0, "spawn %s", path);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    *out = fdopen(p[0], "r");
    cr_assert(*out);
    return pid;
}
