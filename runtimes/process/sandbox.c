/*
 * knit runtimes/process - the process workers' permission policy, enforced by Linux.
 *
 * knitting's `permission` option maps onto the kernel as follows:
 *
 *   mode "unsafe"        KNIT_SANDBOX_UNSAFE (the zero value): nothing is applied.
 *   mode "strict"        KNIT_SANDBOX_STRICT: no_new_privs, then the three layers below.
 *   read: [...]          Landlock: READ_FILE and READ_DIR beneath each path (EXECUTE too with
 *                        allow_exec). Every other file-system access is handled, so denied.
 *   write: [...]         Landlock: every file-system right this kernel's ABI knows beneath each
 *                        path (EXECUTE only with allow_exec). /dev/null is always read-write.
 *   net                  seccomp: socket() of any family but AF_UNIX fails with EACCES, and so
 *                        does io_uring_setup (its socket and connect operations would bypass
 *                        the filter); Landlock ABI 4+ also denies TCP bind and connect.
 *                        Sockets opened before the lock-down (a message transport's fds 3 and
 *                        4, a TCP link included) keep working.
 *   (programs)           seccomp: execve and execveat fail with EACCES unless allow_exec.
 *                        fork stays allowed: a child inherits every layer, so it is no escape.
 *   env: { allow }       the environment is cleared but for the listed names.
 *   allowImport          imports and the bootstrap hook run before the lock-down, with the
 *                        full environment and file system: that is the start-up the policy
 *                        trusts. A dlopen from a task afterwards needs its path in `read`.
 *   console              stdout and stderr are inherited descriptors: they keep working.
 *
 * On Landlock ABI 6+ the worker is also scoped: it cannot signal processes outside its domain
 * (the host among them) nor connect to abstract Unix sockets bound outside it.
 *
 * Landlock confines only the calling thread and the threads it starts afterwards, so the policy
 * refuses a worker that already runs other threads (a bootstrap hook that started one).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/error.h"
#include "runtimes/process/sandbox.h"

/* Landlock ABI values newer than some distributions' headers (the kernel ABI is stable). */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define LL_NET_BIND_TCP        (1ULL << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP     (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL        (1ULL << 1)

/* AddressSanitizer builds only: LeakSanitizer reads this process's /proc entries when the
 * worker exits, so a sanitized worker may also read /proc/self (nothing of other processes). */
#ifdef __SANITIZE_ADDRESS__
#define OWN_PROC_READABLE 1
#else
#define OWN_PROC_READABLE 0
#endif

/* The rights a rule on a file (not a directory) may carry. */
#define LL_FILE_RIGHTS                                                                             \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE     \
        | LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* struct landlock_ruleset_attr as of ABI 6; older kernels are given its first 8 or 16 bytes. */
typedef struct ll_attr {
    uint64_t handled_fs;
    uint64_t handled_net;
    uint64_t scoped;
} ll_attr_t;

#define PATH_MAX_LEN 4095

/* --- host: the options ----------------------------------------------------------------------- */

static int check_list(const char *const *list, const char *field, bool is_env)
{
    for (size_t i = 0; list && list[i]; i++) {
        size_t n = strlen(list[i]);
        if (n == 0 || n > PATH_MAX_LEN)
            return knit__err(KNIT_E_INVAL,
                "worker.process.sandbox.%s[%zu] must be 1 to %d characters long", field, i,
                PATH_MAX_LEN);
        if (is_env && strchr(list[i], '='))
            return knit__err(KNIT_E_INVAL,
                "worker.process.sandbox.env[%zu] ('%s') is a variable name and cannot hold '='", i,
                list[i]);
    }
    return 0;
}

int knit__sandbox_check(const knit_sandbox_t *s)
{
    if (s->mode != KNIT_SANDBOX_UNSAFE && s->mode != KNIT_SANDBOX_STRICT)
        return knit__err(KNIT_E_INVAL,
            "worker.process.sandbox.mode (knit_sandbox_mode_t) is %d, which is not a mode",
            (int)s->mode);
    int rc = check_list(s->read, "read", false);
    if (rc == 0)
        rc = check_list(s->write, "write", false);
    if (rc == 0)
        rc = check_list(s->env, "env", true);
    return rc;
}

/* --- worker: enforcement --------------------------------------------------------------------- */

/* A part of the policy that cannot be enforced: start-up fails, or with best_effort the worker
 * says so on stderr and goes on. The host shows the first 55 bytes of a start-up failure (the
 * lane's boot message): say what is missing first, the details after. */
__attribute__((format(printf, 2, 3))) static int unenforced(
    const knit__sandbox_t *s, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (!s->best_effort)
        return knit__err(KNIT_E_WORKER_STARTUP, "%s (best_effort runs without it)", why);
    fprintf(stderr, "knit worker %d: best effort, going on: %s\n", (int)getpid(), why);
    return 0;
}

/* This kernel's Landlock ABI version, or 0 with *why saying why there is none. */
static int landlock_abi(const char **why)
{
    const char *test = getenv(KNIT__ENV_TEST_NO_LANDLOCK);
    if (test && !strcmp(test, "1")) {
        *why = "off by " KNIT__ENV_TEST_NO_LANDLOCK "=1 (test-only)";
        return 0;
    }
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        *why = errno == EOPNOTSUPP ? "disabled at boot (lsm=)" : "this kernel has none";
    return abi < 1 ? 0 : (int)abi;
}

static uint64_t fs_rights(int abi)
{
    uint64_t a = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0 to 12 */
    if (abi >= 2)
        a |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        a |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        a |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return a;
}

/* Allow `access` beneath `path` (a missing path fails start-up, or is skipped: best effort). */
static int allow_path(const knit__sandbox_t *s, int ruleset, const char *path, uint64_t access)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? unenforced(s, "sandbox: missing path %s", path)
                               : unenforced(s, "sandbox: path %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= LL_FILE_RIGHTS;
    struct landlock_path_beneath_attr rule = {.allowed_access = access, .parent_fd = fd};
    long r = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    int e = errno;
    close(fd);
    return r == 0 ? 0 : unenforced(s, "sandbox: landlock_add_rule %s: %s", path, strerror(e));
}

static int allow_paths(const knit__sandbox_t *s, int ruleset, char **paths, uint64_t access)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && paths && paths[i]; i++)
        rc = allow_path(s, ruleset, paths[i], access);
    return rc;
}

