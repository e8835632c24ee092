/*
 * knit-bench - timed calls shared by the round-trip scenarios (calls.h): pool set-up for a
 * case and the single / burst round functions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"

#define MS 1000000ull

/* One call of a round. `f` is cleared when the round lets go of the call, so a callback that
 * fires later (a call abandoned by a time limit) leaves the next round's figures alone. */
typedef struct kb_slot {
    knit_future_t *f;
    uint64_t t0, t1; /* sent, settled */
} kb_slot_t;

struct kb_calls {
    knit_pool_t *pool;
    kb_calls_spec_t spec;
    uint32_t batch;
    kb_slot_t *slots;
    uint64_t bursts; /* rounds so far: which ones sample per-call latency */
};

/* The outcome of waiting for one call. */
enum { CALL_RESOLVED = 0, CALL_FAILED = 1 };

uint64_t kb_ms(const kb_ctx_t *ctx, uint64_t full_ms, uint64_t quick_ms)
{
    return (kb_quick(ctx) ? quick_ms : full_ms) * MS;
}

kb_calls_spec_t kb_empty_spec(void)
{
    static const uint8_t eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static knit_value_t arg;
    arg = knit_v_bytes(eight, sizeof eight);
    return (kb_calls_spec_t) {
        .task = KB_TASK_EMPTY, .args = &arg, .nargs = 1, .bytes_per_call = sizeof eight};
}

static void on_settle(knit_future_t *f, void *ctx)
{
    kb_slot_t *s = ctx;
    if (s->f == f)
        s->t1 = kb_now_ns();
}

/* Let go of a call the round will not wait for any longer: cancel it if it has not started,
 * then drop our reference (the pool keeps the call until it settles). */
static void abandon(kb_slot_t *s)
{
    knit_future_t *f = s->f;
    if (!f)
        return;
    s->f = NULL;
    knit_future_cancel(f);
    knit_future_release(f);
}

/*
 * Wait for a call until `deadline` (0 = no limit). CALL_RESOLVED, CALL_FAILED (rejected, or
 * timed out and abandoned), or a negative code when the pool itself failed.
 */
static int await_call(kb_slot_t *s, uint64_t deadline)
{
    int64_t left = -1;
    if (deadline) {
        uint64_t now = kb_now_ns();
        left = now < deadline ? (int64_t)(deadline - now) : 0;
    }
    int rc = knit_future_wait(s->f, left);
    int status = knit_future_status(s->f);
    if (status == KNIT_E_AGAIN) {
        abandon(s);
        return rc == KNIT_E_AGAIN ? CALL_FAILED : rc;
    }
    return status == 0 ? CALL_RESOLVED : CALL_FAILED;
}

static void count(kb_calls_t *k, kb_rep_t *rep, uint64_t calls, uint64_t resolved)
{
    rep->ops += calls;
    rep->errors += calls - resolved;
    rep->bytes += resolved * k->spec.bytes_per_call;
}

static knit_value_t arg_for(const kb_calls_t *k, uint32_t i)
{
    return k->spec.args[i % k->spec.nargs];
}

static int round_single(void *state, kb_rep_t *rep)
{
    kb_calls_t *k = state;
    kb_slot_t *s = &k->slots[0];
    knit_value_t arg = arg_for(k, 0);
    s->t0 = kb_now_ns();
    int rc = knit_call(k->pool, k->spec.task, &arg, &s->f);
    if (rc < 0) {
        s->f = NULL;
        return rc;
    }
    uint64_t limit = k->spec.round_limit_ns > 0 ? (uint64_t)k->spec.round_limit_ns : 0;
    rc = await_call(s, limit ? s->t0 + limit : 0);
    uint64_t t1 = kb_now_ns();
    if (rc < 0)
        return rc;
    if (rc == CALL_RESOLVED)
        kb_record(rep, t1 - s->t0);
    count(k, rep, 1, rc == CALL_RESOLVED);
    if (s->f) {
        knit_future_release(s->f);
        s->f = NULL;
    }
    return 0;
}

/* Submit the burst; returns how many calls were made, and the first hard error in *rc. A
 * sampled burst times each call (a clock read before it and one in its settle callback). */
static uint32_t submit_burst(kb_calls_t *k, bool sampled, int *rc)
{
    uint32_t i = 0;
    for (*rc = 0; i < k->batch; i++) {
        kb_slot_t *s = &k->slots[i];
        knit_value_t arg = arg_for(k, i);
        s->t1 = 0;
        s->t0 = sampled ? kb_now_ns() : 0;
        *rc = knit_call(k->pool, k->spec.task, &arg, &s->f);
        if (*rc < 0) {
            s->f = NULL;
            break;
        }
        if (sampled)
            knit_future_on_settle(s->f, on_settle, s);
    }
    return i;
}

/* Wait for calls [0, n); record the resolved ones when the burst is sampled. Returns how many
 * resolved, or a negative code when the pool failed (the calls not waited for are
 * abandoned). */
