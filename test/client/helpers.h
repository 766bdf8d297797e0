/* helpers.h: small things the client suites share. */
#ifndef ZEOLITE_TEST_CLIENT_HELPERS_H
#define ZEOLITE_TEST_CLIENT_HELPERS_H

#include "client/client.h"
#include "server.h"

/* The live server of the running test, for suites whose .init/.fini are the
 * fixtures below (Criterion runs each test in a process of its own). */
extern ts_server th_srv;
/* Fixtures: start th_srv, plain or speaking msgpack, asserting it started. */
void th_serve(void);
void th_serve_m5(void);
/* Fixture: stop th_srv and remove its dir. */
void th_unserve(void);

/* An object record as ZODB writes one: a class pickle, then a state pickle
 * holding text. Appended to out. */
void th_record(zbuf *out, const char *text);
/* Connect to s with opts (NULL: defaults); asserts success. */
zcl_client *th_connect(const ts_server *s, const zcl_opts *opts);
/* Commit one transaction storing text for each oid based on serials[i]
 * (NULL: new objects); asserts success and returns the tid. */
uint64_t th_commit(zcl_client *c, const uint64_t *oids, const uint64_t *serials, size_t n,
                   const char *text);
/* One new oid; asserts. */
uint64_t th_new_oid(zcl_client *c);
/* Does the record's state contain text? */
int th_record_has(const zbuf *rec, const char *text);

#endif
