/*
 * knit harness - a small C API over Google Benchmark.
 *
 * Benchmarks are plain C functions. Each is described by a knit_gbench_def_t and registered
 * with knit_gbench_register(); knit_gbench_main() then parses the usual Google Benchmark flags
 * (--benchmark_filter, --benchmark_format=json, --benchmark_min_time, --benchmark_repetitions,
 * ...) and runs what matches. All output formats, statistics and the JSON schema are Google
 * Benchmark's own, so its tools (compare.py) read the results unchanged.
 *
 * A benchmark's run callback prepares its fixture, loops while knit_gbench_keep_running()
 * returns true, releases the fixture and returns 0. The timer starts with the first call to
 * knit_gbench_keep_running() and stops when it returns false, so set-up before the loop and
 * tear-down after it are not timed.
 *
 *     static int bm_copy(const knit_gbench_def_t *def, knit_gbench_state_t *st)
 *     {
 *         char *src = calloc(1, def->arg), *dst = malloc(def->arg);
 *         if (!src || !dst) { free(src); free(dst); return -1; }   // reported as an error
 *         while (knit_gbench_keep_running(st, 1))
 *             memcpy(dst, src, def->arg);
 *         knit_gbench_set_bytes_processed(st, knit_gbench_iterations(st) * def->arg);
 *         free(src); free(dst);
 *         return 0;
 *     }
 *
 * Errors: a run callback that fails calls knit_gbench_skip_with_error() (or just returns a
 * negative value), leaves its loop and returns a negative value. Google Benchmark then reports
 * the benchmark with error_occurred and the message instead of timings; the run goes on with
 * the next benchmark, and knit_gbench_main() exits non-zero at the end.
 *
 * The state functions must be called only from inside the run callback they were given to.
 */
#ifndef KNIT_HARNESS_GBENCH_H
#define KNIT_HARNESS_GBENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque: the running benchmark's state (wraps benchmark::State). */
typedef struct knit_gbench_state knit_gbench_state_t;

typedef struct knit_gbench_def knit_gbench_def_t;

/* Flags of a definition (bitwise OR). */
enum knit_gbench_flag {
    /* Report and drive the iteration count by wall-clock time instead of the CPU time of the
     * benchmark thread (UseRealTime). For anything that waits on another thread or process. */
    KNIT_GBENCH_REAL_TIME = 1u << 0,
    /* The run callback times each iteration itself and reports it with
     * knit_gbench_set_iteration_time() (UseManualTime). Excludes KNIT_GBENCH_REAL_TIME. */
    KNIT_GBENCH_MANUAL_TIME = 1u << 1,
    /* CPU time is that of the whole process, every thread included, not only the benchmark
     * thread (MeasureProcessCPUTime). */
    KNIT_GBENCH_PROCESS_CPU_TIME = 1u << 2,
};

/* Unit the results are printed in. */
typedef enum knit_gbench_unit {
    KNIT_GBENCH_UNIT_DEFAULT = 0, /* Google Benchmark's default (nanoseconds) */
    KNIT_GBENCH_UNIT_NS,
    KNIT_GBENCH_UNIT_US,
    KNIT_GBENCH_UNIT_MS,
    KNIT_GBENCH_UNIT_S,
} knit_gbench_unit_t;

/*
 * Run one benchmark. Called several times per registered benchmark (Google Benchmark first
 * runs a few iterations to estimate the count, then the measured run, then each repetition),
 * each time with a fresh state. Returns 0, or a negative value on failure (see the file
 * comment). `def` is the registry's copy of the definition.
 */
typedef int (*knit_gbench_run_fn)(const knit_gbench_def_t *def, knit_gbench_state_t *state);

/* What to run and how to measure it. Zero-initialise and fill what you need. */
struct knit_gbench_def {
    const char *name;        /* unique, e.g. "codec/bytes/4096"; required */
    uint32_t flags;          /* KNIT_GBENCH_... */
    knit_gbench_unit_t unit; /* display unit of times */
    double min_time_s;       /* minimum measured time in seconds; 0 = --benchmark_min_time.
                              * A value set here overrides the command-line flag. */
    uint64_t iterations;     /* fixed iteration count; 0 = let Google Benchmark choose.
                              * Excludes min_time_s. */
    int repetitions;         /* repetitions; 0 = --benchmark_repetitions */
    knit_gbench_run_fn run;  /* required */
    void *user_data;         /* passed through; must outlive the run */
    int64_t arg;             /* free argument for the callback (a size, a count) */
};

