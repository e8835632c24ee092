/*
 * knit - a worker pool whose calls travel through lock-free slots in shared memory.
 *
 * Define tasks (a name and a C function taking one value and producing one value), create a
 * pool of workers, call a task and get a future, wait for it. docs/API.md has a quick start.
 *
 * Threading model: a pool is driven by the thread that created it (the host thread), as
 * knitting's pool is driven by its event loop. knit_call, the future functions and
 * knit_pool_progress must be called from that thread; settlement, completion callbacks, timeouts
 * and the inline lane all run on it while it is inside a knit function that waits or polls.
 * Task functions run on the worker threads (or on the host thread for the inline lane).
 *
 * NULL arguments: every pool, call and future function below is safe on NULL. One that returns
 * an int returns KNIT_E_INVAL, and knit_errmsg() names the function and the argument; the
 * others return the neutral value given with them (recording the same message), and
 * knit_pool_destroy(NULL) and knit_future_release(NULL) do nothing, like free(NULL).
 */
#ifndef KNIT_KNIT_H
#define KNIT_KNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "knit/error.h"
#include "knit/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct knit_pool knit_pool_t;
typedef struct knit_future knit_future_t;
typedef struct knit_task_ctx knit_task_ctx_t;

/* --- tasks ------------------------------------------------------------------------------------ */

/*
 * A task: fills *result and returns 0 to resolve, or returns KNIT_TASK_REJECT to reject with
 * *result as the rejection value (the caller sees KNIT_E_TASK). A negative knit code a worker
 * may report (KNIT_E_INVAL, _NOMEM, _RANGE, _SYS, _PAYLOAD_TOO_LARGE, _ARENA_FULL,
 * _UNSUPPORTED, _PROCESS_BOUNDARY, _CORRUPT, _TIMEOUT, _ABORTED, _ABORT_EXHAUSTED, _NO_TASK)
 * rejects with that code; any other value rejects with KNIT_E_TASK (codes only the host gives,
 * such as KNIT_E_WORKER_DIED or KNIT_E_SHUTDOWN, and KNIT_E_AGAIN, which reads as pending).
 * *arg is owned by the worker loop and freed after the task returns (a small one is lent:
 * KNIT_VF_LENT); a task may move it into *result (`*result = *arg; *arg = knit_v_undefined();`),
 * and one that keeps it longer takes its own copy first (knit_value_own). If *result has
 * KNIT_VF_OWNED set,
 * the worker frees it after sending; otherwise its memory must stay valid until the task
 * returns to the loop (static data or the argument's own memory).
 */
typedef int (*knit_task_fn)(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result);

#define KNIT_TASK_REJECT 1

/* What happens when a task's timeout expires. */
typedef enum knit_timeout_action {
    KNIT_TIMEOUT_REJECT = 0,  /* reject with KNIT_E_TIMEOUT ("Task timeout") */
    KNIT_TIMEOUT_RESOLVE = 1, /* resolve with timeout_value */
    KNIT_TIMEOUT_ERROR = 2,   /* reject with KNIT_E_TASK and timeout_value as the error */
    KNIT_TIMEOUT_MAYBE = 3,   /* resolve with UNDEFINED (knitting's `maybe: true`) */
} knit_timeout_action_t;

typedef struct knit_task_def {
    const char *name; /* unique; tasks are indexed in name order, as in knitting */
    knit_task_fn fn;  /* NULL when the task is imported */
    /* An imported task: loaded with dlopen in the worker only (thread or process), never on
     * the host, so it never runs on the inline lane. The symbol defaults to `name` and must
     * have the knit_task_fn signature. */
    const char *import_path;
    const char *import_symbol;
    uint32_t timeout_ms; /* 0 = no timeout; counted from the call, queue wait included */
    knit_timeout_action_t on_timeout;
    knit_value_t timeout_value; /* borrowed; must outlive the pool */
    bool abort_aware;           /* the task polls knit_task_aborted() */
    /* The task reads its argument in place: a bytes, string, JSON or typed-array argument too
     * big for the slot arrives as a view into the lane's payload arena instead of a copy. The
     * view is valid until the task's result has been sent (the task may return it as its
     * result), is not NUL-terminated, and is not owned: knit_value_free() ignores it. Small
     * arguments, and arguments over a message transport, are copies as usual. */
    bool arg_in_place;
    void *user_data; /* returned by knit_task_user_data() */
} knit_task_def_t;

