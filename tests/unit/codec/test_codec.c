/*
 * Value codec: every value kind round-trips through a real lane (host writes a request slot and
 * its arena, the worker decodes it) with knitting's exact type tag and header words
 * (knitting-internals 1.5, 3.1, 3.6), shared and moved buffers keep their ownership rules, and a
 * process-boundary codec refuses process-local pointers on both sides.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "knit/error.h"
#include "transports/shm/shm_lane.h"

/* --- fixture: one lane, both endpoints -------------------------------------------------------- */

typedef knit_test_lane_t fx_t;

static knit__slot_t *req_slot(fx_t *f, unsigned i)
{
    return &knit__shm_ctrl(&f->lane)->req_slab[i];
}

static int send_req_cfg(fx_t *f, unsigned i, knit_value_t *v, const knit__codec_cfg_t *cfg)
{
    knit__slot_t *s = req_slot(f, i);
    return knit__encode(v, s->hdr, s->stat, &f->host.tx_arena, cfg);
}

static int send_req(fx_t *f, unsigned i, knit_value_t *v)
{
    return send_req_cfg(f, i, v, &f->host.codec);
}

static int recv_req_cfg(fx_t *f, unsigned i, knit_value_t *out, const knit__codec_cfg_t *cfg)
{
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, req_slot(f, i)->hdr, sizeof hdr); /* a private copy, as the transport does */
    return knit__decode(hdr, req_slot(f, i)->stat, &f->worker.rx_arena, cfg, out);
}

static int recv_req(fx_t *f, unsigned i, knit_value_t *out)
{
    return recv_req_cfg(f, i, out, &f->worker.codec);
}

static uint32_t req_word(fx_t *f, unsigned i, unsigned w)
{
    return req_slot(f, i)->hdr[w];
}

/* Encoding `v` into request slot 0 fails with `code` and leaves no region reserved. */
static void expect_send_fails(fx_t *f, knit_value_t *v, int code)
{
    assert_int_equal(send_req(f, 0, v), code);
    assert_int_equal(knit__arena_live(&f->host.tx_arena), 0);
}

/* Region bits the request arena's writer holds that no reader has freed yet. */
static uint32_t req_live_bits(fx_t *f)
{
    knit__ctrl_t *c = knit__shm_ctrl(&f->lane);
    return atomic_load(&c->req.alloc_host.word) ^ atomic_load(&c->req.alloc_free.word);
}

/* Encode `v` into request slot 0, check the tag, decode it on the worker side, check that the
 * decoded value equals `v`, owns its memory and that no region is left live. */
static void expect_roundtrip(fx_t *f, knit_value_t v, uint32_t tag)
{
    knit_value_t in = v, out;
    assert_int_equal(send_req(f, 0, &in), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), tag);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.kind, v.kind);
    assert_true(knit_value_equal(&v, &out));
    assert_int_equal(req_live_bits(f), 0);
    assert_int_equal(knit__arena_live(&f->host.tx_arena), 0);
    knit_value_free(&out);
    assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
}

static uint64_t inline_bits(fx_t *f)
{
    return (uint64_t)req_word(f, 0, KNIT__W_START) | ((uint64_t)req_word(f, 0, KNIT__W_END) << 32);
}

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
    knit_test_rng_t r = {seed | 1};
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)knit_test_rand(&r);
}

/* --- inline values ---------------------------------------------------------------------------- */

static void test_null_undefined_bool_inline_tags(void **state)
{
    fx_t *f = *state;
    expect_roundtrip(f, knit_v_null(), 10);
    expect_roundtrip(f, knit_v_undefined(), 5);
    expect_roundtrip(f, knit_v_bool(true), 3);
    expect_roundtrip(f, knit_v_bool(false), 4);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 0);
    /* nothing touched the arena */
    assert_int_equal(atomic_load(&knit__shm_ctrl(&f->lane)->req.alloc_host.word), 0);
}

static void test_f64_inline_tag_9_keeps_bits(void **state)
{
    fx_t *f = *state;
    const double vals[] = {0.0, -0.0, 1.5, -3.25, DBL_MAX, DBL_MIN, 4.9e-324, INFINITY, -INFINITY,
        12345678901234567.0};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        knit_value_t v = knit_v_f64(vals[i]), out;
        uint64_t bits;
        memcpy(&bits, &vals[i], sizeof bits);
        assert_int_equal(send_req(f, 0, &v), 0);
        assert_int_equal(req_word(f, 0, KNIT__W_TAG), 9);
        assert_int_equal(inline_bits(f), bits); /* w3 = low word, w4 = high word */
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_int_equal(out.kind, KNIT_KIND_F64);
        assert_memory_equal(&out.u.f64, &vals[i], sizeof(double));
    }
}

static void test_nan_uses_tag_6(void **state)
{
    fx_t *f = *state;
    uint64_t payload_nan_bits = 0x7FF8000000000ABCull, neg_nan_bits = 0xFFF8000000000000ull;
    double nans[3] = {NAN, 0, 0};
    memcpy(&nans[1], &payload_nan_bits, sizeof(double));
    memcpy(&nans[2], &neg_nan_bits, sizeof(double));
    for (int i = 0; i < 3; i++) {
        knit_value_t v = knit_v_f64(nans[i]), out;
        assert_int_equal(send_req(f, 0, &v), 0);
        assert_int_equal(req_word(f, 0, KNIT__W_TAG), 6);
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_int_equal(out.kind, KNIT_KIND_F64);
        assert_true(isnan(out.u.f64));
        assert_true(knit_value_equal(&v, &out));
    }
}

static void test_int64_inline_tag_2(void **state)
{
    fx_t *f = *state;
    const int64_t vals[] = {0, 1, -1, INT64_MIN, INT64_MAX, 1ll << 32, -(1ll << 32), 0x12345678};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        expect_roundtrip(f, knit_v_int64(vals[i]), 2);
        assert_int_equal(inline_bits(f), (uint64_t)vals[i]);
    }
}

static void test_date_inline_tag_25(void **state)
{
    fx_t *f = *state;
    const double vals[] = {0.0, 1.7e12, -86400000.0, 8.64e15};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        expect_roundtrip(f, knit_v_date(vals[i]), 25);
        uint64_t bits;
        memcpy(&bits, &vals[i], sizeof bits);
        assert_int_equal(inline_bits(f), bits);
    }
    /* an invalid date (NaN) stays a Date and stays invalid */
    knit_value_t v = knit_v_date(NAN), out;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 25);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_DATE);
    assert_true(isnan(out.u.f64));
}

