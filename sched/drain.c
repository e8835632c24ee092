/* knit sched - receiving results: a lane's frames matched to their calls and settled. */
#include "sched/drain.h"
#include "base/error.h"
#include "sched/route.h"
#include "sched/settle.h"

/* A response's word 0 as a settlement status. A code no worker may report (one that reads as
 * "pending", or one only the host can know, such as a worker's death) settles the call as a
 * corrupt response instead. */
static int status_of(uint32_t w0)
{
    if (w0 == KNIT__FLAG_RESOLVE)
        return 0;
    if (w0 & KNIT__FLAG_CODE) {
        uint32_t code = w0 & ~KNIT__FLAG_CODE;
        int s = code <= (uint32_t)-KNIT_E_LAST ? -(int)code : 0;
        return knit__worker_status_valid(s) ? s : KNIT_E_CORRUPT;
    }
    return KNIT_E_TASK; /* knitting: any other non-zero flag word rejects */
}

/* Whether a result arriving on `lane` may settle a call published on lane `owner`: its own
 * calls, and in a stealing pool the shared request lock's (any worker may have claimed
 * them). */
static bool answers_for(const knit_pool_t *p, const knit__lane_t *lane, uint32_t owner)
{
    return owner == lane->index || (p->stealing && owner == p->submit && !lane->is_submit);
}

void *knit__result_storage(void *ctx, const uint32_t *hdr)
{
    knit__lane_t *lane = ctx;
    knit__slot_ref_t *r = knit__reg_find(lane->pool, hdr[KNIT__W_ID]);
    /* an in-flight call holds nothing in its storage (a kept argument went out with it) */
    return r && r->call && answers_for(lane->pool, lane, r->lane) ? r->call->small : NULL;
}

typedef struct drain_ctx {
    knit_pool_t *p;
    knit__lane_t *lane;
} drain_ctx_t;

static int on_result(void *ctx, knit__msg_t *m)
{
    drain_ctx_t *d = ctx;
    knit_pool_t *p = d->p;
    knit__slot_ref_t *found = knit__reg_find(p, m->id);
    if (!found || !answers_for(p, d->lane, found->lane)) {
        /* a response for no call of this lane (a worker answering ids it was not given, or a
         * frame replayed): it settles nothing */
        d->lane->strays++;
        knit_value_free(&m->value);
        return 0;
    }
    knit__slot_ref_t r = *found;
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
    if (lane->link_down || !lane->link)
        return 0; /* the lane's failure is being handled, or was (a failed replacement has
                     no link at all) */
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
