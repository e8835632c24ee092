/*
 * Value codec against hostile frames: every malformed header, static area or region is refused
 * with a negative code, leaves the output UNDEFINED and frees nothing, and random or mutated
 * frames never crash or read outside the frame. The static area and the arena live on the heap
 * at their exact sizes here (not in a lane mapping), so AddressSanitizer reports any read past
 * their ends.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "knit/error.h"

#define ARENA_BYTES (65536u + KNIT__ARENA_RESERVED)
#define USABLE      65536u

typedef struct hframe {
    uint32_t *hdr; /* KNIT__HDR_WORDS words */
    uint8_t *stat; /* KNIT__STATIC_BYTES bytes */
    uint8_t *mem;  /* ARENA_BYTES bytes */
    _Atomic uint32_t alloc_bits, free_bits;
    knit__arena_t arena;
    knit__codec_cfg_t cfg;
} hframe_t;

static void hf_reset_arena(hframe_t *h)
{
    atomic_store(&h->alloc_bits, 0);
    atomic_store(&h->free_bits, 0);
    knit__arena_init(&h->arena, h->mem, ARENA_BYTES, ARENA_BYTES, &h->alloc_bits, &h->free_bits);
}

static int hf_setup(void **state)
{
    hframe_t *h = calloc(1, sizeof *h);
    h->hdr = calloc(KNIT__HDR_WORDS, sizeof(uint32_t));
    h->stat = calloc(1, KNIT__STATIC_BYTES);
    h->mem = calloc(1, ARENA_BYTES);
    hf_reset_arena(h);
    h->cfg.max_payload_bytes = USABLE;
    *state = h;
    return 0;
}

static int hf_teardown(void **state)
{
    hframe_t *h = *state;
    free(h->hdr);
    free(h->stat);
    free(h->mem);
    free(h);
    return 0;
}

static void set_hdr(
    hframe_t *h, uint32_t tag, uint32_t start, uint32_t end, uint32_t len, uint32_t meta)
{
    memset(h->hdr, 0, KNIT__HDR_WORDS * sizeof(uint32_t));
    h->hdr[KNIT__W_TAG] = tag;
    h->hdr[KNIT__W_START] = start;
    h->hdr[KNIT__W_END] = end;
    h->hdr[KNIT__W_LEN] = len;
    h->hdr[KNIT__W_META] = meta;
}

/* A static frame carrying `len` bytes of `text`. */
static void static_frame(hframe_t *h, uint32_t tag, const void *text, uint32_t len)
{
    memset(h->stat, 0, KNIT__STATIC_BYTES);
    memcpy(h->stat, text, len);
    set_hdr(h, tag, 0, 0, len, 0);
}

/* A dynamic frame whose region (index 3, start 128) holds `len` bytes of `text`. */
static void dynamic_frame(hframe_t *h, uint32_t tag, const void *text, uint32_t len)
{
    memcpy(knit__arena_at(&h->arena, 128), text, len);
    set_hdr(h, tag, 128, 0, len, 3);
}

/* Decode and expect `code`: the output is UNDEFINED. A corrupt frame frees no region; a
 * well-formed dynamic frame that cannot be taken (an unknown codec) hands its region back. */
static void expect_code(hframe_t *h, int code)
{
    knit_value_t out = knit_v_int64(42);
    uint32_t fw = atomic_load(&h->free_bits);
    if (code == KNIT_E_UNSUPPORTED && knit__tag_is_dynamic(h->hdr[KNIT__W_TAG]))
        fw ^= 1u << (h->hdr[KNIT__W_META] & KNIT__META_REGION_MASK);
    int rc = knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out);
    if (rc != code)
        print_error("tag %u: got %d (%s), want %d\n", h->hdr[KNIT__W_TAG], rc, knit_errmsg(), code);
    assert_int_equal(rc, code);
    assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
    assert_int_equal(atomic_load(&h->free_bits), fw);
}

static void expect_corrupt(hframe_t *h)
{
    expect_code(h, KNIT_E_CORRUPT);
}

