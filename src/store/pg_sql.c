/* pg_sql.c: the text of every statement the PostgreSQL backend prepares.
 *
 * Ids are encoded bigints (pg.h), so every comparison and ORDER BY on oid or
 * tid is the unsigned order. A record's columns are always selected in
 * STPG_REC_COLS order so that one decoder (store__pg_rec_decode) reads them.
 * Loads follow a back-pointer with one join on the record it names
 * (data_tid, data_idx), resolved when it was written. */
#include "store/pg.h"

#define REC_COLS "tid, idx, kind, flags, back_tid, back_idx, data_tid, data_idx, blob_id, data"
/* The pickle a record stands for: its own, or its back-pointer's target's. */
#define RESOLVED(r, d) "CASE WHEN " r ".kind = 2 THEN " d ".data ELSE " r ".data END"
#define TARGET(r, d) \
    "LEFT JOIN zeolite.records " d " ON " r ".kind = 2 AND " d ".tid = " r ".data_tid AND " \
    d ".idx = " r ".data_idx"

const stpg_sql store__pg_sql[Q_N_STMT] = {
    [Q_LAST_TID] = {"last_tid",
        "SELECT greatest((SELECT max(tid) FROM zeolite.txns), "
        "(SELECT value FROM zeolite.meta WHERE name = 'last_tid'))", 0},
    /* $1 oid, $2 before, $3 the snapshot's last tid: the revision, its
     * data, and the next revision's tid, in one round trip. */
    [Q_LOAD_BEFORE] = {"load_before",
        "SELECT b.kind, b.flags, " RESOLVED("b", "d") ", b.data_tid, d.kind, b.tid, e.tid "
        "FROM (SELECT 1) one "
        "LEFT JOIN LATERAL (SELECT tid, kind, flags, data, data_tid, data_idx "
        "FROM zeolite.records WHERE oid = $1::bigint AND tid < $2::bigint AND tid <= $3::bigint "
        "ORDER BY tid DESC, idx DESC LIMIT 1) b ON true " TARGET("b", "d") " "
        "LEFT JOIN LATERAL (SELECT tid FROM zeolite.records WHERE oid = $1::bigint AND tid >= $2::bigint "
        "AND tid <= $3::bigint ORDER BY tid LIMIT 1) e ON true", 3},
    [Q_LOAD_SERIAL] = {"load_serial",
        "SELECT r.kind, r.flags, " RESOLVED("r", "d") ", r.data_tid, d.kind "
        "FROM (SELECT kind, flags, data, data_tid, data_idx FROM zeolite.records "
        "WHERE oid = $1::bigint AND tid = $2::bigint AND tid <= $3::bigint ORDER BY idx DESC LIMIT 1) r "
        TARGET("r", "d"), 3},
    [Q_CURRENT] = {"current",
        "SELECT tid, kind, data_tid FROM zeolite.records WHERE oid = $1::bigint AND tid <= $2::bigint "
        "ORDER BY tid DESC, idx DESC LIMIT 1", 2},
    /* $1 oid, $2 last tid, $3 how many: the last record of each transaction. */
    [Q_HISTORY] = {"history",
        "SELECT h.tid, h.kind, h.flags, h.len, t.status, t.username, t.description, "
        "t.extension FROM (SELECT DISTINCT ON (tid) tid, kind, flags, "
        "octet_length(data) AS len FROM zeolite.records WHERE oid = $1::bigint AND tid <= $2::bigint "
        "ORDER BY tid DESC, idx DESC LIMIT $3::int) h "
        "LEFT JOIN zeolite.txns t ON t.tid = h.tid ORDER BY h.tid DESC", 3},
    [Q_UNDO_LOG] = {"undo_log",
        "SELECT tid, status, username, description, extension, size FROM zeolite.txns "
        "WHERE tid <= $1::bigint ORDER BY tid DESC LIMIT $2::int", 2},
    /* $1 from, $2 last tid: the first oid >= from, its current record, and
     * the oid after it. */
    [Q_NEXT_OID] = {"next_oid",
        "SELECT o.oid, c.tid, c.kind, c.flags, " RESOLVED("c", "d") ", c.data_tid, d.kind, "
        "n.oid FROM (SELECT oid FROM zeolite.records WHERE oid >= $1::bigint AND tid <= $2::bigint "
        "ORDER BY oid LIMIT 1) o "
        "CROSS JOIN LATERAL (SELECT tid, kind, flags, data, data_tid, data_idx "
        "FROM zeolite.records WHERE oid = o.oid AND tid <= $2::bigint "
        "ORDER BY tid DESC, idx DESC LIMIT 1) c " TARGET("c", "d") " "
        "LEFT JOIN LATERAL (SELECT oid FROM zeolite.records WHERE oid > o.oid AND tid <= $2::bigint "
        "ORDER BY oid LIMIT 1) n ON true", 2},
    /* $1 after, $2 last tid, $3 how many transactions: their oids in order */
    [Q_CHANGES] = {"changes",
        "SELECT t.tid, r.oid FROM (SELECT tid FROM zeolite.txns WHERE tid > $1::bigint "
        "AND tid <= $2::bigint ORDER BY tid LIMIT $3::int) t "
        "LEFT JOIN zeolite.records r ON r.tid = t.tid ORDER BY t.tid, r.idx", 3},
    [Q_TXN_GET] = {"txn_get",
        "SELECT tid, status, username, description, extension, size, nrec "
        "FROM zeolite.txns WHERE tid = $1::bigint", 1},
    [Q_TXN_NEXT] = {"txn_next",
        "SELECT tid, status, username, description, extension, size, nrec "
        "FROM zeolite.txns WHERE tid >= $1::bigint AND tid <= $2::bigint ORDER BY tid LIMIT 1", 2},
    /* $1 tid, $2 first idx, $3 how many: records as iteration lists them; a
     * back-pointer into a packed transaction is re-numbered as iteration
     * lists that transaction (its records left, counted). */
    [Q_TXN_RECORDS] = {"txn_records",
        "SELECT r.idx, r.oid, r.kind, r.flags, r.back_tid, "
        "CASE WHEN r.kind = 2 AND bt.status = 'p' THEN (SELECT count(*)::int "
        "FROM zeolite.records g WHERE g.tid = r.back_tid AND g.idx < r.back_idx) "
        "ELSE r.back_idx END, " RESOLVED("r", "d") ", r.data_tid, d.kind "
        "FROM zeolite.records r " TARGET("r", "d") " "
        "LEFT JOIN zeolite.txns bt ON r.kind = 2 AND bt.tid = r.back_tid "
        "WHERE r.tid = $1::bigint AND r.idx >= $2::int ORDER BY r.idx LIMIT $3::int", 3},
    /* $1 oids (ascending), $2 exclusive or not: one row per lock, taken in
     * the arrays' order (a function scan yields it). */
    [Q_LOCK_OIDS] = {"lock_oids",
        "SELECT CASE WHEN u.x THEN pg_advisory_xact_lock(u.o)::text "
        "ELSE pg_advisory_xact_lock_shared(u.o)::text END "
        "FROM unnest($1::bigint[], $2::bool[]) AS u(o, x)", 2},
    [Q_CURRENT_TIDS] = {"current_tids",
        "SELECT (SELECT tid FROM zeolite.records r WHERE r.oid = u.o "
        "ORDER BY tid DESC, idx DESC LIMIT 1) "
        "FROM unnest($1::bigint[]) WITH ORDINALITY AS u(o, n) ORDER BY u.n", 1},
    /* $1 oids, $2 tids, $3 idx (-1: the oid's last record of that tid). */
    [Q_BACKPTR_TARGETS] = {"backptr_targets",
        "SELECT t.idx, t.kind, t.data_tid, t.data_idx, t.blob_id "
        "FROM unnest($1::bigint[], $2::bigint[], $3::int[]) WITH ORDINALITY AS u(o, b, i, n) "
        "LEFT JOIN LATERAL (SELECT idx, kind, data_tid, data_idx, blob_id "
        "FROM zeolite.records WHERE oid = u.o AND tid = u.b AND (u.i < 0 OR idx = u.i) "
        "ORDER BY idx DESC LIMIT 1) t ON true ORDER BY u.n", 3},
    [Q_COMMIT_LOCK] = {"commit_lock", "SELECT pg_advisory_xact_lock(2053467500, 2)::text", 0},
    [Q_TXN_INSERT] = {"txn_insert",
        "INSERT INTO zeolite.txns (tid, status, username, description, extension, nrec, size) "
        "VALUES ($1::bigint, $2::\"char\", $3::bytea, $4::bytea, $5::bytea, $6::int, $7::bigint)", 7},
    /* $1 the oid counter's floor, $2 objects added. */
    /* A shared store's: the same row, and the commit's NOTIFY ($8: the tid in
     * hex), sent when the transaction commits; one round trip for both. */
    [Q_TXN_INSERT_NOTIFY] = {"txn_insert_notify",
        "INSERT INTO zeolite.txns (tid, status, username, description, extension, nrec, size) "
        "SELECT $1::bigint, $2::\"char\", $3::bytea, $4::bytea, $5::bytea, $6::int, $7::bigint "
        "FROM (SELECT pg_notify('" STPG_CHANNEL "', $8::text)) n", 8},
    [Q_META_BUMP] = {"meta_bump",
        "UPDATE zeolite.meta SET value = CASE name WHEN 'next_oid' THEN greatest(value, $1::bigint) "
        "ELSE value + $2::bigint END WHERE (name = 'next_oid' AND value < $1::bigint) "
        "OR (name = 'objects' AND $2::bigint <> 0)", 2},
    [Q_HIDE_OLDER] = {"hide_older",
        "UPDATE zeolite.records SET flags = flags | 2 WHERE oid = $1::bigint AND tid < $2::bigint "
        "AND flags & 2 = 0", 2},
    [Q_TXN_EXISTS] = {"txn_exists", "SELECT 1 FROM zeolite.txns WHERE tid = $1::bigint", 1},
    /* $1 how many, $2 the highest counter that leaves room for them, $3 the
     * counter's end: the range [old, new) is reserved. */
    [Q_RESERVE_OIDS] = {"reserve_oids",
        "WITH o AS (SELECT value FROM zeolite.meta WHERE name = 'next_oid' FOR UPDATE) "
        "UPDATE zeolite.meta m SET value = CASE WHEN o.value <= $2::bigint THEN o.value + $1::bigint "
        "ELSE $3::bigint END FROM o WHERE m.name = 'next_oid' RETURNING o.value, m.value", 3},
    [Q_BLOB_NEW_ID] = {"blob_new_id", "SELECT nextval('zeolite.blob_ids')", 0},
    [Q_BLOB_CHUNK_PUT] = {"blob_chunk_put",
        "INSERT INTO zeolite.blob_chunks (blob_id, chunk, data) VALUES ($1::bigint, $2::int, $3::bytea)", 3},
    [Q_BLOB_CHUNKS] = {"blob_chunks",
        "SELECT data FROM zeolite.blob_chunks WHERE blob_id = $1::bigint ORDER BY chunk", 1},
    [Q_BLOB_OF] = {"blob_of",
        "SELECT kind, flags, blob_id FROM zeolite.records WHERE oid = $1::bigint AND tid = $2::bigint "
        "AND tid <= $3::bigint ORDER BY idx DESC LIMIT 1", 3},
    [Q_REC_GET] = {"rec_get",
        "SELECT " REC_COLS " FROM zeolite.records WHERE oid = $1::bigint AND tid = $2::bigint "
        "AND ($3::int < 0 OR idx = $3::int) ORDER BY idx DESC LIMIT 1", 3},
    [Q_REC_PREV] = {"rec_prev",
        "SELECT " REC_COLS " FROM zeolite.records WHERE oid = $1::bigint AND tid < $2::bigint "
        "ORDER BY tid DESC, idx DESC LIMIT 1", 2},
    [Q_REC_CURRENT] = {"rec_current",
        "SELECT " REC_COLS " FROM zeolite.records WHERE oid = $1::bigint "
        "ORDER BY tid DESC, idx DESC LIMIT 1", 1},
};
