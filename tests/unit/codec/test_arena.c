/*
 * Payload arenas and their region allocator (codec/arena.{h,c}; knitting-internals 1.3, 1.7, 3.4,
 * 3.5): table packing and placement, reuse of freed regions, the all-free reset, the toggle
 * words, capacity growth and its bounds, and randomised stress with the allocator and the freer
 * as separate parties over one lock sector.
 */
#include "testutil.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/arena.h"
#include "codec/codec.h"
#include "codec/frame.h"
#include "transports/shm/layout.h"
#include "transports/shm/queue.h"
#include "transports/shm/shm_lane.h"

#define START_OF(e) ((e) & ~(uint32_t)31u)
#define INDEX_OF(e) ((e)&31u)

/* A literal list as two arguments: the array and its length. */
#define U64S(...) (const uint64_t[]) {__VA_ARGS__}, sizeof((const uint64_t[]) {__VA_ARGS__}) / 8
#define U32S(...) (const uint32_t[]) {__VA_ARGS__}, sizeof((const uint32_t[]) {__VA_ARGS__}) / 4

static uint64_t align64(uint64_t n)
{
    return (n + 63u) & ~(uint64_t)63u;
}

/* --- fixture: one lock sector and an arena, outside any lane ------------------------------ */

/* The allocator computes offsets only; arenas whose bytes are never touched use this base. */
static uint8_t untouched_base[64];

typedef struct afx {
    knit__sector_t *sec;
    uint8_t *mem; /* arena bytes, or NULL when the test never touches them */
    knit__arena_t a;
} afx_t;

static void afx_open(afx_t *f, uint64_t max_bytes, uint64_t initial, bool backed)
{
    f->sec = aligned_alloc(64, sizeof *f->sec);
    assert_non_null(f->sec);
    memset(f->sec, 0, sizeof *f->sec);
    f->mem = backed ? calloc(1, max_bytes) : NULL;
    if (backed)
        assert_non_null(f->mem);
    knit__arena_init(&f->a, backed ? f->mem : untouched_base, max_bytes, initial,
        &f->sec->alloc_host.word, &f->sec->alloc_free.word);
}

static void afx_close(afx_t *f)
{
    free(f->mem);
    free(f->sec);
}

static uint32_t alloc_ok(knit__arena_t *a, uint64_t bytes, uint32_t *start)
{
    uint32_t index = 99, s = 0;
    int rc = knit__arena_alloc(a, bytes, &index, &s);
    if (rc != 0)
        fail_msg("alloc of %" PRIu64 " bytes failed with %d: %s", bytes, rc, knit_errmsg());
    assert_true(index < 32);
    if (start)
        *start = s;
    return index;
}

static void free_region(knit__arena_t *a, uint32_t index)
{
    knit__arena_free(a->free_bits, index);
}

/* Toggle state of the shared words: bit r set = region r live. */
static uint32_t toggle_state(const knit__arena_t *a)
{
    return atomic_load(a->alloc_bits) ^ atomic_load(a->free_bits);
}

/* The table holds exactly `n` entries, equal to `want` (start | index), in order. */
static void assert_table(const knit__arena_t *a, const uint32_t *want, uint32_t n)
{
    assert_int_equal(a->table_len, n);
    for (uint32_t i = 0; i < n; i++) {
        if (a->table[i] != want[i])
            fail_msg("table[%u] = %u|%u, want %u|%u", i, START_OF(a->table[i]),
                INDEX_OF(a->table[i]), START_OF(want[i]), INDEX_OF(want[i]));
    }
}

/* Allocate regions of the given sizes; index i must come back as i. */
static void alloc_sizes(knit__arena_t *a, const uint64_t *sizes, size_t n, uint32_t *starts)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t s;
        assert_int_equal(alloc_ok(a, sizes[i], &s), i);
        if (starts)
            starts[i] = s;
    }
}

/* A 1 MiB arena whose bytes are never touched, holding regions of `sizes` (see alloc_sizes). */
static void afx_open_sized(afx_t *f, const uint64_t *sizes, size_t n, uint32_t *starts)
{
    afx_open(f, 1 << 20, 1 << 20, false);
    alloc_sizes(&f->a, sizes, n, starts);
}

static void free_regions(knit__arena_t *a, const uint32_t *index, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free_region(a, index[i]);
}

/* The next region of `bytes` comes back as `index` at `start`. */
static void expect_alloc(knit__arena_t *a, uint64_t bytes, uint32_t index, uint64_t start)
{
    uint32_t s;
    assert_int_equal(alloc_ok(a, bytes, &s), index);
    assert_int_equal(s, start);
}

/* --- the lock sector ------------------------------------------------------------------------ */

static void test_allocator_words_sit_at_sector_128_and_192(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 20};
    knit_test_lane_t *l = knit_test_lane_open(&cfg);
    knit__ctrl_t *c = knit__shm_ctrl(&l->lane);

    assert_int_equal(sizeof(knit__sector_t), 256);
    const uint8_t *req = (const uint8_t *)&c->req, *ret = (const uint8_t *)&c->ret;
    /* queue words at +0/+64, allocator words at +128/+192, for both locks */
    assert_ptr_equal((const uint8_t *)l->host.tx.h, req + 0);
    assert_ptr_equal((const uint8_t *)l->host.tx.w, req + 64);
    assert_ptr_equal((const uint8_t *)l->host.tx_arena.alloc_bits, req + 128);
    assert_ptr_equal((const uint8_t *)l->host.tx_arena.free_bits, req + 192);
    assert_ptr_equal((const uint8_t *)l->worker.tx_arena.alloc_bits, ret + 128);
    assert_ptr_equal((const uint8_t *)l->worker.tx_arena.free_bits, ret + 192);
    /* the reader of an arena frees through the same word its writer watches */
    assert_ptr_equal(l->worker.rx_arena.free_bits, l->host.tx_arena.free_bits);
    assert_ptr_equal(l->host.rx_arena.free_bits, l->worker.tx_arena.free_bits);

    /* allocating and freeing moves only the allocator words, never the queue words */
    uint32_t start;
    uint32_t idx = alloc_ok(&l->host.tx_arena, 100, &start);
    assert_int_equal(idx, 0);
    assert_int_equal(atomic_load(&c->req.alloc_host.word), 1);
    assert_int_equal(atomic_load(&c->req.alloc_free.word), 0);
    knit__arena_free(l->worker.rx_arena.free_bits, idx);
    assert_int_equal(atomic_load(&c->req.alloc_free.word), 1);
    assert_int_equal(atomic_load(&c->req.q_host.word), 0);
    assert_int_equal(atomic_load(&c->req.q_worker.word), 0);
    assert_int_equal(atomic_load(&c->ret.alloc_host.word), 0);
    assert_int_equal(atomic_load(&c->ret.alloc_free.word), 0);
    knit_test_lane_close(l);
}

