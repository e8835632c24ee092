/*
 * Value codec against its arena: static/dynamic placement at the 512-byte boundary, the header
 * words of a dynamic payload, region bookkeeping, maxPayloadBytes and arena capacity, the payload
 * configuration rules (knitting-internals 3.2-3.5, payloadCodec / shared-buffer-io /
 * payload-config tests) and payloads larger than the arena's initial size (3.4).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "knit/error.h"
#include "transports/shm/shm_lane.h"

/* --- fixture ---------------------------------------------------------------------------------- */

typedef knit_test_lane_t fx_t;

static knit__slot_t *req_slot(fx_t *f, unsigned i)
{
    return &knit__shm_ctrl(&f->lane)->req_slab[i];
}

static int send_req(fx_t *f, unsigned i, knit_value_t v)
{
    knit__slot_t *s = req_slot(f, i);
    return knit__encode(&v, s->hdr, s->stat, &f->host.tx_arena, &f->host.codec);
}

static int recv_req(fx_t *f, unsigned i, knit_value_t *out)
{
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, req_slot(f, i)->hdr, sizeof hdr);
    return knit__decode(hdr, req_slot(f, i)->stat, &f->worker.rx_arena, &f->worker.codec, out);
}

static uint32_t req_word(fx_t *f, unsigned i, unsigned w)
{
    return req_slot(f, i)->hdr[w];
}

static uint32_t alloc_word(fx_t *f)
{
    return atomic_load(&knit__shm_ctrl(&f->lane)->req.alloc_host.word);
}

static uint32_t free_word(fx_t *f)
{
    return atomic_load(&knit__shm_ctrl(&f->lane)->req.alloc_free.word);
}

static uint32_t live_bits(fx_t *f)
{
    return alloc_word(f) ^ free_word(f);
}

static uint64_t align64(uint64_t n)
{
    return (n + 63u) & ~(uint64_t)63u;
}

/* Decode slot i and check it equals v. */
static void expect_slot(fx_t *f, unsigned i, const knit_value_t *v)
{
    knit_value_t out;
    assert_int_equal(recv_req(f, i, &out), 0);
    assert_true(knit_value_equal(v, &out));
    knit_value_free(&out);
}

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = 0;
    return s;
}

/* --- static / dynamic boundary ---------------------------------------------------------------- */

static void test_string_512_static_513_dynamic(void **state)
{
    fx_t *f = *state;
    char *s = repeat("a", 513);
    knit_value_t v = knit_v_strn(s, 512);
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 15);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 512);
    assert_int_equal(alloc_word(f), 0); /* no region */
    expect_slot(f, 0, &v);
    v = knit_v_strn(s, 513);
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 11);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 513);
    assert_int_equal(live_bits(f), 1);
    expect_slot(f, 0, &v);
    free(s);
}

static void test_bytes_512_static_513_dynamic(void **state)
{
    fx_t *f = *state;
    uint8_t b[513];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(i * 7);
    knit_value_t v = knit_v_bytes(b, 512);
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 18);
    expect_slot(f, 0, &v);
    v = knit_v_bytes(b, 513);
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 17);
    assert_int_equal(req_word(f, 0, KNIT__W_LEN), 513);
    expect_slot(f, 0, &v);
}

static void test_json_512_static_513_dynamic(void **state)
{
    fx_t *f = *state;
    char *s = repeat("1", 600);
    s[0] = '[';
    s[511] = ']';
    knit_value_t v = knit_v_jsonn(s, 512);
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 16);
    expect_slot(f, 0, &v);
    s[511] = '1';
    s[512] = ']';
    v = knit_v_jsonn(s, 513);
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 12);
    expect_slot(f, 0, &v);
    free(s);
}

/* The boundary is in UTF-8 bytes: 256 two-byte, 170 three-byte and 128 four-byte characters fit;
 * one more character goes dynamic with its exact byte length and does not overlap the next
 * region. */
