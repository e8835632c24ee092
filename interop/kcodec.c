/* knit interop - the codec in knitting mode (see interop/kcodec.h). */
#include "interop/kcodec.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "codec/codec_json.h"

#define PSB_CODEC_ID "knitting.processSharedBuffer"

/* knitting's tags that knit's codec does not know or writes in its own shape. */
enum {
    T_SYMBOL = 26,
    T_STATIC_SYMBOL = 27,
    T_NUMERIC_ARRAY = 53,
    T_STATIC_NUMERIC_ARRAY = 54,
};

/* --- a growable text buffer --------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int rc; /* first failure */
} sbuf_t;

static void sb_put(sbuf_t *b, const void *s, size_t n)
{
    if (b->rc)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->rc = knit__err(KNIT_E_NOMEM, "building a knitting payload of %zu bytes", b->n + n);
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* A JSON string as JSON.stringify writes it: quote, backslash and the control characters
 * escaped (short forms where JSON has them, else \u00xx in lower case), UTF-8 as it is. */
static void sb_json_string(sbuf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (c < 0x20) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                u[6] = 0;
                esc = u;
            }
        }
        if (!esc)
            continue;
        sb_put(b, s + run, i - run);
        sb_str(b, esc);
        run = i + 1;
    }
    sb_put(b, s + run, n - run);
    sb_put(b, "\"", 1);
}

size_t knit__kx_js_number(double d, char *buf)
{
    if (isnan(d) || isinf(d))
        return (size_t)sprintf(buf, "null");
    if (d == 0)
        return (size_t)sprintf(buf, "0"); /* JSON.stringify(-0) is "0" */
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) { /* the shortest digits that read back as d */
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    char digits[20];
    size_t k = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = atoi(p + 1) + 1; /* value = 0.digits x 10^n */
    char *o = buf;
    if (neg)
        *o++ = '-';
    if ((int)k <= n && n <= 21) {
        memcpy(o, digits, k);
        o += k;
        for (int i = (int)k; i < n; i++)
            *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, digits, (size_t)n);
        o += n;
        *o++ = '.';
        memcpy(o, digits + n, k - (size_t)n);
        o += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -n; i++)
            *o++ = '0';
        memcpy(o, digits, k);
        o += k;
    } else {
        *o++ = digits[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, k - 1);
            o += k - 1;
        }
        o += sprintf(o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    *o = 0;
    return (size_t)(o - buf);
}