/* --- big integers ----------------------------------------------------------------------------- */

static void test_bigint_outside_int64_static_tag_29(void **state)
{
    fx_t *f = *state;
    static const uint8_t two63[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    static const uint8_t two63p1[8] = {1, 0, 0, 0, 0, 0, 0, 0x80};
    static const uint8_t two70[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0x40};
    static const uint8_t two64m1[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t two64[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    const struct {
        bool neg;
        const uint8_t *mag;
        size_t len;
    } cases[] = {
        {false, two63, 8},   /* 2^63 */
        {true, two63p1, 8},  /* -2^63 - 1 */
        {false, two70, 9},   /* 2^70 */
        {false, two64m1, 8}, /* 2^64 - 1 */
        {true, two64, 9},    /* -2^64 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        knit_value_t v = knit_v_bigint(cases[i].neg, cases[i].mag, cases[i].len);
        assert_int_equal(v.kind, KNIT_KIND_BIGINT);
        expect_roundtrip(f, v, 29);
        /* byte 0 = sign, bytes 1.. = little-endian magnitude */
        assert_int_equal(req_word(f, 0, KNIT__W_LEN), 1 + cases[i].len);
        assert_int_equal(req_slot(f, 0)->stat[0], cases[i].neg ? 1 : 0);
        assert_memory_equal(req_slot(f, 0)->stat + 1, cases[i].mag, cases[i].len);
    }
}

static void test_bigint_in_int64_range_encodes_inline(void **state)
{
    fx_t *f = *state;
    static const uint8_t max[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    static const uint8_t min_mag[10] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0}; /* leading zeros */
    knit_value_t v = knit_v_bigint(false, max, 8);
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    expect_roundtrip(f, v, 2);
    assert_int_equal(inline_bits(f), (uint64_t)INT64_MAX);
    v = knit_v_bigint(true, min_mag, 10);
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    expect_roundtrip(f, v, 2);
    assert_int_equal(inline_bits(f), (uint64_t)INT64_MIN);
}

static void test_bigint_huge_dynamic_tag_28(void **state)
{
    fx_t *f = *state;
    uint8_t mag[4096];
    fill_pattern(mag, sizeof mag, 28);
    mag[510] = mag[511] = mag[4095] = 0x5a; /* no leading zero at the lengths used */
    /* 511 magnitude bytes + the sign byte = 512: still static */
    expect_roundtrip(f, knit_v_bigint(true, mag, 511), 29);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 512);
    /* 512 magnitude bytes = 513 payload bytes: dynamic */
    expect_roundtrip(f, knit_v_bigint(true, mag, 512), 28);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 513);
    expect_roundtrip(f, knit_v_bigint(false, mag, 4096), 28);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 4097);
}

/* A peer may send a padded magnitude or an int64-range number in the big form; it decodes to
 * the one representation knit_v_bigint gives that number. */
static void test_bigint_decode_normalises_foreign_forms(void **state)
{
    fx_t *f = *state;
    static const uint8_t two63[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    const struct {
        uint8_t bytes[12];
        uint32_t len;
        knit_value_t want;
    } cases[] = {
        {{0, 5, 0, 0}, 4, knit_v_int64(5)},
        {{1, 5}, 2, knit_v_int64(-5)},
        {{1}, 1, knit_v_int64(0)},
        {{1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0}, 10, knit_v_int64(INT64_MIN)},
        {{0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0}, 12, knit_v_bigint(false, two63, 8)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        knit__slot_t *s = req_slot(f, 0);
        memcpy(s->stat, cases[i].bytes, cases[i].len);
        s->hdr[KNIT__W_TAG] = 29;
        s->hdr[KNIT__W_LEN] = cases[i].len;
        knit_value_t out;
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_int_equal(out.kind, cases[i].want.kind);
        assert_true(knit_value_equal(&out, &cases[i].want));
        knit_value_free(&out);
    }
    /* the dynamic form frees its region on the int64 path too */
    uint32_t idx, start;
    assert_int_equal(knit__arena_alloc(&f->host.tx_arena, 3, &idx, &start), 0);
    memcpy(knit__arena_at(&f->host.tx_arena, start), (uint8_t[]) {0, 9, 0}, 3);
    uint32_t *h = req_slot(f, 0)->hdr;
    h[KNIT__W_TAG] = 28;
    h[KNIT__W_START] = start;
    h[KNIT__W_LEN] = 3;
    knit__hdr_set_region(h, idx);
    knit_value_t out;
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_INT64);
    assert_int_equal(out.u.i64, 9);
    assert_int_equal(req_live_bits(f), 0);
}

/* --- text and bytes --------------------------------------------------------------------------- */

static void test_string_static_15_dynamic_11(void **state)
{
    fx_t *f = *state;
    expect_roundtrip(f, knit_v_str("hello, \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"), 15);
    expect_roundtrip(f, knit_v_str(""), 15);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 0);
    static const char with_nul[] = "a\0b\0c";
    expect_roundtrip(f, knit_v_strn(with_nul, 5), 15);
    char big[5000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    expect_roundtrip(f, knit_v_strn(big, sizeof big), 11);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), sizeof big);
}

static void test_decoded_text_is_nul_terminated(void **state)
{
    fx_t *f = *state;
    char big[700];
    memset(big, 'x', sizeof big);
    const knit_value_t vals[] = {knit_v_str("short"), knit_v_strn(big, sizeof big),
        knit_v_json("{\"a\":1}"), knit_v_jsonn(big, sizeof big)};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        knit_value_t in = vals[i], out;
        assert_int_equal(send_req(f, 0, &in), 0);
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_true(out.flags & KNIT_VF_OWNED);
        assert_int_equal(((const char *)out.u.ptr)[out.len], '\0');
        knit_value_free(&out);
    }
}

static void test_json_static_16_dynamic_12(void **state)
{
    fx_t *f = *state;
    expect_roundtrip(f, knit_v_json("{\"a\":[1,2,3],\"b\":{\"c\":null}}"), 16);
    expect_roundtrip(f, knit_v_json("[]"), 16);
    char big[2048];
    size_t n = 0;
    big[n++] = '[';
    while (n < sizeof big - 8)
        n += (size_t)snprintf(big + n, sizeof big - n, "%zu,", n);
    big[n - 1] = ']';
    expect_roundtrip(f, knit_v_jsonn(big, n), 12);
}

