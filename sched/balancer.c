/*
 * knit sched - balancers (knitting-internals 4.2) and the inline-lane gate (4.3). Each task has
 * its own state. The lane list is p->order: worker lanes, with the inline lane first or last.
 */
#include <string.h>

#include "base/error.h"
#include "base/rand.h"
#include "sched/balancer.h"

static const char *const balancer_names[]
    = {"roundRobin", "roundRobin", "firstIdle", "randomLane", "firstIdleOrRandom"};

const char *knit_balancer_name(knit_balancer_t b)
{
    return (unsigned)b <= KNIT_BALANCER_FIRST_IDLE_OR_RANDOM ? balancer_names[b] : "unknown";
}

int knit_balancer_parse(const char *name, knit_balancer_t *out)
{
    if (!name || !out)
        return knit__err(KNIT_E_INVAL, "balancer name is NULL");
    if (!strcmp(name, "roundRobin") || !strcmp(name, "robinRound"))
        *out = KNIT_BALANCER_ROUND_ROBIN;
    else if (!strcmp(name, "firstIdle"))
        *out = KNIT_BALANCER_FIRST_IDLE;
    else if (!strcmp(name, "randomLane"))
        *out = KNIT_BALANCER_RANDOM_LANE;
    else if (!strcmp(name, "firstIdleOrRandom"))
        *out = KNIT_BALANCER_FIRST_IDLE_OR_RANDOM;
    else
        return knit__err(KNIT_E_INVAL,
            "unknown balancer '%s' (roundRobin, robinRound, firstIdle, randomLane, "
            "firstIdleOrRandom)",
            name);
    return 0;
}

static uint64_t next_rand(knit_pool_t *p)
{
    return knit__xorshift64s(&p->rng);
}

/* Idle: nothing routed to the lane is unsettled (inline lane: nothing queued or running). */
static bool lane_idle(const knit__lane_t *l)
{
    return l->inflight == 0;
}

static uint32_t choose(knit_pool_t *p, knit__task_t *t, uint32_t n, const uint32_t *order);

uint32_t knit__balance(knit_pool_t *p, knit__task_t *t)
{
    uint32_t n = p->norder;
    const uint32_t *order = p->order;
    /* Inliner gate: below the threshold only worker lanes are eligible; imported tasks never
     * run on the host at all. */
    if (p->inline_lane != UINT32_MAX
        && (t->def.import_path
            || (p->opts.inliner.dispatch_threshold > 1
                && t->inflight < p->opts.inliner.dispatch_threshold))) {
        n = p->nworkers;
        order = p->order + (p->opts.inliner.position == KNIT_INLINE_FIRST ? 1 : 0);
    }
    uint32_t lane = choose(p, t, n, order);
    if (!p->lanes[lane].failed)
        return lane;
    /* a lane whose worker is gone for good: the next healthy one in order, if any */
    for (uint32_t i = 0; i < n; i++)
        if (!p->lanes[order[i]].failed)
            return order[i];
    return lane;
}

static uint32_t choose(knit_pool_t *p, knit__task_t *t, uint32_t n, const uint32_t *order)
{
    if (n <= 1)
        return order[0];
    switch (p->opts.balancer) {
    case KNIT_BALANCER_FIRST_IDLE:
    case KNIT_BALANCER_FIRST_IDLE_OR_RANDOM:
        for (uint32_t i = 0; i < n; i++)
            if (lane_idle(&p->lanes[order[i]]))
                return order[i];
        if (p->opts.balancer == KNIT_BALANCER_FIRST_IDLE_OR_RANDOM)
            return order[next_rand(p) % n];
        break;
    case KNIT_BALANCER_RANDOM_LANE:
        return order[next_rand(p) % n];
    default:
        break;
    }
    uint32_t lane = order[t->rr_cursor % n];
    t->rr_cursor = (t->rr_cursor + 1) % n;
    return lane;
}