/* Decimal text of a sign + little-endian magnitude (knitting turns a bigint cause into it). */
static void sb_bigint_decimal(sbuf_t *b, bool neg, const uint8_t *mag, size_t len)
{
    uint8_t *m = malloc(len ? len : 1);
    char *dec = malloc(len * 3 + 3);
    if (!m || !dec) {
        free(m);
        free(dec);
        b->rc = b->rc ? b->rc : knit__err(KNIT_E_NOMEM, "formatting a bigint error cause");
        return;
    }
    memcpy(m, mag, len);
    size_t nd = 0, top = len;
    do { /* repeated division by 10, most significant byte first */
        unsigned rem = 0;
        for (size_t i = top; i-- > 0;) {
            unsigned cur = (rem << 8) | m[i];
            m[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
        }
        dec[nd++] = (char)('0' + rem);
        while (top > 0 && m[top - 1] == 0)
            top--;
    } while (top > 0);
    sb_put(b, "\"", 1);
    if (neg)
        sb_put(b, "-", 1);
    for (size_t i = nd; i-- > 0;)
        sb_put(b, &dec[i], 1);
    sb_put(b, "\"", 1);
    free(m);
    free(dec);
}

/* --- errors in knitting's shape: {"name","message","stack"?,"cause"?} ---------------------- */

static void sb_error(sbuf_t *b, const knit_error_value_t *e, const char *stack, int depth);

static void sb_cause(sbuf_t *b, const knit_value_t *c, int depth)
{
    char num[32];
    switch ((knit_kind_t)c->kind) {
    case KNIT_KIND_NULL:
        sb_str(b, "null");
        return;
    case KNIT_KIND_BOOL:
        sb_str(b, c->u.b ? "true" : "false");
        return;
    case KNIT_KIND_F64:
        sb_put(b, num, knit__kx_js_number(c->u.f64, num));
        return;
    case KNIT_KIND_INT64: /* a bigint cause: knitting sends its decimal text */
        sb_put(b, num, (size_t)sprintf(num, "\"%lld\"", (long long)c->u.i64));
        return;
    case KNIT_KIND_BIGINT:
        sb_bigint_decimal(b, c->sub, c->u.ptr, c->len);
        return;
    case KNIT_KIND_STRING:
        sb_json_string(b, c->u.ptr, c->len);
        return;
    case KNIT_KIND_JSON:
        sb_put(b, c->u.ptr, c->len);
        return;
    case KNIT_KIND_ERROR:
        sb_error(b, c->u.err, NULL, depth + 1);
        return;
    default:
        if (!b->rc)
            b->rc = knit__err(KNIT_E_UNSUPPORTED,
                "an error cause of kind %s has no knitting form (null, bool, number, bigint, "
                "string, JSON or error)",
                knit_kind_name((knit_kind_t)c->kind));
    }
}

static void sb_error(sbuf_t *b, const knit_error_value_t *e, const char *stack, int depth)
{
    if (depth > 32) {
        if (!b->rc)
            b->rc = knit__err(KNIT_E_UNSUPPORTED, "error causes nest deeper than 32 (a cycle?)");
        return;
    }
    const char *name = e->name ? e->name : "Error";
    const char *msg = e->message ? e->message : "";
    sb_str(b, "{\"name\":");
    sb_json_string(b, name, strlen(name));
    sb_str(b, ",\"message\":");
    sb_json_string(b, msg, strlen(msg));
    if (stack) {
        sb_str(b, ",\"stack\":");
        sb_json_string(b, stack, strlen(stack));
    }
    if (e->cause && e->cause->kind != KNIT_KIND_UNDEFINED) {
        sb_str(b, ",\"cause\":");
        sb_cause(b, e->cause, depth);
    }
    sb_put(b, "}", 1);
}

/* --- raw JSON scanning (to keep a cause's exact text) ---------------------------------------- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* End of the JSON value starting at i (jansson has already checked the text is JSON). */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    int nest = 0;
    bool in_str = false;
    for (; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"') {
                in_str = false;
                if (nest == 0)
                    return i + 1;
            }
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            nest++;
        else if (c == '}' || c == ']') {
            if (--nest == 0)
                return i + 1;
            if (nest < 0)
                return i;
        } else if (nest == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r'))
            return i;
    }
    return n;
}

/* The exact text of the top-level member `key` of the object in s (no escapes in the key). A
 * repeated key counts by its last occurrence, as JSON.parse and jansson take it. */
static bool member_text(const char *s, size_t n, const char *key, size_t *at, size_t *len)
{
    size_t klen = strlen(key), i = skip_ws(s, 0, n);
    bool found = false;
    if (i >= n || s[i] != '{')
        return false;
    i++;
    while (1) {
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != '"')
            return found;
        size_t kend = skip_value(s, i, n);
        bool match = kend - i == klen + 2 && memcmp(s + i + 1, key, klen) == 0;
        i = skip_ws(s, kend, n);
        if (i >= n || s[i] != ':')
            return found;
        i = skip_ws(s, i + 1, n);
        size_t vend = skip_value(s, i, n);
        if (match) {
            *at = i;
            *len = vend - i;
            found = true;
        }
        i = skip_ws(s, vend, n);
        if (i >= n || s[i] != ',')
            return found;
        i++;
    }
}

/* A cause as knitting's host sees it: scalars as themselves, objects and arrays (nested errors
 * included: knitting hands them to JavaScript as plain objects) as their exact JSON text. */