static void test_bytes_static_18_dynamic_17(void **state)
{
    fx_t *f = *state;
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    expect_roundtrip(f, knit_v_bytes(all, sizeof all), 18);
    expect_roundtrip(f, knit_v_bytes(NULL, 0), 18);
    uint8_t big[3000];
    fill_pattern(big, sizeof big, 17);
    expect_roundtrip(f, knit_v_bytes(big, sizeof big), 17);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), sizeof big);
}

/* --- typed arrays ----------------------------------------------------------------------------- */

/* knitting's tags for the types it carries (19-23, 31-39), knit's 64-75 for the rest. */
static const struct {
    knit_elem_t elem;
    uint32_t stag, dtag;
} typed_tags[] = {
    {KNIT_ELEM_I8, 65, 64},
    {KNIT_ELEM_U8C, 67, 66},
    {KNIT_ELEM_I16, 69, 68},
    {KNIT_ELEM_U16, 71, 70},
    {KNIT_ELEM_I32, 31, 19},
    {KNIT_ELEM_U32, 73, 72},
    {KNIT_ELEM_F32, 75, 74},
    {KNIT_ELEM_F64, 32, 20},
    {KNIT_ELEM_I64, 33, 21},
    {KNIT_ELEM_U64, 34, 22},
    {KNIT_ELEM_DATAVIEW, 35, 23},
    {KNIT_ELEM_ARRAYBUFFER, 37, 36},
    {KNIT_ELEM_NODEBUFFER, 39, 38},
};

static void test_typed_arrays_every_element_type(void **state)
{
    fx_t *f = *state;
    _Static_assert(sizeof typed_tags / sizeof typed_tags[0] == KNIT_ELEM_COUNT_,
        "every element type is listed");
    _Alignas(8) uint8_t data[1024];
    fill_pattern(data, sizeof data, 64);
    for (size_t i = 0; i < KNIT_ELEM_COUNT_; i++) {
        knit_elem_t e = typed_tags[i].elem;
        size_t es = knit_elem_size(e);
        /* static: 64 bytes; static at the limit: 512; dynamic: 1024 */
        const size_t lens[] = {64, 512, 1024};
        const uint32_t tags[] = {typed_tags[i].stag, typed_tags[i].stag, typed_tags[i].dtag};
        for (int k = 0; k < 3; k++) {
            knit_value_t v = knit_v_typed(e, data, lens[k]), in = v, out;
            assert_int_equal(send_req(f, 0, &in), 0);
            assert_int_equal(req_word(f, 0, KNIT__W_TAG), tags[k]);
            assert_int_equal(req_word(f, 0, KNIT__W_LEN), lens[k]);
            assert_int_equal(recv_req(f, 0, &out), 0);
            assert_int_equal(out.kind, KNIT_KIND_TYPED);
            assert_int_equal(out.sub, e);
            assert_true(knit_value_equal(&v, &out));
            /* decoded elements are aligned for their type */
            assert_int_equal((uintptr_t)out.u.ptr % es, 0);
            knit_value_free(&out);
        }
        assert_int_equal(knit__arena_live(&f->host.tx_arena), 0);
    }
}

static void test_typed_array_smallest_dynamic_by_element(void **state)
{
    fx_t *f = *state;
    _Alignas(8) uint8_t data[520] = {0};
    /* one element past 512 bytes is dynamic for every element size */
    for (size_t i = 0; i < KNIT_ELEM_COUNT_; i++) {
        size_t es = knit_elem_size(typed_tags[i].elem);
        expect_roundtrip(f, knit_v_typed(typed_tags[i].elem, data, 512 + es), typed_tags[i].dtag);
    }
}

static void test_typed_array_bad_length_rejected_on_encode(void **state)
{
    fx_t *f = *state;
    uint8_t data[16] = {0};
    knit__slot_t before = *req_slot(f, 0);
    knit_value_t v = knit_v_typed(KNIT_ELEM_I32, data, 6);
    assert_int_equal(send_req(f, 0, &v), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "Int32Array"));
    v = knit_v_typed(KNIT_ELEM_F64, data, 12);
    assert_int_equal(send_req(f, 0, &v), KNIT_E_INVAL);
    v = knit_v_typed(KNIT_ELEM_COUNT_, data, 4);
    assert_int_equal(send_req(f, 0, &v), KNIT_E_UNSUPPORTED);
    assert_memory_equal(&before, req_slot(f, 0), sizeof before);
}

/* --- errors ----------------------------------------------------------------------------------- */

static void test_error_always_dynamic_tag_24(void **state)
{
    fx_t *f = *state;
    knit_error_value_t e = {.name = "TypeError", .message = "bad input"};
    knit_value_t v = knit_v_error(&e), out;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 24);
    assert_int_equal(req_live_bits(f), 1); /* a tiny error still takes a region */
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_ERROR);
    assert_string_equal(out.u.err->name, "TypeError");
    assert_string_equal(out.u.err->message, "bad input");
    assert_null(out.u.err->cause);
    assert_int_equal(req_live_bits(f), 0);
    knit_value_free(&out);
}

static void test_error_name_message_and_nested_cause_survive(void **state)
{
    fx_t *f = *state;
    knit_value_t leaf = knit_v_str("disk \xe2\x80\x94 full");
    knit_error_value_t inner = {.name = "IOError", .message = "write failed", .cause = &leaf};
    knit_value_t inner_v = knit_v_error(&inner);
    knit_error_value_t outer = {.name = "TaskError", .message = "step 3", .cause = &inner_v};
    knit_value_t v = knit_v_error(&outer), out;
    expect_roundtrip(f, v, 24);
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(recv_req(f, 0, &out), 0);
    const knit_value_t *c = out.u.err->cause;
    assert_non_null(c);
    assert_int_equal(c->kind, KNIT_KIND_ERROR);
    assert_string_equal(c->u.err->name, "IOError");
    assert_string_equal(c->u.err->message, "write failed");
    assert_non_null(c->u.err->cause);
    assert_int_equal(c->u.err->cause->kind, KNIT_KIND_STRING);
    assert_true(knit_value_equal(c->u.err->cause, &leaf));
    knit_value_free(&out);
}

