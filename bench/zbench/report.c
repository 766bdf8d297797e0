/* report.c: the run's summary as text or as one JSON line. */
#include "zbench.h"

static double per_second(double v, double elapsed)
{
    return elapsed > 0 ? v / elapsed : 0;
}

void zbench_report(const zbench_opts *o, const zbench_result *r, FILE *f)
{
    const char *name = zbench_workload_name(o->workload);
    double ops_s = per_second((double)r->ops, r->elapsed);
    double mb_s = per_second((double)r->bytes / (1024.0 * 1024.0), r->elapsed);
    if (o->json) {
        fprintf(f,
                "{\"workload\": \"%s\", \"clients\": %d, \"in_flight\": %d, "
                "\"objects_per_txn\": %d, \"object_size\": %zu, \"encoding\": \"%c5\", "
                "\"duration_s\": %.3f, \"ops\": %llu, \"ops_per_s\": %.1f, \"mb_per_s\": %.2f, "
                "\"p50_us\": %.0f, \"p90_us\": %.0f, \"p99_us\": %.0f, \"max_us\": %.0f, "
                "\"mean_us\": %.1f, \"errors\": %llu, \"conflicts\": %llu}\n",
                name, o->clients, o->in_flight, o->objects_per_txn, r->object_size,
                r->encoding ? r->encoding : '?', r->elapsed, (unsigned long long)r->ops, ops_s,
                mb_s, r->p50_us, r->p90_us, r->p99_us, r->max_us, r->mean_us,
                (unsigned long long)r->errors, (unsigned long long)r->conflicts);
        return;
    }
    fprintf(f, "workload %s against %s (%c5): %d clients, %d in flight, %.1f s\n", name,
            o->addr, r->encoding ? r->encoding : '?', o->clients, o->in_flight, r->elapsed);
    fprintf(f, "  throughput  %.1f ops/s (%llu ops)", ops_s, (unsigned long long)r->ops);
    if (o->workload == ZB_LARGE || o->workload == ZB_BLOB)
        fprintf(f, ", %.1f MB/s", mb_s);
    fprintf(f, "\n  latency     p50 %.0f us  p90 %.0f us  p99 %.0f us  max %.0f us\n",
            r->p50_us, r->p90_us, r->p99_us, r->max_us);
    fprintf(f, "  errors      %llu   conflicts %llu\n", (unsigned long long)r->errors,
            (unsigned long long)r->conflicts);
}