static int cause_from(json_t *c, const char *raw, size_t raw_len, knit_value_t **out)
{
    knit_value_t *v = calloc(1, sizeof *v);
    if (!v)
        return knit__err(KNIT_E_NOMEM, "decoding an error cause");
    char *text = NULL;
    if (json_is_null(c)) {
        *v = knit_v_null();
    } else if (json_is_boolean(c)) {
        *v = knit_v_bool(json_is_true(c));
    } else if (json_is_number(c)) {
        *v = knit_v_f64(json_number_value(c));
    } else if (json_is_string(c)) {
        text = knit__text_dup(json_string_value(c), json_string_length(c));
        *v = knit_v_strn(text, json_string_length(c));
    } else {
        /* the exact text when it is this member's (a key spelled with escapes may hide it) */
        json_t *again
            = raw ? json_loadb(raw, raw_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
        bool exact = again && json_equal(again, c);
        json_decref(again);
        char *dumped = exact ? NULL : json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
        text = exact ? knit__text_dup(raw, raw_len) : dumped;
        *v = knit_v_jsonn(text, text ? strlen(text) : 0);
        if (exact && text)
            v->len = raw_len;
    }
    if ((json_is_string(c) || json_is_object(c) || json_is_array(c)) && !text) {
        free(v);
        return knit__err(KNIT_E_NOMEM, "decoding an error cause");
    }
    v->flags = text ? KNIT_VF_OWNED : 0;
    *out = v;
    return 0;
}

static int error_from_json(const char *s, size_t n, knit__kx_value_t *out)
{
    json_error_t jerr;
    json_t *o = json_loadb(s, n, JSON_ALLOW_NUL, &jerr);
    if (!o)
        return knit__err(KNIT_E_CORRUPT, "knitting error payload is not JSON: %s", jerr.text);
    json_t *jn = json_object_get(o, "name"), *jm = json_object_get(o, "message");
    json_t *js = json_object_get(o, "stack"), *jc = json_object_get(o, "cause");
    knit_error_value_t *e = calloc(1, sizeof *e);
    int rc = e ? 0 : knit__err(KNIT_E_NOMEM, "decoding an error");
    if (rc == 0 && (!json_is_object(o) || !json_is_string(jn) || !json_is_string(jm)))
        rc = knit__err(KNIT_E_CORRUPT, "knitting error payload needs string name and message");
    if (rc == 0) {
        e->name = knit__text_dup(json_string_value(jn), json_string_length(jn));
        e->message = knit__text_dup(json_string_value(jm), json_string_length(jm));
        if (json_is_string(js))
            out->stack = knit__text_dup(json_string_value(js), json_string_length(js));
        if (!e->name || !e->message || (json_is_string(js) && !out->stack))
            rc = knit__err(KNIT_E_NOMEM, "decoding an error");
    }
    size_t at = 0, len = 0;
    if (rc == 0 && jc) {
        bool raw = member_text(s, n, "cause", &at, &len);
        knit_value_t *cv = NULL;
        rc = cause_from(jc, raw ? s + at : NULL, raw ? len : 0, &cv);
        e->cause = cv;
    }
    json_decref(o);
    out->v = knit_v_error(e);
    out->v.flags = KNIT_VF_OWNED;
    if (rc < 0 || !e)
        knit__kx_free(out);
    return rc;
}

/* --- ProcessSharedBuffer in knitting's forms ------------------------------------------------- */

/* knitting's external metadata {version, descriptor: {version, fd, name?, size, byteLength,
 * runtime?, kind?, baseAddressMod64?}, byteOffset, byteLength}. */
static int psb_from_meta(json_t *meta, int32_t peer_pid, knit_psb_desc_t **out)
{
    json_t *d = json_object_get(meta, "descriptor");
    json_t *fd = json_object_get(d, "fd"), *name = json_object_get(d, "name");
    json_t *size = json_object_get(d, "size");
    json_t *off = json_object_get(meta, "byteOffset"), *len = json_object_get(meta, "byteLength");
    if (!json_is_object(d) || !json_is_integer(size) || !json_is_integer(off)
        || !json_is_integer(len) || (fd && !json_is_integer(fd))
        || (name && (!json_is_string(name) || json_string_length(name) >= 32)))
        return knit__err(KNIT_E_CORRUPT, "knitting ProcessSharedBuffer metadata is malformed");
    json_int_t s = json_integer_value(size), o = json_integer_value(off);
    json_int_t l = json_integer_value(len), f = fd ? json_integer_value(fd) : -1;
    if (s < 0 || o < 0 || l < 0 || o > s || l > s - o || f < -1 || f > INT32_MAX
        || (f < 0 && !name))
        return knit__err(KNIT_E_CORRUPT, "knitting ProcessSharedBuffer range is inconsistent");
    knit_psb_desc_t *p = calloc(1, sizeof *p);
    if (!p)
        return knit__err(KNIT_E_NOMEM, "decoding a ProcessSharedBuffer");
    p->fd = name ? -1 : (int32_t)f; /* knit opens a named buffer by its name */
    p->pid = name ? 0 : peer_pid;
    if (name)
        strcpy(p->name, json_string_value(name));
    p->size = (uint64_t)s;
    p->offset = (uint64_t)o;
    p->length = (uint64_t)l;
    *out = p;
    return 0;
}

static void sb_psb_meta(sbuf_t *b, const knit_psb_desc_t *d)
{
    char num[160];
    sb_str(b, "[\"" PSB_CODEC_ID "\",{\"version\":1,\"descriptor\":{\"version\":1,");
    snprintf(num, sizeof num, "\"fd\":%d,\"size\":%llu,\"byteLength\":%llu", d->fd < 0 ? 0 : d->fd,
        (unsigned long long)d->size, (unsigned long long)d->size);
    sb_str(b, num);
    if (d->name[0]) {
        sb_str(b, ",\"name\":");
        sb_json_string(b, d->name, strnlen(d->name, sizeof d->name));
    }
    snprintf(num, sizeof num, "},\"byteOffset\":%llu,\"byteLength\":%llu}]",
        (unsigned long long)d->offset, (unsigned long long)d->length);
    sb_str(b, num);
}

/* [codecId, metadata]: a ProcessSharedBuffer, or (another codec) the text as an EXTERNAL. */
static int external_from_json(
    const char *s, size_t n, const knit__kx_cfg_t *cfg, knit__kx_value_t *out)
{
    json_error_t jerr;
    json_t *j = json_loadb(s, n, 0, &jerr);
    if (!j)
        return knit__err(KNIT_E_CORRUPT, "knitting external payload is not JSON: %s", jerr.text);
    json_t *id = json_array_get(j, 0);
    int rc = 0;
    if (!json_is_array(j) || json_array_size(j) != 2 || !json_is_string(id)) {
        rc = knit__err(KNIT_E_CORRUPT, "knitting external payload is not [codecId, metadata]");
    } else if (strcmp(json_string_value(id), PSB_CODEC_ID) == 0) {
        knit_psb_desc_t *d = NULL;
        rc = psb_from_meta(json_array_get(j, 1), cfg->peer_pid, &d);
        if (rc == 0) {
            out->v = knit_v_psb(d);
            out->v.flags = KNIT_VF_OWNED;
        }
    } else {
        char *t = knit__text_dup(s, n);
        rc = t ? 0 : knit__err(KNIT_E_NOMEM, "decoding an external payload");
        if (t) {
            out->v = knit_v_jsonn(t, n);
            out->v.flags = KNIT_VF_OWNED;
            out->form = KNIT__KX_EXTERNAL;
        }
    }
    json_decref(j);
    return rc;
}

/* --- locating payloads ------------------------------------------------------------------------ */

static int locate(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *a,
    const knit__kx_cfg_t *cfg, bool dynamic, uint64_t len, const uint8_t **src)
{
    if (!dynamic) {
        if (len > KNIT__STATIC_BYTES)
            return knit__err(KNIT_E_CORRUPT, "static payload of %llu bytes (tag %u)",
                (unsigned long long)len, hdr[KNIT__W_TAG]);
        *src = stat;
        return 0;
    }
    uint64_t start = hdr[KNIT__W_START];
    if (len > cfg->codec.max_payload_bytes)
        return knit__err(KNIT_E_CORRUPT, "a %llu-byte region is over maxPayloadBytes (%llu)",
            (unsigned long long)len, (unsigned long long)cfg->codec.max_payload_bytes);
    if (!a || start % 64 != 0 || start + len > knit__arena_usable(a))
        return knit__err(KNIT_E_CORRUPT, "region [%llu, +%llu) is outside the arena (tag %u)",
            (unsigned long long)start, (unsigned long long)len, hdr[KNIT__W_TAG]);
    *src = knit__arena_at(a, (uint32_t)start);
    return 0;
}

static void free_region(const uint32_t *hdr, const knit__arena_t *a)
{
    knit__arena_free(a->free_bits, hdr[KNIT__W_META] & KNIT__META_REGION_MASK);
}

/* --- decoding --------------------------------------------------------------------------------- */

static int dec_psb_words(const uint8_t *stat, const knit__kx_cfg_t *cfg, knit__kx_value_t *out)
{
    uint32_t w[8];
    memcpy(w, stat, sizeof w);
    if ((int32_t)w[0] < 0 || (uint64_t)w[3] + w[4] > w[1])
        return knit__err(KNIT_E_CORRUPT, "knitting ProcessSharedBuffer words are inconsistent");
    knit_psb_desc_t *d = calloc(1, sizeof *d);
    if (!d)
        return knit__err(KNIT_E_NOMEM, "decoding a ProcessSharedBuffer");
    d->fd = (int32_t)w[0];
    d->pid = cfg->peer_pid; /* knitting's words name an fd of the process that wrote them */
    d->size = w[1];
    d->offset = w[3];
    d->length = w[4];
    out->v = knit_v_psb(d);
    out->v.flags = KNIT_VF_OWNED;
    return 0;
}

/* Envelopes whose body is an external payload (49-52): only a ProcessSharedBuffer body has a
 * knit form. */
static int dec_env_external(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *a,
    const knit__kx_cfg_t *cfg, knit__kx_value_t *out)
{
    uint32_t tag = hdr[KNIT__W_TAG];
    bool dyn_header = (tag - KNIT__T_ENV_STATIC_JSON_EXT) & 1u;
    bool str = tag >= KNIT__T_ENV_STATIC_STRING_EXT;
    uint64_t hlen = hdr[KNIT__W_LEN], blen = hdr[KNIT__W_END];
    const uint8_t *region = NULL;
    if (!dyn_header && hlen > KNIT__STATIC_BYTES)
        return knit__err(
            KNIT_E_CORRUPT, "static envelope header of %llu bytes", (unsigned long long)hlen);
    int rc = locate(hdr, stat, a, cfg, true, (dyn_header ? hlen : 0) + blen, &region);
    if (rc < 0)
        return rc;
    const uint8_t *hsrc = dyn_header ? region : stat, *bsrc = region + (dyn_header ? hlen : 0);
    knit__kx_value_t body = {0};
    rc = external_from_json((const char *)bsrc, blen, cfg, &body);
    if (rc == 0 && body.v.kind != KNIT_KIND_PSB) {
        knit__kx_free(&body);
        rc = knit__err(KNIT_E_UNSUPPORTED,
            "an envelope whose body is an external payload of another codec has no knit form "
            "(knit envelope bodies are bytes or a ProcessSharedBuffer)");
    }
    knit_envelope_t *env = rc == 0 ? calloc(1, sizeof *env) : NULL;
    char *h = env ? knit__text_dup((const char *)hsrc, hlen) : NULL;
    if (rc == 0 && !h) {
        free(env);
        knit__kx_free(&body);
        rc = knit__err(KNIT_E_NOMEM, "decoding an envelope");
    }
    if (rc < 0) {
        if (rc == KNIT_E_UNSUPPORTED)
            free_region(hdr, a);
        return rc;
    }
    env->header = h;
    env->header_len = hlen;
    env->header_kind = str ? KNIT_ENV_STRING : KNIT_ENV_JSON;
    env->body = body.v;
    out->v = knit_v_envelope(env);
    out->v.flags = KNIT_VF_OWNED;
    free_region(hdr, a);
    return 0;
}

/* A knitting tag whose bytes are a knit tag's: decode through knit's codec under that tag. */
static int dec_as(const uint32_t *hdr, uint32_t tag, const uint8_t *stat, const knit__arena_t *a,
    const knit__kx_cfg_t *cfg, uint8_t form, knit__kx_value_t *out)
{
    uint32_t h[KNIT__HDR_WORDS];
    memcpy(h, hdr, sizeof h);
    h[KNIT__W_TAG] = tag;
    int rc = knit__decode(h, stat, a, &cfg->codec, &out->v);
    if (rc == 0)
        out->form = form;
    return rc;
}

int knit__kx_decode(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *arena,
    const knit__kx_cfg_t *cfg, knit__kx_value_t *out)
{
    uint32_t tag = hdr[KNIT__W_TAG], len = hdr[KNIT__W_LEN];
    const uint8_t *src = NULL;
    int rc;
    *out = (knit__kx_value_t) {0};
    out->v = knit_v_undefined();
    switch (tag) {
    case KNIT__T_ERROR:
        rc = locate(hdr, stat, arena, cfg, true, len, &src);
        if (rc == 0 && (rc = error_from_json((const char *)src, len, out)) == 0)
            free_region(hdr, arena);
        return rc;
    case T_SYMBOL:
        return dec_as(hdr, KNIT__T_STRING, stat, arena, cfg, KNIT__KX_SYMBOL, out);
    case T_STATIC_SYMBOL:
        return dec_as(hdr, KNIT__T_STATIC_STRING, stat, arena, cfg, KNIT__KX_SYMBOL, out);
    case T_NUMERIC_ARRAY:
        return dec_as(hdr, KNIT__T_F64A, stat, arena, cfg, KNIT__KX_NUMERIC_ARRAY, out);
    case T_STATIC_NUMERIC_ARRAY:
        return dec_as(hdr, KNIT__T_STATIC_F64A, stat, arena, cfg, KNIT__KX_NUMERIC_ARRAY, out);
    case KNIT__T_EXTERNAL:
    case KNIT__T_STATIC_EXTERNAL: {
        bool dyn = tag == KNIT__T_EXTERNAL;
        rc = locate(hdr, stat, arena, cfg, dyn, len, &src);
        if (rc == 0)
            rc = external_from_json((const char *)src, len, cfg, out);
        if (rc == 0 && dyn)
            free_region(hdr, arena);
        return rc;
    }
    case KNIT__T_PSB:
        return dec_psb_words(stat, cfg, out);
    case KNIT__T_ENV_STATIC_JSON_EXT:
    case KNIT__T_ENV_DYN_JSON_EXT:
    case KNIT__T_ENV_STATIC_STRING_EXT:
    case KNIT__T_ENV_DYN_STRING_EXT:
        return dec_env_external(hdr, stat, arena, cfg, out);
    case KNIT__T_MOVED:
    case KNIT__T_SHARED:
        return knit__err(KNIT_E_PROCESS_BOUNDARY,
            "a knitting %s frame carries a JavaScript-process pointer: it cannot reach a knit "
            "worker (knitting refuses it across processes too); use a ProcessSharedBuffer",
            tag == KNIT__T_SHARED ? "SharedArrayBuffer" : "BufferReference");
    default:
        if (tag >= KNIT__T_I8)
            return knit__err(KNIT_E_CORRUPT,
                "tag %u is knit's own (%s), never knitting's: a knitting-mode frame cannot "
                "carry it",
                tag, knit__tag_name(tag));
        return knit__decode(hdr, stat, arena, &cfg->codec, &out->v);
    }
}

/* --- encoding --------------------------------------------------------------------------------- */

static void set_words(uint32_t *hdr, uint32_t tag, uint32_t start, uint32_t end, uint32_t len)
{
    hdr[KNIT__W_TAG] = tag;
    hdr[KNIT__W_START] = start;
    hdr[KNIT__W_END] = end;
    hdr[KNIT__W_LEN] = len;
}

static int put_dynamic(uint32_t *hdr, knit__arena_t *arena, const knit__kx_cfg_t *cfg, uint32_t tag,
    const void *p, size_t n, const char *label)
{
    uint32_t index = 0, start = 0;
    if (n > cfg->codec.max_payload_bytes)
        return knit__err(KNIT_E_PAYLOAD_TOO_LARGE,
            "dynamic payload exceeds maxPayloadBytes: limit=%llu actual=%zu type=%s",
            (unsigned long long)cfg->codec.max_payload_bytes, n, label);
    if (!arena)
        return knit__err(KNIT_E_ARENA_FULL, "no payload arena for a %zu-byte %s", n, label);
    int rc = knit__arena_alloc(arena, n, &index, &start);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(knit__arena_at(arena, start), p, n);
    knit__arena_set_len(arena, index, n);
    set_words(hdr, tag, start, 0, (uint32_t)n);
    knit__hdr_set_region(hdr, index);
    return 0;
}

static int put_payload(uint32_t *hdr, uint8_t *stat, knit__arena_t *arena,
    const knit__kx_cfg_t *cfg, bool fits, uint32_t stag, uint32_t dtag, const void *p, size_t n,
    const char *label)
{
    if (fits && n <= KNIT__STATIC_BYTES) {
        if (n)
            memcpy(stat, p, n);
        set_words(hdr, stag, 0, 0, (uint32_t)n);
        return 0;
    }
    return put_dynamic(hdr, arena, cfg, dtag, p, n, label);
}

/* UTF-16 code units of UTF-8 text (JavaScript's string length). */
static size_t utf16_units(const uint8_t *s, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            u += (s[i] >= 0xF0) ? 2 : 1;
    }
    return u;
}

