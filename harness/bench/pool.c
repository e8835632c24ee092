/*
 * knit-bench - pools for the scenarios: the task table every knit-bench pool runs, options
 * from a case, CPU placement (host on CPU 0, workers on the others when there are enough),
 * clocks and CPU accounting.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/spin.h"
#include "run.h"

const char *const kb_transport_names[] = {"knit", "pipe", "unix", "seqpacket", "tcp", "seq", NULL};
const char *const kb_runtime_names[] = {"thread", "process", NULL};

uint64_t kb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

unsigned kb_cpus(void)
{
    return knit__cpus(); /* the count the pool decides its spinning by */
}

/* --- tasks --------------------------------------------------------------------------------- */

static int task_burn(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    uint64_t ns = arg->kind == KNIT_KIND_INT64 && arg->u.i64 > 0 ? (uint64_t)arg->u.i64 : 0;
    uint64_t end = kb_now_ns() + ns;
    while (kb_now_ns() < end)
        __asm__ volatile("" ::: "memory");
    *result = knit_v_int64((int64_t)knit_task_worker(ctx));
    return 0;
}

static int task_echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static int task_empty(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_null();
    return 0;
}

static bool is_prime(uint64_t n)
{
    if (n < 2)
        return false;
    for (uint64_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

static int task_primes(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    if (arg->kind != KNIT_KIND_INT64 || arg->u.i64 < 0) {
        *result = knit_v_str("primes wants an int64 start << 32 | count");
        return KNIT_TASK_REJECT;
    }
    uint64_t start = (uint64_t)arg->u.i64 >> 32, count = (uint64_t)arg->u.i64 & 0xFFFFFFFFu;
    int64_t n = 0;
    for (uint64_t i = start; i < start + count; i++)
        n += is_prime(i);
    *result = knit_v_int64(n);
    return 0;
}

static int task_who(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)arg;
    *result = knit_v_int64((int64_t)knit_task_worker(ctx));
    return 0;
}

/* Sorted by name: the pool indexes tasks in name order, which enum kb_task follows. */
static const knit_task_def_t kb_tasks[KB_TASK_COUNT_] = {
    [KB_TASK_BURN] = {.name = "burn", .fn = task_burn},
    [KB_TASK_ECHO] = {.name = "echo", .fn = task_echo},
    [KB_TASK_ECHO_IN_PLACE] = {.name = "echo_in_place", .fn = task_echo, .arg_in_place = true},
    [KB_TASK_EMPTY] = {.name = "empty", .fn = task_empty},
    [KB_TASK_PRIMES] = {.name = "primes", .fn = task_primes},
    [KB_TASK_WHO] = {.name = "who", .fn = task_who},
};

/* --- placement ----------------------------------------------------------------------------- */

static bool pin_to(pthread_t t, unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(t, sizeof set, &set) == 0;
}

/* Bootstrap hook (thread and process workers): pin worker i to CPU 1 + i % (cpus - 1) when
 * the pool asked for it (ctx non-NULL on threads; KB_PIN in the environment of processes). */
static int pin_worker(void *ctx, uint32_t index)
{
    unsigned cpus = kb_cpus();
    bool want = ctx != NULL || getenv("KB_PIN") != NULL;
    if (want && cpus >= 2)
        pin_to(pthread_self(), 1u + index % (cpus - 1u));
    return 0;
}

static bool pinned_case(const kb_case_t *c)
{
    return kb_cpus() > c->workers;
}

const char *kb_placement(const kb_case_t *c)
{
    static char buf[64];
    if (!pinned_case(c))
        return "unpinned";
    unsigned cpus = kb_cpus();
    if (c->workers <= 1 || cpus == 2)
        snprintf(buf, sizeof buf, "host:cpu0,workers:cpu1");
    else
        snprintf(buf, sizeof buf, "host:cpu0,workers:cpu1-%u", cpus - 1);
    return buf;
}

/* Pin the calling (host) thread to CPU 0, or release it to every CPU. */
static void place_host(bool pin)
{
    if (pin) {
        pin_to(pthread_self(), 0);
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned i = 0; i < kb_cpus() && i < CPU_SETSIZE; i++)
        CPU_SET(i, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* --- cases and pools ----------------------------------------------------------------------- */

void kb_case_init(kb_case_t *c, const char *scenario, const char *transport, const char *runtime)
{
    memset(c, 0, sizeof *c);
    c->scenario = scenario;
    snprintf(c->transport, sizeof c->transport, "%s", transport);
    snprintf(c->runtime, sizeof c->runtime, "%s", runtime);
    snprintf(c->balancer, sizeof c->balancer, "-");
    c->workers = 1;
    c->batch = 1;
    c->payload_bytes = 8;
    snprintf(c->wait, sizeof c->wait, "%s", kb_default_wait(transport));
}

void kb_pool_opts(const kb_case_t *c, knit_pool_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->threads = c->workers ? c->workers : 1;
    knit_transport_parse(c->transport, &o->transport);
    o->runtime = strcmp(c->runtime, "process") ? KNIT_RUNTIME_THREAD : KNIT_RUNTIME_PROCESS;
    if (!strcmp(c->balancer, "steal")) {
        o->steal = KNIT_STEAL_ON;
    } else if (strcmp(c->balancer, "-") != 0) {
        knit_balancer_parse(c->balancer, &o->balancer);
        o->steal = KNIT_STEAL_OFF;
    }
    if (!strcmp(c->wait, "spin"))
        o->wait.spin_only = true;
    else if (!strcmp(c->wait, "block"))
        o->wait.spin_ns = -1; /* knit: park at once; message transports: their default */
    else if (!strcmp(c->wait, "adaptive") && !kb_shared_memory(c->transport))
        o->wait.spin_ns = kb_adaptive_spin_ns(o->threads); /* poll as long as knit spins */
}

int64_t kb_adaptive_spin_ns(uint32_t workers)
{
    return 50000 * (int64_t)(workers ? workers : 1); /* knit's default: 50 us per lane */
}

bool kb_shared_memory(const char *transport)
{
    return !strcmp(transport, "knit") || !strcmp(transport, "seq");
}

const char *kb_default_wait(const char *transport)
{
    return kb_shared_memory(transport) ? "adaptive" : "block";
}

int kb_pool_create(const kb_case_t *c, const knit_pool_opts_t *o_in, knit_pool_t **out)
{
    knit_pool_opts_t o = *o_in;
    bool pin = pinned_case(c);
    static int pin_requested;
    if (o.runtime == KNIT_RUNTIME_THREAD) { /* process workers run the guard's hook */
        o.worker.bootstrap = pin_worker;
        o.worker.bootstrap_ctx = pin ? &pin_requested : NULL;
    }
    if (pin)
        setenv("KB_PIN", "1", 1); /* process workers inherit it */
    else
        unsetenv("KB_PIN");
    /* Create with the host free to run anywhere: a thread inherits its creator's mask, and a
     * worker born on CPU 0 would have to migrate to CPU 1 in its bootstrap. */
    place_host(false);
    int rc = knit_pool_create(&o, kb_tasks, KB_TASK_COUNT_, out);
    place_host(pin);
    return rc;
}

int kb_worker_guard(void)
{
    return knit_worker_process_main(kb_tasks, KB_TASK_COUNT_, pin_worker, NULL);
}

/* --- CPU time ------------------------------------------------------------------------------ */

/* CPU time of one process in ns: the sum over its threads of /proc/<pid>/task/<tid>/schedstat's
 * first field (time on a CPU, in ns); 0 when it is gone. */
static uint64_t proc_cpu_ns(const char *pid)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t sum = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%s/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(path, "re");
        unsigned long long ns = 0;
        if (f) {
            if (fscanf(f, "%llu", &ns) == 1)
                sum += ns;
            fclose(f);
        }
    }
    closedir(d);
    return sum;
}

/* Add the CPU time of the children listed in /proc/self/task/<tid>/children. */
static uint64_t children_cpu_ns(void)
{
    uint64_t sum = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], list[4096];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(list, 1, sizeof list - 1, f);
        fclose(f);
        list[n] = 0;
        for (char *save = NULL, *tok = strtok_r(list, " \n", &save); tok;
             tok = strtok_r(NULL, " \n", &save))
            sum += proc_cpu_ns(tok);
    }
    closedir(d);
    return sum;
}

static uint64_t rusage_ns(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull
        + (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* This process, its children that were reaped (RUSAGE_CHILDREN: a worker that exited keeps
 * counting), and its live children (zombies included, until they are reaped). */
uint64_t kb_cpu_ns(void)
{
    return rusage_ns(RUSAGE_SELF) + rusage_ns(RUSAGE_CHILDREN) + children_cpu_ns();
}
