/* knit sched - receiving results: a lane's frames matched to their calls and settled. */
#include "sched/drain.h"
#include "base/error.h"
#include "sched/route.h"
#include "sched/settle.h"

static int status_of(uint32_t w0)
{
    if (w0 == KNIT__FLAG_RESOLVE)
        return 0;
    if (w0 & KNIT__FLAG_CODE) {
        int s = -(int)(w0 & ~KNIT__FLAG_CODE);
        return s < 0 && s >= KNIT_E_LAST ? s : KNIT_E_TASK;
    }
    return KNIT_E_TASK; /* knitting: any other non-zero flag word rejects */
}

typedef struct drain_ctx {
    knit_pool_t *p;
    knit__lane_t *lane;
} drain_ctx_t;

static int on_result(void *ctx, knit__msg_t *m)
{
    drain_ctx_t *d = ctx;
    knit_pool_t *p = d->p;
    if (m->id >= p->reg_cap || (!p->reg[m->id].call && !p->reg[m->id].zombie)) {
        knit_value_free(&m->value); /* a response for no call: ignore it */
        return 0;
    }
    knit__slot_ref_t r = p->reg[m->id];
    knit__release_abort_id(p, r.lane, r.abort_id);
    knit__reg_free(p, m->id);
    if (r.zombie) {
        p->lanes[r.lane].zombies--;
        knit_value_free(&m->value); /* settled early (timeout, cancel): discard late result */
        return 0;
    }
    knit_future_t *f = r.call;
    f->abort_id = -1;
    p->lanes[r.lane].published--;
    int status = m->status < 0 ? m->status : status_of(m->w0);
    if (status == KNIT_E_TIMEOUT) {
        /* the worker found the budget spent before running the task: the task's outcome */
        knit_value_t v, copy = knit_v_undefined();
        knit_value_free(&m->value);
        status = knit__timeout_outcome(&p->tasks[f->task].def, &v);
        knit__value_keep(&v, &copy);
        m->value = copy;
    }
    knit__settle(p, f, status, &m->value);
    return 0;
}

int knit__drain_lane(knit_pool_t *p, knit__lane_t *lane)
{
    if (lane->link_down)
        return 0; /* the lane's failure is being handled, or was */
    drain_ctx_t d = {p, lane};
    int n = knit__link_drain(lane->link, on_result, &d);
    if (n < 0)
        return n; /* broken: knit__lane_service handles the lane */
    if (lane->backlog.len)
        knit__flush_backlog(p, lane); /* wakes the worker when it publishes */
    else if (n > 0)
        knit__link_wake_peer(lane->link); /* a worker parked on a full return lock goes on */
    return n;
}