static int enc_error(
    knit__kx_value_t *kv, uint32_t *hdr, knit__arena_t *arena, const knit__kx_cfg_t *cfg)
{
    sbuf_t b = {0};
    sb_error(&b, kv->v.u.err, kv->stack, 0);
    int rc = b.rc;
    if (rc == 0)
        rc = put_dynamic(hdr, arena, cfg, KNIT__T_ERROR, b.p, b.n, "Error");
    free(b.p);
    return rc;
}

static int enc_psb(const knit_psb_desc_t *d, uint32_t *hdr, uint8_t *stat, knit__arena_t *arena,
    const knit__kx_cfg_t *cfg)
{
    if (d->fd >= 0 && d->name[0] == '\0' && d->size <= UINT32_MAX && d->offset <= d->size
        && d->length <= d->size - d->offset) {
        /* knitting's numeric form; runtime "other", kind SharedArrayBuffer, no base address */
        uint32_t w[8] = {(uint32_t)d->fd, (uint32_t)d->size, (uint32_t)d->size, (uint32_t)d->offset,
            (uint32_t)d->length, 0u, 1u, 0xFFFFFFFFu};
        memcpy(stat, w, sizeof w);
        set_words(hdr, KNIT__T_PSB, 0, 0, (uint32_t)sizeof w);
        return 0;
    }
    sbuf_t b = {0};
    sb_psb_meta(&b, d);
    int rc = b.rc ? b.rc
                  : put_payload(hdr, stat, arena, cfg, true, KNIT__T_STATIC_EXTERNAL,
                      KNIT__T_EXTERNAL, b.p, b.n, "ProcessSharedBuffer");
    free(b.p);
    return rc;
}

