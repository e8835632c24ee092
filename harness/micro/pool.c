/*
 * knit-micro: pool benchmarks (pool/...), through the public API with one thread worker.
 *
 * pool/roundtrip/<wait>: one call in flight, an 8-byte bytes argument echoed by the task;
 * each iteration is one call from knit_call to settlement. The counters p50_ns and p99_ns are
 * percentiles of the per-call times (CLOCK_MONOTONIC, sorted after the run). <wait> is the
 * wait strategy: `adaptive` (spin for the budget, then park), `park` (no spinning: every call
 * wakes a sleeping worker) and `spin_only` (never park; needs a free core).
 *
 * pool/burst/1000: 1000 calls submitted before the first wait (32 slots, the rest in the
 * backlog), then all awaited; items_per_second is calls per second.
 *
 * pool/roundtrip/<transport> (pipe, unix, seqpacket, tcp) and pool/burst/1000/<transport>: the
 * same calls over a message transport, which blocks in poll() on both sides (no spinning).
 * pool/roundtrip/seq/<wait>, pool/burst/1000/seq: the same over the seq transport (shared
 * memory like knit, one sequence word per slot), under knit's wait strategies.
 *
 * pool/process/...: the same with one process worker (this program re-run as the worker).
 * pool/startup/<how>: create a one-worker pool, wait for its first reply, destroy it; p50_ns
 * and p99_ns are create-to-first-reply (thread, process with the memory on fd 0, named
 * memory, and fork+exec instead of posix_spawn).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gbench/gbench.h"
#include "knit/knit.h"
#include "micro.h"

static int echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static const knit_task_def_t tasks[] = {{.name = "echo", .fn = echo}};

enum { WAIT_ADAPTIVE, WAIT_PARK, WAIT_SPIN, PROCESS = 8, TRANSPORT_SHIFT = 4 };

/* A mode's transport (bits 4-6). */
#define VIA(t) ((int64_t)(t) << TRANSPORT_SHIFT)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int percentile_counters(knit_gbench_state_t *st, uint64_t *samples, size_t n)
{
    if (!n)
        return 0;
    qsort(samples, n, sizeof *samples, cmp_u64);
    knit_gbench_set_counter(st, "p50_ns", (double)samples[n / 2], false);
    knit_gbench_set_counter(st, "p99_ns", (double)samples[(n * 99) / 100], false);
    return 0;
}

static int make_pool(int mode, knit_pool_t **pool)
{
    knit_pool_opts_t o = {.threads = 1};
    int wait = mode & 7;
    if (mode & PROCESS)
        o.runtime = KNIT_RUNTIME_PROCESS;
    if (wait == WAIT_PARK)
        o.wait.spin_ns = -1;
    if (wait == WAIT_SPIN)
        o.wait.spin_only = true;
    o.transport = (knit_transport_t)((mode >> TRANSPORT_SHIFT) & 7);
    return knit_pool_create(&o, tasks, 1, pool);
}

static int bm_roundtrip(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    knit_pool_t *pool;
    int rc = make_pool((int)def->arg, &pool);
    if (rc < 0) {
        knit_gbench_skip_with_errorf(st, "knit_pool_create: %s", knit_errmsg());
        return rc;
    }
    enum { MAX_SAMPLES = 1 << 20 };
    uint64_t *samples = malloc(MAX_SAMPLES * sizeof *samples);
    size_t n = 0;
    static const uint8_t payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    while (rc == 0 && knit_gbench_keep_running(st, 1)) {
        knit_value_t v = knit_v_bytes(payload, sizeof payload);
        knit_future_t *f;
        uint64_t t0 = now_ns();
        rc = knit_call(pool, 0, &v, &f);
        if (rc == 0) {
            rc = knit_future_wait(f, -1);
            knit_future_release(f);
        }
        uint64_t t1 = now_ns();
        if (samples && n < MAX_SAMPLES)
            samples[n++] = t1 - t0;
        if (rc < 0)
            knit_gbench_skip_with_errorf(st, "call: %s (%s)", knit_strerror(rc), knit_errmsg());
    }
    if (samples)
        percentile_counters(st, samples, n);
    knit_gbench_set_items_processed(st, (int64_t)knit_gbench_iterations(st));
    free(samples);
    knit_pool_destroy(pool);
    return rc < 0 ? rc : 0;
}

enum { START_THREAD, START_INHERIT, START_NAMED, START_FORK_EXEC };

/* One iteration: create a one-worker pool, wait for the first reply, destroy the pool. The
 * counters are percentiles of create-to-first-reply; the iteration time includes the stop. */
static int bm_startup(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    enum { MAX = 4096 };
    uint64_t samples[MAX];
    size_t n = 0;
    int rc = 0;
    while (rc == 0 && knit_gbench_keep_running(st, 1)) {
        knit_pool_opts_t o = {.threads = 1};
        if (def->arg != START_THREAD)
            o.runtime = KNIT_RUNTIME_PROCESS;
        if (def->arg == START_NAMED)
            o.worker.process.shared_memory = KNIT_SHM_NAMED;
        if (def->arg == START_FORK_EXEC)
            o.worker.process.fork_exec = true;
        uint64_t t0 = now_ns();
        knit_pool_t *pool;
        rc = knit_pool_create(&o, tasks, 1, &pool);
        if (rc < 0) {
            knit_gbench_skip_with_errorf(st, "knit_pool_create: %s", knit_errmsg());
            break;
        }
        knit_value_t v = knit_v_null();
        knit_future_t *f;
        rc = knit_call(pool, 0, &v, &f);
        if (rc == 0) {
            rc = knit_future_wait(f, -1);
            knit_future_release(f);
        }
        if (n < MAX)
            samples[n++] = now_ns() - t0;
        knit_pool_destroy(pool);
        if (rc < 0)
            knit_gbench_skip_with_errorf(st, "first call: %s", knit_strerror(rc));
    }
    percentile_counters(st, samples, n);
    return rc < 0 ? rc : 0;
}