static void expect_ok(hframe_t *h)
{
    knit_value_t out;
    int rc = knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out);
    if (rc != 0)
        print_error("tag %u: %s\n", h->hdr[KNIT__W_TAG], knit_errmsg());
    assert_int_equal(rc, 0);
    knit_value_free(&out);
}

static const uint32_t known_tags[] = {2, 3, 4, 5, 6, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 28, 29, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
    50, 51, 52, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75};
#define N_KNOWN (sizeof known_tags / sizeof known_tags[0])

static bool is_known(uint32_t tag)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (known_tags[i] == tag)
            return true;
    return false;
}

static const uint32_t static_tags[]
    = {15, 16, 18, 29, 31, 32, 33, 34, 35, 37, 39, 45, 65, 67, 69, 71, 73, 75};
static const uint32_t dynamic_tags[] = {
    11, 12, 17, 19, 20, 21, 22, 23, 24, 28, 36, 38, 44, 64, 66, 68, 70, 72, 74, 40, 41, 42, 43, 49};

/* Typed-array tags with elements wider than a byte, and that width. */
static const struct {
    uint32_t tag, width;
} wide_tags[] = {{19, 4}, {31, 4}, {20, 8}, {32, 8}, {21, 8}, {33, 8}, {22, 8}, {34, 8}, {68, 2},
    {69, 2}, {70, 2}, {71, 2}, {72, 4}, {73, 4}, {74, 4}, {75, 4}};

/* --- header validation ------------------------------------------------------------------------ */

static void test_unknown_tags_rejected(void **state)
{
    hframe_t *h = *state;
    unsigned unknown = 0;
    for (uint32_t tag = 0; tag < 512; tag++) {
        if (is_known(tag))
            continue;
        set_hdr(h, tag, 0, 0, 0, 0);
        expect_corrupt(h);
        assert_non_null(strstr(knit_errmsg(), "unknown type tag"));
        unknown++;
    }
    const uint32_t huge[] = {0x80000000u, 0xFFFFFFFFu, 0x0000FFFFu};
    for (size_t i = 0; i < 3; i++) {
        set_hdr(h, huge[i], 0, 0, 0, 0);
        expect_corrupt(h);
    }
    /* 0 (UNREACHABLE), 1, 7, 8, 13, 14, 26, 27 (symbols), 30, 53, 54 (NumericArray), 55-63, 76+ */
    assert_int_equal(unknown, 512 - N_KNOWN);
}

static void test_static_length_over_512_rejected(void **state)
{
    hframe_t *h = *state;
    for (size_t i = 0; i < sizeof static_tags / sizeof static_tags[0]; i++) {
        const uint32_t lens[] = {513, 4096, 0xFFFFFFFFu};
        for (int k = 0; k < 3; k++) {
            set_hdr(h, static_tags[i], 0, 0, lens[k], 0);
            expect_corrupt(h);
        }
    }
    /* envelope headers in the static area too (the body region itself is valid) */
    const uint32_t env_static[] = {40, 42, 49, 51};
    for (int i = 0; i < 4; i++) {
        set_hdr(h, env_static[i], 0, 16, 513, 0);
        expect_corrupt(h);
    }
}

static void test_region_start_not_64_aligned_rejected(void **state)
{
    hframe_t *h = *state;
    const uint32_t starts[] = {1, 32, 63, 65, 4000};
    for (size_t i = 0; i < sizeof dynamic_tags / sizeof dynamic_tags[0]; i++) {
        for (size_t k = 0; k < sizeof starts / sizeof starts[0]; k++) {
            set_hdr(h, dynamic_tags[i], starts[k], 8, 8, 0);
            expect_corrupt(h);
        }
    }
}

