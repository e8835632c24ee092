/*
 * knit-micro: value codec benchmarks (codec/...).
 *
 * One iteration encodes a value with knit__encode() into slot 0 of a real lane's request slab
 * (static area) or the lane's request arena (dynamic payloads), decodes it with knit__decode()
 * through the worker's view of the same arena (which copies it out and frees the region), and
 * frees the decoded value. Single thread: this is the codec's cost, not the transport's.
 *
 * Names: codec/<kind> for the inline kinds, codec/<kind>/<bytes> for the sized ones, where
 * <bytes> is the payload size (bytes, text, typed-array bytes, bigint sign + magnitude, error
 * message, envelope body). 512 bytes still fits a slot's static area; 513 is the first dynamic
 * size. bytes_per_second counts the frame's payload bytes once per encode+decode; the label
 * names the tag the value travelled as (Static... = in the slot).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "gbench/gbench.h"
#include "knit/error.h"
#include "knit/value.h"
#include "micro.h"
#include "transports/shm/shm_lane.h"

/* Everything one benchmark run needs: the lane, the value under test and its backing memory. */
typedef struct fixture {
    knit__shm_lane_t lane;
    knit__endpoint_t host;   /* encodes into its request slot and request arena */
    knit__endpoint_t worker; /* decodes with its view of the request arena */
    knit__slot_t *slot;
    uint8_t *buf; /* payload bytes / text / body, owned by the fixture */
    size_t len;
    knit_error_value_t err;
    knit_envelope_t env;
    knit_psb_desc_t psb;
    knit_shared_buf_t *shared;
    knit_value_t value;
} fixture_t;

typedef struct codec_case codec_case_t;

/* Build f->value for a payload of `size` bytes (0 for the inline kinds); 0 or a knit error. */
typedef int (*make_fn)(fixture_t *f, const codec_case_t *c, size_t size);

struct codec_case {
    const char *name; /* the part after "codec/" */
    make_fn make;
    uint8_t elem;        /* typed arrays: knit_elem_t */
    bool remake;         /* encoding consumes the value: build it again every iteration */
    const size_t *sizes; /* zero-terminated; NULL = inline kind, no size */
};

/* --- fixture ---------------------------------------------------------------------------------- */

/* 0, or a negative knit error after skipping the benchmark. */
static int fixture_open(fixture_t *f, knit_gbench_state_t *st)
{
    memset(f, 0, sizeof *f);
    int rc = knit_micro_lane_open(st, &f->lane, &f->host, &f->worker);
    if (rc < 0)
        return rc;
    f->slot = &f->host.tx_slab[0];
    return 0;
}

static void fixture_close(fixture_t *f)
{
    knit_value_free(&f->value); /* only an owned (moved) value releases anything */
    if (f->shared)
        knit_shared_buf_release(f->shared);
    free(f->buf);
    knit__shm_lane_close(&f->lane);
}

/* A buffer of `len` bytes filled with a repeating printable pattern (valid UTF-8 text). */
static int fixture_fill(fixture_t *f, size_t len)
{
    f->buf = malloc(len ? len : 1);
    if (!f->buf)
        return KNIT_E_NOMEM;
    for (size_t i = 0; i < len; i++)
        f->buf[i] = (uint8_t)('a' + i % 26);
    f->len = len;
    return 0;
}

/* --- value builders -------------------------------------------------------------------------- */

static int make_null(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->value = knit_v_null();
    return 0;
}

static int make_undefined(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->value = knit_v_undefined();
    return 0;
}

static int make_bool(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->value = knit_v_bool(true);
    return 0;
}

static int make_f64(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->value = knit_v_f64(3.141592653589793);
    return 0;
}

static int make_nan(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->value = knit_v_f64(__builtin_nan(""));
    return 0;
}

static int make_int64(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->value = knit_v_int64(-1234567890123456789LL);
    return 0;
}

static int make_date(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->value = knit_v_date(1767225600000.0); /* 2026-01-01T00:00:00Z */
    return 0;
}

static int make_bytes(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c;
    int rc = fixture_fill(f, size);
    f->value = knit_v_bytes(f->buf, size);
    return rc;
}