/* --- table packing and starts ---------------------------------------------------------------- */

static void test_table_packs_start_and_index(void **state)
{
    (void)state;
    afx_t f;
    const uint64_t sizes[] = {634, 43, 152, 54};
    afx_open_sized(&f, sizes, 4, NULL);
    /* starts are the cumulative 64-aligned sizes: 0, 640, 704, 896 */
    assert_table(&f.a, U32S(0 | 0, 640 | 1, 704 | 2, 896 | 3));
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(f.a.size[i], align64(sizes[i]));
    afx_close(&f);
}

static void test_starts_are_cumulative_aligned_sizes(void **state)
{
    (void)state;
    afx_t f;
    const uint64_t sizes[] = {64, 453, 64, 64, 1, 4096, 65};
    uint32_t starts[7];
    afx_open_sized(&f, sizes, 7, starts);
    uint64_t expect = 0;
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(starts[i], expect);
        assert_int_equal(starts[i] % 64, 0);
        expect += align64(sizes[i]);
    }
    afx_close(&f);
}

static void test_encode_copies_start_into_word_3_and_index_into_word_6(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, 1 << 20, 1 << 20, true);
    knit__codec_cfg_t cfg = {.max_payload_bytes = 1 << 17};
    uint8_t payload[3][1000];
    uint8_t stat[KNIT__STATIC_BYTES];
    for (int k = 0; k < 3; k++) {
        memset(payload[k], 0x40 + k, sizeof payload[k]);
        uint32_t hdr[KNIT__HDR_WORDS] = {0};
        knit__hdr_set_stamp(hdr, 4321);
        knit_value_t v = knit_v_bytes(payload[k], sizeof payload[k]);
        assert_int_equal(knit__encode(&v, hdr, stat, &f.a, &cfg), 0);
        assert_true(knit__tag_is_dynamic(hdr[KNIT__W_TAG]));
        uint32_t idx = hdr[KNIT__W_META] & KNIT__META_REGION_MASK;
        assert_int_equal(idx, (uint32_t)k);
        assert_int_equal(knit__hdr_stamp(hdr), 4321); /* region index left the stamp alone */
        /* word 3 is the start recorded in the allocator table for that index */
        bool found = false;
        for (uint32_t i = 0; i < f.a.table_len; i++) {
            if (INDEX_OF(f.a.table[i]) == idx) {
                assert_int_equal(hdr[KNIT__W_START], START_OF(f.a.table[i]));
                found = true;
            }
        }
        assert_true(found);
        assert_memory_equal(knit__arena_at(&f.a, hdr[KNIT__W_START]), payload[k], 1000);
        if (k > 0)
            assert_true(hdr[KNIT__W_START] >= 1000u * (uint32_t)k);
    }
    afx_close(&f);
}

static void test_offsets_past_2_31_are_unsigned(void **state)
{
    (void)state;
    const uint64_t len = 70000001, stride = align64(len);
    afx_t f;
    afx_open(&f, KNIT__ARENA_RESERVED + 32 * stride, 4 << 20, false);
    for (uint32_t i = 0; i < 32; i++)
        expect_alloc(&f.a, len, i, stride * i);
    assert_true(START_OF(f.a.table[31]) > 0x7FFFFFFFu);
    assert_int_equal(START_OF(f.a.table[31]), 31 * stride);
    assert_int_equal(f.a.capacity, f.a.max_bytes);
    assert_int_equal(knit__arena_live(&f.a), 32);
    afx_close(&f);
}

static void test_size_63_rounds_to_64(void **state)
{
    (void)state;
    afx_t f;
    uint32_t starts[5];
    afx_open_sized(&f, U64S(63, 1, 64, 65, 0), starts);
    assert_int_equal(f.a.size[0], 64);
    assert_int_equal(starts[1], 64);
    assert_int_equal(f.a.size[1], 64);
    assert_int_equal(starts[2], 128);
    assert_int_equal(starts[3], 192);
    assert_int_equal(f.a.size[3], 128);
    assert_int_equal(starts[4], 320); /* an empty request still takes one 64-byte unit */
    assert_int_equal(f.a.size[4], 64);
    afx_close(&f);
}

/* --- removal keeps order --------------------------------------------------------------------- */

static void test_removing_front_entries_keeps_the_rest_in_order(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(634, 64, 64, 64, 64, 64), NULL); /* 0, 640, 704, 768, 832, 896 */
    free_regions(&f.a, U32S(0, 1));
    /* 768 bytes fit neither freed entry exactly nor the 704-byte gap they leave: the table is
     * compacted and the new region goes after the last survivor, under the lowest free index */
    expect_alloc(&f.a, 768, 0, 960);
    assert_table(&f.a, U32S(704 | 2, 768 | 3, 832 | 4, 896 | 5, 960 | 0));
    assert_int_equal(f.a.used_bits, 0x3Du);
    afx_close(&f);
}

static void test_removing_back_entries_keeps_the_rest_in_order(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(64, 64, 64, 64, 64, 64), NULL);
    free_regions(&f.a, U32S(4, 5));
    expect_alloc(&f.a, 128, 4, 256); /* right after the last survivor, not after the freed tail */
    assert_table(&f.a, U32S(0 | 0, 64 | 1, 128 | 2, 192 | 3, 256 | 4));
    afx_close(&f);
}

static void test_removing_middle_entries_keeps_the_rest_in_order(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(64, 64, 64, 64, 64, 64), NULL);
    free_regions(&f.a, U32S(1, 2));
    expect_alloc(&f.a, 192, 1, 384); /* the 128-byte hole is too small */
    assert_table(&f.a, U32S(0 | 0, 192 | 3, 256 | 4, 320 | 5, 384 | 1));
    afx_close(&f);
}

