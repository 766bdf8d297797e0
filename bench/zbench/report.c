/* report.c: the run's summary as text or as one JSON line. */
#include "zbench.h"

static double per_second(double v, double elapsed)
{
    return elapsed > 0 ? v / elapsed : 0;
}

/* The lag workload's: ops and latency above are the committer's commits. */
static void lag_json(const zbench_opts *o, const zbench_lag *l, FILE *f)
{
    fprintf(f,
            ", \"watchers\": %d, \"rate\": %.1f, \"lag_count\": %llu, \"lag_p50_us\": %.0f, "
            "\"lag_p90_us\": %.0f, \"lag_p99_us\": %.0f, \"lag_max_us\": %.0f, "
            "\"lag_mean_us\": %.1f, \"lag_early\": %llu, \"lag_missing\": %llu, "
            "\"lag_unmatched\": %llu",
            o->clients, o->rate, (unsigned long long)l->count, l->p50_us, l->p90_us, l->p99_us,
            l->max_us, l->mean_us, (unsigned long long)l->early,
            (unsigned long long)l->missing, (unsigned long long)l->unmatched);
}

static void lag_text(const zbench_opts *o, const zbench_lag *l, FILE *f)
{
    fprintf(f, "  lag         p50 %.0f us  p90 %.0f us  p99 %.0f us  max %.0f us\n", l->p50_us,
            l->p90_us, l->p99_us, l->max_us);
    fprintf(f,
            "              %llu invalidations at %d watchers on %s, %llu before the reply,\n"
            "              %llu missing, %llu of other commits\n",
            (unsigned long long)l->count, o->clients, o->watch_addr ? o->watch_addr : o->addr,
            (unsigned long long)l->early, (unsigned long long)l->missing,
            (unsigned long long)l->unmatched);
}

void zbench_report(const zbench_opts *o, const zbench_result *r, FILE *f)
{
    const char *name = zbench_workload_name(o->workload);
    double ops_s = per_second((double)r->ops, r->elapsed);
    double mb_s = per_second((double)r->bytes / (1024.0 * 1024.0), r->elapsed);
    int servers = o->split_addr || o->watch_addr ? 2 : 1; /* addresses used */
    if (o->json) {
        fprintf(f,
                "{\"workload\": \"%s\", \"clients\": %d, \"servers\": %d, \"in_flight\": %d, "
                "\"objects_per_txn\": %d, \"object_size\": %zu, \"encoding\": \"%c5\", "
                "\"duration_s\": %.3f, \"ops\": %llu, \"ops_per_s\": %.1f, \"mb_per_s\": %.2f, "
                "\"p50_us\": %.0f, \"p90_us\": %.0f, \"p99_us\": %.0f, \"max_us\": %.0f, "
                "\"mean_us\": %.1f, \"errors\": %llu, \"conflicts\": %llu",
                name, o->clients, servers, o->in_flight, o->objects_per_txn, r->object_size,
                r->encoding ? r->encoding : '?', r->elapsed, (unsigned long long)r->ops, ops_s,
                mb_s, r->p50_us, r->p90_us, r->p99_us, r->max_us, r->mean_us,
                (unsigned long long)r->errors, (unsigned long long)r->conflicts);
        if (o->workload == ZB_LAG)
            lag_json(o, &r->lag, f);
        fputs("}\n", f);
        return;
    }
    fprintf(f, "workload %s against %s%s%s (%c5): %d clients, %d in flight, %.1f s\n", name,
            o->addr, o->split_addr ? " and " : "", o->split_addr ? o->split_addr : "",
            r->encoding ? r->encoding : '?', o->clients, o->in_flight, r->elapsed);
    fprintf(f, "  throughput  %.1f ops/s (%llu ops)", ops_s, (unsigned long long)r->ops);
    if (o->workload == ZB_LARGE || o->workload == ZB_BLOB)
        fprintf(f, ", %.1f MB/s", mb_s);
    fprintf(f, "\n  latency     p50 %.0f us  p90 %.0f us  p99 %.0f us  max %.0f us\n",
            r->p50_us, r->p90_us, r->p99_us, r->max_us);
    fprintf(f, "  errors      %llu   conflicts %llu\n", (unsigned long long)r->errors,
            (unsigned long long)r->conflicts);
    if (o->workload == ZB_LAG)
        lag_text(o, &r->lag, f);
}
