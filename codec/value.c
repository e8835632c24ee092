/* knit codec - value helpers: names, lifetime, equality, validation (include/knit/value.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "codec/value_internal.h"

static const char *const kind_names[KNIT_KIND_COUNT_] = {
    "null",
    "undefined",
    "bool",
    "f64",
    "int64",
    "bigint",
    "string",
    "json",
    "bytes",
    "typed",
    "date",
    "error",
    "envelope",
    "psb",
    "shared",
    "moved",
};

static const struct {
    const char *name;
    uint8_t size;
} elems[KNIT_ELEM_COUNT_] = {
    {"Int8Array", 1},
    {"Uint8ClampedArray", 1},
    {"Int16Array", 2},
    {"Uint16Array", 2},
    {"Int32Array", 4},
    {"Uint32Array", 4},
    {"Float32Array", 4},
    {"Float64Array", 8},
    {"BigInt64Array", 8},
    {"BigUint64Array", 8},
    {"DataView", 1},
    {"ArrayBuffer", 1},
    {"Buffer", 1},
};

const char *knit_kind_name(knit_kind_t kind)
{
    return (unsigned)kind < KNIT_KIND_COUNT_ ? kind_names[kind] : "unknown";
}

const char *knit_elem_name(knit_elem_t elem)
{
    return (unsigned)elem < KNIT_ELEM_COUNT_ ? elems[elem].name : "unknown";
}

size_t knit_elem_size(knit_elem_t elem)
{
    return (unsigned)elem < KNIT_ELEM_COUNT_ ? elems[elem].size : 0;
}

knit_value_t knit_v_str(const char *s)
{
    return knit_v_strn(s, strlen(s));
}

knit_value_t knit_v_json(const char *s)
{
    return knit_v_jsonn(s, strlen(s));
}

knit_value_t knit_v_bigint(bool negative, const uint8_t *mag, size_t len)
{
    while (len > 0 && mag[len - 1] == 0)
        len--;
    if (len <= 8) {
        uint64_t m = 0;
        for (size_t i = 0; i < len; i++)
            m |= (uint64_t)mag[i] << (8 * i);
        if (!negative && m <= (uint64_t)INT64_MAX)
            return knit_v_int64((int64_t)m);
        if (negative && m <= (uint64_t)INT64_MAX + 1u)
            return knit_v_int64((int64_t)(0 - m));
    }
    knit_value_t v = knit_v_buf_(KNIT_KIND_BIGINT, mag, len);
    v.sub = negative ? 1 : 0;
    return v;
}

/* --- moved and shared buffers --------------------------------------------------------------- */

int knit_moved_new(
    void *data, size_t len, void (*release)(void *, void *), void *ctx, knit_moved_buf_t **out)
{
    if (!out || (!data && len))
        return knit__err(KNIT_E_INVAL, "knit_moved_new: data is NULL with len=%zu", len);
    knit_moved_buf_t *m = malloc(sizeof *m);
    if (!m)
        return knit__err(KNIT_E_NOMEM, "knit_moved_new: %zu bytes", sizeof *m);
    m->data = data;
    m->len = len;
    m->release = release;
    m->ctx = ctx;
    *out = m;
    return 0;
}

void knit__moved_destroy(knit_moved_buf_t *m)
{
    if (!m)
        return;
    if (m->release)
        m->release(m->data, m->ctx);
    else
        free(m->data);
    free(m);
}

int knit_shared_buf_new(size_t len, knit_shared_buf_t **out)
{
    if (!out)
        return knit__err(KNIT_E_INVAL, "knit_shared_buf_new: out is NULL");
    /* The struct (its data member) is 64-byte aligned, which calloc does not guarantee;
     * aligned_alloc wants a size that is a multiple of the alignment. */
    const size_t align = _Alignof(knit_shared_buf_t);
    size_t bytes = len > SIZE_MAX - sizeof(knit_shared_buf_t) - align
        ? 0
        : (sizeof(knit_shared_buf_t) + len + align - 1) / align * align;
    knit_shared_buf_t *b = bytes ? aligned_alloc(align, bytes) : NULL;
    if (!b)
        return knit__err(KNIT_E_NOMEM, "knit_shared_buf_new: %zu bytes", len);
    memset(b, 0, bytes);
    b->magic = KNIT__SHARED_MAGIC;
    atomic_init(&b->refs, 1);
    b->len = len;
    *out = b;
    return 0;
}