static void test_freed_trailing_entries_leave_the_table(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(64, 64, 64, 64), NULL);
    free_regions(&f.a, U32S(1, 3));
    assert_int_equal(knit__arena_live(&f.a), 2);
    /* the freed trailing entry (index 3 at 192) is gone: its bytes hold the new region */
    expect_alloc(&f.a, 192, 1, 192);
    assert_table(&f.a, U32S(0 | 0, 128 | 2, 192 | 1));
    assert_int_equal(f.a.used_bits, 0x7u);
    assert_int_equal(knit__arena_live(&f.a), 3);
    afx_close(&f);
}

/* --- reuse -------------------------------------------------------------------------------------
 */

static void test_exact_size_reuses_start_in_place_under_new_index(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(64, 128, 64), NULL); /* 0, 64, 192 */
    free_region(&f.a, 1);
    /* exact fit: same bytes, new index = lowest index not tracked (1 is still tracked) */
    expect_alloc(&f.a, 100, 3, 64);
    assert_table(&f.a, U32S(0 | 0, 64 | 3, 192 | 2));
    assert_int_equal(f.a.used_bits, 0xDu); /* old index 1 dropped */
    assert_int_equal(toggle_state(&f.a), 0xDu);
    /* index 1 is free for the next region, which appends */
    expect_alloc(&f.a, 64, 1, 256);
    assert_int_equal(toggle_state(&f.a), 0xFu);
    afx_close(&f);
}

static void test_first_fitting_gap_is_used(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(64, 64, 64, 256, 64, 64), NULL); /* 0, 64, 128, 192, 448, 512 */
    free_region(&f.a, 1);                                    /* 64-byte hole at 64 */
    free_region(&f.a, 3);                                    /* 256-byte hole at 192 */
    expect_alloc(&f.a, 128, 1, 192); /* the first hole that fits, not the first hole */
    assert_table(&f.a, U32S(0 | 0, 128 | 2, 192 | 1, 448 | 4, 512 | 5));
    /* the hole at 64 is still found by a region that fits it */
    expect_alloc(&f.a, 64, 3, 64);
    afx_close(&f);
}

static void test_compaction_merges_freed_neighbours_before_appending(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(64, 64, 64, 64), NULL); /* 0, 64, 128, 192 */
    free_regions(&f.a, U32S(1, 2));
    /* neither freed entry is 128 bytes, but together they leave a 128-byte gap */
    expect_alloc(&f.a, 96, 1, 64);
    assert_table(&f.a, U32S(0 | 0, 64 | 1, 192 | 3));
    afx_close(&f);
}

static void test_all_free_resets_to_offset_zero(void **state)
{
    (void)state;
    afx_t f;
    afx_open_sized(&f, U64S(64, 128, 320), NULL);
    free_regions(&f.a, U32S(0, 2, 1));
    assert_int_equal(knit__arena_live(&f.a), 0);
    expect_alloc(&f.a, 96, 0, 0);
    assert_table(&f.a, U32S(0 | 0));
    assert_int_equal(f.a.used_bits, 1u);
    assert_int_equal(toggle_state(&f.a), 1u);
    afx_close(&f);
}

static void test_append_continues_after_tail_frees(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, 1 << 20, 1 << 20, false);
    uint32_t s0, s1;
    uint32_t i0 = alloc_ok(&f.a, 64, &s0), i1 = alloc_ok(&f.a, 128, &s1);
    free_region(&f.a, i0);
    free_region(&f.a, i1);
    uint32_t reset, ta, tb, tc;
    alloc_ok(&f.a, 96, &reset);
    assert_int_equal(reset, 0);
    alloc_ok(&f.a, 64, &ta);
    uint32_t ib = alloc_ok(&f.a, 64, &tb);
    assert_int_equal(ta, 128);
    assert_int_equal(tb, 192);
    free_region(&f.a, ib);
    /* a different size: the freed tail is collected and the region appends right after the
     * last survivor, where the freed one was */
    alloc_ok(&f.a, 128, &tc);
    assert_int_equal(tc, 192);
    /* and an exact size reuses a freed tail in place */
    uint32_t ic = INDEX_OF(f.a.table[f.a.table_len - 1]);
    free_region(&f.a, ic);
    uint32_t td;
    alloc_ok(&f.a, 128, &td);
    assert_int_equal(td, 192);
    alloc_ok(&f.a, 64, &td);
    assert_int_equal(td, 320);
    afx_close(&f);
}

static void test_set_len_shrinks_region_and_exposes_gap(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, 1 << 20, 1 << 20, false);
    uint32_t s0, s1, s2;
    uint32_t first = alloc_ok(&f.a, 700 * 3, &s0);
    alloc_ok(&f.a, 64, &s1);
    assert_int_equal(s1, align64(700 * 3));
    knit__arena_set_len(&f.a, first, 700);
    assert_int_equal(f.a.size[first], 704);
    alloc_ok(&f.a, 128, &s2);
    assert_int_equal(s2, 704);
    afx_close(&f);
}

/* The 33rd live region is refused as back-pressure (KNIT_E_FULL): only arguments read in
 * place keep regions past their slot, and the worker frees them before it answers. */
static void test_33rd_live_region_fails_then_recovers(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, 1 << 20, 1 << 20, false);
    for (uint32_t i = 0; i < 32; i++)
        expect_alloc(&f.a, 64, i, 64 * i);
    assert_int_equal(toggle_state(&f.a), 0xFFFFFFFFu);
    uint32_t idx = 77, start = 77, host_before = f.a.host_last;
    assert_int_equal(knit__arena_alloc(&f.a, 64, &idx, &start), KNIT_E_FULL);
    assert_non_null(strstr(knit_errmsg(), "32"));
    assert_int_equal(idx, 77); /* outputs untouched on failure */
    assert_int_equal(start, 77);
    assert_int_equal(f.a.host_last, host_before);
    assert_int_equal(f.a.table_len, 32);
    assert_int_equal(knit__arena_live(&f.a), 32);
    free_region(&f.a, 17);
    assert_int_equal(alloc_ok(&f.a, 64, &start), 17);
    assert_int_equal(start, 17 * 64);
    assert_int_equal(toggle_state(&f.a), 0xFFFFFFFFu);
    afx_close(&f);
}

