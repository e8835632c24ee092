/*
 * knit-bench - the command line: parse options and filters, run the selected scenarios in
 * order, and write one JSON document (stdout with --json, --out FILE, and a copy under
 * --save-dir). Worker processes of process-runtime pools are this program re-executed: the
 * guard at the top of main() turns them into workers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"
#include "run.h"

static void usage(FILE *o)
{
    fprintf(o,
        "usage: knit-bench [options]\n"
        "Runs knit's benchmark scenarios and reports one row per case.\n\n"
        "  --json               stdout carries exactly one JSON document (knit-bench/2), nothing\n"
        "                       else; the table is not printed; progress stays on stderr\n"
        "  --quick              a reduced matrix (under 60 s on 2 cores), 3 repetitions\n"
        "  --scenario A,B       only these scenarios (see --list)\n"
        "  --transport T,U      knit, pipe, unix, seqpacket, tcp, seq (floor: its mechanisms)\n"
        "  --runtime R          thread, process\n"
        "  --balancer B         roundRobin (or robinRound), firstIdle, randomLane,\n"
        "                       firstIdleOrRandom, steal, or - (the pool's default)\n"
        "  --workers N,M        worker counts\n"
        "  --repetitions N      measured repetitions per case (default 5, quick 3; 1-%d)\n"
        "  --out FILE           also write the JSON document to FILE\n"
        "  --save-dir DIR       also save it as DIR/<date>-<commit>[-quick].json\n"
        "  --list               list the scenarios and exit\n"
        "  -h, --help           this text\n\n"
        "Environment: KNIT_BENCH_MALLOC=default measures with the C library's allocator as\n"
        "it comes; by default (retain) freed memory stays with the process (results/SCHEMA.md,\n"
        "context.malloc), for every case alike.\n\n"
        "Exit status: 0 when every case ran, 1 when a case failed (the others still run and\n"
        "are reported), 2 for bad options.\n",
        KB_MAX_REPS);
}

static int bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "knit-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'knit-bench --help'.\n");
    return 2;
}

/* Split a comma list into `f` (the strings live in argv). */
static int split(char *arg, kb_filter_t *f, const char *what)
{
    for (char *save = NULL, *tok = strtok_r(arg, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (f->n == KB_MAX_FILTER)
            return bad("too many %s values (at most 16)", what);
        f->v[f->n++] = tok;
    }
    return f->n ? 0 : bad("--%s needs a value", what);
}

static bool known(const char *v, const char *const *names)
{
    for (; *names; names++)
        if (!strcmp(v, *names))
            return true;
    return false;
}

static int check_filters(kb_ctx_t *ctx)
{
    static const char *const runtimes[] = {"thread", "process", NULL};
    static const char *const balancers[] = {"steal", "-", NULL};
    for (unsigned i = 0; i < ctx->scenarios.n; i++) {
        bool ok = false;
        for (unsigned k = 0; k < kb_nscenarios; k++)
            ok |= !strcmp(ctx->scenarios.v[i], kb_scenarios[k].name);
        if (!ok)
            return bad("unknown scenario '%s' (see --list)", ctx->scenarios.v[i]);
    }
    for (unsigned i = 0; i < ctx->transports.n; i++)
        if (!known(ctx->transports.v[i], kb_transport_names)
            && !known(ctx->transports.v[i], kb_floor_mechs))
            return bad("unknown transport '%s' (knit, pipe, unix, seqpacket, tcp, seq, or a "
                       "floor mechanism)",
                ctx->transports.v[i]);
    for (unsigned i = 0; i < ctx->runtimes.n; i++)
        if (!known(ctx->runtimes.v[i], runtimes))
            return bad("unknown runtime '%s' (thread, process)", ctx->runtimes.v[i]);
    for (unsigned i = 0; i < ctx->balancers.n; i++) {
        knit_balancer_t b; /* the seed's names; robinRound is accepted and reported as roundRobin */
        if (known(ctx->balancers.v[i], balancers))
            continue;
        if (knit_balancer_parse(ctx->balancers.v[i], &b) < 0 || b == KNIT_BALANCER_DEFAULT)
            return bad("unknown balancer '%s' (roundRobin, firstIdle, randomLane, "
                       "firstIdleOrRandom, steal, -)",
                ctx->balancers.v[i]);
        ctx->balancers.v[i] = knit_balancer_name(b);
    }
    return 0;
}

static int parse_workers(kb_ctx_t *ctx, char *arg)
{
    kb_filter_t f = {0};
    int rc = split(arg, &f, "workers");
    for (unsigned i = 0; rc == 0 && i < f.n; i++) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(f.v[i], &end, 10);
        if (errno || *end || v < 1 || v > 1024)
            return bad("--workers takes counts from 1 to 1024, not '%s'", f.v[i]);
        ctx->workers[ctx->nworkers++] = (uint32_t)v;
    }
    return rc;
}

