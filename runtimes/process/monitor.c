/*
 * knit runtimes/process - the monitor: one thread per process pool, asleep in poll() on the
 * children's pidfds (and an eventfd for changes). When a child exits it reaps it (no zombies),
 * records how it ended, marks the lane dead and rings the lane's doorbell, so a host waiting
 * for that lane's results wakes at once and settles its calls with KNIT_E_WORKER_DIED.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "base/futex.h"
#include "runtimes/process/process.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct knit__monitor {
    pthread_t thread;
    int efd;
    pthread_mutex_t mu;
    knit__runner_t **watch; /* runners whose child we reap */
    uint32_t nwatch, cap;
    bool stop;
};

/* Reap a runner's child (mu held) and tell the host. */
static void reap(knit__runner_t *r)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)r->pidfd, &si, WEXITED) == 0) {
        r->exit_code = si.si_code == CLD_EXITED ? si.si_status : -1;
        r->exit_signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
    }
    /* release: the exit code is written before `died`, which the host acquires. */
    atomic_store_explicit(&r->died, 1, memory_order_release);
    if (r->bell_seq) {
        /* release: a host that reads the new value also sees `died` (see the host's park) */
        atomic_fetch_add_explicit(r->bell_seq, 1, memory_order_release);
        knit__futex_wake(r->bell_seq, 1);
    }
    if (r->death_bell) { /* in the host's own memory: a host asleep on it always hears */
        atomic_fetch_add_explicit(r->death_bell, 1, memory_order_release);
        knit__futex_wake(r->death_bell, 1);
    }
    if (r->wake_fd >= 0) { /* a host waiting in poll() (message transports) */
        uint64_t one = 1;
        if (write(r->wake_fd, &one, sizeof one) < 0) { /* EAGAIN: it is awake already */
        }
    }
}

static void *monitor_main(void *arg)
{
    knit__monitor_t *m = arg;
    struct pollfd *fds = NULL;
    knit__runner_t **runners = NULL;
    uint32_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        if (m->stop) {
            pthread_mutex_unlock(&m->mu);
            break;
        }
        if (m->nwatch + 1 > cap) {
            cap = m->nwatch + 16;
            free(fds);
            free(runners);
            fds = malloc(cap * sizeof *fds);
            runners = malloc(cap * sizeof *runners);
            if (!fds || !runners)
                cap = 0; /* retry the allocation on the next pass */
        }
        uint32_t n = 0;
        if (fds && runners) {
            fds[n++] = (struct pollfd) {.fd = m->efd, .events = POLLIN};
            for (uint32_t i = 0; i < m->nwatch; i++) {
                runners[n] = m->watch[i];
                fds[n++] = (struct pollfd) {.fd = m->watch[i]->pidfd, .events = POLLIN};
            }
        }
        pthread_mutex_unlock(&m->mu);
        if (!n || poll(fds, n, -1) < 0) {
            if (!n || errno != EINTR)
                usleep(1000); /* out of memory or a poll error: retry shortly */
            continue;
        }
        if (fds[0].revents) {
            uint64_t v;
            if (read(m->efd, &v, sizeof v) < 0) {
                /* nothing to do: the counter is only a wake-up */
            }
        }
        pthread_mutex_lock(&m->mu);
        for (uint32_t i = 1; i < n; i++) {
            if (!fds[i].revents)
                continue;
            for (uint32_t k = 0; k < m->nwatch; k++) {
                if (m->watch[k] != runners[i])
                    continue;
                reap(runners[i]);
                m->watch[k] = m->watch[--m->nwatch];
                break;
            }
        }
        pthread_mutex_unlock(&m->mu);
    }
    free(fds);
    free(runners);
    return NULL;
}

static void poke(knit__monitor_t *m)
{
    uint64_t one = 1;
    if (write(m->efd, &one, sizeof one) < 0) {
        /* the counter saturated: the monitor is awake anyway */
    }
}

int knit__monitor_watch(knit__runtime_t *rt, knit__runner_t *r)
{
    knit__monitor_t *m = rt->monitor;
    if (!m) {
        m = calloc(1, sizeof *m);
        if (!m)
            return knit__err(KNIT_E_NOMEM, "process monitor");
        m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->efd < 0) {
            free(m);
            return knit__err(KNIT_E_SYS, "eventfd: %s", strerror(errno));
        }
        pthread_mutex_init(&m->mu, NULL);
        int rc = pthread_create(&m->thread, NULL, monitor_main, m);
        if (rc != 0) {
            close(m->efd);
            free(m);
            return knit__err(
                KNIT_E_SYS, "pthread_create for the process monitor: %s", strerror(rc));
        }
        rt->monitor = m;
    }
    pthread_mutex_lock(&m->mu);
    if (m->nwatch == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 8;
        knit__runner_t **w = realloc(m->watch, cap * sizeof *w);
        if (!w) {
            pthread_mutex_unlock(&m->mu);
            return knit__err(KNIT_E_NOMEM, "process monitor");
        }
        m->watch = w;
        m->cap = cap;
    }
    m->watch[m->nwatch++] = r;
    pthread_mutex_unlock(&m->mu);
    poke(m);
    return 0;
}

bool knit__monitor_unwatch(knit__runtime_t *rt, knit__runner_t *r)
{
    knit__monitor_t *m = rt->monitor;
    bool found = false;
    if (!m)
        return false;
    pthread_mutex_lock(&m->mu);
    for (uint32_t k = 0; k < m->nwatch; k++) {
        if (m->watch[k] == r) {
            m->watch[k] = m->watch[--m->nwatch];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    poke(m);
    return found;
}

void knit__monitor_sync(knit__runtime_t *rt)
{
    knit__monitor_t *m = rt->monitor;
    if (m) {
        /* reap() runs under mu: once we hold it, a reap that set `died` has finished */
        pthread_mutex_lock(&m->mu);
        pthread_mutex_unlock(&m->mu);
    }
}

void knit__monitor_stop(knit__runtime_t *rt)
{
    knit__monitor_t *m = rt->monitor;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_mutex_unlock(&m->mu);
    poke(m);
    pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->mu);
    close(m->efd);
    free(m->watch);
    free(m);
    rt->monitor = NULL;
}