static int await_burst(kb_calls_t *k, kb_rep_t *rep, uint32_t n, bool sampled, uint64_t start)
{
    uint64_t limit = k->spec.round_limit_ns > 0 ? (uint64_t)k->spec.round_limit_ns : 0;
    uint64_t deadline = limit && n ? start + limit : 0;
    int resolved = 0, rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        kb_slot_t *s = &k->slots[i];
        if (!s->f)
            continue;
        rc = rc < 0 ? rc : await_call(s, deadline);
        if (rc < 0) {
            abandon(s);
            continue;
        }
        if (rc == CALL_RESOLVED) {
            if (sampled)
                kb_record(rep, (s->t1 ? s->t1 : kb_now_ns()) - s->t0);
            resolved++;
        }
        if (s->f) {
            knit_future_t *f = s->f;
            s->f = NULL;
            knit_future_release(f);
        }
    }
    return rc < 0 ? rc : resolved;
}

/* One burst in KB_SAMPLE_EVERY times each call for the latency histogram; the others read the
 * clock only at the burst's start and end, and carry the throughput (kb_rep_t.timed_*). */
#define KB_SAMPLE_EVERY 4u

static int round_burst(void *state, kb_rep_t *rep)
{
    kb_calls_t *k = state;
    int call_rc;
    bool sampled = k->bursts++ % KB_SAMPLE_EVERY == 0;
    uint64_t t0 = kb_now_ns();
    uint32_t n = submit_burst(k, sampled, &call_rc);
    int resolved = await_burst(k, rep, n, sampled, t0);
    if (resolved < 0)
        return resolved;
    if (!sampled) {
        rep->timed_ns += kb_now_ns() - t0;
        rep->timed_ops += n;
    }
    count(k, rep, n, (uint64_t)resolved);
    return call_rc;
}

int kb_calls_open(
    const kb_case_t *c, const knit_pool_opts_t *o, const kb_calls_spec_t *spec, kb_calls_t **out)
{
    *out = NULL;
    knit_pool_opts_t def;
    if (!o) {
        kb_pool_opts(c, &def);
        o = &def;
    }
    kb_calls_t *k = calloc(1, sizeof *k);
    uint32_t batch = c->batch ? c->batch : 1;
    kb_slot_t *slots = calloc(batch, sizeof *slots);
    if (!k || !slots || spec->nargs == 0) {
        free(k);
        free(slots);
        return spec->nargs == 0 ? KNIT_E_INVAL : KNIT_E_NOMEM;
    }
    k->spec = *spec;
    k->batch = batch;
    k->slots = slots;
    int rc = kb_pool_create(c, o, &k->pool);
    if (rc < 0) {
        kb_calls_close(k);
        return rc;
    }
    *out = k;
    return 0;
}

knit_pool_t *kb_calls_pool(const kb_calls_t *k)
{
    return k->pool;
}

void kb_calls_reference(const kb_case_t *c, char *out, size_t n)
{
    bool knit = kb_shared_memory(c->transport);
    const char *poll = strcmp(c->wait, "block") != 0 ? "-poll" : "";
    char burst[24] = "";
    if (c->batch > 1)
        snprintf(burst, sizeof burst, "-b%u", c->batch);
    if (c->payload_bytes > 512 /* beyond a slot's static area */)
        snprintf(out, n, "xcopy-%llu%s", (unsigned long long)c->payload_bytes, burst);
    else if (c->batch > 1)
        snprintf(out, n, "%s%s%s", knit ? "ring" : c->transport, knit ? "" : poll, burst);
    else if (knit)
        snprintf(out, n, "%s", poll[0] ? "spin" : "futex");
    else
        snprintf(out, n, "%s%s", c->transport, poll);
}

int kb_calls_run(
    kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan, kb_calls_t *k, json_t *extra)
{
    kb_round_fn fn = k->spec.single && k->batch == 1 ? round_single : round_burst;
    kb_plan_t p = plan ? *plan : (kb_plan_t) {0};
    char ref[64];
    if (!p.floor_ref && !p.no_ref) {
        kb_calls_reference(c, ref, sizeof ref);
        p.floor_ref = ref;
    }
    return kb_run_case(ctx, c, &p, fn, k, extra, NULL);
}

void kb_calls_close(kb_calls_t *k)
{
    if (!k)
        return;
    /* The pool goes first: destroying it settles what is still pending, and the callbacks of
     * those calls still point into the slots. */
    if (k->pool)
        knit_pool_destroy(k->pool);
    free(k->slots);
    free(k);
}

int kb_calls_case(kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan,
    const knit_pool_opts_t *o, const kb_calls_spec_t *spec, json_t *extra)
{
    kb_calls_t *k;
    int rc = kb_calls_open(c, o, spec, &k);
    if (rc < 0) {
        kb_fail(ctx, c, rc);
        json_decref(extra);
        return rc;
    }
    rc = kb_calls_run(ctx, c, plan, k, extra);
    kb_calls_close(k);
    return rc;
}
