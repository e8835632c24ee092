/*
 * knit sched - lanes: their memory and links, starting and stopping their workers, and their
 * health (start-up reports, deaths, broken links, replacements).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "sched/drain.h"
#include "sched/lanes.h"
#include "sched/route.h"
#include "sched/settle.h"

/* The host's side of a lane's data path. A USES_FDS link's worker descriptors wait in
 * lane->worker_fds for the runtime to hand over; a stealing pool's shared lock is told the
 * worker lanes whose parked workers its sends wake. */
static int open_link(knit_pool_t *p, knit__lane_t *lane)
{
    const knit__link_ops_t *ops = lane->is_submit ? p->link_ops->shared_lock : p->link_ops;
    knit__link_params_t lp = {
        .side = KNIT__SIDE_HOST,
        .mem = &lane->mem,
        .codec = knit__shm_lane_codec(&lane->mem),
        .fds = {-1, -1},
    };
    if (!lane->is_submit) {
        lp.codec.small = knit__result_storage; /* small results land in their futures */
        lp.codec.small_ctx = lane;
    }
    lane->link_down = 0;
    if (lane->is_submit) {
        const knit__shm_lane_t **peers = calloc(p->nworkers, sizeof *peers);
        if (!peers)
            return knit__err(KNIT_E_NOMEM, "the shared request lock's %u workers", p->nworkers);
        for (uint32_t i = 0; i < p->nworkers; i++)
            peers[i] = &p->lanes[i].mem;
        lp.peers = peers;
        lp.consumers = p->nworkers;
        int rc = knit__link_open(ops, &lp, &lane->link);
        free(peers);
        return rc;
    }
    if (ops->pair) {
        int rc = ops->pair(lp.fds, lane->worker_fds);
        if (rc < 0)
            return rc;
    }
    return knit__link_open(ops, &lp, &lane->link);
}

/* Create a lane's memory (the runtime's kind of it, for a worker lane; a stealing pool's
 * shared lock is the host's own) and the host's views of it. Also used to replace the memory
 * of a worker that died. */
static int lane_memory(knit_pool_t *p, knit__lane_t *lane)
{
    int rc = lane->is_submit ? knit__shm_lane_acquire(&lane->mem, &p->lane_cfg)
                             : p->rt_ops->memory(p->rt, lane->index, &p->lane_cfg, &lane->mem);
    if (rc < 0)
        return rc;
    rc = open_link(p, lane);
    if (rc < 0)
        return rc;
    /* relaxed: before the worker exists. A worker that is not in its loop (starting, or
     * failed to start) must not look parked, or stealing wake-ups would go to it. */
    atomic_store_explicit(&knit__shm_ctrl(&lane->mem)->sig.rx_status.word, 1, memory_order_relaxed);
    lane->bell.parked = knit__bell_parked(lane->mem.map, &lane->mem.layout);
    lane->bell.seq = knit__bell_seq(lane->mem.map, &lane->mem.layout);
    lane->ready = false;
    if (lane->mem.layout.abort_bytes)
        lane->aborts.shared = (_Atomic uint32_t *)(lane->mem.map + lane->mem.layout.abort_off);
    return 0;
}

static void lane_memory_close(knit_pool_t *p, knit__lane_t *lane)
{
    lane->aborts.shared = NULL; /* the bitmap lives in this memory */
    /* so does the doorbell: until a new memory exists (a replacement may fail to get one), the
     * lane's own spare words stand in for it, so nothing writes to memory given back */
    lane->bell.parked = &lane->spare_bell[0];
    lane->bell.seq = &lane->spare_bell[1];
    knit__link_close(&lane->link);
    knit__link_fds_close(lane->worker_fds);
    if (!lane->mem.map)
        return;
    if (lane->is_submit)
        knit__shm_lane_release(&lane->mem);
    else
        p->rt_ops->memory_release(p->rt, lane->index, &lane->mem);
}

