/*
 * knit-bench scenario `startup`: what a pool costs to start and to stop.
 *
 * A round starts a pool (kb_pool_create), calls the empty task once (an 8-byte bytes argument)
 * and waits for the reply: the latency histogram holds pool creation to first reply. It then
 * shuts the pool down and destroys it (knit_pool_shutdown + knit_pool_destroy); the median and
 * p99 of that time over the measured rounds go to the extra fields shutdown_p50_ns and
 * shutdown_p99_ns.
 *
 * Cases: startup/<transport>/<runtime>/w<workers>/b1/p8[/<variant>]: thread workers (read
 * against thread-spawn), process workers with the lane memory handed over as fd 0 (variant
 * "inherit") and with named POSIX shared memory (variant "named"), both read against
 * process-spawn; knit transport, 1 worker (full run: also 4 workers, and the pipe transport).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "base/error.h"
#include "sched_util.h"

#define START_PAYLOAD 8u

typedef struct start_state {
    const kb_case_t *c;
    knit_pool_opts_t opts;
    kb_tracker_t calls;
    knit_hist_t *shutdown; /* measured rounds */
    json_t *extra;
} start_state_t;

static const uint8_t start_payload[START_PAYLOAD];

static int stop_pool(start_state_t *st, knit_pool_t *pool, bool warmup)
{
    uint64_t t0 = kb_now_ns();
    int rc = knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0);
    knit_pool_destroy(pool);
    uint64_t t1 = kb_now_ns();
    if (rc < 0 || warmup)
        return rc;
    knit_hist_record(st->shutdown, t1 - t0);
    kb_extra_real(st->extra, "shutdown_p50_ns", (double)knit_hist_percentile(st->shutdown, 50.0));
    kb_extra_real(st->extra, "shutdown_p99_ns", (double)knit_hist_percentile(st->shutdown, 99.0));
    return 0;
}

static int start_round(void *arg, kb_rep_t *rep)
{
    start_state_t *st = arg;
    knit_pool_t *pool;
    kb_track_reset(&st->calls);
    uint64_t t0 = kb_now_ns();
    int rc = kb_pool_create(st->c, &st->opts, &pool);
    if (rc < 0)
        return rc;
    knit_value_t v = knit_v_bytes(start_payload, START_PAYLOAD);
    rc = kb_track_send(pool, &st->calls, KB_TASK_EMPTY, &v, t0);
    if (rc >= 0)
        rc = kb_track_drain(pool, &st->calls);
    if (rc < 0) {
        knit_pool_destroy(pool); /* settles what is left, running the callbacks */
        return rc;
    }
    const kb_tracked_t *t = &st->calls.v[0];
    if (t->status == 0) {
        kb_record(rep, t->t1 - t->t0);
        rep->ops++;
        rep->bytes += START_PAYLOAD;
    } else {
        rep->errors++;
    }
    return stop_pool(st, pool, rep->warmup);
}

static int start_case(kb_ctx_t *ctx, const kb_case_t *c, const char *floor_ref)
{
    start_state_t st = {.c = c};
    kb_pool_opts(c, &st.opts);
    if (!strcmp(c->variant, "named"))
        st.opts.worker.process.shared_memory = KNIT_SHM_NAMED;
    st.shutdown = malloc(sizeof *st.shutdown);
    st.extra = json_object();
    if (!st.shutdown || !st.extra || kb_track_init(&st.calls, 1) < 0) {
        free(st.shutdown);
        json_decref(st.extra);
        kb_track_free(&st.calls);
        return knit__err(KNIT_E_NOMEM, "startup: no memory");
    }
    knit_hist_init(st.shutdown);
    kb_plan_t plan = {.min_rounds = 3, .warmup_rounds = 1, .floor_ref = floor_ref};
    if (!kb_quick(ctx))
        plan.rep_ns = kb_rep_budget(ctx, 1200000000ull, 1);
    kb_run_updating_case(ctx, c, &plan, start_round, &st, st.extra);
    kb_track_free(&st.calls);
    free(st.shutdown);
    json_decref(st.extra);
    return 0;
}

int kb_scenario_startup(kb_ctx_t *ctx)
{
    static const struct {
        const char *runtime, *variant, *floor;
    } kinds[] = {
        {"thread", "", "thread-spawn"},
        {"process", "inherit", "process-spawn"},
        {"process", "named", "process-spawn"},
    };
    static const char *const transports[] = {"knit", "pipe"};
    static const uint32_t workers[] = {1, 4};
    bool quick = kb_quick(ctx);
    for (size_t t = 0; t < (quick ? 1 : 2); t++) {
        for (size_t w = 0; w < (quick ? 1 : 2); w++) {
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                kb_case_t c;
                kb_case_init(&c, "startup", transports[t], kinds[k].runtime);
                c.workers = workers[w];
                snprintf(c.variant, sizeof c.variant, "%s", kinds[k].variant);
                if (!kb_want(ctx, &c))
                    continue;
                int rc = start_case(ctx, &c, kinds[k].floor);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}
