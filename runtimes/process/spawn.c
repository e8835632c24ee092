/*
 * knit runtimes/process - the host side: name the lane memory, build the boot payload, start
 * the child (posix_spawn by default, fork+exec on request), and stop and reap it.
 *
 * Only fd 0 is inherited on purpose: in inherit mode it is the lane memfd, in named mode
 * /dev/null; with a message transport fds 3 and 4 carry the worker's requests and results. Every
 * descriptor knit creates is close-on-exec (memfd MFD_CLOEXEC, shm_open, pidfds, the monitor's
 * eventfd), so nothing else leaks into workers or their children.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "runtimes/process/process.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define STOP_GRACE_MS 2000 /* a stopped worker that does not exit by then is killed */

extern char **environ;

struct knit__runner {
    /* Marks a lane whose child is running. The child's pid, pidfd and exit status live in
     * the lane itself, where the monitor thread finds them. */
    int marker;
};

int knit__process_named_memory(knit_pool_t *p, knit__lane_t *lane)
{
    const char *prefix = p->opts.worker.process.name_prefix;
    char clean[9] = "knit";
    if (prefix) {
        size_t n = 0;
        for (; prefix[n] && n < 8; n++) {
            char c = prefix[n];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || c == '_' || c == '-';
            clean[n] = ok ? c : '_';
        }
        clean[n] = 0;
        if (n == 0)
            strcpy(clean, "knit");
    }
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        return knit__err(KNIT_E_SYS, "getrandom for a shared memory name: %s", strerror(errno));
    snprintf(lane->shm_name, sizeof lane->shm_name, "/%s-%016llx", clean, (unsigned long long)r);
    return knit__shm_lane_create_named(&lane->mem, &p->lane_cfg, lane->shm_name);
}

/* environ without earlier knit worker variables, plus ours. */
static char **worker_env(const char *boot)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    char *bootvar = malloc(strlen(KNIT__ENV_BOOT) + strlen(boot) + 2);
    if (!env || !bootvar) {
        free(env);
        free(bootvar);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], KNIT__ENV_WORKER, strlen(KNIT__ENV_WORKER)) != 0)
            env[k++] = environ[i];
    env[k++] = KNIT__ENV_WORKER "=1";
    sprintf(bootvar, "%s=%s", KNIT__ENV_BOOT, boot);
    env[k++] = bootvar;
    env[k] = NULL;
    return env;
}

static char **worker_argv(const knit_pool_t *p)
{
    const char *const *prefix = p->opts.worker.process.prefix;
    size_t np = 0;
    while (prefix && prefix[np])
        np++;
    char **argv = calloc(np + 2, sizeof *argv);
    if (!argv)
        return NULL;
    for (size_t i = 0; i < np; i++)
        argv[i] = (char *)prefix[i];
    argv[np]
        = p->opts.worker.process.program ? (char *)p->opts.worker.process.program : p->self_exe;
    return argv;
}