/* Inside a task. */
bool knit_task_aborted(const knit_task_ctx_t *ctx); /* the caller asked the call to stop */
void *knit_task_user_data(const knit_task_ctx_t *ctx);
uint32_t knit_task_worker(const knit_task_ctx_t *ctx); /* worker index; UINT32_MAX inline */

/* --- pool options ---------------------------------------------------------------------------- */

typedef enum knit_runtime { KNIT_RUNTIME_THREAD = 0, KNIT_RUNTIME_PROCESS = 1 } knit_runtime_t;

typedef enum knit_transport {
    KNIT_TRANSPORT_KNIT = 0,
    KNIT_TRANSPORT_PIPE,
    KNIT_TRANSPORT_UNIX,
    KNIT_TRANSPORT_SEQPACKET,
    KNIT_TRANSPORT_TCP,
    KNIT_TRANSPORT_SEQ, /* shared memory, one sequence word per slot (transports/shm/seq/) */
} knit_transport_t;

typedef enum knit_balancer {
    KNIT_BALANCER_DEFAULT = 0, /* roundRobin, and lets the pool pick stealing */
    KNIT_BALANCER_ROUND_ROBIN,
    KNIT_BALANCER_FIRST_IDLE,
    KNIT_BALANCER_RANDOM_LANE,
    KNIT_BALANCER_FIRST_IDLE_OR_RANDOM,
} knit_balancer_t;

typedef enum knit_dispatcher {
    KNIT_DISPATCHER_DEFAULT = 0, /* KNIT_DISPATCHER env, else per-thread for 1 worker */
    KNIT_DISPATCHER_PER_THREAD,
    KNIT_DISPATCHER_SERIAL_CHANNEL,
} knit_dispatcher_t;

typedef enum knit_steal {
    KNIT_STEAL_DEFAULT = 0, /* KNIT_STEAL env, else on for 2-31 thread workers with defaults */
    KNIT_STEAL_ON,
    KNIT_STEAL_OFF,
} knit_steal_t;

typedef enum knit_inline_position {
    KNIT_INLINE_LAST = 0,
    KNIT_INLINE_FIRST = 1
} knit_inline_position_t;

typedef struct knit_inliner_opts {
    bool enabled;                    /* add a lane that runs tasks on the host thread */
    knit_inline_position_t position; /* where it sits among the lanes (default last) */
    uint32_t batch_size;             /* calls run per progress step (0 = 1) */
    uint32_t dispatch_threshold;     /* in-flight calls of a task before the inline lane is
                                        eligible (0 or 1 = always eligible) */
} knit_inliner_opts_t;

typedef struct knit_payload_opts {
    uint64_t initial_bytes;     /* 0 = 4 MiB */
    uint64_t max_byte_length;   /* arena size per direction per lane; 0 = 64 MiB */
    uint64_t max_payload_bytes; /* per value; 0 = max_byte_length >> 3 */
} knit_payload_opts_t;

typedef struct knit_wait_opts {
    int64_t spin_ns; /* busy-wait budget before parking; 0 = the transport's default (knit:
                        50 us per lane; message transports: block at once, no polling),
                        < 0 = never spin */
    bool spin_only;  /* never park while calls are pending, any transport (benchmarks: label
                        spin-only figures); an idle knit_pool_progress still sleeps */
} knit_wait_opts_t;

/* A hook run in every worker before its tasks load; non-zero fails the worker's start-up (its
 * calls reject with KNIT_E_WORKER_STARTUP). */
typedef int (*knit_bootstrap_fn)(void *ctx, uint32_t worker_index);

typedef enum knit_shm_mode {
    KNIT_SHM_INHERIT = 0, /* the lane memory is a memfd handed to the child as fd 0 */
    KNIT_SHM_NAMED = 1,   /* a POSIX shm object the child opens by name */
} knit_shm_mode_t;

/*
 * A permission policy for process workers (knitting's `permission` option), enforced by the
 * kernel: Landlock for paths (and TCP on kernels that have it), seccomp for sockets and for
 * starting programs, and a filtered environment. The worker applies it after its start-up
 * (bootstrap hook, imported tasks loaded) and before it serves its first call; everything
 * after that, every task included, runs confined, and so does every program it may start.
 * docs/API.md, "Sandbox", has the details and the limits.
 *
 * The zero value is KNIT_SANDBOX_UNSAFE: no policy, as before this option existed. The strict
 * preset, knitting's default `{ mode: "strict" }`, is `(knit_sandbox_t){.mode =
 * KNIT_SANDBOX_STRICT}`: no file but /dev/null, no network, no programs, an empty environment.
 * Thread workers share the host's process and cannot be confined: a policy there is
 * KNIT_E_UNSUPPORTED.
 */