static void test_multibyte_utf8_boundary(void **state)
{
    fx_t *f = *state;
    const struct {
        const char *ch;
        size_t fit;
    } cases[] = {{"\xc3\xa9", 256}, {"\xe2\x82\xac", 170}, {"\xf0\x9f\x98\x80", 128}};
    for (size_t i = 0; i < 3; i++) {
        size_t w = strlen(cases[i].ch);
        char *s = repeat(cases[i].ch, cases[i].fit + 1);
        knit_value_t fits = knit_v_strn(s, cases[i].fit * w);
        knit_value_t over = knit_v_strn(s, (cases[i].fit + 1) * w);
        assert_int_equal(send_req(f, 0, fits), 0);
        assert_int_equal(req_word(f, 0, KNIT__W_TAG), 15);
        assert_int_equal(req_word(f, 0, KNIT__W_LEN), cases[i].fit * w);
        assert_true(cases[i].fit * w <= 512 && (cases[i].fit + 1) * w > 512);
        assert_int_equal(send_req(f, 1, over), 0);
        assert_int_equal(req_word(f, 1, KNIT__W_TAG), 11);
        assert_int_equal(req_word(f, 1, KNIT__W_LEN), (cases[i].fit + 1) * w);
        /* a second dynamic payload right behind it */
        assert_int_equal(send_req(f, 2, over), 0);
        assert_int_equal(req_word(f, 2, KNIT__W_START),
            req_word(f, 1, KNIT__W_START) + align64((cases[i].fit + 1) * w));
        expect_slot(f, 0, &fits);
        expect_slot(f, 1, &over);
        expect_slot(f, 2, &over);
        assert_int_equal(live_bits(f), 0);
        free(s);
    }
}

/* --- header words of dynamic payloads --------------------------------------------------------- */

static void test_dynamic_region_in_words_3_and_6_stamp_untouched(void **state)
{
    fx_t *f = *state;
    char *s = repeat("d", 1000);
    /* put something in region 0 first so the payload under test gets index 1 at offset 64 */
    assert_int_equal(send_req(f, 0, knit_v_strn(s, 520)), 0);
    uint32_t *h = req_slot(f, 1)->hdr;
    knit__hdr_set_stamp(h, 0x05A5A5A5u);
    knit__hdr_set_region(h, 0x1F);
    assert_int_equal(send_req(f, 1, knit_v_strn(s, 1000)), 0);
    assert_int_equal(h[KNIT__W_TAG], 11);
    assert_int_equal(h[KNIT__W_START], 576); /* align64(520) */
    assert_int_equal(h[KNIT__W_META] & 0x1Fu, 1);
    assert_int_equal(knit__hdr_stamp(h), 0x05A5A5A5u);
    assert_memory_equal(knit__arena_at(&f->worker.rx_arena, 576), s, 1000);
    knit_value_t v0 = knit_v_strn(s, 520), v1 = knit_v_strn(s, 1000);
    expect_slot(f, 0, &v0);
    expect_slot(f, 1, &v1);
    free(s);
}

static void test_non_buffer_payloads_leave_word_6_untouched(void **state)
{
    fx_t *f = *state;
    knit_psb_desc_t psb = {.fd = 3, .size = 64, .length = 64};
    knit_psb_desc_t named = {.fd = -1, .name = "/w6", .size = 64, .length = 64};
    static const uint8_t big[9] = {1, 0, 0, 0, 0, 0, 0, 0, 1};
    const knit_value_t vals[] = {
        knit_v_null(),
        knit_v_undefined(),
        knit_v_bool(true),
        knit_v_f64(2.5),
        knit_v_f64(NAN),
        knit_v_int64(-9),
        knit_v_date(1e12),
        knit_v_str("static text"),
        knit_v_json("{\"a\":1}"),
        knit_v_bytes(big, 9),
        knit_v_bigint(true, big, 9),
        knit_v_typed(KNIT_ELEM_U16, big, 8),
        knit_v_psb(&psb),
        knit_v_psb(&named),
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        req_slot(f, 3)->hdr[KNIT__W_META] = 0xDEADBEEFu;
        assert_int_equal(send_req(f, 3, vals[i]), 0);
        assert_int_equal(req_word(f, 3, KNIT__W_META), 0xDEADBEEFu);
        expect_slot(f, 3, &vals[i]);
    }
    assert_int_equal(alloc_word(f), 0);
    assert_int_equal(free_word(f), 0); /* decoding static payloads frees nothing */
}

