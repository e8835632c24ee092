/*
 * Golden vectors: bytes knitting's own encoder wrote (tests/interop/vectors/knitting.vec, made by
 * gen_vectors.ts under Bun) decode, in knit's knitting-mode codec (interop/kcodec.h), to the
 * value each case names, free their region exactly once, and re-encode to the same header words,
 * static bytes and region bytes. Fields that legitimately differ are listed per case (MASK) and
 * the few payloads knit cannot reproduce byte for byte are re-decoded instead (SEMANTIC). Needs
 * neither Bun nor knitting: the fixtures are committed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interop/kcodec.h"
#include "knit/error.h"

#define ARENA_BYTES (1u << 20)
#define PEER_PID    4242

/* --- the fixture file ------------------------------------------------------------------------ */

typedef struct vec {
    char name[64];
    uint32_t w[KNIT__HDR_WORDS]; /* 0, 1 and 7 stay 0 */
    uint8_t stat[KNIT__STATIC_BYTES];
    size_t stat_len;
    uint8_t *region;
    size_t region_len;
} vec_t;

static vec_t *vecs;
static size_t nvecs;

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    if (strcmp(s, "-") == 0)
        return 0;
    size_t n = strlen(s) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned b = 0;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &b), 1);
        out[i] = (uint8_t)b;
    }
    return n;
}