typedef enum knit_sandbox_mode {
    KNIT_SANDBOX_UNSAFE = 0, /* no policy (knitting's "unsafe") */
    KNIT_SANDBOX_STRICT = 1, /* deny what the policy does not allow */
} knit_sandbox_mode_t;

typedef struct knit_sandbox {
    knit_sandbox_mode_t mode;
    /* NULL-terminated lists of paths (absolute, or relative to the host's working directory;
     * each must exist when the worker starts). A directory covers everything beneath it. */
    const char *const *read;  /* read (and list); with allow_exec also execute */
    const char *const *write; /* read, write, create, remove, rename */
    const char *const *env;   /* names of the variables the worker keeps; the rest are cleared */
    bool allow_net;           /* sockets of every family; without it only Unix sockets */
    bool allow_exec;          /* execve/execveat (programs must also be readable: `read`) */
    /* Run with what this kernel can enforce instead of failing start-up when a part of the
     * policy cannot be (no Landlock, seccomp refused). Off: such a worker fails start-up with
     * KNIT_E_WORKER_STARTUP and a message that says what is missing. */
    bool best_effort;
} knit_sandbox_t;

typedef struct knit_process_opts {
    const char *program;       /* worker executable; NULL = this program (/proc/self/exe),
                                  whose main() must start with the knit_worker_process_main()
                                  guard */
    const char *const *prefix; /* NULL-terminated argv run before the program, e.g.
                                  {"taskset", "-c", "1", NULL} or {"bwrap", ..., NULL} */
    knit_shm_mode_t shared_memory;
    const char *name_prefix; /* named mode: at most 8 of [A-Za-z0-9_-]; default "knit" */
    bool keep_names;         /* named mode: do not unlink the objects at shutdown */
    bool no_respawn;         /* a worker that dies is not replaced */
    bool fork_exec;          /* start workers with fork+exec instead of posix_spawn */
    knit_sandbox_t sandbox;  /* the workers' permission policy; zero: none */
} knit_process_opts_t;

typedef struct knit_worker_opts {
    uint32_t hard_timeout_ms;         /* 0 = none; expiry rejects the call and shuts the pool */
    bool resolve_after_finishing_all; /* graceful shutdown waits for every submitted call */
    /* Bootstrap hook. Thread workers call `bootstrap`; process workers call the hook given to
     * knit_worker_process_main(), or the imported one when bootstrap_import_path is set. */
    knit_bootstrap_fn bootstrap;
    void *bootstrap_ctx;
    const char *bootstrap_import_path;
    const char *bootstrap_import_symbol; /* default "knit_bootstrap" */
    knit_process_opts_t process;         /* runtime = KNIT_RUNTIME_PROCESS */
} knit_worker_opts_t;

typedef struct knit_pool_opts {
    uint32_t threads; /* worker count (0 = 1) */
    knit_runtime_t runtime;
    knit_transport_t transport;
    knit_balancer_t balancer;
    knit_dispatcher_t dispatcher;
    knit_steal_t steal;
    uint32_t steal_region_lanes; /* power of two; 0 = the largest that leaves a spare region */
    knit_inliner_opts_t inliner;
    knit_payload_opts_t payload;
    uint32_t abort_capacity; /* abort ids per lane; 0 = 258 */
    knit_worker_opts_t worker;
    knit_wait_opts_t wait;
} knit_pool_opts_t;

/* Names as used on the command line and in results. */
const char *knit_balancer_name(knit_balancer_t b);
int knit_balancer_parse(const char *name, knit_balancer_t *out); /* accepts "robinRound" */
const char *knit_transport_name(knit_transport_t t); /* knit, pipe, unix, seqpacket, tcp, seq */
int knit_transport_parse(const char *name, knit_transport_t *out);
const char *knit_dispatcher_name(knit_dispatcher_t d);
int knit_dispatcher_parse(const char *name, knit_dispatcher_t *out); /* NULL out: INVAL */

/* --- pool ------------------------------------------------------------------------------------ */

/*
 * Create a pool running `tasks` (copied; names must be unique, at most 65 536). The workers
 * are started before this returns. Errors: KNIT_E_INVAL / KNIT_E_RANGE for bad options (see
 * knit_errmsg()), KNIT_E_SYS when a thread or mapping cannot be created. An enum field (runtime,
 * transport, balancer, dispatcher, steal, inliner.position, worker.process.shared_memory, a
 * task's on_timeout) that holds none of its type's values is KNIT_E_INVAL, and the message
 * names the field and the value.
 */
