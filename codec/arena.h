/*
 * knit codec - payload arenas and their region allocator (knitting-internals 1.7, 3.4, 3.5).
 *
 * An arena is a byte range whose first 64 bytes are reserved; a region start S means arena
 * byte 64 + S. One writer (the producer of the lock that carries the frames) allocates regions
 * with a private first-fit table of at most 32 live regions; any reader frees a region by
 * toggling its bit in the shared free word with an atomic XOR, which commutes across any number
 * of freers. A region is live while its bit differs between the writer's private toggle word and
 * the free word; when every region the writer tracks is free the arena resets to offset 0.
 *
 * The whole arena (payloadMaxByteLength) is mapped once, up front, and committed lazily by the
 * kernel as pages are touched. `capacity` is the writer's logical size, grown in knitting's
 * steps; readers bound-check against the fixed mapping, so growth can never truncate what a
 * reader sees (knitting's reader-view defect, internals 3.4, cannot happen).
 */
#ifndef KNIT_CODEC_ARENA_H
#define KNIT_CODEC_ARENA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec/frame.h"

#define KNIT__ARENA_GROW_PAD 4096u /* padding added per growth step (knitting's value) */

typedef struct knit__arena {
    uint8_t *base;                /* arena byte 0; region start S is at base + 64 + S */
    uint64_t max_bytes;           /* mapped length (payloadMaxByteLength); fixed for life */
    uint64_t capacity;            /* writer: logical length in use so far, initial..max_bytes */
    _Atomic uint32_t *alloc_bits; /* shared mirror of the writer's toggles (informational) */
    _Atomic uint32_t *free_bits;  /* shared; toggled by freers with atomic XOR */
    /* writer-private allocator state */
    uint32_t table[KNIT__SLOTS]; /* start | index, sorted by start */
    uint32_t size[KNIT__SLOTS];  /* 64-aligned size per region index */
    uint32_t table_len;
    uint32_t used_bits; /* indices the writer tracks (live or freed-not-yet-collected) */
    uint32_t host_last; /* the writer's toggle word */
    uint32_t grows;     /* number of growth steps taken (statistics) */
} knit__arena_t;

/* Attach to arena memory. `initial` is clamped to [64, max]. Both sides call it; only the
 * writer uses the allocator state. The shared words are not reset (the creator zeroes the
 * whole mapping). */
void knit__arena_init(knit__arena_t *a, uint8_t *base, uint64_t max_bytes, uint64_t initial,
    _Atomic uint32_t *alloc_bits, _Atomic uint32_t *free_bits);

/* Usable bytes after the reserved header, for the mapping (readers) */
static inline uint64_t knit__arena_usable(const knit__arena_t *a)
{
    return a->max_bytes > KNIT__ARENA_RESERVED ? a->max_bytes - KNIT__ARENA_RESERVED : 0;
}

static inline uint8_t *knit__arena_at(const knit__arena_t *a, uint32_t start)
{
    return a->base + KNIT__ARENA_RESERVED + start;
}

/*
 * Reserve `bytes` (rounded up to 64, at least 64). On success stores the region index and its
 * start and returns 0; KNIT_E_ARENA_FULL when no index is free or the bytes do not fit in
 * max_bytes. Nothing is changed on failure except collecting freed entries.
 */
int knit__arena_alloc(knit__arena_t *a, uint64_t bytes, uint32_t *index, uint32_t *start);

/* Shrink a region's recorded size to what was written, so its tail can be reused. */
void knit__arena_set_len(knit__arena_t *a, uint32_t index, uint64_t written);

/* Free a region (reader after copying, or writer rolling back). Any thread. */
static inline void knit__arena_free(_Atomic uint32_t *free_bits, uint32_t index)
{
    /* release: orders this thread's reads of the region (the copy out) before the toggle that
     * the writer acquires in knit__arena_alloc before it reuses the bytes. */
    atomic_fetch_xor_explicit(free_bits, 1u << (index & 31u), memory_order_release);
}

/* Number of regions currently live (allocated and not freed), as seen by the writer. */
uint32_t knit__arena_live(const knit__arena_t *a);

#endif
