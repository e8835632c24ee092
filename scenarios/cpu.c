/*
 * knit-bench scenario `cpu`: CPU-heavy work and how it scales with workers.
 *
 * The primes below 2,000,000 (quick: 400,000) are counted by trial division in 40 equal
 * chunks (KB_TASK_PRIMES, argument start << 32 | count). A round submits every chunk at once
 * and waits for all of them; each call's send-to-settle time is recorded. The count of every
 * chunk is checked against a sieve run once on the host before the cases, so a wrong answer
 * counts as an error. Throughput is chunks / (first send to last settlement) over the measured
 * rounds; speedup_vs_1 divides it by the 1-worker throughput of the same runtime (null when
 * that case did not run).
 *
 * Cases: cpu/knit/<runtime>/w<workers>/b40/p8 for 1, 2 and 4 workers, thread and process
 * runtimes. Extra fields: speedup_vs_1, primes (the total of the last measured round),
 * primes_expected, chunks_per_s.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/error.h"
#include "bench.h"
#include "sched_util.h"

#define CPU_RANGE       2000000u
#define CPU_RANGE_QUICK 400000u
#define CPU_CHUNKS      40u
#define CPU_ARG_BYTES   8u /* int64 argument, int64 result */

/* The work: the chunks and their prime counts, known from the host's sieve. */
typedef struct cpu_work {
    uint32_t chunk; /* numbers per chunk */
    int64_t expected[CPU_CHUNKS];
    int64_t total;
} cpu_work_t;

typedef struct cpu_state {
    kb_lazy_pool_t lp;
    kb_tracker_t calls;
    const cpu_work_t *work;
    uint32_t workers;
    uint64_t chunks_done, span_ns; /* measured rounds */
    double base_rate;              /* chunks/s of the 1-worker case; 0 = unknown */
    json_t *extra;
} cpu_state_t;

/* Sieve of Eratosthenes over [0, range): the prime count of every chunk. */
static int cpu_work_init(cpu_work_t *w, uint32_t range)
{
    *w = (cpu_work_t) {.chunk = range / CPU_CHUNKS};
    uint8_t *composite = calloc(range, 1);
    if (!composite)
        return knit__err(KNIT_E_NOMEM, "cpu: no memory for a sieve of %u", range);
    for (uint64_t i = 2; i * i < range; i++)
        if (!composite[i])
            for (uint64_t j = i * i; j < range; j += i)
                composite[j] = 1;
    for (uint32_t n = 2; n < range; n++)
        if (!composite[n] && n / w->chunk < CPU_CHUNKS) {
            w->expected[n / w->chunk]++;
            w->total++;
        }
    free(composite);
    return 0;
}

static double cpu_rate(const cpu_state_t *st)
{
    return st->span_ns ? (double)st->chunks_done * 1e9 / (double)st->span_ns : 0;
}

static void update_extra(cpu_state_t *st, int64_t primes)
{
    double rate = cpu_rate(st);
    kb_extra_real(st->extra, "chunks_per_s", rate);
    json_object_set_new(st->extra, "primes", json_integer((json_int_t)primes));
    if (st->workers == 1)
        kb_extra_real(st->extra, "speedup_vs_1", 1.0);
    else if (st->base_rate > 0)
        kb_extra_real(st->extra, "speedup_vs_1", rate / st->base_rate);
}

static int submit_chunks(void *arg, knit_pool_t *pool, uint64_t round_start)
{
    cpu_state_t *st = arg;
    (void)round_start;
    for (uint32_t i = 0; i < CPU_CHUNKS; i++) {
        uint64_t start = (uint64_t)i * st->work->chunk;
        knit_value_t v = knit_v_int64((int64_t)(start << 32 | st->work->chunk));
        int rc = kb_track_send(pool, &st->calls, KB_TASK_PRIMES, &v, kb_now_ns());
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void account(cpu_state_t *st, kb_rep_t *rep, uint64_t start)
{
    int64_t primes = 0;
    uint64_t ok = 0;
    for (size_t i = 0; i < st->calls.n; i++) {
        const kb_tracked_t *t = &st->calls.v[i];
        if (t->status == 0)
            primes += t->value;
        if (t->status != 0 || t->value != st->work->expected[i]) {
            rep->errors++;
            continue;
        }
        kb_record(rep, t->t1 - t->t0);
        ok++;
    }
    rep->ops += ok;
    rep->bytes += ok * 2 * CPU_ARG_BYTES;
    if (rep->warmup)
        return;
    st->chunks_done += ok;
    st->span_ns += st->calls.last_t1 > start ? st->calls.last_t1 - start : 1;
    update_extra(st, primes);
}

static int cpu_round(void *arg, kb_rep_t *rep)
{
    cpu_state_t *st = arg;
    uint64_t start;
    int rc = kb_tracked_round(&st->lp, &st->calls, submit_chunks, st, &start);
    if (rc < 0)
        return rc;
    account(st, rep, start);
    return 0;
}

/* One case; returns its throughput in chunks/s (0 when nothing was measured). */
static double cpu_case(kb_ctx_t *ctx, const kb_case_t *c, const cpu_work_t *work, double base)
{
    cpu_state_t st = {.work = work, .workers = c->workers, .base_rate = base};
    kb_lazy_pool_init(&st.lp, c);
    st.extra = json_object();
    if (!st.extra || kb_track_init(&st.calls, CPU_CHUNKS) < 0) {
        json_decref(st.extra);
        return 0;
    }
    json_object_set_new(st.extra, "primes_expected", json_integer((json_int_t)work->total));
    json_object_set_new(st.extra, "primes", json_null());
    json_object_set_new(st.extra, "speedup_vs_1", json_null());
    kb_plan_t plan = kb_slow_case_plan(ctx, 2000000000ull);
    plan.no_ref = "scaling: read against the same work on one worker of this run (speedup)";
    int rc = kb_run_updating_case(ctx, c, &plan, cpu_round, &st, st.extra);
    kb_lazy_pool_close(&st.lp); /* before the calls: settling runs their callbacks */
    kb_track_free(&st.calls);
    json_decref(st.extra);
    return rc < 0 ? 0 : cpu_rate(&st);
}

int kb_scenario_cpu(kb_ctx_t *ctx)
{
    static const uint32_t workers[] = {1, 2, 4};
    cpu_work_t work;
    int rc = cpu_work_init(&work, kb_quick(ctx) ? CPU_RANGE_QUICK : CPU_RANGE);
    if (rc < 0)
        return rc;
    for (const char *const *rt = kb_runtime_names; *rt; rt++) {
        double base = 0;
        for (size_t w = 0; w < sizeof workers / sizeof workers[0]; w++) {
            kb_case_t c;
            kb_case_init(&c, "cpu", "knit", *rt);
            c.workers = workers[w];
            c.batch = CPU_CHUNKS;
            if (!kb_want(ctx, &c))
                continue;
            double rate = cpu_case(ctx, &c, &work, base);
            if (workers[w] == 1)
                base = rate;
        }
    }
    return 0;
}