static void test_region_beyond_arena_rejected(void **state)
{
    hframe_t *h = *state;
    const struct {
        uint32_t start, len;
    } bad[] = {
        {USABLE - 64, 65},
        {0, USABLE + 1},
        {USABLE, 1},
        {0xFFFFFFC0u, 64},
        {0xFFFFFFC0u, 0xFFFFFFFFu},
        {64, 0xFFFFFFFFu},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_hdr(h, 17, bad[i].start, 0, bad[i].len, 0);
        expect_corrupt(h);
        set_hdr(h, 11, bad[i].start, 0, bad[i].len, 0);
        expect_corrupt(h);
    }
    /* exactly up to the end of the arena is fine */
    memset(knit__arena_at(&h->arena, USABLE - 64), 0x42, 64);
    set_hdr(h, 17, USABLE - 64, 0, 64, 0);
    expect_ok(h);
    /* envelopes: header + body together must fit */
    set_hdr(h, 41, 0, 30000, 40000, 0); /* dynamic header 40000 + body 30000 */
    expect_corrupt(h);
    set_hdr(h, 43, 0, 0xFFFFFFFFu, 0xFFFFFFFFu, 0);
    expect_corrupt(h);
    set_hdr(h, 40, 0, USABLE + 1, 2, 0); /* static header, body too long */
    expect_corrupt(h);
    set_hdr(h, 40, USABLE - 64, 128, 2, 0);
    expect_corrupt(h);
    /* a dynamic frame without an arena */
    set_hdr(h, 11, 0, 0, 8, 0);
    knit_value_t out = knit_v_int64(1);
    assert_int_equal(knit__decode(h->hdr, h->stat, NULL, &h->cfg, &out), KNIT_E_CORRUPT);
    assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
}

static void test_typed_length_not_whole_elements_rejected(void **state)
{
    hframe_t *h = *state;
    for (size_t i = 0; i < sizeof wide_tags / sizeof wide_tags[0]; i++) {
        bool dyn = knit__tag_is_dynamic(wide_tags[i].tag);
        for (uint32_t extra = 1; extra < wide_tags[i].width; extra++) {
            set_hdr(h, wide_tags[i].tag, dyn ? 64 : 0, 0, wide_tags[i].width * 3 + extra, 1);
            expect_corrupt(h);
            assert_non_null(strstr(knit_errmsg(), "not whole elements"));
        }
        set_hdr(h, wide_tags[i].tag, dyn ? 64 : 0, 0, wide_tags[i].width * 3, 1);
        expect_ok(h);
    }
}

static void test_bigint_without_sign_byte_rejected(void **state)
{
    hframe_t *h = *state;
    set_hdr(h, 29, 0, 0, 0, 0);
    expect_corrupt(h);
    set_hdr(h, 28, 0, 0, 0, 0);
    expect_corrupt(h);
    const uint8_t bad_sign[3] = {2, 1, 1}, ff_sign[3] = {0xFF, 1, 1};
    static_frame(h, 29, bad_sign, 3);
    expect_corrupt(h);
    dynamic_frame(h, 28, ff_sign, 3);
    expect_corrupt(h);
    assert_non_null(strstr(knit_errmsg(), "sign byte"));
    const uint8_t good[3] = {1, 1, 1};
    dynamic_frame(h, 28, good, 3);
    expect_ok(h);
}

/* --- JSON payloads ---------------------------------------------------------------------------- */

static void test_error_payload_garbage_rejected(void **state)
{
    hframe_t *h = *state;
    const char *texts[] = {
        "", "{", "not json", "[]", "42", "\"Error\"", "{\"name\":\"E\",\"message\":\"m\"} trailing",
        "{\"name\":1,\"message\":\"m\"}", "{\"name\":\"E\"}", "{\"message\":\"m\"}",
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":1}",
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":1,\"causeKind\":2}",
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":\"x\",\"causeKind\":\"int64\"}",
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":true,\"causeKind\":\"null\"}",
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":1,\"causeKind\":\"bytes\"}",
        "{\"name\":\"E\",\"message\":\"m\",\"cause\":{},\"causeKind\":\"error\"}",
        ("{\"name\":\"E\",\"message\":\"m\",\"cause\":{\"name\":\"E\",\"message\":7},"
         "\"causeKind\":\"error\"}"),
        "{\"name\":\"E\xc0\x80\",\"message\":\"m\"}", /* invalid UTF-8 inside */
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        dynamic_frame(h, 24, texts[i], (uint32_t)strlen(texts[i]));
        expect_corrupt(h);
    }
    /* causes nested deeper than the encoder ever writes */
    char deep[4096];
    size_t n = 0;
    for (int d = 0; d < 40; d++)
        n += (size_t)snprintf(deep + n, sizeof deep - n,
            "{\"name\":\"E\",\"message\":\"m\",\"causeKind\":\"error\",\"cause\":");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"name\":\"E\",\"message\":\"m\"}");
    for (int d = 0; d < 40; d++)
        deep[n++] = '}';
    dynamic_frame(h, 24, deep, (uint32_t)n);
    expect_corrupt(h);
    /* a well-formed one decodes (and only then is its region freed) */
    const char *good
        = "{\"name\":\"E\",\"message\":\"m\",\"cause\":\"x\",\"causeKind\":\"string\"}";
    dynamic_frame(h, 24, good, (uint32_t)strlen(good));
    uint32_t fw = atomic_load(&h->free_bits);
    expect_ok(h);
    assert_int_equal(atomic_load(&h->free_bits), fw ^ (1u << 3));
}

