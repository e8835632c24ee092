/*
 * knit-soak - a randomised soak test of the pool with a checksum on every call.
 *
 * For --duration seconds the host creates pools of random shape (transport, runtime, balancer,
 * dispatcher, stealing, inline lane, wait policy, payload limit, 1-4 workers), keeps a random
 * number of calls in flight on each, kills process workers with SIGKILL while calls are in
 * flight, and closes each pool (drain or immediate shutdown) before creating the next; up to two
 * pools live at once. Every argument is a carrier (carrier.h): a value of a random kind and size
 * whose sequence number and checksum travel inside it. The worker checks the checksum of what
 * it received and answers with the same value (the echo) or a digest of it; the host checks
 * what came back and accounts for every call: made, settled, resolved, rejected (by reason),
 * lost, duplicated, corrupted, unexpected. README.md in this folder and docs/RELIABILITY.md
 * describe the checks; --help lists the options.
 *
 * This program is its own process worker: main() starts with the knit_worker_process_main()
 * guard. It uses knit's public API only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <knit/knit.h>
#include <knit/shared_buffer.h>

#include "carrier.h"

#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S  UINT64_C(1000000000)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* --- the worker side ----------------------------------------------------------------------- */

#define SLOW_TIMEOUT_MS 4u /* soak_slow's timeout; it runs 0-7 ms */

static _Thread_local char w_msg[256];
static _Thread_local knit_error_value_t w_err;
static _Thread_local uint8_t w_digest[24];
static _Thread_local knit_envelope_t w_env;

static void busy_wait_ns(uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    while (now_ns() < end) { }
}

/* Check the argument; reject with a SoakCorrupt error when its checksum does not match, else
 * answer with the echo or the digest the flags ask for. */
static int serve(knit_value_t *arg, knit_value_t *result, bool slow)
{
    sk_info_t in;
    char why[160] = "";
    int rc = sk_check(arg, &in, why, sizeof why);
    if (rc == SK_OK && in.claimed != in.actual) {
        rc = SK_MISMATCH;
        snprintf(why, sizeof why, "checksum mismatch: carried %016" PRIx64 ", computed %016" PRIx64,
            in.claimed, in.actual);
    }
    if (rc != SK_OK) {
        snprintf(w_msg, sizeof w_msg, "seq %" PRIu64 " (%s): %s", in.seqfield & SK_SEQ_MASK,
            knit_kind_name((knit_kind_t)arg->kind), why);
        w_err = (knit_error_value_t) {.name = "SoakCorrupt", .message = w_msg};
        *result = knit_v_error(&w_err);
        return KNIT_TASK_REJECT;
    }
    if (slow)
        busy_wait_ns(
            sk_mix64(in.seqfield ^ 0x51ull) % (2u * SLOW_TIMEOUT_MS) * (uint64_t)NS_PER_MS);
    uint32_t fl = sk_flags(in.seqfield);
    if (fl & SK_F_DIGEST) {
        if (fl & SK_F_BORROWED) {
            /* valid until the task returns to the worker loop, as the API allows */
            sk_digest(in.seqfield, in.claimed, w_digest, &w_env);
            *result = knit_v_envelope(&w_env);
            return 0;
        }
        /* owned: the worker frees the envelope, its header and its body after sending */
        knit_envelope_t *env = malloc(sizeof *env);
        uint8_t *body = malloc(24);
        char *header = NULL;
        if (env && body) {
            sk_digest(in.seqfield, in.claimed, body, env);
            header = strdup(env->header);
        }
        if (!header) {
            free(env);
            free(body);
            *result = knit_v_str("soak: out of memory");
            return KNIT_TASK_REJECT;
        }
        env->header = header;
        env->body.flags |= KNIT_VF_OWNED;
        *result = knit_v_envelope(env);
        result->flags |= KNIT_VF_OWNED;
        return 0;
    }
    *result = *arg;
    *arg = knit_v_undefined();
    if (result->kind == KNIT_KIND_BYTES && result->len > 16) {
        uint8_t *p = (uint8_t *)result->u.ptr; /* the worker's own decoded copy */
        if (fl & SK_F_CORRUPT_ECHO)
            p[result->len - 1] ^= 0x40;
        if (fl & SK_F_WRONG_SEQ) {
            uint64_t sf = (in.seqfield & SK_SEQ_MASK) - 1;
            sk_put_tag(p, sf, sk_hash(sk_salt(sf, KNIT_KIND_BYTES, 0), p + 16, result->len - 16));
        }
    }
    return 0;
}

static int task_soak(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    return serve(arg, result, false);
}

static int task_slow(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    return serve(arg, result, true);
}

/* Tasks are indexed in name order; the host looks them up by name. */
static const knit_task_def_t tasks[] = {
    {.name = "soak", .fn = task_soak},
    {.name = "soak_in_place", .fn = task_soak, .arg_in_place = true},
    {.name = "soak_slow",
        .fn = task_slow,
        .timeout_ms = SLOW_TIMEOUT_MS,
        .on_timeout = KNIT_TIMEOUT_REJECT},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])
enum { T_SOAK, T_IN_PLACE, T_SLOW, T_COUNT };
static const char *const task_names[T_COUNT] = {"soak", "soak_in_place", "soak_slow"};

/* --- options ------------------------------------------------------------------------------- */

/* What a call's argument is. */
enum carrier {
    C_I64,
    C_F64,
    C_DATE,
    C_BIGINT,
    C_STRING,
    C_JSON,
    C_BYTES,
    C_TYPED,
    C_ERROR,
    C_ENVELOPE,
    C_PSB,
    C_SHARED,
    C_MOVED,
    C_COUNT
};
static const char *const carrier_names[C_COUNT] = {"int64", "f64", "date", "bigint", "string",
    "json", "bytes", "typed", "error", "envelope", "psb", "shared", "moved"};
static const unsigned carrier_weight[C_COUNT] = {4, 4, 3, 6, 12, 10, 15, 12, 8, 10, 6, 5, 5};

#define NTRANSPORTS 6 /* knit_transport_t: knit, pipe, unix, seqpacket, tcp, seq */
#define NCOMBOS     (NTRANSPORTS * 2)

typedef struct opts {
    double duration_s;
    uint64_t seed;
    bool seed_given;
    bool transports[NTRANSPORTS];
    bool runtimes[2];
    uint32_t max_workers;
    uint64_t max_payload;
    bool carriers[C_COUNT];
    bool kills;
    bool timeouts;
    bool immediate;        /* immediate shutdowns */
    bool psb_bodies;       /* PSB bodies of envelopes */
    bool borrowed_replies; /* digest replies that borrow the worker's memory */
    uint32_t max_live_pools;
    uint64_t max_pools; /* 0 = no limit */
    double stall_s;
    double progress_s;
    bool json;
    bool verbose;
    bool self_test;
} opts_t;

static opts_t O;

/* --- accounting ---------------------------------------------------------------------------- */

enum reason { R_DIED, R_SHUTDOWN, R_TIMEOUT, R_BOUNDARY, R_ARENA_FULL, R_OTHER, R_COUNT };
static const char *const reason_names[R_COUNT]
    = {"worker_died", "shutdown", "timeout", "process_boundary", "arena_full", "other"};

typedef struct stats {
    uint64_t pools, made, settled, resolved, rejected[R_COUNT];
    uint64_t lost, duplicated, corrupted_arg, corrupted_result, unexpected, kills, hangs;
} stats_t;

static stats_t S[NCOMBOS];

/* Findings, the first MAX_FINDINGS of each category (so a flood of one kind does not hide
 * another). */
#define MAX_FINDINGS 12
enum { F_LOST, F_DUP, F_CORRUPT, F_UNEXPECTED, F_HANG, F_COUNT };
static const char *const finding_names[F_COUNT]
    = {"lost", "duplicated", "corrupted", "unexpected", "hang"};
static char *findings[F_COUNT][MAX_FINDINGS];
static uint64_t nfindings[F_COUNT];

static atomic_uint_fast64_t moved_made, moved_released;

