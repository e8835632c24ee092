/*
 * knit-bench scenario `latency`: the round trip of one call with nothing else in flight - an
 * empty task with an 8-byte bytes argument on one worker, timed from just before knit_call to
 * just after knit_future_wait returns. Every transport x runtime with the default wait
 * (adaptive for knit, blocking for the message transports), plus knit/thread and knit/process
 * with spin-only waits (wait "spin"). Read against the `spin` floor (a cache-line ping-pong
 * between two cores), measured again before each case.
 */
#include <stdio.h>

#include "calls.h"

static void run_one(kb_ctx_t *ctx, kb_case_t *c)
{
    if (!kb_want(ctx, c))
        return;
    kb_plan_t plan = {.floor_ref = "spin", .rep_ns = kb_ms(ctx, 0, 30)};
    kb_calls_spec_t spec = kb_empty_spec();
    spec.single = true;
    kb_calls_case(ctx, c, &plan, NULL, &spec, NULL);
}

int kb_scenario_latency(kb_ctx_t *ctx)
{
    kb_case_t c;
    for (const char *const *t = kb_transport_names; *t; t++) {
        for (const char *const *r = kb_runtime_names; *r; r++) {
            kb_case_init(&c, "latency", *t, *r);
            run_one(ctx, &c);
        }
    }
    for (const char *const *r = kb_runtime_names; *r; r++) {
        kb_case_init(&c, "latency", "knit", *r);
        snprintf(c.wait, sizeof c.wait, "spin");
        run_one(ctx, &c);
    }
    return 0;
}