static void test_external_payload_garbage_rejected(void **state)
{
    hframe_t *h = *state;
    const struct {
        const char *text;
        int code;
    } cases[] = {
        {"garbage", KNIT_E_CORRUPT},
        {"", KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\"]", KNIT_E_CORRUPT},
        {"{\"codec\":\"knitting.processSharedBuffer\"}", KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1}]", KNIT_E_CORRUPT},
        {"[\"other.codec\",{\"version\":1,\"fd\":3,\"name\":\"\",\"size\":1,\"byteOffset\":0,"
         "\"byteLength\":1}]",
            KNIT_E_UNSUPPORTED},
        {"[\"knitting.processSharedBuffer\",{\"version\":2,\"fd\":3,\"name\":\"\",\"size\":1,"
         "\"byteOffset\":0,\"byteLength\":1}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":3,\"name\":\"\",\"size\":10,"
         "\"byteOffset\":11,\"byteLength\":0}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":3,\"name\":\"\",\"size\":10,"
         "\"byteOffset\":5,\"byteLength\":6}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":-1,\"name\":\"\",\"size\":10,"
         "\"byteOffset\":0,\"byteLength\":1}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":-2,\"name\":\"/x\",\"size\":10,"
         "\"byteOffset\":0,\"byteLength\":1}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":2147483648,\"name\":\"\","
         "\"size\":10,\"byteOffset\":0,\"byteLength\":1}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":-1,"
         "\"name\":\"/0123456789012345678901234567890\",\"size\":10,\"byteOffset\":0,"
         "\"byteLength\":1}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":3,\"name\":\"\",\"size\":-1,"
         "\"byteOffset\":0,\"byteLength\":0}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":3,\"name\":\"\",\"size\":1.5,"
         "\"byteOffset\":0,\"byteLength\":0}]",
            KNIT_E_CORRUPT},
        {"[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":-1,\"name\":\"/a\\u0000b\","
         "\"size\":1,\"byteOffset\":0,\"byteLength\":0}]",
            KNIT_E_CORRUPT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t len = (uint32_t)strlen(cases[i].text);
        static_frame(h, 45, cases[i].text, len);
        expect_code(h, cases[i].code);
        dynamic_frame(h, 44, cases[i].text, len);
        expect_code(h, cases[i].code);
        /* the same text as the body of an envelope with a static header */
        memcpy(knit__arena_at(&h->arena, 128), cases[i].text, len);
        memcpy(h->stat, "{}", 2);
        set_hdr(h, 49, 128, len, 2, 3);
        expect_code(h, cases[i].code);
    }
    const char *good
        = "[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":-1,\"name\":\"/ok\","
          "\"size\":10,\"byteOffset\":2,\"byteLength\":8}]";
    static_frame(h, 45, good, (uint32_t)strlen(good));
    expect_ok(h);
}

