/*
 * Fuzz target: the region allocator of a payload arena (codec/arena.c) against a peer that
 * writes the shared words at will. The writer reads two words the peer can write: the free word
 * (toggled by readers) on every allocation, and the allocation mirror once when it attaches.
 * Whatever they hold, every region handed out must lie inside the arena, and the writer's table
 * must stay sorted, without overlaps, with distinct indices it tracks.
 *
 * Input: u16 arena size, u16 initial size, u32 allocation mirror, u32 free word, then
 * operations of one byte each plus their operands: 0 allocate (u16 bytes), 1 the writer frees
 * a region (u8 index), 2 the peer writes the free word (u32), 3 shrink the last region to what
 * was written (u16 bytes).
 */
#include <stdatomic.h>

#include "codec/arena.h"
#include "fuzz_util.h"
#include "knit/error.h"

static void check_table(const knit__arena_t *a)
{
    FZ_CHECK(a->table_len <= KNIT__SLOTS, "table of %u entries", a->table_len);
    uint64_t prev_end = 0;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < a->table_len; i++) {
        uint32_t e = a->table[i], start = e & ~31u, index = e & 31u;
        uint64_t end = (uint64_t)start + a->size[index];
        FZ_CHECK(start >= prev_end, "entry %u at %u overlaps the one before (end %llu)", i, start,
            (unsigned long long)prev_end);
        FZ_CHECK(end + KNIT__ARENA_RESERVED <= a->max_bytes, "entry %u ends at %llu, arena %llu", i,
            (unsigned long long)end, (unsigned long long)a->max_bytes);
        FZ_CHECK(!(seen & (1u << index)), "index %u twice in the table", index);
        FZ_CHECK(a->used_bits & (1u << index), "index %u in the table is not tracked", index);
        seen |= 1u << index;
        prev_end = end;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint64_t max = KNIT__ARENA_RESERVED + fz_u16(&in) * 4ull;
    uint64_t initial = fz_u16(&in) * 4ull;
    _Atomic uint32_t alloc_bits = fz_u32(&in), free_bits = fz_u32(&in);
    uint8_t *mem = malloc(max);
    knit__arena_t a;
    knit__arena_init(&a, mem, max, initial, &alloc_bits, &free_bits);
    uint32_t last = 0;
    uint64_t last_size = 0;
    for (unsigned ops = 0; in.n && ops < 256; ops++) {
        switch (fz_u8(&in) & 3u) {
        case 0: {
            uint32_t bytes = fz_u16(&in), index = 0, start = 0;
            int rc = knit__arena_alloc(&a, bytes, &index, &start);
            FZ_CHECK(rc == 0 || rc == KNIT_E_ARENA_FULL || rc == KNIT_E_FULL, "alloc: %d", rc);
            if (rc == 0) {
                FZ_CHECK(index < KNIT__SLOTS, "index %u", index);
                FZ_CHECK(start % 64 == 0, "start %u", start);
                memset(knit__arena_at(&a, start), 0xA5, bytes ? bytes : 1);
                last = index;
                last_size = bytes;
            }
            break;
        }
        case 1:
            knit__arena_free(&free_bits, fz_u8(&in) & 31u);
            break;
        case 2:
            atomic_store(&free_bits, fz_u32(&in));
            break;
        default: {
            uint32_t written = fz_u16(&in);
            if (last_size && written <= last_size)
                knit__arena_set_len(&a, last, written);
            break;
        }
        }
        check_table(&a);
        FZ_CHECK(knit__arena_live(&a) <= KNIT__SLOTS, "live count");
    }
    free(mem);
    return 0;
}
