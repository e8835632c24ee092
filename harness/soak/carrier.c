/* knit-soak - the carrier (carrier.h). */
#include "carrier.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define K1 0x9e3779b97f4a7c15ull
#define K2 0xc2b2ae3d27d4eb4full

uint64_t sk_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Per word: h = rotl(h ^ w * K1, 31) * K2 - a bijection of h for a fixed word and of the word
 * for a fixed h, so a single changed word always changes the state, and every later step keeps
 * the difference. */
uint64_t sk_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    h ^= (uint64_t)n * K2;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = rotl64(h ^ (w * K1), 31) * K2;
        b += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, b, n);
        h = rotl64(h ^ ((w + 1) * K1), 31) * K2;
    }
    return sk_mix64(h);
}

uint64_t sk_salt(uint64_t seqfield, unsigned kind, unsigned sub)
{
    return sk_mix64(seqfield ^ ((uint64_t)kind << 40) ^ ((uint64_t)sub << 32) ^ K1);
}

int64_t sk_scalar_i64(uint64_t seq)
{
    seq &= SK_SEQ_MASK >> 1;
    return (int64_t)((seq << 16) | (sk_mix64(seq ^ 0x5eedull) & 0xffffu));
}

double sk_scalar_f64(uint64_t seq)
{
    seq &= (1ull << 43) - 1;
    return (double)(seq * 1024u + (sk_mix64(seq ^ 0xf64ull) & 1023u));
}

static const char hexd[] = "0123456789abcdef";

static void put_hex64(char *p, uint64_t v)
{
    for (int i = 15; i >= 0; i--) {
        p[i] = hexd[v & 15];
        v >>= 4;
    }
}