static int make_string(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c;
    int rc = fixture_fill(f, size);
    f->value = knit_v_strn((const char *)f->buf, size);
    return rc;
}

/* JSON text of exactly `size` bytes (at least 4): a one-string array ["aaa..."]. */
static int make_json(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c;
    if (size < 4)
        return KNIT_E_INVAL;
    int rc = fixture_fill(f, size);
    if (rc < 0)
        return rc;
    memcpy(f->buf, "[\"", 2);
    memcpy(f->buf + size - 2, "\"]", 2);
    f->value = knit_v_jsonn((const char *)f->buf, size);
    return 0;
}

/* A negative bigint whose payload (sign byte + magnitude) is `size` bytes; size >= 9 so that
 * the number lies outside int64. */
static int make_bigint(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c;
    if (size < 9)
        return KNIT_E_INVAL;
    int rc = fixture_fill(f, size - 1);
    if (rc < 0)
        return rc;
    f->buf[size - 2] = 0xFF; /* top magnitude byte: at least 2^(8 * (size - 2) + 7) */
    f->value = knit_v_bigint(true, f->buf, size - 1);
    return f->value.kind == KNIT_KIND_BIGINT ? 0 : KNIT_E_INVAL;
}

static int make_typed(fixture_t *f, const codec_case_t *c, size_t size)
{
    int rc = fixture_fill(f, size);
    f->value = knit_v_typed((knit_elem_t)c->elem, f->buf, size);
    return rc;
}

/* An error whose message is `size` bytes of text. */
static int make_error(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c;
    int rc = fixture_fill(f, size + 1);
    if (rc < 0)
        return rc;
    f->buf[size] = '\0';
    f->err.name = "RangeError";
    f->err.message = (const char *)f->buf;
    f->err.cause = NULL;
    f->value = knit_v_error(&f->err);
    return 0;
}

#define ENVELOPE_HEADER "{\"type\":\"frame\",\"seq\":42,\"codec\":\"raw\"}"

/* An envelope: a short JSON header (static) and a body of `size` bytes (in a region). */
static int make_envelope(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c;
    int rc = fixture_fill(f, size);
    f->env.header = ENVELOPE_HEADER;
    f->env.header_len = sizeof ENVELOPE_HEADER - 1;
    f->env.header_kind = KNIT_ENV_JSON;
    f->env.body = knit_v_bytes(f->buf, size);
    f->value = knit_v_envelope(&f->env);
    return rc;
}

/* An envelope whose 1 KiB string header is too large for the slot: header and body share one
 * region. The body is `size` bytes after the header in the same buffer. */
static int make_envelope_dynhdr(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c;
    enum { HEADER_BYTES = 1024 };
    int rc = fixture_fill(f, HEADER_BYTES + size);
    f->env.header = (const char *)f->buf;
    f->env.header_len = HEADER_BYTES;
    f->env.header_kind = KNIT_ENV_STRING;
    f->env.body = knit_v_bytes(f->buf + HEADER_BYTES, size);
    f->value = knit_v_envelope(&f->env);
    return rc;
}

/* A ProcessSharedBuffer on an fd: knitting's 8-word static form. */
static int make_psb(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->psb = (knit_psb_desc_t) {.fd = f->lane.fd, .size = 1u << 20, .offset = 4096, .length = 8192};
    f->value = knit_v_psb(&f->psb);
    return 0;
}

/* A named ProcessSharedBuffer: the external-payload JSON form. */
static int make_psb_named(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    f->psb = (knit_psb_desc_t) {.fd = -1, .size = 1u << 20, .offset = 4096, .length = 8192};
    snprintf(f->psb.name, sizeof f->psb.name, "/knit-micro-psb");
    f->value = knit_v_psb(&f->psb);
    return 0;
}

/* A shared buffer: the frame carries a pointer and one reference, which decoding adopts and
 * knit_value_free() drops again. */
static int make_shared(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    if (!f->shared) {
        int rc = knit_shared_buf_new(4096, &f->shared);
        if (rc < 0)
            return rc;
    }
    f->value = knit_v_shared(f->shared);
    return 0;
}