/* --- randomised stress --------------------------------------------------------------------- */

typedef struct live_region {
    bool live;
    uint32_t start;
    uint32_t size; /* 64-aligned bytes we own */
    uint8_t fill;
} live_region_t;

typedef struct stress_model {
    live_region_t r[32];
    unsigned n;
} stress_model_t;

/* Every invariant the allocator promises, checked against the model. */
static void check_allocator(
    const knit__arena_t *a, const stress_model_t *m, uint64_t seed, uint64_t step)
{
    uint32_t st = toggle_state(a);
    KNIT_TEST_CHECK(seed, step, knit_test_popcount32(st) == m->n,
        "popcount(alloc ^ free) = %u, live = %u", knit_test_popcount32(st), m->n);
    KNIT_TEST_CHECK(seed, step, knit__arena_live(a) == m->n, "knit__arena_live = %u, live = %u",
        knit__arena_live(a), m->n);
    uint32_t live_bits = 0;
    for (uint32_t i = 0; i < 32; i++) {
        if (!m->r[i].live)
            continue;
        live_bits |= 1u << i;
        uint64_t ei = (uint64_t)m->r[i].start + m->r[i].size;
        KNIT_TEST_CHECK(seed, step, ei + KNIT__ARENA_RESERVED <= a->capacity,
            "region %u ends at %" PRIu64 ", past the capacity %" PRIu64, i, ei, a->capacity);
        for (uint32_t j = i + 1; j < 32; j++) {
            if (!m->r[j].live)
                continue;
            uint64_t ej = (uint64_t)m->r[j].start + m->r[j].size;
            KNIT_TEST_CHECK(seed, step, ei <= m->r[j].start || ej <= m->r[i].start,
                "live regions %u [%u, %" PRIu64 ") and %u [%u, %" PRIu64 ") overlap", i,
                m->r[i].start, ei, j, m->r[j].start, ej);
        }
    }
    KNIT_TEST_CHECK(seed, step, st == live_bits, "toggle state %#x, model %#x", st, live_bits);
    /* the table is sorted, each index appears once, and live entries carry the model's start */
    uint32_t seen = 0, live_in_table = 0;
    KNIT_TEST_CHECK(seed, step, a->table_len <= 32, "table_len %u", a->table_len);
    for (uint32_t i = 0; i < a->table_len; i++) {
        uint32_t e = a->table[i], x = INDEX_OF(e);
        KNIT_TEST_CHECK(seed, step, !(seen & (1u << x)), "index %u twice in the table", x);
        seen |= 1u << x;
        if (i > 0)
            KNIT_TEST_CHECK(
                seed, step, START_OF(a->table[i - 1]) < START_OF(e), "table not sorted at %u", i);
        if (m->r[x].live) {
            live_in_table++;
            KNIT_TEST_CHECK(seed, step, START_OF(e) == m->r[x].start,
                "table start %u for index %u, model %u", START_OF(e), x, m->r[x].start);
        }
    }
    KNIT_TEST_CHECK(seed, step, live_in_table == m->n, "%u live entries in the table, model %u",
        live_in_table, m->n);
    KNIT_TEST_CHECK(seed, step, (a->used_bits & live_bits) == live_bits,
        "used_bits %#x misses live %#x", a->used_bits, live_bits);
}

/* Allocate `bytes` for the model; checks the single-bit toggle and fills the bytes when the
 * arena is backed. Optionally shrinks the region to `written`. */
static void stress_alloc(knit__arena_t *a, stress_model_t *m, uint64_t bytes, uint64_t written,
    bool backed, uint64_t seed, uint64_t step)
{
    uint32_t host_before = atomic_load(a->alloc_bits);
    uint32_t busy_before = toggle_state(a);
    uint32_t idx = 0, start = 0;
    int rc = knit__arena_alloc(a, bytes, &idx, &start);
    KNIT_TEST_CHECK(seed, step, rc == 0, "alloc of %" PRIu64 " bytes with %u live failed: %s",
        bytes, m->n, knit_errmsg());
    uint32_t toggled = host_before ^ atomic_load(a->alloc_bits);
    KNIT_TEST_CHECK(
        seed, step, toggled == 1u << idx, "alloc toggled %#x for index %u", toggled, idx);
    KNIT_TEST_CHECK(seed, step, !(busy_before & toggled), "index %u was live before", idx);
    KNIT_TEST_CHECK(seed, step, !m->r[idx].live, "index %u handed out twice", idx);
    KNIT_TEST_CHECK(seed, step, start % 64 == 0, "start %u not 64-aligned", start);
    uint64_t size = align64(bytes ? bytes : 1);
    if (written && written < bytes) {
        knit__arena_set_len(a, idx, written);
        size = align64(written);
    }
    live_region_t *r = &m->r[idx];
    r->live = true;
    r->start = start;
    r->size = (uint32_t)size;
    r->fill = (uint8_t)(step * 7 + 1);
    if (r->fill == 0)
        r->fill = 1;
    if (backed)
        memset(knit__arena_at(a, start), r->fill, size);
    m->n++;
}

/* Free through `free_bits` (the allocator's own word pointer or a reader's); verifies the
 * bytes were not overwritten while the region was live. */
static void stress_free(const knit__arena_t *a, _Atomic uint32_t *free_bits, stress_model_t *m,
    uint32_t idx, bool backed, uint64_t seed, uint64_t step)
{
    live_region_t *r = &m->r[idx];
    if (backed) {
        /* sizes are multiples of 64: compare eight bytes at a time */
        const uint8_t *p = knit__arena_at(a, r->start);
        const uint64_t want = 0x0101010101010101ull * r->fill;
        for (uint32_t k = 0; k < r->size; k += 8) {
            uint64_t word;
            memcpy(&word, p + k, 8);
            KNIT_TEST_CHECK(seed, step, word == want,
                "region %u bytes [%u, +8) are %#" PRIx64 ", want %#" PRIx64
                ": another region wrote them",
                idx, k, word, want);
        }
    }
    knit__arena_free(free_bits, idx);
    r->live = false;
    m->n--;
}

