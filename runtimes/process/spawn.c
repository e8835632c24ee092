/*
 * knit runtimes/process - the host side, as the runtime's operations (runtimes/runtime.h):
 * name the lane memory, build the boot payload, start the child (posix_spawn by default,
 * fork+exec on request), and stop and reap it.
 *
 * Only fd 0 is inherited on purpose: in inherit mode it is the lane memfd, in named mode
 * /dev/null; with a message transport fds 3 and 4 carry the worker's requests and results; a
 * boot payload too long for the environment comes as fd 5 (a sealed memfd). Every
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
#include <sys/mman.h>
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

static int process_open(const knit_pool_opts_t *opts, uint32_t workers, knit__runtime_t **out)
{
    knit__runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        return knit__err(KNIT_E_NOMEM, "process runtime");
    rt->opts = opts->worker.process;
    rt->workers = workers;
    int rc = knit__sandbox_check(&rt->opts.sandbox);
    if (rc < 0) {
        free(rt);
        return rc;
    }
    if (pipe2(rt->life, O_CLOEXEC) < 0) {
        rc = knit__err(KNIT_E_SYS, "pipe2 for the workers' life pipe: %s", strerror(errno));
        rt->life[0] = rt->life[1] = -1;
    }
    if (rc == 0 && !(rt->names = calloc(workers ? workers : 1, sizeof *rt->names)))
        rc = knit__err(KNIT_E_NOMEM, "process runtime");
    if (rc == 0 && !rt->opts.program && !(rt->self_exe = realpath("/proc/self/exe", NULL)))
        rc = knit__err(KNIT_E_SYS, "cannot resolve this program's path: %s", strerror(errno));
    if (rc < 0) {
        knit__link_fds_close(rt->life);
        free(rt->names);
        free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

static void process_close(knit__runtime_t *rt)
{
    knit__monitor_stop(rt);
    knit__link_fds_close(rt->life);
    free(rt->self_exe);
    free(rt->names);
    free(rt);
}

/* A named POSIX shm object with a fresh random name. */
static int named_memory(
    knit__runtime_t *rt, char name[40], const knit__lane_cfg_t *cfg, knit__shm_lane_t *mem)
{
    const char *prefix = rt->opts.name_prefix;
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
    snprintf(name, 40, "/%s-%016llx", clean, (unsigned long long)r);
    int rc = knit__shm_lane_create_named(mem, cfg, name);
    if (rc < 0)
        name[0] = 0;
    return rc;
}

/* The lane memory: a memfd the child inherits as fd 0, or a named object it opens. */
static int process_memory(
    knit__runtime_t *rt, uint32_t worker, const knit__lane_cfg_t *cfg, knit__shm_lane_t *mem)
{
    if (worker >= rt->workers)
        return knit__err(KNIT_E_RANGE, "worker %u of %u", worker, rt->workers);
    rt->names[worker][0] = 0;
    if (rt->opts.shared_memory == KNIT_SHM_NAMED)
        return named_memory(rt, rt->names[worker], cfg, mem);
    return knit__shm_lane_acquire(mem, cfg); /* always fresh across a process boundary */
}

static void process_memory_release(knit__runtime_t *rt, uint32_t worker, knit__shm_lane_t *mem)
{
    knit__shm_lane_release(mem);
    if (worker < rt->workers && rt->names[worker][0] && !rt->opts.keep_names)
        shm_unlink(rt->names[worker]);
    if (worker < rt->workers)
        rt->names[worker][0] = 0;
}

/* What the child gets besides its environment: the lane memfd (or -1: /dev/null) as fd 0, a
 * message transport's descriptors as fds 3 and 4, a boot memfd as fd 5, the life pipe as fd 6 -
 * each staged at KNIT__FD_SPARE or above, so the child's dup2s cannot overwrite each other. */
typedef struct child_fds {
    int lane;
    int link[2];
    int boot;
    int life;
} child_fds_t;

/* Named memory: once the worker has mapped it, unlink the name (unless the options keep it), so
 * no other process of the user can open the lane for longer than a start-up. */
static void process_attached(knit__runtime_t *rt, uint32_t worker)
{
    if (worker >= rt->workers || !rt->names[worker][0] || rt->opts.keep_names)
        return;
    shm_unlink(rt->names[worker]);
    rt->names[worker][0] = 0;
}

/* environ without earlier knit worker variables, plus ours: the boot payload (or where to find
 * it) and the life pipe's descriptor. The variables are malloc'd from index `*own` on. */
