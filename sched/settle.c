/*
 * knit sched - settlement: the registry of calls in flight (ids a worker answers by), and
 * settling a call wherever it waits, once. Callbacks and dependents run later (route.c).
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "sched/future.h"
#include "sched/settle.h"
#include "sched/timer.h"

int knit__reg_grow(knit_pool_t *p)
{
    {
        uint32_t cap = p->reg_cap ? p->reg_cap * 2 : 64;
        if (cap > KNIT__REG_MAX)
            return knit__err(KNIT_E_RANGE, "more than %u calls in flight", KNIT__REG_MAX);
        knit__slot_ref_t *reg = realloc(p->reg, cap * sizeof *reg);
        if (!reg)
            return knit__err(KNIT_E_NOMEM, "call registry of %u entries", cap);
        uint32_t *ids = realloc(p->free_ids, cap * sizeof *ids);
        if (!ids) {
            p->reg = reg;
            return knit__err(KNIT_E_NOMEM, "call registry of %u entries", cap);
        }
        memset(reg + p->reg_cap, 0, (cap - p->reg_cap) * sizeof *reg);
        for (uint32_t i = cap; i > p->reg_cap; i--)
            ids[p->nfree++] = i - 1;
        p->reg = reg;
        p->free_ids = ids;
        p->reg_cap = cap;
    }
    return 0;
}

knit_value_t knit__errmsg_value(void)
{
    knit_value_t s = knit_v_str(knit_errmsg()), v = knit_v_undefined();
    knit__value_keep(&s, &v);
    return v;
}

knit_value_t knit__string_value(const char *msg)
{
    knit_value_t s = knit_v_str(msg), v = knit_v_undefined();
    knit__value_keep(&s, &v);
    return v;
}

/* Detach a call from wherever it waits before it settles early. */
static void detach(knit_pool_t *p, knit_future_t *f)
{
    knit__lane_t *lane = f->lane != UINT32_MAX ? &p->lanes[f->lane] : NULL;
    switch (f->state) {
    case KNIT__CS_NEW: /* routed, but failed before waiting anywhere */
        if (lane)
            knit__release_abort_id(p, f->lane, f->abort_id);
        break;
    case KNIT__CS_WAIT_INPUT:
        if (f->input) {
            knit_future_t **pp = &f->input->deps;
            while (*pp && *pp != f)
                pp = &(*pp)->next_dep;
            if (*pp)
                *pp = f->next_dep;
            knit__future_unref(f->input);
            f->input = NULL;
        }
        break;
    case KNIT__CS_BACKLOG:
        knit__fifo_remove(&lane->backlog, f);
        knit__release_abort_id(p, f->lane, f->abort_id);
        break;
    case KNIT__CS_INLINE:
        knit__fifo_remove(&p->inline_q, f);
        break;
    case KNIT__CS_INFLIGHT: {
        /* The worker still has it: keep the id as a zombie until the response arrives, and
         * ask an abort-aware task to stop. */
        knit__slot_ref_t *r = &p->reg[f->id & KNIT__REG_INDEX_MASK];
        r->call = NULL;
        r->zombie = true;
        if (f->abort_id >= 0)
            knit__abort_signal(&lane->aborts, (uint32_t)f->abort_id);
        lane->published--;
        lane->zombies++;
        break;
    }
    default:
        break;
    }
}

void knit__settle(knit_pool_t *p, knit_future_t *f, int status, knit_value_t *value)
{
    if (f->state == KNIT__CS_SETTLED) {
        if (value)
            knit_value_free(value);
        return;
    }
    knit__timer_remove(p, f);
    f->status = status;
    f->value = value ? *value : knit_v_undefined();
    if (value)
        *value = knit_v_undefined();
    if (f->has_arg) {
        knit_value_free(&f->arg);
        f->has_arg = false;
    }
    if (f->lane != UINT32_MAX)
        p->lanes[f->lane].inflight--;
    if (f->task >= 0 && f->lane != UINT32_MAX)
        p->tasks[f->task].inflight--;
    f->state = KNIT__CS_SETTLED;
    p->pending--;
    f->queued = true;
    knit__fifo_push(&p->settled_q, f); /* callbacks and dependents run after this pass */
}

void knit__settle_early(knit_pool_t *p, knit_future_t *f, int status, knit_value_t *value)
{
    detach(p, f);
    knit__settle(p, f, status, value);
}

void knit__fail_lane(knit_pool_t *p, knit__lane_t *lane, int status, bool keep_backlog)
{
    for (uint32_t id = 0; id < p->reg_cap; id++) {
        knit__slot_ref_t r = p->reg[id];
        if (r.lane != lane->index || (!r.call && !r.zombie))
            continue;
        knit__release_abort_id(p, r.lane, r.abort_id);
        knit__reg_free(p, id);
        if (r.zombie) {
            lane->zombies--;
            continue;
        }
        r.call->abort_id = -1;
        lane->published--;
        knit_value_t m = knit__string_value(lane->fail_msg);
        knit__settle(p, r.call, status, &m);
    }
    while (!keep_backlog && lane->backlog.head) {
        knit_value_t m = knit__string_value(lane->fail_msg);
        knit__settle_early(p, lane->backlog.head, status, &m);
    }
}

void knit__reject_all(knit_pool_t *p)
{
    knit_value_t none;
    for (uint32_t id = 0; id < p->reg_cap; id++) {
        if (p->reg[id].call) {
            none = knit_v_undefined();
            knit__settle_early(p, p->reg[id].call, KNIT_E_SHUTDOWN, &none);
        }
    }
    for (uint32_t i = 0; p->lanes && i < p->nlanes + (p->stealing ? 1 : 0); i++)
        while (p->lanes[i].backlog.head) {
            none = knit_v_undefined();
            knit__settle_early(p, p->lanes[i].backlog.head, KNIT_E_SHUTDOWN, &none);
        }
    while (p->inline_q.head) {
        none = knit_v_undefined();
        knit__settle_early(p, p->inline_q.head, KNIT_E_SHUTDOWN, &none);
    }
}
