/*
 * knit-micro: payload-arena region allocator benchmarks (arena/...).
 *
 * arena/alloc_free/<bytes>: knit__arena_alloc() then knit__arena_free() of one region on the
 * request arena of a real lane. With nothing else live, every allocation takes the "all
 * regions free: reset to offset 0" path.
 *
 * arena/fifo<K>/<sizes>: K regions stay live; each iteration frees the oldest and allocates a
 * new one (a lane with K calls in flight). With one size the allocator reuses the freed
 * region in place (exact fit); with mixed sizes it has to compact its table and search for a
 * gap. fifo31 keeps all but one of the 32 region indices busy.
 *
 * The allocator never touches payload bytes, so region size only matters for placement.
 */
#include <stdio.h>
#include <string.h>

#include "codec/arena.h"
#include "gbench/gbench.h"
#include "knit/error.h"
#include "micro.h"
#include "transports/shm/shm_lane.h"

#define FIFO_MAX 31u /* one index is always left for the allocation of the next iteration */

/* A live-region pattern: `depth` regions in flight, sizes taken in turn from `sizes`. */
typedef struct pattern {
    unsigned depth;
    const uint32_t *sizes; /* zero-terminated */
} pattern_t;

/* The regions a FIFO pattern holds, oldest at `head`. */
typedef struct fifo {
    uint32_t index[FIFO_MAX];
    unsigned head;
    unsigned next_size; /* position in pattern->sizes */
} fifo_t;

/* A benchmark body, run on the host endpoint's request arena of a fresh lane. */
typedef int (*arena_body_fn)(
    const knit_gbench_def_t *def, knit_gbench_state_t *st, knit__arena_t *a);

/* Run `body` on a fresh lane, closed afterwards: 0 or a negative knit error (reported). */
static int with_arena(const knit_gbench_def_t *def, knit_gbench_state_t *st, arena_body_fn body)
{
    knit__shm_lane_t lane;
    knit__endpoint_t ep;
    int rc = knit_micro_lane_open(st, &lane, &ep, NULL);
    if (rc < 0)
        return rc;
    rc = body(def, st, &ep.tx_arena);
    knit__shm_lane_close(&lane);
    return rc;
}

static int alloc_free_loop(const knit_gbench_def_t *def, knit_gbench_state_t *st, knit__arena_t *a)
{
    uint64_t bytes = (uint64_t)def->arg;
    int rc = 0;
    while (knit_gbench_keep_running(st, 1)) {
        uint32_t index, start;
        rc = knit__arena_alloc(a, bytes, &index, &start);
        if (rc < 0) {
            knit_micro_fail(st, "knit__arena_alloc", rc);
            break;
        }
        knit__arena_free(a->free_bits, index);
    }
    if (rc == 0)
        knit_gbench_set_items_processed(st, (int64_t)knit_gbench_iterations(st));
    return rc;
}

static int bm_alloc_free(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    return with_arena(def, st, alloc_free_loop);
}

/* Allocate the next region of the pattern into slot `at` of the FIFO. */
static int fifo_alloc(knit__arena_t *a, const pattern_t *p, fifo_t *q, unsigned at)
{
    uint32_t bytes = p->sizes[q->next_size];
    if (p->sizes[++q->next_size] == 0)
        q->next_size = 0;
    uint32_t start;
    return knit__arena_alloc(a, bytes, &q->index[at], &start);
}

/* Fill the FIFO to its depth (untimed). */
static int fifo_fill(knit__arena_t *a, const pattern_t *p, fifo_t *q)
{
    memset(q, 0, sizeof *q);
    for (unsigned i = 0; i < p->depth; i++) {
        int rc = fifo_alloc(a, p, q, i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Free the oldest region, allocate a new one in its place. */
static inline int fifo_step(knit__arena_t *a, const pattern_t *p, fifo_t *q)
{
    knit__arena_free(a->free_bits, q->index[q->head]);
    int rc = fifo_alloc(a, p, q, q->head);
    if (++q->head == p->depth)
        q->head = 0;
    return rc;
}

static const uint32_t sizes_4k[] = {4096, 0};
static const uint32_t sizes_64[] = {64, 0};
/* Seven sizes against eight live regions: the freed region rarely fits exactly. */
static const uint32_t sizes_mixed[] = {64, 4096, 512, 65536, 192, 16384, 1024, 0};

/* The patterns of the fifo benchmarks, by their arg. */
enum { FIFO8_4K, FIFO8_MIXED, FIFO31_64 };
static const pattern_t fifo_patterns[] = {
    [FIFO8_4K] = {8, sizes_4k},
    [FIFO8_MIXED] = {8, sizes_mixed},
    [FIFO31_64] = {31, sizes_64},
};

static int fifo_loop(const knit_gbench_def_t *def, knit_gbench_state_t *st, knit__arena_t *a)
{
    const pattern_t *p = &fifo_patterns[def->arg];
    fifo_t q;
    int rc = fifo_fill(a, p, &q);
    if (rc < 0)
        knit_micro_fail(st, "filling the arena", rc);
    while (rc == 0 && knit_gbench_keep_running(st, 1)) {
        rc = fifo_step(a, p, &q);
        if (rc < 0)
            knit_micro_fail(st, "knit__arena_alloc with regions live", rc);
    }
    if (rc == 0) {
        knit_gbench_set_items_processed(st, (int64_t)knit_gbench_iterations(st));
        knit_gbench_set_counter(st, "live_regions", (double)knit__arena_live(a), false);
        knit_gbench_set_counter(st, "arena_capacity", (double)a->capacity, false);
    }
    return rc;
}

static int bm_fifo(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    return with_arena(def, st, fifo_loop);
}

int knit_micro_register_arena(void)
{
    static const int64_t sizes[] = {64, 4096, 1048576};
    char name[64];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snprintf(name, sizeof name, "arena/alloc_free/%lld", (long long)sizes[i]);
        knit_gbench_def_t def = {.name = name, .run = bm_alloc_free, .arg = sizes[i]};
        int rc = knit_gbench_register(&def);
        if (rc < 0)
            return rc;
    }
    static const knit_micro_bench_t fifos[] = {
        {"arena/fifo8/4096", bm_fifo, FIFO8_4K},
        {"arena/fifo8/mixed", bm_fifo, FIFO8_MIXED},
        {"arena/fifo31/64", bm_fifo, FIFO31_64},
    };
    return knit_micro_register_table(fifos, sizeof fifos / sizeof fifos[0], 0);
}