static char **worker_env(const char *boot, bool via_fd, size_t *own)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], KNIT__ENV_WORKER, strlen(KNIT__ENV_WORKER)) != 0)
            env[k++] = environ[i];
    env[k++] = KNIT__ENV_WORKER "=1";
    *own = k;
    bool ok = asprintf(&env[k++], "%s=%s", KNIT__ENV_BOOT, via_fd ? "fd:5" : boot) >= 0;
    if (ok)
        ok = asprintf(&env[k++], "%s=%d", KNIT__ENV_LIFE, KNIT__LIFE_FD) >= 0;
    if (!ok) {
        env[--k] = NULL; /* asprintf left it undefined */
        for (size_t i = *own; i < k; i++)
            free(env[i]);
        free(env);
        return NULL;
    }
    env[k] = NULL;
    return env;
}

static void free_env(char **env, size_t own)
{
    for (size_t i = own; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* A boot payload too long for the environment: a sealed memfd holding it. */
static int boot_memfd(const char *boot, int *out)
{
    size_t len = strlen(boot);
    int fd = memfd_create("knit-boot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return knit__err(KNIT_E_SYS, "memfd_create for the boot payload: %s", strerror(errno));
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, boot + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int rc = knit__err(
                KNIT_E_SYS, "writing the %zu-byte boot payload: %s", len, strerror(errno));
            close(fd);
            return rc;
        }
        done += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int rc = knit__err(KNIT_E_SYS, "sealing the boot payload: %s", strerror(errno));
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static char **worker_argv(const knit__runtime_t *rt)
{
    const char *const *prefix = rt->opts.prefix;
    size_t np = 0;
    while (prefix && prefix[np])
        np++;
    char **argv = calloc(np + 2, sizeof *argv);
    if (!argv)
        return NULL;
    for (size_t i = 0; i < np; i++)
        argv[i] = (char *)prefix[i];
    argv[np] = rt->opts.program ? (char *)rt->opts.program : rt->self_exe;
    return argv;
}

static int spawn_posix(char **argv, char **env, const child_fds_t *fds, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (fds->lane >= 0)
        posix_spawn_file_actions_adddup2(&fa, fds->lane, 0); /* clears close-on-exec on fd 0 */
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    for (int i = 0; fds->link[0] >= 0 && i < 2; i++)
        posix_spawn_file_actions_adddup2(&fa, fds->link[i], KNIT__LINK_FD_RX + i);
    if (fds->boot >= 0)
        posix_spawn_file_actions_adddup2(&fa, fds->boot, KNIT__BOOT_FD);
    posix_spawn_file_actions_adddup2(&fa, fds->life, KNIT__LIFE_FD);
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static int spawn_fork(char **argv, char **env, const child_fds_t *fds, pid_t *pid)
{
    pid_t c = fork();
    if (c < 0)
        return errno;
    if (c == 0) {
        int fd0 = fds->lane >= 0 ? fds->lane : open("/dev/null", O_RDONLY);
        /* dup2 onto itself keeps close-on-exec: clear it by hand when fd 0 already is it */
        if (fd0 < 0 || (fd0 == 0 ? fcntl(0, F_SETFD, 0) : dup2(fd0, 0)) < 0)
            _exit(127);
        for (int i = 0; fds->link[0] >= 0 && i < 2; i++)
            if (dup2(fds->link[i], KNIT__LINK_FD_RX + i) < 0)
                _exit(127);
        if (fds->boot >= 0 && dup2(fds->boot, KNIT__BOOT_FD) < 0)
            _exit(127);
        if (dup2(fds->life, KNIT__LIFE_FD) < 0)
            _exit(127);
        execvpe(argv[0], argv, env);
        _exit(127);
    }
    *pid = c;
    return 0;
}

static void child_fds_close(child_fds_t *fds)
{
    int *all[] = {&fds->link[0], &fds->link[1], &fds->boot, &fds->life};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        if (*all[i] >= 0)
            close(*all[i]);
        *all[i] = -1;
    }
}

/* Stage `fd` at KNIT__FD_SPARE or above (close-on-exec) in *out: 0 or an errno. */
static int stage_fd(int fd, int *out)
{
    *out = fcntl(fd, F_DUPFD_CLOEXEC, KNIT__FD_SPARE);
    return *out < 0 ? errno : 0;
}

static void forget(knit__runner_t *r)
{
    if (r->pidfd >= 0)
        close(r->pidfd);
    free(r);
}

static int process_start(knit__runtime_t *rt, const knit__runner_cfg_t *cfg, knit__runner_t **out)
{
    const knit__worker_cfg_t *wc = &cfg->worker;
    int wfds[2] = {wc->fds[0], wc->fds[1]};
    char *boot = NULL;
    const char *name = wc->index < rt->workers ? rt->names[wc->index] : "";
    child_fds_t fds
        = {.lane = name[0] ? -1 : wc->lane->fd, .link = {-1, -1}, .boot = -1, .life = -1};
    int rc = knit__boot_encode(cfg, name, &rt->opts.sandbox, &boot);
    bool via_fd = rc == 0 && strlen(boot) > KNIT__BOOT_ENV_MAX;
    if (via_fd)
        rc = boot_memfd(boot, &fds.boot);
    size_t own = 0;
    char **env = rc == 0 ? worker_env(boot, via_fd, &own) : NULL;
    char **argv = rc == 0 ? worker_argv(rt) : NULL;
    knit__runner_t *r = rc == 0 ? calloc(1, sizeof *r) : NULL;
    if (rc == 0 && (!env || !argv || !r))
        rc = knit__err(KNIT_E_NOMEM, "starting worker %u", wc->index);
    if (rc == 0) {
        *r = (knit__runner_t) {.worker = wc->index, .pidfd = -1, .wake_fd = cfg->wake_fd};
        r->bell_seq = knit__bell_seq(wc->lane->map, &wc->lane->layout);
        r->death_bell = cfg->death_bell;
        pid_t pid = -1;
        int e = stage_fd(rt->life[0], &fds.life);
        for (int i = 0; wfds[0] >= 0 && i < 2 && !e; i++)
            e = stage_fd(wfds[i], &fds.link[i]);
        if (!e && fds.boot >= 0 && fds.boot < KNIT__FD_SPARE) {
            int low = fds.boot;
            e = stage_fd(low, &fds.boot);
            close(low);
        }
        if (!e)
            e = rt->opts.fork_exec ? spawn_fork(argv, env, &fds, &pid)
                                   : spawn_posix(argv, env, &fds, &pid);
        if (e != 0) {
            rc = knit__err(KNIT_E_WORKER_STARTUP, "cannot start worker %u (%s): %s", wc->index,
                argv[0], strerror(e));
        } else {
            r->pid = pid;
            r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by design */
            rc = r->pidfd < 0
                ? knit__err(KNIT_E_SYS, "pidfd_open(%d): %s", (int)pid, strerror(errno))
                : knit__monitor_watch(rt, r);
            if (rc < 0) { /* nobody would ever reap it: end it here */
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
            }
        }
    }
    /* the child has its copies; ours would hide its death from the host */
    knit__link_fds_close(wfds);
    child_fds_close(&fds);
    if (rc == 0) {
        *out = r;
        r = NULL;
    }
    if (r)
        forget(r);
    free(boot);
    free_env(env, own);
    free(argv);
    return rc;
}

static void process_join(knit__runtime_t *rt, knit__runner_t *r)
{
    if (r->pidfd >= 0 && knit__monitor_unwatch(rt, r)) {
        /* still running (or exited unreaped): give it the grace period, then kill it */
        struct pollfd pfd = {.fd = r->pidfd, .events = POLLIN};
        if (poll(&pfd, 1, STOP_GRACE_MS) == 0)
            syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0);
        siginfo_t si;
        while (waitid((idtype_t)P_PIDFD, (id_t)r->pidfd, &si, WEXITED) < 0 && errno == EINTR)
            ;
    }
    forget(r);
}

static void process_kill(knit__runner_t *r)
{
    if (r->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0);
}

static bool process_exited(knit__runtime_t *rt, knit__runner_t *r, knit__exit_t *how)
{
    /* acquire: pairs with the monitor's release store; the exit status is visible. */
    if (!atomic_load_explicit(&r->died, memory_order_acquire))
        return false;
    knit__monitor_sync(rt); /* the monitor is done with this lane (its doorbell) */
    *how = (knit__exit_t) {.pid = r->pid, .code = r->exit_code, .signal = r->exit_signal};
    return true;
}

static void process_forget(knit__runtime_t *rt, knit__runner_t *r)
{
    (void)rt; /* the monitor reaped it */
    forget(r);
}

static int32_t process_pid(const knit__runner_t *r)
{
    return r->pid;
}

const knit__runtime_ops_t knit__process_runtime_ops = {
    .name = "process",
    .flags = KNIT__RUNTIME_CAN_DIE | KNIT__RUNTIME_KILLABLE,
    .open = process_open,
    .close = process_close,
    .memory = process_memory,
    .memory_release = process_memory_release,
    .attached = process_attached,
    .start = process_start,
    .join = process_join,
    .kill = process_kill,
    .exited = process_exited,
    .forget = process_forget,
    .pid = process_pid,
};