int knit_pool_create(
    const knit_pool_opts_t *opts, const knit_task_def_t *tasks, size_t ntasks, knit_pool_t **out);

/* Index of a task by name, or KNIT_E_NO_TASK (KNIT_E_INVAL for a NULL pool or name). */
int knit_task_index(const knit_pool_t *pool, const char *name);

/* Lanes: workers (+1 with the inline lane). Which topology was chosen. A NULL pool has 0
 * lanes, does not steal, and has the dispatcher KNIT_DISPATCHER_DEFAULT. */
uint32_t knit_pool_lanes(const knit_pool_t *pool);
bool knit_pool_stealing(const knit_pool_t *pool);
knit_dispatcher_t knit_pool_dispatcher(const knit_pool_t *pool);

typedef enum knit_shutdown_mode {
    KNIT_SHUTDOWN_IMMEDIATE = 0, /* in-flight calls reject with KNIT_E_SHUTDOWN */
    KNIT_SHUTDOWN_DRAIN = 1,     /* wait until every submitted call has settled, then close */
} knit_shutdown_mode_t;

/*
 * Close the pool: after `delay_ms` (during which calls are still accepted and served), or,
 * with KNIT_SHUTDOWN_DRAIN (also chosen by worker.resolve_after_finishing_all), once every
 * submitted call has settled. New calls then settle at once with KNIT_E_SHUTDOWN. Workers are
 * stopped and joined. A second call returns 0 and does nothing. KNIT_E_INVAL for a NULL pool.
 */
int knit_pool_shutdown(knit_pool_t *pool, knit_shutdown_mode_t mode, uint32_t delay_ms);

/* Shut down immediately if still open, then free everything. Futures the caller still holds
 * stay valid (settled) until released. NULL: does nothing. */
void knit_pool_destroy(knit_pool_t *pool);

/*
 * Drive the pool once: drain results, fire timeouts, flush the backlog, run inline calls, and
 * if nothing happened wait up to timeout_ns (-1 = until something happens, 0 = do not wait)
 * for an event. Returns the number of calls settled (0 when the time ran out), or a negative
 * error (KNIT_E_INVAL for a NULL pool).
 *
 * With nothing pending (no call unsettled, no callback due) the wait is a sleep, never a spin,
 * so an event loop may idle on this call: it returns once timeout_ns has passed, or earlier
 * when a worker dies or fails (a process worker that died is replaced before it returns; see
 * knit_pool_respawns). A worker's late answer to a call that already settled is handled
 * without ending the wait.
 *
 * -1 with nothing pending returns KNIT_E_AGAIN at once instead of blocking: no call can settle
 * until this thread makes one, and a worker may never die, so the wait could never end - the
 * thread would hang silently. An event loop that wants to idle passes a finite timeout.
 */
int knit_pool_progress(knit_pool_t *pool, int64_t timeout_ns);

/* Calls submitted and not yet settled (0 for a NULL pool). */
size_t knit_pool_pending(const knit_pool_t *pool);

/* Process runtime: the pid of worker `worker` (0 while it is being replaced, for threads, for
 * a worker index out of range, and for a NULL pool). */
int32_t knit_pool_worker_pid(const knit_pool_t *pool, uint32_t worker);

/* Process runtime: how many workers were replaced after dying (0 for a NULL pool). */
uint32_t knit_pool_respawns(const knit_pool_t *pool);

/* --- process workers ------------------------------------------------------------------------ */

/* True in a process started as a knit worker (KNIT_PROCESS_WORKER=1 in its environment). */
bool knit_is_worker_process(void);

/*
 * The "am I the main program?" guard for process workers that run the host's own executable.
 * Call it first in main(): in the host it returns KNIT_E_AGAIN at once; in a worker process it
 * reads the boot payload, maps the lane memory, runs `bootstrap` (may be NULL), checks that
 * `tasks` match the host's, serves calls until the host stops it, and returns the process exit
 * status (0 after a clean stop, 1 after a start-up failure, reported on stderr and to the host).
 *
 *     int main(int argc, char **argv) {
 *         int rc = knit_worker_process_main(tasks, ntasks, NULL, NULL);
 *         if (rc != KNIT_E_AGAIN)
 *             return rc;
 *         ... the host program ...
 */
