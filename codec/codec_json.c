/* knit codec - JSON-shaped payloads (see codec/codec_json.h). */
#include "codec/codec_json.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "codec/value_internal.h"

#define MAX_CAUSE_DEPTH 32 /* bounds recursion (and rejects cyclic causes) */

static int dump(json_t *j, char **text, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!s)
        return knit__err(KNIT_E_NOMEM, "serialising a JSON payload");
    *text = s;
    *len = strlen(s);
    return 0;
}

/* --- errors --------------------------------------------------------------------------------- */

static json_t *error_json(const knit_error_value_t *e, int depth, int *rc);

static json_t *text_json(const char *what, const char *s, size_t n, int *rc)
{
    json_t *j = json_stringn(s ? s : "", s ? n : 0);
    if (!j)
        *rc = knit__err(KNIT_E_INVAL, "%s is not valid UTF-8", what);
    return j;
}

static json_t *cause_json(const knit_value_t *c, const char **kind, int depth, int *rc)
{
    *kind = knit_kind_name((knit_kind_t)c->kind);
    switch ((knit_kind_t)c->kind) {
    case KNIT_KIND_NULL:
        return json_null();
    case KNIT_KIND_BOOL:
        return json_boolean(c->u.b);
    case KNIT_KIND_INT64:
        return json_integer((json_int_t)c->u.i64);
    case KNIT_KIND_F64:
        if (isnan(c->u.f64))
            return json_string("NaN");
        if (isinf(c->u.f64))
            return json_string(c->u.f64 > 0 ? "Infinity" : "-Infinity");
        return json_real(c->u.f64);
    case KNIT_KIND_STRING:
        return text_json("error cause", c->u.ptr, c->len, rc);
    case KNIT_KIND_JSON: /* kept as its exact text */
        return text_json("error cause JSON", c->u.ptr, c->len, rc);
    case KNIT_KIND_ERROR:
        return error_json(c->u.err, depth + 1, rc);
    default:
        *rc = knit__err(KNIT_E_UNSUPPORTED,
            "an error cause of kind %s cannot be encoded (null, bool, f64, int64, "
            "string, json or error)",
            *kind);
        return NULL;
    }
}

static json_t *error_json(const knit_error_value_t *e, int depth, int *rc)
{
    if (depth > MAX_CAUSE_DEPTH) {
        *rc = knit__err(
            KNIT_E_UNSUPPORTED, "error causes nest deeper than %d (a cycle?)", MAX_CAUSE_DEPTH);
        return NULL;
    }
    const char *name = e->name && e->name[0] ? e->name : "Error";
    json_t *o = json_object();
    json_t *n = text_json("error name", name, strlen(name), rc);
    json_t *m = text_json("error message", e->message, e->message ? strlen(e->message) : 0, rc);
    if (!o || !n || !m) {
        json_decref(o);
        json_decref(n);
        json_decref(m);
        if (*rc == 0)
            *rc = knit__err(KNIT_E_NOMEM, "building an error payload");
        return NULL;
    }
    json_object_set_new(o, "name", n);
    json_object_set_new(o, "message", m);
    if (e->cause && e->cause->kind != KNIT_KIND_UNDEFINED) {
        const char *kind;
        json_t *c = cause_json(e->cause, &kind, depth, rc);
        if (!c) {
            json_decref(o);
            if (*rc == 0)
                *rc = knit__err(KNIT_E_NOMEM, "building an error cause");
            return NULL;
        }
        json_object_set_new(o, "cause", c);
        json_object_set_new(o, "causeKind", json_string(kind));
    }
    return o;
}

int knit__error_to_json(const knit_error_value_t *e, char **text, size_t *len)
{
    int rc = 0;
    if (!e)
        return knit__err(KNIT_E_INVAL, "error value without an error");
    json_t *j = error_json(e, 0, &rc);
    return j ? dump(j, text, len) : rc;
}

char *knit__text_dup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static int corrupt(const char *what)
{
    return knit__err(KNIT_E_CORRUPT, "error payload: %s", what);
}

