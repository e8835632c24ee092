/* The harness histogram against exact sorted percentiles. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact value at percentile p, with the histogram's rank rule. */
static uint64_t exact(const uint64_t *sorted, size_t n, double p)
{
    if (p <= 0)
        return sorted[0];
    if (p >= 100)
        return sorted[n - 1];
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[(rank ? rank : 1) - 1];
}

static void check_against_exact(uint64_t *v, size_t n, const char *what)
{
    knit_hist_t *h = malloc(sizeof *h);
    knit_hist_init(h);
    for (size_t i = 0; i < n; i++)
        knit_hist_record(h, v[i]);
    qsort(v, n, sizeof *v, cmp_u64);
    static const double ps[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        uint64_t want = exact(v, n, ps[k]), got = knit_hist_percentile(h, ps[k]);
        double err = want ? fabs((double)got - (double)want) / (double)want : (double)got;
        if (err > 0.01)
            print_error("%s p%.2f: histogram %llu, exact %llu (%.3f%%)\n", what, ps[k],
                (unsigned long long)got, (unsigned long long)want, err * 100);
        assert_true(err <= 0.01); /* at most 1 % relative error */
    }
    assert_int_equal(knit_hist_percentile(h, 0), v[0]);       /* min is exact */
    assert_int_equal(knit_hist_percentile(h, 100), v[n - 1]); /* max is exact */
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += (double)v[i];
    mean /= (double)n;
    assert_true(fabs(knit_hist_mean(h) - mean) <= 1e-9 * mean + 1e-9);
    free(h);
}

static void test_uniform(void **s)
{
    (void)s;
    size_t n = 1000000;
    uint64_t *v = malloc(n * sizeof *v);
    knit_test_rng_t r = {12345};
    for (size_t i = 0; i < n; i++)
        v[i] = 100 + knit_test_below(&r, 1000000);
    check_against_exact(v, n, "uniform");
    free(v);
}

static void test_lognormal_like(void **s)
{
    (void)s;
    size_t n = 1000000;
    uint64_t *v = malloc(n * sizeof *v);
    knit_test_rng_t r = {777};
    for (size_t i = 0; i < n; i++) {
        double u1 = ((double)(knit_test_rand(&r) >> 11) + 1) / 9007199254740993.0;
        double u2 = (double)(knit_test_rand(&r) >> 11) / 9007199254740992.0;
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        v[i] = (uint64_t)exp(7.0 + 1.5 * z); /* ~1 us median, heavy tail */
    }
    check_against_exact(v, n, "lognormal");
    free(v);
}

static void test_bimodal_with_outliers(void **s)
{
    (void)s;
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    knit_test_rng_t r = {99};
    for (size_t i = 0; i < n; i++) {
        uint64_t pick = knit_test_below(&r, 1000);
        v[i] = pick < 700 ? 130 + knit_test_below(&r, 20)        /* "near" spin floor */
            : pick < 995  ? 340 + knit_test_below(&r, 40)        /* "far" */
                          : 19000 + knit_test_below(&r, 4000000); /* wakes and host stalls */
    }
    check_against_exact(v, n, "bimodal");
    free(v);
}

static void test_bucket_bounds_cover_every_value(void **s)
{
    (void)s;
    uint64_t samples[] = {0, 1, 255, 256, 257, 383, 384, 1000, 65535, 65536, 1ull << 40,
        (1ull << 40) + 12345, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        uint64_t v = samples[i];
        uint32_t b = knit_hist_index(v);
        assert_true(b < KNIT_HIST_BUCKETS);
        assert_true(knit_hist_bucket_low(b) <= v && v <= knit_hist_bucket_high(b));
        if (v >= 256) /* width never above 1/128 of the lower bound */
            assert_true(knit_hist_bucket_high(b) - knit_hist_bucket_low(b) + 1
                <= knit_hist_bucket_low(b) / 128);
    }
    for (uint32_t b = 1; b < KNIT_HIST_BUCKETS; b++) /* contiguous, no gaps or overlaps */
        assert_true(knit_hist_bucket_low(b) == knit_hist_bucket_high(b - 1) + 1);
    assert_int_equal(knit_hist_bucket_high(KNIT_HIST_BUCKETS - 1), UINT64_MAX);
}

static void test_add_and_corrected(void **s)
{
    (void)s;
    knit_hist_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    knit_hist_init(a);
    knit_hist_init(b);
    for (uint64_t i = 1; i <= 1000; i++)
        knit_hist_record(i % 2 ? a : b, i);
    knit_hist_add(a, b);
    assert_int_equal(a->total, 1000);
    assert_int_equal(a->min, 1);
    assert_int_equal(a->max, 1000);
    assert_true(fabs(knit_hist_mean(a) - 500.5) < 1e-9);
    /* a 10 ms stall with 1 ms expected spacing fills in 9 missed samples: 10, 9, ..., 1 ms */
    knit_hist_init(b);
    knit_hist_record_corrected(b, 10000000, 1000000);
    assert_int_equal(b->total, 10);
    assert_int_equal(b->min, 1000000);
    free(a);
    free(b);
}

static void test_print_classic_table(void **s)
{
    (void)s;
    knit_hist_t *h = malloc(sizeof *h);
    knit_hist_init(h);
    for (uint64_t i = 1; i <= 10000; i++)
        knit_hist_record(h, i);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(knit_hist_print(h, f, 5, 1.0), 0);
    fclose(f);
    assert_non_null(strstr(buf, "Percentile"));
    assert_non_null(strstr(buf, "#[Max     =    10000.000, Total count    =        10000]"));
    free(buf);
    free(h);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_bucket_bounds_cover_every_value),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_lognormal_like),
        cmocka_unit_test(test_bimodal_with_outliers),
        cmocka_unit_test(test_add_and_corrected),
        cmocka_unit_test(test_print_classic_table),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