/*
 * Register a benchmark. The definition is copied (the name too), so `def` may be a temporary;
 * only what user_data points at must stay alive until knit_gbench_main() returns.
 * Returns 0, -EINVAL for an invalid definition (no name or run, both REAL_TIME and
 * MANUAL_TIME, iterations together with min_time_s, negative min_time_s or repetitions, an
 * unknown unit or flag), or -ENOMEM.
 */
int knit_gbench_register(const knit_gbench_def_t *def);

/*
 * Run the registered benchmarks as a benchmark program's main() would: parse and remove the
 * Google Benchmark flags from argv, reject anything left over, run what --benchmark_filter
 * selects and report in the requested format. Returns the process exit status: 0 when every
 * selected benchmark ran cleanly, 1 when at least one reported an error, 2 for an unrecognised
 * command-line argument or a filter that selects nothing (a message says which on stderr).
 * --help prints Google Benchmark's flag list and exits.
 */
int knit_gbench_main(int argc, char **argv);

/* --- state: the measuring loop ------------------------------------------------------------- */

/*
 * True while the benchmark should run `batch` more iterations (KeepRunningBatch; batch >= 1,
 * 0 is taken as 1). Loop on it; the timer runs from the first call until it returns false.
 * The last batch may overshoot the target count by up to batch - 1 iterations; they are
 * counted. Returns false at once after knit_gbench_skip_with_error(), and keeps returning
 * false once it has. A callback that returns 0 before this returned false is reported as an
 * error (its timer would still be running).
 */
bool knit_gbench_keep_running(knit_gbench_state_t *state, uint64_t batch);

/* Iterations run so far (after the loop: all of them, for rates and byte counts). */
uint64_t knit_gbench_iterations(const knit_gbench_state_t *state);

/* The benchmark's `arg` (the same as def->arg; handy in helpers that only get the state). */
int64_t knit_gbench_arg(const knit_gbench_state_t *state);

/* Stop the timer (for per-iteration set-up that must not be measured), and restart it.
 * Both cost on the order of a microsecond: keep them out of short iterations. Pause only
 * while the timer runs (inside the loop), resume only while it is paused. */
void knit_gbench_pause_timing(knit_gbench_state_t *state);
void knit_gbench_resume_timing(knit_gbench_state_t *state);

/* With KNIT_GBENCH_MANUAL_TIME: the measured duration of this iteration, in seconds. Call it
 * exactly once per iteration. */
void knit_gbench_set_iteration_time(knit_gbench_state_t *state, double seconds);

/* --- state: what to report (call after the loop; a later call replaces an earlier one) ----- */

/* Total bytes processed by the whole run; shown as bytes_per_second (binary prefixes). */
void knit_gbench_set_bytes_processed(knit_gbench_state_t *state, int64_t bytes);

/* Total items processed by the whole run; shown as items_per_second. */
void knit_gbench_set_items_processed(knit_gbench_state_t *state, int64_t items);

/* A free-text label printed at the end of the result line and stored as "label" in JSON. */
void knit_gbench_set_label(knit_gbench_state_t *state, const char *label);

/*
 * A user counter stored under `name`. With `is_rate` the value is divided by the measured
 * time (a per-second rate); without, it is reported as given. Names must not clash with
 * Google Benchmark's fields; "bytes_per_second" and "items_per_second" are the two setters
 * above.
 */
void knit_gbench_set_counter(
    knit_gbench_state_t *state, const char *name, double value, bool is_rate);

/* --- state: errors ------------------------------------------------------------------------- */

/*
 * Report the benchmark as failed with `message` (copied) instead of timings. The loop
 * function returns false from then on; the callback should release its fixture and return a
 * negative value. Only the first error of a run is kept.
 */
void knit_gbench_skip_with_error(knit_gbench_state_t *state, const char *message);

/* The same with a printf-style message (truncated to 511 bytes). */
void knit_gbench_skip_with_errorf(knit_gbench_state_t *state, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True once an error has been reported for the current run. */
bool knit_gbench_error_occurred(const knit_gbench_state_t *state);

#ifdef __cplusplus
}
#endif

#endif /* KNIT_HARNESS_GBENCH_H */
