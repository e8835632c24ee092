/*
 * knit-knitting-worker - a knit worker for a knitting host (interop/README.md).
 *
 * Given to knitting as `worker.processCommandPrefix`, it is started as
 *   knit-knitting-worker [OPTIONS] [--] <runtime> <entry>
 * with the lane memory on fd 0 (or named in the boot payload), KNITTING_PROCESS_WORKER=1 and the
 * boot payload in KNITTING_PROCESS_WORKER_BOOT. The runtime command knitting appends is not run:
 * the host's tasks are served by C tasks of the same names.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "interop/kworker.h"
#include "knit/error.h"

static volatile int stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: knit-knitting-worker [--tasks LIB.so] [--trace] [--] [RUNTIME ENTRY...]\n"
        "\n"
        "A knit worker that serves a knitting host (the JavaScript library) over its own\n"
        "shared-memory protocol. Give it to knitting as the process-worker command prefix:\n"
        "\n"
        "  createPool({ worker: { runtime: \"process\", processRuntime: \"bun\",\n"
        "    processCommandPrefix: [\"/path/to/knit-knitting-worker\", \"--\"] } })(tasks)\n"
        "\n"
        "knitting then starts it with the lane memory on fd 0, KNITTING_PROCESS_WORKER=1 and the\n"
        "boot payload in KNITTING_PROCESS_WORKER_BOOT; the runtime command it appends is not\n"
        "run. Each task name of the pool is served by the C task of that name: the built-in\n"
        "ones (add1, echo, fail, int16_array, sleep, slow, throw_string, until_aborted) or those\n"
        "of LIB.so, which exports `const knit_kx_task_t knit_kx_tasks[]` (interop/ktask.h)\n"
        "ended by a NULL name.\n"
        "\n"
        "Options:\n"
        "  --tasks LIB.so   load C tasks from a shared object (searched before the built-ins)\n"
        "  --trace          one line per call on stderr\n"
        "  -h, --help       this text\n"
        "\n"
        "Exit status: 0 after SIGTERM (knitting's shutdown), 1 on a start-up or lane error,\n"
        "2 on bad options.\n");
}

static const knit_kx_task_t *load_tasks(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const knit_kx_task_t *t = h ? dlsym(h, "knit_kx_tasks") : NULL;
    if (!t)
        fprintf(stderr, "knit-knitting-worker: --tasks %s: %s\n", path,
            h ? "no symbol knit_kx_tasks" : dlerror());
    return t;
}

static int parse_args(int argc, char **argv, knit__kw_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--trace")) {
            o->trace = 1;
        } else if (!strcmp(argv[i], "--tasks") && i + 1 < argc) {
            if (!(o->extra = load_tasks(argv[++i])))
                return 2;
        } else if (!strcmp(argv[i], "--") || argv[i][0] != '-') {
            break; /* knitting's runtime command follows: not ours to run */
        } else {
            fprintf(stderr, "knit-knitting-worker: unknown option '%s' (--help)\n", argv[i]);
            return 2;
        }
    }
    return 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "knit-knitting-worker: %s: %s\n", what, knit_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    knit__kw_opts_t o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    const char *pw = getenv("KNITTING_PROCESS_WORKER"),
               *boot = getenv("KNITTING_PROCESS_WORKER_BOOT");
    if (!pw || strcmp(pw, "1") != 0 || !boot) {
        fprintf(stderr,
            "knit-knitting-worker: no knitting boot payload (KNITTING_PROCESS_WORKER=1 "
            "and KNITTING_PROCESS_WORKER_BOOT): start it as a knitting pool's "
            "processCommandPrefix (knitting passes the payload in the environment "
            "only when a prefix is set); --help\n");
        return 1;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* the host's death ends the worker */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    knit__kw_boot_t b;
    if (knit__kw_parse_boot(boot, &b) < 0)
        return fail("boot payload");
    unsetenv("KNITTING_PROCESS_WORKER_BOOT"); /* as knitting's worker does */
    uint8_t *base = NULL;
    if (knit__kw_map(&b, &base) < 0) {
        knit__kw_boot_free(&b);
        return fail("lane memory");
    }
    if (!b.shm_name[0]) { /* the mapping holds the memory: give fd 0 back to /dev/null */
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0 && null != b.fd) {
            dup2(null, b.fd);
            close(null);
        }
    }
    rc = knit__kw_serve(&b, base, &o, &stop);
    munmap(base, b.size);
    knit__kw_boot_free(&b);
    return rc < 0 ? fail("serving calls") : 0;
}