static uint32_t pick_live(const stress_model_t *m, knit_test_rng_t *rng)
{
    uint64_t k = knit_test_below(rng, m->n);
    for (uint32_t i = 0; i < 32; i++)
        if (m->r[i].live && k-- == 0)
            return i;
    fail_msg("model has %u live regions but none was found", m->n);
    return 0;
}

static void test_random_stress_no_overlap_and_popcount_equals_live(void **state)
{
    (void)state;
    const uint64_t seed = 0xC0FFEE12u;
    knit_test_rng_t rng = {seed};
    afx_t f;
    afx_open(&f, 1 << 20, 16 << 10, true);
    stress_model_t m = {0};
    uint64_t steps = knit_test_iters(200000, 4000);
    uint64_t shrinks = 0, full_rounds = 0;
    for (uint64_t step = 0; step < steps; step++) {
        bool do_alloc = m.n == 0 || (m.n < 32 && (knit_test_rand(&rng) & 1));
        if (do_alloc) {
            uint64_t bytes = 1 + knit_test_below(&rng, 8192);
            uint64_t written = 0;
            if (knit_test_below(&rng, 4) == 0) {
                written = 1 + knit_test_below(&rng, bytes);
                shrinks++;
            }
            stress_alloc(&f.a, &m, bytes, written, true, seed, step);
            if (m.n == 32)
                full_rounds++;
        } else {
            stress_free(&f.a, f.a.free_bits, &m, pick_live(&m, &rng), true, seed, step);
        }
        check_allocator(&f.a, &m, seed, step);
    }
    assert_true(shrinks > 0);
    assert_true(full_rounds > 0); /* the run reached 32 live regions at least once */
    /* drain, then refill all 32 indices from offset 0 */
    while (m.n)
        stress_free(&f.a, f.a.free_bits, &m, pick_live(&m, &rng), true, seed, steps);
    check_allocator(&f.a, &m, seed, steps);
    for (uint32_t i = 0; i < 32; i++) {
        stress_alloc(&f.a, &m, 64, 0, true, seed, steps + i);
        assert_int_equal(m.r[i].start, 64 * i);
    }
    check_allocator(&f.a, &m, seed, steps + 32);
    afx_close(&f);
}

/* registerDesync: the allocator (encoder) and the freer (decoder) are different parties that
 * share only the lock sector: here the host endpoint's writer arena and the worker endpoint's
 * reader arena over one lane. With `shared` the allocator frees through its own pointer. */
static void desync_run(bool shared, uint64_t seed)
{
    knit__lane_cfg_t cfg = {.payload_max_bytes = 4 << 20};
    knit_test_lane_t *l = knit_test_lane_open(&cfg);
    knit__arena_t *enc = &l->host.tx_arena;
    _Atomic uint32_t *freer = shared ? enc->free_bits : l->worker.rx_arena.free_bits;

    knit_test_rng_t rng = {seed};
    stress_model_t m = {0};
    uint64_t steps = knit_test_iters(50000, 5000);
    for (uint64_t step = 0; step < steps; step++) {
        bool do_alloc = m.n == 0 || (m.n < 30 && (knit_test_rand(&rng) & 1));
        if (do_alloc)
            stress_alloc(enc, &m, 64 + knit_test_below(&rng, 4096), 0, true, seed, step);
        else
            stress_free(enc, freer, &m, pick_live(&m, &rng), true, seed, step);
        check_allocator(enc, &m, seed, step);
    }
    knit_test_lane_close(l);
}

static void test_desync_separate_allocator_and_freer_stay_consistent(void **state)
{
    (void)state;
    desync_run(false, 0xDEADBEEFu);
}

static void test_desync_single_shared_instance_stays_consistent(void **state)
{
    (void)state;
    desync_run(true, 0xDEADBEEFu);
}

static void bulk_free_then_realloc(bool shared)
{
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 20};
    knit_test_lane_t *l = knit_test_lane_open(&cfg);
    knit__arena_t *enc = &l->host.tx_arena;
    _Atomic uint32_t *freer = shared ? enc->free_bits : l->worker.rx_arena.free_bits;
    uint32_t idx[30];
    for (uint32_t i = 0; i < 30; i++)
        idx[i] = alloc_ok(enc, 64, NULL);
    assert_int_equal(knit__arena_live(enc), 30);
    for (uint32_t i = 0; i < 30; i++)
        knit__arena_free(freer, idx[i]);
    assert_int_equal(knit__arena_live(enc), 0);
    assert_int_equal(toggle_state(enc), 0);
    for (uint32_t i = 0; i < 30; i++)
        expect_alloc(enc, 64, i, 64 * i); /* restarted at offset 0 */
    assert_int_equal(knit__arena_live(enc), 30);
    assert_int_equal(knit_test_popcount32(toggle_state(enc)), 30);
    knit_test_lane_close(l);
}

static void test_desync_bulk_free_then_realloc_separate_instances(void **state)
{
    (void)state;
    bulk_free_then_realloc(false);
}

static void test_desync_bulk_free_then_realloc_single_instance(void **state)
{
    (void)state;
    bulk_free_then_realloc(true);
}

static void test_desync_toggle_bits_match_live_count_in_rounds(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 20};
    knit_test_lane_t *l = knit_test_lane_open(&cfg);
    stress_model_t m = {0};
    for (uint64_t round = 0; round < 20; round++) {
        for (int i = 0; i < 8 && m.n < 32; i++)
            stress_alloc(&l->host.tx_arena, &m, 128, 0, true, 0, round);
        /* the reader frees the four lowest live indices */
        for (int k = 0; k < 4; k++) {
            uint32_t i = 0;
            while (!m.r[i].live)
                i++;
            stress_free(&l->host.tx_arena, l->worker.rx_arena.free_bits, &m, i, true, 0, round);
        }
        check_allocator(&l->host.tx_arena, &m, 0, round);
    }
    knit_test_lane_close(l);
}

/* --- payload-arena-reuse: many 2 KiB payloads through a 64 KiB fixed arena ------------------ */

#define REUSE_PAYLOAD 2048u

static uint8_t reuse_byte(uint32_t id, uint32_t j)
{
    return (uint8_t)(id * 37u + j * 11u + (j >> 8) + 1u);
}

