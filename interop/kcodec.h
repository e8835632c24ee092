/*
 * knit interop - the codec in knitting mode: frames exactly as knitting writes and reads them.
 *
 * knit's own codec (codec/codec.h) keeps knitting's tags and slot layout but writes a few
 * payloads in knit's own shape: errors carry a `causeKind` field, ProcessSharedBuffer metadata
 * is knit's JSON, and typed arrays knitting rejects travel under knit's tags 64-75. This codec
 * speaks knitting's form for every kind: it handles Error (24), Symbol (26/27), external
 * payloads (44/45), ProcessSharedBuffer words (46), envelopes with an external body (49-52) and
 * NumericArray (53/54) itself, refuses knit's tags 64-75 and the process-local pointer tags
 * (47, 48), and hands every other frame to knit's codec, whose bytes are knitting's.
 *
 * Kinds knit has no value kind for travel as the nearest knit kind plus a `form` that
 * remembers knitting's: a Symbol is its key (STRING), a NumericArray its elements (TYPED
 * Float64), an external payload of an unknown codec its `[codecId, metadata]` text (JSON).
 * An Error keeps knitting's `stack` text next to the knit error value.
 */
#ifndef KNIT_INTEROP_KCODEC_H
#define KNIT_INTEROP_KCODEC_H

#include <stdint.h>

#include "codec/codec.h"

typedef enum knit__kx_form {
    KNIT__KX_PLAIN = 0,     /* a knit kind that is also knitting's */
    KNIT__KX_SYMBOL,        /* v is a STRING: the key of a Symbol.for() symbol */
    KNIT__KX_NUMERIC_ARRAY, /* v is TYPED Float64: knitting's NumericArray */
    KNIT__KX_EXTERNAL,      /* v is JSON: an external payload `[codecId, metadata]` */
} knit__kx_form_t;

typedef struct knit__kx_value {
    knit_value_t v;
    uint8_t form; /* knit__kx_form_t */
    char *stack;  /* ERROR: knitting's top-level `stack` text (owned), NULL when absent */
} knit__kx_value_t;

typedef struct knit__kx_cfg {
    knit__codec_cfg_t codec; /* maxPayloadBytes and the process boundary */
    int32_t peer_pid;        /* the process whose fds a ProcessSharedBuffer's words name; 0 = us */
} knit__kx_cfg_t;

/* Encode `kv` into header words 2-6 and the static area, dynamic payloads into `arena`.
 * Words 0, 1 and 7 are the caller's. Same failure rules as knit__encode. */
int knit__kx_encode(knit__kx_value_t *kv, uint32_t *hdr, uint8_t *stat, knit__arena_t *arena,
    const knit__kx_cfg_t *cfg);

/* Decode a frame knitting wrote (hdr: a private copy of the header words); frees its region. */
int knit__kx_decode(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *arena,
    const knit__kx_cfg_t *cfg, knit__kx_value_t *out);

/* Release an owned value (decoded) and its stack text; resets it to UNDEFINED. */
void knit__kx_free(knit__kx_value_t *kv);

/* JSON.stringify's text of a double: shortest round trip, JavaScript's exponent rules; NaN and
 * the infinities are "null". `buf` holds at least 32 bytes. Returns the length. */
size_t knit__kx_js_number(double d, char *buf);

#endif
