/* knit interop - a knit host speaking knitting's process-worker protocol (see khost.h). */
#define _GNU_SOURCE /* memfd_create */
#include "interop/khost.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/futex.h"
#include "interop/ktask.h"

extern char **environ;

/* knitting's process-worker mapping (knitting-internals 1.9), no abort bitmap. */
enum {
    L_SIGNALS = 0,
    L_REQ_SECTOR = 192,
    L_RET_SECTOR = 448,
    L_REQ_HEADERS = 704,
    L_RET_HEADERS = 19136,
    L_ARENAS = 37568,
    L_SLOT = 576,
};

struct knit__kh {
    int fd;
    pid_t pid;
    bool exited;
    int status; /* the worker's wait status once exited */
    uint8_t *base;
    uint64_t size, arena_bytes;
    _Atomic uint32_t *op, *rx_status, *req_h, *req_w, *ret_h, *ret_w;
    knit__arena_t req_arena, ret_arena;
    uint32_t last_local, shadow;     /* request producer */
    uint32_t last_worker, last_take; /* return consumer */
    uint32_t acked_pending;          /* consumed return slots not yet acknowledged */
    uint32_t next_id;
    knit__kx_cfg_t cfg;
    char **sorted; /* task names in knitting's order: function index = position */
    size_t ntasks;
};

static _Atomic uint32_t *word(knit__kh_t *h, uint64_t off)
{
    return (_Atomic uint32_t *)(h->base + off);
}

/* --- the lane ------------------------------------------------------------------------------- */

static int make_lane(knit__kh_t *h, uint64_t arena_bytes)
{
    h->arena_bytes = (arena_bytes + 63) & ~63ull;
    h->size = L_ARENAS + 2 * h->arena_bytes;
    h->fd = memfd_create("knitting_shared_memory", MFD_CLOEXEC);
    if (h->fd < 0)
        return knit__err(KNIT_E_SYS, "memfd_create for a knitting lane");
    if (ftruncate(h->fd, (off_t)h->size) != 0)
        return knit__err(KNIT_E_SYS, "ftruncate of a %llu-byte lane", (unsigned long long)h->size);
    void *p = mmap(NULL, h->size, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
    if (p == MAP_FAILED)
        return knit__err(KNIT_E_SYS, "mmap of a %llu-byte lane", (unsigned long long)h->size);
    h->base = p;
    h->op = word(h, L_SIGNALS);
    h->rx_status = word(h, L_SIGNALS + 64);
    h->req_h = word(h, L_REQ_SECTOR);
    h->req_w = word(h, L_REQ_SECTOR + 64);
    h->ret_h = word(h, L_RET_SECTOR);
    h->ret_w = word(h, L_RET_SECTOR + 64);
    knit__arena_init(&h->req_arena, h->base + L_ARENAS, h->arena_bytes, h->arena_bytes,
        word(h, L_REQ_SECTOR + 128), word(h, L_REQ_SECTOR + 192));
    knit__arena_init(&h->ret_arena, h->base + L_ARENAS + h->arena_bytes, h->arena_bytes,
        h->arena_bytes, word(h, L_RET_SECTOR + 128), word(h, L_RET_SECTOR + 192));
    h->last_take = 32;
    h->cfg = (knit__kx_cfg_t) {
        .codec = {.max_payload_bytes = h->arena_bytes >> 3, .process_boundary = true}};
    return 0;
}

/* --- the boot payload ----------------------------------------------------------------------- */

static json_t *meta(const knit__kh_t *h, uint64_t off, uint64_t len)
{
    return json_pack("{s:i, s:{s:i, s:i, s:I, s:I, s:s, s:s}, s:I, s:I}", "version", 1,
        "descriptor", "version", 1, "fd", 0, "size", (json_int_t)h->size, "byteLength",
        (json_int_t)h->size, "runtime", "bun", "kind", "external-array-buffer", "byteOffset",
        (json_int_t)off, "byteLength", (json_int_t)len);
}

static json_t *lock_json(const knit__kh_t *h, uint64_t headers, uint64_t sector, uint64_t arena)
{
    return json_pack("{s:o, s:i, s:o, s:o, s:o}", "headers", meta(h, headers, 32 * L_SLOT),
        "headerSlotStrideU32", L_SLOT / 4, "lockSector", meta(h, sector, 256), "payloadSector",
        meta(h, sector, 256), "payload", meta(h, arena, h->arena_bytes));
}

static char *boot_payload(const knit__kh_t *h, const knit__kh_opts_t *o)
{
    json_t *ids = json_array(), *at = json_array(), *names = json_array();
    for (size_t i = 0; i < o->ntasks; i++) {
        json_array_append_new(ids, json_integer((json_int_t)i));
        json_array_append_new(at, json_integer((json_int_t)i));
        json_array_append_new(names, json_string(o->names[i]));
    }
    json_t *wd = json_pack(
        "{s:o, s:[s], s:o, s:o, s:o, s:i, s:{s:s, s:s, s:{s:i}}, s:i, s:f, s:o, s:o, "
        "s:{s:s, s:I, s:I, s:I}}",
        "sab", meta(h, L_SIGNALS, 192), "list", o->module_url ? o->module_url : "", "ids", ids,
        "names", names, "at", at, "thread", 0, "workerOptions", "runtime", "process",
        "processRuntime", "bun", "timers", "parkMs", 1, "totalNumberOfThread", 1, "startAt", 0.0,
        "lock", lock_json(h, L_REQ_HEADERS, L_REQ_SECTOR, L_ARENAS), "returnLock",
        lock_json(h, L_RET_HEADERS, L_RET_SECTOR, L_ARENAS + h->arena_bytes), "payloadConfig",
        "mode", "fixed", "payloadInitialBytes", (json_int_t)h->arena_bytes, "payloadMaxByteLength",
        (json_int_t)h->arena_bytes, "maxPayloadBytes", (json_int_t)(h->arena_bytes >> 3));
    json_t *boot = wd ? json_pack("{s:i, s:o}", "version", 1, "workerData", wd) : NULL;
    char *text = boot ? json_dumps(boot, JSON_COMPACT) : NULL;
    json_decref(boot);
    return text;
}

/* --- starting the worker ---------------------------------------------------------------------- */

static int spawn_worker(knit__kh_t *h, const knit__kh_opts_t *o, const char *boot)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    char *boot_var = malloc(strlen(boot) + 40);
    if (!env || !boot_var) {
        free(env);
        free(boot_var);
        return knit__err(KNIT_E_NOMEM, "the worker's environment");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "KNITTING_", 9) != 0)
            env[k++] = environ[i];
    sprintf(boot_var, "KNITTING_PROCESS_WORKER_BOOT=%s", boot);
    env[k++] = "KNITTING_PROCESS_WORKER=1";
    env[k++] = "KNITTING_POOL_DEPTH=1";
    env[k++] = boot_var;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, h->fd, 0); /* the lane on stdin, as knitting does */
    int rc = posix_spawnp(&h->pid, o->argv[0], &fa, NULL, o->argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    free(boot_var);
    if (rc != 0) {
        errno = rc;
        return knit__err(KNIT_E_SYS, "starting the worker '%s'", o->argv[0]);
    }
    return 0;
}

