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
    knit__lane_t **watch; /* lanes whose child we reap */
    uint32_t nwatch, cap;
    bool stop;
};

/* Reap a lane's child (mu held) and tell the host. */
static void reap(knit__lane_t *lane)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)lane->pidfd, &si, WEXITED) == 0) {
        lane->exit_code = si.si_code == CLD_EXITED ? si.si_status : -1;
        lane->exit_signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
    }
    /* release: the exit code is written before `died`, which the host acquires. */
    atomic_store_explicit(&lane->died, 1, memory_order_release);
    if (lane->bell.seq) {
        /* release: a host that reads the new value also sees `died` (see park_host) */
        atomic_fetch_add_explicit(lane->bell.seq, 1, memory_order_release);
        knit__futex_wake(lane->bell.seq, 1);
    }
    if (lane->wake_fd >= 0) { /* a host waiting in poll() (message transports) */
        uint64_t one = 1;
        if (write(lane->wake_fd, &one, sizeof one) < 0) { /* EAGAIN: it is awake already */
        }
    }
}

static void *monitor_main(void *arg)
{
    knit__monitor_t *m = arg;
    struct pollfd *fds = NULL;
    knit__lane_t **lanes = NULL;
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
            free(lanes);
            fds = malloc(cap * sizeof *fds);
            lanes = malloc(cap * sizeof *lanes);
            if (!fds || !lanes)
                cap = 0; /* retry the allocation on the next pass */
        }
        uint32_t n = 0;
        if (fds && lanes) {
            fds[n++] = (struct pollfd) {.fd = m->efd, .events = POLLIN};
            for (uint32_t i = 0; i < m->nwatch; i++) {
                lanes[n] = m->watch[i];
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
                if (m->watch[k] != lanes[i])
                    continue;
                reap(lanes[i]);
                m->watch[k] = m->watch[--m->nwatch];
                break;
            }
        }
        pthread_mutex_unlock(&m->mu);
    }
    free(fds);
    free(lanes);
    return NULL;
}

static void poke(knit__monitor_t *m)
{
    uint64_t one = 1;
    if (write(m->efd, &one, sizeof one) < 0) {
        /* the counter saturated: the monitor is awake anyway */
    }
}

int knit__monitor_watch(knit_pool_t *p, knit__lane_t *lane)
{
    knit__monitor_t *m = p->monitor;
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
        p->monitor = m;
    }
    pthread_mutex_lock(&m->mu);
    if (m->nwatch == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 8;
        knit__lane_t **w = realloc(m->watch, cap * sizeof *w);
        if (!w) {
            pthread_mutex_unlock(&m->mu);
            return knit__err(KNIT_E_NOMEM, "process monitor");
        }
        m->watch = w;
        m->cap = cap;
    }
    m->watch[m->nwatch++] = lane;
    pthread_mutex_unlock(&m->mu);
    poke(m);
    return 0;
}

bool knit__monitor_unwatch(knit_pool_t *p, knit__lane_t *lane)
{
    knit__monitor_t *m = p->monitor;
    bool found = false;
    if (!m)
        return false;
    pthread_mutex_lock(&m->mu);
    for (uint32_t k = 0; k < m->nwatch; k++) {
        if (m->watch[k] == lane) {
            m->watch[k] = m->watch[--m->nwatch];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    poke(m);
    return found;
}

void knit__monitor_sync(knit_pool_t *p)
{
    knit__monitor_t *m = p->monitor;
    if (m) {
        /* reap() runs under mu: once we hold it, a reap that set `died` has finished */
        pthread_mutex_lock(&m->mu);
        pthread_mutex_unlock(&m->mu);
    }
}

void knit__monitor_stop(knit_pool_t *p)
{
    knit__monitor_t *m = p->monitor;
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
    p->monitor = NULL;
}
