/*
 * knit-bench - what a run reports: the JSON document's context and entries (results/SCHEMA.md
 * documents every field) and the human-readable table with ratio columns.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

#ifndef KB_COMPILER_FLAGS
#define KB_COMPILER_FLAGS "unknown"
#endif
#ifndef KB_BUILD_TYPE
#define KB_BUILD_TYPE "unknown"
#endif
#ifndef KB_SOURCE_DIR
#define KB_SOURCE_DIR "."
#endif

void kb_case_name(const kb_case_t *c, char *out, size_t n)
{
    int k = snprintf(out, n, "%s/%s/%s/w%u/b%u/p%llu", c->scenario, c->transport, c->runtime,
        c->workers, c->batch, (unsigned long long)c->payload_bytes);
    if (k > 0 && (size_t)k < n && strcmp(c->balancer, "-") != 0 && c->balancer[0])
        k += snprintf(out + k, n - (size_t)k, "/%s", c->balancer);
    if (k > 0 && (size_t)k < n && c->wait[0] && strcmp(c->wait, "-") != 0
        && strcmp(c->wait, "busy") != 0 && strcmp(c->wait, kb_default_wait(c->transport)) != 0)
        k += snprintf(out + k, n - (size_t)k, "/%s", c->wait);
    if (k > 0 && (size_t)k < n && c->variant[0])
        snprintf(out + k, n - (size_t)k, "/%s", c->variant);
}

/* A JSON number, or null for NaN and infinities (JSON has no such numbers). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *num_array(const double *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < n; i++)
        json_array_append_new(a, num(v[i]));
    return a;
}

/* How many times its reference this case is (>= 1: slower than the mechanism alone): the
 * median of the per-repetition ratios when the reference bracketed each repetition; else the
 * case's p50 over the reference's (the `memcpy` floor: copy bandwidth over bytes/s). 0 when
 * there is no reference. */
static double floor_ratio(const kb_result_t *r)
{
    if (r->ratio > 0)
        return r->ratio;
    if (r->floor_ns <= 0)
        return 0;
    const char *m = r->floor_mech ? r->floor_mech : "";
    if (!strcmp(m, "ring"))
        return r->calls_per_s > 0 ? (1e9 / r->floor_ns) / r->calls_per_s : 0;
    if (!strcmp(m, "memcpy"))
        return r->bytes_per_s > 0 ? ((double)(1u << 20) * 1e9 / r->floor_ns) / r->bytes_per_s : 0;
    return r->p50 > 0 ? r->p50 / r->floor_ns : 0;
}

/* A percentile needs this many samples to be more than the largest one: p90 10, p99 100,
 * p99.9 1000. Below, it is null (the entry's `samples` says how many there were). */
static json_t *pct(double v, uint64_t samples, uint64_t need)
{
    return samples >= need ? num(v) : json_null();
}

static uint64_t samples_of(const kb_result_t *r)
{
    return r->samples ? r->samples : r->iterations;
}

/* The latency statistics, or null for a case that times no operations (idle CPU, scaling). */
static json_t *latency_json(const kb_result_t *r)
{
    uint64_t n = samples_of(r);
    if (n == 0 || (r->p50 <= 0 && r->max <= 0))
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "min", num(r->min), "p50",
        num(r->p50), "p90", pct(r->p90, n, 10), "p99", pct(r->p99, n, 100), "p999",
        pct(r->p999, n, 1000), "max", num(r->max), "mean", num(r->mean), "stddev", num(r->stddev));
}

/* The case's reference: the mechanism it is read against, measured around its repetitions,
 * with the per-repetition ratios; or why no mechanism applies. */
static json_t *reference_json(const kb_result_t *r)
{
    if (!r->floor_mech)
        return json_pack(
            "{s:s}", "none", r->no_ref ? r->no_ref : "no mechanism of this kind is measured");
    json_t *ref = json_pack("{s:s, s:s, s:b, s:I, s:o, s:o, s:o}", "mechanism", r->floor_mech,
        "kind", r->ref_throughput ? "throughput" : "round-trip", "bracketed", r->ref_bracketed,
        "samples", (json_int_t)r->ref_samples, "ns",
        r->floor_ns > 0 ? num(r->floor_ns) : json_null(), "p99_ns",
        r->floor_p99_ns > 0 ? num(r->floor_p99_ns) : json_null(), "ratio",
        floor_ratio(r) > 0 ? num(floor_ratio(r)) : json_null());
    if (ref && r->ref_bracketed && r->ratio > 0) {
        json_object_set_new(ref, "per_repetition_ns", num_array(r->rep_ref_ns, r->repetitions));
        json_object_set_new(ref, "ratio_per_repetition", num_array(r->rep_ratio, r->repetitions));
    }
    return ref;
}

