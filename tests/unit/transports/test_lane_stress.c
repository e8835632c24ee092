/*
 * One lane, two real threads, real shared memory.
 *
 * The main thread is the host: it sends calls on the request lock and drains results from the
 * return lock (acknowledging every 8 frames, as knitting's host does). A worker thread drains
 * requests, checks each one and echoes it back on the return lock, holding results it cannot
 * publish yet (return lock full, return arena full) in a small FIFO. Every value is a pure
 * function of (seed, call number), so both sides regenerate what they expect and compare the
 * whole value bit for bit. The call number travels in the 27-bit stamp of header word 6 and,
 * when the payload has room, in its first bytes as well.
 *
 * Both threads spin (a short pause loop, then sched_yield) when there is nothing to do.
 * cmocka asserts run on the main thread only, after the worker has been joined; the worker
 * records failures in its context.
 */
#include "testutil.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transports/shm/shm_lane.h"

#define DEFAULT_SEED 0x6b6e69742d6c616eull /* KNIT_STRESS_SEED overrides it */
#define STAMP_MASK   KNIT__META_STAMP_MASK
#define FIFO_CAP     32u                     /* worker: results waiting for the return lock */
#define REG_CAP      128u                    /* host: call ids; more than can ever be in flight */
#define STALL_NS     (10ull * 1000000000ull) /* no progress at all for this long: give up */

/* Size classes of the stress mix. */
enum { C_INLINE, C_SMALL, C_BORDER, C_MEDIUM, C_LARGE, C_COUNT };
static const char *const class_names[C_COUNT] = {"inline", "small", "border", "4-64KiB", "~1MiB"};

#define SMALL_MAX   512u
#define BORDER_LO   (KNIT__STATIC_BYTES - 40u)
#define BORDER_SPAN 81u
#define MEDIUM_LO   4096u
#define MEDIUM_HI   65536u
#define LARGE_LO    ((1u << 20) - 65536u)
#define LARGE_SPAN  131073u
#define LARGE_EVERY 250000u /* a burst of ~1 MiB calls every this many calls ... */
#define LARGE_AT    1000u   /* ... starting at this position ... */
#define LARGE_BURST 20u     /* ... long enough to overfill a 16 MiB arena */
#define ENV_HDR_MAX 2048u
#define SMALL_TEXT  80u /* error causes */
#define STRESS_BUF  (LARGE_LO + LARGE_SPAN + ENV_HDR_MAX + 4096u)
#define BIG_BYTES   (6u << 20)
#define BIG_STRING  (5u << 20)

typedef enum { MODE_STRESS, MODE_BIG } gen_mode_t;

/* --- deterministic content ------------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

enum { F_SPEC = 1, F_W0, F_BODY, F_HDR, F_CAUSE };

static inline uint64_t key_of(uint64_t seed, uint64_t call, uint64_t field)
{
    return mix64(seed ^ mix64(call * 0x100000001b3ull + field));
}

/* A keyed stream of 32-bit words: word j is a bijective hash (lowbias32) of k0 + j * k1 with k1
 * odd, so no two words of one stream repeat. 32-bit arithmetic only, so the loop vectorises. */
static inline uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static void fill_raw(uint8_t *p, size_t n, uint64_t k)
{
    uint32_t k0 = (uint32_t)k, k1 = (uint32_t)(k >> 32) | 1u, j = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4, j++) {
        uint32_t w = hash32(k0 + j * k1);
        memcpy(p + i, &w, 4);
    }
    if (i < n) {
        uint32_t w = hash32(k0 + j * k1);
        memcpy(p + i, &w, n - i);
    }
}

/* Text: letters only (A-P, a-p), so it is valid UTF-8 and needs no JSON escaping. */
static void fill_text(char *p, size_t n, uint64_t k)
{
    uint8_t *b = (uint8_t *)p;
    fill_raw(b, n, k);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)('A' + (b[i] & 15u) + ((b[i] & 16u) << 1));
}

/* The call number in the first 8 bytes of a binary payload (when it has them). */
static void tag_raw(uint8_t *p, size_t n, uint64_t call)
{
    if (n >= 8)
        memcpy(p, &call, 8);
}

/* The call number as 16 hex digits at the start of a text (when it has room). */
static void tag_text(char *p, size_t n, uint64_t call)
{
    if (n < 16)
        return;
    for (int i = 15; i >= 0; i--) {
        p[i] = "0123456789abcdef"[call & 15u];
        call >>= 4;
    }
}

/* --- value generator ------------------------------------------------------------------------ */

typedef struct gen {
    uint8_t *buf;
    size_t cap;
    knit_value_t v;
    uint32_t w0; /* request header word 0 */
    unsigned cls;
    knit_error_value_t err, err2;
    knit_value_t cause;
    knit_envelope_t env;
} gen_t;