typedef struct reuse_run {
    knit_test_lane_t *l;
    uint8_t *delivered;
    uint32_t n;
    uint64_t seed;
    uint32_t in_flight_start[32]; /* per queue slot, for the aliasing check at publish time */
    bool in_flight[32];
    uint64_t arena_full, queue_full, taken;
} reuse_run_t;

/* The worker takes up to `max` frames in queue order: copies each payload out of the arena,
 * frees its region at once, checks it, then acknowledges the batch with one store. */
static unsigned reuse_consume(reuse_run_t *r, unsigned max)
{
    knit__qcons_t *c = &r->l->worker.rx;
    uint32_t pending = knit__qcons_pending(c), taken = 0;
    unsigned n = 0;
    uint8_t copy[REUSE_PAYLOAD];
    while (pending && n < max) {
        unsigned i = knit__qcons_next(c, pending);
        pending &= ~(1u << i);
        uint32_t hdr[KNIT__HDR_WORDS];
        memcpy(hdr, r->l->worker.rx_slab[i].hdr, sizeof hdr);
        uint32_t id = hdr[KNIT__W_ID], start = hdr[KNIT__W_START], len = hdr[KNIT__W_LEN];
        KNIT_TEST_CHECK(r->seed, r->taken, id < r->n, "slot %u carries id %u", i, id);
        KNIT_TEST_CHECK(r->seed, r->taken, len == REUSE_PAYLOAD, "id %u: length %u", id, len);
        KNIT_TEST_CHECK(r->seed, r->taken,
            (uint64_t)start + len <= knit__arena_usable(&r->l->worker.rx_arena),
            "id %u: region [%u, +%u) outside the arena", id, start, len);
        memcpy(copy, knit__arena_at(&r->l->worker.rx_arena, start), len);
        knit__arena_free(
            r->l->worker.rx_arena.free_bits, hdr[KNIT__W_META] & KNIT__META_REGION_MASK);
        for (uint32_t j = 0; j < len; j++)
            KNIT_TEST_CHECK(r->seed, r->taken, copy[j] == reuse_byte(id, j),
                "id %u byte %u is %#x, want %#x: its region was reused while live", id, j, copy[j],
                reuse_byte(id, j));
        KNIT_TEST_CHECK(r->seed, r->taken, r->delivered[id] == 0, "id %u delivered twice", id);
        r->delivered[id] = 1;
        r->in_flight[i] = false;
        taken |= 1u << i;
        n++;
        r->taken++;
    }
    if (taken)
        knit__qcons_ack(c, taken);
    return n;
}

static void reuse_publish(reuse_run_t *r, uint32_t id, knit_test_rng_t *rng)
{
    knit__qprod_t *p = &r->l->host.tx;
    knit__arena_t *a = &r->l->host.tx_arena;
    for (;;) {
        int slot = knit__qprod_claim(p);
        if (slot == KNIT_E_FULL) {
            r->queue_full++;
            KNIT_TEST_CHECK(r->seed, id, reuse_consume(r, 1 + (unsigned)knit_test_below(rng, 8)),
                "queue full but nothing to consume");
            continue;
        }
        KNIT_TEST_CHECK(r->seed, id, slot >= 0 && slot < 32, "claim returned %d", slot);
        /* like a string: reserve three bytes per unit, then shrink to what was written */
        uint32_t idx, start;
        int rc = knit__arena_alloc(a, 3 * REUSE_PAYLOAD, &idx, &start);
        if (rc == KNIT_E_ARENA_FULL) {
            r->arena_full++;
            KNIT_TEST_CHECK(r->seed, id, reuse_consume(r, 1 + (unsigned)knit_test_below(rng, 8)),
                "arena full with nothing in flight: a region leaked");
            continue; /* the claimed slot was never published: it stays free */
        }
        KNIT_TEST_CHECK(r->seed, id, rc == 0, "alloc failed with %d", rc);
        uint8_t *dst = knit__arena_at(a, start);
        for (uint32_t j = 0; j < REUSE_PAYLOAD; j++)
            dst[j] = reuse_byte(id, j);
        knit__arena_set_len(a, idx, REUSE_PAYLOAD);
        for (unsigned s = 0; s < 32; s++) {
            if (!r->in_flight[s])
                continue;
            uint32_t o = r->in_flight_start[s];
            /* the whole reservation, not only the bytes written, must miss every live region */
            KNIT_TEST_CHECK(r->seed, id,
                start + 3 * REUSE_PAYLOAD <= o || o + REUSE_PAYLOAD <= start,
                "id %u reserved at %u aliases the in-flight region at %u", id, start, o);
        }
        uint32_t hdr[KNIT__HDR_WORDS] = {0};
        hdr[KNIT__W_ID] = id;
        hdr[KNIT__W_TAG] = KNIT__T_STRING;
        hdr[KNIT__W_START] = start;
        hdr[KNIT__W_LEN] = REUSE_PAYLOAD;
        knit__hdr_set_region(hdr, idx);
        memcpy(r->l->host.tx_slab[slot].hdr, hdr, sizeof hdr);
        r->in_flight[slot] = true;
        r->in_flight_start[slot] = start;
        knit__qprod_publish(p, (unsigned)slot);
        return;
    }
}

static void reuse_under_pressure(uint32_t n, uint64_t seed)
{
    knit__lane_cfg_t cfg = {.payload_max_bytes = 64 << 10, .payload_initial_bytes = 64 << 10};
    reuse_run_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->l = knit_test_lane_open(&cfg);
    assert_int_equal(r->l->host.tx_arena.capacity, 64 << 10); /* fixed: never grows */
    r->delivered = calloc(n, 1);
    assert_non_null(r->delivered);
    r->n = n;
    r->seed = seed;
    knit_test_rng_t rng = {seed};
    for (uint32_t id = 0; id < n; id++) {
        reuse_publish(r, id, &rng);
        if (knit_test_below(&rng, 6) == 0)
            reuse_consume(r, 1 + (unsigned)knit_test_below(&rng, 4));
    }
    while (reuse_consume(r, 32))
        ;
    for (uint32_t id = 0; id < n; id++)
        if (!r->delivered[id])
            fail_msg("seed %#" PRIx64 ": id %u never delivered", seed, id);
    assert_int_equal(r->taken, n);
    assert_true(r->arena_full > 0); /* the arena really was the bottleneck */
    assert_int_equal(r->l->host.tx_arena.capacity, 64 << 10);
    knit__ctrl_t *c = knit__shm_ctrl(&r->l->lane);
    assert_int_equal(atomic_load(&c->req.q_host.word), atomic_load(&c->req.q_worker.word));
    assert_int_equal(knit__arena_live(&r->l->host.tx_arena), 0);
    assert_int_equal(toggle_state(&r->l->host.tx_arena), 0);
    free(r->delivered);
    knit_test_lane_close(r->l);
    free(r);
}