static void test_psb_words_inconsistent_rejected(void **state)
{
    hframe_t *h = *state;
    const uint32_t bad[][8] = {
        {0xFFFFFFFFu, 100, 100, 0, 10, 0, 1, 0xFFFFFFFFu}, /* fd -1 */
        {0x80000000u, 100, 100, 0, 10, 0, 1, 0xFFFFFFFFu}, /* fd negative */
        {3, 100, 100, 60, 41, 0, 1, 0xFFFFFFFFu},          /* offset + length > size */
        {3, 100, 100, 101, 0, 0, 1, 0xFFFFFFFFu},          /* offset > size */
        {3, 0xFFFFFFFFu, 0, 0xFFFFFFFFu, 1, 0, 1, 0},      /* sum overflows 32 bits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static_frame(h, 46, bad[i], sizeof bad[i]);
        expect_corrupt(h);
        assert_non_null(strstr(knit_errmsg(), "ProcessSharedBuffer"));
    }
    const uint32_t good[8] = {3, 100, 100, 60, 40, 0, 1, 0xFFFFFFFFu};
    static_frame(h, 46, good, sizeof good);
    expect_ok(h);
}

/* --- process-local pointer frames ------------------------------------------------------------- */

static void encode_shared(hframe_t *h, knit_shared_buf_t *b)
{
    knit_value_t v = knit_v_shared(b);
    assert_int_equal(knit__encode(&v, h->hdr, h->stat, &h->arena, &h->cfg), 0);
    assert_int_equal(h->hdr[KNIT__W_TAG], 48);
}

static void test_pointer_frame_from_foreign_process_rejected(void **state)
{
    hframe_t *h = *state;
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(64, &b), 0);
    encode_shared(h, b);
    assert_int_equal(knit_shared_buf_refs(b), 2);
    uint8_t good[32];
    memcpy(good, h->stat, sizeof good);
    uint32_t w[8];
    memcpy(w, good, sizeof w);
    assert_int_equal(w[6], (uint32_t)getpid()); /* origin pid */

    w[6] = (uint32_t)getpid() ^ 0x4000u; /* another process */
    memcpy(h->stat, w, sizeof w);
    expect_code(h, KNIT_E_PROCESS_BOUNDARY);
    assert_non_null(strstr(knit_errmsg(), "not produced by this process"));

    memcpy(w, good, sizeof w);
    w[0] ^= 0x10u; /* right pid, wrong cookie: forged or replayed */
    memcpy(h->stat, w, sizeof w);
    expect_code(h, KNIT_E_PROCESS_BOUNDARY);
    memcpy(w, good, sizeof w);
    w[1] ^= 0x80000000u;
    memcpy(h->stat, w, sizeof w);
    expect_code(h, KNIT_E_PROCESS_BOUNDARY);
    assert_int_equal(knit_shared_buf_refs(b), 2); /* nothing adopted */

    /* the same frame with a moved-buffer tag is refused the same way */
    memcpy(w, good, sizeof w);
    w[6] ^= 1u;
    memcpy(h->stat, w, sizeof w);
    h->hdr[KNIT__W_TAG] = 47;
    expect_code(h, KNIT_E_PROCESS_BOUNDARY);

    /* the untouched frame is accepted and hands over the reference */
    memcpy(h->stat, good, sizeof good);
    h->hdr[KNIT__W_TAG] = 48;
    knit_value_t out;
    assert_int_equal(knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out), 0);
    assert_ptr_equal(out.u.shared, b);
    knit_value_free(&out);
    assert_int_equal(knit_shared_buf_refs(b), 1);
    knit_shared_buf_release(b);
}