static void load_vectors(void)
{
    FILE *f = fopen(KNIT_VECTORS_PATH, "r");
    assert_non_null(f);
    size_t cap = 1 << 20;
    char *line = malloc(cap), *sh = malloc(cap), *rh = malloc(cap);
    assert_true(line && sh && rh);
    vecs = calloc(256, sizeof *vecs);
    assert_non_null(vecs);
    while (fgets(line, (int)cap, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        vec_t *v = &vecs[nvecs++];
        assert_true(nvecs < 256);
        assert_int_equal(sscanf(line, "%63s %u %x %x %x %x %s %s", v->name, &v->w[2], &v->w[3],
                             &v->w[4], &v->w[5], &v->w[6], sh, rh),
            8);
        v->stat_len = unhex(sh, v->stat, sizeof v->stat);
        v->region = malloc(strlen(rh) / 2 + 1);
        assert_non_null(v->region);
        v->region_len = unhex(rh, v->region, strlen(rh) / 2 + 1);
    }
    fclose(f);
    free(line);
    free(sh);
    free(rh);
}

static const vec_t *find_vec(const char *name)
{
    for (size_t i = 0; i < nvecs; i++)
        if (strcmp(vecs[i].name, name) == 0)
            return &vecs[i];
    fail_msg("no golden vector named %s", name);
    return NULL;
}

/* --- an arena the way a lane has it ----------------------------------------------------------- */

typedef struct arena_fx {
    uint8_t *mem;
    _Atomic uint32_t alloc_bits, free_bits;
    knit__arena_t a;
} arena_fx_t;

static void arena_open(arena_fx_t *x)
{
    x->mem = calloc(1, ARENA_BYTES);
    assert_non_null(x->mem);
    atomic_init(&x->alloc_bits, 0);
    atomic_init(&x->free_bits, 0);
    knit__arena_init(&x->a, x->mem, ARENA_BYTES, ARENA_BYTES, &x->alloc_bits, &x->free_bits);
}

static void arena_close(arena_fx_t *x)
{
    free(x->mem);
}

static const knit__kx_cfg_t cfg = {
    .codec = {.max_payload_bytes = ARENA_BYTES >> 3, .process_boundary = true},
    .peer_pid = PEER_PID,
};

/* --- expected values ------------------------------------------------------------------------ */

/* Storage the expected values borrow; freed after each case. */
static void *keep[16];
static int nkeep;

static void *hold(void *p)
{
    assert_non_null(p);
    assert_true(nkeep < 16);
    keep[nkeep++] = p;
    return p;
}

static void release_held(void)
{
    while (nkeep > 0)
        free(keep[--nkeep]);
}

static uint8_t *pattern(size_t n) /* gen_vectors.ts bytes(n): (i * 7 + 3) & 0xff */
{
    uint8_t *p = hold(malloc(n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 7 + 3) & 0xff);
    return p;
}

static char *rep(const char *unit, size_t times, const char *pre, const char *post)
{
    size_t u = strlen(unit), a = strlen(pre), b = strlen(post);
    char *s = hold(malloc(a + u * times + b + 1));
    memcpy(s, pre, a);
    for (size_t i = 0; i < times; i++)
        memcpy(s + a + i * u, unit, u);
    memcpy(s + a + u * times, post, b + 1);
    return s;
}

static knit_value_t big_ff(bool neg, size_t n)
{
    uint8_t *m = hold(malloc(n));
    memset(m, 0xff, n);
    knit_value_t v = {.kind = KNIT_KIND_BIGINT, .sub = neg, .len = n};
    v.u.ptr = m;
    return v;
}

static knit_value_t big_of(bool neg, const uint8_t *mag, size_t n)
{
    knit_value_t v = {.kind = KNIT_KIND_BIGINT, .sub = neg, .len = n};
    v.u.ptr = hold(memcpy(malloc(n), mag, n));
    return v;
}

static knit_value_t typed_copy(knit_elem_t e, const void *p, size_t n)
{
    return knit_v_typed(e, hold(memcpy(malloc(n ? n : 1), p, n)), n);
}

static knit_value_t f64s(size_t n, double div) /* i / div, as JavaScript computes it */
{
    double *d = hold(malloc(n * sizeof *d));
    for (size_t i = 0; i < n; i++)
        d[i] = (double)i / div;
    return knit_v_typed(KNIT_ELEM_F64, d, n * sizeof *d);
}

static knit_value_t error_v(const char *name, const char *msg, const knit_value_t *cause)
{
    knit_error_value_t *e = hold(calloc(1, sizeof *e));
    e->name = name;
    e->message = msg;
    e->cause = cause;
    return knit_v_error(e);
}

static knit_value_t *cause_v(knit_value_t v)
{
    knit_value_t *c = hold(malloc(sizeof *c));
    *c = v;
    return c;
}

static knit_value_t envelope(int hkind, const char *header, knit_value_t body)
{
    knit_envelope_t *env = hold(calloc(1, sizeof *env));
    env->header = header;
    env->header_len = strlen(header);
    env->header_kind = (uint8_t)hkind;
    env->body = body;
    return knit_v_envelope(env);
}

static knit_value_t psb(int32_t fd, const char *name, uint64_t off, uint64_t len)
{
    knit_psb_desc_t *d = hold(calloc(1, sizeof *d));
    d->fd = fd;
    d->pid = fd >= 0 ? PEER_PID : 0;
    snprintf(d->name, sizeof d->name, "%s", name);
    d->size = 4096;
    d->offset = off;
    d->length = len;
    return knit_v_psb(d);
}

enum check { EXACT = 0, MASK_STATIC, SEMANTIC };

typedef struct expect {
    knit__kx_value_t kv;
    enum check check;
    size_t mask_from, mask_to; /* MASK_STATIC: static bytes [from, to) differ legitimately */
    const char *why;
} expect_t;

static expect_t plain(knit_value_t v)
{
    return (expect_t) {.kv = {.v = v}};
}

static expect_t form(knit_value_t v, knit__kx_form_t f)
{
    return (expect_t) {.kv = {.v = v, .form = (uint8_t)f}};
}

static expect_t with_stack(knit_value_t v, const char *stack)
{
    return (expect_t) {.kv = {.v = v, .stack = (char *)stack}};
}

/* The value each golden vector must decode to (the list in gen_vectors.ts). */
static expect_t expected(const char *n)
{
#define IS(x) (strcmp(n, x) == 0)
    static const uint8_t m2p63[] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    static const uint8_t m2p63p1[] = {1, 0, 0, 0, 0, 0, 0, 0x80};
    static const uint8_t m2p70[] = {0, 0, 0, 0, 0, 0, 0, 0, 0x40};
    static const int32_t i32s[] = {1, -2, INT32_MAX, INT32_MIN};
    static const int64_t i64s[] = {1, -1, INT64_MIN};
    static const uint64_t u64s[] = {1, UINT64_MAX};
    static const uint8_t nb[] = {9, 8, 7};
    static const uint8_t b3[] = {1, 2, 3};
    static const double na[] = {1, 2.5, -3};
    const char *sym170 = rep("y", 170, "", ""), *sym171 = rep("y", 171, "", "");
    if (IS("undefined"))
        return plain(knit_v_undefined());
    if (IS("null"))
        return plain(knit_v_null());
    if (IS("true") || IS("false"))
        return plain(knit_v_bool(IS("true")));
    if (IS("f64_zero"))
        return plain(knit_v_f64(0.0));
    if (IS("f64_negzero"))
        return plain(knit_v_f64(-0.0));
    if (IS("f64_int"))
        return plain(knit_v_f64(123));
    if (IS("f64_frac"))
        return plain(knit_v_f64(1.5));
    if (IS("f64_min_subnormal"))
        return plain(knit_v_f64(5e-324));
    if (IS("f64_max"))
        return plain(knit_v_f64(1.7976931348623157e308));
    if (IS("f64_neg_big"))
        return plain(knit_v_f64(-1e308));
    if (IS("f64_inf") || IS("f64_neginf"))
        return plain(knit_v_f64(IS("f64_inf") ? INFINITY : -INFINITY));
    if (IS("f64_nan"))
        return plain(knit_v_f64(NAN));
    if (IS("bigint_zero"))
        return plain(knit_v_int64(0));
    if (IS("bigint_minus_one"))
        return plain(knit_v_int64(-1));
    if (IS("bigint_int64_max") || IS("bigint_int64_min"))
        return plain(knit_v_int64(IS("bigint_int64_max") ? INT64_MAX : INT64_MIN));
    if (IS("bigint_2p63"))
        return plain(big_of(false, m2p63, sizeof m2p63));
    if (IS("bigint_neg_2p63_minus_1"))
        return plain(big_of(true, m2p63p1, sizeof m2p63p1));
    if (IS("bigint_2p64_minus_1"))
        return plain(big_ff(false, 8));
    if (IS("bigint_2p70"))
        return plain(big_of(false, m2p70, sizeof m2p70));
    if (IS("bigint_static_max"))
        return plain(big_ff(false, 511));
    if (IS("bigint_dynamic_min"))
        return plain(big_ff(false, 512));
    if (IS("bigint_neg_dynamic"))
        return plain(big_ff(true, 600));
    if (IS("date_epoch"))
        return plain(knit_v_date(0));
    if (IS("date_ms"))
        return plain(knit_v_date(1700000000123.0));
    if (IS("date_negative"))
        return plain(knit_v_date(-86400000.0));
    if (IS("date_invalid"))
        return plain(knit_v_date(NAN));
    if (IS("string_empty"))
        return plain(knit_v_strn("", 0));
    if (IS("string_a"))
        return plain(knit_v_str("a"));
    if (IS("string_unicode"))
        return plain(knit_v_str("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xd0\x96"));
    if (IS("string_ascii_512") || IS("string_ascii_513"))
        return plain(knit_v_str(rep("s", IS("string_ascii_512") ? 512 : 513, "", "")));
    if (IS("string_2byte_256") || IS("string_2byte_257"))
        return plain(knit_v_str(rep("\xc3\xa9", IS("string_2byte_256") ? 256 : 257, "", "")));
    if (IS("string_3byte_170") || IS("string_3byte_171"))
        return plain(knit_v_str(rep("\xe2\x82\xac", IS("string_3byte_170") ? 170 : 171, "", "")));
    if (IS("string_4byte_128") || IS("string_4byte_129"))
        return plain(
            knit_v_str(rep("\xf0\x9f\x98\x80", IS("string_4byte_128") ? 128 : 129, "", "")));
    if (IS("string_nul"))
        return plain(knit_v_strn("a\0b", 3));
    if (IS("string_64k"))
        return plain(knit_v_str(rep("q", 65536, "", "")));
    if (IS("json_empty_object"))
        return plain(knit_v_json("{}"));
    if (IS("json_empty_array"))
        return plain(knit_v_json("[]"));
    if (IS("json_nested"))
        return plain(knit_v_json("{\"a\":1,\"b\":\"x\",\"c\":[1,2,{\"d\":null}],\"e\":true,\"f\":-"
                                 "0.5,\"g\":\"\xc3\xa9\\\"\\\\\"}"));
    if (IS("json_array"))
        return plain(knit_v_json("[1,\"two\",null,false,[3]]"));
    if (IS("json_512") || IS("json_513"))
        return plain(knit_v_json(rep("x", IS("json_512") ? 504 : 505, "{\"k\":\"", "\"}")));
    if (IS("json_drops_undefined"))
        return plain(knit_v_json("{\"a\":1,\"d\":\"1970-01-01T00:00:00.000Z\"}"));
    if (IS("bytes_empty"))
        return plain(knit_v_bytes("", 0));
    if (IS("bytes_3"))
        return plain(knit_v_bytes(b3, 3));
    if (IS("bytes_512") || IS("bytes_513") || IS("bytes_4096")) {
        size_t len = IS("bytes_512") ? 512 : IS("bytes_513") ? 513 : 4096;
        return plain(knit_v_bytes(pattern(len), len));
    }
    if (IS("i32_small"))
        return plain(typed_copy(KNIT_ELEM_I32, i32s, sizeof i32s));
    if (IS("i32_128") || IS("i32_129")) {
        size_t len = IS("i32_128") ? 512 : 516;
        return plain(knit_v_typed(KNIT_ELEM_I32, pattern(len), len));
    }
    if (IS("f64a_small")) {
        double d[] = {1.5, -0.0, INFINITY, NAN};
        return plain(typed_copy(KNIT_ELEM_F64, d, sizeof d));
    }
    if (IS("f64a_64") || IS("f64a_65"))
        return plain(f64s(IS("f64a_64") ? 64 : 65, 3.0));
    if (IS("i64a_small"))
        return plain(typed_copy(KNIT_ELEM_I64, i64s, sizeof i64s));
    if (IS("i64a_65")) {
        int64_t *a = hold(malloc(65 * 8));
        for (int i = 0; i < 65; i++)
            a[i] = i - 30;
        return plain(knit_v_typed(KNIT_ELEM_I64, a, 65 * 8));
    }
    if (IS("u64a_small"))
        return plain(typed_copy(KNIT_ELEM_U64, u64s, sizeof u64s));
    if (IS("u64a_65")) {
        uint64_t *a = hold(malloc(65 * 8));
        for (int i = 0; i < 65; i++)
            a[i] = (uint64_t)i << 40;
        return plain(knit_v_typed(KNIT_ELEM_U64, a, 65 * 8));
    }
    if (IS("dataview_small") || IS("dataview_513")) {
        size_t len = IS("dataview_small") ? 10 : 513;
        return plain(knit_v_typed(KNIT_ELEM_DATAVIEW, pattern(len), len));
    }
    if (!strncmp(n, "arraybuffer_", 12)) {
        size_t len = IS("arraybuffer_empty") ? 0 : IS("arraybuffer_small") ? 5 : atoi(n + 12);
        return plain(knit_v_typed(KNIT_ELEM_ARRAYBUFFER, pattern(len), len));
    }
    if (IS("nodebuffer_small"))
        return plain(knit_v_typed(KNIT_ELEM_NODEBUFFER, nb, 3));
    if (IS("nodebuffer_700"))
        return plain(knit_v_typed(KNIT_ELEM_NODEBUFFER, pattern(700), 700));
    if (IS("error_plain"))
        return plain(error_v("Error", "boom", NULL));
    if (IS("error_type_cause_object"))
        return with_stack(error_v("TypeError", "bad 3", cause_v(knit_v_json("{\"code\":7}"))),
            "TypeError: bad 3\n    at fixture (vectors:1:1)");
    if (IS("error_cause_string"))
        return plain(error_v("Error", "outer", cause_v(knit_v_str("why"))));
    if (IS("error_cause_number"))
        return plain(error_v("RangeError", "r", cause_v(knit_v_f64(42))));
    if (IS("error_cause_bigint")) /* knitting sends a bigint cause as its decimal text */
        return plain(error_v("Error", "b", cause_v(knit_v_str("12345678901234567890"))));
    if (IS("error_cause_error")) /* a nested error reaches JavaScript as a plain object */
        return plain(error_v("Error", "top",
            cause_v(knit_v_json("{\"name\":\"SyntaxError\",\"message\":\"inner\"}"))));
    if (IS("error_cause_null"))
        return plain(error_v("Error", "n", cause_v(knit_v_null())));
    if (IS("error_custom_name"))
        return plain(error_v("KnitError", "m", NULL));
    if (IS("error_unicode"))
        return plain(error_v("Error", "\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\n", NULL));
    if (IS("symbol_small"))
        return form(knit_v_str("knit.sym"), KNIT__KX_SYMBOL);
    if (IS("symbol_170") || IS("symbol_171"))
        return form(knit_v_str(IS("symbol_170") ? sym170 : sym171), KNIT__KX_SYMBOL);
    if (IS("numeric_array_small"))
        return form(typed_copy(KNIT_ELEM_F64, na, sizeof na), KNIT__KX_NUMERIC_ARRAY);
    if (IS("numeric_array_65"))
        return form(f64s(65, 4.0), KNIT__KX_NUMERIC_ARRAY);
    if (IS("envelope_json_static"))
        return plain(
            envelope(KNIT_ENV_JSON, "{\"kind\":\"frame\",\"n\":2}", knit_v_bytes(pattern(16), 16)));
    if (IS("envelope_json_empty_body"))
        return plain(envelope(KNIT_ENV_JSON, "{\"a\":1}", knit_v_bytes("", 0)));
    if (IS("envelope_json_dynamic"))
        return plain(envelope(
            KNIT_ENV_JSON, rep("z", 600, "{\"h\":\"", "\"}"), knit_v_bytes(pattern(40), 40)));
    if (IS("envelope_string_static"))
        return plain(envelope(KNIT_ENV_STRING, "plain header", knit_v_bytes(pattern(8), 8)));
    if (IS("envelope_string_dynamic"))
        return plain(envelope(KNIT_ENV_STRING, rep("w", 513, "", ""), knit_v_bytes(pattern(3), 3)));
    /* a ProcessSharedBuffer's descriptor: knitting's runtime, kind and base address have no
     * knit field; knit writes "unknown" for them (runtime 0, kind 1, base 0xFFFFFFFF) */
    if (IS("psb_fd"))
        return (expect_t) {.kv = {.v = psb(7, "", 64, 16)},
            .check = MASK_STATIC,
            .mask_from = 20,
            .mask_to = 32,
            .why = "runtime, kind, baseAddressMod64"};
    expect_t sem = {.check = SEMANTIC,
        .why = "knit's JSON omits the descriptor's runtime, kind and base address"};
    if (IS("psb_named"))
        return sem.kv.v = psb(-1, "kpw_test_0001", 32, 32), sem;
    if (IS("envelope_psb_json_static"))
        return sem.kv.v = envelope(KNIT_ENV_JSON, "{\"a\":1}", psb(7, "", 0, 8)), sem;
    if (IS("envelope_psb_json_dynamic"))
        return sem.kv.v
               = envelope(KNIT_ENV_JSON, rep("v", 520, "{\"h\":\"", "\"}"), psb(7, "", 8, 8)),
               sem;
    if (IS("envelope_psb_string_static"))
        return sem.kv.v = envelope(KNIT_ENV_STRING, "hdr", psb(7, "", 16, 8)), sem;
    if (IS("envelope_psb_string_dynamic"))
        return sem.kv.v = envelope(KNIT_ENV_STRING, rep("u", 530, "", ""), psb(7, "", 24, 8)), sem;
    if (IS("external_static"))
        return form(
            knit_v_json("[\"knit.test.codec\",{\"id\":5,\"tags\":[\"a\"]}]"), KNIT__KX_EXTERNAL);
    if (IS("external_dynamic"))
        return form(knit_v_json(rep("e", 600, "[\"knit.test.codec\",{\"blob\":\"", "\"}]")),
            KNIT__KX_EXTERNAL);
#undef IS
    fail_msg("golden vector %s has no expected value in test_vectors.c", n);
    return plain(knit_v_undefined());
}

/* Process-local pointers: knitting writes them, nothing in another process may read them. */
static bool is_refused(const char *name)
{
    return !strcmp(name, "sab_pointer") || !strcmp(name, "buffer_reference");
}

/* --- the checks ----------------------------------------------------------------------------- */

static void place_vector(const vec_t *v, uint32_t *hdr, uint8_t *stat, arena_fx_t *x)
{
    memcpy(hdr, v->w, sizeof v->w);
    memset(stat, 0, KNIT__STATIC_BYTES);
    memcpy(stat, v->stat, v->stat_len);
    if (v->region_len)
        memcpy(knit__arena_at(&x->a, v->w[KNIT__W_START]), v->region, v->region_len);
}

static void expect_same(const knit__kx_value_t *got, const expect_t *e, const char *name)
{
    if (!knit_value_equal(&got->v, &e->kv.v))
        fail_msg("%s: decoded %s differs from the expected %s", name,
            knit_kind_name((knit_kind_t)got->v.kind), knit_kind_name((knit_kind_t)e->kv.v.kind));
    if (got->form != e->kv.form)
        fail_msg("%s: form %u, expected %u", name, got->form, e->kv.form);
    if ((got->stack == NULL) != (e->kv.stack == NULL)
        || (got->stack && strcmp(got->stack, e->kv.stack)))
        fail_msg("%s: stack \"%s\", expected \"%s\"", name, got->stack ? got->stack : "(none)",
            e->kv.stack ? e->kv.stack : "(none)");
}

/* Bytes of the frame: words 2-6, the static area used, the region. */
static void expect_bytes(const vec_t *v, const uint32_t *hdr, const uint8_t *stat,
    const arena_fx_t *x, const expect_t *e)
{
    for (unsigned w = KNIT__W_TAG; w <= KNIT__W_META; w++)
        if (hdr[w] != v->w[w])
            fail_msg("%s: word %u is %#x, knitting wrote %#x", v->name, w, hdr[w], v->w[w]);
    for (size_t i = 0; i < v->stat_len; i++) {
        bool masked = e->check == MASK_STATIC && i >= e->mask_from && i < e->mask_to;
        if (!masked && stat[i] != v->stat[i])
            fail_msg(
                "%s: static byte %zu is %#x, knitting wrote %#x", v->name, i, stat[i], v->stat[i]);
    }
    if (v->region_len
        && memcmp(knit__arena_at(&x->a, hdr[KNIT__W_START]), v->region, v->region_len) != 0)
        fail_msg("%s: region bytes differ from knitting's", v->name);
}

static void check_vector(const vec_t *v)
{
    arena_fx_t in, out;
    uint32_t hdr[KNIT__HDR_WORDS], ohdr[KNIT__HDR_WORDS] = {0};
    uint8_t stat[KNIT__STATIC_BYTES], ostat[KNIT__STATIC_BYTES] = {0};
    arena_open(&in);
    arena_open(&out);
    place_vector(v, hdr, stat, &in);
    knit__kx_value_t got;
    int rc = knit__kx_decode(hdr, stat, &in.a, &cfg, &got);
    if (is_refused(v->name)) {
        assert_int_equal(rc, KNIT_E_PROCESS_BOUNDARY);
        goto done;
    }
    if (rc != 0)
        fail_msg("%s: decode failed: %d %s", v->name, rc, knit_errmsg());
    expect_t e = expected(v->name);
    expect_same(&got, &e, v->name);
    /* a dynamic payload's region is handed back exactly once */
    bool dynamic = knit__tag_is_dynamic(v->w[KNIT__W_TAG]) || v->w[KNIT__W_TAG] == 26
        || v->w[KNIT__W_TAG] == 53;
    uint32_t want_free = dynamic ? 1u << (v->w[KNIT__W_META] & 31u) : 0;
    if (atomic_load(&in.free_bits) != want_free)
        fail_msg("%s: free word %#x after decode, expected %#x", v->name,
            atomic_load(&in.free_bits), want_free);

    rc = knit__kx_encode(&got, ohdr, ostat, &out.a, &cfg);
    if (rc != 0)
        fail_msg("%s: re-encode failed: %d %s", v->name, rc, knit_errmsg());
    if (e.check == SEMANTIC) {
        knit__kx_value_t again;
        assert_int_equal(knit__kx_decode(ohdr, ostat, &out.a, &cfg, &again), 0);
        assert_int_equal(ohdr[KNIT__W_TAG], v->w[KNIT__W_TAG]);
        expect_same(&again, &e, v->name);
        knit__kx_free(&again);
    } else {
        expect_bytes(v, ohdr, ostat, &out, &e);
    }
    knit__kx_free(&got);
done:
    release_held();
    arena_close(&in);
    arena_close(&out);
}

static void test_every_vector(void **state)
{
    (void)state;
    for (size_t i = 0; i < nvecs; i++)
        check_vector(&vecs[i]);
}

/* Every tag knitting writes for a value is covered by at least one vector. */
static void test_every_knitting_tag_covered(void **state)
{
    (void)state;
    static const uint32_t tags[] = {2, 3, 4, 5, 6, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20, 21, 22,
        23, 24, 25, 26, 27, 28, 29, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46,
        47, 48, 49, 50, 51, 52, 53, 54};
    for (size_t t = 0; t < sizeof tags / sizeof tags[0]; t++) {
        bool seen = false;
        for (size_t i = 0; i < nvecs && !seen; i++)
            seen = vecs[i].w[KNIT__W_TAG] == tags[t];
        if (!seen)
            fail_msg("no golden vector carries knitting tag %u", tags[t]);
    }
}

/* The static/dynamic boundary sits where knitting puts it. */
static void test_boundaries(void **state)
{
    (void)state;
    assert_int_equal(find_vec("string_ascii_512")->w[KNIT__W_TAG], KNIT__T_STATIC_STRING);
    assert_int_equal(find_vec("string_ascii_513")->w[KNIT__W_TAG], KNIT__T_STRING);
    assert_int_equal(find_vec("symbol_170")->w[KNIT__W_TAG], 27);
    assert_int_equal(find_vec("symbol_171")->w[KNIT__W_TAG], 26); /* 171 x 3 > 512 */
    assert_int_equal(find_vec("bigint_static_max")->w[KNIT__W_TAG], KNIT__T_STATIC_BIGINT);
    assert_int_equal(find_vec("bigint_dynamic_min")->w[KNIT__W_TAG], KNIT__T_BIGINT);
}

/* What knitting mode refuses to write or read, with its own errors. */
static void test_refusals(void **state)
{
    (void)state;
    arena_fx_t x;
    arena_open(&x);
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    uint8_t stat[KNIT__STATIC_BYTES] = {0};
    int16_t i16[2] = {1, 2};
    knit__kx_value_t kv = {.v = knit_v_typed(KNIT_ELEM_I16, i16, sizeof i16)};
    assert_int_equal(knit__kx_encode(&kv, hdr, stat, &x.a, &cfg), KNIT_E_UNSUPPORTED);
    assert_non_null(strstr(knit_errmsg(), "knitting has no tag"));
    knit_shared_buf_t *sb = NULL;
    assert_int_equal(knit_shared_buf_new(8, &sb), 0);
    kv.v = knit_v_shared(sb);
    assert_int_equal(knit__kx_encode(&kv, hdr, stat, &x.a, &cfg), KNIT_E_PROCESS_BOUNDARY);
    knit_shared_buf_release(sb);
    kv = (knit__kx_value_t) {.v = knit_v_f64(1), .form = KNIT__KX_SYMBOL};
    assert_int_equal(knit__kx_encode(&kv, hdr, stat, &x.a, &cfg), KNIT_E_INVAL);
    uint32_t knit_tag[KNIT__HDR_WORDS] = {0, 0, KNIT__T_STATIC_I16, 0, 0, 4, 0, 0};
    assert_int_equal(knit__kx_decode(knit_tag, stat, &x.a, &cfg, &kv), KNIT_E_CORRUPT);
    arena_close(&x);
}

/* Found by fuzz_kx: a repeated "cause" counts by its last occurrence (as JSON.parse takes it),
 * and a cause key spelled with an escape is still the cause. */
static void decode_error_text(const char *json, knit__kx_value_t *out)
{
    arena_fx_t x;
    arena_open(&x);
    uint32_t hdr[KNIT__HDR_WORDS] = {0, 0, KNIT__T_ERROR, 0, 0, (uint32_t)strlen(json), 0, 0};
    uint8_t stat[KNIT__STATIC_BYTES] = {0};
    memcpy(knit__arena_at(&x.a, 0), json, strlen(json));
    assert_int_equal(knit__kx_decode(hdr, stat, &x.a, &cfg, out), 0);
    arena_close(&x);
}

static void test_error_cause_spellings(void **state)
{
    (void)state;
    static const char *texts[] = {
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":\"first\",\"cause\":{\"code\":7}}",
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":1,\"c\\u0061use\":{\"code\":7}}",
    };
    knit_value_t want = knit_v_json("{\"code\":7}");
    for (size_t i = 0; i < 2; i++) {
        knit__kx_value_t v;
        decode_error_text(texts[i], &v);
        assert_non_null(v.v.u.err->cause);
        assert_true(knit_value_equal(v.v.u.err->cause, &want));
        knit__kx_free(&v);
    }
}

static void test_js_numbers(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *s;
    } cases[] = {{42, "42"}, {1.5, "1.5"}, {-0.5, "-0.5"}, {0.1, "0.1"}, {-0.0, "0"},
        {1e21, "1e+21"}, {1e20, "100000000000000000000"}, {1e-6, "0.000001"}, {1e-7, "1e-7"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {123456.789, "123456.789"}, {1.25e-10, "1.25e-10"}, {NAN, "null"}, {INFINITY, "null"},
        {9007199254740993.0, "9007199254740992"}, {2.5e22, "2.5e+22"}};
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        knit__kx_js_number(cases[i].d, buf);
        assert_string_equal(buf, cases[i].s);
    }
}

int main(void)
{
    load_vectors();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_vector),
        cmocka_unit_test(test_every_knitting_tag_covered),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_error_cause_spellings),
        cmocka_unit_test(test_js_numbers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (size_t i = 0; i < nvecs; i++)
        free(vecs[i].region);
    free(vecs);
    return rc;
}