static void test_consecutive_dynamic_payloads_pack_with_distinct_indices(void **state)
{
    fx_t *f = *state;
    char *s = repeat("s", 600);
    char *j = repeat("7", 700);
    uint8_t *b = malloc(1000), *mag = malloc(601);
    for (int i = 0; i < 1000; i++)
        b[i] = (uint8_t)(i ^ 0x5c);
    for (int i = 0; i < 601; i++)
        mag[i] = (uint8_t)(i | 1);
    char *msg = repeat("m", 300);
    knit_error_value_t e = {.name = "RangeError", .message = msg};
    char *eh = repeat("h", 550);
    knit_envelope_t env = {.header = eh,
        .header_len = 550,
        .body = knit_v_bytes(b, 150),
        .header_kind = KNIT_ENV_STRING};
    const knit_value_t vals[] = {knit_v_strn(s, 600), knit_v_jsonn(j, 700), knit_v_error(&e),
        knit_v_bytes(b, 1000), knit_v_bigint(false, mag, 601), knit_v_envelope(&env)};
    const uint32_t tags[] = {11, 12, 24, 17, 28, 43};
    uint32_t next_start = 0;
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(send_req(f, i, vals[i]), 0);
        assert_int_equal(req_word(f, i, KNIT__W_TAG), tags[i]);
        assert_int_equal(req_word(f, i, KNIT__W_START), next_start);
        assert_int_equal(req_word(f, i, KNIT__W_META) & 0x1Fu, i); /* distinct indices */
        uint64_t written = req_word(f, i, KNIT__W_LEN);
        if (tags[i] == 43)
            written += req_word(f, i, KNIT__W_END); /* header + body */
        next_start += (uint32_t)align64(written);
    }
    assert_int_equal(live_bits(f), 0x3F);
    assert_int_equal(knit__arena_live(&f->host.tx_arena), 6);
    /* nothing overlapped: every payload reads back intact, in any order */
    for (int i = 5; i >= 0; i--)
        expect_slot(f, (unsigned)i, &vals[i]);
    assert_int_equal(live_bits(f), 0);
    assert_int_equal(knit__arena_live(&f->host.tx_arena), 0);
    free(s);
    free(j);
    free(b);
    free(mag);
    free(msg);
    free(eh);
}

static void test_decode_frees_the_region_bit(void **state)
{
    fx_t *f = *state;
    char *s = repeat("x", 2048);
    knit_value_t v = knit_v_strn(s, 2048), out;
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(alloc_word(f), 1);
    assert_int_equal(free_word(f), 0);
    assert_int_equal(__builtin_popcount(live_bits(f)), 1);
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(free_word(f), 1); /* bit 0 toggled by the reader */
    assert_int_equal(__builtin_popcount(live_bits(f)), 0);
    knit_value_free(&out);
    /* everything free: the arena resets and the next payload starts at offset 0 again */
    assert_int_equal(send_req(f, 1, v), 0);
    assert_int_equal(req_word(f, 1, KNIT__W_START), 0);
    assert_int_equal(__builtin_popcount(live_bits(f)), 1);
    expect_slot(f, 1, &v);
    assert_int_equal(live_bits(f), 0);
    free(s);
}

/* --- maxPayloadBytes -------------------------------------------------------------------------- */

typedef struct over_case {
    const char *label;
    knit_value_t at;   /* exactly max_payload_bytes dynamic bytes */
    knit_value_t over; /* one byte (or element) more */
    uint64_t over_bytes;
} over_case_t;