static int landlock_rules(const knit__sandbox_t *s, int ruleset, uint64_t handled)
{
    uint64_t exec = s->allow_exec ? LANDLOCK_ACCESS_FS_EXECUTE : 0;
    uint64_t read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | exec;
    uint64_t write = (handled & ~LANDLOCK_ACCESS_FS_EXECUTE) | exec;
    int rc = allow_paths(s, ruleset, s->read, read);
    if (rc == 0)
        rc = allow_paths(s, ruleset, s->write, write);
    if (rc == 0)
        rc = allow_path(
            s, ruleset, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE);
    if (rc == 0 && OWN_PROC_READABLE)
        rc = allow_path(s, ruleset, "/proc/self", read);
    return rc;
}

static int landlock_confine(const knit__sandbox_t *s)
{
    const char *why = NULL;
    int abi = landlock_abi(&why);
    if (abi == 0)
        return unenforced(s, "sandbox needs Landlock: %s", why);
    ll_attr_t attr = {.handled_fs = fs_rights(abi)};
    size_t size = sizeof attr.handled_fs;
    if (abi >= 4) {
        attr.handled_net = s->allow_net ? 0 : LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        size += sizeof attr.handled_net;
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        size += sizeof attr.scoped;
    }
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0)
        return unenforced(s, "sandbox: landlock_create_ruleset (ABI %d): %s", abi, strerror(errno));
    int rc = landlock_rules(s, ruleset, attr.handled_fs);
    if (rc == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
        rc = unenforced(s, "sandbox: landlock_restrict_self: %s", strerror(errno));
    close(ruleset);
    return rc;
}

static int seccomp_rules(const knit__sandbox_t *s, scmp_filter_ctx ctx)
{
    const uint32_t deny = SCMP_ACT_ERRNO(EACCES);
    int r = 0;
    if (!s->allow_exec) {
        r = seccomp_rule_add(ctx, deny, SCMP_SYS(execve), 0);
        if (r == 0)
            r = seccomp_rule_add(ctx, deny, SCMP_SYS(execveat), 0);
    }
    if (r == 0 && !s->allow_net) {
        /* spelled out: SCMP_A0() leaves datum_b to the compound literal, which clang's
         * -Wmissing-field-initializers refuses */
        const struct scmp_arg_cmp not_unix
            = {.arg = 0, .op = SCMP_CMP_NE, .datum_a = AF_UNIX, .datum_b = 0};
        r = seccomp_rule_add_array(ctx, deny, SCMP_SYS(socket), 1, &not_unix);
        if (r == 0)
            r = seccomp_rule_add(ctx, deny, SCMP_SYS(io_uring_setup), 0);
    }
    return r;
}

static int seccomp_confine(const knit__sandbox_t *s)
{
    if (s->allow_exec && s->allow_net)
        return 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return unenforced(s, "sandbox needs seccomp: seccomp_init failed");
    int r = seccomp_rules(s, ctx);
    const char *step = "seccomp_rule_add";
    if (r == 0) {
        step = "seccomp_load";
        r = seccomp_load(ctx);
    }
    seccomp_release(ctx);
    return r == 0 ? 0 : unenforced(s, "sandbox needs seccomp: %s: %s", step, strerror(-r));
}

/* How many threads this process runs, or 0 when /proc cannot tell. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Keep only the allowed variables. */
static int filter_env(const knit__sandbox_t *s)
{
    size_t n = 0;
    while (s->env && s->env[n])
        n++;
    char **keep = calloc(n + 1, sizeof *keep);
    if (!keep)
        return knit__err(KNIT_E_NOMEM, "sandbox: environment");
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(s->env[i]);
        keep[i] = v ? strdup(v) : NULL;
    }
    int rc = clearenv() == 0 ? 0 : knit__err(KNIT_E_WORKER_STARTUP, "sandbox: clearenv failed");
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && keep[i] && setenv(s->env[i], keep[i], 1) != 0)
            rc = knit__err(
                KNIT_E_WORKER_STARTUP, "sandbox: setenv %s: %s", s->env[i], strerror(errno));
        free(keep[i]);
    }
    free(keep);
    return rc;
}

int knit__sandbox_apply(const knit__sandbox_t *s)
{
    if (!s->strict)
        return 0;
    int threads = thread_count();
    if (threads > 1)
        return knit__err(KNIT_E_WORKER_STARTUP,
            "sandbox: %d threads at lock-down, must be 1 (started by the bootstrap hook or an "
            "import?): Landlock would confine only one of them",
            threads);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return unenforced(s, "sandbox: prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
    int rc = landlock_confine(s);
    if (rc == 0)
        rc = seccomp_confine(s);
    if (rc == 0)
        rc = filter_env(s);
    return rc;
}

static void free_list(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

void knit__sandbox_free(knit__sandbox_t *s)
{
    free_list(s->read);
    free_list(s->write);
    free_list(s->env);
    memset(s, 0, sizeof *s);
}
