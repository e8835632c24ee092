/*
 * knit-bench scenario `echo`: a small JSON object ({"id":42,"name":"knit","ok":true}, 33 bytes)
 * sent to the echo task and returned, in bursts of 1, 25 and 50 calls on one worker: the cost
 * of a typical small structured message both ways (encode, copy, decode). Each call is timed
 * from just before its knit_call to its settlement; bytes count the object out and back.
 * Every transport x runtime. --quick: knit and pipe, both runtimes, bursts 1 and 50.
 */
#include <stdbool.h>
#include <string.h>

#include "calls.h"

static const char object[] = "{\"id\":42,\"name\":\"knit\",\"ok\":true}";
static const uint32_t bursts[] = {1, 25, 50};

static bool quick_skips(const kb_case_t *c)
{
    bool transport = !strcmp(c->transport, "knit") || !strcmp(c->transport, "pipe");
    return !transport || c->batch == 25;
}

static void run_one(kb_ctx_t *ctx, const kb_case_t *c, const knit_value_t *arg)
{
    if ((kb_quick(ctx) && quick_skips(c)) || !kb_want(ctx, c))
        return;
    kb_plan_t plan = {.rep_ns = kb_ms(ctx, 150, 0), .warmup_ns = kb_ms(ctx, 30, 0)};
    kb_calls_spec_t spec
        = {.task = KB_TASK_ECHO, .args = arg, .nargs = 1, .bytes_per_call = 2 * arg->len};
    kb_calls_case(ctx, c, &plan, NULL, &spec, NULL);
}

int kb_scenario_echo(kb_ctx_t *ctx)
{
    knit_value_t arg = knit_v_jsonn(object, sizeof object - 1);
    for (const char *const *t = kb_transport_names; *t; t++) {
        for (const char *const *r = kb_runtime_names; *r; r++) {
            for (size_t b = 0; b < sizeof bursts / sizeof bursts[0]; b++) {
                kb_case_t c;
                kb_case_init(&c, "echo", *t, *r);
                c.batch = bursts[b];
                c.payload_bytes = arg.len;
                run_one(ctx, &c, &arg);
            }
        }
    }
    return 0;
}