void knit_shared_buf_retain(knit_shared_buf_t *b)
{
    /* relaxed: taking a reference needs no ordering; the holder already sees the buffer. */
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void knit_shared_buf_release(knit_shared_buf_t *b)
{
    if (!b)
        return;
    /* acq_rel: the release half orders this holder's accesses before the count drops; the
     * acquire half (for the last holder) makes every other holder's accesses visible before
     * the memory is freed. */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        b->magic = 0;
        free(b);
    }
}

void *knit_shared_buf_data(const knit_shared_buf_t *b)
{
    return (void *)b->data;
}

size_t knit_shared_buf_len(const knit_shared_buf_t *b)
{
    return b->len;
}

uint32_t knit_shared_buf_refs(const knit_shared_buf_t *b)
{
    /* relaxed: a snapshot for diagnostics and tests. */
    return atomic_load_explicit(&((knit_shared_buf_t *)b)->refs, memory_order_relaxed);
}

/* --- lifetime ------------------------------------------------------------------------------- */

void knit__error_destroy(knit_error_value_t *e)
{
    if (!e)
        return;
    free((void *)e->name);
    free((void *)e->message);
    if (e->cause) {
        knit_value_free((knit_value_t *)e->cause);
        free((void *)e->cause);
    }
    free(e);
}

void knit_value_free(knit_value_t *v)
{
    if (!v)
        return;
    if (v->flags & KNIT_VF_OWNED) {
        switch ((knit_kind_t)v->kind) {
        case KNIT_KIND_BIGINT:
        case KNIT_KIND_STRING:
        case KNIT_KIND_JSON:
        case KNIT_KIND_BYTES:
        case KNIT_KIND_TYPED:
            free((void *)v->u.ptr);
            break;
        case KNIT_KIND_ERROR:
            knit__error_destroy((knit_error_value_t *)v->u.err);
            break;
        case KNIT_KIND_ENVELOPE: {
            knit_envelope_t *env = (knit_envelope_t *)v->u.env;
            if (env) {
                free((void *)env->header);
                knit_value_free(&env->body);
                free(env);
            }
            break;
        }
        case KNIT_KIND_PSB:
            free((void *)v->u.psb);
            break;
        case KNIT_KIND_SHARED:
            knit_shared_buf_release(v->u.shared);
            break;
        case KNIT_KIND_MOVED:
            knit__moved_destroy(v->u.moved);
            break;
        default:
            break;
        }
    }
    *v = knit_v_undefined();
}

/* --- equality ------------------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static const char *error_name(const char *n)
{
    return n && n[0] ? n : "Error";
}

static const knit_value_t *real_cause(const knit_value_t *c)
{
    return c && c->kind != KNIT_KIND_UNDEFINED ? c : NULL;
}

static bool f64_eq(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

bool knit_value_equal(const knit_value_t *a, const knit_value_t *b)
{
    if (a->kind != b->kind)
        return false;
    switch ((knit_kind_t)a->kind) {
    case KNIT_KIND_NULL:
    case KNIT_KIND_UNDEFINED:
        return true;
    case KNIT_KIND_BOOL:
        return a->u.b == b->u.b;
    case KNIT_KIND_F64:
    case KNIT_KIND_DATE:
        return f64_eq(a->u.f64, b->u.f64);
    case KNIT_KIND_INT64:
        return a->u.i64 == b->u.i64;
    case KNIT_KIND_BIGINT:
    case KNIT_KIND_TYPED:
        if (a->sub != b->sub)
            return false;
        /* fall through */
    case KNIT_KIND_STRING:
    case KNIT_KIND_JSON:
    case KNIT_KIND_BYTES:
        return a->len == b->len && (a->len == 0 || memcmp(a->u.ptr, b->u.ptr, a->len) == 0);
    case KNIT_KIND_ERROR: {
        const knit_error_value_t *x = a->u.err, *y = b->u.err;
        const knit_value_t *xc = real_cause(x->cause), *yc = real_cause(y->cause);
        if (!str_eq(error_name(x->name), error_name(y->name)) || !str_eq(x->message, y->message))
            return false;
        if (!xc || !yc)
            return !xc && !yc;
        return knit_value_equal(xc, yc);
    }
    case KNIT_KIND_ENVELOPE: {
        const knit_envelope_t *x = a->u.env, *y = b->u.env;
        return x->header_kind == y->header_kind && x->header_len == y->header_len
            && (x->header_len == 0 || memcmp(x->header, y->header, x->header_len) == 0)
            && knit_value_equal(&x->body, &y->body);
    }
    case KNIT_KIND_PSB: {
        const knit_psb_desc_t *x = a->u.psb, *y = b->u.psb;
        return x->fd == y->fd && x->pid == y->pid && strcmp(x->name, y->name) == 0
            && x->size == y->size && x->offset == y->offset && x->length == y->length;
    }
    case KNIT_KIND_SHARED:
        return a->u.shared == b->u.shared;
    case KNIT_KIND_MOVED:
        return a->u.moved->len == b->u.moved->len
            && (a->u.moved->len == 0
                || memcmp(a->u.moved->data, b->u.moved->data, a->u.moved->len) == 0);
    default:
        return false;
    }
}

