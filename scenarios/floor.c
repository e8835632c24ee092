/*
 * knit-bench scenario `floor`: the physical limits of this machine measured in the same run,
 * with no scheduler (harness/bench/floor.h): every other figure is read as a ratio to one of
 * them. The `transport` field names the mechanism; `runtime` is thread, or process for the
 * spawn of a program; `wait` says whether the mechanism busy-waits or blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floor.h"

static void describe(kb_case_t *c, const char *mech)
{
    bool busy = !strcmp(mech, "spin") || !strncmp(mech, "ring", 4) || !strcmp(mech, "memcpy")
        || !strncmp(mech, "xcopy", 5) || strstr(mech, "-poll");
    bool spawn = strstr(mech, "spawn") != NULL;
    const char *b = strstr(mech, "-b");
    kb_case_init(c, "floor", mech, !strcmp(mech, "process-spawn") ? "process" : "thread");
    snprintf(c->wait, sizeof c->wait, "%s", busy ? "busy" : "block");
    c->payload_bytes = !strcmp(mech, "memcpy") ? 1u << 20
        : !strncmp(mech, "xcopy-", 6)          ? strtoull(mech + 6, NULL, 10)
        : spawn                                ? 0
                                               : 8;
    c->batch = !strcmp(mech, "ring") ? 1000 : b ? (uint32_t)strtoul(b + 2, NULL, 10) : 1;
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
        kb_plan_t plan = {.no_ref = "a floor mechanism: the reference of other cases"};
        kb_run_case(ctx, &c, &plan, kb_floor_round, f, NULL, NULL);
        kb_floor_close(f);
    }
    return 0;
}