static void test_reuse_80_payloads_through_64k_arena(void **state)
{
    (void)state;
    reuse_under_pressure(80, 0x80u);
}

static void test_reuse_400_payloads_through_64k_arena(void **state)
{
    (void)state;
    reuse_under_pressure(400, 0x400u);
}

/* --- boundaries and growth ---------------------------------------------------------------- */

static void test_region_exactly_filling_arena_succeeds(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, KNIT__ARENA_RESERVED + 4096, KNIT__ARENA_RESERVED + 4096, false);
    assert_int_equal(knit__arena_usable(&f.a), 4096);
    uint32_t start;
    assert_int_equal(alloc_ok(&f.a, 4096, &start), 0);
    assert_int_equal(start, 0);
    free_region(&f.a, 0);
    /* with a live region in front, the rest of the arena exactly */
    uint32_t s1;
    alloc_ok(&f.a, 1024, &start);
    alloc_ok(&f.a, 3072, &s1);
    assert_int_equal(s1, 1024);
    assert_int_equal(knit__arena_live(&f.a), 2);
    afx_close(&f);
}

static void test_one_byte_more_fails_and_allocator_stays_usable(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, KNIT__ARENA_RESERVED + 4096, KNIT__ARENA_RESERVED + 4096, false);
    uint32_t idx = 55, start = 55;
    assert_int_equal(knit__arena_alloc(&f.a, 4097, &idx, &start), KNIT_E_ARENA_FULL);
    assert_non_null(strstr(knit_errmsg(), "capacity exceeded"));
    assert_int_equal(idx, 55);
    assert_int_equal(f.a.table_len, 0);
    assert_int_equal(toggle_state(&f.a), 0);
    assert_int_equal(alloc_ok(&f.a, 4096, &start), 0);
    assert_int_equal(start, 0);
    free_region(&f.a, 0);

    /* the same with live regions: one byte past the free tail fails and changes nothing */
    uint32_t a0 = alloc_ok(&f.a, 1024, NULL), a1 = alloc_ok(&f.a, 3072, NULL);
    assert_int_equal(knit__arena_alloc(&f.a, 1, &idx, &start), KNIT_E_ARENA_FULL);
    free_region(&f.a, a1);
    uint32_t host_before = f.a.host_last;
    assert_int_equal(knit__arena_alloc(&f.a, 3073, &idx, &start), KNIT_E_ARENA_FULL);
    assert_int_equal(f.a.host_last, host_before);
    assert_int_equal(toggle_state(&f.a), 1u << a0);
    assert_int_equal(knit__arena_live(&f.a), 1);
    uint32_t a2 = alloc_ok(&f.a, 3072, &start);
    assert_int_equal(start, 1024);
    assert_int_equal(toggle_state(&f.a), (1u << a0) | (1u << a2));
    afx_close(&f);
}

static void test_capacity_starts_at_initial_and_grows_in_steps(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, 1 << 20, 8192, false);
    assert_int_equal(f.a.capacity, 8192);
    uint32_t s;
    alloc_ok(&f.a, 4096, &s); /* ends at 64 + 4096 */
    assert_int_equal(f.a.capacity, 8192);
    assert_int_equal(f.a.grows, 0);
    alloc_ok(&f.a, 4032, &s); /* ends exactly at the capacity: no growth */
    assert_int_equal(s, 4096);
    assert_int_equal(f.a.capacity, 8192);
    assert_int_equal(f.a.grows, 0);
    alloc_ok(&f.a, 64, &s); /* needs 64 + 8192 bytes: grows to align64(64 + 8192 + 4096) */
    assert_int_equal(s, 8128);
    assert_int_equal(f.a.capacity, align64(KNIT__ARENA_RESERVED + 8192 + KNIT__ARENA_GROW_PAD));
    assert_int_equal(f.a.capacity, 12352);
    assert_int_equal(f.a.grows, 1);
    alloc_ok(&f.a, 4096, &s); /* the padding absorbs the next 4 KiB */
    assert_int_equal(f.a.capacity, 12352);
    assert_int_equal(f.a.grows, 1);
    alloc_ok(&f.a, 1, &s);
    assert_int_equal(s, 12288);
    assert_int_equal(f.a.capacity, align64(KNIT__ARENA_RESERVED + 12352 + KNIT__ARENA_GROW_PAD));
    assert_int_equal(f.a.grows, 2);
    /* the capacity never shrinks, not even when everything is freed and the arena resets */
    for (uint32_t i = 0; i < 5; i++)
        free_region(&f.a, i);
    uint64_t cap = f.a.capacity;
    alloc_ok(&f.a, 64, &s);
    assert_int_equal(s, 0);
    assert_int_equal(f.a.capacity, cap);
    afx_close(&f);
}

static void test_capacity_growth_is_clamped_to_max(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, 65536, 4096, false);
    uint32_t s;
    /* align64(64 + 62016 + 4096) = 66176 would pass the maximum: clamped, not refused */
    alloc_ok(&f.a, 62000, &s);
    assert_int_equal(f.a.capacity, 65536);
    assert_int_equal(f.a.grows, 1);
    alloc_ok(&f.a, 65536 - 64 - 62016, &s); /* exactly the rest */
    assert_int_equal(s, 62016);
    assert_int_equal(f.a.capacity, 65536);
    uint32_t idx = 9;
    assert_int_equal(knit__arena_alloc(&f.a, 1, &idx, &s), KNIT_E_ARENA_FULL);
    assert_int_equal(f.a.capacity, 65536);
    assert_int_equal(f.a.grows, 1);
    afx_close(&f);
}

