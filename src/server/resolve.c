/* resolve.c: the resolver the server hands its stores (store_options.
 * resolver) unless client-conflict-resolution is true: BTrees and
 * BTrees.Length conflicts merged in C by src/resolve, at vote and undo, as
 * ZEO's server resolves them with BTrees' own code. (With the switch true,
 * ZEO's server gives its storage never_resolve_conflict: not even an undo's
 * conflicts are resolved there, and zeolite's stores get no resolver.) What
 * it does not resolve goes back to the client as before, and is logged at DEBUG with the reason,
 * as ZODB's tryToResolveConflict logs a failed resolution. */
#include "server/server_int.h"
#include "resolve/resolve.h"

static int known(void *data, const uint8_t *rec, size_t len)
{
    (void)data;
    return resolve_class_known(rec, len);
}

static int resolve(void *data, uint64_t oid, zslice old, zslice committed, zslice new_rec,
                   zbuf *out)
{
    resolve_info info;
    resolve_status rs = resolve_records(old.p, old.len, committed.p, committed.len, new_rec.p,
                                        new_rec.len, out, &info);
    if (rs == RESOLVE_OK)
        return 1;
    zsrv__log(ZSRV_LOG_DEBUG, "storage %s: conflict on oid %016llx (%s) left to the client: %s: %s",
              (const char *)data, (unsigned long long)oid, info.klass[0] ? info.klass : "?",
              resolve_status_name(rs), info.msg);
    return 0;
}

store_resolver zsrv__resolver(const zsrv_storage_cfg *sc)
{
    return (store_resolver){.known = known, .resolve = resolve, .data = sc->name};
}
