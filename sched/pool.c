/* knit sched - creating a pool, shutting it down, and what it tells about itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/spin.h"
#include "sched/future.h"
#include "sched/lanes.h"
#include "sched/route.h"
#include "transports/shm/steal.h"

static int cmp_task(const void *a, const void *b)
{
    return strcmp(((const knit__task_t *)a)->name, ((const knit__task_t *)b)->name);
}

/* An enum field holds one of its type's values, 0 to `last` (a cast or a stray value would
 * otherwise pass for a default). `where` prefixes the message ("" or "task 'x': "). */
static int check_enum(const char *where, const char *field, int value, int last, const char *type)
{
    if (value >= 0 && value <= last)
        return 0;
    return knit__err(
        KNIT_E_INVAL, "%s%s = %d is not a %s value (0 to %d)", where, field, value, type, last);
}

static int check_option_enums(const knit_pool_opts_t *o)
{
    const struct {
        const char *field, *type;
        int value, last;
    } f[] = {
        {"runtime", "knit_runtime_t", (int)o->runtime, KNIT_RUNTIME_PROCESS},
        {"transport", "knit_transport_t", (int)o->transport, KNIT_TRANSPORT_SEQ},
        {"balancer", "knit_balancer_t", (int)o->balancer, KNIT_BALANCER_FIRST_IDLE_OR_RANDOM},
        {"dispatcher", "knit_dispatcher_t", (int)o->dispatcher, KNIT_DISPATCHER_SERIAL_CHANNEL},
        {"steal", "knit_steal_t", (int)o->steal, KNIT_STEAL_OFF},
        {"inliner.position", "knit_inline_position_t", (int)o->inliner.position, KNIT_INLINE_FIRST},
        {"worker.process.shared_memory", "knit_shm_mode_t", (int)o->worker.process.shared_memory,
            KNIT_SHM_NAMED},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int rc = check_enum("", f[i].field, f[i].value, f[i].last, f[i].type);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int copy_tasks(knit_pool_t *p, const knit_task_def_t *defs, size_t n)
{
    if (n == 0 || n > KNIT__MAX_TASKS)
        return knit__err(KNIT_E_RANGE, "a pool needs 1 to %u tasks; got %zu", KNIT__MAX_TASKS, n);
    p->tasks = calloc(n, sizeof *p->tasks);
    if (!p->tasks)
        return knit__err(KNIT_E_NOMEM, "%zu task definitions", n);
    p->ntasks = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        if (!defs[i].name || !defs[i].name[0] || (!defs[i].fn && !defs[i].import_path))
            return knit__err(KNIT_E_INVAL,
                "task %zu has no name, or neither a function nor an "
                "import path",
                i);
        if (defs[i].timeout_value.kind == KNIT_KIND_MOVED)
            return knit__err(
                KNIT_E_INVAL, "task '%s': a timeout value cannot be a moved buffer", defs[i].name);
        char where[96];
        snprintf(where, sizeof where, "task '%.64s': ", defs[i].name);
        int rc = check_enum(where, "on_timeout", (int)defs[i].on_timeout, KNIT_TIMEOUT_MAYBE,
            "knit_timeout_action_t");
        if (rc < 0)
            return rc;
        p->tasks[i].def = defs[i];
        p->tasks[i].name = strdup(defs[i].name);
        if (!p->tasks[i].name)
            return knit__err(KNIT_E_NOMEM, "task names");
        p->tasks[i].def.name = p->tasks[i].name;
        p->any_abort_aware |= defs[i].abort_aware;
    }
    qsort(p->tasks, n, sizeof *p->tasks, cmp_task);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(p->tasks[i - 1].name, p->tasks[i].name))
            return knit__err(KNIT_E_INVAL, "task name '%s' is used twice", p->tasks[i].name);
    return 0;
}