static void test_initial_capacity_is_clamped_to_64_and_max(void **state)
{
    (void)state;
    afx_t f;
    afx_open(&f, 65536, 0, false);
    assert_int_equal(f.a.capacity, KNIT__ARENA_RESERVED);
    uint32_t s;
    alloc_ok(&f.a, 1, &s); /* grows from nothing */
    assert_int_equal(f.a.capacity, align64(KNIT__ARENA_RESERVED + 64 + KNIT__ARENA_GROW_PAD));
    afx_close(&f);
    afx_open(&f, 65536, 1 << 20, false);
    assert_int_equal(f.a.capacity, 65536);
    afx_close(&f);
    afx_open(&f, 65536, 640, false);
    assert_int_equal(f.a.capacity, 640);
    assert_int_equal(knit__arena_usable(&f.a), 65536 - 64);
    afx_close(&f);
}

static void test_reader_bounds_are_the_full_mapping(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 8 << 20, .payload_initial_bytes = 4096};
    knit_test_lane_t *l = knit_test_lane_open(&cfg);
    /* both sides attach before the writer's arena grows (the order that truncated payloads in
     * knitting, internals 3.4) */
    assert_int_equal(l->host.tx_arena.capacity, 4096);
    assert_int_equal(knit__arena_usable(&l->worker.rx_arena), l->lane.layout.arena_bytes - 64);
    assert_int_equal(knit__arena_usable(&l->worker.rx_arena), (8 << 20) - 64);
    assert_ptr_equal(l->worker.rx_arena.base, l->host.tx_arena.base);

    const size_t len = 1000000; /* 244x the initial capacity; within maxPayloadBytes (1 MiB) */
    uint8_t *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    knit_value_t v = knit_v_bytes(big, len);
    assert_int_equal(knit__ep_send(&l->host, 0, 1, 0, &v), 0);
    assert_true(l->host.tx_arena.grows >= 1);
    assert_true(l->host.tx_arena.capacity >= KNIT__ARENA_RESERVED + len);
    /* the reader's bounds did not depend on the writer's growth */
    assert_int_equal(knit__arena_usable(&l->worker.rx_arena), (8 << 20) - 64);

    knit_test_capture_t cap = {0};
    assert_int_equal(knit__ep_drain(&l->worker, knit_test_capture_cb, &cap, 0, 0), 1);
    assert_int_equal(cap.msgs[0].status, 0);
    assert_int_equal(cap.msgs[0].value.kind, KNIT_KIND_BYTES);
    assert_int_equal(cap.msgs[0].value.len, len); /* not cut off at the initial size */
    assert_memory_equal(cap.msgs[0].value.u.ptr, big, len);
    knit_value_free(&cap.msgs[0].value);
    assert_int_equal(knit__arena_live(&l->host.tx_arena), 0); /* the reader freed it */

    /* a region placed entirely beyond the writer's initial capacity is readable as well */
    uint32_t idx, start;
    assert_int_equal(knit__arena_alloc(&l->host.tx_arena, 64, &idx, &start), 0);
    assert_int_equal(start, 0); /* everything was free: reset */
    uint32_t i2, s2;
    assert_int_equal(knit__arena_alloc(&l->host.tx_arena, 2 << 20, &i2, &s2), 0);
    assert_int_equal(knit__arena_alloc(&l->host.tx_arena, 64, &idx, &start), 0);
    assert_true(start > (1u << 20));
    memcpy(knit__arena_at(&l->host.tx_arena, start), "beyond", 7);
    assert_true((uint64_t)start + 64 <= knit__arena_usable(&l->worker.rx_arena));
    assert_string_equal((const char *)knit__arena_at(&l->worker.rx_arena, start), "beyond");
    free(big);
    knit_test_lane_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocator_words_sit_at_sector_128_and_192),
        cmocka_unit_test(test_table_packs_start_and_index),
        cmocka_unit_test(test_starts_are_cumulative_aligned_sizes),
        cmocka_unit_test(test_encode_copies_start_into_word_3_and_index_into_word_6),
        cmocka_unit_test(test_offsets_past_2_31_are_unsigned),
        cmocka_unit_test(test_size_63_rounds_to_64),
        cmocka_unit_test(test_removing_front_entries_keeps_the_rest_in_order),
        cmocka_unit_test(test_removing_back_entries_keeps_the_rest_in_order),
        cmocka_unit_test(test_removing_middle_entries_keeps_the_rest_in_order),
        cmocka_unit_test(test_freed_trailing_entries_leave_the_table),
        cmocka_unit_test(test_exact_size_reuses_start_in_place_under_new_index),
        cmocka_unit_test(test_first_fitting_gap_is_used),
        cmocka_unit_test(test_compaction_merges_freed_neighbours_before_appending),
        cmocka_unit_test(test_all_free_resets_to_offset_zero),
        cmocka_unit_test(test_append_continues_after_tail_frees),
        cmocka_unit_test(test_set_len_shrinks_region_and_exposes_gap),
        cmocka_unit_test(test_33rd_live_region_fails_then_recovers),
        cmocka_unit_test(test_random_stress_no_overlap_and_popcount_equals_live),
        cmocka_unit_test(test_desync_separate_allocator_and_freer_stay_consistent),
        cmocka_unit_test(test_desync_single_shared_instance_stays_consistent),
        cmocka_unit_test(test_desync_bulk_free_then_realloc_separate_instances),
        cmocka_unit_test(test_desync_bulk_free_then_realloc_single_instance),
        cmocka_unit_test(test_desync_toggle_bits_match_live_count_in_rounds),
        cmocka_unit_test(test_reuse_80_payloads_through_64k_arena),
        cmocka_unit_test(test_reuse_400_payloads_through_64k_arena),
        cmocka_unit_test(test_region_exactly_filling_arena_succeeds),
        cmocka_unit_test(test_one_byte_more_fails_and_allocator_stays_usable),
        cmocka_unit_test(test_capacity_starts_at_initial_and_grows_in_steps),
        cmocka_unit_test(test_capacity_growth_is_clamped_to_max),
        cmocka_unit_test(test_initial_capacity_is_clamped_to_64_and_max),
        cmocka_unit_test(test_reader_bounds_are_the_full_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