typedef struct cli {
    const char *out, *save_dir;
    bool list;
} cli_t;

static int parse(int argc, char **argv, kb_ctx_t *ctx, cli_t *cli)
{
    enum {
        O_JSON = 256,
        O_QUICK,
        O_SCEN,
        O_TRANS,
        O_RT,
        O_BAL,
        O_WORK,
        O_REPS,
        O_OUT,
        O_SAVE,
        O_LIST
    };
    static const struct option opts[] = {{"json", no_argument, 0, O_JSON},
        {"quick", no_argument, 0, O_QUICK}, {"scenario", required_argument, 0, O_SCEN},
        {"transport", required_argument, 0, O_TRANS}, {"runtime", required_argument, 0, O_RT},
        {"balancer", required_argument, 0, O_BAL}, {"workers", required_argument, 0, O_WORK},
        {"repetitions", required_argument, 0, O_REPS}, {"out", required_argument, 0, O_OUT},
        {"save-dir", required_argument, 0, O_SAVE}, {"list", no_argument, 0, O_LIST},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int rc = 0, o;
    long reps = 0;
    opterr = 0;
    while (rc == 0 && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case O_JSON:
            ctx->json = true;
            break;
        case O_QUICK:
            ctx->quick = true;
            break;
        case O_SCEN:
            rc = split(optarg, &ctx->scenarios, "scenario");
            break;
        case O_TRANS:
            rc = split(optarg, &ctx->transports, "transport");
            break;
        case O_RT:
            rc = split(optarg, &ctx->runtimes, "runtime");
            break;
        case O_BAL:
            rc = split(optarg, &ctx->balancers, "balancer");
            break;
        case O_WORK:
            rc = parse_workers(ctx, optarg);
            break;
        case O_REPS:
            reps = strtol(optarg, &end, 10);
            if (*end || reps < 1 || reps > KB_MAX_REPS)
                rc = bad("--repetitions takes 1 to 64, not '%s'", optarg);
            break;
        case O_OUT:
            cli->out = optarg;
            break;
        case O_SAVE:
            cli->save_dir = optarg;
            break;
        case O_LIST:
            cli->list = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            rc = bad("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc == 0 && optind < argc)
        rc = bad("unexpected argument '%s'", argv[optind]);
    ctx->reps = reps ? (uint32_t)reps : ctx->quick ? 3 : 5;
    return rc ? rc : check_filters(ctx);
}

static int write_doc(json_t *doc, const char *path)
{
    if (json_dump_file(doc, path, JSON_INDENT(1) | JSON_SORT_KEYS) < 0) {
        fprintf(stderr, "knit-bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int save_copy(json_t *doc, const char *dir, bool quick)
{
    if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
        fprintf(stderr, "knit-bench: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    const char *commit
        = json_string_value(json_object_get(json_object_get(doc, "context"), "git_commit"));
    char stamp[32], path[4096];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(path, sizeof path, "%s/%s-%.12s%s.json", dir, stamp, commit ? commit : "unknown",
        quick ? "-quick" : "");
    int rc = write_doc(doc, path);
    if (rc == 0)
        fprintf(stderr, "knit-bench: saved %s\n", path);
    return rc;
}

static void run_all(kb_ctx_t *ctx)
{
    for (unsigned i = 0; i < kb_nscenarios; i++)
        if (kb_in_filter(&ctx->scenarios, kb_scenarios[i].name)) {
            ctx->budget_total += kb_budget_s(kb_scenarios[i].name, ctx->quick);
            ctx->scenario_count++;
        }
    for (unsigned i = 0; i < kb_nscenarios; i++) {
        const kb_scenario_t *s = &kb_scenarios[i];
        if (!kb_in_filter(&ctx->scenarios, s->name))
            continue;
        ctx->scenario = s->name;
        ctx->scenario_start_ns = kb_now_ns();
        kb_progress(ctx, "%s: %s", s->name, s->summary);
        int rc = s->run(ctx);
        if (rc < 0) {
            ctx->failed++;
            fprintf(stderr, "%sknit-bench: scenario %s stopped: %s (%s)\n",
                ctx->tty ? "\r\033[K" : "", s->name, knit_strerror(rc), knit_errmsg());
        }
        ctx->budget_done += kb_budget_s(s->name, ctx->quick);
        ctx->scenario_index++;
    }
    kb_progress_done(ctx);
}

/*
 * The allocator policy. glibc gives a large block back to the kernel when it is freed (mmap
 * above a threshold that moves with use; heap tops beyond a trim threshold), so a burst that
 * holds many large results at once - 100 echoes of 1 MiB - pays first-touch page faults for
 * most of its bytes on every round (counted with knit-count --bytes, docs/PERFORMANCE.md
 * "Payloads"), while a loop that frees each block before the next does not. Retaining freed memory
 * measures the transports rather than the allocator's trimming; the policy is the same for every
 * case and every reference, and it is in the report's context. KNIT_BENCH_MALLOC=default keeps
 * glibc's defaults (worker processes inherit the variable, and so the policy).
 */
static const char *malloc_policy = "glibc defaults";

const char *kb_malloc_policy(void)
{
    return malloc_policy;
}

static void malloc_setup(void)
{
    const char *want = getenv("KNIT_BENCH_MALLOC");
    if (want && !strcmp(want, "default"))
        return;
    /* 32 MiB is glibc's largest mmap threshold on 64-bit; 1 GiB of free heap top is kept */
    if (mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1)
        malloc_policy = "retain: mmap_threshold 32 MiB, trim_threshold 1 GiB";
}

int main(int argc, char **argv)
{
    malloc_setup();
    int rc = kb_worker_guard();
    if (rc != KNIT_E_AGAIN)
        return rc;
    if ((rc = kb_startup_sample_main(argc, argv)) != KNIT_E_AGAIN)
        return rc; /* a cold start-up sample (scenarios/startup.c) */
    static kb_ctx_t ctx;
    cli_t cli = {0};
    rc = parse(argc, argv, &ctx, &cli);
    if (rc)
        return rc;
    if (cli.list) {
        for (unsigned i = 0; i < kb_nscenarios; i++)
            printf("%-10s %s\n", kb_scenarios[i].name, kb_scenarios[i].summary);
        return 0;
    }
    prctl(PR_SET_TIMERSLACK, 1ul); /* sleeps that scenarios time (idle gaps) end on time */
    ctx.tty = isatty(2);
    ctx.table = ctx.json ? NULL : stdout;
    ctx.entries = json_array();
    ctx.benchmarks = json_array();
    ctx.start_ns = kb_now_ns();
    json_t *context = kb_context_json(&ctx, argc, argv);
    kb_peak_rss_reset();
    if (!ctx.entries || !ctx.benchmarks || !context) {
        fprintf(stderr, "knit-bench: out of memory\n");
        return 1;
    }
    run_all(&ctx);
    json_object_set_new(
        context, "duration_s", json_real((double)(kb_now_ns() - ctx.start_ns) / 1e9));
    json_object_set_new(context, "failed_cases", json_integer(ctx.failed));
    json_t *doc = json_pack("{s:s, s:o, s:o, s:o}", "schema", "knit-bench/2", "context", context,
        "cases", ctx.entries, "benchmarks", ctx.benchmarks);
    if (!doc) {
        fprintf(stderr, "knit-bench: out of memory\n");
        return 1;
    }
    if (ctx.json) {
        json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    }
    int io = 0;
    if (cli.out)
        io |= write_doc(doc, cli.out);
    if (cli.save_dir)
        io |= save_copy(doc, cli.save_dir, ctx.quick);
    fprintf(stderr, "knit-bench: %u cases in %.1f s%s\n", ctx.cases,
        (double)(kb_now_ns() - ctx.start_ns) / 1e9, ctx.failed ? ", some failed (see above)" : "");
    json_decref(doc);
    return ctx.failed || io ? 1 : 0;
}