static int make_lanes(knit_pool_t *p)
{
    bool inl = p->opts.inliner.enabled;
    p->nlanes = p->nworkers + (inl ? 1 : 0);
    p->submit = p->stealing ? p->nlanes : UINT32_MAX;
    p->lanes = calloc(p->nlanes + (p->stealing ? 1 : 0), sizeof *p->lanes);
    p->order = calloc(p->nlanes, sizeof *p->order);
    if (!p->lanes || !p->order)
        return knit__err(KNIT_E_NOMEM, "%u lanes", p->nlanes);
    p->inline_lane = inl ? p->nworkers : UINT32_MAX;
    uint32_t k = 0;
    if (inl && p->opts.inliner.position == KNIT_INLINE_FIRST)
        p->order[k++] = p->inline_lane;
    for (uint32_t i = 0; i < p->nworkers; i++)
        p->order[k++] = i;
    if (inl && p->opts.inliner.position != KNIT_INLINE_FIRST)
        p->order[k++] = p->inline_lane;
    p->norder = k;
    for (uint32_t i = 0; i < p->nlanes + (p->stealing ? 1 : 0); i++) {
        knit__lane_t *lane = &p->lanes[i];
        lane->pool = p;
        lane->index = i;
        lane->mem.fd = -1;
        lane->bell.parked = &lane->spare_bell[0];
        lane->bell.seq = &lane->spare_bell[1];
        lane->is_inline = i == p->inline_lane;
        lane->is_submit = i == p->submit; /* the last lane: the worker lanes exist by then */
        lane->worker_fds[0] = lane->worker_fds[1] = -1;
    }
    for (uint32_t i = 0; i < p->nlanes + (p->stealing ? 1 : 0); i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (lane->is_inline)
            continue;
        int rc = lane_memory(p, lane);
        if (rc == 0 && p->lane_cfg.abort_capacity && (!p->stealing || lane->is_submit))
            rc = knit__abort_init(&lane->aborts, p->lane_cfg.abort_capacity, lane->aborts.shared);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Start a worker lane's worker through the runtime. */
static int start_worker(knit_pool_t *p, knit__lane_t *lane)
{
    knit__runner_cfg_t rc = {
        .worker = {
            .tasks = p->tasks,
            .ntasks = p->ntasks,
            .index = lane->index,
            .lane = &lane->mem,
            .transport = p->opts.transport,
            .fds = {lane->worker_fds[0], lane->worker_fds[1]},
            .submit = p->stealing ? &p->lanes[p->submit].mem : NULL,
            .consumers = p->nworkers,
            .steal_lanes = p->steal_lanes,
            .spin_ns = p->worker_spin_ns,
            .spin_only = p->opts.wait.spin_only,
            .bootstrap = p->opts.worker.bootstrap,
            .bootstrap_ctx = p->opts.worker.bootstrap_ctx,
            .bootstrap_path = p->opts.worker.bootstrap_import_path,
            .bootstrap_symbol = p->opts.worker.bootstrap_import_symbol,
        },
        .death_bell = &p->death_bell,
        .wake_fd = p->wake_fd,
    };
    lane->worker_fds[0] = lane->worker_fds[1] = -1; /* the runtime's now, in every case */
    return p->rt_ops->start(p->rt, &rc, &lane->runner);
}

int knit__lanes_open(knit_pool_t *p)
{
    int rc = make_lanes(p);
    p->lanes_unsettled = true;
    for (uint32_t i = 0; rc == 0 && i < p->nworkers; i++)
        rc = start_worker(p, &p->lanes[i]);
    return rc;
}

/* Ask a lane's worker to stop (it finishes the task it is running). */
static void stop_worker(knit__lane_t *lane)
{
    if (lane->runner && lane->mem.map) {
        knit__worker_signal_stop(&lane->mem);
        /* a link whose worker reads end-of-stream after the last request */
        if (lane->link)
            lane->link->ops->end_tx(lane->link);
    }
}

static void worker_failed(knit_pool_t *p, knit__lane_t *lane, int status)
{
    lane->failed = status;
    if (p->stealing) {
        knit__lane_t *sub = &p->lanes[p->submit];
        sub->link->ops->retire(sub->link, lane->index);
        bool any = false;
        for (uint32_t i = 0; i < p->nworkers; i++)
            any |= !p->lanes[i].failed;
        if (!any) { /* nobody is left to take the shared lock's calls */
            snprintf(sub->fail_msg, sizeof sub->fail_msg, "%s", lane->fail_msg);
            sub->failed = status;
            knit__fail_lane(p, sub, status, false);
        }
        return;
    }
    knit__fail_lane(p, lane, status, false);
}

/* A worker ended on its own (CAN_DIE runtimes): fail its calls, then replace it (unless it
 * never started, or the options say not to). */
static void worker_died(knit_pool_t *p, knit__lane_t *lane, const knit__exit_t *how)
{
    knit__lane_service(p, lane); /* results it published before dying are real: deliver them */
    bool started = lane->ready;
    int status = started ? KNIT_E_WORKER_DIED : KNIT_E_WORKER_STARTUP;
    knit__layout_t *l = &lane->mem.layout;
    if (lane->link_down == KNIT_E_CORRUPT) {
        status = KNIT_E_CORRUPT; /* fail_msg says what it sent (knit__lane_broke) */
    } else if (!started
        && atomic_load_explicit(knit__lane_boot(lane->mem.map, l), memory_order_acquire)
            == KNIT__BOOT_FAILED)
        snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u start-up failed: %.*s",
            lane->index, (int)KNIT__BOOT_MSG_BYTES, knit__lane_boot_msg(lane->mem.map, l));
    else if (how->signal)
        snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u (pid %d) was killed by %s",
            lane->index, (int)how->pid, strsignal(how->signal));
    else
        snprintf(lane->fail_msg, sizeof lane->fail_msg,
            "worker %u (pid %d) exited with status %d%s", lane->index, (int)how->pid, how->code,
            started ? "" : " during start-up (see its stderr)");
    p->rt_ops->forget(p->rt, lane->runner);
    lane->runner = NULL;
    bool respawn
        = (started || status == KNIT_E_CORRUPT) && !p->opts.worker.process.no_respawn && !p->closed;
    knit__fail_lane(p, lane, status, respawn);
    if (!respawn) {
        lane->failed = status;
        return;
    }
    lane_memory_close(p, lane);
    int rc = lane_memory(p, lane);
    if (rc == 0)
        rc = start_worker(p, lane);
    if (rc < 0) {
        snprintf(lane->fail_msg, sizeof lane->fail_msg, "replacing worker %u: %s", lane->index,
            knit_errmsg());
        lane->failed = KNIT_E_WORKER_STARTUP;
        knit__fail_lane(p, lane, KNIT_E_WORKER_STARTUP, false);
        return;
    }
    p->respawns++;
    for (knit_future_t *f = lane->backlog.head; f; f = f->next)
        if (f->abort_requested && f->abort_id >= 0) /* set in the old memory: again */
            knit__abort_signal(&lane->aborts, (uint32_t)f->abort_id);
    if (lane->backlog.len)
        knit__flush_backlog(p, lane);
}

