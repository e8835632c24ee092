/*
 * knit-bench scenario `dispatch`: the host-side dispatcher (knit_pool_opts_t.dispatcher).
 * per-thread visits every lane on each pass; serial-channel sweeps only the lanes with calls
 * outstanding. Empty calls (8-byte bytes argument) in bursts of 1, 8 and 64 in flight, each
 * timed from just before knit_call to its settlement, on 2 knit-transport workers with the
 * round-robin balancer (stealing off, so the dispatcher is what drains the lanes); thread and
 * process runtimes; variant = the dispatcher. "dispatcher_in_use" records what the pool
 * reports it chose. --quick: bursts 1 and 64.
 */
#include <stdio.h>

#include "calls.h"

static const uint32_t bursts[] = {1, 8, 64};
static const knit_dispatcher_t dispatchers[]
    = {KNIT_DISPATCHER_PER_THREAD, KNIT_DISPATCHER_SERIAL_CHANNEL};

static void run_one(kb_ctx_t *ctx, const kb_case_t *c, knit_dispatcher_t d)
{
    if ((kb_quick(ctx) && c->batch == 8) || !kb_want(ctx, c))
        return;
    knit_pool_opts_t o;
    kb_pool_opts(c, &o);
    o.dispatcher = d;
    kb_calls_spec_t spec = kb_empty_spec();
    kb_calls_t *k;
    int rc = kb_calls_open(c, &o, &spec, &k);
    if (rc < 0) {
        kb_fail(ctx, c, rc);
        return;
    }
    json_t *extra = json_object();
    json_object_set_new(extra, "dispatcher", json_string(knit_dispatcher_name(d)));
    json_object_set_new(extra, "dispatcher_in_use",
        json_string(knit_dispatcher_name(knit_pool_dispatcher(kb_calls_pool(k)))));
    kb_calls_run(ctx, c, NULL, k, extra);
    kb_calls_close(k);
}

int kb_scenario_dispatch(kb_ctx_t *ctx)
{
    for (const char *const *r = kb_runtime_names; *r; r++) {
        for (size_t d = 0; d < sizeof dispatchers / sizeof dispatchers[0]; d++) {
            for (size_t b = 0; b < sizeof bursts / sizeof bursts[0]; b++) {
                kb_case_t c;
                kb_case_init(&c, "dispatch", "knit", *r);
                snprintf(c.balancer, sizeof c.balancer, "%s",
                    knit_balancer_name(KNIT_BALANCER_ROUND_ROBIN));
                snprintf(c.variant, sizeof c.variant, "%s", knit_dispatcher_name(dispatchers[d]));
                c.workers = 2;
                c.batch = bursts[b];
                run_one(ctx, &c, dispatchers[d]);
            }
        }
    }
    return 0;
}
