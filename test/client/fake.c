/* fake.c: see fake.h. */
#include "fake.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void *serve(void *arg)
{
    fake_server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (write(fd, s->bytes, s->len) != (ssize_t)s->len)
        fprintf(stderr, "fake server: short write\n");
    if (s->hangup)
        shutdown(fd, SHUT_WR);
    /* Read whatever the client says until it hangs up (or a few seconds). */
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
    return NULL;
}

void fake_start(fake_server *s, const void *bytes, size_t len, int hangup)
{
    s->hangup = hangup;
    s->bytes = bytes;
    s->len = len;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(s->listen_fd, 1), 0);
    cr_assert_eq(getsockname(s->listen_fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

void fake_end(fake_server *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}
