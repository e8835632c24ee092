/*
 * knit-bench scenario `latency`: the round trip of one call with nothing else in flight - an
 * empty task with an 8-byte bytes argument on one worker, timed from just before knit_call to
 * just after knit_future_wait returns. Every transport x runtime under both wait policies -
 * adaptive (spin or poll for knit's budget, then block) and block (block at once) - plus
 * knit and seq on thread and process workers with spin-only waits (wait "spin"). Each case is
 * read against the raw mechanism of its own kind and wait (kb_calls_reference: spin, futex,
 * pipe, pipe-poll...), measured before the first repetition and after each. --quick: the
 * second policy on knit and pipe only.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "calls.h"

static void run_one(kb_ctx_t *ctx, kb_case_t *c)
{
    if (!kb_want(ctx, c))
        return;
    kb_plan_t plan = {.rep_ns = kb_ms(ctx, 0, 30)};
    kb_calls_spec_t spec = kb_empty_spec();
    spec.single = true;
    kb_calls_case(ctx, c, &plan, NULL, &spec, NULL);
}

int kb_scenario_latency(kb_ctx_t *ctx)
{
    static const char *const waits[] = {"adaptive", "block"};
    kb_case_t c;
    for (const char *const *t = kb_transport_names; *t; t++) {
        for (const char *const *r = kb_runtime_names; *r; r++) {
            for (size_t w = 0; w < 2; w++) {
                kb_case_init(&c, "latency", *t, *r);
                snprintf(c.wait, sizeof c.wait, "%s", waits[w]);
                bool other = strcmp(c.wait, kb_default_wait(*t)) != 0;
                if (other && kb_quick(ctx) && strcmp(*t, "knit") && strcmp(*t, "pipe"))
                    continue;
                run_one(ctx, &c);
            }
        }
    }
    static const char *const shm[] = {"knit", "seq"};
    for (size_t t = 0; t < 2; t++) {
        for (const char *const *r = kb_runtime_names; *r; r++) {
            kb_case_init(&c, "latency", shm[t], *r);
            snprintf(c.wait, sizeof c.wait, "spin");
            run_one(ctx, &c);
        }
    }
    return 0;
}