static void test_max_payload_exact_fits_one_more_fails(void **state)
{
    fx_t *f = *state;
    const uint64_t max = f->host.codec.max_payload_bytes;
    assert_int_equal(max, 131072);
    uint8_t *buf = calloc(1, max + 16);
    memset(buf, 'a', max + 16);
    buf[0] = 7; /* a bigint magnitude may not be all zero at the top; keep it non-zero anyway */
    /* error JSON text is {"name":"E","message":"<msg>"}: 25 bytes + the message */
    char *msg_at = repeat("q", max - 25), *msg_over = repeat("q", max - 24);
    knit_error_value_t e_at = {.name = "E", .message = msg_at};
    knit_error_value_t e_over = {.name = "E", .message = msg_over};
    knit_envelope_t env_at = {.header = (char *)buf,
        .header_len = 1000,
        .body = knit_v_bytes(buf, max - 1000),
        .header_kind = KNIT_ENV_STRING};
    knit_envelope_t env_over = env_at;
    env_over.body.len++;
    const over_case_t cases[] = {
        {"string", knit_v_strn((char *)buf, max), knit_v_strn((char *)buf, max + 1), max + 1},
        {"json", knit_v_jsonn((char *)buf, max), knit_v_jsonn((char *)buf, max + 1), max + 1},
        {"bytes", knit_v_bytes(buf, max), knit_v_bytes(buf, max + 1), max + 1},
        {"Float64Array", knit_v_typed(KNIT_ELEM_F64, buf, max),
            knit_v_typed(KNIT_ELEM_F64, buf, max + 8), max + 8},
        {"bigint", knit_v_bigint(false, buf, max - 1), knit_v_bigint(false, buf, max), max + 1},
        {"error", knit_v_error(&e_at), knit_v_error(&e_over), max + 1},
        {"envelope", knit_v_envelope(&env_at), knit_v_envelope(&env_over), max + 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(send_req(f, 0, cases[i].at), 0);
        assert_true(knit__tag_is_dynamic(req_word(f, 0, KNIT__W_TAG)));
        expect_slot(f, 0, &cases[i].at);

        uint32_t a = alloc_word(f), fw = free_word(f);
        knit__slot_t before = *req_slot(f, 0);
        assert_int_equal(send_req(f, 0, cases[i].over), KNIT_E_PAYLOAD_TOO_LARGE);
        char want[128];
        snprintf(want, sizeof want, "limit=%llu actual=%llu type=%s", (unsigned long long)max,
            (unsigned long long)cases[i].over_bytes, cases[i].label);
        assert_non_null(strstr(knit_errmsg(), "maxPayloadBytes"));
        assert_non_null(strstr(knit_errmsg(), want));
        /* rejected before anything was reserved or written */
        assert_int_equal(alloc_word(f), a);
        assert_int_equal(free_word(f), fw);
        assert_int_equal(knit__arena_live(&f->host.tx_arena), 0);
        assert_memory_equal(&before, req_slot(f, 0), sizeof before);
    }
    free(buf);
    free(msg_at);
    free(msg_over);
}

static void test_max_payload_ignores_static_bytes(void **state)
{
    fx_t *f = *state;
    f->host.codec.max_payload_bytes = 100;
    char *s = repeat("t", 600);
    /* static payloads are not counted */
    assert_int_equal(send_req(f, 0, knit_v_strn(s, 512)), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 15);
    assert_int_equal(send_req(f, 0, knit_v_strn(s, 513)), KNIT_E_PAYLOAD_TOO_LARGE);
    /* an envelope's static header is not counted either, its body is */
    knit_envelope_t env = {.header = s,
        .header_len = 500,
        .body = knit_v_bytes(s, 100),
        .header_kind = KNIT_ENV_STRING};
    knit_value_t ev = knit_v_envelope(&env);
    assert_int_equal(send_req(f, 0, ev), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 42);
    expect_slot(f, 0, &ev);
    env.body.len = 101;
    assert_int_equal(send_req(f, 0, knit_v_envelope(&env)), KNIT_E_PAYLOAD_TOO_LARGE);
    assert_non_null(strstr(knit_errmsg(), "limit=100 actual=101 type=envelope"));
    free(s);
}

/* --- arena capacity --------------------------------------------------------------------------- */

static void test_arena_too_small_rolls_back(void **state)
{
    fx_t *f = *state;
    /* allow a payload bigger than the whole (1 MiB) arena */
    f->host.codec.max_payload_bytes = 4u << 20;
    uint8_t *b = calloc(1, 2u << 20);
    knit__slot_t before = *req_slot(f, 0);
    assert_int_equal(send_req(f, 0, knit_v_bytes(b, 2u << 20)), KNIT_E_ARENA_FULL);
    assert_non_null(strstr(knit_errmsg(), "capacity exceeded"));
    assert_int_equal(knit__arena_live(&f->host.tx_arena), 0);
    assert_int_equal(alloc_word(f) ^ free_word(f), 0);
    assert_int_equal(alloc_word(f), 0);
    assert_memory_equal(&before, req_slot(f, 0), sizeof before);
    /* the arena is still usable from offset 0 */
    knit_value_t small = knit_v_bytes(b, 4096);
    assert_int_equal(send_req(f, 0, small), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_START), 0);
    expect_slot(f, 0, &small);
    free(b);
}