static int sort_names(knit__kh_t *h, const knit__kh_opts_t *o)
{
    h->ntasks = o->ntasks;
    h->sorted = calloc(o->ntasks + 1, sizeof *h->sorted);
    if (!h->sorted)
        return knit__err(KNIT_E_NOMEM, "task names");
    for (size_t i = 0; i < o->ntasks; i++)
        if (!(h->sorted[i] = strdup(o->names[i])))
            return knit__err(KNIT_E_NOMEM, "task names");
    qsort(h->sorted, h->ntasks, sizeof *h->sorted, knit__kx_name_cmp);
    return 0;
}

int knit__kh_start(const knit__kh_opts_t *o, knit__kh_t **out)
{
    knit__kh_t *h = calloc(1, sizeof *h);
    if (!h)
        return knit__err(KNIT_E_NOMEM, "a knitting host");
    h->fd = -1;
    int rc = make_lane(h, o->arena_bytes ? o->arena_bytes : 1u << 20);
    if (rc == 0)
        rc = sort_names(h, o);
    char *boot = rc == 0 ? boot_payload(h, o) : NULL;
    if (rc == 0 && !boot)
        rc = knit__err(KNIT_E_NOMEM, "the boot payload");
    if (rc == 0)
        rc = spawn_worker(h, o, boot);
    free(boot);
    if (rc < 0) {
        knit__kh_stop(h);
        return rc;
    }
    *out = h;
    return 0;
}

pid_t knit__kh_pid(const knit__kh_t *h)
{
    return h->pid;
}

/* --- calls --------------------------------------------------------------------------------------
 */

static int task_index(const knit__kh_t *h, const char *name)
{
    for (size_t i = 0; i < h->ntasks; i++)
        if (strcmp(h->sorted[i], name) == 0)
            return (int)i;
    return -1;
}

/* The host's wake: a worker that announced its sleep (rxStatus 0) gets `op` bumped and woken. */
static void wake_worker(knit__kh_t *h)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(h->rx_status, memory_order_relaxed) == 0) {
        atomic_fetch_add_explicit(h->op, 1, memory_order_release);
        knit__futex_wake(h->op, 1);
    }
}

