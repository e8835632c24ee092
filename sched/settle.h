/*
 * knit sched - settlement (settle.c): the call registry and settling a call, once, wherever it
 * waits. A settled call joins the pool's settled queue; its callbacks run later (route.c).
 */
#ifndef KNIT_SCHED_SETTLE_H
#define KNIT_SCHED_SETTLE_H

#include "sched/state.h"

/* Double the registry (no free id left); KNIT_E_NOMEM. */
int knit__reg_grow(knit_pool_t *p);

/* A registry id for a call about to be published; KNIT_E_NOMEM. (These three are on every
 * call's path: inline, so the files of the scheduler cost no calls between them.) */
static inline int knit__reg_alloc(knit_pool_t *p, knit_future_t *f, uint32_t *id)
{
    if (p->nfree == 0) {
        int rc = knit__reg_grow(p);
        if (rc < 0)
            return rc;
    }
    uint32_t index = p->free_ids[--p->nfree];
    uint32_t gen = (p->reg[index].gen + 1u) & (UINT32_MAX >> KNIT__REG_INDEX_BITS);
    p->reg[index]
        = (knit__slot_ref_t) {.call = f, .lane = f->lane, .abort_id = f->abort_id, .gen = gen};
    *id = index | gen << KNIT__REG_INDEX_BITS;
    return 0;
}

/* Free a registry entry by id or by index (the generation bits are ignored). */
static inline void knit__reg_free(knit_pool_t *p, uint32_t id)
{
    uint32_t index = id & KNIT__REG_INDEX_MASK;
    p->reg[index] = (knit__slot_ref_t) {.gen = p->reg[index].gen};
    p->free_ids[p->nfree++] = index;
}

/* The registry entry a response's id names, if that call (or zombie) is still waiting for it;
 * else NULL (an unknown index, an older generation, or an entry that is free). */
static inline knit__slot_ref_t *knit__reg_find(knit_pool_t *p, uint32_t id)
{
    uint32_t index = id & KNIT__REG_INDEX_MASK;
    if (index >= p->reg_cap)
        return NULL;
    knit__slot_ref_t *r = &p->reg[index];
    if ((!r->call && !r->zombie) || r->gen != id >> KNIT__REG_INDEX_BITS)
        return NULL;
    return r;
}

/* Give a call's abort id back to its lane (-1: none). */
static inline void knit__release_abort_id(knit_pool_t *p, uint32_t lane, int32_t abort_id)
{
    if (abort_id >= 0)
        knit__abort_release(&p->lanes[lane].aborts, (uint32_t)abort_id);
}

/* Owned string values: the current knit_errmsg(), or `msg`. */
knit_value_t knit__errmsg_value(void);
knit_value_t knit__string_value(const char *msg);

/* Settle a call on the normal path (takes *value; a second settlement only frees it). */
void knit__settle(knit_pool_t *p, knit_future_t *f, int status, knit_value_t *value);
/* Settle a call wherever it waits (input, backlog, inline queue, in flight as a zombie). */
void knit__settle_early(knit_pool_t *p, knit_future_t *f, int status, knit_value_t *value);

/* Settle every call published on a lane whose worker is gone, with the lane's fail_msg; the
 * backlog too unless a new worker will take it. */
void knit__fail_lane(knit_pool_t *p, knit__lane_t *lane, int status, bool keep_backlog);

/* Shutdown: reject every call not settled yet with KNIT_E_SHUTDOWN. */
void knit__reject_all(knit_pool_t *p);

#endif