static int gen_init(gen_t *g, gen_mode_t mode)
{
    memset(g, 0, sizeof *g);
    g->cap = mode == MODE_BIG ? BIG_BYTES + 64u : STRESS_BUF;
    g->buf = malloc(g->cap);
    return g->buf ? 0 : -1;
}

static void gen_free(gen_t *g)
{
    free(g->buf);
    g->buf = NULL;
}

static unsigned class_of(uint64_t seed, uint64_t call)
{
    uint64_t ppm = key_of(seed, call, F_SPEC) % 1000000u;
    uint64_t pos = call % LARGE_EVERY;
    if ((pos >= LARGE_AT && pos < LARGE_AT + LARGE_BURST) || ppm < 10)
        return C_LARGE;
    if (ppm < 3010)
        return C_MEDIUM;
    if (ppm < 203010)
        return C_INLINE;
    if (ppm < 423010)
        return C_BORDER;
    return C_SMALL;
}

static void build_inline(gen_t *g, uint64_t r2, uint64_t r3)
{
    unsigned pick = (unsigned)((r2 >> 32) % 100u);
    uint64_t bits;
    double d;
    if (pick < 40) {
        if (r3 % 20u == 0) {
            static const double specials[5] = {0.0, -0.0, INFINITY, -INFINITY, NAN};
            d = specials[(r3 >> 8) % 5u];
        } else {
            bits = mix64(r3);
            if (((bits >> 52) & 0x7FFu) == 0x7FFu)
                bits &= ~(1ull << 62); /* finite (NaN is covered by the specials) */
            memcpy(&d, &bits, sizeof d);
        }
        g->v = knit_v_f64(d);
    } else if (pick < 70) {
        g->v = knit_v_int64((int64_t)mix64(r3));
    } else if (pick < 95) {
        if (r3 % 10u == 0) {
            /* an invalid date: a NaN whose payload bits must survive unchanged */
            bits = 0x7FF0000000000000ull | (mix64(r3) & 0x800FFFFFFFFFFFFFull) | 1u;
            memcpy(&d, &bits, sizeof d);
        } else {
            d = (double)(int64_t)(mix64(r3) % 4000000000000ull) - 1e12;
        }
        g->v = knit_v_date(d);
    } else if (pick < 97) {
        g->v = knit_v_null();
    } else if (pick < 99) {
        g->v = knit_v_bool(r3 & 1u);
    } else {
        g->v = knit_v_undefined();
    }
}

static void build_error(gen_t *g, uint64_t seed, uint64_t call, size_t len, uint64_t r3)
{
    static const char *const names[4] = {"Error", "TypeError", "RangeError", "StressError"};
    char *msg = (char *)g->buf;
    fill_text(msg, len, key_of(seed, call, F_BODY));
    tag_text(msg, len, call);
    msg[len] = 0;
    char *extra = msg + len + 1;
    size_t elen = (size_t)((r3 >> 16) % SMALL_TEXT);
    g->err = (knit_error_value_t) {names[r3 % 4u], msg, NULL};
    switch ((r3 >> 8) % 4u) {
    case 1:
        fill_text(extra, elen, key_of(seed, call, F_CAUSE));
        tag_text(extra, elen, call);
        g->cause = knit_v_strn(extra, elen);
        g->err.cause = &g->cause;
        break;
    case 2:
        g->cause = knit_v_int64((int64_t)key_of(seed, call, F_CAUSE));
        g->err.cause = &g->cause;
        break;
    case 3:
        fill_text(extra, elen, key_of(seed, call, F_CAUSE));
        tag_text(extra, elen, call);
        extra[elen] = 0;
        g->err2 = (knit_error_value_t) {"CauseError", extra, NULL};
        g->cause = knit_v_error(&g->err2);
        g->err.cause = &g->cause;
        break;
    default:
        break;
    }
    g->v = knit_v_error(&g->err);
}

static void build_envelope(gen_t *g, uint64_t seed, uint64_t call, size_t body_len, uint64_t r3)
{
    bool str = r3 & 1u;
    unsigned hsel = (unsigned)((r3 >> 8) % 10u);
    uint64_t hr = r3 >> 16;
    size_t hlen = hsel < 7 ? hr % 201u
        : hsel < 9         ? BORDER_LO + hr % BORDER_SPAN
                           : hr % (ENV_HDR_MAX + 1u);
    char *h = (char *)g->buf;
    if (str) {
        fill_text(h, hlen, key_of(seed, call, F_HDR));
        tag_text(h, hlen, call);
    } else {
        /* {"k":"<16 hex digits><text>"} */
        if (hlen < 24)
            hlen = 24;
        memcpy(h, "{\"k\":\"", 6);
        tag_text(h + 6, 16, call);
        fill_text(h + 22, hlen - 24, key_of(seed, call, F_HDR));
        memcpy(h + hlen - 2, "\"}", 2);
    }
    uint8_t *body = g->buf + ((hlen + 7u) & ~(size_t)7u);
    fill_raw(body, body_len, key_of(seed, call, F_BODY));
    tag_raw(body, body_len, call);
    g->env.header = h;
    g->env.header_len = hlen;
    g->env.header_kind = str ? KNIT_ENV_STRING : KNIT_ENV_JSON;
    g->env.body = knit_v_bytes(body, body_len);
    g->v = knit_v_envelope(&g->env);
}