static void test_arena_full_of_live_regions_then_reuse(void **state)
{
    fx_t *f = *state;
    const uint64_t max = f->host.codec.max_payload_bytes; /* 128 KiB; the arena holds 1 MiB - 64 */
    uint8_t *b = malloc(max);
    for (uint64_t i = 0; i < max; i++)
        b[i] = (uint8_t)(i >> 7);
    knit_value_t v = knit_v_bytes(b, max);
    for (unsigned i = 0; i < 7; i++) {
        assert_int_equal(send_req(f, i, v), 0);
        assert_int_equal(req_word(f, i, KNIT__W_START), i * max);
    }
    assert_int_equal(knit__arena_live(&f->host.tx_arena), 7);
    /* an eighth maximal payload needs 1 MiB but the arena has 1 MiB - 64 */
    uint32_t a = alloc_word(f);
    assert_int_equal(send_req(f, 7, v), KNIT_E_ARENA_FULL);
    assert_int_equal(alloc_word(f), a);
    assert_int_equal(knit__arena_live(&f->host.tx_arena), 7);
    /* once one is consumed its bytes are reused in place under a fresh index */
    expect_slot(f, 0, &v);
    assert_int_equal(send_req(f, 7, v), 0);
    assert_int_equal(req_word(f, 7, KNIT__W_START), 0);
    assert_int_equal(req_word(f, 7, KNIT__W_META) & 0x1Fu, 7);
    for (unsigned i = 1; i < 8; i++)
        expect_slot(f, i, &v);
    assert_int_equal(live_bits(f), 0);
    free(b);
}

static void test_null_arena_refuses_dynamic_only(void **state)
{
    fx_t *f = *state;
    char *s = repeat("n", 600);
    knit__slot_t *slot = req_slot(f, 0);
    knit_value_t v = knit_v_strn(s, 512);
    assert_int_equal(knit__encode(&v, slot->hdr, slot->stat, NULL, &f->host.codec), 0);
    assert_int_equal(slot->hdr[KNIT__W_TAG], 15);
    v = knit_v_strn(s, 513);
    assert_int_equal(
        knit__encode(&v, slot->hdr, slot->stat, NULL, &f->host.codec), KNIT_E_ARENA_FULL);
    free(s);
}

/* --- payload configuration -------------------------------------------------------------------- */

static void test_payload_config_defaults(void **state)
{
    (void)state;
    knit__lane_cfg_t c = {0};
    assert_int_equal(knit__lane_cfg_resolve(&c), 0);
    assert_int_equal(c.payload_max_bytes, 67108864);    /* 64 MiB */
    assert_int_equal(c.payload_initial_bytes, 4194304); /* 4 MiB */
    assert_int_equal(c.max_payload_bytes, 8388608);     /* 64 MiB >> 3 */
}

static void test_payload_config_max_payload_defaults_to_max_shr_3(void **state)
{
    (void)state;
    const uint64_t maxes[] = {8, 1000, 1u << 20, 3u << 20, 1ull << 32};
    for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
        knit__lane_cfg_t c = {.payload_max_bytes = maxes[i]};
        assert_int_equal(knit__lane_cfg_resolve(&c), 0);
        assert_int_equal(c.max_payload_bytes, maxes[i] >> 3);
    }
}