static void test_pointer_frame_bad_pointer_or_length_rejected(void **state)
{
    hframe_t *h = *state;
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(64, &b), 0);
    encode_shared(h, b);
    uint32_t good[8], w[8];
    memcpy(good, h->stat, sizeof good);

    /* NULL pointer */
    memcpy(w, good, sizeof w);
    w[2] = w[3] = 0;
    memcpy(h->stat, w, sizeof w);
    expect_corrupt(h);
    h->hdr[KNIT__W_TAG] = 47;
    expect_corrupt(h);
    h->hdr[KNIT__W_TAG] = 48;

    /* length that does not match the buffer */
    memcpy(w, good, sizeof w);
    w[4] += 1;
    memcpy(h->stat, w, sizeof w);
    expect_corrupt(h);

    /* a pointer to memory that is not a shared buffer */
    _Alignas(64) static uint8_t not_a_buffer[256];
    uint64_t p = (uint64_t)(uintptr_t)not_a_buffer;
    memcpy(w, good, sizeof w);
    w[2] = (uint32_t)p;
    w[3] = (uint32_t)(p >> 32);
    w[4] = w[5] = 0;
    memcpy(h->stat, w, sizeof w);
    expect_corrupt(h);
    assert_int_equal(knit_shared_buf_refs(b), 2);

    /* a moved-buffer frame whose length disagrees with the holder */
    knit_moved_buf_t *m = NULL;
    assert_int_equal(knit_moved_new(malloc(16), 16, NULL, NULL, &m), 0);
    knit_value_t mv = knit_v_moved(m);
    assert_int_equal(knit__encode(&mv, h->hdr, h->stat, &h->arena, &h->cfg), 0);
    assert_int_equal(h->hdr[KNIT__W_TAG], 47);
    memcpy(w, h->stat, sizeof w);
    w[4] = 17;
    memcpy(h->stat, w, sizeof w);
    expect_corrupt(h);
    w[4] = 16;
    memcpy(h->stat, w, sizeof w);
    knit_value_t out;
    assert_int_equal(knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out), 0);
    knit_value_free(&out); /* default release: free(data) */

    knit_shared_buf_release(b); /* the reference the encoder took */
    knit_shared_buf_release(b);
}

/* --- randomized frames ------------------------------------------------------------------------ */

static void fill_random(knit_test_rng_t *r, uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = knit_test_rand(r);
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)knit_test_rand(r);
}

static uint32_t rand_tag(knit_test_rng_t *r)
{
    switch (knit_test_below(r, 4)) {
    case 0:
        return known_tags[knit_test_below(r, N_KNOWN)];
    case 1:
        return (uint32_t)knit_test_below(r, 80);
    case 2:
        return (uint32_t)knit_test_below(r, 256);
    default:
        return (uint32_t)knit_test_rand(r);
    }
}

static uint32_t rand_start(knit_test_rng_t *r)
{
    switch (knit_test_below(r, 4)) {
    case 0:
        return 0;
    case 1:
        return 64u * (uint32_t)knit_test_below(r, 1100); /* mostly inside, some past the end */
    case 2:
        return (uint32_t)knit_test_below(r, 70000);
    default:
        return (uint32_t)knit_test_rand(r);
    }
}

static uint32_t rand_len(knit_test_rng_t *r)
{
    switch (knit_test_below(r, 5)) {
    case 0:
        return (uint32_t)knit_test_below(r, 40);
    case 1:
        return (uint32_t)knit_test_below(r, 600);
    case 2:
        return (uint32_t)knit_test_below(r, 70000);
    case 3:
        return 512u + (uint32_t)knit_test_below(r, 3) - 1u;
    default:
        return (uint32_t)knit_test_rand(r);
    }
}

static bool allowed_code(int rc)
{
    return rc == 0 || rc == KNIT_E_CORRUPT || rc == KNIT_E_PROCESS_BOUNDARY
        || rc == KNIT_E_UNSUPPORTED;
}

/* Decode once; a failure must leave UNDEFINED; a success is freed. Returns rc. */
static int decode_and_check(hframe_t *h)
{
    knit_value_t out = knit_v_int64(7);
    int rc = knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out);
    if (!allowed_code(rc))
        print_error("tag %u start %u end %u len %u: rc %d (%s)\n", h->hdr[KNIT__W_TAG],
            h->hdr[KNIT__W_START], h->hdr[KNIT__W_END], h->hdr[KNIT__W_LEN], rc, knit_errmsg());
    assert_true(allowed_code(rc));
    if (rc == 0)
        knit_value_free(&out);
    else
        assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
    return rc;
}

