/* knit codec - owned copies of values, for calls that must wait before they are encoded. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "codec/value_internal.h"

static int dup_bytes(const void *p, size_t n, void **out)
{
    uint8_t *q = malloc(n + 1);
    if (!q)
        return knit__err(KNIT_E_NOMEM, "copying a %zu-byte value", n);
    if (n)
        memcpy(q, p, n);
    q[n] = 0;
    *out = q;
    return 0;
}

static char *dup_cstr(const char *s)
{
    void *p = NULL;
    return dup_bytes(s ? s : "", s ? strlen(s) : 0, &p) == 0 ? p : NULL;
}

static int keep_error(const knit_error_value_t *src, knit_error_value_t **out)
{
    knit_error_value_t *e = calloc(1, sizeof *e);
    if (!e)
        return knit__err(KNIT_E_NOMEM, "copying an error value");
    e->name = dup_cstr(src->name);
    e->message = dup_cstr(src->message);
    int rc = e->name && e->message ? 0 : knit__err(KNIT_E_NOMEM, "copying an error value");
    if (rc == 0 && src->cause) {
        knit_value_t *c = calloc(1, sizeof *c);
        knit_value_t tmp = *src->cause;
        rc = c ? knit__value_keep(&tmp, c) : knit__err(KNIT_E_NOMEM, "copying an error cause");
        if (rc == 0)
            e->cause = c;
        else
            free(c);
    }
    if (rc < 0) {
        knit__error_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

static int keep_envelope(const knit_envelope_t *src, knit_envelope_t **out)
{
    knit_envelope_t *env = calloc(1, sizeof *env);
    if (!env)
        return knit__err(KNIT_E_NOMEM, "copying an envelope");
    void *h = NULL;
    knit_value_t body = src->body;
    int rc = dup_bytes(src->header, src->header_len, &h);
    if (rc == 0) {
        env->header = h;
        env->header_len = src->header_len;
        env->header_kind = src->header_kind;
        rc = knit__value_keep(&body, &env->body);
    }
    if (rc < 0) {
        free(h);
        free(env);
        return rc;
    }
    *out = env;
    return 0;
}

int knit__value_keep(knit_value_t *src, knit_value_t *dst)
{
    knit_value_t v = *src;
    int rc = 0;
    if (src->flags & KNIT_VF_OWNED && src->kind == KNIT_KIND_MOVED) {
        *dst = *src; /* a moved buffer moves: no copy exists */
        *src = knit_v_undefined();
        return 0;
    }
    switch ((knit_kind_t)src->kind) {
    case KNIT_KIND_BIGINT:
    case KNIT_KIND_STRING:
    case KNIT_KIND_JSON:
    case KNIT_KIND_BYTES:
    case KNIT_KIND_TYPED: {
        void *p = NULL;
        rc = dup_bytes(src->u.ptr, src->len, &p);
        v.u.ptr = p;
        break;
    }
    case KNIT_KIND_ERROR: {
        knit_error_value_t *e = NULL;
        rc = keep_error(src->u.err, &e);
        v.u.err = e;
        break;
    }
    case KNIT_KIND_ENVELOPE: {
        knit_envelope_t *env = NULL;
        rc = keep_envelope(src->u.env, &env);
        v.u.env = env;
        break;
    }
    case KNIT_KIND_PSB: {
        knit_psb_desc_t *d = malloc(sizeof *d);
        if (!d)
            rc = knit__err(KNIT_E_NOMEM, "copying a ProcessSharedBuffer descriptor");
        else
            *d = *src->u.psb;
        v.u.psb = d;
        break;
    }
    case KNIT_KIND_SHARED:
        knit_shared_buf_retain(src->u.shared);
        break;
    case KNIT_KIND_MOVED: /* borrowed holder: take it over */
        *src = knit_v_undefined();
        break;
    default:
        break;
    }
    if (rc < 0)
        return rc;
    v.flags = (uint16_t)((v.flags | KNIT_VF_OWNED) & ~KNIT_VF_LENT);
    if (v.kind < KNIT_KIND_BIGINT || v.kind == KNIT_KIND_DATE)
        v.flags &= (uint16_t)~KNIT_VF_OWNED;
    *dst = v;
    return 0;
}

int knit_value_own(knit_value_t *v)
{
    if (knit__null_arg(v, __func__, "v"))
        return KNIT_E_INVAL;
    if (v->flags & KNIT_VF_OWNED)
        return 0;
    knit_value_t copy;
    int rc = knit__value_keep(v, &copy);
    if (rc == 0)
        *v = copy;
    return rc;
}
