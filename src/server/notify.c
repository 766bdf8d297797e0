/* notify.c: systemd's readiness protocol for Type=notify units.
 *
 * When systemd starts the server with NOTIFY_SOCKET set, it waits for
 * READY=1 before it calls the unit started; STOPPING=1 tells it a stop is
 * under way, RELOADING=1 ... READY=1 that a reload (the log reopen) is.
 *
 * The protocol is one datagram of "KEY=VALUE" lines to the Unix socket
 * NOTIFY_SOCKET names (a leading '@' is the abstract namespace), and
 * sd_notify(3) documents it as a stable interface with this very
 * implementation in its NOTES. It is written here rather than linking
 * libsystemd, so that the server keeps no dependency for ten lines and runs
 * unchanged where systemd is absent (NOTIFY_SOCKET unset: nothing is sent). */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int zsrv__notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
        return ZE_INVAL;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ZE_IO;
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
    int e = errno;
    close(fd);
    if (n != (ssize_t)strlen(state)) {
        zsrv__log(ZSRV_LOG_WARNING, "cannot notify systemd at %s: %s", path,
                  n < 0 ? strerror(e) : "short write");
        return ZE_IO;
    }
    return 0;
}

int zsrv__notify_reloading(void)
{
    /* systemd 253 and later match the reload to its start by this clock. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[64];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    return zsrv__notify(msg);
}
