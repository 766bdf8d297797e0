/* cmd_bench.c: `zeolite bench`: drive a ZEO server with one workload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/commands.h"
#include "zbench.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: zeolite bench ADDR --workload W --clients N [options]\n\n"
            "Drive the ZEO server at ADDR (HOST:PORT[:STORAGE] or a socket path) with one\n"
            "workload from one process, and report throughput and latency percentiles.\n\n"
            "workloads: load cold commit mixed conflict large blob counter lag\n\n"
            "lag: one committer on ADDR commits one transaction after the other while\n"
            "--clients watchers on --watch ADDR2 (another server on the same database)\n"
            "wait for its invalidations; the lag of each runs from the tpc_finish reply\n"
            "to the invalidation (p50, p90, p99, max, count).\n\n"
            "options:\n"
            "  --workload W           what to run (default load)\n"
            "  --clients N            connections (default 1); lag: the watchers\n"
            "  --in-flight M          requests outstanding per client for loads (default 1)\n"
            "  --objects-per-txn K    objects a transaction changes (default 10)\n"
            "  --object-size BYTES    object state size (default 128; large 1 MB, blob 10 MB)\n"
            "  --objects N            objects created for the load workloads (default 1000)\n"
            "  --duration SECONDS     timed part of the run (default 10)\n"
            "  --split ADDR2          every other client connects to ADDR2 instead, another\n"
            "                         server on the same database\n"
            "  --watch ADDR2          lag: where the watchers connect (default ADDR)\n"
            "  --rate N               lag: N commits a second at most (default: each as\n"
            "                         soon as the one before has finished)\n"
            "  --lag-log FILE         lag: every sample into FILE, a line each:\n"
            "                         TID WATCHER FINISH INVAL LAG_US (CLOCK_MONOTONIC s)\n"
            "  --json                 print one JSON object on the last line\n"
            "  --timeout SECONDS      for each request (default: the client's 30)\n"
            "%s",
            cli_conn_flags_help);
}

static int set_workload(void *dest, const char *v, zerr *err)
{
    int w = zbench_workload_parse(v);
    if (w < 0)
        return zerr_set(err, ZE_INVAL, "unknown workload '%s'", v);
    *(zbench_workload *)dest = (zbench_workload)w;
    return 0;
}

static int parse(int argc, char **argv, zbench_opts *o, int *status)
{
    double timeout = 0;
    int object_size = (int)o->object_size;
    const cli_opt opts[] = {
        CLI_CALL_OPT("workload", 0, &o->workload, set_workload),
        CLI_INT_OPT("clients", 0, &o->clients, 1, 100000),
        CLI_INT_OPT("in-flight", 0, &o->in_flight, 1, 1000000),
        CLI_INT_OPT("objects-per-txn", 0, &o->objects_per_txn, 1, 1000000),
        CLI_INT_OPT("object-size", 0, &object_size, 0, 1 << 30),
        CLI_INT_OPT("objects", 0, &o->objects, 1, 100000000),
        CLI_NUM_OPT("duration", 0, &o->duration, 0.001, 1e6),
        CLI_STR_OPT("split", 0, &o->split_addr),
        CLI_STR_OPT("watch", 0, &o->watch_addr),
        CLI_NUM_OPT("rate", 0, &o->rate, 0, 1e6),
        CLI_STR_OPT("lag-log", 0, &o->lag_log),
        CLI_FLAG_OPT("json", 0, &o->json),
    };
    const cli_spec spec = {.cmd = "bench", .opts = opts, .nopts = sizeof opts / sizeof *opts,
                           .min_args = 1, .max_args = 1, .conn = &o->conn, .timeout = &timeout,
                           .usage = usage};
    size_t n;
    if (!cli_args(&spec, argc, argv, &o->addr, &n, status))
        return -1;
    o->object_size = (size_t)object_size;
    if (timeout > 0)
        o->conn.timeout_ms = (unsigned)(timeout * 1000 + 0.5);
    zerr err = {0};
    if (zbench_check(o, &err) < 0) {
        cli_usage_error("bench", &err);
        *status = 2;
        return -1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    zbench_opts o;
    zbench_opts_init(&o);
    int status;
    if (parse(argc, argv, &o, &status) < 0)
        return status;
    zbench_result r;
    zerr err = {0};
    int rc = zbench_run(&o, &r, &err);
    if (rc < 0) {
        fprintf(stderr, "zeolite bench: %s\n", err.msg);
        return 1;
    }
    zbench_report(&o, &r, stdout);
    return 0;
}
