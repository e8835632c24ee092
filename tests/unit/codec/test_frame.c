/* Task header word helpers (codec/frame.h): each setter touches only its own bit field. */
#include "testutil.h"

#include <string.h>

#include "codec/frame.h"

/* A header whose every word holds a distinct canary, so a stray write shows up. */
static void fill_canary(uint32_t *hdr, uint32_t base)
{
    for (uint32_t i = 0; i < KNIT__HDR_WORDS; i++)
        hdr[i] = base ^ (0x01010101u * (i + 1));
}

/* Every word except `word` equals the canary header `ref`. */
static void assert_other_words_untouched(const uint32_t *hdr, const uint32_t *ref, unsigned word)
{
    for (unsigned i = 0; i < KNIT__HDR_WORDS; i++)
        if (i != word)
            assert_int_equal(hdr[i], ref[i]);
}

/* On canary headers made from each of `bases`, set(hdr, v) for each of `vals` changes only the
 * bits `mask` of word `word`, which then hold v shifted left by `shift` and masked. */
static void check_field(void (*set)(uint32_t *hdr, uint32_t v), unsigned word, uint32_t mask,
    unsigned shift, const uint32_t *bases, size_t nbases, const uint32_t *vals, size_t nvals)
{
    for (size_t b = 0; b < nbases; b++) {
        for (size_t v = 0; v < nvals; v++) {
            uint32_t hdr[KNIT__HDR_WORDS], ref[KNIT__HDR_WORDS];
            fill_canary(ref, bases[b]);
            memcpy(hdr, ref, sizeof hdr);
            set(hdr, vals[v]);
            assert_int_equal(hdr[word] & ~mask, ref[word] & ~mask);
            assert_int_equal(hdr[word] & mask, (vals[v] << shift) & mask);
            assert_other_words_untouched(hdr, ref, word);
        }
    }
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The bases the word 0 setters are checked on. */
static const uint32_t word0_bases[] = {0u, 0xFFFFFFFFu, 0x12345678u};

static void test_header_constants(void **state)
{
    (void)state;
    assert_int_equal(KNIT__HDR_WORDS, 8);
    assert_int_equal(KNIT__W_META, 6);
    assert_int_equal(KNIT__W_FN, 0);
    assert_int_equal(KNIT__META_REGION_MASK, 0x1Fu);
    assert_int_equal(KNIT__META_STAMP_MASK, 0x07FFFFFFu);
}

static void test_set_region_touches_only_low_5_bits_of_word_6(void **state)
{
    (void)state;
    const uint32_t bases[] = {0u, 0xFFFFFFFFu, 0xA5A5A5A5u, 0x5A5A5A40u};
    uint32_t regions[64];
    for (uint32_t region = 0; region < 64; region++)
        regions[region] = region;
    /* bits 5-31 keep their value, bits 0-4 hold the index masked to 5 bits */
    check_field(knit__hdr_set_region, KNIT__W_META, KNIT__META_REGION_MASK, 0, bases, COUNT(bases),
        regions, COUNT(regions));
    /* the stamp read back is unaffected by the region index */
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    knit__hdr_set_stamp(hdr, 12345);
    knit__hdr_set_region(hdr, 31);
    assert_int_equal(knit__hdr_stamp(hdr), 12345);
    knit__hdr_set_region(hdr, 0);
    assert_int_equal(knit__hdr_stamp(hdr), 12345);
}

static void test_set_stamp_touches_only_bits_5_to_31_of_word_6(void **state)
{
    (void)state;
    const uint32_t stamps[] = {0u, 1u, 76u, 0x03FFFFFFu, 0x07FFFFFFu, 0x08000000u, 0xFFFFFFFFu};
    for (uint32_t region = 0; region < 32; region++) {
        for (size_t s = 0; s < sizeof stamps / sizeof stamps[0]; s++) {
            uint32_t hdr[KNIT__HDR_WORDS], ref[KNIT__HDR_WORDS];
            fill_canary(ref, 0x3C3C3C3Cu);
            ref[KNIT__W_META] = 0xFFFFFFE0u | region;
            memcpy(hdr, ref, sizeof hdr);
            knit__hdr_set_stamp(hdr, stamps[s]);
            assert_int_equal(hdr[KNIT__W_META] & KNIT__META_REGION_MASK, region);
            assert_int_equal(hdr[KNIT__W_META] >> 5, stamps[s] & KNIT__META_STAMP_MASK);
            assert_int_equal(knit__hdr_stamp(hdr), stamps[s] & KNIT__META_STAMP_MASK);
            assert_other_words_untouched(hdr, ref, KNIT__W_META);
        }
    }
}

static void test_stamp_is_masked_to_27_bits(void **state)
{
    (void)state;
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    hdr[KNIT__W_META] = 17; /* region index 17 */
    knit__hdr_set_stamp(hdr, KNIT__META_STAMP_MASK + 77u);
    assert_int_equal(knit__hdr_stamp(hdr), 76);
    assert_int_equal(hdr[KNIT__W_META], (76u << 5) | 17u);
    knit__hdr_set_stamp(hdr, KNIT__META_STAMP_MASK);
    assert_int_equal(knit__hdr_stamp(hdr), KNIT__META_STAMP_MASK);
    assert_int_equal(hdr[KNIT__W_META], 0xFFFFFFE0u | 17u);
}

static void test_set_fn_touches_only_low_16_bits_of_word_0(void **state)
{
    (void)state;
    const uint32_t fns[] = {0u, 1u, 0xFFFFu, 0x10000u, 0x1ABCDu, 0xFFFFFFFFu};
    /* the high half keeps its value, the low half holds the id */
    check_field(
        knit__hdr_set_fn, KNIT__W_FN, 0xFFFFu, 0, word0_bases, COUNT(word0_bases), fns, COUNT(fns));
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    knit__hdr_set_fn(hdr, 0x1ABCDu); /* the id is masked to 16 bits */
    assert_int_equal(hdr[KNIT__W_FN], 0xABCDu);
}

static void test_set_abort_touches_only_high_16_bits_of_word_0(void **state)
{
    (void)state;
    const uint32_t metas[] = {0u, 1u, 259u, 0xFFFFu, 0x10000u, 0x2BEEFu, 0xFFFFFFFFu};
    /* the low half keeps its value, the high half holds the metadata's low 16 bits */
    check_field(knit__hdr_set_abort, KNIT__W_FN, 0xFFFF0000u, 16, word0_bases, COUNT(word0_bases),
        metas, COUNT(metas));
    /* fn id and abort metadata set in either order combine without interference */
    uint32_t a[KNIT__HDR_WORDS] = {0}, b[KNIT__HDR_WORDS] = {0};
    knit__hdr_set_fn(a, 0x1234);
    knit__hdr_set_abort(a, 0x0102);
    knit__hdr_set_abort(b, 0x0102);
    knit__hdr_set_fn(b, 0x1234);
    assert_int_equal(a[KNIT__W_FN], 0x01021234u);
    assert_int_equal(b[KNIT__W_FN], 0x01021234u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_constants),
        cmocka_unit_test(test_set_region_touches_only_low_5_bits_of_word_6),
        cmocka_unit_test(test_set_stamp_touches_only_bits_5_to_31_of_word_6),
        cmocka_unit_test(test_stamp_is_masked_to_27_bits),
        cmocka_unit_test(test_set_fn_touches_only_low_16_bits_of_word_0),
        cmocka_unit_test(test_set_abort_touches_only_high_16_bits_of_word_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