/* Peak resident memory of this process since the last reset (VmHWM), in KiB; -1 unknown. */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

void kb_peak_rss_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "we");
    if (f) {
        fputs("5", f); /* resets VmHWM to the current resident size */
        fclose(f);
    }
}

json_t *kb_entry_json(const kb_result_t *r, const char *name)
{
    const kb_case_t *c = r->c;
    json_t *lat = latency_json(r);
    json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I,"
                          " s:o, s:o, s:o, s:o, s:o, s:o, s:I}",
        "name", name, "scenario", c->scenario, "transport", c->transport, "runtime", c->runtime,
        "balancer", c->balancer, "workers", (json_int_t)c->workers, "batch", (json_int_t)c->batch,
        "payload_bytes", (json_int_t)c->payload_bytes, "wait", c->wait, "variant", c->variant,
        "placement", kb_placement(c), "iterations", (json_int_t)r->iterations, "repetitions",
        (json_int_t)r->repetitions, "warmup_iterations", (json_int_t)r->warmup_iterations,
        "latency_ns", lat ? lat : json_null(), "repetition_p50_ns",
        num_array(r->rep_p50, r->repetitions), "repetition_p99_ns",
        num_array(r->rep_p99, r->repetitions), "calls_per_s", num(r->calls_per_s), "bytes_per_s",
        num(r->bytes_per_s), "cpu_ns_per_call", num(r->cpu_ns_per_call), "errors",
        (json_int_t)r->errors);
    if (!e)
        return NULL;
    json_object_set_new(e, "floor_ns", r->floor_ns > 0 ? num(r->floor_ns) : json_null());
    json_object_set_new(
        e, "floor_p99_ns", r->floor_p99_ns > 0 ? num(r->floor_p99_ns) : json_null());
    json_object_set_new(e, "floor_ratio", floor_ratio(r) > 0 ? num(floor_ratio(r)) : json_null());
    json_object_set_new(
        e, "floor_mechanism", r->floor_mech ? json_string(r->floor_mech) : json_null());
    json_object_set_new(e, "reference", reference_json(r));
    json_object_set_new(e, "samples", json_integer((json_int_t)samples_of(r)));
    json_object_set_new(e, "repetition_ns_per_op", num_array(r->rep_ns_per_op, r->repetitions));
    struct rusage kids;
    getrusage(RUSAGE_CHILDREN, &kids);
    json_object_set_new(e, "peak_rss_kib", json_integer(peak_rss_kib()));
    json_object_set_new(e, "children_peak_rss_kib", json_integer(kids.ru_maxrss));
    if (r->extra)
        json_object_update(e, r->extra);
    return e;
}

/* The figure Google Benchmark's tools compare for repetition i: the time per operation the
 * case is read by (ns per operation for a throughput case, else the repetition's p50). */
static double rep_time(const kb_result_t *r, uint32_t i)
{
    return r->ref_throughput || (r->c->batch > 1 && r->rep_ns_per_op[i] > 0) ? r->rep_ns_per_op[i]
                                                                             : r->rep_p50[i];
}

static json_t *gb_entry(const char *name, const char *run_type, double real, double cpu)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:i}", "name", name, "run_name", name,
        "run_type", run_type, "real_time", num(real), "cpu_time", num(cpu), "time_unit", "ns",
        "threads", 1);
}