/* The runtime and transport exist, and the options ask nothing of them that they cannot do. */
static int check_capabilities(knit_pool_t *p)
{
    const knit_pool_opts_t *o = &p->opts;
    p->rt_ops = knit__runtime_ops(o->runtime);
    p->link_ops = knit__transport_ops(o->transport);
    if (!p->rt_ops)
        return knit__err(KNIT_E_INVAL, "unknown runtime %d", (int)o->runtime);
    bool shared = knit__runtime_has(p->rt_ops, KNIT__RUNTIME_SHARED_ADDRESS);
    if (!shared && o->steal == KNIT_STEAL_ON)
        return knit__err(KNIT_E_UNSUPPORTED,
            "work stealing does not support %s workers; use thread workers or disable stealing",
            p->rt_ops->name);
    if (!shared && o->worker.bootstrap && !o->worker.bootstrap_import_path)
        return knit__err(KNIT_E_INVAL,
            "%s workers cannot call a host function pointer as bootstrap: pass it to "
            "knit_worker_process_main() or set bootstrap_import_path",
            p->rt_ops->name);
    if (!p->link_ops)
        return knit__err(KNIT_E_INVAL, "unknown transport %d", (int)o->transport);
    if (!p->link_ops->shared_lock && o->steal == KNIT_STEAL_ON)
        return knit__err(KNIT_E_UNSUPPORTED,
            "work stealing needs the knit transport (the %s transport has no shared request "
            "lock); disable stealing",
            p->link_ops->name);
    return 0;
}

/* Topology (knitting-internals 4.1): dispatcher and stealing from options and environment. */
static int choose_topology(knit_pool_t *p)
{
    const knit_pool_opts_t *o = &p->opts;
    knit_dispatcher_t env_disp = KNIT_DISPATCHER_DEFAULT;
    const char *e = getenv("KNIT_DISPATCHER");
    if (e && *e && knit_dispatcher_parse(e, &env_disp) < 0)
        return knit__err(
            KNIT_E_INVAL, "KNIT_DISPATCHER='%s' is not per-thread or serial-channel", e);
    p->dispatcher = o->dispatcher != KNIT_DISPATCHER_DEFAULT ? o->dispatcher : env_disp;
    if (p->dispatcher == KNIT_DISPATCHER_DEFAULT)
        p->dispatcher
            = o->threads <= 1 ? KNIT_DISPATCHER_PER_THREAD : KNIT_DISPATCHER_SERIAL_CHANNEL;
    /* Stealing: requested by option or KNIT_STEAL, else the default for 2-31 thread workers
     * when no balancer, dispatcher (option or environment) or inliner was chosen. */
    knit_steal_t steal = o->steal;
    const char *se = getenv("KNIT_STEAL");
    if (steal == KNIT_STEAL_DEFAULT && se && *se) {
        if (!strcmp(se, "1") || !strcmp(se, "true"))
            steal = KNIT_STEAL_ON;
        else if (!strcmp(se, "0") || !strcmp(se, "false"))
            steal = KNIT_STEAL_OFF;
        else
            return knit__err(KNIT_E_INVAL, "KNIT_STEAL='%s' is not 1, true, 0 or false", se);
    }
    if (steal == KNIT_STEAL_DEFAULT)
        steal = o->balancer == KNIT_BALANCER_DEFAULT && o->dispatcher == KNIT_DISPATCHER_DEFAULT
                && env_disp == KNIT_DISPATCHER_DEFAULT && o->threads <= 31
            ? KNIT_STEAL_ON
            : KNIT_STEAL_OFF;
    p->stealing = steal == KNIT_STEAL_ON && o->threads > 1 && !o->inliner.enabled
        && knit__runtime_has(p->rt_ops, KNIT__RUNTIME_SHARED_ADDRESS) && p->link_ops->shared_lock;
    if (steal == KNIT_STEAL_ON && o->threads > KNIT__STEAL_MAX_CONSUMERS
        && o->steal == KNIT_STEAL_ON)
        return knit__err(KNIT_E_RANGE, "%u stealing workers need more than 32 lanes", o->threads);
    if (p->stealing)
        return knit__steal_region_lanes(o->threads, o->steal_region_lanes, &p->steal_lanes);
    return 0;
}