int knit_worker_process_main(
    const knit_task_def_t *tasks, size_t ntasks, knit_bootstrap_fn bootstrap, void *bootstrap_ctx);

/* --- calls and futures ----------------------------------------------------------------------- */

/*
 * Call task `task` (an index from knit_task_index) with `arg`. On 0, *out is a new future (one
 * reference, released with knit_future_release). A call that fails before reaching a worker
 * (the value cannot be encoded, the pool is shut down, no abort id is free) still gets a future,
 * already settled with that error. Returns a negative code without a future only for invalid
 * arguments (KNIT_E_INVAL: a NULL pool or out; KNIT_E_NO_TASK: a task index out of range) or
 * when memory runs out. A NULL `arg` calls with UNDEFINED. `arg` is only borrowed for the
 * duration of knit_call, except that a MOVED value is consumed: a call that has to wait (its
 * lane full) keeps its own copy, so the caller may reuse the memory as soon as knit_call
 * returns.
 */
int knit_call(knit_pool_t *pool, int task, knit_value_t *arg, knit_future_t **out);

/* Same, by name (KNIT_E_INVAL for a NULL pool, task or out). */
int knit_call_name(knit_pool_t *pool, const char *task, knit_value_t *arg, knit_future_t **out);

/*
 * A call whose argument is another call's result: dispatched when `input` settles, with its
 * value; if `input` rejects, this call rejects with the same status and value. KNIT_E_INVAL for
 * a NULL pool, input or out, or an input from another pool.
 */
int knit_call_after(knit_pool_t *pool, int task, knit_future_t *input, knit_future_t **out);

/* n calls of one task; outs[i] receives each future. Stops at the first hard error (then
 * outs[i..n) are NULL). KNIT_E_INVAL for a NULL pool, or NULL args or outs with n > 0. */
int knit_call_batch(
    knit_pool_t *pool, int task, knit_value_t *args, size_t n, knit_future_t **outs);

/*
 * Wait until the future settles or timeout_ns passes (-1 = no limit, 0 = poll once). Returns
 * the settlement status: 0 resolved, a negative KNIT_E_... code rejected; KNIT_E_AGAIN if the
 * time ran out first. KNIT_E_INVAL for a NULL future.
 */
int knit_future_wait(knit_future_t *f, int64_t timeout_ns);

/* One non-blocking progress step; true once settled. A NULL future returns true - there is
 * nothing to wait for (knit_future_status(NULL) is KNIT_E_INVAL) - so a polling loop ends. */
bool knit_future_poll(knit_future_t *f);

/* KNIT_E_AGAIN while pending, else the settlement status. KNIT_E_INVAL for a NULL future. */
int knit_future_status(const knit_future_t *f);

/* The resolved value or the rejection value (an error, the task's rejection value, or
 * UNDEFINED); owned by the future (a small one lives in it: KNIT_VF_LENT), valid until the
 * future is released. NULL while pending, and for a NULL future. */
const knit_value_t *knit_future_value(const knit_future_t *f);

/* Move the value out (the caller then owns it; a small value lent by the future is copied
 * out). KNIT_E_AGAIN while pending; KNIT_E_NOMEM for a copy that failed; KNIT_E_INVAL (and
 * nothing moved) for a NULL future or out. */
int knit_future_take(knit_future_t *f, knit_value_t *out);

/* Run cb(f, ctx) once on the host thread when f settles (at once if it already has). Several
 * callbacks may be registered; they run in registration order. A NULL future has nothing to
 * settle: cb never runs. A NULL cb does nothing. */
void knit_future_on_settle(knit_future_t *f, void (*cb)(knit_future_t *f, void *ctx), void *ctx);

/* Ask an abort-aware call to stop: the worker sees knit_task_aborted() == true; the call still
 * settles with what the task returns. KNIT_E_INVAL for calls of tasks that are not abort-aware,
 * and for a NULL future. */
int knit_future_abort(knit_future_t *f);

/* Reject the call now with KNIT_E_ABORTED (the worker is signalled if the task is abort-aware;
 * its late result is discarded). No effect on a settled future. KNIT_E_INVAL for a NULL
 * future. */
int knit_future_cancel(knit_future_t *f);

/* The task index of the call (KNIT_E_INVAL for a NULL future). */
int knit_future_task(const knit_future_t *f);

/* Take and drop a reference; the last release frees the future. NULL: nothing happens. */
void knit_future_retain(knit_future_t *f);
void knit_future_release(knit_future_t *f);

#ifdef __cplusplus
}
#endif

#endif /* KNIT_KNIT_H */