static void stats(const double *v, uint32_t n, double *mean, double *median_v, double *sd)
{
    double s = 0, sorted[KB_MAX_REPS];
    for (uint32_t i = 0; i < n; i++) {
        s += v[i];
        sorted[i] = v[i];
    }
    *mean = n ? s / n : 0;
    double q = 0;
    for (uint32_t i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
    for (uint32_t i = 1; i < n; i++) /* insertion sort: a handful of repetitions */
        for (uint32_t k = i; k > 0 && sorted[k - 1] > sorted[k]; k--) {
            double t = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = t;
        }
    *median_v = n == 0 ? 0 : n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* Google Benchmark's shape of a case: one "iteration" entry per repetition (what its
 * compare.py runs its U test on) and the mean, median, stddev and cv aggregates. */
void kb_gbench_entries(json_t *out, const kb_result_t *r, const char *name)
{
    uint32_t n = r->repetitions;
    double real[KB_MAX_REPS], cpu[KB_MAX_REPS];
    for (uint32_t i = 0; i < n; i++) {
        real[i] = rep_time(r, i);
        cpu[i] = r->rep_cpu_per_op[i];
        json_t *e = gb_entry(name, "iteration", real[i], cpu[i]);
        json_object_set_new(e, "repetitions", json_integer(n));
        json_object_set_new(e, "repetition_index", json_integer(i));
        json_object_set_new(e, "iterations", json_integer((json_int_t)r->iterations));
        json_array_append_new(out, e);
    }
    if (n < 2)
        return;
    double rm, rmed, rsd, cm, cmed, csd;
    stats(real, n, &rm, &rmed, &rsd);
    stats(cpu, n, &cm, &cmed, &csd);
    const struct {
        const char *agg;
        double real, cpu;
    } a[] = {{"mean", rm, cm}, {"median", rmed, cmed}, {"stddev", rsd, csd},
        {"cv", rm > 0 ? rsd / rm : 0, cm > 0 ? csd / cm : 0}};
    for (size_t k = 0; k < sizeof a / sizeof a[0]; k++) {
        char agg_name[300];
        snprintf(agg_name, sizeof agg_name, "%s_%s", name, a[k].agg);
        json_t *e = gb_entry(agg_name, "aggregate", a[k].real, a[k].cpu);
        json_object_set_new(e, "run_name", json_string(name));
        json_object_set_new(e, "aggregate_name", json_string(a[k].agg));
        json_object_set_new(e, "repetitions", json_integer(n));
        if (!strcmp(a[k].agg, "cv"))
            json_object_set_new(e, "aggregate_unit", json_string("percentage"));
        json_array_append_new(out, e);
    }
}

/* --- context ------------------------------------------------------------------------------- */

static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            snprintf(out, n, "%s", colon + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    }
    fclose(f);
}

/* The source tree's commit (with "-dirty" when it has changes), or "unknown". */
static void git_commit(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *p
        = popen("git -C '" KB_SOURCE_DIR "' rev-parse HEAD 2>/dev/null && git -C '" KB_SOURCE_DIR
                "' status --porcelain --untracked-files=no 2>/dev/null | head -1",
            "r");
    if (!p)
        return;
    char line[128] = "", dirty[128] = "";
    if (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        bool d = fgets(dirty, sizeof dirty, p) != NULL;
        if (line[0])
            snprintf(out, n, "%s%s", line, d ? "-dirty" : "");
    }
    pclose(p);
}

/* The kernel's clock source (tsc, kvm-clock, hpet...), or "unknown". */
static void clock_source(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (f && fgets(out, (int)n, f))
        out[strcspn(out, "\n")] = 0;
    if (f)
        fclose(f);
}

/* What one clock read costs here: the least mean over 5 batches of 100,000 reads. */
static double clock_read_ns(void)
{
    double best = 0;
    for (int b = 0; b < 5; b++) {
        uint64_t t0 = kb_now_ns(), x = 0;
        for (int i = 0; i < 100000; i++)
            x += kb_now_ns();
        uint64_t dt = kb_now_ns() - t0;
        __asm__ volatile("" : : "r"(x));
        double mean = (double)dt / 100000.0;
        if (b == 0 || mean < best)
            best = mean;
    }
    return best;
}

json_t *kb_context_json(const kb_ctx_t *ctx, int argc, char **argv)
{
    char date[64], model[256], commit[160], cmd[2048] = "";
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cpu_model(model, sizeof model);
    git_commit(commit, sizeof commit);
    for (int i = 0; i < argc; i++) {
        size_t k = strlen(cmd);
        snprintf(cmd + k, sizeof cmd - k, "%s%s", i ? " " : "", argv[i]);
    }
    struct utsname u;
    uname(&u);
    char kernel[400];
    snprintf(kernel, sizeof kernel, "%s %s", u.release, u.version);
    char placement[200];
    snprintf(placement, sizeof placement,
        "host thread on cpu0 and workers on cpu1..%u when the case has fewer workers than the "
        "machine has cpus (%u); otherwise unpinned. Each entry's placement says which.",
        kb_cpus() - 1, kb_cpus());
    char source[64];
    clock_source(source, sizeof source);
    json_t *clock = json_pack("{s:s, s:s, s:o}", "api", "clock_gettime(CLOCK_MONOTONIC)", "source",
        source, "read_ns", num(clock_read_ns()));
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:s, s:I, s:s}",
        "date", date, "host", u.nodename, "cpu_model", model, "cpus", (json_int_t)kb_cpus(),
        "kernel", kernel, "compiler", __VERSION__, "compiler_flags", KB_COMPILER_FLAGS,
        "build_type", KB_BUILD_TYPE, "git_commit", commit, "command_line", cmd, "quick", ctx->quick,
        "clock", clock ? clock : json_null(), "placement", placement, "repetitions",
        (json_int_t)ctx->reps, "malloc", kb_malloc_policy());
}

