/*
 * Fuzz target: a slot as the peer left it - 8 header words, the 512-byte static area and the
 * peer's payload arena (with its free word) - through every decode path the host and the worker
 * use: knit__slot_take (copy or in place, as the task table says), knit__decode and
 * knit__decode_in_place. A value that decodes must encode again and decode to an equal value.
 *
 * Input: u8 flags (bit 0 process boundary, bit 1 task 0 reads in place, bits 2-3 the
 * maxPayloadBytes selector), u32 header[8], 512 static bytes, u32 free word, then the arena
 * image after its 64 reserved bytes (the arena is exactly that long: AddressSanitizer sees any
 * read past it).
 */
#include <stdatomic.h>
#include <stdbool.h>

#include "codec/codec.h"
#include "fuzz_util.h"
#include "knit/error.h"
#include "transports/shm/shm_lane.h"

typedef struct frame {
    uint32_t hdr[KNIT__HDR_WORDS];
    uint8_t *stat;
    uint8_t *mem;
    _Atomic uint32_t alloc_bits, free_bits;
    knit__arena_t arena;
    knit__codec_cfg_t cfg;
    bool in_place[1];
} frame_t;

/* Touch every byte of a view into the arena, so a view past its end is reported. */
static unsigned touch(const knit_value_t *v)
{
    unsigned sum = 0;
    const uint8_t *p = v->u.ptr;
    for (size_t i = 0; i < v->len; i++)
        sum += p[i];
    return sum;
}

/* A decoded value encodes again (or fails cleanly) and decodes to an equal value. */
static void round_trip(const knit_value_t *v, const knit__codec_cfg_t *cfg)
{
    static uint8_t mem[KNIT__ARENA_RESERVED + 65536 + 64];
    static uint8_t stat[KNIT__STATIC_BYTES];
    static _Atomic uint32_t alloc_bits, free_bits;
    knit__arena_t a;
    atomic_store(&alloc_bits, 0);
    atomic_store(&free_bits, 0);
    knit__arena_init(&a, mem, sizeof mem, sizeof mem, &alloc_bits, &free_bits);
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    knit_value_t in = *v;
    int rc = knit__encode(&in, hdr, stat, &a, cfg);
    FZ_CHECK(rc <= 0, "encode returned %d", rc);
    if (rc < 0)
        return;
    knit_value_t out;
    rc = knit__decode(hdr, stat, &a, cfg, &out);
    FZ_CHECK(
        rc == 0, "a re-encoded %s does not decode: %s", knit_kind_name(v->kind), knit_errmsg());
    FZ_CHECK(knit_value_equal(v, &out), "a %s changed in a round trip", knit_kind_name(v->kind));
    FZ_CHECK(knit__arena_live(&a) == 0, "the round trip left a region live");
    knit_value_free(&out);
}

static void take_slot(frame_t *f)
{
    knit__slot_t slot;
    memcpy(slot.stat, f->stat, KNIT__STATIC_BYTES);
    memcpy(slot.hdr, f->hdr, sizeof f->hdr);
    knit__msg_t m;
    knit__slot_take(&slot, &f->arena, &f->cfg, &m);
    FZ_CHECK(m.status <= 0, "slot_take status %d", m.status);
    if (m.status < 0) {
        FZ_CHECK(m.value.kind == KNIT_KIND_UNDEFINED, "a failed decode left a %s",
            knit_kind_name(m.value.kind));
        return;
    }
    if (m.region >= 0) { /* an in-place view: not owned, its region stays until we free it */
        (void)touch(&m.value);
        knit__arena_free(m.region_free, (uint32_t)m.region);
        return;
    }
    knit_value_free(&m.value);
}

static void decode_direct(frame_t *f)
{
    knit_value_t out;
    int rc = knit__decode(f->hdr, f->stat, &f->arena, &f->cfg, &out);
    if (rc == 0) {
        round_trip(&out, &f->cfg);
        knit_value_free(&out);
    }
    int32_t region;
    rc = knit__decode_in_place(f->hdr, f->stat, &f->arena, &f->cfg, &out, &region);
    if (rc == 0 && region >= 0)
        (void)touch(&out);
    else if (rc == 0)
        knit_value_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    frame_t f = {0};
    uint32_t flags = fz_u8(&in);
    fz_take(&in, f.hdr, sizeof f.hdr);
    f.stat = malloc(KNIT__STATIC_BYTES);
    fz_take(&in, f.stat, KNIT__STATIC_BYTES);
    uint32_t free_word = fz_u32(&in);
    size_t image = in.n;
    f.mem = malloc(KNIT__ARENA_RESERVED + image);
    memset(f.mem, 0, KNIT__ARENA_RESERVED);
    fz_take(&in, f.mem + KNIT__ARENA_RESERVED, image);
    f.cfg.process_boundary = flags & 1u;
    f.cfg.max_payload_bytes = fz_max_payload(flags >> 2);
    f.in_place[0] = (flags >> 1) & 1u;
    f.cfg.in_place = f.in_place;
    f.cfg.in_place_tasks = 1;
    atomic_store(&f.free_bits, free_word);
    knit__arena_init(&f.arena, f.mem, KNIT__ARENA_RESERVED + image, KNIT__ARENA_RESERVED + image,
        &f.alloc_bits, &f.free_bits);

    take_slot(&f);
    decode_direct(&f);

    free(f.stat);
    free(f.mem);
    return 0;
}