static void finding(int cat, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finding(int cat, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (nfindings[cat] < MAX_FINDINGS)
        findings[cat][nfindings[cat]] = strdup(buf);
    nfindings[cat]++;
    if (O.verbose || nfindings[cat] <= 3)
        fprintf(stderr, "soak: FINDING (%s): %s\n", finding_names[cat], buf);
}

/* Every sequence number's state: 0 never sent, 1 in flight, 2 settled. */
static uint8_t *seq_state;
static uint64_t seq_cap, next_seq;

/* --- the host's random numbers (xorshift64*) --------------------------------------------------
 */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

static uint64_t below(rng_t *r, uint64_t n)
{
    return n ? rnd(r) % n : 0;
}

static bool chance(rng_t *r, unsigned percent)
{
    return below(r, 100) < percent;
}

static rng_t R; /* every decision of the run */

/* --- pools and calls ----------------------------------------------------------------------- */

typedef struct sk_pool sk_pool_t;

typedef struct sk_call {
    struct sk_call *next;         /* every call of the pool */
    struct sk_call *next_settled; /* settled, not yet reaped */
    sk_pool_t *pool;
    knit_future_t *f;
    uint64_t seq, seqfield, sum;
    uint8_t carrier, task;
    uint8_t settles;
    bool reaped;
    bool drop_settle;   /* self-test: the tracker ignores this settlement */
    bool double_settle; /* self-test: the tracker sees this settlement twice */
    knit_psb_t *psb;
    bool psb_named;
    knit_shared_buf_t *shared;
} sk_call_t;

struct sk_pool {
    knit_pool_t *p;
    uint64_t id;
    int combo;
    knit_transport_t transport;
    knit_runtime_t runtime;
    uint32_t workers;
    bool inliner;
    uint64_t max_payload;
    int task[T_COUNT];
    uint64_t budget, issued, deadline_ns;
    uint32_t window;
    size_t inflight;
    uint32_t kills;
    uint64_t kill_at[4];
    int nkill, kill_i;
    bool immediate_shutdown; /* SHUTDOWN rejections are expected */
    bool progress_error_seen;
    sk_call_t *calls, *settled;
    uint64_t last_settle_ns;
    char desc[200];
};

static uint64_t pools_made;

static const char *status_name(int st)
{
    return st == 0 ? "resolved" : knit_strerror(st);
}

static const char *runtime_name(knit_runtime_t rt)
{
    return rt == KNIT_RUNTIME_PROCESS ? "process" : "thread";
}

/* A rejection value as text, for findings. */
static void value_text(const knit_value_t *v, char *buf, size_t n)
{
    if (!v)
        snprintf(buf, n, "(no value)");
    else if (v->kind == KNIT_KIND_STRING)
        snprintf(buf, n, "\"%.*s\"", (int)(v->len < 200 ? v->len : 200), (const char *)v->u.ptr);
    else if (v->kind == KNIT_KIND_ERROR)
        snprintf(buf, n, "%s: %.200s", v->u.err->name, v->u.err->message);
    else
        snprintf(buf, n, "a %s value", knit_kind_name((knit_kind_t)v->kind));
}

/* Self-test injections: the sequence numbers that get each fault. */
enum {
    INJ_ARG_FLIP = 20,
    INJ_ECHO_FLIP,
    INJ_WRONG_SEQ,
    INJ_DOUBLE,
    INJ_DROP,
    INJ_END,
};

/* The result of a resolved call. */
static void check_result(sk_call_t *r, const knit_value_t *v)
{
    sk_pool_t *P = r->pool;
    stats_t *st = &S[P->combo];
    if ((r->carrier == C_SHARED || r->carrier == C_MOVED) && P->runtime == KNIT_RUNTIME_PROCESS
        && !P->inliner) {
        st->unexpected++;
        finding(F_UNEXPECTED,
            "pool %" PRIu64 " (%s) seq %" PRIu64
            ": a %s buffer resolved on process workers instead of KNIT_E_PROCESS_BOUNDARY",
            P->id, P->desc, r->seq, carrier_names[r->carrier]);
        return;
    }
    sk_info_t in;
    char why[160] = "";
    int rc = (sk_flags(r->seqfield) & SK_F_DIGEST) ? sk_check_digest(v, &in)
                                                   : sk_check(v, &in, why, sizeof why);
    if (rc == SK_OK && in.claimed != in.actual)
        rc = SK_MISMATCH;
    uint64_t got = in.seqfield & SK_SEQ_MASK;
    if (rc == SK_OK && got != r->seq) {
        st->duplicated++;
        const char *what = got >= next_seq         ? "was never sent"
            : got < seq_cap && seq_state[got] == 2 ? "was already settled"
                                                   : "belongs to another call in flight";
        finding(F_DUP,
            "pool %" PRIu64 " (%s) seq %" PRIu64 " (%s via %s, %s): the result carries seq %" PRIu64
            ", which %s",
            P->id, P->desc, r->seq, carrier_names[r->carrier], task_names[r->task],
            (sk_flags(r->seqfield) & SK_F_DIGEST) ? "digest" : "echo", got, what);
        return;
    }
    if (rc == SK_OK && in.claimed != r->sum)
        rc = SK_MISMATCH;
    if (rc != SK_OK) {
        st->corrupted_result++;
        finding(F_CORRUPT,
            "pool %" PRIu64 " (%s) seq %" PRIu64
            " (%s via %s, %s): the result is corrupt: %s (sent sum %016" PRIx64
            ", carried %016" PRIx64 ", computed %016" PRIx64 ")",
            P->id, P->desc, r->seq, carrier_names[r->carrier], task_names[r->task],
            (sk_flags(r->seqfield) & SK_F_DIGEST) ? "digest" : "echo",
            rc == SK_MALFORMED ? (why[0] ? why : "not a carrier") : "checksum mismatch", r->sum,
            in.claimed, in.actual);
        return;
    }
    st->resolved++;
}

static void check_rejection(sk_call_t *r, int status, const knit_value_t *v)
{
    sk_pool_t *P = r->pool;
    stats_t *st = &S[P->combo];
    int reason = -1;
    switch (status) {
    case KNIT_E_TASK:
        if (v && v->kind == KNIT_KIND_ERROR && v->u.err->name
            && !strcmp(v->u.err->name, "SoakCorrupt")) {
            st->corrupted_arg++;
            finding(F_CORRUPT,
                "pool %" PRIu64 " (%s) seq %" PRIu64
                " (%s via %s): the worker received a corrupt argument: %s",
                P->id, P->desc, r->seq, carrier_names[r->carrier], task_names[r->task],
                v->u.err->message);
            return;
        }
        break;
    case KNIT_E_WORKER_DIED:
    case KNIT_E_WORKER_STARTUP:
        if (P->kills > 0)
            reason = R_DIED;
        break;
    case KNIT_E_SHUTDOWN:
        if (P->immediate_shutdown)
            reason = R_SHUTDOWN;
        break;
    case KNIT_E_TIMEOUT:
        if (r->task == T_SLOW)
            reason = R_TIMEOUT;
        break;
    case KNIT_E_PROCESS_BOUNDARY:
        if ((r->carrier == C_SHARED || r->carrier == C_MOVED) && P->runtime == KNIT_RUNTIME_PROCESS)
            reason = R_BOUNDARY;
        break;
    case KNIT_E_ARENA_FULL:
        reason = R_ARENA_FULL;
        break;
    default:
        break;
    }
    if (reason >= 0) {
        st->rejected[reason]++;
        return;
    }
    st->rejected[R_OTHER]++;
    st->unexpected++;
    char text[300];
    value_text(v, text, sizeof text);
    finding(F_UNEXPECTED,
        "pool %" PRIu64 " (%s) seq %" PRIu64 " (%s via %s): unexpected rejection %s: %s", P->id,
        P->desc, r->seq, carrier_names[r->carrier], task_names[r->task], status_name(status), text);
}

/* One settlement as the tracker sees it. */
static void track(sk_call_t *r, knit_future_t *f)
{
    sk_pool_t *P = r->pool;
    stats_t *st = &S[P->combo];
    if (++r->settles > 1) {
        st->duplicated++;
        finding(F_DUP, "pool %" PRIu64 " (%s) seq %" PRIu64 " (%s via %s): settled %u times", P->id,
            P->desc, r->seq, carrier_names[r->carrier], task_names[r->task], r->settles);
        return;
    }
    seq_state[r->seq] = 2;
    st->settled++;
    P->inflight--;
    P->last_settle_ns = now_ns();
    r->next_settled = P->settled;
    P->settled = r;
    int status = knit_future_status(f);
    const knit_value_t *v = knit_future_value(f);
    if (status == 0)
        check_result(r, v);
    else
        check_rejection(r, status, v);
}

static void on_settle(knit_future_t *f, void *ctx)
{
    sk_call_t *r = ctx;
    if (r->drop_settle) {
        r->drop_settle = false;
        return;
    }
    track(r, f);
    if (r->double_settle) {
        r->double_settle = false;
        track(r, f);
    }
}

/* Release what settled calls hold (their records stay until the pool is gone). */
static void reap(sk_pool_t *P)
{
    while (P->settled) {
        sk_call_t *r = P->settled;
        P->settled = r->next_settled;
        knit_future_release(r->f);
        r->f = NULL;
        if (r->psb) {
            if (r->psb_named)
                knit_psb_unlink(r->psb);
            knit_psb_close(r->psb);
            r->psb = NULL;
        }
        if (r->shared) {
            knit_shared_buf_release(r->shared);
            r->shared = NULL;
        }
        r->reaped = true;
    }
}

/* --- building arguments -------------------------------------------------------------------- */

static void fill_random(rng_t *g, uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t w = rnd(g);
        memcpy(p, &w, 8);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = rnd(g);
        memcpy(p, &w, n);
    }
}