/* --- the table ----------------------------------------------------------------------------- */

/* p50 of the knit case each rival is compared with: same name with the transport "knit". */
typedef struct knit_ref {
    char key[256];
    double p50, calls_per_s;
    struct knit_ref *next;
} knit_ref_t;

static knit_ref_t *refs;

static void ref_key(const kb_case_t *c, char *out, size_t n)
{
    kb_case_t k = *c;
    snprintf(k.transport, sizeof k.transport, "knit");
    snprintf(k.wait, sizeof k.wait, "adaptive");
    kb_case_name(&k, out, n);
}

static const knit_ref_t *ref_find(const char *key)
{
    for (knit_ref_t *r = refs; r; r = r->next)
        if (!strcmp(r->key, key))
            return r;
    return NULL;
}

static void ref_note(const kb_result_t *r)
{
    if (strcmp(r->c->transport, "knit") != 0 || strcmp(r->c->wait, "adaptive") != 0)
        return;
    knit_ref_t *k = calloc(1, sizeof *k);
    if (!k)
        return;
    ref_key(r->c, k->key, sizeof k->key);
    k->p50 = r->p50;
    k->calls_per_s = r->calls_per_s;
    k->next = refs;
    refs = k;
}

static void fmt_ns(char *out, size_t n, double ns)
{
    if (!isfinite(ns) || ns <= 0)
        snprintf(out, n, "-");
    else if (ns < 1e4)
        snprintf(out, n, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(out, n, "%.1f us", ns / 1e3);
    else
        snprintf(out, n, "%.1f ms", ns / 1e6);
}

static void fmt_rate(char *out, size_t n, double v, const char *unit)
{
    if (!isfinite(v) || v <= 0)
        snprintf(out, n, "-");
    else if (v >= 1e9)
        snprintf(out, n, "%.2f G%s", v / 1e9, unit);
    else if (v >= 1e6)
        snprintf(out, n, "%.2f M%s", v / 1e6, unit);
    else if (v >= 1e3)
        snprintf(out, n, "%.1f k%s", v / 1e3, unit);
    else
        snprintf(out, n, "%.1f %s", v, unit);
}

void kb_table_row(kb_ctx_t *ctx, const kb_result_t *r, const char *name)
{
    FILE *o = ctx->table;
    if (strcmp(ctx->last_table_scenario, r->c->scenario) != 0) {
        snprintf(ctx->last_table_scenario, sizeof ctx->last_table_scenario, "%s", r->c->scenario);
        fprintf(o, "\n== %s ==\n%-58s %10s %10s %12s %12s %10s %8s %8s\n", r->c->scenario, "case",
            "p50", "p99", "calls/s", "bytes/s", "cpu/call", "x floor", "x knit");
    }
    ref_note(r);
    char p50[32], p99[32], cps[32], bps[32], cpu[32], xf[16] = "-", xk[16] = "-";
    fmt_ns(p50, sizeof p50, r->p50);
    fmt_ns(p99, sizeof p99, r->p99);
    fmt_rate(cps, sizeof cps, r->calls_per_s, "");
    fmt_rate(bps, sizeof bps, r->bytes_per_s, "B");
    fmt_ns(cpu, sizeof cpu, r->cpu_ns_per_call);
    if (floor_ratio(r) > 0)
        snprintf(xf, sizeof xf, "%.2f", floor_ratio(r));
    char key[256];
    ref_key(r->c, key, sizeof key);
    const knit_ref_t *k = ref_find(key);
    if (k && k->p50 > 0 && r->p50 > 0 && strcmp(r->c->transport, "knit") != 0)
        snprintf(xk, sizeof xk, "%.1f", r->p50 / k->p50);
    fprintf(o, "%-58s %10s %10s %12s %12s %10s %8s %8s%s\n", name, p50, p99, cps, bps, cpu, xf, xk,
        r->errors ? "  (errors)" : "");
    fflush(o);
}
