/*
 * knit-bench scenario `startup`: what a pool costs to start and to stop.
 *
 * Warm cases: a round starts a pool (kb_pool_create), calls the empty task once (an 8-byte
 * bytes argument) and waits for the reply: the latency histogram holds pool creation to first
 * reply. It then shuts the pool down and destroys it (knit_pool_shutdown + knit_pool_destroy);
 * the median and p99 of that time over the measured rounds go to the extra fields
 * shutdown_p50_ns and shutdown_p99_ns. These pools are started one after another in one
 * process, so from the second on they reuse what the first left warm (allocator arenas, lane
 * memory pages, the executable's pages).
 *
 * Cold cases (variant suffix "cold"): each sample is a fresh process. A round runs this
 * executable again (/proc/self/exe, posix_spawn) as
 *
 *     knit-bench --startup-sample <transport> <runtime> <workers> <variant>
 *
 * (variant "-", "inherit" or "named": the warm twin's), which creates the same pool the same
 * way, pinning included, makes the same call, shuts the pool down, prints "<first reply ns>
 * <shutdown ns>" on stdout and exits 0 (on failure: a message on stderr and a non-zero
 * status). The round records the first figure and adds the second to the shutdown fields; a
 * sample process that fails, or says nothing for 10 s (it is then killed), counts as an error.
 * Process start-up itself (exec, loading) is not in the figure, which is the pool's start in a
 * process that never had one. Samples: the runner's rounds, at least 10 (quick) or 100 (full:
 * enough for a p99; more while about 0.5 s lasts) over the repetitions, after one warm-up
 * sample.
 *
 * Cases: startup/<transport>/<runtime>/w<workers>/b1/p8[/<variant>]: thread workers (read
 * against thread-spawn), process workers with the lane memory handed over as fd 0 (variant
 * "inherit") and with named POSIX shared memory (variant "named"), both read against
 * process-spawn; each beside its cold twin (variants "cold", "inherit-cold", "named-cold",
 * read against the same reference); knit transport, 1 worker (full run: also 4 workers, and
 * the pipe transport).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "bench.h"
#include "sched_util.h"

#define START_PAYLOAD         8u
#define START_SAMPLE_ARG      "--startup-sample"
#define START_SAMPLE_EXE      "/proc/self/exe"
#define START_SAMPLE_LIMIT_MS 10000 /* a sample process silent this long is killed */
#define START_COLD_QUICK      10u   /* cold samples at least, over the repetitions */
#define START_COLD_FULL       100u
#define START_COLD_FULL_NS    500000000ull /* a full run's cold case: about this long */

extern char **environ;

typedef struct start_state {
    const kb_case_t *c;
    knit_pool_opts_t opts;
    kb_tracker_t calls;
    knit_hist_t *shutdown; /* measured rounds */
    json_t *extra;
    /* cold cases: the sample process's command line */
    char workers[16];
    char *argv[7];
} start_state_t;

static const uint8_t start_payload[START_PAYLOAD];

/* The pool options of a case: kb_pool_opts, named shared memory for the "named" variants. */
static void start_opts(const kb_case_t *c, knit_pool_opts_t *o)
{
    kb_pool_opts(c, o);
    if (!strncmp(c->variant, "named", 5))
        o->worker.process.shared_memory = KNIT_SHM_NAMED;
}

/* Create a pool, call the empty task once, wait for the reply (in calls->v[0], timed from
 * just before the creation). 0 with the pool in *out, or a negative code (no pool). */
static int first_reply(
    const kb_case_t *c, const knit_pool_opts_t *o, kb_tracker_t *calls, knit_pool_t **out)
{
    knit_pool_t *pool;
    kb_track_reset(calls);
    uint64_t t0 = kb_now_ns();
    int rc = kb_pool_create(c, o, &pool);
    if (rc < 0)
        return rc;
    knit_value_t v = knit_v_bytes(start_payload, START_PAYLOAD);
    rc = kb_track_send(pool, calls, KB_TASK_EMPTY, &v, t0);
    if (rc >= 0)
        rc = kb_track_drain(pool, calls);
    if (rc < 0) {
        knit_pool_destroy(pool); /* settles what is left, running the callbacks */
        return rc;
    }
    *out = pool;
    return 0;
}

/* Shut the pool down and destroy it; the time it took into *ns. */
static int stop_pool(knit_pool_t *pool, uint64_t *ns)
{
    uint64_t t0 = kb_now_ns();
    int rc = knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0);
    knit_pool_destroy(pool);
    *ns = kb_now_ns() - t0;
    return rc;
}

static void note_shutdown(start_state_t *st, uint64_t ns)
{
    knit_hist_record(st->shutdown, ns);
    kb_extra_real(st->extra, "shutdown_p50_ns", (double)knit_hist_percentile(st->shutdown, 50.0));
    kb_extra_real(st->extra, "shutdown_p99_ns", (double)knit_hist_percentile(st->shutdown, 99.0));
}