/* n bytes of valid UTF-8 text: mostly ASCII (quotes, backslashes and newlines included, which
 * JSON-encoded carriers must escape), some 2-, 3- and 4-byte characters. */
static void fill_text(rng_t *g, char *p, size_t n)
{
    static const char ascii[] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                ".,;:-_+*/=()[]{}<>!?'\"\\\n\t";
    size_t i = 0;
    while (i < n) {
        uint64_t x = rnd(g);
        unsigned pick = (unsigned)(x % 100);
        size_t left = n - i;
        if (pick < 85 || left < 4) {
            p[i++] = ascii[(x >> 8) % (sizeof ascii - 1)];
        } else if (pick < 92) { /* U+0080..U+07FF */
            unsigned c = 0x80u + (unsigned)((x >> 8) % 0x780u);
            p[i++] = (char)(0xc0 | (c >> 6));
            p[i++] = (char)(0x80 | (c & 0x3f));
        } else if (pick < 97) { /* U+0800..U+FFFF without surrogates */
            unsigned c = 0x800u + (unsigned)((x >> 8) % (0xd800u - 0x800u));
            p[i++] = (char)(0xe0 | (c >> 12));
            p[i++] = (char)(0x80 | ((c >> 6) & 0x3f));
            p[i++] = (char)(0x80 | (c & 0x3f));
        } else { /* U+10000..U+10FFFF */
            unsigned c = 0x10000u + (unsigned)((x >> 8) % 0x100000u);
            p[i++] = (char)(0xf0 | (c >> 18));
            p[i++] = (char)(0x80 | ((c >> 12) & 0x3f));
            p[i++] = (char)(0x80 | ((c >> 6) & 0x3f));
            p[i++] = (char)(0x80 | (c & 0x3f));
        }
    }
}

/* A JSON array of at most `cap` bytes (at least "[]"); returns its length. */
static size_t fill_json(rng_t *g, char *p, size_t cap)
{
    size_t n = 0;
    p[n++] = '[';
    int depth = 0;
    bool first = true;
    while (n + 48 + (size_t)depth < cap) {
        if (!first)
            p[n++] = ',';
        first = false;
        uint64_t x = rnd(g);
        switch (x % 8) {
        case 0:
            n += (size_t)sprintf(p + n, "%" PRId64, (int64_t)(x >> 8) - (int64_t)(1ull << 54));
            break;
        case 1:
            n += (size_t)sprintf(p + n, "%.6g", (double)(x >> 11) / 65536.0);
            break;
        case 2:
            n += (size_t)sprintf(p + n, "%s",
                (x >> 8) % 3 == 0       ? "true"
                    : (x >> 8) % 3 == 1 ? "false"
                                        : "null");
            break;
        case 3: {
            p[n++] = '"';
            size_t len = (x >> 8) % 24;
            fill_text(g, p + n, len);
            /* make the text a valid JSON string: escape what must be escaped */
            for (size_t i = 0; i < len; i++) {
                char c = p[n + i];
                if (c == '"' || c == '\\' || c == '\n' || c == '\t')
                    p[n + i] = '_';
            }
            n += len;
            n += (size_t)sprintf(p + n, "\\n\\\"\\u00e9\"");
            break;
        }
        case 4:
            if (depth < 8) {
                n += (size_t)sprintf(p + n, "{\"k%u\":[", (unsigned)((x >> 8) % 100));
                depth++;
                first = true;
            } else {
                n += (size_t)sprintf(p + n, "0");
            }
            break;
        case 5:
            if (depth > 0) {
                n += (size_t)sprintf(p + n, "0]}");
                depth--;
            } else {
                n += (size_t)sprintf(p + n, "{}");
            }
            break;
        default:
            n += (size_t)sprintf(p + n, "%u", (unsigned)(x >> 40));
            break;
        }
    }
    while (depth-- > 0)
        n += (size_t)sprintf(p + n, "]}");
    p[n++] = ']';
    return n;
}

/* A payload size for a pool whose per-value limit is `max`: half of them small enough for the
 * slot, most of the rest up to 16 KiB, a few up to the limit. */
static size_t pick_size(rng_t *g, uint64_t max)
{
    unsigned r = (unsigned)below(g, 100);
    uint64_t lo, hi;
    if (r < 50)
        lo = 0, hi = 512;
    else if (r < 80)
        lo = 513, hi = 16384;
    else if (r < 95)
        lo = 16384, hi = max / 4;
    else
        lo = max / 4, hi = max;
    if (hi > max)
        hi = max;
    if (lo > hi)
        lo = hi;
    return (size_t)(lo + below(g, hi - lo + 1));
}

/* Storage of one argument while knit_call borrows it. */
typedef struct scratch {
    void *mem[4];
    int nmem;
    knit_error_value_t err, inner;
    knit_value_t cause, inner_cause;
    knit_envelope_t env;
    knit_psb_desc_t desc;
} scratch_t;

static void *scratch_alloc(scratch_t *s, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "soak: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    s->mem[s->nmem++] = p;
    return p;
}

static void scratch_free(scratch_t *s)
{
    for (int i = 0; i < s->nmem; i++)
        free(s->mem[i]);
    s->nmem = 0;
}

static void moved_release(void *data, void *ctx)
{
    (void)ctx;
    free(data);
    atomic_fetch_add(&moved_released, 1);
}

/* A PSB holding [pad][tag][payload]; the descriptor covers the tag and payload. */
static int make_psb(rng_t *g, sk_call_t *r, size_t len, knit_psb_desc_t *desc, uint8_t **data)
{
    size_t pad = (size_t)below(g, 4) * 8;
    static uint64_t psb_names;
    int rc;
    if (chance(g, 20)) {
        char name[32];
        snprintf(name, sizeof name, "/soak-%d-%" PRIu64, (int)getpid(), psb_names++);
        rc = knit_psb_create_named(name, pad + len + 8, &r->psb);
        r->psb_named = rc == 0;
    } else {
        rc = knit_psb_create(pad + len + 8, &r->psb);
    }
    if (rc < 0)
        return rc;
    *data = (uint8_t *)knit_psb_data(r->psb) + pad;
    return knit_psb_describe(r->psb, pad, len, desc);
}

/* Build the argument of call r; returns the value (borrowing `s` and r's PSB or shared
 * buffer). */