static void test_error_each_allowed_cause_kind(void **state)
{
    fx_t *f = *state;
    static const char nul_text[] = "x\0y";
    knit_error_value_t inner = {.name = "RangeError", .message = "inner"};
    const knit_value_t causes[] = {
        knit_v_null(),
        knit_v_bool(true),
        knit_v_bool(false),
        knit_v_f64(1.5),
        knit_v_f64(-0.0),
        knit_v_f64(1e300),
        knit_v_f64(NAN),
        knit_v_f64(INFINITY),
        knit_v_f64(-INFINITY),
        knit_v_int64(INT64_MIN),
        knit_v_int64(INT64_MAX),
        knit_v_str("plain \xe6\x97\xa5\xe6\x9c\xac"),
        knit_v_strn(nul_text, 3),
        knit_v_str(""),
        knit_v_json("{\"code\":42,\"list\":[1,2]}"),
        knit_v_error(&inner),
    };
    for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++) {
        knit_error_value_t e = {.name = "Error", .message = "with cause", .cause = &causes[i]};
        knit_value_t v = knit_v_error(&e), out;
        assert_int_equal(send_req(f, 0, &v), 0);
        assert_int_equal(req_word(f, 0, KNIT__W_TAG), 24);
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_non_null(out.u.err->cause);
        assert_int_equal(out.u.err->cause->kind, causes[i].kind);
        assert_true(knit_value_equal(out.u.err->cause, &causes[i]));
        assert_true(knit_value_equal(&v, &out));
        knit_value_free(&out);
    }
    assert_int_equal(req_live_bits(f), 0);
}

static void test_error_undefined_cause_is_dropped(void **state)
{
    fx_t *f = *state;
    knit_value_t undef = knit_v_undefined();
    knit_error_value_t e = {.name = "Error", .message = "m", .cause = &undef};
    knit_value_t v = knit_v_error(&e), out;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_null(out.u.err->cause);
    knit_value_free(&out);
}

static void test_error_empty_name_becomes_Error(void **state)
{
    fx_t *f = *state;
    knit_error_value_t e1 = {.name = "", .message = "m"}, e2 = {.name = NULL, .message = NULL};
    const knit_error_value_t *es[] = {&e1, &e2};
    for (int i = 0; i < 2; i++) {
        knit_value_t v = knit_v_error(es[i]), out;
        assert_int_equal(send_req(f, 0, &v), 0);
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_string_equal(out.u.err->name, "Error");
        assert_string_equal(out.u.err->message, i == 0 ? "m" : "");
        knit_value_free(&out);
    }
}

static void test_error_unsupported_cause_kind_rejected(void **state)
{
    fx_t *f = *state;
    uint8_t bytes[4] = {1, 2, 3, 4};
    static const uint8_t big[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    knit_psb_desc_t psb = {.fd = 3, .size = 64, .length = 64};
    knit_envelope_t env = {.header = "{}", .header_len = 2, .body = knit_v_bytes(bytes, 4)};
    knit_shared_buf_t *sb = NULL;
    assert_int_equal(knit_shared_buf_new(16, &sb), 0);
    const knit_value_t causes[] = {
        knit_v_bytes(bytes, 4),
        knit_v_typed(KNIT_ELEM_I32, bytes, 4),
        knit_v_bigint(false, big, 9),
        knit_v_date(0),
        knit_v_envelope(&env),
        knit_v_psb(&psb),
        knit_v_shared(sb),
    };
    uint32_t alloc_before = atomic_load(&knit__shm_ctrl(&f->lane)->req.alloc_host.word);
    for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++) {
        knit_error_value_t e = {.name = "Error", .message = "m", .cause = &causes[i]};
        knit_value_t v = knit_v_error(&e);
        assert_int_equal(send_req(f, 0, &v), KNIT_E_UNSUPPORTED);
        assert_non_null(strstr(knit_errmsg(), knit_kind_name((knit_kind_t)causes[i].kind)));
    }
    /* nothing was reserved, no reference was taken */
    assert_int_equal(atomic_load(&knit__shm_ctrl(&f->lane)->req.alloc_host.word), alloc_before);
    assert_int_equal(knit_shared_buf_refs(sb), 1);
    knit_shared_buf_release(sb);
}

static void test_error_cyclic_cause_rejected(void **state)
{
    fx_t *f = *state;
    knit_error_value_t e = {.name = "Error", .message = "loop"};
    knit_value_t self = knit_v_error(&e);
    e.cause = &self;
    knit_value_t v = knit_v_error(&e);
    expect_send_fails(f, &v, KNIT_E_UNSUPPORTED);
}

static void test_error_cause_chain_depth_limit(void **state)
{
    fx_t *f = *state;
    knit_error_value_t chain[34];
    knit_value_t vals[34];
    knit_test_error_chain(chain, vals, 34);
    expect_roundtrip(f, vals[1], 24); /* 33 errors: the deepest chain carried */
    expect_send_fails(f, &vals[0], KNIT_E_UNSUPPORTED);
}

static void test_error_invalid_utf8_rejected_on_encode(void **state)
{
    fx_t *f = *state;
    knit_error_value_t e = {.name = "Error", .message = "bad \xc0\x80 text"};
    knit_value_t v = knit_v_error(&e);
    expect_send_fails(f, &v, KNIT_E_INVAL);
}

/* --- envelopes -------------------------------------------------------------------------------- */

static void test_envelope_static_header_40_and_42(void **state)
{
    fx_t *f = *state;
    uint8_t body[300];
    fill_pattern(body, sizeof body, 40);
    const char *hdrs[2] = {"{\"type\":\"frame\",\"n\":7}", "plain header, not JSON"};
    const uint32_t tags[2] = {40, 42};
    for (int k = 0; k < 2; k++) {
        knit_envelope_t env = {.header = hdrs[k],
            .header_len = strlen(hdrs[k]),
            .body = knit_v_bytes(body, sizeof body),
            .header_kind = k ? KNIT_ENV_STRING : KNIT_ENV_JSON};
        knit_value_t v = knit_v_envelope(&env), out;
        assert_int_equal(send_req(f, 0, &v), 0);
        assert_int_equal(req_word(f, 0, KNIT__W_TAG), tags[k]);
        assert_int_equal(req_word(f, 0, KNIT__W_LEN), env.header_len); /* w5 = header bytes */
        assert_int_equal(req_word(f, 0, KNIT__W_END), sizeof body);    /* w4 = body length */
        assert_memory_equal(req_slot(f, 0)->stat, hdrs[k], env.header_len);
        const uint8_t *region = knit__arena_at(&f->worker.rx_arena, req_word(f, 0, KNIT__W_START));
        assert_memory_equal(region, body, sizeof body); /* w3 = region start of the body */
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_int_equal(out.kind, KNIT_KIND_ENVELOPE);
        assert_int_equal(out.u.env->header_kind, env.header_kind);
        assert_int_equal(out.u.env->body.kind, KNIT_KIND_BYTES);
        assert_true(knit_value_equal(&v, &out));
        knit_value_free(&out);
        assert_int_equal(req_live_bits(f), 0);
    }
}

