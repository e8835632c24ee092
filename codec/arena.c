/* knit codec - region allocator of a payload arena (see codec/arena.h). */
#include "codec/arena.h"

#include <string.h>

#include "base/error.h"

#define START_OF(e) ((e) & ~(uint32_t)31u)
#define INDEX_OF(e) ((e)&31u)

static inline uint64_t align64(uint64_t n)
{
    return (n + 63u) & ~(uint64_t)63u;
}

void knit__arena_init(knit__arena_t *a, uint8_t *base, uint64_t max_bytes, uint64_t initial,
    _Atomic uint32_t *alloc_bits, _Atomic uint32_t *free_bits)
{
    memset(a, 0, sizeof *a);
    a->base = base;
    a->max_bytes = max_bytes;
    if (initial < KNIT__ARENA_RESERVED)
        initial = KNIT__ARENA_RESERVED;
    a->capacity = initial < max_bytes ? initial : max_bytes;
    a->alloc_bits = alloc_bits;
    a->free_bits = free_bits;
    /* relaxed: both words are zero in a fresh mapping; reading them only seeds private state. */
    a->host_last = atomic_load_explicit(alloc_bits, memory_order_relaxed);
}

/* Lowest index not in `used`, or 32 when all are in use. */
static inline uint32_t lowest_free_index(uint32_t used)
{
    return used == UINT32_MAX ? 32u : (uint32_t)__builtin_ctz(~used);
}

/* Grow the logical capacity so that [start, start+size) fits; knitting's growth step. */
static int ensure_capacity(knit__arena_t *a, uint64_t end)
{
    if (end + KNIT__ARENA_RESERVED <= a->capacity)
        return 0;
    if (end + KNIT__ARENA_RESERVED > a->max_bytes)
        return KNIT_E_ARENA_FULL;
    uint64_t want = align64(KNIT__ARENA_RESERVED + end + KNIT__ARENA_GROW_PAD);
    /* Unlike knitting, a step that would pass the maximum is clamped instead of failing a
     * payload that fits. */
    a->capacity = want < a->max_bytes ? want : a->max_bytes;
    a->grows++;
    return 0;
}

/* Remove table entries whose index is in `freed`, keeping order. Returns the start of the
 * first gap of at least `size` bytes between survivors (from offset 0), or UINT64_MAX. */
static uint64_t compact(knit__arena_t *a, uint32_t freed, uint64_t size)
{
    uint32_t n = 0;
    uint64_t prev_end = 0, gap = UINT64_MAX;
    for (uint32_t i = 0; i < a->table_len; i++) {
        uint32_t e = a->table[i];
        if (freed & (1u << INDEX_OF(e)))
            continue;
        if (gap == UINT64_MAX && START_OF(e) >= prev_end + size)
            gap = prev_end;
        prev_end = (uint64_t)START_OF(e) + a->size[INDEX_OF(e)];
        a->table[n++] = e;
    }
    a->table_len = n;
    a->used_bits &= ~freed;
    return gap;
}

/* First-fit placement in the current table (no freed entries to consider). */
static uint64_t place(const knit__arena_t *a, uint64_t size)
{
    if (a->table_len == 0)
        return 0;
    if (START_OF(a->table[0]) >= size)
        return 0;
    for (uint32_t i = 0; i + 1 < a->table_len; i++) {
        uint64_t end = (uint64_t)START_OF(a->table[i]) + a->size[INDEX_OF(a->table[i])];
        if (START_OF(a->table[i + 1]) >= end + size)
            return end;
    }
    uint32_t last = a->table[a->table_len - 1];
    return (uint64_t)START_OF(last) + a->size[INDEX_OF(last)];
}

static void insert_sorted(knit__arena_t *a, uint32_t entry)
{
    uint32_t i = a->table_len;
    while (i > 0 && START_OF(a->table[i - 1]) > START_OF(entry)) {
        a->table[i] = a->table[i - 1];
        i--;
    }
    a->table[i] = entry;
    a->table_len++;
}

static void mark_allocated(knit__arena_t *a, uint32_t index, uint64_t size)
{
    a->size[index] = (uint32_t)size;
    a->used_bits |= 1u << index;
    a->host_last ^= 1u << index;
    /* relaxed: the mirror word is informational (tests and debugging read it); the protocol
     * never orders anything on it. */
    atomic_store_explicit(a->alloc_bits, a->host_last, memory_order_relaxed);
}

int knit__arena_alloc(knit__arena_t *a, uint64_t bytes, uint32_t *index, uint32_t *start)
{
    uint64_t size = align64(bytes ? bytes : 1);
    uint64_t at = UINT64_MAX;
    if (size > UINT32_MAX)
        return knit__err(KNIT_E_ARENA_FULL, "a %llu-byte region exceeds 32-bit arena offsets",
            (unsigned long long)size);

    if (a->used_bits) {
        /* acquire: pairs with the freers' release XOR, so their reads of a region happen
         * before we hand its bytes out again. */
        uint32_t fw = atomic_load_explicit(a->free_bits, memory_order_acquire);
        uint32_t freed = ~(a->host_last ^ fw) & a->used_bits;
        if (freed == a->used_bits) {
            a->table_len = 0; /* everything is free: reset to offset 0 */
            a->used_bits = 0;
        } else if (freed) {
            for (uint32_t i = 0; i < a->table_len; i++) {
                uint32_t e = a->table[i];
                if ((freed & (1u << INDEX_OF(e))) && a->size[INDEX_OF(e)] == size) {
                    /* exact fit: reuse the bytes in place under a new index */
                    uint32_t ni = lowest_free_index(a->used_bits);
                    if (ni >= KNIT__SLOTS)
                        break;
                    a->used_bits &= ~(1u << INDEX_OF(e));
                    a->table[i] = START_OF(e) | ni;
                    mark_allocated(a, ni, size);
                    *index = ni;
                    *start = START_OF(e);
                    return 0;
                }
            }
            at = compact(a, freed, size);
        }
    }

    uint32_t ni = lowest_free_index(a->used_bits);
    if (a->table_len >= KNIT__SLOTS || ni >= KNIT__SLOTS) /* only with in-place arguments */
        return knit__err(KNIT_E_FULL,
            "all %u payload regions are live (arguments read in place): wait for a worker",
            KNIT__SLOTS);
    if (at == UINT64_MAX)
        at = place(a, size);
    if (at + size > UINT32_MAX || ensure_capacity(a, at + size) < 0)
        return knit__err(KNIT_E_ARENA_FULL,
            "dynamic payload buffer capacity exceeded: need %llu bytes at offset "
            "%llu, arena holds %llu",
            (unsigned long long)size, (unsigned long long)at,
            (unsigned long long)knit__arena_usable(a));
    insert_sorted(a, (uint32_t)at | ni);
    mark_allocated(a, ni, size);
    *index = ni;
    *start = (uint32_t)at;
    return 0;
}

void knit__arena_set_len(knit__arena_t *a, uint32_t index, uint64_t written)
{
    a->size[index & 31u] = (uint32_t)align64(written ? written : 1);
}

uint32_t knit__arena_live(const knit__arena_t *a)
{
    /* acquire: see the frees that happened before this call. */
    uint32_t fw = atomic_load_explicit(a->free_bits, memory_order_acquire);
    return (uint32_t)__builtin_popcount((a->host_last ^ fw) & a->used_bits);
}