static int error_from(json_t *o, int depth, knit_error_value_t **out);

static int cause_from(json_t *c, const char *kind, int depth, knit_value_t **out)
{
    knit_value_t *v = calloc(1, sizeof *v);
    if (!v)
        return knit__err(KNIT_E_NOMEM, "decoding an error cause");
    int rc = 0;
    if (!strcmp(kind, "null") && json_is_null(c)) {
        *v = knit_v_null();
    } else if (!strcmp(kind, "bool") && json_is_boolean(c)) {
        *v = knit_v_bool(json_is_true(c));
    } else if (!strcmp(kind, "int64") && json_is_integer(c)) {
        *v = knit_v_int64(json_integer_value(c));
    } else if (!strcmp(kind, "f64") && (json_is_number(c) || json_is_string(c))) {
        double d = json_number_value(c);
        if (json_is_string(c)) {
            const char *s = json_string_value(c);
            d = !strcmp(s, "Infinity") ? INFINITY : !strcmp(s, "-Infinity") ? -INFINITY : NAN;
        }
        *v = knit_v_f64(d);
    } else if ((!strcmp(kind, "string") || !strcmp(kind, "json")) && json_is_string(c)) {
        size_t n = json_string_length(c);
        char *s = knit__text_dup(json_string_value(c), n);
        if (!s) {
            rc = knit__err(KNIT_E_NOMEM, "decoding an error cause");
        } else {
            *v = kind[0] == 's' ? knit_v_strn(s, n) : knit_v_jsonn(s, n);
            v->flags = KNIT_VF_OWNED;
        }
    } else if (!strcmp(kind, "error") && json_is_object(c)) {
        knit_error_value_t *e = NULL;
        rc = error_from(c, depth + 1, &e);
        if (rc == 0) {
            *v = knit_v_error(e);
            v->flags = KNIT_VF_OWNED;
        }
    } else {
        rc = corrupt("cause does not match causeKind");
    }
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    return 0;
}