static knit_value_t build(sk_pool_t *P, sk_call_t *r, scratch_t *s)
{
    rng_t g = {sk_mix64(O.seed ^ sk_mix64(r->seq + 1)) | 1}; /* the payload's own stream */
    uint64_t max = P->max_payload > 1024 ? P->max_payload - 1024 : 0;
    size_t n = pick_size(&g, max);
    uint64_t sf = r->seqfield;
    knit_value_t v = knit_v_null();
    switch (r->carrier) {
    case C_I64: {
        int64_t x = sk_scalar_i64(r->seq);
        r->seqfield = r->seq;
        r->sum = (uint64_t)x & 0xffffu;
        return knit_v_int64(x);
    }
    case C_F64:
    case C_DATE: {
        double d = sk_scalar_f64(r->seq);
        r->seqfield = r->seq;
        r->sum = (uint64_t)d & 1023u;
        return r->carrier == C_F64 ? knit_v_f64(d) : knit_v_date(d);
    }
    case C_BYTES:
    case C_TYPED:
    case C_BIGINT:
    case C_SHARED:
    case C_MOVED:
    case C_PSB: {
        unsigned kind = KNIT_KIND_BYTES, sub = 0;
        if (r->carrier == C_TYPED) {
            kind = KNIT_KIND_TYPED;
            sub = (unsigned)below(&g, KNIT_ELEM_COUNT_);
            size_t es = knit_elem_size((knit_elem_t)sub);
            n = n / es * es;
        } else if (r->carrier == C_BIGINT) {
            kind = KNIT_KIND_BIGINT;
            sub = chance(&g, 50);
            if (n == 0)
                n = 1;
        } else if (r->carrier == C_SHARED) {
            kind = KNIT_KIND_SHARED;
        } else if (r->carrier == C_MOVED) {
            kind = KNIT_KIND_MOVED;
        } else if (r->carrier == C_PSB) {
            kind = KNIT_KIND_PSB;
        }
        uint8_t *p = NULL;
        if (r->carrier == C_SHARED) {
            if (knit_shared_buf_new(16 + n, &r->shared) < 0) {
                fprintf(stderr, "soak: knit_shared_buf_new: %s\n", knit_errmsg());
                exit(1);
            }
            p = knit_shared_buf_data(r->shared);
        } else if (r->carrier == C_MOVED) {
            p = malloc(16 + n);
            if (!p) {
                fprintf(stderr, "soak: out of memory\n");
                exit(1);
            }
        } else if (r->carrier == C_PSB) {
            int rc = make_psb(&g, r, 16 + n, &s->desc, &p);
            if (rc < 0) {
                fprintf(stderr, "soak: knit_psb_create: %s\n", knit_errmsg());
                exit(1);
            }
        } else {
            p = scratch_alloc(s, 16 + n);
        }
        fill_random(&g, p + 16, n);
        if (r->carrier == C_BIGINT)
            p[16 + n - 1] |= 1; /* no leading zero: the magnitude keeps its length */
        r->sum = sk_hash(sk_salt(sf, kind, sub), p + 16, n);
        sk_put_tag(p, sf, r->sum);
        if (O.self_test && r->seq == INJ_ARG_FLIP)
            p[16 + n / 2] ^= 0x08; /* after the checksum: the worker must notice */
        switch (r->carrier) {
        case C_TYPED:
            return knit_v_typed((knit_elem_t)sub, p, 16 + n);
        case C_BIGINT:
            v = knit_v_bigint(sub, p, 16 + n);
            return v;
        case C_SHARED:
            return knit_v_shared(r->shared);
        case C_MOVED: {
            knit_moved_buf_t *m = NULL;
            if (knit_moved_new(p, 16 + n, moved_release, NULL, &m) < 0) {
                fprintf(stderr, "soak: knit_moved_new: %s\n", knit_errmsg());
                exit(1);
            }
            atomic_fetch_add(&moved_made, 1);
            return knit_v_moved(m);
        }
        case C_PSB:
            return knit_v_psb(&s->desc);
        default:
            return knit_v_bytes(p, 16 + n);
        }
    }
    case C_STRING: {
        char *p = scratch_alloc(s, 34 + n);
        fill_text(&g, p + 34, n);
        r->sum = sk_hash(sk_salt(sf, KNIT_KIND_STRING, 0), p + 34, n);
        sk_put_text_tag(p, sf, r->sum);
        return knit_v_strn(p, 34 + n);
    }
    case C_JSON: {
        char *p = scratch_alloc(s, 38 + n + 64);
        size_t len = fill_json(&g, p + 37, n + 64);
        r->sum = sk_hash(sk_salt(sf, KNIT_KIND_JSON, 0), p + 37, len);
        p[0] = '[';
        p[1] = '"';
        char tag[34];
        sk_put_text_tag(tag, sf, r->sum);
        memcpy(p + 2, tag, 33);
        p[35] = '"';
        p[36] = ',';
        p[37 + len] = ']';
        return knit_v_jsonn(p, 38 + len);
    }
    case C_ERROR: {
        n /= 6; /* JSON-encoded: escapes may grow it up to six times */
        char *p = scratch_alloc(s, 34 + n + 1);
        fill_text(&g, p + 34, n);
        p[34 + n] = 0;
        /* the cause: none, or one of the kinds an error may carry */
        bool has_cause = true;
        switch (below(&g, 9)) {
        case 0:
            has_cause = false;
            break;
        case 1:
            s->cause = knit_v_null();
            break;
        case 2:
            s->cause = knit_v_bool(chance(&g, 50));
            break;
        case 3:
            s->cause = knit_v_f64((double)(int64_t)(rnd(&g) >> 12) / 8.0);
            break;
        case 4:
            s->cause = knit_v_int64((int64_t)rnd(&g));
            break;
        case 5: {
            size_t cl = (size_t)below(&g, 200);
            char *c = scratch_alloc(s, cl);
            fill_text(&g, c, cl);
            s->cause = knit_v_strn(c, cl);
            break;
        }
        case 6: {
            char *c = scratch_alloc(s, 600);
            s->cause = knit_v_jsonn(c, fill_json(&g, c, 600));
            break;
        }
        case 7:
            s->cause = knit_v_undefined();
            break;
        default: {
            char *c = scratch_alloc(s, 41);
            fill_text(&g, c, 40);
            c[40] = 0;
            s->inner = (knit_error_value_t) {.name = "RangeError", .message = c};
            s->inner_cause = knit_v_int64((int64_t)rnd(&g));
            s->inner.cause = chance(&g, 50) ? &s->inner_cause : NULL;
            s->cause = knit_v_error(&s->inner);
            break;
        }
        }
        s->err.name = "SoakError";
        s->err.message = p;
        s->err.cause = has_cause ? &s->cause : NULL;
        uint64_t h = sk_hash(sk_salt(sf, KNIT_KIND_ERROR, 0), p + 34, n);
        r->sum = sk_hash_cause(h, s->err.cause);
        sk_put_text_tag(p, sf, r->sum);
        return knit_v_error(&s->err);
    }
    case C_ENVELOPE: {
        knit_envelope_t *e = &s->env;
        e->header_kind = chance(&g, 50) ? KNIT_ENV_JSON : KNIT_ENV_STRING;
        size_t extra = e->header_kind == KNIT_ENV_STRING ? (size_t)below(&g, 1500) : 0;
        if (extra > max / 4)
            extra = (size_t)(max / 4);
        if (n + extra > max) /* header and body share the per-value limit */
            n = (size_t)(max - extra);
        char *h = scratch_alloc(s, 44 + extra);
        if (extra)
            fill_text(&g, h + 34, extra);
        bool psb_body = O.psb_bodies && O.carriers[C_PSB] && chance(&g, 25);
        uint8_t *body;
        if (psb_body) {
            if (make_psb(&g, r, n ? n : 1, &s->desc, &body) < 0) {
                fprintf(stderr, "soak: knit_psb_create: %s\n", knit_errmsg());
                exit(1);
            }
            n = n ? n : 1;
            e->body = knit_v_psb(&s->desc);
        } else {
            body = scratch_alloc(s, n);
            e->body = knit_v_bytes(body, n);
        }
        fill_random(&g, body, n);
        unsigned sub = e->header_kind | (unsigned)e->body.kind << 4;
        uint64_t hh = sk_hash(sk_salt(sf, KNIT_KIND_ENVELOPE, sub), h + 34, extra);
        r->sum = sk_hash(hh, body, n);
        char tag[34];
        sk_put_text_tag(tag, sf, r->sum);
        if (e->header_kind == KNIT_ENV_JSON) {
            memcpy(h, "{\"soak\":\"", 9);
            memcpy(h + 9, tag, 33);
            memcpy(h + 42, "\"}", 2);
            e->header_len = 44;
        } else {
            memcpy(h, tag, 34);
            e->header_len = 34 + extra;
        }
        e->header = h;
        return knit_v_envelope(e);
    }
    default:
        return v;
    }
}

/* --- issuing calls ------------------------------------------------------------------------- */

static void grow_seq_state(void)
{
    if (next_seq < seq_cap)
        return;
    uint64_t cap = seq_cap ? seq_cap * 2 : 1u << 16;
    uint8_t *p = realloc(seq_state, cap);
    if (!p) {
        fprintf(stderr, "soak: out of memory\n");
        exit(1);
    }
    memset(p + seq_cap, 0, cap - seq_cap);
    seq_state = p;
    seq_cap = cap;
}

static int pick_carrier(const sk_pool_t *P)
{
    unsigned total = 0;
    for (int c = 0; c < C_COUNT; c++)
        total += O.carriers[c] ? carrier_weight[c] : 0;
    unsigned x = (unsigned)below(&R, total);
    for (int c = 0; c < C_COUNT; c++) {
        if (!O.carriers[c])
            continue;
        if (x < carrier_weight[c])
            return c;
        x -= carrier_weight[c];
    }
    (void)P;
    return C_BYTES;
}

