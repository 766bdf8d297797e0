/* fake.h: a scripted fake server for the client tests: it accepts one
 * connection on a loopback port, sends fixed bytes, then reads until the
 * client hangs up. */
#ifndef ZEOLITE_TEST_CLIENT_FAKE_H
#define ZEOLITE_TEST_CLIENT_FAKE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_server {
    int listen_fd, port;
    const uint8_t *bytes; /* sent right after accept (borrowed) */
    size_t len;
    int hangup;           /* end the stream (FIN) right after sending */
    pthread_t thread;
} fake_server;

/* Listen and serve in a thread; asserts on failure. */
void fake_start(fake_server *s, const void *bytes, size_t len, int hangup);
/* Wait for the session to end and close the listener. */
void fake_end(fake_server *s);

#endif