static void test_envelope_dynamic_header_41_and_43(void **state)
{
    fx_t *f = *state;
    char hdr[600];
    uint8_t body[100];
    fill_pattern(body, sizeof body, 41);
    const uint32_t tags[2] = {41, 43};
    for (int k = 0; k < 2; k++) {
        /* a 513-byte JSON string header: just above the static area */
        memset(hdr, 'h', sizeof hdr);
        hdr[0] = '"';
        hdr[512] = '"';
        knit_envelope_t env = {.header = hdr,
            .header_len = 513,
            .body = knit_v_bytes(body, sizeof body),
            .header_kind = k ? KNIT_ENV_STRING : KNIT_ENV_JSON};
        knit_value_t v = knit_v_envelope(&env), out;
        assert_int_equal(send_req(f, 0, &v), 0);
        assert_int_equal(req_word(f, 0, KNIT__W_TAG), tags[k]);
        assert_int_equal(req_word(f, 0, KNIT__W_LEN), 513);
        assert_int_equal(req_word(f, 0, KNIT__W_END), sizeof body);
        /* one region: header bytes, then the body */
        const uint8_t *region = knit__arena_at(&f->worker.rx_arena, req_word(f, 0, KNIT__W_START));
        assert_memory_equal(region, hdr, 513);
        assert_memory_equal(region + 513, body, sizeof body);
        assert_int_equal(recv_req(f, 0, &out), 0);
        assert_true(knit_value_equal(&v, &out));
        knit_value_free(&out);
    }
}

static void test_envelope_header_512_static_513_dynamic(void **state)
{
    fx_t *f = *state;
    char hdr[513];
    memset(hdr, 's', sizeof hdr);
    uint8_t body[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    knit_envelope_t env = {.header = hdr,
        .header_len = 512,
        .body = knit_v_bytes(body, sizeof body),
        .header_kind = KNIT_ENV_STRING};
    expect_roundtrip(f, knit_v_envelope(&env), 42);
    env.header_len = 513;
    expect_roundtrip(f, knit_v_envelope(&env), 43);
}

static void test_envelope_empty_body_still_takes_a_region(void **state)
{
    fx_t *f = *state;
    knit_envelope_t env = {.header = "{}", .header_len = 2, .body = knit_v_bytes(NULL, 0)};
    knit_value_t v = knit_v_envelope(&env), out;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 40);
    assert_int_equal(req_word(f, 0, KNIT__W_END), 0);
    assert_int_equal(req_live_bits(f), 1);
    /* the empty body still reserved one 64-byte region: the next payload starts after it */
    char s[600];
    memset(s, 'q', sizeof s);
    knit_value_t next = knit_v_strn(s, sizeof s);
    assert_int_equal(send_req(f, 1, &next), 0);
    assert_int_equal(req_word(f, 1, KNIT__W_START), 64);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.u.env->body.kind, KNIT_KIND_BYTES);
    assert_int_equal(out.u.env->body.len, 0);
    assert_true(knit_value_equal(&v, &out));
    knit_value_free(&out);
    assert_int_equal(recv_req(f, 1, &out), 0);
    knit_value_free(&out);
    assert_int_equal(req_live_bits(f), 0);
}

static void test_envelope_empty_header(void **state)
{
    fx_t *f = *state;
    uint8_t body[3] = {9, 8, 7};
    knit_envelope_t env = {.header = NULL,
        .header_len = 0,
        .body = knit_v_bytes(body, 3),
        .header_kind = KNIT_ENV_STRING};
    expect_roundtrip(f, knit_v_envelope(&env), 42);
}

static void test_envelope_psb_body_tags_49_to_52(void **state)
{
    fx_t *f = *state;
    knit_psb_desc_t fd_psb = {.fd = 9, .size = 1 << 20, .offset = 4096, .length = 8192};
    knit_psb_desc_t named = {.fd = -1, .name = "/knit-env", .size = 65536, .length = 65536};
    char big[700];
    memset(big, 'z', sizeof big);
    big[0] = big[699] = '"';
    const knit_psb_desc_t *bodies[2] = {&fd_psb, &named};
    for (int b = 0; b < 2; b++) {
        for (int str = 0; str < 2; str++) {
            for (int dyn = 0; dyn < 2; dyn++) {
                knit_envelope_t env = {.header = dyn ? big : "{\"ok\":true}",
                    .header_len = dyn ? sizeof big : 11,
                    .body = knit_v_psb(bodies[b]),
                    .header_kind = str ? KNIT_ENV_STRING : KNIT_ENV_JSON};
                knit_value_t v = knit_v_envelope(&env), out;
                uint32_t want = 49u + (uint32_t)(str * 2 + dyn);
                assert_int_equal(send_req(f, 0, &v), 0);
                assert_int_equal(req_word(f, 0, KNIT__W_TAG), want);
                assert_int_equal(recv_req(f, 0, &out), 0);
                assert_int_equal(out.u.env->body.kind, KNIT_KIND_PSB);
                assert_string_equal(out.u.env->body.u.psb->name, bodies[b]->name);
                assert_true(knit_value_equal(&v, &out));
                knit_value_free(&out);
            }
        }
    }
    assert_int_equal(req_live_bits(f), 0);
}

static void test_envelope_rejects_other_body_kinds(void **state)
{
    fx_t *f = *state;
    knit_envelope_t env = {.header = "{}", .header_len = 2, .body = knit_v_str("text body")};
    knit_value_t v = knit_v_envelope(&env);
    assert_int_equal(send_req(f, 0, &v), KNIT_E_UNSUPPORTED);
    env.body = knit_v_int64(5);
    expect_send_fails(f, &v, KNIT_E_UNSUPPORTED);
}