/* --- validation ----------------------------------------------------------------------------- */

/* Offset of the first invalid UTF-8 sequence, or len when the text is valid. */
static size_t utf8_invalid_at(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + n >= len)
            return i; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

static int check_text(const char *what, const char *s, size_t len, bool json)
{
    size_t bad = utf8_invalid_at((const uint8_t *)s, len);
    if (bad != len)
        return knit__err(KNIT_E_INVAL, "%s is not valid UTF-8 at byte %zu", what, bad);
    if (json) {
        json_error_t jerr;
        json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j)
            return knit__err(KNIT_E_INVAL, "%s is not valid JSON at byte %d: %s", what,
                jerr.position, jerr.text);
        json_decref(j);
    }
    return 0;
}

/* Error causes nest at most this deep, as in the codec; a deeper (or cyclic) chain is refused
 * instead of recursing without end. */
#define MAX_CAUSE_DEPTH 32

static int validate_at(const knit_value_t *v, int depth)
{
    switch ((knit_kind_t)v->kind) {
    case KNIT_KIND_STRING:
        return check_text("string", v->u.ptr, v->len, false);
    case KNIT_KIND_JSON:
        return check_text("JSON text", v->u.ptr, v->len, true);
    case KNIT_KIND_TYPED:
        if (knit_elem_size((knit_elem_t)v->sub) == 0)
            return knit__err(KNIT_E_INVAL, "unknown typed-array element type %u", v->sub);
        if (v->len % knit_elem_size((knit_elem_t)v->sub))
            return knit__err(KNIT_E_INVAL, "%s byte length %zu is not a multiple of %zu",
                knit_elem_name((knit_elem_t)v->sub), v->len, knit_elem_size((knit_elem_t)v->sub));
        return 0;
    case KNIT_KIND_ERROR: {
        const knit_error_value_t *e = v->u.err;
        if (depth > MAX_CAUSE_DEPTH)
            return knit__err(
                KNIT_E_INVAL, "error causes nest deeper than %d (a cycle?)", MAX_CAUSE_DEPTH);
        int rc = check_text(
            "error name", e->name ? e->name : "", strlen(e->name ? e->name : ""), false);
        if (rc == 0)
            rc = check_text("error message", e->message ? e->message : "",
                strlen(e->message ? e->message : ""), false);
        if (rc == 0 && e->cause)
            rc = validate_at(e->cause, depth + 1);
        return rc;
    }
    case KNIT_KIND_ENVELOPE: {
        const knit_envelope_t *env = v->u.env;
        int rc = check_text(
            "envelope header", env->header, env->header_len, env->header_kind == KNIT_ENV_JSON);
        return rc ? rc : validate_at(&env->body, depth + 1);
    }
    default:
        return (unsigned)v->kind < KNIT_KIND_COUNT_
            ? 0
            : knit__err(KNIT_E_INVAL, "unknown value kind %u", v->kind);
    }
}

int knit_value_validate(const knit_value_t *v)
{
    return validate_at(v, 0);
}