/* knitting throws RangeError for maxPayloadBytes = 0; knit's options structs read 0 as "use the
 * default" in every payload field. */
static void test_payload_config_zero_means_default(void **state)
{
    (void)state;
    knit__lane_cfg_t c
        = {.payload_max_bytes = 1u << 20, .payload_initial_bytes = 0, .max_payload_bytes = 0};
    assert_int_equal(knit__lane_cfg_resolve(&c), 0);
    assert_int_equal(c.max_payload_bytes, (1u << 20) >> 3);
    assert_int_equal(c.payload_initial_bytes, 1u << 20); /* 4 MiB default, clamped to the max */
    knit__lane_cfg_t d = {.payload_max_bytes = 0, .max_payload_bytes = 4096};
    assert_int_equal(knit__lane_cfg_resolve(&d), 0);
    assert_int_equal(d.payload_max_bytes, 64u << 20);
    assert_int_equal(d.max_payload_bytes, 4096);
}

static void test_payload_config_above_cap_is_range_error(void **state)
{
    (void)state;
    knit__lane_cfg_t ok = {.payload_max_bytes = 1u << 20, .max_payload_bytes = 131072};
    assert_int_equal(knit__lane_cfg_resolve(&ok), 0);
    assert_int_equal(ok.max_payload_bytes, 131072);
    knit__lane_cfg_t bad = {.payload_max_bytes = 1u << 20, .max_payload_bytes = 131073};
    assert_int_equal(knit__lane_cfg_resolve(&bad), KNIT_E_RANGE);
    assert_non_null(strstr(knit_errmsg(), "maxPayloadBytes must be > 0 and <= 131072"));
    knit__shm_lane_t lane;
    assert_int_equal(knit__shm_lane_create(&lane, &bad), KNIT_E_RANGE);
}

static void test_payload_config_max_byte_length_bounds(void **state)
{
    (void)state;
    knit__lane_cfg_t c7 = {.payload_max_bytes = 7};
    assert_int_equal(knit__lane_cfg_resolve(&c7), KNIT_E_RANGE); /* 7 >> 3 == 0 */
    knit__lane_cfg_t c8 = {.payload_max_bytes = 8};
    assert_int_equal(knit__lane_cfg_resolve(&c8), 0);
    assert_int_equal(c8.max_payload_bytes, 1);
    knit__lane_cfg_t top = {.payload_max_bytes = 4ull << 30};
    assert_int_equal(knit__lane_cfg_resolve(&top), 0);
    knit__lane_cfg_t above = {.payload_max_bytes = (4ull << 30) + 1};
    assert_int_equal(knit__lane_cfg_resolve(&above), KNIT_E_RANGE);
}

static void test_payload_config_initial_clamped_to_max(void **state)
{
    (void)state;
    knit__lane_cfg_t c = {.payload_max_bytes = 1u << 20, .payload_initial_bytes = 2u << 20};
    assert_int_equal(knit__lane_cfg_resolve(&c), 0);
    assert_int_equal(c.payload_initial_bytes, 1u << 20);
    knit__lane_cfg_t d = {.payload_max_bytes = 1u << 20, .payload_initial_bytes = 4096};
    assert_int_equal(knit__lane_cfg_resolve(&d), 0);
    assert_int_equal(d.payload_initial_bytes, 4096);
}

static void test_lane_endpoints_use_the_resolved_config(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 2u << 20, .payload_initial_bytes = 8192};
    fx_t *f = knit_test_lane_open(&cfg);
    assert_int_equal(f->host.codec.max_payload_bytes, (2u << 20) >> 3);
    assert_int_equal(f->worker.codec.max_payload_bytes, (2u << 20) >> 3);
    assert_false(f->host.codec.process_boundary);
    assert_int_equal(f->host.tx_arena.capacity, 8192);
    assert_int_equal(f->host.tx_arena.max_bytes, 2u << 20);
    assert_int_equal(f->worker.rx_arena.max_bytes, 2u << 20); /* the reader sees it all */
    knit_test_lane_close(f);
}

/* --- payloads beyond the initial arena size --------------------------------------------------- */

