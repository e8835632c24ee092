/*
 * knit - values: what a call takes and what a task returns.
 *
 * A knit_value_t is a small tagged union. Values built with the knit_v_...() constructors
 * borrow the caller's memory (nothing is allocated; the caller keeps the memory alive until the
 * value has been sent). Values produced by decoding own their memory (flag KNIT_VF_OWNED) and
 * are released with knit_value_free(), except small ones (under 64 bytes with a NUL), which
 * the receiver lends from storage it keeps (flag KNIT_VF_LENT: a task's argument until the
 * task returns, a call's result until its future is released), so a call allocates nothing.
 * Decoding always copies out of shared memory, so a decoded value stays valid after the frame
 * that carried it has been reused.
 *
 * Text (strings, JSON, error fields, envelope headers) is UTF-8 and carried as-is; the codec
 * does not re-validate it on the hot path. knit_value_validate() checks UTF-8 and JSON syntax
 * for callers that take text from untrusted sources.
 */
#ifndef KNIT_VALUE_H
#define KNIT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum knit_kind {
    KNIT_KIND_NULL = 0,
    KNIT_KIND_UNDEFINED,
    KNIT_KIND_BOOL,
    KNIT_KIND_F64,      /* any double, NaN included */
    KNIT_KIND_INT64,    /* a JS bigint in int64 range */
    KNIT_KIND_BIGINT,   /* a big integer outside int64: sign + little-endian magnitude */
    KNIT_KIND_STRING,   /* UTF-8 text */
    KNIT_KIND_JSON,     /* JSON text (an object or array in knitting) */
    KNIT_KIND_BYTES,    /* a Uint8Array */
    KNIT_KIND_TYPED,    /* a typed array or byte container; element type in `sub` */
    KNIT_KIND_DATE,     /* milliseconds since the epoch as a double (NaN = invalid date) */
    KNIT_KIND_ERROR,    /* {name, message, cause} */
    KNIT_KIND_ENVELOPE, /* JSON or string header + binary body */
    KNIT_KIND_PSB,      /* a ProcessSharedBuffer descriptor (fd or name, size, range) */
    KNIT_KIND_SHARED,   /* a buffer shared by reference (thread workers only) */
    KNIT_KIND_MOVED,    /* a buffer whose ownership moves to the receiver (threads only) */
    KNIT_KIND_COUNT_
} knit_kind_t;

/* Element types of KNIT_KIND_TYPED (the JS typed arrays and byte containers). */
typedef enum knit_elem {
    KNIT_ELEM_I8 = 0,
    KNIT_ELEM_U8C, /* Uint8ClampedArray */
    KNIT_ELEM_I16,
    KNIT_ELEM_U16,
    KNIT_ELEM_I32,
    KNIT_ELEM_U32,
    KNIT_ELEM_F32,
    KNIT_ELEM_F64,
    KNIT_ELEM_I64,         /* BigInt64Array */
    KNIT_ELEM_U64,         /* BigUint64Array */
    KNIT_ELEM_DATAVIEW,    /* bytes seen through a DataView */
    KNIT_ELEM_ARRAYBUFFER, /* a plain ArrayBuffer */
    KNIT_ELEM_NODEBUFFER,  /* a Node.js Buffer */
    KNIT_ELEM_COUNT_
} knit_elem_t;

/* Header flavour of an envelope. */
typedef enum knit_env_header { KNIT_ENV_JSON = 0, KNIT_ENV_STRING = 1 } knit_env_header_t;

#define KNIT_VF_OWNED 0x1u /* the value owns its heap memory: knit_value_free() releases it */
/* The value's memory is lent by whoever handed it out, for as long as it says (a small decoded
 * argument: until the task returns; a small result: until its future is released);
 * knit_value_free() leaves it alone. knit_value_own() makes an owned copy to keep longer. */
#define KNIT_VF_LENT 0x2u

typedef struct knit_value knit_value_t;
typedef struct knit_shared_buf knit_shared_buf_t;

/* An error value. `cause` may be NULL; otherwise one of null, bool, f64, int64, string, json
 * or another error. */
typedef struct knit_error_value {
    const char *name;    /* NUL-terminated; "Error" when empty */
    const char *message; /* NUL-terminated */
    const knit_value_t *cause;
} knit_error_value_t;

