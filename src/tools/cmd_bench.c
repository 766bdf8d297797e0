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
            "workloads: load cold commit mixed conflict large blob\n\n"
            "options:\n"
            "  --workload W           what to run (default load)\n"
            "  --clients N            connections (default 1)\n"
            "  --in-flight M          requests outstanding per client for loads (default 1)\n"
            "  --objects-per-txn K    objects a transaction changes (default 10)\n"
            "  --object-size BYTES    object state size (default 128; large 1 MB, blob 10 MB)\n"
            "  --objects N            objects created for the load workloads (default 1000)\n"
            "  --duration SECONDS     timed part of the run (default 10)\n"
            "  --json                 print one JSON object on the last line\n"
            "%s",
            cli_conn_flags_help);
}

/* Parse a number option into *out; 0 or -1 with a message. */
static int num_arg(const char *flag, const char *v, double min, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || d < min) {
        fprintf(stderr, "zeolite bench: bad value for %s\n", flag);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse(int argc, char **argv, zbench_opts *o)
{
    zerr err = {0};
    for (int i = 1; i < argc; i++) {
        int rc = cli_conn_flag(&o->conn, argc, argv, &i, &err);
        if (rc < 0) {
            fprintf(stderr, "zeolite bench: %s\n", err.msg);
            return -1;
        }
        if (rc)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (a[0] != '-') {
            if (o->addr) {
                fprintf(stderr, "zeolite bench: one address only\n");
                return -1;
            }
            o->addr = a;
            continue;
        }
        i++;
        if (!v) {
            fprintf(stderr, "zeolite bench: %s needs a value\n", a);
            return -1;
        }
        if (!strcmp(a, "--workload")) {
            int w = zbench_workload_parse(v);
            if (w < 0) {
                fprintf(stderr, "zeolite bench: unknown workload '%s'\n", v);
                return -1;
            }
            o->workload = (zbench_workload)w;
            continue;
        }
        double min = !strcmp(a, "--object-size") ? 0 : !strcmp(a, "--duration") ? 0.001 : 1;
        if (num_arg(a, v, min, &d) < 0)
            return -1;
        if (!strcmp(a, "--clients"))
            o->clients = (int)d;
        else if (!strcmp(a, "--in-flight"))
            o->in_flight = (int)d;
        else if (!strcmp(a, "--objects-per-txn"))
            o->objects_per_txn = (int)d;
        else if (!strcmp(a, "--object-size"))
            o->object_size = (size_t)d;
        else if (!strcmp(a, "--objects"))
            o->objects = (int)d;
        else if (!strcmp(a, "--duration"))
            o->duration = d;
        else {
            fprintf(stderr, "zeolite bench: unknown option '%s'\n", a);
            return -1;
        }
    }
    if (!o->addr) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    }
    zbench_opts o;
    zbench_opts_init(&o);
    if (parse(argc, argv, &o) < 0)
        return 2;
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