/* --- ProcessSharedBuffer descriptors ---------------------------------------------------------- */

static void test_psb_fd_form_tag_46_static_words(void **state)
{
    fx_t *f = *state;
    knit_psb_desc_t d = {.fd = 7, .size = 1 << 20, .offset = 4096, .length = 65536};
    knit_value_t v = knit_v_psb(&d);
    req_slot(f, 0)->hdr[KNIT__W_META] = 0xCAFEBABEu;
    expect_roundtrip(f, v, 46);
    uint32_t w[8];
    memcpy(w, req_slot(f, 0)->stat, sizeof w);
    /* fd, size, descriptor byteLength, byteOffset, byteLength, runtime, kind, baseAddressMod64 */
    const uint32_t want[8] = {7, 1 << 20, 1 << 20, 4096, 65536, 0, 1, 0xFFFFFFFFu};
    assert_memory_equal(w, want, sizeof w);
    assert_int_equal(req_word(f, 0, KNIT__W_META), 0xCAFEBABEu);
    assert_int_equal(atomic_load(&knit__shm_ctrl(&f->lane)->req.alloc_host.word), 0);
}

static void test_psb_named_form_uses_external_tag_and_keeps_name(void **state)
{
    fx_t *f = *state;
    knit_psb_desc_t d = {.fd = -1, .name = "/knit-psb-0123456789", .size = 8192, .length = 8192};
    knit_value_t v = knit_v_psb(&d), out;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 45);
    const char *prefix = "[\"knitting.processSharedBuffer\",";
    assert_memory_equal(req_slot(f, 0)->stat, prefix, strlen(prefix));
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_PSB);
    assert_string_equal(out.u.psb->name, "/knit-psb-0123456789");
    assert_int_equal(out.u.psb->fd, -1);
    assert_true(knit_value_equal(&v, &out));
    knit_value_free(&out);
    /* an fd together with a name also needs the JSON form */
    knit_psb_desc_t both = {.fd = 4, .name = "/both", .size = 64, .offset = 32, .length = 32};
    expect_roundtrip(f, knit_v_psb(&both), 45);
    /* so does a size the 32-bit words cannot carry */
    knit_psb_desc_t huge = {.fd = 5, .size = 8ull << 30, .offset = 6ull << 30, .length = 1u << 30};
    expect_roundtrip(f, knit_v_psb(&huge), 45);
}

static void test_psb_external_dynamic_tag_44_decodes(void **state)
{
    fx_t *f = *state;
    knit_psb_desc_t d = {.fd = -1, .name = "/knit-dyn", .size = 4096, .offset = 0, .length = 4096};
    knit_value_t v = knit_v_psb(&d), out;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 45);
    /* the encoder never needs a region for a descriptor (its JSON is short); a peer may still
     * send the dynamic form, so move the same text into a region and decode tag 44 */
    uint32_t len = req_word(f, 0, KNIT__W_LEN), idx, start;
    assert_int_equal(knit__arena_alloc(&f->host.tx_arena, len, &idx, &start), 0);
    memcpy(knit__arena_at(&f->host.tx_arena, start), req_slot(f, 0)->stat, len);
    memset(req_slot(f, 0)->stat, 0, KNIT__STATIC_BYTES);
    uint32_t *h = req_slot(f, 0)->hdr;
    h[KNIT__W_TAG] = 44;
    h[KNIT__W_START] = start;
    knit__hdr_set_region(h, idx);
    assert_true(knit__tag_is_dynamic(44));
    assert_int_equal(req_live_bits(f), 1u << idx);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_true(knit_value_equal(&v, &out));
    assert_int_equal(req_live_bits(f), 0);
    knit_value_free(&out);
}

static void test_psb_inconsistent_descriptor_rejected_on_encode(void **state)
{
    fx_t *f = *state;
    const knit_psb_desc_t bad[] = {
        {.fd = 3, .size = 100, .offset = 60, .length = 50},                /* fd form, too long */
        {.fd = 3, .size = 100, .offset = 101, .length = 0},                /* offset past end */
        {.fd = -1, .name = "/x", .size = 100, .offset = 90, .length = 20}, /* named form */
        {.fd = -1, .size = 100, .length = 100},                            /* neither fd nor name */
        {.fd = -7, .name = "/x", .size = 100, .length = 100},              /* not an fd */
    };
    knit__slot_t before = *req_slot(f, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        knit_value_t v = knit_v_psb(&bad[i]);
        assert_int_equal(send_req(f, 0, &v), KNIT_E_INVAL);
    }
    assert_memory_equal(&before, req_slot(f, 0), sizeof before);
}

/* --- shared and moved buffers ----------------------------------------------------------------- */

static void test_shared_buffer_by_reference_tag_48(void **state)
{
    fx_t *f = *state;
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(4096, &b), 0);
    memset(knit_shared_buf_data(b), 0xAB, 4096);
    knit_value_t v = knit_v_shared(b), out;
    req_slot(f, 0)->hdr[KNIT__W_META] = 0x12345678u;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 48);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 32); /* 8 words of metadata */
    assert_int_equal(req_word(f, 0, KNIT__W_META), 0x12345678u);
    assert_int_equal(v.kind, KNIT_KIND_SHARED); /* the sender keeps its reference */
    assert_int_equal(knit_shared_buf_refs(b), 2);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_SHARED);
    assert_ptr_equal(out.u.shared, b); /* the same buffer, not a copy */
    assert_int_equal(knit_shared_buf_refs(b), 2);
    assert_true(knit_value_equal(&v, &out));
    /* a write through one reference is seen through the other */
    ((uint8_t *)knit_shared_buf_data(out.u.shared))[100] = 0x11;
    assert_int_equal(((uint8_t *)knit_shared_buf_data(b))[100], 0x11);
    knit_value_free(&out);
    assert_int_equal(knit_shared_buf_refs(b), 1);
    knit_shared_buf_release(b);
}