static void count_sample(kb_rep_t *rep, uint64_t ns)
{
    kb_record(rep, ns);
    rep->ops++;
    rep->bytes += START_PAYLOAD;
}

/* A warm round: a pool started in this process. */
static int start_round(void *arg, kb_rep_t *rep)
{
    start_state_t *st = arg;
    knit_pool_t *pool;
    int rc = first_reply(st->c, &st->opts, &st->calls, &pool);
    if (rc < 0)
        return rc;
    const kb_tracked_t *t = &st->calls.v[0];
    if (t->status == 0)
        count_sample(rep, t->t1 - t->t0);
    else
        rep->errors++;
    uint64_t ns;
    rc = stop_pool(pool, &ns);
    if (rc < 0 || rep->warmup)
        return rc;
    note_shutdown(st, ns);
    return 0;
}

/* --- cold samples: the parent ------------------------------------------------------------ */

/* Read the sample process's stdout to its end into buf (NUL-terminated; what does not fit is
 * read and dropped). false when it stayed silent for START_SAMPLE_LIMIT_MS. */
static bool read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char scratch[256];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int k = poll(&p, 1, START_SAMPLE_LIMIT_MS);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        bool room = n + 1 < cap;
        ssize_t got = room ? read(fd, buf + n, cap - 1 - n) : read(fd, scratch, sizeof scratch);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            buf[n] = 0;
            return got == 0;
        }
        n += room ? (size_t)got : 0;
    }
    buf[n] = 0;
    return false;
}

/* Run one sample process, its stdout into buf. 0 with its wait status in *status (-1 when it
 * was killed for its silence), or a negative code when it could not be run. */
static int run_sample(char *const argv[], char *buf, size_t cap, int *status)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return knit__err(KNIT_E_SYS, "startup: pipe2: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, START_SAMPLE_EXE, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return knit__err(
            KNIT_E_SYS, "startup: posix_spawn(%s): %s", START_SAMPLE_EXE, strerror(rc));
    }
    bool done = read_all(fds[0], buf, cap);
    close(fds[0]);
    if (!done)
        kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return knit__err(KNIT_E_SYS, "startup: waitpid(%d): %s", (int)pid, strerror(errno));
    if (!done)
        *status = -1;
    return 0;
}

/* A cold round: one sample process. */
static int cold_round(void *arg, kb_rep_t *rep)
{
    start_state_t *st = arg;
    char out[128];
    int status;
    int rc = run_sample(st->argv, out, sizeof out, &status);
    if (rc < 0)
        return rc;
    unsigned long long first, down;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0
        || sscanf(out, "%llu %llu", &first, &down) != 2) {
        rep->errors++;
        return 0;
    }
    count_sample(rep, first);
    if (!rep->warmup)
        note_shutdown(st, down);
    return 0;
}

/* The sample process's command line for case `c` of warm variant `warm` ("" = none). */
static void cold_argv(start_state_t *st, const kb_case_t *c, const char *warm)
{
    snprintf(st->workers, sizeof st->workers, "%u", c->workers);
    char *const argv[] = {(char *)"knit-bench", (char *)START_SAMPLE_ARG, (char *)c->transport,
        (char *)c->runtime, st->workers, (char *)(warm[0] ? warm : "-"), NULL};
    memcpy(st->argv, argv, sizeof argv);
}

/* A cold case's plan: one warm-up sample, then at least START_COLD_QUICK / START_COLD_FULL
 * samples over the repetitions (full run: more while its time lasts). */
static kb_plan_t cold_plan(const kb_ctx_t *ctx, const char *floor_ref)
{
    uint32_t reps = kb_repetitions(ctx) ? kb_repetitions(ctx) : 1;
    uint32_t want = kb_quick(ctx) ? START_COLD_QUICK : START_COLD_FULL;
    kb_plan_t plan = {.min_rounds = (want + reps - 1) / reps,
        .rep_ns = 1,
        .warmup_ns = 1,
        .warmup_rounds = 1,
        .floor_ref = floor_ref};
    if (!kb_quick(ctx))
        plan.rep_ns = kb_rep_budget(ctx, START_COLD_FULL_NS, 1);
    return plan;
}

/* --- cases --------------------------------------------------------------------------------- */

/* One case, warm or (warm_variant non-NULL) its cold twin. */
static int start_case(
    kb_ctx_t *ctx, const kb_case_t *c, const char *floor_ref, const char *warm_variant)
{
    start_state_t st = {.c = c};
    start_opts(c, &st.opts);
    st.shutdown = malloc(sizeof *st.shutdown);
    st.extra = json_object();
    if (!st.shutdown || !st.extra || kb_track_init(&st.calls, 1) < 0) {
        free(st.shutdown);
        json_decref(st.extra);
        kb_track_free(&st.calls);
        return knit__err(KNIT_E_NOMEM, "startup: no memory");
    }
    knit_hist_init(st.shutdown);
    if (warm_variant) {
        cold_argv(&st, c, warm_variant);
        kb_plan_t plan = cold_plan(ctx, floor_ref);
        kb_run_updating_case(ctx, c, &plan, cold_round, &st, st.extra);
    } else {
        kb_plan_t plan = {.min_rounds = 3, .warmup_rounds = 1, .floor_ref = floor_ref};
        if (!kb_quick(ctx))
            plan.rep_ns = kb_rep_budget(ctx, 1200000000ull, 1);
        kb_run_updating_case(ctx, c, &plan, start_round, &st, st.extra);
    }
    kb_track_free(&st.calls);
    free(st.shutdown);
    json_decref(st.extra);
    return 0;
}

