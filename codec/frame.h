/*
 * knit codec - the frame: how one encoded value is described on the wire.
 *
 * A frame is the 8-word task header (knitting-internals 1.5) plus a 512-byte static area; a
 * payload that does not fit the static area lives in a region of a payload arena and the header
 * points at it. Every transport carries frames: the knit transport keeps them in shared slots,
 * the message transports serialise them into a byte stream.
 */
#ifndef KNIT_CODEC_FRAME_H
#define KNIT_CODEC_FRAME_H

#include <stdint.h>

#define KNIT__SLOTS          32u  /* slots per lock; also live regions per arena */
#define KNIT__STATIC_BYTES   512u /* static payload bytes per slot */
#define KNIT__HDR_WORDS      8u   /* task header words */
#define KNIT__HDR_LINE_WORDS 16u  /* header line (one cache line) */
#define KNIT__ARENA_RESERVED 64u  /* reserved bytes at the start of every payload arena */

/* Task header words. */
enum {
    KNIT__W_FN = 0,      /* request: bits 0-15 task index, 16-31 abort id + 1; response: flags */
    KNIT__W_ID = 1,      /* call id, echoed by the worker */
    KNIT__W_TAG = 2,     /* payload type tag (codec/codec.h) */
    KNIT__W_START = 3,   /* region start, or low half of an inline 64-bit value */
    KNIT__W_END = 4,     /* high half of an inline 64-bit value, or envelope body length */
    KNIT__W_LEN = 5,     /* payload bytes (envelope: header bytes) */
    KNIT__W_META = 6,    /* bits 0-4 region index, bits 5-31 enqueue stamp in ms */
    KNIT__W_SCRATCH = 7, /* knit: the producer's publication number (knitting writes 0) */
};

#define KNIT__META_REGION_MASK 0x1Fu
#define KNIT__META_STAMP_MASK  0x07FFFFFFu /* 27-bit millisecond stamp, stored in bits 5-31 */

/* Response flags in word 0. */
#define KNIT__FLAG_RESOLVE 0u
#define KNIT__FLAG_REJECT  1u
#define KNIT__FLAG_CODE    0x80000000u /* knit: reject with knit error code -(w0 & ~FLAG_CODE) */

static inline void knit__hdr_set_region(uint32_t *hdr, uint32_t region)
{
    hdr[KNIT__W_META]
        = (hdr[KNIT__W_META] & ~KNIT__META_REGION_MASK) | (region & KNIT__META_REGION_MASK);
}

static inline void knit__hdr_set_stamp(uint32_t *hdr, uint32_t ms)
{
    hdr[KNIT__W_META]
        = (hdr[KNIT__W_META] & KNIT__META_REGION_MASK) | ((ms & KNIT__META_STAMP_MASK) << 5);
}

static inline uint32_t knit__hdr_stamp(const uint32_t *hdr)
{
    return hdr[KNIT__W_META] >> 5;
}

static inline void knit__hdr_set_fn(uint32_t *hdr, uint32_t fn)
{
    hdr[KNIT__W_FN] = (hdr[KNIT__W_FN] & 0xFFFF0000u) | (fn & 0xFFFFu);
}

static inline void knit__hdr_set_abort(uint32_t *hdr, uint32_t meta)
{
    hdr[KNIT__W_FN] = (hdr[KNIT__W_FN] & 0xFFFFu) | ((meta & 0xFFFFu) << 16);
}

/* The 27-bit millisecond stamp of header word 6 for a CLOCK_MONOTONIC time. */
static inline uint32_t knit__stamp_ms(uint64_t ns)
{
    return (uint32_t)(ns / 1000000ull) & KNIT__META_STAMP_MASK;
}

/* Milliseconds from `stamp` to `now_stamp`, modulo 2^27 (the stamp wraps every ~37 h). */
static inline uint32_t knit__stamp_elapsed(uint32_t stamp, uint32_t now_stamp)
{
    return (now_stamp - stamp) & KNIT__META_STAMP_MASK;
}

#endif
