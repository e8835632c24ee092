/*
 * knit-bench scenario `batch`: throughput of bursts. A round submits a burst of 1, 10, 100 or
 * 1000 empty calls (8-byte bytes argument) back to back, then waits for all of them; each
 * call's time runs from just before its knit_call to its settlement (a knit_future_on_settle
 * callback), and the runner derives calls_per_s from the calls made over the measured time.
 * Every transport x runtime on 1, 2 and 4 workers with the pool's default balancer ("-": work
 * stealing for 2-4 knit thread workers); on one worker also under the transport's other wait
 * policy (knit and seq blocking, message transports polling). Read against a burst of the same
 * size over the raw mechanism with a lane's window of 32 in flight (ring-b<n> for knit and seq,
 * <transport>[-poll]-b<n>), measured before the first repetition and after each. --quick:
 * knit and pipe, thread, bursts 1 and 1000, 1 and 4 workers.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "calls.h"

static const uint32_t bursts[] = {1, 10, 100, 1000};
static const uint32_t workers[] = {1, 2, 4};

static bool quick_skips(const kb_case_t *c)
{
    bool burst = c->batch == 1 || c->batch == 1000;
    bool transport = !strcmp(c->transport, "knit") || !strcmp(c->transport, "pipe");
    bool w = c->workers == 1 || c->workers == 4;
    return !(burst && transport && w && !strcmp(c->runtime, "thread"));
}

static void run_one(kb_ctx_t *ctx, const kb_case_t *c)
{
    if ((kb_quick(ctx) && quick_skips(c)) || !kb_want(ctx, c))
        return;
    kb_plan_t plan = {.rep_ns = kb_ms(ctx, 100, 0), .warmup_ns = kb_ms(ctx, 30, 0)};
    kb_calls_spec_t spec = kb_empty_spec();
    kb_calls_case(ctx, c, &plan, NULL, &spec, NULL);
}

int kb_scenario_batch(kb_ctx_t *ctx)
{
    for (const char *const *t = kb_transport_names; *t; t++) {
        for (const char *const *r = kb_runtime_names; *r; r++) {
            for (size_t w = 0; w < sizeof workers / sizeof workers[0]; w++) {
                for (size_t b = 0; b < sizeof bursts / sizeof bursts[0]; b++) {
                    kb_case_t c;
                    kb_case_init(&c, "batch", *t, *r);
                    c.workers = workers[w];
                    c.batch = bursts[b];
                    run_one(ctx, &c);
                    /* the other wait policy, one worker (the rivals' comparison) */
                    snprintf(
                        c.wait, sizeof c.wait, "%s", kb_shared_memory(*t) ? "block" : "adaptive");
                    if (c.workers == 1)
                        run_one(ctx, &c);
                }
            }
        }
    }
    return 0;
}