int knit_pool_create(
    const knit_pool_opts_t *opts, const knit_task_def_t *tasks, size_t ntasks, knit_pool_t **out)
{
    if (!out || !tasks)
        return knit__err(KNIT_E_INVAL, "knit_pool_create: tasks and out must not be NULL");
    *out = NULL;
    knit_pool_t *p = calloc(1, sizeof *p);
    if (!p || knit__fcache_new(&p->fcache) < 0) {
        free(p);
        return knit__err(KNIT_E_NOMEM, "pool");
    }
    if (opts)
        p->opts = *opts;
    p->wake_fd = -1;
    knit_pool_opts_t *o = &p->opts;
    int rc = 0;
    if (knit_is_worker_process())
        rc = knit__err(KNIT_E_INVAL,
            "knit_pool_create called inside a process worker: start main() with "
            "knit_worker_process_main() so worker processes do not run the host "
            "program");
    else
        rc = check_option_enums(o);
    if (rc == 0)
        rc = check_capabilities(p);
    if (rc == 0 && o->threads > 1024)
        rc = knit__err(KNIT_E_RANGE, "threads must be at most 1024; got %u", o->threads);
    if (rc == 0)
        rc = copy_tasks(p, tasks, ntasks);
    if (rc == 0) {
        p->nworkers = o->threads ? o->threads : 1;
        if (o->threads == 0)
            o->threads = 1;
        rc = choose_topology(p);
    }
    if (rc == 0 && o->abort_capacity > 65535)
        rc = knit__err(KNIT_E_RANGE,
            "abort_capacity must be at most 65535 (ids travel in 16 bits); got %u",
            o->abort_capacity);
    if (rc == 0) {
        p->lane_cfg.payload_initial_bytes = o->payload.initial_bytes;
        p->lane_cfg.payload_max_bytes = o->payload.max_byte_length;
        p->lane_cfg.max_payload_bytes = o->payload.max_payload_bytes;
        p->lane_cfg.process_boundary = !knit__runtime_has(p->rt_ops, KNIT__RUNTIME_SHARED_ADDRESS);
        p->lane_cfg.abort_capacity = p->any_abort_aware
            ? (o->abort_capacity ? o->abort_capacity : KNIT__DEFAULT_ABORTS)
            : 0;
        rc = knit__lane_cfg_resolve(&p->lane_cfg);
    }
    if (rc == 0) {
        uint32_t lanes = p->nworkers + (o->inliner.enabled ? 1 : 0);
        p->spin_ns = o->wait.spin_ns < 0 ? 0
            : o->wait.spin_ns > 0        ? o->wait.spin_ns
                                         : (int64_t)KNIT__DEFAULT_SPIN_NS * lanes;
        /* Spinning pays only with a free core. With more workers than CPUs beside the host,
         * an idle worker's spin takes the CPU that the worker a call was routed to needs (on
         * 2 cores with 2 round-robin workers every call waited for a spin budget to run
         * out): by default such workers park at once and only the host spins. A stealing
         * pool is different - whichever worker spins takes the call - so its workers keep
         * spinning. An explicit budget is obeyed. */
        p->worker_spin_ns = p->spin_ns;
        if (o->wait.spin_ns == 0 && !p->stealing && p->nworkers + 1 > knit__cpus())
            p->worker_spin_ns = 0;
        if (getrandom(&p->rng, sizeof p->rng, 0) != (ssize_t)sizeof p->rng)
            p->rng = (uint64_t)knit__now_ns();
        p->rng |= 1;
    }
    if (rc == 0 && !knit__link_has(p->link_ops, KNIT__LINK_SPIN_CHEAP) && o->wait.spin_ns == 0)
        p->spin_ns = p->worker_spin_ns = 0; /* such links block at once unless asked to poll */
    if (rc == 0 && knit__link_has(p->link_ops, KNIT__LINK_USES_FDS)) {
        p->pfds = calloc(2u * p->nworkers + 1u, sizeof *p->pfds);
        if (!p->pfds)
            rc = knit__err(KNIT_E_NOMEM, "poll set for %u workers", p->nworkers);
        if (rc == 0 && knit__runtime_has(p->rt_ops, KNIT__RUNTIME_CAN_DIE)) {
            p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (p->wake_fd < 0)
                rc = knit__err(KNIT_E_SYS, "eventfd: %s", strerror(errno));
        }
    }
    if (rc == 0)
        rc = p->rt_ops->open(o, p->nworkers, &p->rt);
    if (rc == 0)
        rc = knit__lanes_open(p);
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", knit_errmsg());
        p->closed = true;
        knit_pool_destroy(p);
        knit__err(rc, "%s", strchr(msg, ':') ? strchr(msg, ':') + 2 : msg);
        return rc;
    }
    *out = p;
    return 0;
}

