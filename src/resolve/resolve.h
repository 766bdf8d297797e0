/* resolve.h: write conflicts on BTrees and BTrees.Length resolved in C, by
 * BTrees' own rules, without executing anything a client sent.
 *
 * A ZODB conflict has three revisions of one object: old (the one the
 * writing client started from), committed (the current one) and new (the
 * client's). The Python server resolves it with ZODB's tryToResolveConflict,
 * which loads the three states and calls the class's _p_resolveConflict.
 * This module does the same for the classes whose rules are fixed and known,
 * reading the records with the strict pickle reader (src/pickle) and merging
 * the decoded values:
 *
 *   BTrees.Length.Length    committed + new - old, exact at any size;
 *   buckets and sets        BTrees' bucket_merge (MergeTemplate.c), of the
 *                           families IO II IF LO LL LF OO OI OL (BTrees 4.3.1);
 *   BTrees and TreeSets     the same in the one-bucket case (state None or
 *                           ((bucket_state,),)), as BTree._p_resolveConflict.
 *
 * It refuses wherever BTrees 4.3.1 refuses (newer BTrees resolve a little
 * more: None keys and values since 4.4; those fall back here), and falls
 * back to the client wherever it cannot be certain of BTrees' answer: an
 * unknown class, U/Q families, trees of more than one bucket, keys or values
 * whose Python comparison it does not reproduce, a malformed or oversized
 * record. Falling back is never
 * wrong: the conflict then goes to the client, as it would without this
 * module. Everything here is pure computation on the caller's bytes: no
 * globals, no I/O, safe on any thread.
 */
#ifndef ZEOLITE_RESOLVE_H
#define ZEOLITE_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zbuf.h"

/* Records larger than this are not decoded (RESOLVE_TOOBIG). Memory and
 * time are linear in the records' sizes below it. */
#define RESOLVE_MAX_RECORD (16u << 20)

/* Why a conflict was not resolved. RESOLVE_OK means it was. */
typedef enum resolve_status {
    RESOLVE_OK = 0,
    /* BTrees refuses with a BTreesConflictError; info->btrees_reason is
     * bucket_merge's number (see BTrees/Interfaces.py IMerge): 0 next-bucket
     * links differ, 1 both changed a value, 2/3 a delete meets a change,
     * 4/5/6 both inserted or deleted one key, 7/8 a delete meets a change or
     * a delete at the end, 9 both deleted at the end, 10 empty result,
     * 11 a tree of more than one bucket, 12 a side is empty, 13 the first
     * key deleted. */
    RESOLVE_CONFLICT,
    /* A comparison BTrees makes would raise in Python (two different
     * persistent references, None, unorderable types): BTrees fails. */
    RESOLVE_UNORDERABLE,
    /* A key or value BTrees would not store: wrong type, an integer out of
     * the family's range, an object key of a type without comparison (None).
     * BTrees fails too. */
    RESOLVE_BADVALUE,
    /* Not a class this module resolves, or the three records disagree on
     * the class. */
    RESOLVE_CLASS,
    /* Not a plain ZODB record of the class's state, or a state this module
     * does not trust (an odd item count, keys out of order, an unusual
     * next-bucket link). */
    RESOLVE_MALFORMED,
    /* A key or value whose comparison (or re-pickling) C does not reproduce
     * with certainty: dicts, sets, instances, NaN. */
    RESOLVE_UNSUPPORTED,
    /* Over RESOLVE_MAX_RECORD or the pickle reader's limits. */
    RESOLVE_TOOBIG,
    RESOLVE_NOMEM,
} resolve_status;

/* Detail of an outcome, for logs, counters and tests. */
typedef struct resolve_info {
    int btrees_reason; /* with RESOLVE_CONFLICT, bucket_merge's reason; else -1 */
    char klass[96];    /* "BTrees.OOBTree.OOBucket" once the class is known, else "" */
    char msg[160];     /* one line saying why, "" on success */
} resolve_info;

/**
 * @brief Resolve a write conflict on one object, as ZODB's
 *        tryToResolveConflict would with BTrees 4.3.1.
 *
 * Each record is as ZODB stores it: a class pickle followed by a state
 * pickle (one memo). The class is taken from @p new_rec, as ZODB does.
 *
 * @param[in]  old_rec    the revision the client started from
 * @param[in]  committed  the current revision
 * @param[in]  new_rec    the client's revision
 * @param[out] out        on RESOLVE_OK, the resolved record is appended: the
 *                        class pickle and the merged state, pickled as
 *                        tryToResolveConflict pickles them (protocol 3, one
 *                        memo), byte for byte what the Python server writes.
 *                        (One exception: a persistent reference that names a
 *                        class the Python server cannot import, it re-spells
 *                        as (oid, (module, name)); this keeps the client's
 *                        spelling. ZODB loads both alike. Length and buckets
 *                        of numbers hold no references.) On any other
 *                        outcome *out is as it was.
 * @param[out] info       may be NULL
 * @return RESOLVE_OK, or the reason the conflict goes back to the client.
 *         Never fails otherwise; out-of-memory is RESOLVE_NOMEM.
 *
 * @note The same call serves undo: there old is the revision being undone,
 *       committed the current one and new the one before the undone one,
 *       as FileStorage's undo calls conflict resolution.
 */
resolve_status resolve_records(const uint8_t *old_rec, size_t old_len, const uint8_t *committed,
                               size_t committed_len, const uint8_t *new_rec, size_t new_len,
                               zbuf *out, resolve_info *info);

/**
 * @brief 1 when @p rec (a record as above) is of a class resolve_records
 *        knows, else 0. Reads only the class pickle, so a server can skip
 *        loading the old revision of everything else.
 */
int resolve_class_known(const uint8_t *rec, size_t len);

/* Short constant name of a status, e.g. "RESOLVE_CONFLICT". */
const char *resolve_status_name(resolve_status s);

#endif