/* A ProcessSharedBuffer descriptor: an fd (anonymous memfd) or a POSIX shm name, the size of
 * the whole object and the byte range the value refers to. */
typedef struct knit_psb_desc {
    int32_t fd;    /* -1 when the buffer is named */
    int32_t pid;   /* process that owns `fd`; 0 = this process */
    char name[32]; /* "" when the buffer is anonymous; at most 31 bytes */
    uint64_t size; /* size of the shared object */
    uint64_t offset;
    uint64_t length;
} knit_psb_desc_t;

/* A moved buffer: `release(data, ctx)` frees it; whoever holds the value owns it. */
typedef struct knit_moved_buf {
    void *data;
    size_t len;
    void (*release)(void *data, void *ctx);
    void *ctx;
} knit_moved_buf_t;

struct knit_envelope;

struct knit_value {
    uint8_t kind;   /* knit_kind_t */
    uint8_t sub;    /* TYPED: knit_elem_t; BIGINT: 1 if negative; ENVELOPE: knit_env_header_t */
    uint16_t flags; /* KNIT_VF_... */
    uint32_t reserved_;
    size_t len; /* byte length: STRING, JSON, BYTES, TYPED, BIGINT magnitude */
    union {
        bool b;
        double f64; /* F64 and DATE */
        int64_t i64;
        const void *ptr; /* STRING, JSON, BYTES, TYPED, BIGINT magnitude */
        const knit_error_value_t *err;
        const struct knit_envelope *env;
        const knit_psb_desc_t *psb;
        knit_shared_buf_t *shared;
        knit_moved_buf_t *moved;
    } u;
};

/* An envelope: a header (JSON or plain string text) and a body (BYTES or PSB value). */
typedef struct knit_envelope {
    const char *header;
    size_t header_len;
    knit_value_t body;
    uint8_t header_kind; /* knit_env_header_t */
} knit_envelope_t;

/* --- constructors (borrowing; no allocation) ----------------------------------------------- */

/* Every field is assigned, none zeroed first: compilers then write a constructed value straight
 * to its destination in three stores. (A zeroed temporary with one field set afterwards was
 * built on the stack and copied with wide loads that cannot take the narrow store's data, a
 * store-forwarding stall on every constructor in the call path.) */
static inline knit_value_t knit_v_make_(uint8_t kind, uint8_t sub, uint16_t flags, size_t len)
{
    knit_value_t v;
    v.kind = kind;
    v.sub = sub;
    v.flags = flags;
    v.reserved_ = 0;
    v.len = len;
    v.u.i64 = 0;
    return v;
}

static inline knit_value_t knit_v_null(void)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_NULL, 0, 0, 0);
    return v;
}
static inline knit_value_t knit_v_undefined(void)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_UNDEFINED, 0, 0, 0);
    return v;
}
static inline knit_value_t knit_v_bool(bool b)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_BOOL, 0, 0, 0);
    v.u.b = b;
    return v;
}
static inline knit_value_t knit_v_f64(double d)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_F64, 0, 0, 0);
    v.u.f64 = d;
    return v;
}
static inline knit_value_t knit_v_int64(int64_t i)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_INT64, 0, 0, 0);
    v.u.i64 = i;
    return v;
}
static inline knit_value_t knit_v_date(double ms)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_DATE, 0, 0, 0);
    v.u.f64 = ms;
    return v;
}
/* kind is STRING, JSON or BYTES. */
static inline knit_value_t knit_v_buf_(uint8_t kind, const void *p, size_t len)
{
    knit_value_t v = knit_v_make_(kind, 0, 0, 0);
    v.len = len;
    v.u.ptr = p;
    return v;
}
static inline knit_value_t knit_v_strn(const char *s, size_t len)
{
    return knit_v_buf_(KNIT_KIND_STRING, s, len);
}
knit_value_t knit_v_str(const char *s); /* NUL-terminated */
static inline knit_value_t knit_v_jsonn(const char *s, size_t len)
{
    return knit_v_buf_(KNIT_KIND_JSON, s, len);
}
knit_value_t knit_v_json(const char *s); /* NUL-terminated */
static inline knit_value_t knit_v_bytes(const void *p, size_t len)
{
    return knit_v_buf_(KNIT_KIND_BYTES, p, len);
}
/* `bytes` is the byte length (a multiple of knit_elem_size(elem)). */
static inline knit_value_t knit_v_typed(knit_elem_t elem, const void *p, size_t bytes)
{
    knit_value_t v = knit_v_buf_(KNIT_KIND_TYPED, p, bytes);
    v.sub = (uint8_t)elem;
    return v;
}
/*
 * A big integer from its sign and little-endian magnitude. The value is normalised: leading
 * zero bytes are ignored, and a number in int64 range becomes KNIT_KIND_INT64 (as knitting
 * encodes such bigints inline), so equal numbers always have one representation.
 * `mag` must stay alive while the value is used when the result is BIGINT.
 */