static void test_moved_buffer_ownership_travels_tag_47(void **state)
{
    fx_t *f = *state;
    knit_test_release_log_t log = {0};
    uint8_t *data = malloc(1000);
    fill_pattern(data, 1000, 47);
    uint8_t copy[1000];
    memcpy(copy, data, sizeof copy);
    knit_moved_buf_t *m = NULL;
    assert_int_equal(knit_moved_new(data, 1000, knit_test_log_release, &log, &m), 0);
    knit_value_t v = knit_v_moved(m), out;
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 47);
    assert_int_equal(v.kind, KNIT_KIND_UNDEFINED); /* the sender gave it away */
    knit_value_free(&v);                           /* and freeing its value does nothing */
    assert_int_equal(log.calls, 0);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_MOVED);
    assert_true(out.flags & KNIT_VF_OWNED);
    assert_ptr_equal(out.u.moved, m);
    assert_ptr_equal(out.u.moved->data, data); /* no copy */
    assert_memory_equal(out.u.moved->data, copy, sizeof copy);
    assert_int_equal(log.calls, 0);
    knit_value_free(&out); /* the receiver releases it, exactly once */
    assert_int_equal(log.calls, 1);
    assert_ptr_equal(log.data, data);
}

/* --- process boundary ------------------------------------------------------------------------- */

static void test_process_boundary_rejects_shared_on_encode(void **state)
{
    fx_t *f = *state;
    knit__codec_cfg_t pb = f->host.codec;
    pb.process_boundary = true;
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(64, &b), 0);
    knit_value_t v = knit_v_shared(b);
    knit__slot_t before = *req_slot(f, 0);
    assert_int_equal(send_req_cfg(f, 0, &v, &pb), KNIT_E_PROCESS_BOUNDARY);
    assert_non_null(strstr(knit_errmsg(), "ProcessSharedBuffer"));
    assert_int_equal(knit_shared_buf_refs(b), 1);
    assert_int_equal(v.kind, KNIT_KIND_SHARED);
    assert_memory_equal(&before, req_slot(f, 0), sizeof before);
    knit_shared_buf_release(b);
}

static void test_process_boundary_rejects_moved_on_encode(void **state)
{
    fx_t *f = *state;
    knit__codec_cfg_t pb = f->host.codec;
    pb.process_boundary = true;
    knit_test_release_log_t log = {0};
    knit_moved_buf_t *m = NULL;
    assert_int_equal(knit_moved_new(malloc(32), 32, knit_test_log_release, &log, &m), 0);
    knit_value_t v = knit_v_moved(m);
    knit__slot_t before = *req_slot(f, 0);
    assert_int_equal(send_req_cfg(f, 0, &v, &pb), KNIT_E_PROCESS_BOUNDARY);
    /* the sender still owns it */
    assert_int_equal(v.kind, KNIT_KIND_MOVED);
    assert_ptr_equal(v.u.moved, m);
    assert_true(v.flags & KNIT_VF_OWNED);
    assert_int_equal(log.calls, 0);
    assert_memory_equal(&before, req_slot(f, 0), sizeof before);
    knit_value_free(&v);
    assert_int_equal(log.calls, 1);
}

static void test_process_boundary_lane_sets_codec_flag(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 16, .process_boundary = true};
    fx_t *f = knit_test_lane_open(&cfg);
    assert_true(f->host.codec.process_boundary);
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(8, &b), 0);
    knit_value_t v = knit_v_shared(b);
    assert_int_equal(send_req(f, 0, &v), KNIT_E_PROCESS_BOUNDARY);
    assert_int_equal(knit_shared_buf_refs(b), 1);
    knit_shared_buf_release(b);
    knit_test_lane_close(f);
}

static void test_process_boundary_decoder_rejects_before_metadata(void **state)
{
    fx_t *f = *state;
    knit__codec_cfg_t pb = f->worker.codec;
    pb.process_boundary = true;
    /* a genuine frame from this process is still refused across a boundary */
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(64, &b), 0);
    knit_value_t v = knit_v_shared(b), out = knit_v_int64(1);
    assert_int_equal(send_req(f, 0, &v), 0);
    assert_int_equal(knit_shared_buf_refs(b), 2);
    assert_int_equal(recv_req_cfg(f, 0, &out, &pb), KNIT_E_PROCESS_BOUNDARY);
    assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
    assert_int_equal(knit_shared_buf_refs(b), 2); /* not adopted */
    /* garbage metadata gets the same boundary answer (the words are never read), while a
     * thread codec does read them and refuses the foreign origin instead */
    for (uint32_t tag = 47; tag <= 48; tag++) {
        knit__slot_t *s = req_slot(f, 1);
        memset(s->stat, 0xEE, KNIT__STATIC_BYTES);
        s->hdr[KNIT__W_TAG] = tag;
        s->hdr[KNIT__W_LEN] = 32;
        assert_int_equal(recv_req_cfg(f, 1, &out, &pb), KNIT_E_PROCESS_BOUNDARY);
        assert_non_null(strstr(knit_errmsg(), "cannot cross a process-worker boundary"));
        assert_int_equal(recv_req(f, 1, &out), KNIT_E_PROCESS_BOUNDARY);
        assert_non_null(strstr(knit_errmsg(), "not produced by this process"));
        assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
    }
    /* the thread codec adopts the reference of the genuine frame */
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_ptr_equal(out.u.shared, b);
    knit_value_free(&out);
    knit_shared_buf_release(b);
}

static void test_process_boundary_keeps_psb(void **state)
{
    fx_t *f = *state;
    knit__codec_cfg_t pb = f->host.codec;
    pb.process_boundary = true;
    /* the fd of another process (the decoder refuses references to its own descriptors) */
    knit_psb_desc_t fd_psb
        = {.fd = 3, .pid = (int32_t)getppid(), .size = 4096, .offset = 0, .length = 4096};
    knit_psb_desc_t named = {.fd = -1, .name = "/knit-pb", .size = 4096, .length = 100};
    knit_envelope_t env = {.header = "{}", .header_len = 2, .body = knit_v_psb(&named)};
    const knit_value_t vals[] = {knit_v_psb(&fd_psb), knit_v_psb(&named), knit_v_envelope(&env)};
    /* across a process boundary an fd travels in the external form, which names its owner */
    const uint32_t tags[] = {45, 45, 49};
    for (int i = 0; i < 3; i++) {
        knit_value_t in = vals[i], out;
        assert_int_equal(send_req_cfg(f, 0, &in, &pb), 0);
        assert_int_equal(req_word(f, 0, KNIT__W_TAG), tags[i]);
        assert_int_equal(recv_req_cfg(f, 0, &out, &pb), 0);
        assert_true(knit_value_equal(&vals[i], &out));
        knit_value_free(&out);
    }
}