/* Build the value of call `call` into g (borrowing g->buf). */
static void build(gen_t *g, gen_mode_t mode, uint64_t seed, uint64_t call)
{
    g->w0 = (uint32_t)key_of(seed, call, F_W0);
    if (mode == MODE_BIG) {
        g->cls = C_LARGE;
        if (call == 0) {
            fill_raw(g->buf, BIG_BYTES, key_of(seed, call, F_BODY));
            tag_raw(g->buf, BIG_BYTES, call);
            g->v = knit_v_bytes(g->buf, BIG_BYTES);
        } else {
            char *s = (char *)g->buf;
            fill_text(s, BIG_STRING, key_of(seed, call, F_BODY));
            tag_text(s, BIG_STRING, call);
            g->v = knit_v_strn(s, BIG_STRING);
        }
        return;
    }

    uint64_t r2 = mix64(key_of(seed, call, F_SPEC)), r3 = mix64(r2);
    g->cls = class_of(seed, call);
    if (g->cls == C_INLINE) {
        build_inline(g, r2, r3);
        return;
    }
    size_t len;
    switch (g->cls) {
    case C_SMALL:
        len = (size_t)(r2 % (SMALL_MAX + 1u));
        break;
    case C_BORDER:
        len = BORDER_LO + (size_t)(r2 % BORDER_SPAN);
        break;
    case C_MEDIUM:
        len = MEDIUM_LO + (size_t)(r2 % (MEDIUM_HI - MEDIUM_LO + 1u));
        break;
    default:
        len = LARGE_LO + (size_t)(r2 % LARGE_SPAN);
        break;
    }
    unsigned pick = (unsigned)((r2 >> 32) % 100u);
    uint64_t body = key_of(seed, call, F_BODY);
    if (pick < 22) {
        char *s = (char *)g->buf;
        fill_text(s, len, body);
        tag_text(s, len, call);
        g->v = knit_v_strn(s, len);
    } else if (pick < 34) {
        /* ["<16 hex digits>","<text>"] */
        char *s = (char *)g->buf;
        if (len < 23)
            len = 23;
        memcpy(s, "[\"", 2);
        tag_text(s + 2, 16, call);
        memcpy(s + 18, "\",\"", 3);
        fill_text(s + 21, len - 23, body);
        memcpy(s + len - 2, "\"]", 2);
        g->v = knit_v_jsonn(s, len);
    } else if (pick < 58) {
        fill_raw(g->buf, len, body);
        tag_raw(g->buf, len, call);
        g->v = knit_v_bytes(g->buf, len);
    } else if (pick < 78) {
        knit_elem_t elem = (knit_elem_t)(r3 % KNIT_ELEM_COUNT_);
        len -= len % knit_elem_size(elem);
        fill_raw(g->buf, len, body);
        tag_raw(g->buf, len, call);
        g->v = knit_v_typed(elem, g->buf, len);
    } else if (pick < 86) {
        /* sign byte + magnitude: the payload is len bytes; at least 9 so it stays a bigint */
        size_t mlen = len > 10 ? len - 1 : 9;
        fill_raw(g->buf, mlen, body);
        tag_raw(g->buf, mlen, call);
        g->buf[mlen - 1] |= 1u; /* non-zero top byte: no normalisation */
        g->v = knit_v_bigint(r3 & 1u, g->buf, mlen);
    } else if (pick < 87 && g->cls != C_LARGE) {
        build_error(g, seed, call, len, r3);
    } else {
        build_envelope(g, seed, call, len, r3);
    }
}

static uint64_t payload_bytes(const knit_value_t *v)
{
    switch ((knit_kind_t)v->kind) {
    case KNIT_KIND_ERROR:
        return strlen(v->u.err->message);
    case KNIT_KIND_ENVELOPE:
        return v->u.env->header_len + v->u.env->body.len;
    case KNIT_KIND_BIGINT:
        return v->len + 1;
    case KNIT_KIND_STRING:
    case KNIT_KIND_JSON:
    case KNIT_KIND_BYTES:
    case KNIT_KIND_TYPED:
        return v->len;
    default:
        return 0;
    }
}

/* --- bit-exact comparison ------------------------------------------------------------------- */

