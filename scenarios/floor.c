/*
 * knit-bench scenario `floor`: the physical limits of this machine measured in the same run,
 * with no scheduler (harness/bench/floor.h): every other figure is read as a ratio to one of
 * them. The `transport` field names the mechanism; `runtime` is thread, or process for the
 * spawn of a program; `wait` says whether the mechanism busy-waits or blocks.
 */
#include <stdio.h>
#include <string.h>

#include "floor.h"

static void describe(kb_case_t *c, const char *mech)
{
    bool busy = !strcmp(mech, "spin") || !strcmp(mech, "ring") || !strcmp(mech, "memcpy");
    bool spawn = strstr(mech, "spawn") != NULL;
    kb_case_init(c, "floor", mech, !strcmp(mech, "process-spawn") ? "process" : "thread");
    snprintf(c->wait, sizeof c->wait, "%s", busy ? "busy" : "block");
    c->payload_bytes = !strcmp(mech, "memcpy") ? 1u << 20 : spawn ? 0 : 8;
    c->batch = !strcmp(mech, "ring") ? 1000 : 1;
}

int kb_scenario_floor(kb_ctx_t *ctx)
{
    for (const char *const *m = kb_floor_mechs; *m; m++) {
        kb_case_t c;
        describe(&c, *m);
        if (!kb_want(ctx, &c))
            continue;
        kb_floor_t *f;
        int rc = kb_floor_open(*m, &f);
        if (rc < 0) {
            kb_fail(ctx, &c, rc);
            continue;
        }
        kb_run_case(ctx, &c, NULL, kb_floor_round, f, NULL, NULL);
        kb_floor_close(f);
    }
    return 0;
}