static int error_from(json_t *o, int depth, knit_error_value_t **out)
{
    if (depth > MAX_CAUSE_DEPTH)
        return corrupt("causes nest too deep");
    json_t *n = json_object_get(o, "name"), *m = json_object_get(o, "message");
    json_t *c = json_object_get(o, "cause"), *ck = json_object_get(o, "causeKind");
    if (!json_is_string(n) || !json_is_string(m))
        return corrupt("name and message must be strings");
    if (c && !json_is_string(ck))
        return corrupt("cause without causeKind");
    knit_error_value_t *e = calloc(1, sizeof *e);
    if (!e)
        return knit__err(KNIT_E_NOMEM, "decoding an error");
    e->name = knit__text_dup(json_string_value(n), json_string_length(n));
    e->message = knit__text_dup(json_string_value(m), json_string_length(m));
    int rc = (e->name && e->message) ? 0 : knit__err(KNIT_E_NOMEM, "decoding an error");
    if (rc == 0 && c) {
        knit_value_t *cv = NULL;
        rc = cause_from(c, json_string_value(ck), depth, &cv);
        if (rc == 0)
            e->cause = cv;
    }
    if (rc < 0) {
        knit__error_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

int knit__error_from_json(const char *text, size_t len, knit_error_value_t **out)
{
    json_error_t jerr;
    /* JSON_ALLOW_NUL: string and JSON causes are length-counted and may hold NUL bytes, which
     * the encoder writes as \u0000. */
    json_t *o = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (!o)
        return knit__err(KNIT_E_CORRUPT, "error payload is not JSON: %s", jerr.text);
    int rc = json_is_object(o) ? error_from(o, 0, out) : corrupt("not an object");
    json_decref(o);
    return rc;
}

/* --- ProcessSharedBuffer descriptors -------------------------------------------------------- */

int knit__psb_to_json(const knit_psb_desc_t *d, char **text, size_t *len)
{
    if (!d)
        return knit__err(KNIT_E_INVAL, "ProcessSharedBuffer value without a descriptor");
    size_t nlen = strnlen(d->name, sizeof d->name);
    if (nlen == sizeof d->name)
        return knit__err(KNIT_E_INVAL, "ProcessSharedBuffer name is not NUL-terminated");
    if (d->fd < -1 || (d->fd < 0 && nlen == 0))
        return knit__err(KNIT_E_INVAL,
            "ProcessSharedBuffer needs an fd (>= 0) or a name; got fd %d, name \"%s\"", (int)d->fd,
            d->name);
    if (d->offset > d->size || d->length > d->size - d->offset)
        return knit__err(KNIT_E_INVAL,
            "ProcessSharedBuffer range [%llu, +%llu) exceeds its size %llu",
            (unsigned long long)d->offset, (unsigned long long)d->length,
            (unsigned long long)d->size);
    if (d->size > (uint64_t)INT64_MAX)
        return knit__err(KNIT_E_INVAL, "ProcessSharedBuffer size %llu is too large",
            (unsigned long long)d->size);
    json_t *name = json_stringn(d->name, nlen);
    if (!name)
        return knit__err(KNIT_E_INVAL, "ProcessSharedBuffer name is not valid UTF-8");
    int pid = d->fd >= 0 ? (d->pid ? (int)d->pid : (int)getpid()) : 0;
    json_t *meta = json_pack("{s:i, s:i, s:i, s:o, s:I, s:I, s:I}", "version", 1, "fd", (int)d->fd,
        "pid", pid, "name", name, "size", (json_int_t)d->size, "byteOffset", (json_int_t)d->offset,
        "byteLength", (json_int_t)d->length);
    json_t *arr = meta ? json_pack("[s, o]", KNIT__PSB_CODEC_ID, meta) : NULL;
    if (!arr)
        return knit__err(KNIT_E_NOMEM, "building a ProcessSharedBuffer payload");
    return dump(arr, text, len);
}

int knit__psb_from_json(const char *text, size_t len, knit_psb_desc_t **out)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j)
        return knit__err(KNIT_E_CORRUPT, "external payload is not JSON: %s", jerr.text);
    const char *codec = NULL, *name = NULL;
    json_int_t version = 0, fd = -1, pid = 0, size = 0, off = 0, blen = 0;
    int rc = 0;
    if (json_unpack(j, "[s, {s:I, s:I, s?I, s:s, s:I, s:I, s:I}]", &codec, "version", &version,
            "fd", &fd, "pid", &pid, "name", &name, "size", &size, "byteOffset", &off, "byteLength",
            &blen)
        != 0) {
        rc = knit__err(KNIT_E_CORRUPT, "external payload is not [codecId, metadata]");
    } else if (strcmp(codec, KNIT__PSB_CODEC_ID) != 0) {
        rc = knit__err(
            KNIT_E_UNSUPPORTED, "external payload codec \"%s\" is not known here", codec);
    } else if (version != 1 || fd < -1 || fd > INT32_MAX || size < 0 || off < 0 || blen < 0
        || off > size || blen > size - off || strlen(name) >= sizeof((*out)->name)
        || (fd < 0 && name[0] == '\0') || pid < 0 || pid > INT32_MAX) {
        rc = knit__err(KNIT_E_CORRUPT, "ProcessSharedBuffer metadata is inconsistent");
    } else {
        knit_psb_desc_t *d = calloc(1, sizeof *d);
        if (!d) {
            rc = knit__err(KNIT_E_NOMEM, "decoding a ProcessSharedBuffer");
        } else {
            d->fd = (int32_t)fd;
            /* 0 = ours; a pid only locates an fd, so a named buffer has none (as encoded) */
            d->pid = fd < 0 || pid == (json_int_t)getpid() ? 0 : (int32_t)pid;
            strcpy(d->name, name);
            d->size = (uint64_t)size;
            d->offset = (uint64_t)off;
            d->length = (uint64_t)blen;
            *out = d;
        }
    }
    json_decref(j);
    return rc;
}
