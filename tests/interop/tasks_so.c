/* C tasks in a shared object, for knit-knitting-worker --tasks (interop/ktask.h). */
#include "interop/ktask.h"

static int triple(knit_kx_call_t *c)
{
    c->result.v = knit_v_f64(c->arg->v.kind == KNIT_KIND_F64 ? c->arg->v.u.f64 * 3 : 0);
    return 0;
}

const knit_kx_task_t knit_kx_tasks[] = {
    {"triple", triple, -1},
    {0, 0, -1},
};