/* knitting's reader kept views sized at the arena's first length and truncated what the writer
 * placed beyond it (internals 3.4). Here the reader is set up before the writer grows, and the
 * payload must still arrive whole. */
static void test_payload_beyond_initial_bytes_decodes_intact(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 16u << 20, .payload_initial_bytes = 4096};
    fx_t *f = knit_test_lane_open(&cfg);
    const size_t n = 1u << 20;
    uint8_t *b = malloc(n);
    knit_test_rng_t r = {0x3a4b5c6d7e8f9011ull};
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)knit_test_rand(&r);
    assert_int_equal(f->host.tx_arena.capacity, 4096);
    knit_value_t v = knit_v_bytes(b, n), out;
    assert_int_equal(send_req(f, 0, v), 0);
    assert_int_equal(req_word(f, 0, KNIT__W_TAG), 17);
    /* the writer grew in knitting's step: align64(64 + needed + 4096) */
    assert_int_equal(f->host.tx_arena.grows, 1);
    assert_int_equal(f->host.tx_arena.capacity, align64(64 + n + 4096));
    assert_int_equal(recv_req(f, 0, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.u.ptr, b, n);
    knit_value_free(&out);
    free(b);
    knit_test_lane_close(f);
}

/* The reported knitting case: a 6 MiB string returned by a worker arrived as 4 194 240
 * characters with the default 4 MiB initial / 64 MiB maximum arena. */
static void test_six_mib_result_beyond_default_initial_arrives_whole(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {0};
    fx_t *f = knit_test_lane_open(&cfg);
    const size_t n = 6u << 20;
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('A' + (i * 31 + i / 4096) % 26);
    knit__slot_t *slot = &knit__shm_ctrl(&f->lane)->ret_slab[0];
    knit_value_t v = knit_v_strn(s, n), out;
    assert_int_equal(
        knit__encode(&v, slot->hdr, slot->stat, &f->worker.tx_arena, &f->worker.codec), 0);
    assert_int_equal(slot->hdr[KNIT__W_TAG], 11);
    assert_true(f->worker.tx_arena.capacity > (4u << 20));
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, slot->hdr, sizeof hdr);
    assert_int_equal(knit__decode(hdr, slot->stat, &f->host.rx_arena, &f->host.codec, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.u.ptr, s, n);
    knit_value_free(&out);
    assert_int_equal(knit__arena_live(&f->worker.tx_arena), 0);
    free(s);
    knit_test_lane_close(f);
}

/* Each test gets a lane of 1 MiB arenas, so maxPayloadBytes = 128 KiB. */
#define T(name) cmocka_unit_test_setup_teardown(name, knit_test_lane_setup, knit_test_lane_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_string_512_static_513_dynamic),
        T(test_bytes_512_static_513_dynamic),
        T(test_json_512_static_513_dynamic),
        T(test_multibyte_utf8_boundary),
        T(test_dynamic_region_in_words_3_and_6_stamp_untouched),
        T(test_non_buffer_payloads_leave_word_6_untouched),
        T(test_consecutive_dynamic_payloads_pack_with_distinct_indices),
        T(test_decode_frees_the_region_bit),
        T(test_max_payload_exact_fits_one_more_fails),
        T(test_max_payload_ignores_static_bytes),
        T(test_arena_too_small_rolls_back),
        T(test_arena_full_of_live_regions_then_reuse),
        T(test_null_arena_refuses_dynamic_only),
        cmocka_unit_test(test_payload_config_defaults),
        cmocka_unit_test(test_payload_config_max_payload_defaults_to_max_shr_3),
        cmocka_unit_test(test_payload_config_zero_means_default),
        cmocka_unit_test(test_payload_config_above_cap_is_range_error),
        cmocka_unit_test(test_payload_config_max_byte_length_bounds),
        cmocka_unit_test(test_payload_config_initial_clamped_to_max),
        cmocka_unit_test(test_lane_endpoints_use_the_resolved_config),
        cmocka_unit_test(test_payload_beyond_initial_bytes_decodes_intact),
        cmocka_unit_test(test_six_mib_result_beyond_default_initial_arrives_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