/* 0 when equal; else writes where they first differ. */
static int diff_bytes(
    const char *what, const void *got, size_t gn, const void *want, size_t wn, char *why, size_t n)
{
    if (gn != wn) {
        snprintf(why, n, "%s length %zu, expected %zu", what, gn, wn);
        return 1;
    }
    if (gn == 0 || memcmp(got, want, gn) == 0)
        return 0;
    const uint8_t *a = got, *b = want;
    size_t i = 0;
    while (a[i] == b[i])
        i++;
    snprintf(
        why, n, "%s differs at byte %zu of %zu (0x%02x, expected 0x%02x)", what, i, gn, a[i], b[i]);
    return 1;
}

static int diff_text(const char *what, const char *got, const char *want, char *why, size_t n)
{
    got = got ? got : "";
    want = want ? want : "";
    return diff_bytes(what, got, strlen(got), want, strlen(want), why, n);
}

static int diff_value(const knit_value_t *got, const knit_value_t *want, char *why, size_t n)
{
    if (got->kind != want->kind || got->sub != want->sub) {
        snprintf(why, n, "kind %s/%u, expected %s/%u", knit_kind_name((knit_kind_t)got->kind),
            got->sub, knit_kind_name((knit_kind_t)want->kind), want->sub);
        return 1;
    }
    switch ((knit_kind_t)want->kind) {
    case KNIT_KIND_NULL:
    case KNIT_KIND_UNDEFINED:
        return 0;
    case KNIT_KIND_BOOL:
        if (got->u.b == want->u.b)
            return 0;
        snprintf(why, n, "bool %d, expected %d", got->u.b, want->u.b);
        return 1;
    case KNIT_KIND_F64:
    case KNIT_KIND_DATE:
    case KNIT_KIND_INT64: {
        uint64_t a, b;
        memcpy(&a, &got->u, sizeof a);
        memcpy(&b, &want->u, sizeof b);
        if (a == b)
            return 0;
        snprintf(why, n, "%s bits 0x%016" PRIx64 ", expected 0x%016" PRIx64,
            knit_kind_name((knit_kind_t)want->kind), a, b);
        return 1;
    }
    case KNIT_KIND_BIGINT:
    case KNIT_KIND_STRING:
    case KNIT_KIND_JSON:
    case KNIT_KIND_BYTES:
    case KNIT_KIND_TYPED:
        return diff_bytes(knit_kind_name((knit_kind_t)want->kind), got->u.ptr, got->len,
            want->u.ptr, want->len, why, n);
    case KNIT_KIND_ERROR: {
        const knit_error_value_t *a = got->u.err, *b = want->u.err;
        if (diff_text("error name", a->name, b->name, why, n)
            || diff_text("error message", a->message, b->message, why, n))
            return 1;
        if (!a->cause || !b->cause) {
            if (!a->cause && !b->cause)
                return 0;
            snprintf(why, n, "error cause %s, expected %s", a->cause ? "present" : "missing",
                b->cause ? "present" : "missing");
            return 1;
        }
        return diff_value(a->cause, b->cause, why, n);
    }
    case KNIT_KIND_ENVELOPE: {
        const knit_envelope_t *a = got->u.env, *b = want->u.env;
        if (a->header_kind != b->header_kind) {
            snprintf(
                why, n, "envelope header kind %u, expected %u", a->header_kind, b->header_kind);
            return 1;
        }
        if (diff_bytes(
                "envelope header", a->header, a->header_len, b->header, b->header_len, why, n))
            return 1;
        return diff_value(&a->body, &b->body, why, n);
    }
    default:
        snprintf(why, n, "unexpected kind %s", knit_kind_name((knit_kind_t)want->kind));
        return 1;
    }
}

/* --- failure records (filled by either thread, asserted on the main thread) ----------------- */

typedef struct failures {
    uint64_t count;
    char first[512];
} failures_t;

__attribute__((format(printf, 2, 3))) static void failf(failures_t *f, const char *fmt, ...)
{
    if (f->count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->first, sizeof f->first, fmt, ap);
        va_end(ap);
    }
}