static void issue(sk_pool_t *P)
{
    grow_seq_state();
    sk_call_t *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "soak: out of memory\n");
        exit(1);
    }
    r->pool = P;
    r->seq = next_seq++;
    r->carrier = (uint8_t)pick_carrier(P);
    unsigned t = (unsigned)below(&R, 100);
    r->task = t < 70 ? T_SOAK : (t < 90 || !O.timeouts) ? T_IN_PLACE : T_SLOW;
    uint32_t flags = chance(&R, 30) ? SK_F_DIGEST : 0;
    bool borrow = chance(&R, 50); /* drawn always: the option leaves the stream as it is */
    if (flags && O.borrowed_replies && borrow)
        flags |= SK_F_BORROWED;
    if (O.self_test && r->seq >= INJ_ARG_FLIP && r->seq < INJ_END) {
        r->carrier = C_BYTES;
        r->task = T_SOAK;
        flags = r->seq == INJ_ECHO_FLIP ? SK_F_CORRUPT_ECHO
            : r->seq == INJ_WRONG_SEQ   ? SK_F_WRONG_SEQ
                                        : 0;
        r->double_settle = r->seq == INJ_DOUBLE;
        r->drop_settle = r->seq == INJ_DROP;
    }
    r->seqfield = r->seq | (uint64_t)flags << 56;
    scratch_t s = {0};
    knit_value_t v = build(P, r, &s);
    if (O.self_test && r->seq >= INJ_ARG_FLIP && r->seq < INJ_END && v.len < 64) {
        /* the faults need a payload: rebuild until it has one (the size is random) */
        scratch_free(&s);
        uint8_t *p = scratch_alloc(&s, 80);
        memset(p + 16, 0x5a, 64);
        r->sum = sk_hash(sk_salt(r->seqfield, KNIT_KIND_BYTES, 0), p + 16, 64);
        sk_put_tag(p, r->seqfield, r->sum);
        if (r->seq == INJ_ARG_FLIP)
            p[40] ^= 0x08;
        v = knit_v_bytes(p, 80);
    }
    r->next = P->calls;
    P->calls = r;
    seq_state[r->seq] = 1;
    S[P->combo].made++;
    P->inflight++;
    P->issued++;
    int rc = knit_call(P->p, P->task[r->task], &v, &r->f);
    scratch_free(&s);
    if (rc < 0) {
        /* no future: the call was never made */
        S[P->combo].unexpected++;
        finding(F_UNEXPECTED,
            "pool %" PRIu64 " (%s) seq %" PRIu64 " (%s): knit_call failed: %s (%s)", P->id, P->desc,
            r->seq, carrier_names[r->carrier], knit_strerror(rc), knit_errmsg());
        r->settles = 1; /* accounted for */
        P->inflight--;
        seq_state[r->seq] = 2;
        S[P->combo].settled++;
        return;
    }
    knit_future_on_settle(r->f, on_settle, r);
}

/* --- pools --------------------------------------------------------------------------------- */

static int pick_from(const bool *allowed, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += allowed[i];
    int x = (int)below(&R, (uint64_t)k);
    for (int i = 0; i < n; i++)
        if (allowed[i] && x-- == 0)
            return i;
    return 0;
}

static sk_pool_t *pool_new(void)
{
    sk_pool_t *P = calloc(1, sizeof *P);
    if (!P) {
        fprintf(stderr, "soak: out of memory\n");
        exit(1);
    }
    P->id = ++pools_made;
    knit_pool_opts_t o = {0};
    P->transport = (knit_transport_t)pick_from(O.transports, NTRANSPORTS);
    P->runtime = (knit_runtime_t)pick_from(O.runtimes, 2);
    P->combo = (int)P->transport * 2 + (int)P->runtime;
    P->workers = 1 + (uint32_t)below(&R, O.max_workers);
    o.threads = P->workers;
    o.runtime = P->runtime;
    o.transport = P->transport;
    o.balancer = (knit_balancer_t)below(&R, 5);
    o.dispatcher = (knit_dispatcher_t)below(&R, 3);
    if (P->transport == KNIT_TRANSPORT_KNIT && P->runtime == KNIT_RUNTIME_THREAD)
        o.steal = (knit_steal_t)below(&R, 3); /* stealing: the knit transport, threads only */
    P->inliner = chance(&R, 15);
    o.inliner.enabled = P->inliner;
    o.inliner.batch_size = (uint32_t)below(&R, 4);
    int64_t spins[3] = {0, -1, 200000};
    o.wait.spin_ns = spins[below(&R, 3)];
    static const uint64_t limits[] = {16u << 10, 64u << 10, 256u << 10, 1u << 20};
    uint64_t maxp = limits[below(&R, 4)];
    if (maxp > O.max_payload)
        maxp = O.max_payload;
    P->max_payload = maxp;
    o.payload.max_payload_bytes = maxp;
    o.payload.max_byte_length = maxp * 8;
    if (P->runtime == KNIT_RUNTIME_PROCESS) {
        o.worker.process.no_respawn = chance(&R, 10);
        o.worker.process.fork_exec = chance(&R, 20);
        if (chance(&R, 20)) {
            o.worker.process.shared_memory = KNIT_SHM_NAMED;
            o.worker.process.name_prefix = "soak";
        }
    }
    P->window = (uint32_t[]) {1, 4, 16, 64, 256}[below(&R, 5)];
    P->budget = 100 + below(&R, O.self_test ? 2000 : 20000);
    uint64_t life_ms = 300 + below(&R, 5000);
    if (O.kills && P->runtime == KNIT_RUNTIME_PROCESS) {
        P->nkill = (int)below(&R, 4);
        for (int i = 0; i < P->nkill; i++)
            P->kill_at[i] = below(&R, P->budget);
        for (int i = 1; i < P->nkill; i++) /* in order */
            for (int j = i; j > 0 && P->kill_at[j] < P->kill_at[j - 1]; j--) {
                uint64_t t = P->kill_at[j];
                P->kill_at[j] = P->kill_at[j - 1];
                P->kill_at[j - 1] = t;
            }
    }
    snprintf(P->desc, sizeof P->desc,
        "%s/%s x%u %s%s%s%s%s spin %" PRId64 " max %" PRIu64 " KiB window %u%s%s",
        knit_transport_name(P->transport), runtime_name(P->runtime), P->workers,
        knit_balancer_name(o.balancer), o.dispatcher ? " " : "",
        o.dispatcher ? knit_dispatcher_name(o.dispatcher) : "",
        o.steal == KNIT_STEAL_ON        ? " steal"
            : o.steal == KNIT_STEAL_OFF ? " nosteal"
                                        : "",
        P->inliner ? " inline" : "", o.wait.spin_ns, maxp >> 10, P->window,
        o.worker.process.no_respawn ? " no-respawn" : "",
        o.worker.process.shared_memory == KNIT_SHM_NAMED ? " named-shm" : "");
    int rc = knit_pool_create(&o, tasks, NTASKS, &P->p);
    if (rc < 0) {
        finding(F_UNEXPECTED, "pool %" PRIu64 " (%s): knit_pool_create failed: %s (%s)", P->id,
            P->desc, knit_strerror(rc), knit_errmsg());
        S[P->combo].unexpected++;
        free(P);
        return NULL;
    }
    for (int t = 0; t < T_COUNT; t++)
        P->task[t] = knit_task_index(P->p, task_names[t]);
    P->last_settle_ns = now_ns();
    P->deadline_ns = P->last_settle_ns + life_ms * NS_PER_MS;
    S[P->combo].pools++;
    if (O.verbose)
        fprintf(stderr, "soak: pool %" PRIu64 ": %s, %" PRIu64 " calls, %d kills\n", P->id, P->desc,
            P->budget, P->nkill);
    return P;
}

/* What the host thread is inside, for the watchdog. */
static _Atomic uint64_t wd_since_ns;
static const char *_Atomic wd_what;
static char wd_pool[256];

static void wd_enter(const char *what, const sk_pool_t *P)
{
    snprintf(wd_pool, sizeof wd_pool, "pool %" PRIu64 " (%s)", P->id, P->desc);
    atomic_store(&wd_what, what);
    atomic_store(&wd_since_ns, now_ns());
}

static void wd_leave(void)
{
    atomic_store(&wd_since_ns, 0);
}

static void do_kills(sk_pool_t *P)
{
    while (P->kill_i < P->nkill && P->issued >= P->kill_at[P->kill_i]) {
        P->kill_i++;
        uint32_t w = (uint32_t)below(&R, P->workers);
        int32_t pid = knit_pool_worker_pid(P->p, w);
        if (pid <= 0)
            continue; /* being replaced (or never replaced: no-respawn) */
        P->kills++;   /* before the kill: its rejections are expected from now on */
        S[P->combo].kills++;
        if (kill((pid_t)pid, SIGKILL) < 0 && O.verbose)
            fprintf(stderr, "soak: kill %d: %s\n", (int)pid, strerror(errno));
    }
}

static void stall_check(sk_pool_t *P, uint64_t now);

/* Keep the pool busy: top up its window, kill if it is time, drive it once. */
static void step(sk_pool_t *P, int64_t wait_ns)
{
    for (int n = 0; n < 64 && P->inflight < P->window && P->issued < P->budget; n++)
        issue(P);
    do_kills(P);
    wd_enter("knit_pool_progress", P);
    int rc = knit_pool_progress(P->p, wait_ns);
    wd_leave();
    if (rc < 0 && !P->progress_error_seen) {
        P->progress_error_seen = true;
        S[P->combo].unexpected++;
        finding(F_UNEXPECTED, "pool %" PRIu64 " (%s): knit_pool_progress: %s (%s)", P->id, P->desc,
            knit_strerror(rc), knit_errmsg());
    }
    reap(P);
}