static int enc_env_psb(const knit_envelope_t *env, uint32_t *hdr, uint8_t *stat,
    knit__arena_t *arena, const knit__kx_cfg_t *cfg)
{
    sbuf_t b = {0};
    bool dyn_header = env->header_len > KNIT__STATIC_BYTES;
    bool str = env->header_kind == KNIT_ENV_STRING;
    if (dyn_header)
        sb_put(&b, env->header, env->header_len);
    size_t hbytes = b.n;
    sb_psb_meta(&b, env->body.u.psb);
    int rc = b.rc;
    if (rc == 0) {
        uint32_t tag = KNIT__T_ENV_STATIC_JSON_EXT + (str ? 2u : 0u) + (dyn_header ? 1u : 0u);
        rc = put_dynamic(hdr, arena, cfg, tag, b.p, b.n, "Envelope");
    }
    if (rc == 0) {
        if (!dyn_header && env->header_len)
            memcpy(stat, env->header, env->header_len);
        hdr[KNIT__W_END] = (uint32_t)(b.n - hbytes);
        hdr[KNIT__W_LEN] = (uint32_t)env->header_len;
    }
    free(b.p);
    return rc;
}

static int enc_plain(knit__kx_value_t *kv, uint32_t *hdr, uint8_t *stat, knit__arena_t *arena,
    const knit__kx_cfg_t *cfg)
{
    knit_value_t *v = &kv->v;
    switch ((knit_kind_t)v->kind) {
    case KNIT_KIND_ERROR:
        return enc_error(kv, hdr, arena, cfg);
    case KNIT_KIND_PSB:
        return enc_psb(v->u.psb, hdr, stat, arena, cfg);
    case KNIT_KIND_ENVELOPE:
        if (v->u.env->body.kind == KNIT_KIND_PSB)
            return enc_env_psb(v->u.env, hdr, stat, arena, cfg);
        break;
    case KNIT_KIND_TYPED:
        if (v->sub <= KNIT_ELEM_F32 && v->sub != KNIT_ELEM_I32)
            return knit__err(KNIT_E_UNSUPPORTED,
                "knitting has no tag for a %s (it carries Uint8Array, Int32Array, "
                "Float64Array, BigInt64Array, BigUint64Array, DataView, ArrayBuffer and "
                "Buffer): send bytes or widen it",
                knit_elem_name((knit_elem_t)v->sub));
        break;
    case KNIT_KIND_SHARED:
    case KNIT_KIND_MOVED:
        return knit__err(KNIT_E_PROCESS_BOUNDARY,
            "a %s buffer is a pointer into this process: it cannot reach a knitting peer; use "
            "a ProcessSharedBuffer",
            v->kind == KNIT_KIND_SHARED ? "shared" : "moved");
    default:
        break;
    }
    return knit__encode(v, hdr, stat, arena, &cfg->codec);
}

