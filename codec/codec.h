/*
 * knit codec - the value codec, shared by every transport (knitting-internals 3).
 *
 * Encoding writes one value into a frame (header words 2-6 and the 512-byte static area) and,
 * when it does not fit the static area, into a region of the producer's payload arena. A failed
 * encode leaves the arena as it was (any region it took is freed again) and the caller publishes
 * nothing. Decoding validates the header against the static area and the arena bounds before it
 * reads a byte, copies the payload into memory the decoded value owns, and frees the region.
 */
#ifndef KNIT_CODEC_CODEC_H
#define KNIT_CODEC_CODEC_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/arena.h"
#include "knit/value.h"

/* Type tags (header word 2). Numbers below 55 are knitting's; 64 and up are knit's own, for
 * typed arrays knitting does not carry. */
enum knit__tag {
    KNIT__T_UNREACHABLE = 0,
    KNIT__T_BIGINT_INLINE = 2,
    KNIT__T_TRUE = 3,
    KNIT__T_FALSE = 4,
    KNIT__T_UNDEFINED = 5,
    KNIT__T_NAN = 6,
    KNIT__T_F64 = 9,
    KNIT__T_NULL = 10,
    KNIT__T_STRING = 11,
    KNIT__T_JSON = 12,
    KNIT__T_STATIC_STRING = 15,
    KNIT__T_STATIC_JSON = 16,
    KNIT__T_BINARY = 17,
    KNIT__T_STATIC_BINARY = 18,
    KNIT__T_I32 = 19,
    KNIT__T_F64A = 20,
    KNIT__T_I64A = 21,
    KNIT__T_U64A = 22,
    KNIT__T_DATAVIEW = 23,
    KNIT__T_ERROR = 24,
    KNIT__T_DATE = 25,
    KNIT__T_BIGINT = 28,
    KNIT__T_STATIC_BIGINT = 29,
    KNIT__T_STATIC_I32 = 31,
    KNIT__T_STATIC_F64A = 32,
    KNIT__T_STATIC_I64A = 33,
    KNIT__T_STATIC_U64A = 34,
    KNIT__T_STATIC_DATAVIEW = 35,
    KNIT__T_ARRAYBUFFER = 36,
    KNIT__T_STATIC_ARRAYBUFFER = 37,
    KNIT__T_NODEBUFFER = 38,
    KNIT__T_STATIC_NODEBUFFER = 39,
    KNIT__T_ENV_STATIC_JSON = 40, /* JSON header static, body in a region */
    KNIT__T_ENV_DYN_JSON = 41,    /* header then body, both in one region */
    KNIT__T_ENV_STATIC_STRING = 42,
    KNIT__T_ENV_DYN_STRING = 43,
    KNIT__T_EXTERNAL = 44, /* JSON [codecId, metadata] in a region */
    KNIT__T_STATIC_EXTERNAL = 45,
    KNIT__T_PSB = 46,                 /* 8 words in the static area */
    KNIT__T_MOVED = 47,               /* knitting's BufferReference */
    KNIT__T_SHARED = 48,              /* knitting's SharedArrayBuffer by reference */
    KNIT__T_ENV_STATIC_JSON_EXT = 49, /* envelopes whose body is an external payload */
    KNIT__T_ENV_DYN_JSON_EXT = 50,
    KNIT__T_ENV_STATIC_STRING_EXT = 51,
    KNIT__T_ENV_DYN_STRING_EXT = 52,
    KNIT__T_I8 = 64, /* knit: dynamic tag 64 + 2k, static 65 + 2k */
    KNIT__T_STATIC_I8 = 65,
    KNIT__T_U8C = 66,
    KNIT__T_STATIC_U8C = 67,
    KNIT__T_I16 = 68,
    KNIT__T_STATIC_I16 = 69,
    KNIT__T_U16 = 70,
    KNIT__T_STATIC_U16 = 71,
    KNIT__T_U32 = 72,
    KNIT__T_STATIC_U32 = 73,
    KNIT__T_F32 = 74,
    KNIT__T_STATIC_F32 = 75,
    KNIT__T_MAX_ = 76
};