/* --- directions and header words -------------------------------------------------------------- */

static void test_return_direction_uses_the_worker_arena(void **state)
{
    fx_t *f = *state;
    char s[2000];
    memset(s, 'r', sizeof s);
    knit_value_t v = knit_v_strn(s, sizeof s), out;
    knit__slot_t *slot = &knit__shm_ctrl(&f->lane)->ret_slab[5];
    assert_int_equal(
        knit__encode(&v, slot->hdr, slot->stat, &f->worker.tx_arena, &f->worker.codec), 0);
    assert_int_equal(slot->hdr[KNIT__W_TAG], 11);
    knit__ctrl_t *c = knit__shm_ctrl(&f->lane);
    assert_int_equal(atomic_load(&c->ret.alloc_host.word), 1);
    assert_int_equal(atomic_load(&c->req.alloc_host.word), 0); /* the request arena is not used */
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, slot->hdr, sizeof hdr);
    assert_int_equal(knit__decode(hdr, slot->stat, &f->host.rx_arena, &f->host.codec, &out), 0);
    assert_true(knit_value_equal(&v, &out));
    assert_int_equal(atomic_load(&c->ret.alloc_free.word), 1);
    assert_int_equal(knit__arena_live(&f->worker.tx_arena), 0);
    knit_value_free(&out);
}

static void test_encode_leaves_words_0_1_7_alone(void **state)
{
    fx_t *f = *state;
    uint8_t big[800] = {0};
    knit_error_value_t e = {.name = "E", .message = "m"};
    const knit_value_t vals[]
        = {knit_v_int64(5), knit_v_str("s"), knit_v_bytes(big, sizeof big), knit_v_error(&e)};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint32_t *h = req_slot(f, 2)->hdr;
        h[KNIT__W_FN] = 0x00030007u;
        h[KNIT__W_ID] = 0xA5A5A5A5u;
        h[KNIT__W_SCRATCH] = 0x77777777u;
        knit_value_t in = vals[i], out;
        assert_int_equal(send_req(f, 2, &in), 0);
        assert_int_equal(h[KNIT__W_FN], 0x00030007u);
        assert_int_equal(h[KNIT__W_ID], 0xA5A5A5A5u);
        assert_int_equal(h[KNIT__W_SCRATCH], 0x77777777u);
        assert_int_equal(recv_req(f, 2, &out), 0);
        knit_value_free(&out);
    }
}

static void test_tag_names_and_placement(void **state)
{
    (void)state;
    assert_string_equal(knit__tag_name(11), "String");
    assert_string_equal(knit__tag_name(46), "ProcessSharedBuffer");
    assert_string_equal(knit__tag_name(1), "unknown");
    assert_string_equal(knit__tag_name(0xFFFFFFFFu), "unknown");
    const uint32_t dynamic[] = {11, 12, 17, 19, 20, 21, 22, 23, 24, 28, 36, 38, 40, 41, 42, 43, 44,
        49, 50, 51, 52, 64, 66, 68, 70, 72, 74};
    const uint32_t not_dynamic[] = {2, 3, 4, 5, 6, 9, 10, 15, 16, 18, 25, 29, 31, 32, 33, 34, 35,
        37, 39, 45, 46, 47, 48, 65, 67, 69, 71, 73, 75, 76};
    for (size_t i = 0; i < sizeof dynamic / sizeof dynamic[0]; i++)
        assert_true(knit__tag_is_dynamic(dynamic[i]));
    for (size_t i = 0; i < sizeof not_dynamic / sizeof not_dynamic[0]; i++)
        assert_false(knit__tag_is_dynamic(not_dynamic[i]));
}

#define T(name) cmocka_unit_test_setup_teardown(name, knit_test_lane_setup, knit_test_lane_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_null_undefined_bool_inline_tags),
        T(test_f64_inline_tag_9_keeps_bits),
        T(test_nan_uses_tag_6),
        T(test_int64_inline_tag_2),
        T(test_date_inline_tag_25),
        T(test_bigint_outside_int64_static_tag_29),
        T(test_bigint_in_int64_range_encodes_inline),
        T(test_bigint_huge_dynamic_tag_28),
        T(test_bigint_decode_normalises_foreign_forms),
        T(test_string_static_15_dynamic_11),
        T(test_decoded_text_is_nul_terminated),
        T(test_json_static_16_dynamic_12),
        T(test_bytes_static_18_dynamic_17),
        T(test_typed_arrays_every_element_type),
        T(test_typed_array_smallest_dynamic_by_element),
        T(test_typed_array_bad_length_rejected_on_encode),
        T(test_error_always_dynamic_tag_24),
        T(test_error_name_message_and_nested_cause_survive),
        T(test_error_each_allowed_cause_kind),
        T(test_error_undefined_cause_is_dropped),
        T(test_error_empty_name_becomes_Error),
        T(test_error_unsupported_cause_kind_rejected),
        T(test_error_cyclic_cause_rejected),
        T(test_error_cause_chain_depth_limit),
        T(test_error_invalid_utf8_rejected_on_encode),
        T(test_envelope_static_header_40_and_42),
        T(test_envelope_dynamic_header_41_and_43),
        T(test_envelope_header_512_static_513_dynamic),
        T(test_envelope_empty_body_still_takes_a_region),
        T(test_envelope_empty_header),
        T(test_envelope_psb_body_tags_49_to_52),
        T(test_envelope_rejects_other_body_kinds),
        T(test_psb_fd_form_tag_46_static_words),
        T(test_psb_named_form_uses_external_tag_and_keeps_name),
        T(test_psb_external_dynamic_tag_44_decodes),
        T(test_psb_inconsistent_descriptor_rejected_on_encode),
        T(test_shared_buffer_by_reference_tag_48),
        T(test_moved_buffer_ownership_travels_tag_47),
        T(test_process_boundary_rejects_shared_on_encode),
        T(test_process_boundary_rejects_moved_on_encode),
        T(test_process_boundary_lane_sets_codec_flag),
        T(test_process_boundary_decoder_rejects_before_metadata),
        T(test_process_boundary_keeps_psb),
        T(test_return_direction_uses_the_worker_arena),
        T(test_encode_leaves_words_0_1_7_alone),
        cmocka_unit_test(test_tag_names_and_placement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