static bool hung(sk_pool_t *P, uint64_t now)
{
    return P->inflight > 0 && now - P->last_settle_ns > (uint64_t)(O.stall_s * NS_PER_S);
}

static void stall_check(sk_pool_t *P, uint64_t now)
{
    if (!hung(P, now))
        return;
    S[P->combo].hangs++;
    finding(F_HANG,
        "pool %" PRIu64 " (%s): hang: %zu calls in flight, none settled for %.0f s (%" PRIu64
        " calls made, %u kills)",
        P->id, P->desc, P->inflight, O.stall_s, P->issued, P->kills);
}

/* Close the pool (drain or immediate shutdown), account for every call, destroy it. */
static void pool_end(sk_pool_t *P, bool hang)
{
    bool immediate = hang || (O.immediate && !O.self_test && chance(&R, 50));
    uint32_t delay = immediate ? (uint32_t)below(&R, 10) : 0;
    if (immediate) {
        P->immediate_shutdown = true;
        wd_enter("knit_pool_shutdown (immediate)", P);
        knit_pool_shutdown(P->p, KNIT_SHUTDOWN_IMMEDIATE, delay);
    } else {
        /* drain by driving the pool, so a call that never settles is seen as a hang */
        while (P->inflight > 0 && knit_pool_pending(P->p) > 0) {
            step(P, (int64_t)NS_PER_MS);
            if (hung(P, now_ns())) {
                stall_check(P, now_ns());
                P->immediate_shutdown = true;
                wd_enter("knit_pool_shutdown (immediate, after a hang)", P);
                knit_pool_shutdown(P->p, KNIT_SHUTDOWN_IMMEDIATE, 0);
                break;
            }
        }
        wd_enter("knit_pool_shutdown (drain)", P);
        knit_pool_shutdown(P->p, KNIT_SHUTDOWN_DRAIN, 0);
    }
    wd_enter("knit_pool_progress after shutdown", P);
    knit_pool_progress(P->p, 0);
    wd_leave();
    /* a call after shutdown settles at once with KNIT_E_SHUTDOWN */
    knit_value_t probe = knit_v_int64(sk_scalar_i64(0));
    knit_future_t *f = NULL;
    if (knit_call(P->p, P->task[T_SOAK], &probe, &f) == 0) {
        int st = knit_future_status(f);
        if (st != KNIT_E_SHUTDOWN) {
            S[P->combo].unexpected++;
            finding(F_UNEXPECTED,
                "pool %" PRIu64 " (%s): a call after shutdown settled with %s, not at once "
                "with KNIT_E_SHUTDOWN",
                P->id, P->desc, st == KNIT_E_AGAIN ? "nothing" : status_name(st));
        }
        knit_future_release(f);
    }
    reap(P);
    uint64_t lost = 0;
    for (sk_call_t *r = P->calls; r; r = r->next) {
        if (r->settles > 0)
            continue;
        lost++;
        S[P->combo].lost++;
        seq_state[r->seq] = 2;
        int st = r->f ? knit_future_status(r->f) : KNIT_E_AGAIN;
        if (lost <= 3)
            finding(F_LOST,
                "pool %" PRIu64 " (%s) seq %" PRIu64 " (%s via %s): lost: not settled when "
                "the pool closed (%s shutdown; the future says %s; %u kills)",
                P->id, P->desc, r->seq, carrier_names[r->carrier], task_names[r->task],
                immediate ? "immediate" : "drain", st == KNIT_E_AGAIN ? "pending" : status_name(st),
                P->kills);
    }
    if (lost > 3)
        finding(
            F_LOST, "pool %" PRIu64 " (%s): %" PRIu64 " calls lost in all", P->id, P->desc, lost);
    size_t pending = knit_pool_pending(P->p);
    wd_enter("knit_pool_destroy", P);
    knit_pool_destroy(P->p);
    wd_leave();
    (void)pending;
    while (P->calls) {
        sk_call_t *r = P->calls;
        P->calls = r->next;
        if (r->f)
            knit_future_release(r->f);
        if (r->psb) {
            if (r->psb_named)
                knit_psb_unlink(r->psb);
            knit_psb_close(r->psb);
        }
        if (r->shared)
            knit_shared_buf_release(r->shared);
        free(r);
    }
    free(P);
}

/* --- the watchdog -------------------------------------------------------------------------- */

/* A library call that never returns (a hang inside shutdown, a join that never ends) cannot be
 * seen from the host thread: this thread ends the run with the seed and where it stuck. */