/* A small decoded buffer (a bytes, string, JSON, typed-array or bigint payload of fewer than
 * KNIT__SMALL_BYTES bytes, its NUL included) may go into storage its receiver keeps for it
 * instead of the heap: see knit__codec_cfg_t.small. Such a value carries KNIT_VF_LENT and
 * not KNIT_VF_OWNED, so knit_value_free() leaves it alone. */
#define KNIT__SMALL_BYTES 64u

typedef struct knit__codec_cfg {
    uint64_t max_payload_bytes; /* bytes one value may reserve in an arena */
    bool process_boundary;      /* frames cross a process: reject SHARED and MOVED */
    const bool *in_place;       /* requests: task index -> decode the argument as a view */
    uint32_t in_place_tasks;    /* entries of in_place */
    /* Optional: storage of KNIT__SMALL_BYTES (16-byte aligned) for the small buffer of the
     * frame whose header is `hdr`, or NULL for the heap. The receiver owns it and knows when
     * the value is done with (a worker: when the job's result has been sent; the host: when
     * the future is freed). Called only on a receiving side's own thread. */
    void *(*small)(void *ctx, const uint32_t *hdr);
    void *small_ctx;
} knit__codec_cfg_t;

/*
 * Encode `v` into the frame (hdr = the 8 header words, stat = the static area). Uses `arena`
 * (the producer's) for dynamic payloads; `arena` may be NULL when the caller knows the value is
 * static, in which case a dynamic value fails with KNIT_E_ARENA_FULL.
 * A MOVED value is consumed on success (*v becomes UNDEFINED); a SHARED value gains one
 * reference, which the decoder adopts.
 */
int knit__encode(knit_value_t *v, uint32_t *hdr, uint8_t *stat, knit__arena_t *arena,
    const knit__codec_cfg_t *cfg);

/*
 * Decode a frame into `out` (owned). `hdr` should be a private copy of the header words.
 * `arena` is the reader's view of the producer's arena (base and max_bytes, free word); the
 * region is freed after the copy. On KNIT_E_CORRUPT nothing is freed and `out` is UNDEFINED.
 * The peer's frame is hostile input: a region larger than cfg->max_payload_bytes is
 * KNIT_E_CORRUPT, and across a process boundary (cfg->process_boundary) a ProcessSharedBuffer
 * that would resolve to this process's own descriptors is KNIT_E_PROCESS_BOUNDARY (its region
 * is handed back).
 */
int knit__decode(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *arena,
    const knit__codec_cfg_t *cfg, knit_value_t *out);

/*
 * Decode a request whose task reads its argument in place (cfg->in_place): a buffer-like
 * payload in an arena region becomes a view into the region (not owned, region kept) and
 * `*region` its index; anything else decodes as knit__decode does and `*region` is -1. The
 * caller frees the region (knit__arena_free) once the view is no longer used. On failure `out`
 * is UNDEFINED, as with knit__decode.
 */
int knit__decode_in_place(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *arena,
    const knit__codec_cfg_t *cfg, knit_value_t *out, int32_t *region);

/* True when the tag's payload lives in an arena region (header word 6 holds its index). */
bool knit__tag_is_dynamic(uint32_t tag);

/* Bytes of the static area the frame uses (what a message transport must carry). */
uint32_t knit__frame_static_bytes(const uint32_t *hdr);

/* Bytes of the frame's payload that live in its arena region (0 for inline and static
 * payloads): what a message transport must carry after the static area. */
uint64_t knit__frame_region_bytes(const uint32_t *hdr);

/* Text name of a tag (for errors and debugging). */
const char *knit__tag_name(uint32_t tag);

#endif