/* The warm case of a kind, then its cold twin. */
static int start_kind(kb_ctx_t *ctx, kb_case_t *c, const char *variant, const char *floor_ref)
{
    snprintf(c->variant, sizeof c->variant, "%s", variant);
    if (!kb_want(ctx, c))
        return 0;
    int rc = start_case(ctx, c, floor_ref, NULL);
    if (rc < 0)
        return rc;
    snprintf(c->variant, sizeof c->variant, "%s%scold", variant, variant[0] ? "-" : "");
    return start_case(ctx, c, floor_ref, variant);
}

int kb_scenario_startup(kb_ctx_t *ctx)
{
    static const struct {
        const char *runtime, *variant, *floor;
    } kinds[] = {
        {"thread", "", "thread-spawn"},
        {"process", "inherit", "process-spawn"},
        {"process", "named", "process-spawn"},
    };
    static const char *const transports[] = {"knit", "pipe"};
    static const uint32_t workers[] = {1, 4};
    bool quick = kb_quick(ctx);
    for (size_t t = 0; t < (quick ? 1 : 2); t++) {
        for (size_t w = 0; w < (quick ? 1 : 2); w++) {
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                kb_case_t c;
                kb_case_init(&c, "startup", transports[t], kinds[k].runtime);
                c.workers = workers[w];
                int rc = start_kind(ctx, &c, kinds[k].variant, kinds[k].floor);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* --- cold samples: the sample process ------------------------------------------------------ */

/* The case a sample process was asked for: argv[2..5] = transport runtime workers variant. */
static int sample_case(int argc, char **argv, kb_case_t *c)
{
    knit_transport_t t;
    if (argc != 6)
        return knit__err(KNIT_E_INVAL,
            "usage: knit-bench " START_SAMPLE_ARG " TRANSPORT RUNTIME WORKERS VARIANT");
    if (knit_transport_parse(argv[2], &t) < 0)
        return knit__err(KNIT_E_INVAL, "unknown transport '%s'", argv[2]);
    if (strcmp(argv[3], "thread") != 0 && strcmp(argv[3], "process") != 0)
        return knit__err(KNIT_E_INVAL, "unknown runtime '%s' (thread, process)", argv[3]);
    char *end;
    errno = 0;
    unsigned long workers = strtoul(argv[4], &end, 10);
    if (errno || *end || workers < 1 || workers > 1024)
        return knit__err(KNIT_E_INVAL, "workers must be 1 to 1024, not '%s'", argv[4]);
    const char *v = argv[5];
    if (strcmp(v, "-") != 0 && strcmp(v, "inherit") != 0 && strcmp(v, "named") != 0)
        return knit__err(KNIT_E_INVAL, "unknown variant '%s' (-, inherit, named)", v);
    kb_case_init(c, "startup", argv[2], argv[3]);
    c->workers = (uint32_t)workers;
    snprintf(c->variant, sizeof c->variant, "%s", strcmp(v, "-") ? v : "");
    return 0;
}

/* One cold sample: the pool's first reply and its shutdown, in ns, into first and down. */
static int cold_sample(const kb_case_t *c, uint64_t *first, uint64_t *down)
{
    knit_pool_opts_t o;
    kb_tracker_t calls;
    knit_pool_t *pool;
    start_opts(c, &o);
    int rc = kb_track_init(&calls, 1);
    if (rc == 0)
        rc = first_reply(c, &o, &calls, &pool);
    if (rc < 0) {
        kb_track_free(&calls);
        return rc;
    }
    const kb_tracked_t *t = &calls.v[0];
    int status = t->status;
    *first = t->t1 - t->t0;
    rc = stop_pool(pool, down);
    kb_track_free(&calls);
    if (status != 0)
        return knit__err(status, "the first call failed: %s", knit_strerror(status));
    return rc;
}

int kb_startup_sample_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], START_SAMPLE_ARG) != 0)
        return KNIT_E_AGAIN;
    kb_case_t c;
    uint64_t first = 0, down = 0;
    int rc = sample_case(argc, argv, &c);
    int status = rc < 0 ? 2 : 1; /* as the command line: 2 for bad arguments */
    if (rc == 0)
        rc = cold_sample(&c, &first, &down);
    if (rc < 0) {
        fprintf(stderr, "knit-bench " START_SAMPLE_ARG ": %s\n", knit_errmsg());
        return status;
    }
    printf("%llu %llu\n", (unsigned long long)first, (unsigned long long)down);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "knit-bench " START_SAMPLE_ARG ": writing stdout: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