static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        uint64_t since = atomic_load(&wd_since_ns);
        if (since && now_ns() - since > (uint64_t)(2 * O.stall_s * NS_PER_S)) {
            fprintf(stderr,
                "soak: FINDING: hang: %s did not return for %.0f s in %s (seed %" PRIu64
                "); stopping\n",
                atomic_load(&wd_what), 2 * O.stall_s, wd_pool, O.seed);
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

/* --- output -------------------------------------------------------------------------------- */

static void total(stats_t *t)
{
    memset(t, 0, sizeof *t);
    for (int c = 0; c < NCOMBOS; c++) {
        t->pools += S[c].pools;
        t->made += S[c].made;
        t->settled += S[c].settled;
        t->resolved += S[c].resolved;
        for (int k = 0; k < R_COUNT; k++)
            t->rejected[k] += S[c].rejected[k];
        t->lost += S[c].lost;
        t->duplicated += S[c].duplicated;
        t->corrupted_arg += S[c].corrupted_arg;
        t->corrupted_result += S[c].corrupted_result;
        t->unexpected += S[c].unexpected;
        t->kills += S[c].kills;
        t->hangs += S[c].hangs;
    }
}

static uint64_t inflight_now(sk_pool_t *const *live, int n)
{
    uint64_t k = 0;
    for (int i = 0; i < n; i++)
        k += live[i] ? live[i]->inflight : 0;
    return k;
}

static void progress_line(double elapsed, uint64_t inflight)
{
    stats_t t;
    total(&t);
    fprintf(stderr,
        "soak: %5.0f/%.0f s  calls %" PRIu64 "  settled %" PRIu64 "  in flight %" PRIu64
        "  pools %" PRIu64 "  kills %" PRIu64 "  lost %" PRIu64 "  duplicated %" PRIu64
        "  corrupted %" PRIu64 "  unexpected %" PRIu64 "\n",
        elapsed, O.duration_s, t.made, t.settled, inflight, t.pools, t.kills, t.lost, t.duplicated,
        t.corrupted_arg + t.corrupted_result, t.unexpected);
}

static void print_summary(FILE *out, double elapsed)
{
    stats_t t;
    total(&t);
    fprintf(out,
        "knit-soak: seed %" PRIu64 ", %.1f s, %" PRIu64 " calls, %" PRIu64 " pools, %" PRIu64
        " kills\n\n",
        O.seed, elapsed, t.made, t.pools, t.kills);
    fprintf(out, "%-16s %6s %9s %9s %9s %7s %8s %7s %8s %6s %5s %5s %5s %5s %5s\n", "combination",
        "pools", "calls", "settled", "resolved", "died", "shutdown", "timeout", "boundary", "kills",
        "lost", "dup", "corr", "unexp", "hang");
    for (int c = 0; c < NCOMBOS + 1; c++) {
        const stats_t *s = c < NCOMBOS ? &S[c] : &t;
        if (c < NCOMBOS && s->pools == 0)
            continue;
        char name[40];
        if (c < NCOMBOS)
            snprintf(name, sizeof name, "%s/%s", knit_transport_name((knit_transport_t)(c / 2)),
                runtime_name((knit_runtime_t)(c % 2)));
        else
            snprintf(name, sizeof name, "total");
        fprintf(out,
            "%-16s %6" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %7" PRIu64 " %8" PRIu64
            " %7" PRIu64 " %8" PRIu64 " %6" PRIu64 " %5" PRIu64 " %5" PRIu64 " %5" PRIu64
            " %5" PRIu64 " %5" PRIu64 "\n",
            name, s->pools, s->made, s->settled, s->resolved, s->rejected[R_DIED],
            s->rejected[R_SHUTDOWN], s->rejected[R_TIMEOUT], s->rejected[R_BOUNDARY], s->kills,
            s->lost, s->duplicated, s->corrupted_arg + s->corrupted_result, s->unexpected,
            s->hangs);
    }
    uint64_t mm = atomic_load(&moved_made), mr = atomic_load(&moved_released);
    fprintf(out,
        "\nrejections also counted: arena_full %" PRIu64 ", other %" PRIu64
        "; moved buffers made %" PRIu64 ", released %" PRIu64 "\n",
        t.rejected[R_ARENA_FULL], t.rejected[R_OTHER], mm, mr);
    for (int c = 0; c < F_COUNT; c++) {
        if (!nfindings[c])
            continue;
        fprintf(out, "\n%s (%" PRIu64 "%s):\n", finding_names[c], nfindings[c],
            nfindings[c] > MAX_FINDINGS ? ", the first ones" : "");
        for (uint64_t i = 0; i < nfindings[c] && i < MAX_FINDINGS; i++)
            fprintf(out, "  %s\n", findings[c][i]);
    }
}

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void json_stats(FILE *out, const stats_t *s)
{
    fprintf(out,
        "\"pools\": %" PRIu64 ", \"calls\": %" PRIu64 ", \"settled\": %" PRIu64
        ", \"resolved\": %" PRIu64 ", \"rejected\": {",
        s->pools, s->made, s->settled, s->resolved);
    for (int k = 0; k < R_COUNT; k++)
        fprintf(out, "%s\"%s\": %" PRIu64, k ? ", " : "", reason_names[k], s->rejected[k]);
    fprintf(out,
        "}, \"kills\": %" PRIu64 ", \"lost\": %" PRIu64 ", \"duplicated\": %" PRIu64
        ", \"corrupted\": %" PRIu64 ", \"corrupted_argument\": %" PRIu64
        ", \"corrupted_result\": %" PRIu64 ", \"unexpected\": %" PRIu64 ", \"hangs\": %" PRIu64,
        s->kills, s->lost, s->duplicated, s->corrupted_arg + s->corrupted_result, s->corrupted_arg,
        s->corrupted_result, s->unexpected, s->hangs);
}

static void print_json(FILE *out, double elapsed, bool pass, const char *verdict)
{
    stats_t t;
    total(&t);
    fprintf(out,
        "{\"schema\": \"knit-soak/1\", \"seed\": %" PRIu64
        ", \"duration_s\": %.1f, \"elapsed_s\": %.1f, \"self_test\": %s, ",
        O.seed, O.duration_s, elapsed, O.self_test ? "true" : "false");
    json_stats(out, &t);
    fprintf(out,
        ", \"moved_made\": %" PRIu64 ", \"moved_released\": %" PRIu64 ",\n \"combinations\": [",
        (uint64_t)atomic_load(&moved_made), (uint64_t)atomic_load(&moved_released));
    bool first = true;
    for (int c = 0; c < NCOMBOS; c++) {
        if (S[c].pools == 0)
            continue;
        fprintf(out, "%s\n  {\"transport\": \"%s\", \"runtime\": \"%s\", ", first ? "" : ",",
            knit_transport_name((knit_transport_t)(c / 2)), runtime_name((knit_runtime_t)(c % 2)));
        json_stats(out, &S[c]);
        fputc('}', out);
        first = false;
    }
    fprintf(out, "],\n \"findings\": {");
    for (int c = 0; c < F_COUNT; c++) {
        fprintf(out, "%s\n  \"%s\": [", c ? "," : "", finding_names[c]);
        for (uint64_t i = 0; i < nfindings[c] && i < MAX_FINDINGS; i++) {
            fprintf(out, "%s\n   ", i ? "," : "");
            json_str(out, findings[c][i]);
        }
        fputc(']', out);
    }
    fprintf(out, "},\n \"pass\": %s, \"verdict\": ", pass ? "true" : "false");
    json_str(out, verdict);
    fprintf(out, "}\n");
}

/* --- the run ------------------------------------------------------------------------------- */

#define MAX_LIVE 2

/* Which checks failed, as "lost 2, corrupted 1"; empty when none. */
static void failures(char *buf, size_t n)
{
    stats_t t;
    total(&t);
    uint64_t mm = atomic_load(&moved_made), mr = atomic_load(&moved_released);
    struct {
        const char *name;
        uint64_t v;
    } f[] = {{"lost", t.lost}, {"duplicated", t.duplicated},
        {"corrupted", t.corrupted_arg + t.corrupted_result}, {"unexpected", t.unexpected},
        {"hangs", t.hangs}, {"moved buffers not released", mm > mr ? mm - mr : 0}};
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v && len < n)
            len += (size_t)snprintf(
                buf + len, n - len, "%s%s %" PRIu64, len ? ", " : "", f[i].name, f[i].v);
}

static int run(void)
{
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) != 0) {
        fprintf(stderr, "soak: cannot start the watchdog thread\n");
        return 1;
    }
    pthread_detach(wd);
    fprintf(stderr, "soak: seed %" PRIu64 ", %.0f s%s (reproduce with --seed %" PRIu64 ")\n",
        O.seed, O.duration_s, O.self_test ? ", self-test" : "", O.seed);
    uint64_t t0 = now_ns();
    uint64_t deadline = t0 + (uint64_t)(O.duration_s * NS_PER_S);
    uint64_t next_progress = t0 + (uint64_t)(O.progress_s * NS_PER_S);
    uint64_t slot_at[MAX_LIVE] = {0};
    sk_pool_t *live[MAX_LIVE] = {0};
    for (;;) {
        uint64_t now = now_ns();
        bool time_up = now >= deadline || (O.max_pools && pools_made >= O.max_pools);
        int nlive = 0;
        for (uint32_t s = 0; s < O.max_live_pools; s++) {
            if (!live[s] && !time_up && now >= slot_at[s])
                live[s] = pool_new();
            nlive += live[s] != NULL;
        }
        if (nlive == 0 && time_up)
            break;
        for (uint32_t s = 0; s < O.max_live_pools; s++) {
            sk_pool_t *P = live[s];
            if (!P)
                continue;
            step(P, (int64_t)NS_PER_MS);
            now = now_ns();
            bool h = hung(P, now);
            if (h)
                stall_check(P, now);
            if (h || P->issued >= P->budget || now >= P->deadline_ns || now >= deadline) {
                pool_end(P, h);
                live[s] = NULL;
                /* the second slot rests 0-3 s between pools, so one or two pools are alive */
                slot_at[s] = s ? now_ns() + below(&R, 3000) * NS_PER_MS : 0;
            }
        }
        if (now >= next_progress) {
            progress_line((double)(now - t0) / NS_PER_S, inflight_now(live, MAX_LIVE));
            next_progress = now + (uint64_t)(O.progress_s * NS_PER_S);
        }
        if (nlive == 0) /* a pool could not be created: do not spin */
            usleep(10000);
    }
    double elapsed = (double)(now_ns() - t0) / NS_PER_S;
    progress_line(elapsed, 0);

    char fails[300];
    failures(fails, sizeof fails);
    stats_t t;
    total(&t);
    bool pass;
    char verdict[600];
    if (O.self_test) {
        /* every injected fault must be caught exactly once, and nothing else found */
        bool made = t.made >= INJ_END;
        pass = made && t.corrupted_arg == 1 && t.corrupted_result == 1 && t.duplicated == 2
            && t.lost == 1 && t.unexpected == 0 && t.hangs == 0;
        snprintf(verdict, sizeof verdict,
            "self-test %s: injected 1 argument flip, 1 result flip, 1 wrong sequence number, 1 "
            "double settlement, 1 dropped settlement; caught corrupted_argument %" PRIu64
            " (want 1), corrupted_result %" PRIu64 " (want 1), duplicated %" PRIu64
            " (want 2), lost %" PRIu64 " (want 1), unexpected %" PRIu64 " (want 0)%s",
            pass ? "PASS" : "FAIL", t.corrupted_arg, t.corrupted_result, t.duplicated, t.lost,
            t.unexpected, made ? "" : "; too few calls were made to inject every fault");
    } else {
        pass = fails[0] == 0;
        snprintf(verdict, sizeof verdict, "%s%s%s", pass ? "PASS" : "FAIL: ", pass ? "" : fails,
            pass ? ": nothing lost, duplicated or corrupted" : "");
    }
    print_summary(O.json ? stderr : stdout, elapsed);
    fprintf(O.json ? stderr : stdout, "\nknit-soak: %s (seed %" PRIu64 ")\n", verdict, O.seed);
    if (O.json)
        print_json(stdout, elapsed, pass, verdict);
    return pass ? 0 : 1;
}