int knit__kh_call(knit__kh_t *h, const char *name, knit__kx_value_t *arg, uint32_t *id)
{
    int fn = task_index(h, name);
    if (fn < 0)
        return knit__err(KNIT_E_NO_TASK, "the pool has no task named '%s'", name);
    uint32_t free_bits = ~(h->last_local ^ h->shadow);
    if (!free_bits) {
        h->shadow = atomic_load_explicit(h->req_w, memory_order_acquire);
        free_bits = ~(h->last_local ^ h->shadow);
        if (!free_bits)
            return KNIT_E_FULL;
    }
    unsigned i = 31u - (unsigned)__builtin_clz(free_bits);
    uint8_t *slot = h->base + L_REQ_HEADERS + (size_t)i * L_SLOT;
    uint32_t hdr[KNIT__HDR_WORDS] = {(uint32_t)fn, h->next_id, 0, 0, 0, 0, 0, 0};
    uint64_t ms = knit__now_ns() / 1000000ull;
    knit__hdr_set_stamp(hdr, (uint32_t)ms);
    int rc = knit__kx_encode(arg, hdr, slot, &h->req_arena, &h->cfg);
    if (rc < 0)
        return rc;
    memcpy(slot + KNIT__STATIC_BYTES, hdr, sizeof hdr);
    h->last_local ^= 1u << i;
    atomic_store_explicit(h->req_h, h->last_local, memory_order_release);
    wake_worker(h);
    *id = h->next_id++;
    return 0;
}

static int reap(knit__kh_t *h, int options)
{
    int status = 0;
    if (h->exited || h->pid <= 0)
        return 1;
    pid_t r = waitpid(h->pid, &status, options);
    if (r == h->pid) {
        h->exited = true;
        h->status = status;
        return 1;
    }
    return 0;
}

int knit__kh_poll(knit__kh_t *h, knit__kh_result_t *out)
{
    uint32_t pending = atomic_load_explicit(h->ret_h, memory_order_acquire) ^ h->last_worker;
    if (!pending) {
        if (h->acked_pending) { /* acknowledge what was consumed before going idle */
            h->last_worker ^= h->acked_pending;
            h->acked_pending = 0;
            atomic_store_explicit(h->ret_w, h->last_worker, memory_order_release);
        }
        return reap(h, WNOHANG) ? knit__err(KNIT_E_WORKER_DIED, "the worker process ended")
                                : KNIT_E_AGAIN;
    }
    pending &= ~h->acked_pending;
    if (!pending)
        return KNIT_E_AGAIN;
    uint32_t below = h->last_take >= 32 ? 0 : pending & ((1u << h->last_take) - 1u);
    unsigned i = 31u - (unsigned)__builtin_clz(below ? below : pending);
    h->last_take = i;
    uint8_t *slot = h->base + L_RET_HEADERS + (size_t)i * L_SLOT;
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, slot + KNIT__STATIC_BYTES, sizeof hdr);
    hdr[KNIT__W_SCRATCH] = 0;
    out->id = hdr[KNIT__W_ID];
    out->reject = hdr[KNIT__W_FN] != 0;
    int rc = knit__kx_decode(hdr, slot, &h->ret_arena, &h->cfg, &out->value);
    h->acked_pending |= 1u << i;
    if (__builtin_popcount(h->acked_pending) >= 8) { /* knitting acks every 8 frames */
        h->last_worker ^= h->acked_pending;
        h->acked_pending = 0;
        atomic_store_explicit(h->ret_w, h->last_worker, memory_order_release);
    }
    return rc;
}

int knit__kh_wait(knit__kh_t *h, knit__kh_result_t *out, uint64_t timeout_ns)
{
    uint64_t end = knit__now_ns() + timeout_ns;
    for (;;) {
        int rc = knit__kh_poll(h, out);
        if (rc != KNIT_E_AGAIN)
            return rc;
        if (knit__now_ns() >= end)
            return knit__err(KNIT_E_TIMEOUT, "no response within %llu ms",
                (unsigned long long)(timeout_ns / 1000000));
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

int knit__kh_stop(knit__kh_t *h)
{
    int status = h->exited ? h->status : -1;
    if (h->pid > 0 && !h->exited) {
        kill(h->pid, SIGTERM);
        uint64_t end = knit__now_ns() + 2000000000ull;
        while (!h->exited && knit__now_ns() < end) {
            int s = 0;
            if (waitpid(h->pid, &s, WNOHANG) == h->pid) {
                h->exited = true;
                status = s;
                break;
            }
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        if (!h->exited) { /* past knit's 2 s grace: kill */
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &status, 0);
        }
    }
    if (h->base)
        munmap(h->base, h->size);
    if (h->fd >= 0)
        close(h->fd);
    for (size_t i = 0; h->sorted && i < h->ntasks; i++)
        free(h->sorted[i]);
    free(h->sorted);
    free(h);
    return status;
}
