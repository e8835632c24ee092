/* A shared object of tasks, loaded by workers with dlopen (imported tasks). */
#include "knit/knit.h"

int knit_test_triple(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result);
int knit_test_boot(void *ctx, uint32_t worker);
int knit_test_booted(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result);

int knit_test_triple(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    if (arg->kind != KNIT_KIND_INT64)
        return KNIT_TASK_REJECT;
    *result = knit_v_int64(arg->u.i64 * 3);
    return 0;
}

static int booted_by;

/* An imported bootstrap hook: remembers that it ran (worker index + 1000). */
int knit_test_boot(void *ctx, uint32_t worker)
{
    (void)ctx;
    booted_by = 1000 + (int)worker;
    return 0;
}

int knit_test_booted(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_int64(booted_by);
    return 0;
}