/* --- options ------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: knit-soak [OPTIONS]\n"
        "A randomised soak test of the knit pool: random pools (transport, runtime, balancer,\n"
        "dispatcher, stealing, inline lane, wait policy, payload limit, 1-4 workers) created and\n"
        "destroyed along the way, random value kinds and sizes, SIGKILLed process workers while\n"
        "calls are in flight. Every argument carries its sequence number and a checksum; the\n"
        "worker checks what it received, the host checks what came back and accounts for every\n"
        "call. Exit 0 when nothing was lost, duplicated, corrupted, unexpectedly rejected or "
        "hung;\n"
        "1 otherwise (the summary says which); 2 for bad options; 3 when a library call hung.\n"
        "\n"
        "  --duration S        run for S seconds (default 60)\n"
        "  --seed N            the seed of every random decision (default: random; printed)\n"
        "  --transport LIST    knit,pipe,unix,seqpacket,tcp,seq (default all)\n"
        "  --runtime LIST      thread,process (default both)\n"
        "  --workers N         at most N workers per pool, 1-8 (default 4)\n"
        "  --max-payload B     upper bound of the per-pool payload limit, bytes, K or M suffix\n"
        "                      (default 1M; each pool picks 16K, 64K, 256K or 1M below it)\n"
        "  --kinds LIST        argument kinds: int64,f64,date,bigint,string,json,bytes,typed,\n"
        "                      error,envelope,psb,shared,moved (default all)\n"
        "  --skip-kinds LIST   leave these kinds out\n"
        "  --no-kills          never kill a process worker\n"
        "  --no-timeouts       never call the task with a timeout (soak_slow)\n"
        "  --no-immediate      close every pool with a drain shutdown, never an immediate one\n"
        "  --no-psb-bodies     no ProcessSharedBuffer bodies in envelopes\n"
        "  --no-borrowed-replies  every digest reply is an owned value; by default half of\n"
        "                      them borrow the worker's thread-local memory (which a result\n"
        "                      may do until its task returns to the worker loop)\n"
        "  --pools N           pools alive at once, 1 or 2 (default 2)\n"
        "  --max-pools N       stop creating pools after N (default: no limit)\n"
        "  --stall S           a pool whose calls do not settle for S s has hung (default 60;\n"
        "                      a library call that does not return for 2 S ends the run)\n"
        "  --progress S        a progress line on stderr every S s (default 5, at most 10)\n"
        "  --json              print the summary as one JSON document on stdout (the table\n"
        "                      goes to stderr)\n"
        "  --verbose           print every pool and every finding\n"
        "  --self-test         inject one of each fault (a flipped argument byte, a flipped\n"
        "                      result byte, a result with another call's sequence number, a\n"
        "                      settlement seen twice, a settlement dropped) into a short run\n"
        "                      (default 3 s, no kills, drain shutdowns) and exit 0 only if the\n"
        "                      checker caught each exactly once and found nothing else\n"
        "  -h, --help          this text\n");
}

static int bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "knit-soak: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(knit-soak --help lists the options)\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return false;
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    if (*end)
        return false;
    *out = v;
    return true;
}

static bool parse_secs(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e7)
        return false;
    *out = v;
    return true;
}

/* A comma-separated list of names into flags; false on an unknown name. */
static bool parse_list(
    const char *s, const char *const *names, int n, bool *flags, bool value, const char **badname)
{
    static char item[64];
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len == 0 || len >= sizeof item) {
            *badname = s;
            return false;
        }
        memcpy(item, s, len);
        item[len] = 0;
        int i = 0;
        while (i < n && strcmp(names[i], item) != 0)
            i++;
        if (i == n) {
            *badname = item;
            return false;
        }
        flags[i] = value;
        s += len + (s[len] == ',');
    }
    return true;
}

static int parse(int argc, char **argv)
{
    static const char *const transport_names[NTRANSPORTS]
        = {"knit", "pipe", "unix", "seqpacket", "tcp", "seq"};
    static const char *const runtime_names[2] = {"thread", "process"};
    O.duration_s = 60;
    O.max_workers = 4;
    O.max_payload = 1u << 20;
    O.kills = O.timeouts = O.immediate = O.psb_bodies = O.borrowed_replies = true;
    O.max_live_pools = MAX_LIVE;
    O.stall_s = 60;
    O.progress_s = 5;
    for (int i = 0; i < NTRANSPORTS; i++)
        O.transports[i] = true;
    O.runtimes[0] = O.runtimes[1] = true;
    for (int c = 0; c < C_COUNT; c++)
        O.carriers[c] = true;
    bool duration_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *badname = NULL;
        bool takes = !strcmp(a, "--duration") || !strcmp(a, "--seed") || !strcmp(a, "--transport")
            || !strcmp(a, "--runtime") || !strcmp(a, "--workers") || !strcmp(a, "--max-payload")
            || !strcmp(a, "--kinds") || !strcmp(a, "--skip-kinds") || !strcmp(a, "--pools")
            || !strcmp(a, "--max-pools") || !strcmp(a, "--stall") || !strcmp(a, "--progress");
        if (takes && !v)
            return bad("%s needs a value", a);
        uint64_t u;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--duration")) {
            if (!parse_secs(v, &O.duration_s))
                return bad("--duration wants seconds > 0, not '%s'", v);
            duration_given = true;
        } else if (!strcmp(a, "--seed")) {
            if (!parse_u64(v, &O.seed))
                return bad("--seed wants a non-negative integer, not '%s'", v);
            O.seed_given = true;
        } else if (!strcmp(a, "--transport")) {
            memset(O.transports, 0, sizeof O.transports);
            if (!parse_list(v, transport_names, NTRANSPORTS, O.transports, true, &badname))
                return bad(
                    "unknown transport '%s' (knit, pipe, unix, seqpacket, tcp, seq)", badname);
        } else if (!strcmp(a, "--runtime")) {
            memset(O.runtimes, 0, sizeof O.runtimes);
            if (!parse_list(v, runtime_names, 2, O.runtimes, true, &badname))
                return bad("unknown runtime '%s' (thread, process)", badname);
        } else if (!strcmp(a, "--workers")) {
            if (!parse_u64(v, &u) || u < 1 || u > 8)
                return bad("--workers wants 1-8, not '%s'", v);
            O.max_workers = (uint32_t)u;
        } else if (!strcmp(a, "--max-payload")) {
            if (!parse_u64(v, &u) || u < 4096 || u > (64u << 20))
                return bad("--max-payload wants 4K-64M, not '%s'", v);
            O.max_payload = u;
        } else if (!strcmp(a, "--kinds")) {
            memset(O.carriers, 0, sizeof O.carriers);
            if (!parse_list(v, carrier_names, C_COUNT, O.carriers, true, &badname))
                return bad("unknown kind '%s' (knit-soak --help lists them)", badname);
        } else if (!strcmp(a, "--skip-kinds")) {
            if (!parse_list(v, carrier_names, C_COUNT, O.carriers, false, &badname))
                return bad("unknown kind '%s' (knit-soak --help lists them)", badname);
        } else if (!strcmp(a, "--no-kills")) {
            O.kills = false;
        } else if (!strcmp(a, "--no-timeouts")) {
            O.timeouts = false;
        } else if (!strcmp(a, "--no-immediate")) {
            O.immediate = false;
        } else if (!strcmp(a, "--no-psb-bodies")) {
            O.psb_bodies = false;
        } else if (!strcmp(a, "--no-borrowed-replies")) {
            O.borrowed_replies = false;
        } else if (!strcmp(a, "--pools")) {
            if (!parse_u64(v, &u) || u < 1 || u > MAX_LIVE)
                return bad("--pools wants 1 or 2, not '%s'", v);
            O.max_live_pools = (uint32_t)u;
        } else if (!strcmp(a, "--max-pools")) {
            if (!parse_u64(v, &u) || u < 1)
                return bad("--max-pools wants a count >= 1, not '%s'", v);
            O.max_pools = u;
        } else if (!strcmp(a, "--stall")) {
            if (!parse_secs(v, &O.stall_s))
                return bad("--stall wants seconds > 0, not '%s'", v);
        } else if (!strcmp(a, "--progress")) {
            if (!parse_secs(v, &O.progress_s) || O.progress_s > 10)
                return bad("--progress wants seconds in (0, 10], not '%s'", v);
        } else if (!strcmp(a, "--json")) {
            O.json = true;
        } else if (!strcmp(a, "--verbose")) {
            O.verbose = true;
        } else if (!strcmp(a, "--self-test")) {
            O.self_test = true;
        } else {
            return bad("unknown option '%s'", a);
        }
        if (takes)
            i++;
    }
    bool any = false;
    for (int c = 0; c < C_COUNT; c++)
        any |= O.carriers[c];
    if (!any)
        return bad("%s", "no argument kind is left");
    if (O.self_test) {
        if (!duration_given)
            O.duration_s = 3;
        O.kills = false; /* a killed worker would take an injected fault with it */
        O.carriers[C_BYTES] = true;
    }
    if (!O.seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        O.seed = sk_mix64((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid())
            % 1000000000ull;
    }
    R.s = sk_mix64(O.seed + 0x50a4ull) | 1;
    return 0;
}

int main(int argc, char **argv)
{
    int rc = knit_worker_process_main(tasks, NTASKS, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    rc = parse(argc, argv);
    if (rc)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    return run();
}
