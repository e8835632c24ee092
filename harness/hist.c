/* knit harness - log-linear histogram (see harness/hist.h). */
#include "hist.h"

#include <math.h>
#include <string.h>

#define HALF  (1u << (KNIT_HIST_SUB_BITS - 1u)) /* 128 sub-buckets per power of two */
#define EXACT (1u << KNIT_HIST_SUB_BITS)        /* values below 256 are exact */

void knit_hist_init(knit_hist_t *h)
{
    memset(h, 0, sizeof *h);
}

uint32_t knit_hist_index(uint64_t v)
{
    if (v < EXACT)
        return (uint32_t)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 8 */
    unsigned shift = msb - (KNIT_HIST_SUB_BITS - 1u);  /* v >> shift is in [128, 256) */
    return shift * HALF + (uint32_t)(v >> shift);
}

uint64_t knit_hist_bucket_low(uint32_t i)
{
    if (i < EXACT)
        return i;
    unsigned shift = i / HALF - 1u;
    uint64_t sub = (uint64_t)(i - shift * HALF);
    return sub << shift;
}

uint64_t knit_hist_bucket_high(uint32_t i)
{
    if (i < EXACT)
        return i;
    unsigned shift = i / HALF - 1u;
    return knit_hist_bucket_low(i) + ((1ull << shift) - 1u);
}

void knit_hist_record_corrected(knit_hist_t *h, uint64_t v, uint64_t interval)
{
    knit_hist_record(h, v);
    if (interval == 0)
        return;
    for (uint64_t missed = v > interval ? v - interval : 0; missed >= interval; missed -= interval)
        knit_hist_record(h, missed);
}

void knit_hist_add(knit_hist_t *dst, const knit_hist_t *src)
{
    if (src->total == 0)
        return;
    for (uint32_t i = 0; i < KNIT_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->total == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->total += src->total;
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
}

/* The representative value of a bucket: its midpoint, kept inside [min, max]. */
static uint64_t representative(const knit_hist_t *h, uint32_t i)
{
    uint64_t lo = knit_hist_bucket_low(i), hi = knit_hist_bucket_high(i);
    uint64_t mid = lo + (hi - lo) / 2;
    if (mid < h->min)
        mid = h->min;
    if (mid > h->max)
        mid = h->max;
    return mid;
}

uint64_t knit_hist_percentile(const knit_hist_t *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < KNIT_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return representative(h, i);
    }
    return h->max;
}

double knit_hist_mean(const knit_hist_t *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

double knit_hist_stddev(const knit_hist_t *h)
{
    if (h->total < 2)
        return 0.0;
    double m = knit_hist_mean(h);
    double var = h->sumsq / (double)h->total - m * m;
    return var > 0 ? sqrt(var) : 0.0;
}

int knit_hist_print(const knit_hist_t *h, FILE *out, int ticks, double scale)
{
    if (ticks < 1)
        ticks = 5;
    if (scale <= 0)
        scale = 1;
    fprintf(
        out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    double pct = 0;
    for (int step = 0; step < 64 * ticks && h->total; step++) {
        /* each halving of the distance to 100 % gets `ticks` lines */
        int half = step / ticks, k = step % ticks;
        double lo = 100.0 - 100.0 / (double)(1ull << half);
        double hi = 100.0 - 100.0 / (double)(1ull << (half + 1));
        pct = lo + (hi - lo) * k / ticks;
        uint64_t v = knit_hist_percentile(h, pct);
        uint64_t count = (uint64_t)ceil(pct / 100.0 * (double)h->total);
        fprintf(out, "%12.3f %14.12f %10llu %14.2f\n", (double)v / scale, pct / 100.0,
            (unsigned long long)count, pct < 100 ? 1.0 / (1.0 - pct / 100.0) : INFINITY);
        if (count >= h->total)
            break;
    }
    fprintf(out, "%12.3f %14.12f %10llu %14s\n", (double)h->max / scale, 1.0,
        (unsigned long long)h->total, "inf");
    fprintf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", knit_hist_mean(h) / scale,
        knit_hist_stddev(h) / scale);
    fprintf(out, "#[Max     = %12.3f, Total count    = %12llu]\n", (double)h->max / scale,
        (unsigned long long)h->total);
    return 0;
}