static void release_nothing(void *data, void *ctx)
{
    (void)data, (void)ctx;
}

/* A moved buffer: encoding consumes it, so a fresh holder is made for every iteration (one
 * small malloc, counted in the time); its bytes belong to the fixture. */
static int make_moved(fixture_t *f, const codec_case_t *c, size_t size)
{
    (void)c, (void)size;
    if (!f->buf) {
        int rc = fixture_fill(f, 4096);
        if (rc < 0)
            return rc;
    }
    knit_moved_buf_t *m = NULL;
    int rc = knit_moved_new(f->buf, f->len, release_nothing, NULL, &m);
    if (rc < 0)
        return rc;
    f->value = knit_v_moved(m);
    return 0;
}

/* --- the case table -------------------------------------------------------------------------- */

static const size_t sizes_std[] = {8, 512, 513, 4096, 1048576, 0};
static const size_t sizes_typed[] = {8, 512, 4096, 1048576, 0};
static const size_t sizes_bigint[] = {9, 512, 513, 4096, 1048576, 0};
static const size_t sizes_body[] = {8, 512, 4096, 1048576, 0};
static const size_t sizes_dynhdr[] = {4096, 0};

/* Short element names for benchmark names, indexed by knit_elem_t. */
static const char *const elem_short[KNIT_ELEM_COUNT_] = {
    "i8",
    "u8c",
    "i16",
    "u16",
    "i32",
    "u32",
    "f32",
    "f64",
    "i64",
    "u64",
    "dataview",
    "arraybuffer",
    "nodebuffer",
};

static const codec_case_t fixed_cases[] = {
    {"null", make_null, 0, false, NULL},
    {"undefined", make_undefined, 0, false, NULL},
    {"bool", make_bool, 0, false, NULL},
    {"f64", make_f64, 0, false, NULL},
    {"f64_nan", make_nan, 0, false, NULL},
    {"int64", make_int64, 0, false, NULL},
    {"date", make_date, 0, false, NULL},
    {"bigint", make_bigint, 0, false, sizes_bigint},
    {"bytes", make_bytes, 0, false, sizes_std},
    {"string", make_string, 0, false, sizes_std},
    {"json", make_json, 0, false, sizes_std},
    {"error", make_error, 0, false, sizes_body},
    {"envelope", make_envelope, 0, false, sizes_body},
    {"envelope_dynhdr", make_envelope_dynhdr, 0, false, sizes_dynhdr},
    {"psb", make_psb, 0, false, NULL},
    {"psb_named", make_psb_named, 0, false, NULL},
    {"shared", make_shared, 0, false, NULL},
    {"moved", make_moved, 0, true, NULL},
};

/* One case per typed-array element type, filled in at registration. */
static codec_case_t typed_cases[KNIT_ELEM_COUNT_];
static char typed_names[KNIT_ELEM_COUNT_][32];

/* --- the benchmark --------------------------------------------------------------------------- */

/* Encode v into the slot (and arena), then decode it as the worker would. */
static inline int round_trip(fixture_t *f, knit_value_t *v, knit_value_t *out)
{
    int rc = knit__encode(v, f->slot->hdr, f->slot->stat, &f->host.tx_arena, &f->host.codec);
    if (rc < 0)
        return rc;
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, f->slot->hdr, sizeof hdr); /* the reader decodes from a private header copy */
    return knit__decode(hdr, f->slot->stat, &f->worker.rx_arena, &f->worker.codec, out);
}

/* Payload bytes the frame carried (envelopes: header + body). */
static uint64_t frame_payload_bytes(const uint32_t *hdr)
{
    uint32_t tag = hdr[KNIT__W_TAG];
    uint64_t n = hdr[KNIT__W_LEN];
    if (tag >= KNIT__T_ENV_STATIC_JSON && tag <= KNIT__T_ENV_DYN_STRING)
        n += hdr[KNIT__W_END];
    return n;
}

/*
 * One untimed round trip: checks that the value survives (so the timed loop measures a
 * working path), faults in the arena pages and reports the tag. Returns the frame's payload
 * bytes, or a negative knit error.
 */