int knit__kx_encode(knit__kx_value_t *kv, uint32_t *hdr, uint8_t *stat, knit__arena_t *arena,
    const knit__kx_cfg_t *cfg)
{
    const knit_value_t *v = &kv->v;
    switch ((knit__kx_form_t)kv->form) {
    case KNIT__KX_PLAIN:
        return enc_plain(kv, hdr, stat, arena, cfg);
    case KNIT__KX_SYMBOL:
        if (v->kind != KNIT_KIND_STRING)
            break;
        /* knitting: static only when 3 bytes per UTF-16 unit would fit the static area */
        return put_payload(hdr, stat, arena, cfg, utf16_units(v->u.ptr, v->len) * 3 <= 512,
            T_STATIC_SYMBOL, T_SYMBOL, v->u.ptr, v->len, "Symbol");
    case KNIT__KX_NUMERIC_ARRAY:
        if (v->kind != KNIT_KIND_TYPED || v->sub != KNIT_ELEM_F64 || v->len % 8)
            break;
        return put_payload(hdr, stat, arena, cfg, true, T_STATIC_NUMERIC_ARRAY, T_NUMERIC_ARRAY,
            v->u.ptr, v->len, "NumericArray");
    case KNIT__KX_EXTERNAL:
        if (v->kind != KNIT_KIND_JSON)
            break;
        return put_payload(hdr, stat, arena, cfg, true, KNIT__T_STATIC_EXTERNAL, KNIT__T_EXTERNAL,
            v->u.ptr, v->len, "ExternalPayload");
    }
    return knit__err(KNIT_E_INVAL,
        "knitting form %u does not fit a %s value (Symbol: string, NumericArray: Float64 "
        "typed array, external payload: JSON text)",
        kv->form, knit_kind_name((knit_kind_t)v->kind));
}

void knit__kx_free(knit__kx_value_t *kv)
{
    knit_value_free(&kv->v);
    free(kv->stack);
    kv->stack = NULL;
    kv->form = KNIT__KX_PLAIN;
}