/* A link broke: the worker closed its end, or sent a malformed frame (KNIT_E_CORRUPT: nothing
 * after it can be trusted). A worker of a CAN_DIE runtime that closed its end has ended or is
 * ending; one that sent a malformed frame (or died in the middle of one) is killed here. Either
 * way exited() reports its end and worker_died() settles its calls and replaces it, as after
 * any death. */
void knit__lane_broke(knit_pool_t *p, knit__lane_t *lane, int rc)
{
    char why[200];
    snprintf(why, sizeof why, "%s", knit_errmsg());
    lane->link_down = rc;
    if (lane->failed)
        return;
    bool can_die = knit__runtime_has(p->rt_ops, KNIT__RUNTIME_CAN_DIE);
    if (can_die && lane->runner) {
        if (rc != KNIT_E_WORKER_DIED) {
            lane->link_down = KNIT_E_CORRUPT;
            snprintf(lane->fail_msg, sizeof lane->fail_msg,
                "worker %u: its %s stream broke (%s); the worker was replaced", lane->index,
                p->link_ops->name, why);
            if (p->rt_ops->kill)
                p->rt_ops->kill(lane->runner);
        }
        return;
    }
    if (!can_die) {
        knit__check_lanes(p); /* a worker whose start-up failed closes its end after reporting */
        if (lane->failed)
            return;
    }
    snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u: its %s stream broke: %s",
        lane->index, p->link_ops->name, why);
    if (p->rt_ops->kill && lane->runner)
        p->rt_ops->kill(lane->runner); /* it may still run: the lane is done with it */
    worker_failed(p, lane, rc == KNIT_E_WORKER_DIED ? rc : KNIT_E_CORRUPT);
}