/* `link` (message transports): the worker's descriptors, at 5 or above, become fds 3 and 4. */
static int spawn_posix(char **argv, char **env, int lane_fd, const int link[2], pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (lane_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, lane_fd, 0); /* clears close-on-exec on fd 0 */
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    for (int i = 0; link[0] >= 0 && i < 2; i++)
        posix_spawn_file_actions_adddup2(&fa, link[i], KNIT__LINK_FD_RX + i);
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static int spawn_fork(char **argv, char **env, int lane_fd, const int link[2], pid_t *pid)
{
    pid_t c = fork();
    if (c < 0)
        return errno;
    if (c == 0) {
        int fd0 = lane_fd >= 0 ? lane_fd : open("/dev/null", O_RDONLY);
        /* dup2 onto itself keeps close-on-exec: clear it by hand when fd 0 already is it */
        if (fd0 < 0 || (fd0 == 0 ? fcntl(0, F_SETFD, 0) : dup2(fd0, 0)) < 0)
            _exit(127);
        for (int i = 0; link[0] >= 0 && i < 2; i++)
            if (dup2(link[i], KNIT__LINK_FD_RX + i) < 0)
                _exit(127);
        execvpe(argv[0], argv, env);
        _exit(127);
    }
    *pid = c;
    return 0;
}

int knit__process_start(knit_pool_t *p, knit__lane_t *lane)
{
    char *boot = NULL;
    int rc = knit__boot_encode(p, lane, &boot);
    if (rc < 0)
        return rc;
    char **env = worker_env(boot);
    char **argv = worker_argv(p);
    knit__runner_t *r = calloc(1, sizeof *r);
    if (!env || !argv || !r) {
        rc = knit__err(KNIT_E_NOMEM, "starting worker %u", lane->index);
    } else {
        pid_t pid = -1;
        int lane_fd = lane->shm_name[0] ? -1 : lane->mem.fd;
        int link[2] = {-1, -1}, e = 0;
        for (int i = 0; lane->worker_fds[0] >= 0 && i < 2 && !e; i++) {
            /* above fds 3 and 4, so the dup2s in the child cannot overwrite each other */
            link[i] = fcntl(lane->worker_fds[i], F_DUPFD_CLOEXEC, 5);
            e = link[i] < 0 ? errno : 0;
        }
        if (!e)
            e = p->opts.worker.process.fork_exec ? spawn_fork(argv, env, lane_fd, link, &pid)
                                                 : spawn_posix(argv, env, lane_fd, link, &pid);
        for (int i = 0; i < 2; i++)
            if (link[i] >= 0)
                close(link[i]);
        if (e == 0) /* the child has its copies; ours would hide its death from the host */
            knit__link_fds_close(lane->worker_fds);
        if (e != 0) {
            rc = knit__err(KNIT_E_WORKER_STARTUP, "cannot start worker %u (%s): %s", lane->index,
                argv[0], strerror(e));
        } else {
            lane->pid = pid;
            lane->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by design */
            lane->runner = r;
            r = NULL;
            atomic_store_explicit(&lane->died, 0, memory_order_relaxed);
            rc = lane->pidfd < 0
                ? knit__err(KNIT_E_SYS, "pidfd_open(%d): %s", (int)pid, strerror(errno))
                : knit__monitor_watch(p, lane);
            if (rc < 0) { /* nobody would ever reap it: end it here */
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                knit__process_forget(p, lane);
            }
        }
    }
    free(r);
    free(boot);
    if (env) {
        for (size_t i = 0; env[i]; i++)
            if (!strncmp(env[i], KNIT__ENV_BOOT "=", strlen(KNIT__ENV_BOOT) + 1))
                free(env[i]);
        free(env);
    }
    free(argv);
    return rc;
}

void knit__process_forget(knit_pool_t *p, knit__lane_t *lane)
{
    (void)p;
    if (lane->pidfd >= 0)
        close(lane->pidfd);
    lane->pidfd = -1;
    lane->pid = 0;
    free(lane->runner);
    lane->runner = NULL;
}

void knit__process_join(knit_pool_t *p, knit__lane_t *lane)
{
    if (lane->pidfd >= 0 && knit__monitor_unwatch(p, lane)) {
        /* still running (or exited unreaped): give it the grace period, then kill it */
        struct pollfd pfd = {.fd = lane->pidfd, .events = POLLIN};
        if (poll(&pfd, 1, STOP_GRACE_MS) == 0)
            syscall(SYS_pidfd_send_signal, lane->pidfd, SIGKILL, NULL, 0);
        siginfo_t si;
        while (waitid((idtype_t)P_PIDFD, (id_t)lane->pidfd, &si, WEXITED) < 0 && errno == EINTR)
            ;
    }
    knit__process_forget(p, lane);
}

void knit__process_kill(knit__lane_t *lane)
{
    if (lane->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, lane->pidfd, SIGKILL, NULL, 0);
}
