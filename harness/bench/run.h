/*
 * knit-bench - the runner's private state (runner.c, report.c, main.c). Scenarios see only
 * bench.h.
 */
#ifndef KNIT_HARNESS_RUN_H
#define KNIT_HARNESS_RUN_H

#include <stdio.h>

#include "bench.h"

#define KB_MAX_FILTER 16

typedef struct kb_filter {
    const char *v[KB_MAX_FILTER];
    unsigned n; /* 0 = everything */
} kb_filter_t;

struct kb_ctx {
    bool quick, json, tty;
    uint32_t reps;
    kb_filter_t scenarios, transports, runtimes, balancers;
    uint32_t workers[KB_MAX_FILTER];
    unsigned nworkers;
    json_t *entries;      /* knit-bench's entries so far (one per case): "cases" */
    json_t *benchmarks;   /* Google Benchmark's entries so far (per repetition + aggregates) */
    FILE *table;          /* the human-readable table, or NULL with --json */
    const char *scenario; /* running now */
    unsigned scenario_index, scenario_count;
    uint64_t start_ns, scenario_start_ns;
    double budget_done, budget_total; /* expected seconds: for the ETA */
    unsigned cases, failed;
    char last_table_scenario[32];
};

/* The expected duration of a scenario in seconds (for the ETA). */
double kb_budget_s(const char *scenario, bool quick);

/* report.c: the JSON document's context, one entry, and the table. */
json_t *kb_context_json(const kb_ctx_t *ctx, int argc, char **argv);
json_t *kb_entry_json(const kb_result_t *r, const char *name);
/* Google Benchmark's entries of a case (per-repetition iterations and aggregates) into `out`. */
void kb_gbench_entries(json_t *out, const kb_result_t *r, const char *name);
/* Start a new high-water mark of this process's resident memory (per case). */
void kb_peak_rss_reset(void);
void kb_table_row(kb_ctx_t *ctx, const kb_result_t *r, const char *name);
void kb_case_name(const kb_case_t *c, char *out, size_t n);

/* runner.c: is `v` selected by filter `f` (an empty filter selects everything)? */
bool kb_in_filter(const kb_filter_t *f, const char *v);
void kb_progress_done(kb_ctx_t *ctx);

/* pool.c: the worker-process guard (first thing in main) and the pinning hook. */
int kb_worker_guard(void);

/* main.c: the allocator policy of this process and its worker processes (set before the
 * guard, from KNIT_BENCH_MALLOC), as the context reports it. */
const char *kb_malloc_policy(void);

#endif
