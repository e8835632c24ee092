/* knit interop - the built-in C tasks (see interop/ktask.h): what the interop tests call. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "interop/ktask.h"

/* localeCompare on identifiers: punctuation before digits before letters, letters without
 * regard to case, then lower case first. */
static int collate_class(unsigned char c)
{
    return isalpha(c) ? 2 : isdigit(c) ? 1 : 0;
}

int knit__kx_name_cmp(const void *pa, const void *pb)
{
    const unsigned char *a = *(const unsigned char *const *)pa;
    const unsigned char *b = *(const unsigned char *const *)pb;
    for (size_t i = 0; a[i] && b[i]; i++) {
        int ca = collate_class(a[i]), cb = collate_class(b[i]);
        if (ca != cb)
            return ca - cb;
        int la = tolower(a[i]), lb = tolower(b[i]);
        if (la != lb)
            return la - lb;
    }
    size_t na = strlen((const char *)a), nb = strlen((const char *)b);
    if (na != nb)
        return na < nb ? -1 : 1;
    for (size_t i = 0; a[i]; i++)
        if (a[i] != b[i])
            return islower(a[i]) ? -1 : 1;
    return 0;
}

int knit__kx_reject_error(knit_kx_call_t *c, const char *name, const char *message)
{
    knit_error_value_t *e = calloc(1, sizeof *e);
    char *n = strdup(name ? name : "Error"), *m = strdup(message ? message : "");
    if (!e || !n || !m) {
        free(e);
        free(n);
        free(m);
        return knit__err(KNIT_E_NOMEM, "building a task error");
    }
    e->name = n;
    e->message = m;
    c->result.v = knit_v_error(e);
    c->result.v.flags = KNIT_VF_OWNED;
    c->reject = true;
    return 0;
}

/* echo: the argument back, any kind, its knitting form and stack included. */
static int task_echo(knit_kx_call_t *c)
{
    c->result = *c->arg;
    c->result.v.flags &= (uint16_t)~KNIT_VF_OWNED; /* borrowed: the argument owns it */
    c->result.stack = c->arg->stack ? strdup(c->arg->stack) : NULL;
    return 0;
}

/* add1: a number plus one (a non-number rejects with a TypeError, as a JS task would). */
static int task_add1(knit_kx_call_t *c)
{
    if (c->arg->v.kind != KNIT_KIND_F64)
        return knit__kx_reject_error(c, "TypeError", "add1 takes a number");
    c->result.v = knit_v_f64(c->arg->v.u.f64 + 1);
    return 0;
}

/* fail: rejects with TypeError(<the string argument>) and a cause {"code":7}. */
static int task_fail(knit_kx_call_t *c)
{
    static const knit_value_t cause = {.kind = KNIT_KIND_JSON, .len = 10, .u.ptr = "{\"code\":7}"};
    char msg[256] = "fail";
    if (c->arg->v.kind == KNIT_KIND_STRING)
        snprintf(msg, sizeof msg, "%.*s", (int)c->arg->v.len, (const char *)c->arg->v.u.ptr);
    int rc = knit__kx_reject_error(c, "TypeError", msg);
    if (rc == 0) {
        knit_value_t *cv = malloc(sizeof *cv);
        if (!cv)
            return knit__err(KNIT_E_NOMEM, "building a task error");
        *cv = cause; /* borrowed text, owned holder: knit__error_destroy frees only the holder */
        ((knit_error_value_t *)c->result.v.u.err)->cause = cv;
    }
    return rc;
}

/* throw_string: rejects with the argument itself (a JS task that throws a non-Error). */
static int task_throw_string(knit_kx_call_t *c)
{
    c->result = *c->arg;
    c->result.v.flags &= (uint16_t)~KNIT_VF_OWNED;
    c->result.stack = NULL;
    c->reject = true;
    return 0;
}

/* sleep: an async task that settles with its argument (milliseconds) once they have passed. */
static int task_sleep(knit_kx_call_t *c)
{
    uint64_t *until = c->state;
    if (c->cancelled) {
        free(until);
        c->state = NULL;
        return 0;
    }
    if (!until) {
        double ms = c->arg->v.kind == KNIT_KIND_F64 ? c->arg->v.u.f64 : 0;
        until = malloc(sizeof *until);
        if (!until)
            return knit__err(KNIT_E_NOMEM, "sleep task state");
        *until = c->now_ns + (uint64_t)(ms > 0 ? ms * 1e6 : 0);
        c->state = until;
    }
    if (c->now_ns < *until)
        return KNIT_E_AGAIN;
    free(until);
    c->state = NULL;
    c->result.v = c->arg->v.kind == KNIT_KIND_F64 ? knit_v_f64(c->arg->v.u.f64) : knit_v_null();
    return 0;
}

/* int16_array: returns an Int16Array, which knitting cannot carry: the call rejects with
 * knitting's encoder message (KNT_ERROR_3), as knitting's own worker does. */
static int task_int16_array(knit_kx_call_t *c)
{
    static const int16_t v[3] = {1, -2, 3};
    c->result.v = knit_v_typed(KNIT_ELEM_I16, v, sizeof v);
    return 0;
}

/* until_aborted: an async task that settles with "aborted" once its caller aborts it (a
 * knitting task declared with `abortSignal: true`), or with "done" after 5 s. */
static int task_until_aborted(knit_kx_call_t *c)
{
    uint64_t *until = c->state;
    if (c->cancelled || c->aborted || (until && c->now_ns >= *until)) {
        bool by_abort = c->aborted && !c->cancelled;
        free(until);
        c->state = NULL;
        c->result.v = knit_v_str(by_abort ? "aborted" : "done");
        return 0;
    }
    if (!until) {
        until = malloc(sizeof *until);
        if (!until)
            return knit__err(KNIT_E_NOMEM, "until_aborted task state");
        *until = c->now_ns + 5000000000ull;
        c->state = until;
    }
    return KNIT_E_AGAIN;
}

const knit_kx_task_t knit__kx_builtin_tasks[] = {
    {"add1", task_add1, -1},
    {"echo", task_echo, -1},
    {"fail", task_fail, -1},
    {"int16_array", task_int16_array, -1},
    {"sleep", task_sleep, -1},
    {"slow", task_sleep, 50}, /* sleep with a 50 ms timeout: knitting's `timeout: 50` */
    {"throw_string", task_throw_string, -1},
    {"until_aborted", task_until_aborted, -1},
    {NULL, NULL, -1},
};