int knit_pool_shutdown(knit_pool_t *p, knit_shutdown_mode_t mode, uint32_t delay_ms)
{
    if (knit__null_arg(p, __func__, "pool"))
        return KNIT_E_INVAL;
    if (p->closed || p->shutting_down) {
        if (p->closed && !p->joined) {
            knit__join_workers(p);
            p->joined = true;
        }
        return 0;
    }
    p->shutting_down = true;
    uint64_t end = knit__now_ns() + (uint64_t)delay_ms * 1000000ull;
    for (uint64_t now; !p->closed && (now = knit__now_ns()) < end;) {
        if (p->pending == 0 && p->settled_q.len == 0) {
            /* nothing to serve: sleep out the delay (only callbacks could add calls, and
             * they run on this thread) */
            struct timespec ts
                = {(time_t)((end - now) / 1000000000ull), (long)((end - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
            continue;
        }
        knit_pool_progress(p, (int64_t)(end - now));
    }
    if (mode == KNIT_SHUTDOWN_DRAIN || p->opts.worker.resolve_after_finishing_all)
        while (!p->closed && p->pending)
            knit_pool_progress(p, -1);
    knit__pool_close(p, true);
    p->joined = true;
    knit__run_settled(p);
    return 0;
}

void knit_pool_destroy(knit_pool_t *p)
{
    if (!p)
        return;
    knit__pool_close(p, true);
    knit__run_settled(p);
    knit__lanes_free(p);
    if (p->rt)
        p->rt_ops->close(p->rt); /* every runner was joined or forgotten */
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    free(p->pfds);
    for (uint32_t i = 0; p->tasks && i < p->ntasks; i++)
        free(p->tasks[i].name);
    free(p->tasks);
    free(p->lanes);
    free(p->order);
    free(p->reg);
    free(p->free_ids);
    free(p->heap);
    knit__fcache_orphan(p->fcache); /* futures the caller still holds free themselves */
    free(p);
}

int knit_task_index(const knit_pool_t *p, const char *name)
{
    if (knit__null_arg(p, __func__, "pool") || knit__null_arg(name, __func__, "name"))
        return KNIT_E_INVAL;
    uint32_t lo = 0, hi = p->ntasks;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(p->tasks[mid].name, name);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return knit__err(KNIT_E_NO_TASK, "no task named '%s'", name);
}

uint32_t knit_pool_lanes(const knit_pool_t *p)
{
    return knit__null_arg(p, __func__, "pool") ? 0 : p->nlanes;
}

bool knit_pool_stealing(const knit_pool_t *p)
{
    return knit__null_arg(p, __func__, "pool") ? false : p->stealing;
}

knit_dispatcher_t knit_pool_dispatcher(const knit_pool_t *p)
{
    return knit__null_arg(p, __func__, "pool") ? KNIT_DISPATCHER_DEFAULT : p->dispatcher;
}

size_t knit_pool_pending(const knit_pool_t *p)
{
    return knit__null_arg(p, __func__, "pool") ? 0 : p->pending;
}

int32_t knit_pool_worker_pid(const knit_pool_t *p, uint32_t worker)
{
    if (knit__null_arg(p, __func__, "pool"))
        return 0;
    const knit__runner_t *r = worker < p->nworkers ? p->lanes[worker].runner : NULL;
    return r ? p->rt_ops->pid(r) : 0;
}

uint32_t knit_pool_respawns(const knit_pool_t *p)
{
    return knit__null_arg(p, __func__, "pool") ? 0 : p->respawns;
}

const char *knit_dispatcher_name(knit_dispatcher_t d)
{
    switch (d) {
    case KNIT_DISPATCHER_PER_THREAD:
        return "per-thread";
    case KNIT_DISPATCHER_SERIAL_CHANNEL:
        return "serial-channel";
    default:
        return "default";
    }
}

int knit_dispatcher_parse(const char *name, knit_dispatcher_t *out)
{
    if (knit__null_arg(out, __func__, "out"))
        return KNIT_E_INVAL;
    if (name && !strcmp(name, "per-thread"))
        *out = KNIT_DISPATCHER_PER_THREAD;
    else if (name && !strcmp(name, "serial-channel"))
        *out = KNIT_DISPATCHER_SERIAL_CHANNEL;
    else
        return knit__err(KNIT_E_INVAL, "unknown dispatcher '%s' (per-thread, serial-channel)",
            name ? name : "(null)");
    return 0;
}
