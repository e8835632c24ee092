/*
 * knit-soak - the carrier: how a call's sequence number and checksum travel inside a value of
 * any kind, and how either side checks them. Both the host (building arguments, checking
 * results) and the workers (checking arguments, building replies) use these functions; they use
 * knit's public API only.
 *
 * A tag is two 64-bit words: the *seqfield* (the call's sequence number in the low 48 bits, flags
 * in the top 8) and the *sum*, a 64-bit hash of the payload salted with the seqfield, the kind
 * and the sub-kind, so a payload moved to another call, another kind or another element type
 * fails its check. Where the tag sits depends on the kind (README.md in this folder has the
 * table); scalars carry the sequence number and a 10- or 16-bit check in the number itself.
 */
#ifndef KNIT_SOAK_CARRIER_H
#define KNIT_SOAK_CARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <knit/knit.h>
#include <knit/shared_buffer.h>

#define SK_SEQ_MASK ((UINT64_C(1) << 48) - 1)

/* Flags in the top byte of the seqfield (ignored by scalars, which carry no flags). */
#define SK_F_DIGEST       0x01u /* reply with a digest envelope instead of the echo */
#define SK_F_CORRUPT_ECHO 0x02u /* self-test: the worker flips one byte of the echoed payload */
#define SK_F_WRONG_SEQ    0x04u /* self-test: the worker retags its echo with seq - 1 */
#define SK_F_BORROWED                                                                              \
    0x08u /* the digest reply borrows the worker's thread-local memory                             \
             instead of being an owned (KNIT_VF_OWNED) value */

static inline uint32_t sk_flags(uint64_t seqfield)
{
    return (uint32_t)(seqfield >> 56);
}

/* What a check found. */
typedef struct sk_info {
    uint64_t seqfield; /* as carried (flags included) */
    uint64_t claimed;  /* the sum the tag carries */
    uint64_t actual;   /* the sum of what arrived */
} sk_info_t;

/* The checks' verdicts. */
enum { SK_OK = 0, SK_MISMATCH = 1, SK_MALFORMED = 2 };

uint64_t sk_mix64(uint64_t x);
/* A 64-bit hash of n bytes, continuing from h. Changing any one 8-byte word of the input always
 * changes the result. */
uint64_t sk_hash(uint64_t h, const void *p, size_t n);

/* The scalar encodings: int64 carries seq << 16 | 16-bit check, f64 and date carry
 * seq * 1024 + 10-bit check (exact below 2^43 calls). */
int64_t sk_scalar_i64(uint64_t seq);
double sk_scalar_f64(uint64_t seq);

/*
 * Check a value (an argument on the worker, an echo on the host): SK_OK when the tag's sum
 * matches the payload, SK_MISMATCH when it does not, SK_MALFORMED when the value is not a
 * carrier at all; `why` (may be NULL) says what was wrong. PSB values (alone or as an
 * envelope's body) are opened with knit_psb_open and read through their descriptor.
 */
int sk_check(const knit_value_t *v, sk_info_t *out, char *why, size_t why_len);

/* The digest reply: an envelope with the string header "soak-digest" and a 24-byte body
 * (seqfield, sum, mix of both). sk_digest fills `body` (24 bytes) and `env`. */
void sk_digest(uint64_t seqfield, uint64_t sum, uint8_t body[24], knit_envelope_t *env);
/* SK_OK and the seqfield/sum when `v` is an intact digest; SK_MALFORMED when it is not a digest
 * at all, SK_MISMATCH when its check word is wrong. */
int sk_check_digest(const knit_value_t *v, sk_info_t *out);
bool sk_is_digest(const knit_value_t *v);

/* Write a tag into 16 bytes / 34 characters ("#" + 32 hex digits + ":"; the JSON form uses the
 * first 33). */
void sk_put_tag(uint8_t *p, uint64_t seqfield, uint64_t sum);
void sk_put_text_tag(char *p, uint64_t seqfield, uint64_t sum);

/* The salt of a payload's sum. */
uint64_t sk_salt(uint64_t seqfield, unsigned kind, unsigned sub);

/* The sum of an error's cause (none and UNDEFINED alike), continuing from h. */
uint64_t sk_hash_cause(uint64_t h, const knit_value_t *cause);

#endif