static bool get_hex64(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

void sk_put_tag(uint8_t *p, uint64_t seqfield, uint64_t sum)
{
    memcpy(p, &seqfield, 8);
    memcpy(p + 8, &sum, 8);
}

void sk_put_text_tag(char *p, uint64_t seqfield, uint64_t sum)
{
    p[0] = '#';
    put_hex64(p + 1, seqfield);
    put_hex64(p + 17, sum);
    p[33] = ':';
}

/* "#" + 32 hex digits at p (n bytes available). */
static bool get_text_tag(const char *p, size_t n, uint64_t *seqfield, uint64_t *sum)
{
    return n >= 33 && p[0] == '#' && get_hex64(p + 1, seqfield) && get_hex64(p + 17, sum);
}

#define WHY(...)                                                                                   \
    do {                                                                                           \
        if (why)                                                                                   \
            snprintf(why, why_len, __VA_ARGS__);                                                   \
    } while (0)

/* A binary tag followed by the payload. */
static int check_tagged(const uint8_t *p, size_t n, unsigned kind, unsigned sub, sk_info_t *o,
    char *why, size_t why_len)
{
    if (n < 16) {
        WHY("%s of %zu bytes is too short for a tag", knit_kind_name((knit_kind_t)kind), n);
        return SK_MALFORMED;
    }
    memcpy(&o->seqfield, p, 8);
    memcpy(&o->claimed, p + 8, 8);
    o->actual = sk_hash(sk_salt(o->seqfield, kind, sub), p + 16, n - 16);
    return SK_OK;
}

static int check_psb(const knit_psb_desc_t *d, unsigned kind, unsigned sub, uint64_t h, bool tagged,
    sk_info_t *o, char *why, size_t why_len)
{
    knit_psb_t *b = NULL;
    int rc = knit_psb_open(d, &b);
    if (rc < 0) {
        WHY("knit_psb_open: %s", knit_errmsg());
        return SK_MALFORMED;
    }
    knit_psb_view_t view;
    rc = knit_psb_desc_view(b, d, KNIT_ELEM_ARRAYBUFFER, &view);
    int verdict = SK_OK;
    if (rc < 0) {
        WHY("knit_psb_desc_view: %s", knit_errmsg());
        verdict = SK_MALFORMED;
    } else if (tagged) {
        verdict = check_tagged(view.data, view.count, kind, sub, o, why, why_len);
    } else {
        o->actual = sk_hash(h, view.data, view.count);
    }
    knit_psb_close(b);
    return verdict;
}

uint64_t sk_hash_cause(uint64_t h, const knit_value_t *c)
{
    uint8_t k = c ? c->kind : KNIT_KIND_UNDEFINED;
    uint64_t w = 0;
    switch (k) {
    case KNIT_KIND_UNDEFINED:
        return sk_hash(h, "none", 4);
    case KNIT_KIND_NULL:
        return sk_hash(h, "null", 4);
    case KNIT_KIND_BOOL:
        return sk_hash(h, c->u.b ? "true" : "false", c->u.b ? 4 : 5);
    case KNIT_KIND_F64:
        memcpy(&w, &c->u.f64, 8);
        return sk_hash(h ^ 0xf64, &w, 8);
    case KNIT_KIND_INT64:
        memcpy(&w, &c->u.i64, 8);
        return sk_hash(h ^ 0x164, &w, 8);
    case KNIT_KIND_STRING:
    case KNIT_KIND_JSON:
        return sk_hash(h ^ k, c->u.ptr, c->len);
    case KNIT_KIND_ERROR: {
        const char *name = c->u.err->name && *c->u.err->name ? c->u.err->name : "Error";
        h = sk_hash(h ^ 0xe, name, strlen(name));
        h = sk_hash(h, c->u.err->message, strlen(c->u.err->message));
        return sk_hash_cause(h, c->u.err->cause);
    }
    default:
        return sk_hash(h ^ 0xbad, &k, 1);
    }
}

int sk_check(const knit_value_t *v, sk_info_t *o, char *why, size_t why_len)
{
    memset(o, 0, sizeof *o);
    switch (v->kind) {
    case KNIT_KIND_INT64: {
        uint64_t u = (uint64_t)v->u.i64;
        o->seqfield = u >> 16;
        o->claimed = u & 0xffffu;
        o->actual = (uint64_t)sk_scalar_i64(o->seqfield) & 0xffffu;
        return SK_OK;
    }
    case KNIT_KIND_F64:
    case KNIT_KIND_DATE: {
        double d = v->u.f64;
        if (!(d >= 0 && d < 9007199254740992.0) || floor(d) != d || signbit(d)) {
            WHY("%s %.17g is not a carrier number", knit_kind_name((knit_kind_t)v->kind), d);
            return SK_MALFORMED;
        }
        uint64_t u = (uint64_t)d;
        o->seqfield = u >> 10;
        o->claimed = u & 1023u;
        o->actual = (uint64_t)sk_scalar_f64(o->seqfield) & 1023u;
        return SK_OK;
    }
    case KNIT_KIND_BYTES:
    case KNIT_KIND_TYPED:
    case KNIT_KIND_BIGINT:
        return check_tagged(v->u.ptr, v->len, v->kind, v->sub, o, why, why_len);
    case KNIT_KIND_SHARED:
        return check_tagged(knit_shared_buf_data(v->u.shared), knit_shared_buf_len(v->u.shared),
            v->kind, 0, o, why, why_len);
    case KNIT_KIND_MOVED:
        return check_tagged(v->u.moved->data, v->u.moved->len, v->kind, 0, o, why, why_len);
    case KNIT_KIND_PSB:
        return check_psb(v->u.psb, v->kind, 0, 0, true, o, why, why_len);
    case KNIT_KIND_STRING: {
        const char *s = v->u.ptr;
        if (v->len < 34 || !get_text_tag(s, v->len, &o->seqfield, &o->claimed) || s[33] != ':') {
            WHY("a string of %zu bytes without a tag", v->len);
            return SK_MALFORMED;
        }
        o->actual = sk_hash(sk_salt(o->seqfield, v->kind, 0), s + 34, v->len - 34);
        return SK_OK;
    }
    case KNIT_KIND_JSON: {
        /* ["#<32 hex>",PAYLOAD] */
        const char *s = v->u.ptr;
        if (v->len < 39 || memcmp(s, "[\"", 2) != 0
            || !get_text_tag(s + 2, v->len - 2, &o->seqfield, &o->claimed)
            || memcmp(s + 35, "\",", 2) != 0 || s[v->len - 1] != ']') {
            WHY("JSON of %zu bytes without a tag", v->len);
            return SK_MALFORMED;
        }
        o->actual = sk_hash(sk_salt(o->seqfield, v->kind, 0), s + 37, v->len - 38);
        return SK_OK;
    }
    case KNIT_KIND_ERROR: {
        const knit_error_value_t *e = v->u.err;
        size_t n = e->message ? strlen(e->message) : 0;
        if (!e->name || strcmp(e->name, "SoakError") != 0 || n < 34
            || !get_text_tag(e->message, n, &o->seqfield, &o->claimed) || e->message[33] != ':') {
            WHY("an error that is not a carrier (name %s)", e->name ? e->name : "(null)");
            return SK_MALFORMED;
        }
        uint64_t h = sk_hash(sk_salt(o->seqfield, v->kind, 0), e->message + 34, n - 34);
        o->actual = sk_hash_cause(h, e->cause);
        return SK_OK;
    }
    case KNIT_KIND_ENVELOPE: {
        const knit_envelope_t *env = v->u.env;
        const char *h = env->header;
        const char *extra = "";
        size_t extra_len = 0;
        bool ok;
        if (env->header_kind == KNIT_ENV_JSON) {
            /* {"soak":"#<32 hex>"} */
            ok = env->header_len == 44 && memcmp(h, "{\"soak\":\"", 9) == 0
                && get_text_tag(h + 9, 35, &o->seqfield, &o->claimed)
                && memcmp(h + 42, "\"}", 2) == 0;
        } else {
            ok = env->header_len >= 34
                && get_text_tag(h, env->header_len, &o->seqfield, &o->claimed) && h[33] == ':';
            extra = h + 34;
            extra_len = ok ? env->header_len - 34 : 0;
        }
        if (!ok) {
            WHY("an envelope whose %u-byte header has no tag", (unsigned)env->header_len);
            return SK_MALFORMED;
        }
        unsigned sub = env->header_kind | (unsigned)env->body.kind << 4;
        uint64_t hh = sk_hash(sk_salt(o->seqfield, v->kind, sub), extra, extra_len);
        if (env->body.kind == KNIT_KIND_BYTES) {
            o->actual = sk_hash(hh, env->body.u.ptr, env->body.len);
            return SK_OK;
        }
        if (env->body.kind == KNIT_KIND_PSB)
            return check_psb(env->body.u.psb, v->kind, sub, hh, false, o, why, why_len);
        WHY("an envelope with a %s body", knit_kind_name((knit_kind_t)env->body.kind));
        return SK_MALFORMED;
    }
    default:
        WHY("a %s value is not a carrier", knit_kind_name((knit_kind_t)v->kind));
        return SK_MALFORMED;
    }
}

static const char digest_header[] = "soak-digest";

void sk_digest(uint64_t seqfield, uint64_t sum, uint8_t body[24], knit_envelope_t *env)
{
    uint64_t check = sk_mix64(seqfield ^ sk_mix64(sum));
    memcpy(body, &seqfield, 8);
    memcpy(body + 8, &sum, 8);
    memcpy(body + 16, &check, 8);
    memset(env, 0, sizeof *env);
    env->header = digest_header;
    env->header_len = sizeof digest_header - 1;
    env->header_kind = KNIT_ENV_STRING;
    env->body = knit_v_bytes(body, 24);
}

bool sk_is_digest(const knit_value_t *v)
{
    return v->kind == KNIT_KIND_ENVELOPE && v->u.env->header_len == sizeof digest_header - 1
        && memcmp(v->u.env->header, digest_header, sizeof digest_header - 1) == 0;
}

int sk_check_digest(const knit_value_t *v, sk_info_t *o)
{
    memset(o, 0, sizeof *o);
    if (!sk_is_digest(v) || v->u.env->body.kind != KNIT_KIND_BYTES)
        return SK_MALFORMED;
    if (v->u.env->body.len != 24)
        return SK_MISMATCH;
    const uint8_t *b = v->u.env->body.u.ptr;
    uint64_t check;
    memcpy(&o->seqfield, b, 8);
    memcpy(&o->claimed, b + 8, 8);
    memcpy(&check, b + 16, 8);
    o->actual = o->claimed;
    return check == sk_mix64(o->seqfield ^ sk_mix64(o->claimed)) ? SK_OK : SK_MISMATCH;
}