void knit__check_lanes(knit_pool_t *p)
{
    bool can_die = knit__runtime_has(p->rt_ops, KNIT__RUNTIME_CAN_DIE);
    for (uint32_t i = 0; i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (lane->failed || !lane->mem.map)
            continue;
        if (!lane->ready) {
            /* acquire: pairs with the worker's release store; its message is visible. */
            uint32_t b = atomic_load_explicit(
                knit__lane_boot(lane->mem.map, &lane->mem.layout), memory_order_acquire);
            if (b == KNIT__BOOT_READY) {
                lane->ready = true;
                if (p->rt_ops->attached)
                    p->rt_ops->attached(p->rt, lane->index);
            } else if (b == KNIT__BOOT_FAILED && !can_die) { /* else handled once it ends */
                snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u start-up failed: %.*s",
                    lane->index, (int)KNIT__BOOT_MSG_BYTES,
                    knit__lane_boot_msg(lane->mem.map, &lane->mem.layout));
                worker_failed(p, lane, KNIT_E_WORKER_STARTUP);
                continue;
            }
        }
        if (knit__shm_lane_faulted(&lane->mem) && !lane->link_down) {
            knit__err(
                KNIT_E_CORRUPT, "worker %u shrank its lane memory under the host", lane->index);
            knit__lane_broke(p, lane, KNIT_E_CORRUPT); /* kills and replaces it */
        }
        knit__exit_t how;
        if (can_die && lane->runner && p->rt_ops->exited(p->rt, lane->runner, &how))
            worker_died(p, lane, &how);
    }
    if (!can_die) {
        bool settled = true; /* workers cannot end alone: once all reported, stop checking */
        for (uint32_t i = 0; i < p->nworkers; i++)
            settled &= p->lanes[i].ready || p->lanes[i].failed;
        p->lanes_unsettled = !settled;
    }
}

bool knit__lanes_changed(knit_pool_t *p)
{
    if (!p->lanes_unsettled)
        return false;
    for (uint32_t i = 0; i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (lane->failed || !lane->mem.map)
            continue;
        if (!lane->ready
            && atomic_load_explicit(
                   knit__lane_boot(lane->mem.map, &lane->mem.layout), memory_order_acquire)
                != KNIT__BOOT_STARTING)
            return true;
        knit__exit_t how;
        if (p->rt_ops->exited && lane->runner && p->rt_ops->exited(p->rt, lane->runner, &how))
            return true;
    }
    return false;
}

void knit__join_workers(knit_pool_t *p)
{
    for (uint32_t i = 0; p->lanes && i < p->nworkers; i++)
        stop_worker(&p->lanes[i]);
    for (uint32_t i = 0; p->lanes && i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (lane->runner)
            p->rt_ops->join(p->rt, lane->runner);
        lane->runner = NULL;
    }
}

void knit__pool_close(knit_pool_t *p, bool join)
{
    bool forced = p->force_close;
    p->force_close = false;
    if (!p->closed) {
        p->closed = true;
        knit__reject_all(p);
        for (uint32_t i = 0; p->lanes && i < p->nworkers; i++) {
            stop_worker(&p->lanes[i]);
            /* a hard timeout: a worker stuck in a task is killed now where the runtime can
             * (a thread cannot be; it is joined when its task returns) */
            if (forced && p->rt_ops->kill && p->lanes[i].runner)
                p->rt_ops->kill(p->lanes[i].runner);
        }
    }
    if (join)
        knit__join_workers(p);
}

void knit__lanes_free(knit_pool_t *p)
{
    for (uint32_t i = 0; p->lanes && i < p->nlanes + (p->stealing ? 1 : 0); i++) {
        knit__lane_t *lane = &p->lanes[i];
        /* results nobody reads, and requests a worker that failed or died never took: release
         * what they hold (shared buffer references, moved buffers) */
        if (lane->link)
            lane->link->ops->discard(lane->link);
        lane_memory_close(p, lane);
        knit__abort_fini(&lane->aborts);
    }
}