static int64_t warm_up(fixture_t *f, knit_gbench_state_t *st)
{
    knit_value_t copy = f->value, out;
    int rc = round_trip(f, &f->value, &out);
    if (rc < 0) {
        knit_micro_fail(st, "warm-up round trip", rc);
        return rc;
    }
    /* a moved value was consumed by encoding; compare what it carried instead */
    bool same = copy.kind == KNIT_KIND_MOVED
        ? out.kind == KNIT_KIND_MOVED && out.u.moved == copy.u.moved
        : knit_value_equal(&f->value, &out);
    knit_value_free(&out);
    if (!same) {
        knit_gbench_skip_with_errorf(st, "decoded %s differs from the encoded value",
            knit_kind_name((knit_kind_t)copy.kind));
        return KNIT_E_CORRUPT;
    }
    knit_gbench_set_label(st, knit__tag_name(f->slot->hdr[KNIT__W_TAG]));
    return (int64_t)frame_payload_bytes(f->slot->hdr);
}

/* The timed loop; 0 or a negative knit error (already reported). */
static int codec_loop(fixture_t *f, const codec_case_t *c, knit_gbench_state_t *st)
{
    size_t size = (size_t)knit_gbench_arg(st);
    knit_value_t out;
    while (knit_gbench_keep_running(st, 1)) {
        if (c->remake) {
            int rc = c->make(f, c, size);
            if (rc < 0) {
                knit_micro_fail(st, "building the value", rc);
                return rc;
            }
        }
        int rc = round_trip(f, &f->value, &out);
        if (rc < 0) {
            knit_micro_fail(st, "encode+decode", rc);
            return rc;
        }
        knit_value_free(&out);
    }
    return 0;
}

/* Build the value and check it once; the frame's payload bytes, or a negative knit error. */
static int64_t prepare(fixture_t *f, const codec_case_t *c, knit_gbench_state_t *st)
{
    int rc = c->make(f, c, (size_t)knit_gbench_arg(st));
    if (rc < 0) {
        knit_micro_fail(st, "building the value", rc);
        return rc;
    }
    return warm_up(f, st);
}

static int bm_codec(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    const codec_case_t *c = def->user_data;
    fixture_t f;
    int rc = fixture_open(&f, st);
    if (rc < 0)
        return rc;
    int64_t payload = prepare(&f, c, st);
    rc = payload < 0 ? (int)payload : codec_loop(&f, c, st);
    if (rc == 0) {
        uint64_t n = knit_gbench_iterations(st);
        knit_gbench_set_items_processed(st, (int64_t)n);
        if (c->sizes)
            knit_gbench_set_bytes_processed(st, (int64_t)n * payload);
    }
    fixture_close(&f);
    return rc;
}

/* --- registration ---------------------------------------------------------------------------- */

static int register_case(const codec_case_t *c)
{
    char name[96];
    knit_gbench_def_t def = {.run = bm_codec, .user_data = (void *)c, .name = name};
    if (!c->sizes) {
        snprintf(name, sizeof name, "codec/%s", c->name);
        return knit_gbench_register(&def);
    }
    for (const size_t *s = c->sizes; *s; s++) {
        snprintf(name, sizeof name, "codec/%s/%zu", c->name, *s);
        def.arg = (int64_t)*s;
        int rc = knit_gbench_register(&def);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int knit_micro_register_codec(void)
{
    for (size_t i = 0; i < sizeof fixed_cases / sizeof fixed_cases[0]; i++) {
        int rc = register_case(&fixed_cases[i]);
        if (rc < 0)
            return rc;
    }
    for (unsigned e = 0; e < KNIT_ELEM_COUNT_; e++) {
        const char *elem = elem_short[e] ? elem_short[e] : knit_elem_name((knit_elem_t)e);
        snprintf(typed_names[e], sizeof typed_names[e], "typed/%s", elem);
        typed_cases[e]
            = (codec_case_t) {typed_names[e], make_typed, (uint8_t)e, false, sizes_typed};
        int rc = register_case(&typed_cases[e]);
        if (rc < 0)
            return rc;
    }
    return 0;
}
