/*
 * Fuzz target: what a knitting peer can write, read by knit's interop side (interop/): a slot
 * decoded by the codec in knitting mode (knit__kx_decode), and - when the input starts with
 * '{' - a process-worker boot payload read by knit-knitting-worker (knit__kw_parse_boot and the
 * bounds check of knit__kw_map, which refuses or maps; a mapping is never made here because
 * the fd is -1). A value that decodes must encode again in knitting's form and decode to an
 * equal value (same kind, form and stack).
 *
 * Input (slot): u8 flags (bit 0 process boundary, bits 2-3 the maxPayloadBytes selector),
 * u32 header[8], 512 static bytes, u32 free word, then the arena image after its 64 reserved
 * bytes (the arena is exactly that long).
 */
#include <stdatomic.h>
#include <stdbool.h>

#include "fuzz_util.h"
#include "interop/kcodec.h"
#include "interop/kworker.h"
#include "knit/error.h"

static void round_trip(const knit__kx_value_t *v, const knit__kx_cfg_t *cfg)
{
    static uint8_t mem[KNIT__ARENA_RESERVED + 65536 + 64];
    static uint8_t stat[KNIT__STATIC_BYTES];
    static _Atomic uint32_t alloc_bits, free_bits;
    knit__arena_t a;
    atomic_store(&alloc_bits, 0);
    atomic_store(&free_bits, 0);
    knit__arena_init(&a, mem, sizeof mem, sizeof mem, &alloc_bits, &free_bits);
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    knit__kx_value_t in = *v;
    int rc = knit__kx_encode(&in, hdr, stat, &a, cfg);
    FZ_CHECK(rc <= 0, "encode returned %d", rc);
    if (rc < 0)
        return;
    knit__kx_value_t out;
    rc = knit__kx_decode(hdr, stat, &a, cfg, &out);
    FZ_CHECK(rc == 0, "a re-encoded %s (tag %u) does not decode: %s", knit_kind_name(v->v.kind),
        hdr[KNIT__W_TAG], knit_errmsg());
    FZ_CHECK(knit_value_equal(&v->v, &out.v) && v->form == out.form, "a %s changed in a round trip",
        knit_kind_name(v->v.kind));
    FZ_CHECK((v->stack == NULL) == (out.stack == NULL)
            && (!v->stack || strcmp(v->stack, out.stack) == 0),
        "an error's stack changed in a round trip");
    FZ_CHECK(knit__arena_live(&a) == 0, "the round trip left a region live");
    knit__kx_free(&out);
}

static void boot(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    knit__kw_boot_t b;
    if (knit__kw_parse_boot(text, &b) == 0) {
        b.fd = -1; /* never map: the bounds check runs, then mmap of fd -1 fails */
        b.shm_name[0] = 0;
        uint8_t *base = NULL;
        FZ_CHECK(knit__kw_map(&b, &base) < 0, "mapped a fuzzed lane");
        knit__kw_boot_free(&b);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && data[0] == '{') {
        boot(data, size);
        return 0;
    }
    fz_in_t in = {data, size};
    uint32_t hdr[KNIT__HDR_WORDS];
    uint32_t flags = fz_u8(&in);
    fz_take(&in, hdr, sizeof hdr);
    uint8_t *stat = malloc(KNIT__STATIC_BYTES);
    fz_take(&in, stat, KNIT__STATIC_BYTES);
    _Atomic uint32_t alloc_bits = 0, free_bits = fz_u32(&in);
    size_t image = in.n;
    uint8_t *mem = malloc(KNIT__ARENA_RESERVED + image);
    memset(mem, 0, KNIT__ARENA_RESERVED);
    fz_take(&in, mem + KNIT__ARENA_RESERVED, image);
    knit__arena_t a;
    knit__arena_init(&a, mem, KNIT__ARENA_RESERVED + image, KNIT__ARENA_RESERVED + image,
        &alloc_bits, &free_bits);
    knit__kx_cfg_t cfg = {
        .codec = {.max_payload_bytes = fz_max_payload(flags >> 2), .process_boundary = flags & 1u},
        .peer_pid = 4242};
    knit__kx_value_t v;
    int rc = knit__kx_decode(hdr, stat, &a, &cfg, &v);
    FZ_CHECK(rc <= 0, "decode returned %d", rc);
    if (rc == 0) {
        round_trip(&v, &cfg);
        knit__kx_free(&v);
    } else {
        FZ_CHECK(v.v.kind == KNIT_KIND_UNDEFINED && v.stack == NULL, "a refused frame left %s",
            knit_kind_name(v.v.kind));
    }
    free(stat);
    free(mem);
    return 0;
}