knit_value_t knit_v_bigint(bool negative, const uint8_t *mag, size_t len);
static inline knit_value_t knit_v_error(const knit_error_value_t *e)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_ERROR, 0, 0, 0);
    v.u.err = e;
    return v;
}
static inline knit_value_t knit_v_envelope(const knit_envelope_t *env)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_ENVELOPE, 0, 0, 0);
    v.sub = env->header_kind;
    v.u.env = env;
    return v;
}
static inline knit_value_t knit_v_psb(const knit_psb_desc_t *d)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_PSB, 0, 0, 0);
    v.u.psb = d;
    return v;
}
/* Borrows the caller's reference: sending it adds one reference for the receiver. */
static inline knit_value_t knit_v_shared(knit_shared_buf_t *b)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_SHARED, 0, 0, 0);
    v.u.shared = b;
    return v;
}
/*
 * Wraps a moved buffer. Sending the value moves ownership to the receiver: after a successful
 * send the sender's value reads as UNDEFINED and `m` belongs to the receiver. `m` itself must
 * come from knit_moved_new().
 */
static inline knit_value_t knit_v_moved(knit_moved_buf_t *m)
{
    knit_value_t v = knit_v_make_(KNIT_KIND_MOVED, 0, 0, 0);
    v.flags = KNIT_VF_OWNED;
    v.u.moved = m;
    return v;
}

/* --- moved and shared buffers --------------------------------------------------------------- */

/* Allocate the holder of a moved buffer; release may be NULL (then `free(data)` is used). */
int knit_moved_new(
    void *data, size_t len, void (*release)(void *, void *), void *ctx, knit_moved_buf_t **out);

/* A reference-counted buffer shared by pointer between threads of one process. */
int knit_shared_buf_new(size_t len, knit_shared_buf_t **out); /* zero-filled, refcount 1 */
void knit_shared_buf_retain(knit_shared_buf_t *b);
void knit_shared_buf_release(knit_shared_buf_t *b); /* frees at refcount 0 */
void *knit_shared_buf_data(const knit_shared_buf_t *b);
size_t knit_shared_buf_len(const knit_shared_buf_t *b);
uint32_t knit_shared_buf_refs(const knit_shared_buf_t *b);

/* --- inspection and lifetime ---------------------------------------------------------------- */

/* Size in bytes of one element; 1 for the byte containers; 0 for an unknown element type. */
size_t knit_elem_size(knit_elem_t elem);
const char *knit_kind_name(knit_kind_t kind);
const char *knit_elem_name(knit_elem_t elem);

/* Release what an owned value holds and reset it to UNDEFINED. Safe on borrowed values (then
 * only the reset happens). */
void knit_value_free(knit_value_t *v);

/* Make *v own its memory: a borrowed or lent value (KNIT_VF_LENT) becomes an owned deep copy,
 * to keep after its lender is done with it (a task keeping its argument, say). An owned value
 * is left as it is. 0, KNIT_E_NOMEM (v unchanged), or KNIT_E_INVAL for NULL. */
int knit_value_own(knit_value_t *v);

/* Deep equality. Every NaN equals every NaN (the wire carries NaN without its bits); -0 differs
 * from +0. An error whose name is empty equals one named "Error", and an UNDEFINED cause equals
 * no cause (that is how both travel). */
bool knit_value_equal(const knit_value_t *a, const knit_value_t *b);

/* 0 when the value's text is valid UTF-8 and its JSON parses; KNIT_E_INVAL otherwise, with
 * the offending position in knit_errmsg(). Recurses into errors and envelopes. */
int knit_value_validate(const knit_value_t *v);

#ifdef __cplusplus
}
#endif

#endif /* KNIT_VALUE_H */