static void test_random_frames_never_crash(void **state)
{
    hframe_t *h = *state;
    knit_test_rng_t r = {0x9E3779B97F4A7C15ull};
    const uint64_t iters = knit_test_iters(100000, 2000);
    fill_random(&r, h->mem, ARENA_BYTES);
    uint64_t ok = 0, refused = 0;
    for (uint64_t it = 0; it < iters; it++) {
        fill_random(&r, (uint8_t *)h->hdr, KNIT__HDR_WORDS * sizeof(uint32_t));
        h->hdr[KNIT__W_TAG] = rand_tag(&r);
        if (knit_test_below(&r, 4)) {
            h->hdr[KNIT__W_START] = rand_start(&r);
            h->hdr[KNIT__W_END] = rand_len(&r);
            h->hdr[KNIT__W_LEN] = rand_len(&r);
        }
        fill_random(&r, h->stat, KNIT__STATIC_BYTES);
        if (knit_test_below(&r, 64) == 0) /* refresh part of the arena now and then */
            fill_random(
                &r, knit__arena_at(&h->arena, 64u * (uint32_t)knit_test_below(&r, 990)), 2048);
        h->cfg.process_boundary = knit_test_below(&r, 2);
        if (decode_and_check(h) == 0)
            ok++;
        else
            refused++;
    }
    print_message("random frames: %llu decoded, %llu refused\n", (unsigned long long)ok,
        (unsigned long long)refused);
    /* both outcomes were exercised */
    assert_true(ok > iters / 100);
    assert_true(refused > iters / 100);
}

/* A valid value of a random kind (never SHARED or MOVED: their frames carry raw pointers that a
 * mutation could turn into a wild pointer within this process, which the cookie cannot catch). */
typedef struct gen {
    uint8_t bytes[2048];
    char text[2048];
    char name[64], message[700];
    knit_value_t cause;
    knit_error_value_t err, inner;
    knit_envelope_t env;
    knit_psb_desc_t psb;
} gen_t;

static knit_value_t rand_value(knit_test_rng_t *r, gen_t *g)
{
    size_t n = (size_t)knit_test_below(r, knit_test_below(r, 2) ? 600 : sizeof g->bytes);
    switch (knit_test_below(r, 11)) {
    case 0:
        return knit_v_int64((int64_t)knit_test_rand(r));
    case 1:
        return knit_v_f64((double)(int64_t)knit_test_rand(r) / 7.0);
    case 2:
        return knit_v_strn(g->text, n);
    case 3:
        return knit_v_jsonn(g->text, n);
    case 4:
        return knit_v_bytes(g->bytes, n);
    case 5: {
        knit_elem_t e = (knit_elem_t)knit_test_below(r, KNIT_ELEM_COUNT_);
        size_t es = knit_elem_size(e);
        return knit_v_typed(e, g->bytes, n / es * es);
    }
    case 6:
        g->bytes[n > 0 ? n - 1 : 0] |= 1;
        return knit_v_bigint(knit_test_below(r, 2), g->bytes, n);
    case 7: {
        size_t ml = (size_t)knit_test_below(r, sizeof g->message);
        memcpy(g->message, g->text, ml);
        g->message[ml] = 0;
        memcpy(g->name, g->text + 100, 20);
        g->name[20] = 0;
        g->inner = (knit_error_value_t) {.name = "Inner", .message = g->name};
        switch (knit_test_below(r, 4)) {
        case 0:
            g->cause = knit_v_int64((int64_t)knit_test_rand(r));
            break;
        case 1:
            g->cause = knit_v_strn(g->text, (size_t)knit_test_below(r, 100));
            break;
        case 2:
            g->cause = knit_v_error(&g->inner);
            break;
        default:
            g->cause = knit_v_f64(1.25);
            break;
        }
        g->err = (knit_error_value_t) {.name = g->name, .message = g->message, .cause = &g->cause};
        return knit_v_error(&g->err);
    }
    case 8:
    case 9: {
        size_t hl = (size_t)knit_test_below(r, 800);
        g->psb = (knit_psb_desc_t) {
            .fd = (int32_t)knit_test_below(r, 100) - 1, .size = 4096, .offset = 64, .length = 128};
        if (g->psb.fd < 0 || knit_test_below(r, 2))
            snprintf(g->psb.name, sizeof g->psb.name, "/knit-fuzz-%u",
                (unsigned)knit_test_below(r, 1000));
        g->env = (knit_envelope_t) {.header = g->text,
            .header_len = hl,
            .body = knit_test_below(r, 2) ? knit_v_bytes(g->bytes, n) : knit_v_psb(&g->psb),
            .header_kind = (uint8_t)knit_test_below(r, 2)};
        return knit_test_below(r, 3) ? knit_v_envelope(&g->env) : knit_v_psb(&g->psb);
    }
    default:
        return knit_v_date((double)knit_test_below(r, 1u << 30));
    }
}