/* Test-and-set one bit; returns the old bit. */
static bool bit_tas(uint8_t *bits, uint64_t i)
{
    uint8_t m = (uint8_t)(1u << (i & 7u));
    bool old = bits[i >> 3] & m;
    bits[i >> 3] |= m;
    return old;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Nothing to do: a short pause loop, then give the CPU away. Never sleeps. */
static void idle(unsigned *spins)
{
    if (*spins < 64u) {
        (*spins)++;
        cpu_relax();
    } else {
        sched_yield();
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- worker --------------------------------------------------------------------------------- */

typedef struct pending {
    uint32_t w0, id, stamp;
    knit_value_t v; /* owned (decoded) */
} pending_t;

typedef struct worker {
    const knit__shm_lane_t *lane;
    gen_mode_t mode;
    uint64_t seed, total;
    knit__endpoint_t ep;
    gen_t chk;
    uint8_t *seen;
    pending_t fifo[FIFO_CAP];
    unsigned head, n;
    _Atomic int attached; /* worker -> host: the endpoint is initialised */
    _Atomic int stop;     /* host -> worker: leave when idle */
    _Atomic int fatal;    /* worker -> host: the echo stream is broken, stop waiting */
    /* Progress published for loss detection, each on its own cache line. */
    _Alignas(64) _Atomic uint64_t sent_pub;  /* worker -> host: echoes published so far */
    _Alignas(64) _Atomic uint64_t host_sent; /* host -> worker: requests published so far */
    _Alignas(64) uint64_t padding_;
    uint64_t received, sent, ret_full, arena_full, max_fifo;
    failures_t fail;
} worker_t;

static int worker_take(void *ctx, knit__msg_t *m)
{
    worker_t *w = ctx;
    uint64_t call = m->stamp;
    char why[256];
    w->received++;
    if (m->status != 0) {
        failf(&w->fail, "request id %u stamp %u: decode failed: %s", m->id, m->stamp,
            knit_strerror(m->status));
    } else if (call >= w->total) {
        failf(&w->fail, "request id %u carries stamp %u, beyond the %" PRIu64 " calls", m->id,
            m->stamp, w->total);
    } else {
        if (bit_tas(w->seen, call))
            failf(&w->fail, "request for call %" PRIu64 " arrived twice", call);
        build(&w->chk, w->mode, w->seed, call);
        if (m->w0 != w->chk.w0)
            failf(&w->fail, "request call %" PRIu64 ": word 0 is 0x%08x, expected 0x%08x", call,
                m->w0, w->chk.w0);
        if (diff_value(&m->value, &w->chk.v, why, sizeof why))
            failf(&w->fail, "request call %" PRIu64 " (class %s): %s", call,
                class_names[w->chk.cls], why);
    }
    if (w->n == FIFO_CAP) { /* drain was capped at the free room: cannot happen */
        failf(&w->fail, "worker FIFO overflow");
        atomic_store_explicit(&w->fatal, 1, memory_order_release);
        knit_value_free(&m->value);
        return 0;
    }
    pending_t *p = &w->fifo[(w->head + w->n) % FIFO_CAP];
    p->w0 = m->value.kind == KNIT_KIND_ERROR ? KNIT__FLAG_REJECT : KNIT__FLAG_RESOLVE;
    p->id = m->id;
    p->stamp = m->stamp;
    p->v = m->value;
    w->n++;
    if (w->n > w->max_fifo)
        w->max_fifo = w->n;
    return 0;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    knit__endpoint_init(&w->ep, w->lane, KNIT__SIDE_WORKER);
    atomic_store_explicit(&w->attached, 1, memory_order_release);
    unsigned spins = 0;
    for (;;) {
        bool did = false;
        /* Publish waiting results, oldest first. */
        while (w->n) {
            pending_t *p = &w->fifo[w->head];
            int rc = knit__ep_send(&w->ep, p->w0, p->id, p->stamp, &p->v);
            if (rc == KNIT_E_FULL) {
                w->ret_full++;
                break;
            }
            if (rc == KNIT_E_ARENA_FULL) {
                w->arena_full++; /* the host frees regions as it drains: retry later */
                break;
            }
            if (rc < 0) {
                failf(
                    &w->fail, "echo of id %u stamp %u failed: %s", p->id, p->stamp, knit_errmsg());
                atomic_store_explicit(&w->fatal, 1, memory_order_release);
            } else {
                w->sent++;
                /* release: our store of H for this frame happens before the count. */
                atomic_store_explicit(&w->sent_pub, w->sent, memory_order_release);
            }
            knit_value_free(&p->v);
            w->head = (w->head + 1u) % FIFO_CAP;
            w->n--;
            did = true;
        }
        /* Take new requests, no more than the FIFO can hold. */
        unsigned room = FIFO_CAP - w->n;
        if (room) {
            int n = knit__ep_drain(&w->ep, worker_take, w, 0, room);
            if (n > 0)
                did = true;
            else if (n < 0)
                failf(&w->fail, "worker drain returned %d", n);
        }
        if (did) {
            spins = 0;
            continue;
        }
        if (atomic_load_explicit(&w->stop, memory_order_acquire))
            break;
        /* Loss check: once the host has published every request (acquire: its stores of H
         * happened before), an empty request lock means we took every frame there is. */
        if (w->received < w->total
            && atomic_load_explicit(&w->host_sent, memory_order_acquire) == w->total
            && knit__qcons_pending(&w->ep.rx) == 0 && !atomic_load(&w->fatal)) {
            failf(&w->fail,
                "request frames lost: the host published %" PRIu64 ", the worker took %" PRIu64
                " and the request lock is empty",
                w->total, w->received);
            atomic_store_explicit(&w->fatal, 1, memory_order_release);
        }
        idle(&spins);
    }
    while (w->n) { /* only after a failure */
        knit_value_free(&w->fifo[w->head].v);
        w->head = (w->head + 1u) % FIFO_CAP;
        w->n--;
    }
    return NULL;
}

/* --- host ----------------------------------------------------------------------------------- */

typedef struct host {
    gen_mode_t mode;
    uint64_t seed, total;
    gen_t chk;
    uint8_t *seen;
    struct {
        uint64_t call;
        bool active;
    } reg[REG_CAP];
    uint32_t free_ids[REG_CAP];
    unsigned nfree;
    uint64_t done, received;
    failures_t fail;
} host_t;

static int host_take(void *ctx, knit__msg_t *m)
{
    host_t *h = ctx;
    char why[256];
    h->received++;
    if (m->id >= REG_CAP || !h->reg[m->id].active) {
        failf(&h->fail, "result with id %u (stamp %u) matches no call in flight", m->id, m->stamp);
        knit_value_free(&m->value);
        return 0;
    }
    uint64_t call = h->reg[m->id].call;
    h->reg[m->id].active = false;
    h->free_ids[h->nfree++] = m->id;
    if (bit_tas(h->seen, call))
        failf(&h->fail, "result for call %" PRIu64 " arrived twice", call);
    else
        h->done++;
    build(&h->chk, h->mode, h->seed, call);
    uint32_t flag = h->chk.v.kind == KNIT_KIND_ERROR ? KNIT__FLAG_REJECT : KNIT__FLAG_RESOLVE;
    if (m->status != 0)
        failf(
            &h->fail, "result call %" PRIu64 ": decode failed: %s", call, knit_strerror(m->status));
    else if (m->stamp != (call & STAMP_MASK))
        failf(
            &h->fail, "result id %u for call %" PRIu64 " carries stamp %u", m->id, call, m->stamp);
    else if (m->w0 != flag)
        failf(&h->fail, "result call %" PRIu64 ": word 0 is %u, expected %u", call, m->w0, flag);
    else if (diff_value(&m->value, &h->chk.v, why, sizeof why))
        failf(
            &h->fail, "result call %" PRIu64 " (class %s): %s", call, class_names[h->chk.cls], why);
    knit_value_free(&m->value);
    return 0;
}

typedef struct run_stats {
    double seconds;
    uint64_t sent, arena_full, calls_delayed, req_full, bytes, by_class[C_COUNT];
    uint64_t by_kind[KNIT_KIND_COUNT_], by_elem[KNIT_ELEM_COUNT_];
    uint32_t host_grows, worker_grows;
    uint64_t host_capacity, worker_capacity;
    uint32_t req_h, req_w, ret_h, ret_w, host_live, worker_live;
    bool stalled;
} run_stats_t;

static uint64_t seed_from_env(void)
{
    const char *s = getenv("KNIT_STRESS_SEED");
    return s && *s ? strtoull(s, NULL, 0) : DEFAULT_SEED;
}

/*
 * Run `total` calls through a fresh lane. Everything that can fail is recorded in h->fail,
 * w->fail and st; the caller asserts after this returns (the worker has been joined).
 */
static void run_echo(const knit__lane_cfg_t *cfg, gen_mode_t mode, uint64_t seed, uint64_t total,
    host_t *h, worker_t *w, run_stats_t *st)
{
    knit__shm_lane_t lane;
    knit__endpoint_t ep;
    gen_t g;
    pthread_t tid;
    size_t bitmap = (size_t)((total + 7u) / 8u);

    memset(st, 0, sizeof *st);
    memset(&g, 0, sizeof g);
    memset(h, 0, sizeof *h);
    memset(w, 0, sizeof *w);
    h->mode = w->mode = mode;
    h->seed = w->seed = seed;
    h->total = w->total = total;
    for (unsigned i = 0; i < REG_CAP; i++)
        h->free_ids[i] = REG_CAP - 1u - i;
    h->nfree = REG_CAP;

    int rc = knit__shm_lane_create(&lane, cfg);
    if (rc < 0) {
        failf(&h->fail, "lane create: %s", knit_errmsg());
        return;
    }
    h->seen = calloc(1, bitmap);
    w->seen = calloc(1, bitmap);
    if (!h->seen || !w->seen || gen_init(&g, mode) || gen_init(&h->chk, mode)
        || gen_init(&w->chk, mode)) {
        failf(&h->fail, "out of memory");
        goto out;
    }
    knit__endpoint_init(&ep, &lane, KNIT__SIDE_HOST);
    w->lane = &lane;
    if (pthread_create(&tid, NULL, worker_main, w) != 0) {
        failf(&h->fail, "pthread_create failed");
        goto out;
    }
    /* The worker attaches (initialises its endpoint) before anything is sent. */
    unsigned spins = 0;
    while (!atomic_load_explicit(&w->attached, memory_order_acquire))
        idle(&spins);

    uint64_t t0 = now_ns(), next = 0, idle_since = 0, idle_iters = 0;
    bool have = false, delayed = false;
    spins = 0;
    while (h->done < total) {
        bool progress = false;
        while (next < total && h->nfree) {
            if (!have) {
                build(&g, mode, seed, next);
                have = true;
                delayed = false;
            }
            uint32_t id = h->free_ids[h->nfree - 1];
            rc = knit__ep_send(&ep, g.w0, id, (uint32_t)(next & STAMP_MASK), &g.v);
            if (rc == KNIT_E_FULL) {
                st->req_full++;
                break;
            }
            if (rc == KNIT_E_ARENA_FULL) {
                /* retry after draining results; the worker frees request regions */
                st->arena_full++;
                if (!delayed)
                    st->calls_delayed++;
                delayed = true;
                break;
            }
            if (rc < 0) {
                failf(&h->fail, "send of call %" PRIu64 " failed: %s", next, knit_errmsg());
                goto stop;
            }
            h->nfree--;
            h->reg[id].call = next;
            h->reg[id].active = true;
            st->bytes += payload_bytes(&g.v);
            st->by_class[g.cls]++;
            st->by_kind[g.v.kind]++;
            if (g.v.kind == KNIT_KIND_TYPED)
                st->by_elem[g.v.sub]++;
            st->sent++;
            next++;
            have = false;
            progress = true;
            if (next == total) /* release: every store of H happened before */
                atomic_store_explicit(&w->host_sent, next, memory_order_release);
        }
        int n = knit__ep_drain(&ep, host_take, h, 8, 0);
        if (n < 0) {
            failf(&h->fail, "host drain returned %d", n);
            break;
        }
        if (n > 0 || progress) {
            spins = 0;
            idle_iters = 0;
            continue;
        }
        if (atomic_load_explicit(&w->fatal, memory_order_acquire)) {
            failf(&h->fail, "worker gave up (see the worker failure)");
            break;
        }
        /* Loss check: once the worker has published every echo (acquire: its stores of H
         * happened before), an empty return lock means we took every frame there is. */
        if (atomic_load_explicit(&w->sent_pub, memory_order_acquire) == total
            && knit__qcons_pending(&ep.rx) == 0) {
            failf(&h->fail,
                "result frames lost: the worker published %" PRIu64 ", the host took %" PRIu64
                " and the return lock is empty",
                total, h->received);
            break;
        }
        if (idle_iters++ == 0) {
            idle_since = now_ns();
        } else if ((idle_iters & 0xFFFu) == 0 && now_ns() - idle_since > STALL_NS) {
            st->stalled = true;
            failf(&h->fail,
                "no progress for %llu s: sent %" PRIu64 ", results %" PRIu64 " of %" PRIu64,
                STALL_NS / 1000000000ull, next, h->done, total);
            break;
        }
        idle(&spins);
    }
stop:
    st->seconds = (double)(now_ns() - t0) / 1e9;
    atomic_store_explicit(&w->stop, 1, memory_order_release);
    pthread_join(tid, NULL);

    knit__ctrl_t *c = knit__shm_ctrl(&lane);
    st->req_h = atomic_load(&c->req.q_host.word);
    st->req_w = atomic_load(&c->req.q_worker.word);
    st->ret_h = atomic_load(&c->ret.q_host.word);
    st->ret_w = atomic_load(&c->ret.q_worker.word);
    st->host_live = knit__arena_live(&ep.tx_arena);
    st->worker_live = knit__arena_live(&w->ep.tx_arena);
    st->host_grows = ep.tx_arena.grows;
    st->worker_grows = w->ep.tx_arena.grows;
    st->host_capacity = ep.tx_arena.capacity;
    st->worker_capacity = w->ep.tx_arena.capacity;
out:
    gen_free(&g);
    gen_free(&h->chk);
    gen_free(&w->chk);
    free(h->seen);
    free(w->seen);
    h->seen = w->seen = NULL;
    knit__shm_lane_close(&lane);
}

/* The checks shared by both tests (main thread, worker joined). */
static void check_run(const char *name, uint64_t seed, uint64_t total, const host_t *h,
    const worker_t *w, const run_stats_t *st)
{
    if (h->fail.count || w->fail.count)
        print_error("%s: seed 0x%016" PRIx64 " (rerun with KNIT_STRESS_SEED=0x%016" PRIx64 ")\n"
                    "  host failures %" PRIu64 ", first: %s\n"
                    "  worker failures %" PRIu64 ", first: %s\n"
                    "  sent %" PRIu64 ", worker took %" PRIu64 " and echoed %" PRIu64
                    ", host took %" PRIu64 "; request lock H=%08x W=%08x, return lock H=%08x "
                    "W=%08x; live regions: request %u, return %u\n",
            name, seed, seed, h->fail.count, h->fail.first, w->fail.count, w->fail.first, st->sent,
            w->received, w->sent, h->received, st->req_h, st->req_w, st->ret_h, st->ret_w,
            st->host_live, st->worker_live);
    assert_int_equal(h->fail.count, 0);
    assert_int_equal(w->fail.count, 0);
    assert_false(st->stalled);
    /* nothing lost, nothing duplicated */
    assert_int_equal(st->sent, total);
    assert_int_equal(w->received, total);
    assert_int_equal(w->sent, total);
    assert_int_equal(h->received, total);
    assert_int_equal(h->done, total);
    assert_int_equal(h->nfree, REG_CAP);
    /* both locks idle, both arenas empty */
    assert_int_equal(st->req_h, st->req_w);
    assert_int_equal(st->ret_h, st->ret_w);
    assert_int_equal(st->host_live, 0);
    assert_int_equal(st->worker_live, 0);
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_echo_stress(void **state)
{
    (void)state;
    uint64_t seed = seed_from_env();
    uint64_t total = knit_test_iters(10000000, 20000);
    assert_true(total <= (uint64_t)STAMP_MASK + 1u); /* the stamp identifies a call */
    knit__lane_cfg_t cfg = {.payload_max_bytes = 16u << 20, .payload_initial_bytes = 1u << 20};
    static host_t h;
    static worker_t w;
    run_stats_t st;
    run_echo(&cfg, MODE_STRESS, seed, total, &h, &w, &st);
    print_message("echo stress: seed 0x%016" PRIx64 ", %" PRIu64 " calls in %.2f s = %.0f "
                  "calls/s, %.1f MiB of payload each way\n",
        seed, st.sent, st.seconds, (double)st.sent / st.seconds, (double)st.bytes / (1u << 20));
    print_message("  mix: inline %" PRIu64 ", small %" PRIu64 ", border %" PRIu64
                  ", 4-64KiB %" PRIu64 ", ~1MiB %" PRIu64 "\n",
        st.by_class[C_INLINE], st.by_class[C_SMALL], st.by_class[C_BORDER], st.by_class[C_MEDIUM],
        st.by_class[C_LARGE]);
    print_message("  kinds:");
    for (unsigned k = 0; k < KNIT_KIND_COUNT_; k++)
        if (st.by_kind[k])
            print_message(" %s %" PRIu64, knit_kind_name((knit_kind_t)k), st.by_kind[k]);
    print_message("\n");
    print_message("  host: request lock full %" PRIu64 "x, arena full %" PRIu64 "x (%" PRIu64
                  " calls delayed), arena grew %u steps to %" PRIu64 " bytes\n",
        st.req_full, st.arena_full, st.calls_delayed, st.host_grows, st.host_capacity);
    print_message("  worker: return lock full %" PRIu64 "x, arena full %" PRIu64
                  "x, FIFO peak %" PRIu64 ", arena grew %u steps to %" PRIu64 " bytes\n",
        w.ret_full, w.arena_full, w.max_fifo, st.worker_grows, st.worker_capacity);
    check_run("echo stress", seed, total, &h, &w, &st);
    /* the mix really covered every class, and the lock really filled up */
    for (unsigned c = 0; c < C_COUNT; c++)
        assert_true(st.by_class[c] > 0);
    static const knit_kind_t kinds[] = {
        KNIT_KIND_STRING,
        KNIT_KIND_JSON,
        KNIT_KIND_BYTES,
        KNIT_KIND_TYPED,
        KNIT_KIND_BIGINT,
        KNIT_KIND_F64,
        KNIT_KIND_INT64,
        KNIT_KIND_DATE,
        KNIT_KIND_ERROR,
        KNIT_KIND_ENVELOPE,
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        assert_true(st.by_kind[kinds[k]] > 0);
    for (unsigned e = 0; e < KNIT_ELEM_COUNT_; e++)
        assert_true(st.by_elem[e] > 0);
    assert_true(st.req_full > 0);
}

/*
 * Values far beyond the arena's initial size, sent after the worker attached: the arena grows
 * under a reader that already holds its view. knitting cut such values at the reader's initial
 * view; here the reader sees the whole fixed mapping, so they must arrive whole.
 */
static void test_big_values_after_attach(void **state)
{
    (void)state;
    uint64_t seed = seed_from_env();
    knit__lane_cfg_t cfg = {.payload_max_bytes = 64u << 20, .payload_initial_bytes = 64u << 10};
    static host_t h;
    static worker_t w;
    run_stats_t st;
    run_echo(&cfg, MODE_BIG, seed, 2, &h, &w, &st);
    print_message("big values: 6 MiB bytes + 5 MiB string echoed in %.3f s; arenas grew %u "
                  "(host) and %u (worker) steps from 64 KiB\n",
        st.seconds, st.host_grows, st.worker_grows);
    check_run("big values", seed, 2, &h, &w, &st);
    /* both writers grew their arena after the peer had attached */
    assert_true(st.host_grows > 0);
    assert_true(st.worker_grows > 0);
    assert_true(st.host_capacity >= BIG_BYTES);
    assert_true(st.worker_capacity >= BIG_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_values_after_attach),
        cmocka_unit_test(test_echo_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
