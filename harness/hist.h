/*
 * knit harness - a log-linear latency histogram (HdrHistogram's idea, written for knit).
 *
 * Values are unsigned 64-bit (nanoseconds in the harness). Values below 256 are counted
 * exactly; above that every power-of-two range is split into 128 equal sub-buckets, so a
 * bucket is never wider than 1/128 of its lower bound and the reported value (the bucket's
 * midpoint) is within 0.4 % of any value recorded in it. 7424 counters (58 KiB) cover the full
 * 64-bit range; recording is a handful of instructions and never allocates. Statistics are
 * computed after a run, never on the recording path.
 */
#ifndef KNIT_HARNESS_HIST_H
#define KNIT_HARNESS_HIST_H

#include <stdint.h>
#include <stdio.h>

#define KNIT_HIST_SUB_BITS 8u
#define KNIT_HIST_BUCKETS                                                                          \
    ((64u - KNIT_HIST_SUB_BITS + 1u) * (1u << (KNIT_HIST_SUB_BITS - 1u))                           \
        + (1u << (KNIT_HIST_SUB_BITS - 1u)))

typedef struct knit_hist {
    uint64_t total;
    uint64_t min, max;
    double sum, sumsq; /* for mean and standard deviation */
    uint64_t counts[KNIT_HIST_BUCKETS];
} knit_hist_t;

void knit_hist_init(knit_hist_t *h);

/* Bucket index of a value, and the smallest / largest value a bucket holds. */
uint32_t knit_hist_index(uint64_t v);
uint64_t knit_hist_bucket_low(uint32_t index);
uint64_t knit_hist_bucket_high(uint32_t index);

static inline void knit_hist_record_n(knit_hist_t *h, uint64_t v, uint64_t n)
{
    h->counts[knit_hist_index(v)] += n;
    if (h->total == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->total += n;
    h->sum += (double)v * (double)n;
    h->sumsq += (double)v * (double)v * (double)n;
}

static inline void knit_hist_record(knit_hist_t *h, uint64_t v)
{
    knit_hist_record_n(h, v, 1);
}

/*
 * Record `v` and, when it exceeds the expected interval between samples, the samples a
 * stalled measuring loop would have taken meanwhile (v - interval, v - 2 interval, ...):
 * HdrHistogram's correction for coordinated omission.
 */
void knit_hist_record_corrected(knit_hist_t *h, uint64_t v, uint64_t expected_interval);

/* dst += src. */
void knit_hist_add(knit_hist_t *dst, const knit_hist_t *src);

/* The value at percentile p in [0, 100]: the representative value of the bucket holding the
 * ceil(p% * total)-th smallest sample (min and max are exact). 0 when empty. */
uint64_t knit_hist_percentile(const knit_hist_t *h, double p);

double knit_hist_mean(const knit_hist_t *h);
double knit_hist_stddev(const knit_hist_t *h);

/* HdrHistogram's "classic" percentile table (Value, Percentile, TotalCount, 1/(1-Percentile)),
 * `ticks` lines per halving of the remaining distance to 100 %, values divided by `scale`. */
int knit_hist_print(const knit_hist_t *h, FILE *out, int ticks, double scale);

#endif