static void test_mutated_frames_never_crash(void **state)
{
    hframe_t *h = *state;
    knit_test_rng_t r = {0xD1B54A32D192ED03ull};
    gen_t *g = calloc(1, sizeof *g);
    fill_random(&r, g->bytes, sizeof g->bytes);
    for (size_t i = 0; i < sizeof g->text; i++)
        g->text[i] = (char)(' ' + knit_test_below(&r, 95)); /* printable ASCII, no quotes needed */
    const uint64_t iters = knit_test_iters(100000, 2000);
    uint64_t ok = 0, refused = 0;
    for (uint64_t it = 0; it < iters; it++) {
        hf_reset_arena(h);
        h->cfg.process_boundary = knit_test_below(&r, 2);
        knit_value_t v = rand_value(&r, g);
        memset(h->hdr, 0, KNIT__HDR_WORDS * sizeof(uint32_t));
        assert_int_equal(knit__encode(&v, h->hdr, h->stat, &h->arena, &h->cfg), 0);
        uint32_t region_bytes = h->hdr[KNIT__W_LEN] + 64;
        int mutations = 1 + (int)knit_test_below(&r, 4);
        for (int m = 0; m < mutations; m++) {
            switch (knit_test_below(&r, 4)) {
            case 0: { /* a header word: flip a bit, nudge it, or replace it */
                uint32_t *w = &h->hdr[KNIT__W_TAG + knit_test_below(&r, 5)];
                uint32_t how = (uint32_t)knit_test_below(&r, 3);
                *w = how == 0  ? *w ^ (1u << knit_test_below(&r, 32))
                    : how == 1 ? *w + (uint32_t)knit_test_below(&r, 3) - 1u
                               : (uint32_t)knit_test_rand(&r);
                break;
            }
            case 1:
            case 2: /* a byte of the static area */
                h->stat[knit_test_below(&r, KNIT__STATIC_BYTES)] = (uint8_t)knit_test_rand(&r);
                break;
            default: { /* a byte of the written region */
                uint32_t at = h->hdr[KNIT__W_START] + (uint32_t)knit_test_below(&r, region_bytes);
                if (at < USABLE)
                    *knit__arena_at(&h->arena, at) = (uint8_t)knit_test_rand(&r);
                break;
            }
            }
        }
        if (decode_and_check(h) == 0)
            ok++;
        else
            refused++;
    }
    print_message("mutated frames: %llu decoded, %llu refused\n", (unsigned long long)ok,
        (unsigned long long)refused);
    assert_true(ok > iters / 100);
    assert_true(refused > iters / 100);
    free(g);
}

#define T(name) cmocka_unit_test_setup_teardown(name, hf_setup, hf_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_unknown_tags_rejected),
        T(test_static_length_over_512_rejected),
        T(test_region_start_not_64_aligned_rejected),
        T(test_region_beyond_arena_rejected),
        T(test_typed_length_not_whole_elements_rejected),
        T(test_bigint_without_sign_byte_rejected),
        T(test_error_payload_garbage_rejected),
        T(test_external_payload_garbage_rejected),
        T(test_psb_words_inconsistent_rejected),
        T(test_pointer_frame_from_foreign_process_rejected),
        T(test_pointer_frame_bad_pointer_or_length_rejected),
        T(test_random_frames_never_crash),
        T(test_mutated_frames_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