static int bm_burst(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    knit_pool_t *pool;
    int rc = make_pool((int)(def->arg >> 32), &pool);
    if (rc < 0) {
        knit_gbench_skip_with_errorf(st, "knit_pool_create: %s", knit_errmsg());
        return rc;
    }
    size_t burst = (size_t)(def->arg & 0xFFFFFFFF);
    knit_future_t **fs = calloc(burst, sizeof *fs);
    static const uint8_t payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    while (rc == 0 && knit_gbench_keep_running(st, 1)) {
        for (size_t i = 0; rc == 0 && i < burst; i++) {
            knit_value_t v = knit_v_bytes(payload, sizeof payload);
            rc = knit_call(pool, 0, &v, &fs[i]);
        }
        for (size_t i = 0; rc == 0 && i < burst; i++) {
            rc = knit_future_wait(fs[i], -1);
            knit_future_release(fs[i]);
        }
        if (rc < 0)
            knit_gbench_skip_with_errorf(st, "burst: %s (%s)", knit_strerror(rc), knit_errmsg());
    }
    knit_gbench_set_items_processed(st, (int64_t)(knit_gbench_iterations(st) * burst));
    free(fs);
    knit_pool_destroy(pool);
    return rc < 0 ? rc : 0;
}

int knit_micro_worker_guard(void)
{
    return knit_worker_process_main(tasks, 1, NULL, NULL);
}

int knit_micro_register_pool(void)
{
    static const knit_micro_bench_t benches[] = {
        {"pool/roundtrip/adaptive", bm_roundtrip, WAIT_ADAPTIVE},
        {"pool/roundtrip/park", bm_roundtrip, WAIT_PARK},
        {"pool/roundtrip/spin_only", bm_roundtrip, WAIT_SPIN},
        {"pool/burst/1000", bm_burst, 1000},
        {"pool/process/roundtrip/adaptive", bm_roundtrip, PROCESS | WAIT_ADAPTIVE},
        {"pool/process/roundtrip/park", bm_roundtrip, PROCESS | WAIT_PARK},
        {"pool/process/burst/1000", bm_burst, ((int64_t)PROCESS << 32) | 1000},
        {"pool/roundtrip/pipe", bm_roundtrip, VIA(KNIT_TRANSPORT_PIPE)},
        {"pool/roundtrip/unix", bm_roundtrip, VIA(KNIT_TRANSPORT_UNIX)},
        {"pool/roundtrip/seqpacket", bm_roundtrip, VIA(KNIT_TRANSPORT_SEQPACKET)},
        {"pool/roundtrip/tcp", bm_roundtrip, VIA(KNIT_TRANSPORT_TCP)},
        {"pool/process/roundtrip/pipe", bm_roundtrip, PROCESS | VIA(KNIT_TRANSPORT_PIPE)},
        {"pool/process/roundtrip/unix", bm_roundtrip, PROCESS | VIA(KNIT_TRANSPORT_UNIX)},
        {"pool/process/roundtrip/seqpacket", bm_roundtrip, PROCESS | VIA(KNIT_TRANSPORT_SEQPACKET)},
        {"pool/process/roundtrip/tcp", bm_roundtrip, PROCESS | VIA(KNIT_TRANSPORT_TCP)},
        {"pool/burst/1000/pipe", bm_burst, (VIA(KNIT_TRANSPORT_PIPE) << 32) | 1000},
        {"pool/burst/1000/tcp", bm_burst, (VIA(KNIT_TRANSPORT_TCP) << 32) | 1000},
        {"pool/roundtrip/seq/adaptive", bm_roundtrip, VIA(KNIT_TRANSPORT_SEQ) | WAIT_ADAPTIVE},
        {"pool/roundtrip/seq/park", bm_roundtrip, VIA(KNIT_TRANSPORT_SEQ) | WAIT_PARK},
        {"pool/roundtrip/seq/spin_only", bm_roundtrip, VIA(KNIT_TRANSPORT_SEQ) | WAIT_SPIN},
        {"pool/burst/1000/seq", bm_burst, (VIA(KNIT_TRANSPORT_SEQ) << 32) | 1000},
        {"pool/process/roundtrip/seq/adaptive", bm_roundtrip,
            PROCESS | VIA(KNIT_TRANSPORT_SEQ) | WAIT_ADAPTIVE},
        {"pool/startup/thread", bm_startup, START_THREAD},
        {"pool/startup/process_inherit", bm_startup, START_INHERIT},
        {"pool/startup/process_named", bm_startup, START_NAMED},
        {"pool/startup/process_fork_exec", bm_startup, START_FORK_EXEC},
    };
    return knit_micro_register_table(
        benches, sizeof benches / sizeof benches[0], KNIT_GBENCH_REAL_TIME);
}
