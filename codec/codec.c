/* knit codec - value codec: encode into a frame, decode out of it (see codec/codec.h). */
#include "codec/codec.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/error.h"
#include "codec/codec_json.h"
#include "codec/value_internal.h"

/* --- tag tables ----------------------------------------------------------------------------- */

/* Typed arrays: dynamic tag per element type; the static tag is in typed_static. */
static const uint8_t typed_dynamic[KNIT_ELEM_COUNT_] = {
    KNIT__T_I8,
    KNIT__T_U8C,
    KNIT__T_I16,
    KNIT__T_U16,
    KNIT__T_I32,
    KNIT__T_U32,
    KNIT__T_F32,
    KNIT__T_F64A,
    KNIT__T_I64A,
    KNIT__T_U64A,
    KNIT__T_DATAVIEW,
    KNIT__T_ARRAYBUFFER,
    KNIT__T_NODEBUFFER,
};
static const uint8_t typed_static[KNIT_ELEM_COUNT_] = {
    KNIT__T_STATIC_I8,
    KNIT__T_STATIC_U8C,
    KNIT__T_STATIC_I16,
    KNIT__T_STATIC_U16,
    KNIT__T_STATIC_I32,
    KNIT__T_STATIC_U32,
    KNIT__T_STATIC_F32,
    KNIT__T_STATIC_F64A,
    KNIT__T_STATIC_I64A,
    KNIT__T_STATIC_U64A,
    KNIT__T_STATIC_DATAVIEW,
    KNIT__T_STATIC_ARRAYBUFFER,
    KNIT__T_STATIC_NODEBUFFER,
};

enum place { P_NONE = 0, P_INLINE, P_STATIC, P_DYNAMIC, P_SPECIAL };

/* What each tag decodes to. */
typedef struct tag_info {
    uint8_t place;
    uint8_t kind;
    uint8_t sub;
    const char *name;
} tag_info_t;

static tag_info_t tag_table[KNIT__T_MAX_];

static void tag_def(uint32_t tag, uint8_t place, uint8_t kind, uint8_t sub, const char *name)
{
    tag_table[tag] = (tag_info_t) {place, kind, sub, name};
}

__attribute__((constructor)) static void tag_table_init(void)
{
    tag_def(KNIT__T_BIGINT_INLINE, P_INLINE, KNIT_KIND_INT64, 0, "BigIntInline");
    tag_def(KNIT__T_TRUE, P_INLINE, KNIT_KIND_BOOL, 1, "True");
    tag_def(KNIT__T_FALSE, P_INLINE, KNIT_KIND_BOOL, 0, "False");
    tag_def(KNIT__T_UNDEFINED, P_INLINE, KNIT_KIND_UNDEFINED, 0, "Undefined");
    tag_def(KNIT__T_NAN, P_INLINE, KNIT_KIND_F64, 0, "NaN");
    tag_def(KNIT__T_F64, P_INLINE, KNIT_KIND_F64, 0, "Float64");
    tag_def(KNIT__T_NULL, P_INLINE, KNIT_KIND_NULL, 0, "Null");
    tag_def(KNIT__T_DATE, P_INLINE, KNIT_KIND_DATE, 0, "Date");
    tag_def(KNIT__T_STRING, P_DYNAMIC, KNIT_KIND_STRING, 0, "String");
    tag_def(KNIT__T_STATIC_STRING, P_STATIC, KNIT_KIND_STRING, 0, "StaticString");
    tag_def(KNIT__T_JSON, P_DYNAMIC, KNIT_KIND_JSON, 0, "Json");
    tag_def(KNIT__T_STATIC_JSON, P_STATIC, KNIT_KIND_JSON, 0, "StaticJson");
    tag_def(KNIT__T_BINARY, P_DYNAMIC, KNIT_KIND_BYTES, 0, "Binary");
    tag_def(KNIT__T_STATIC_BINARY, P_STATIC, KNIT_KIND_BYTES, 0, "StaticBinary");
    tag_def(KNIT__T_BIGINT, P_DYNAMIC, KNIT_KIND_BIGINT, 0, "BigInt");
    tag_def(KNIT__T_STATIC_BIGINT, P_STATIC, KNIT_KIND_BIGINT, 0, "StaticBigInt");
    for (uint8_t e = 0; e < KNIT_ELEM_COUNT_; e++) {
        tag_def(typed_dynamic[e], P_DYNAMIC, KNIT_KIND_TYPED, e, knit_elem_name(e));
        tag_def(typed_static[e], P_STATIC, KNIT_KIND_TYPED, e, knit_elem_name(e));
    }
    tag_def(KNIT__T_ERROR, P_DYNAMIC, KNIT_KIND_ERROR, 0, "Error");
    tag_def(KNIT__T_ENV_STATIC_JSON, P_SPECIAL, KNIT_KIND_ENVELOPE, 0, "EnvelopeStaticHeader");
    tag_def(KNIT__T_ENV_DYN_JSON, P_SPECIAL, KNIT_KIND_ENVELOPE, 0, "EnvelopeDynamicHeader");
    tag_def(KNIT__T_ENV_STATIC_STRING, P_SPECIAL, KNIT_KIND_ENVELOPE, 1, "EnvelopeStaticString");
    tag_def(KNIT__T_ENV_DYN_STRING, P_SPECIAL, KNIT_KIND_ENVELOPE, 1, "EnvelopeDynamicString");
    tag_def(KNIT__T_ENV_STATIC_JSON_EXT, P_SPECIAL, KNIT_KIND_ENVELOPE, 0, "EnvelopeStaticExt");
    tag_def(KNIT__T_ENV_DYN_JSON_EXT, P_SPECIAL, KNIT_KIND_ENVELOPE, 0, "EnvelopeDynamicExt");
    tag_def(
        KNIT__T_ENV_STATIC_STRING_EXT, P_SPECIAL, KNIT_KIND_ENVELOPE, 1, "EnvelopeStaticStringExt");
    tag_def(
        KNIT__T_ENV_DYN_STRING_EXT, P_SPECIAL, KNIT_KIND_ENVELOPE, 1, "EnvelopeDynamicStringExt");
    tag_def(KNIT__T_EXTERNAL, P_DYNAMIC, KNIT_KIND_PSB, 0, "ExternalPayload");
    tag_def(KNIT__T_STATIC_EXTERNAL, P_STATIC, KNIT_KIND_PSB, 0, "StaticExternalPayload");
    tag_def(KNIT__T_PSB, P_SPECIAL, KNIT_KIND_PSB, 0, "ProcessSharedBuffer");
    tag_def(KNIT__T_MOVED, P_SPECIAL, KNIT_KIND_MOVED, 0, "BufferReference");
    tag_def(KNIT__T_SHARED, P_SPECIAL, KNIT_KIND_SHARED, 0, "SharedArrayBuffer");
}

bool knit__tag_is_dynamic(uint32_t tag)
{
    if (tag >= KNIT__T_MAX_)
        return false;
    if (tag_table[tag].place == P_DYNAMIC)
        return true;
    return tag_table[tag].kind == KNIT_KIND_ENVELOPE;
}

uint32_t knit__frame_static_bytes(const uint32_t *hdr)
{
    uint32_t tag = hdr[KNIT__W_TAG];
    if (tag >= KNIT__T_MAX_ || tag_table[tag].place == P_INLINE || tag_table[tag].place == P_NONE)
        return 0;
    if (tag_table[tag].kind == KNIT_KIND_ENVELOPE) {
        bool ext = tag >= KNIT__T_ENV_STATIC_JSON_EXT;
        bool dyn_header
            = (tag - (ext ? KNIT__T_ENV_STATIC_JSON_EXT : KNIT__T_ENV_STATIC_JSON)) & 1u;
        return dyn_header ? 0 : hdr[KNIT__W_LEN];
    }
    if (tag_table[tag].place == P_DYNAMIC)
        return 0;
    return hdr[KNIT__W_LEN] < KNIT__STATIC_BYTES ? hdr[KNIT__W_LEN] : KNIT__STATIC_BYTES;
}

uint64_t knit__frame_region_bytes(const uint32_t *hdr)
{
    uint32_t tag = hdr[KNIT__W_TAG];
    if (!knit__tag_is_dynamic(tag))
        return 0;
    if (tag_table[tag].kind != KNIT_KIND_ENVELOPE)
        return hdr[KNIT__W_LEN];
    bool ext = tag >= KNIT__T_ENV_STATIC_JSON_EXT;
    bool dyn_header = (tag - (ext ? KNIT__T_ENV_STATIC_JSON_EXT : KNIT__T_ENV_STATIC_JSON)) & 1u;
    return (dyn_header ? (uint64_t)hdr[KNIT__W_LEN] : 0) + hdr[KNIT__W_END];
}

const char *knit__tag_name(uint32_t tag)
{
    return tag < KNIT__T_MAX_ && tag_table[tag].name ? tag_table[tag].name : "unknown";
}

static void forget_pid(void);

static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

/* --- process-local pointer frames ------------------------------------------------------------ */

/* A per-process secret written next to a pointer, so a frame forged or replayed from another
 * process is refused before the pointer is dereferenced. */
static _Atomic uint64_t process_cookie;

static uint64_t cookie(void)
{
    /* relaxed: the cookie is written once (CAS below) and only compared, never used to order
     * other memory. */
    uint64_t c = atomic_load_explicit(&process_cookie, memory_order_relaxed);
    if (c)
        return c;
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)(uintptr_t)&process_cookie ^ ((uint64_t)getpid() << 32);
    r |= 1;
    uint64_t expected = 0;
    atomic_compare_exchange_strong_explicit(
        &process_cookie, &expected, r, memory_order_relaxed, memory_order_relaxed);
    return atomic_load_explicit(&process_cookie, memory_order_relaxed);
}

/* getpid() is a system call: cache it, and refresh the cache in a forked child. */
static _Atomic int32_t cached_pid;

static void forget_pid(void)
{
    atomic_store_explicit(&cached_pid, 0, memory_order_relaxed);
}

static uint32_t my_pid(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    /* relaxed: the pid is a plain value, written by this process only. */
    int32_t pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (pid == 0) {
        pthread_once(&once, register_fork_handler);
        pid = (int32_t)getpid();
        atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
    }
    return (uint32_t)pid;
}

static void put_pointer_words(uint8_t *stat, const void *p, uint64_t len)
{
    uint32_t w[8];
    uint64_t c = cookie(), ptr = (uint64_t)(uintptr_t)p;
    w[0] = (uint32_t)c;
    w[1] = (uint32_t)(c >> 32);
    w[2] = (uint32_t)ptr;
    w[3] = (uint32_t)(ptr >> 32);
    w[4] = (uint32_t)len;
    w[5] = (uint32_t)(len >> 32);
    w[6] = my_pid();
    w[7] = 0;
    memcpy(stat, w, sizeof w);
}

static int get_pointer_words(const uint8_t *stat, const char *what, void **p, uint64_t *len)
{
    uint32_t w[8];
    memcpy(w, stat, sizeof w);
    uint64_t c = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    if (w[6] != my_pid() || c != cookie())
        return knit__err(KNIT_E_PROCESS_BOUNDARY,
            "%s frame was not produced by this process (origin pid %u)", what, w[6]);
    *p = (void *)(uintptr_t)((uint64_t)w[2] | ((uint64_t)w[3] << 32));
    *len = (uint64_t)w[4] | ((uint64_t)w[5] << 32);
    return 0;
}

/* --- encoding ------------------------------------------------------------------------------- */

typedef struct piece {
    const void *p;
    size_t n;
} piece_t;

typedef struct enc {
    uint32_t *hdr;
    uint8_t *stat;
    knit__arena_t *arena;
    const knit__codec_cfg_t *cfg;
} enc_t;

static void set_words(uint32_t *hdr, uint32_t tag, uint32_t start, uint32_t end, uint32_t len)
{
    hdr[KNIT__W_TAG] = tag;
    hdr[KNIT__W_START] = start;
    hdr[KNIT__W_END] = end;
    hdr[KNIT__W_LEN] = len;
}

static void set_inline64(uint32_t *hdr, uint32_t tag, uint64_t bits)
{
    set_words(hdr, tag, (uint32_t)bits, (uint32_t)(bits >> 32), 0);
}

/* Total bytes of the pieces; KNIT_E_PAYLOAD_TOO_LARGE when the sum does not fit a size_t (a
 * corrupt or hostile length: no such value can be in memory, let alone in an arena). */
static int pieces_len(const piece_t *pc, int n, const char *label, size_t *total)
{
    size_t t = 0;
    for (int i = 0; i < n; i++) {
        if (pc[i].n > SIZE_MAX - t)
            return knit__err(KNIT_E_PAYLOAD_TOO_LARGE,
                "a %s of %zu + %zu bytes overflows the size arithmetic: check the value's "
                "length fields (no payload may exceed maxPayloadBytes)",
                label, t, pc[i].n);
        t += pc[i].n;
    }
    *total = t;
    return 0;
}

static void pieces_copy(uint8_t *dst, const piece_t *pc, int n)
{
    for (int i = 0; i < n; i++) {
        if (pc[i].n)
            memcpy(dst, pc[i].p, pc[i].n);
        dst += pc[i].n;
    }
}

/* Reserve a region for `total` bytes after checking maxPayloadBytes. */
static int reserve(enc_t *e, uint64_t total, const char *label, uint32_t *index, uint32_t *start)
{
    if (total > e->cfg->max_payload_bytes)
        return knit__err(KNIT_E_PAYLOAD_TOO_LARGE,
            "dynamic payload exceeds maxPayloadBytes: limit=%llu actual=%llu type=%s",
            (unsigned long long)e->cfg->max_payload_bytes, (unsigned long long)total, label);
    if (!e->arena)
        return knit__err(KNIT_E_ARENA_FULL, "no payload arena for a %llu-byte %s",
            (unsigned long long)total, label);
    return knit__arena_alloc(e->arena, total, index, start);
}

/* Write pieces into a region; header words START/LEN and the region index. */
static int put_dynamic(enc_t *e, uint32_t tag, const piece_t *pc, int n, const char *label)
{
    size_t total = 0;
    uint32_t index = 0, start = 0;
    int rc = pieces_len(pc, n, label, &total);
    if (rc == 0)
        rc = reserve(e, total, label, &index, &start);
    if (rc < 0)
        return rc;
    pieces_copy(knit__arena_at(e->arena, start), pc, n);
    knit__arena_set_len(e->arena, index, total);
    set_words(e->hdr, tag, start, 0, (uint32_t)total);
    knit__hdr_set_region(e->hdr, index);
    return 0;
}

/* Static when it fits (and a static tag exists), else dynamic. */
static int put_payload(
    enc_t *e, uint32_t stag, uint32_t dtag, const piece_t *pc, int n, const char *label)
{
    size_t total = 0;
    int rc = pieces_len(pc, n, label, &total);
    if (rc < 0)
        return rc;
    if (stag && total <= KNIT__STATIC_BYTES) {
        pieces_copy(e->stat, pc, n);
        set_words(e->hdr, stag, 0, 0, (uint32_t)total);
        return 0;
    }
    return put_dynamic(e, dtag, pc, n, label);
}

static int enc_bigint(enc_t *e, const knit_value_t *v)
{
    uint8_t sign = v->sub ? 1 : 0;
    piece_t pc[2] = {{&sign, 1}, {v->u.ptr, v->len}};
    return put_payload(e, KNIT__T_STATIC_BIGINT, KNIT__T_BIGINT, pc, 2, "bigint");
}

static int enc_typed(enc_t *e, const knit_value_t *v)
{
    size_t es = knit_elem_size((knit_elem_t)v->sub);
    if (es == 0)
        return knit__err(KNIT_E_UNSUPPORTED, "unknown typed-array element type %u", v->sub);
    if (v->len % es)
        return knit__err(KNIT_E_INVAL, "%s byte length %zu is not a multiple of %zu",
            knit_elem_name((knit_elem_t)v->sub), v->len, es);
    piece_t pc[1] = {{v->u.ptr, v->len}};
    return put_payload(
        e, typed_static[v->sub], typed_dynamic[v->sub], pc, 1, knit_elem_name((knit_elem_t)v->sub));
}

static int enc_error(enc_t *e, const knit_value_t *v)
{
    char *text = NULL;
    size_t len = 0;
    int rc = knit__error_to_json(v->u.err, &text, &len);
    if (rc < 0)
        return rc;
    piece_t pc[1] = {{text, len}};
    rc = put_dynamic(e, KNIT__T_ERROR, pc, 1, "error");
    free(text);
    return rc;
}

/* PSB: the numeric 8-word form when it can say everything (same process), else the external
 * JSON form, which also carries the pid that owns an fd so another process can open it. */
static int enc_psb(enc_t *e, const knit_psb_desc_t *d)
{
    /* An inconsistent range falls through to the JSON form, whose builder rejects it: the
     * decoder refuses such words, so they must never be published. */
    if (!e->cfg->process_boundary && (d->pid == 0 || (uint32_t)d->pid == my_pid()) && d->fd >= 0
        && d->name[0] == '\0' && d->size <= UINT32_MAX && d->offset <= d->size
        && d->length <= d->size - d->offset) {
        uint32_t w[8] = {(uint32_t)d->fd, (uint32_t)d->size, (uint32_t)d->size, (uint32_t)d->offset,
            (uint32_t)d->length, 0u /* runtime: other */, 1u /* kind: shared */, 0xFFFFFFFFu};
        memcpy(e->stat, w, sizeof w);
        set_words(e->hdr, KNIT__T_PSB, 0, 0, (uint32_t)sizeof w);
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = knit__psb_to_json(d, &text, &len);
    if (rc < 0)
        return rc;
    piece_t pc[1] = {{text, len}};
    rc = put_payload(e, KNIT__T_STATIC_EXTERNAL, KNIT__T_EXTERNAL, pc, 1, "ProcessSharedBuffer");
    free(text);
    return rc;
}

static int enc_envelope(enc_t *e, const knit_envelope_t *env)
{
    bool str = env->header_kind == KNIT_ENV_STRING;
    const void *body;
    size_t body_len;
    char *ext = NULL;
    bool is_ext = false;

    if (env->header_kind > KNIT_ENV_STRING)
        return knit__err(
            KNIT_E_INVAL, "envelope header kind %u is neither JSON nor string", env->header_kind);
    if (env->body.kind == KNIT_KIND_BYTES) {
        body = env->body.u.ptr;
        body_len = env->body.len;
    } else if (env->body.kind == KNIT_KIND_PSB) {
        int rc = knit__psb_to_json(env->body.u.psb, &ext, &body_len);
        if (rc < 0)
            return rc;
        body = ext;
        is_ext = true;
    } else {
        return knit__err(KNIT_E_UNSUPPORTED,
            "envelope body must be bytes or a ProcessSharedBuffer, not %s",
            knit_kind_name((knit_kind_t)env->body.kind));
    }

    static const uint8_t tags[2][2][2] = {
        /* [ext][string][dynamic header] */
        {{KNIT__T_ENV_STATIC_JSON, KNIT__T_ENV_DYN_JSON},
            {KNIT__T_ENV_STATIC_STRING, KNIT__T_ENV_DYN_STRING}},
        {{KNIT__T_ENV_STATIC_JSON_EXT, KNIT__T_ENV_DYN_JSON_EXT},
            {KNIT__T_ENV_STATIC_STRING_EXT, KNIT__T_ENV_DYN_STRING_EXT}},
    };
    bool dyn_header = env->header_len > KNIT__STATIC_BYTES;
    piece_t pc[2] = {{env->header, dyn_header ? env->header_len : 0}, {body, body_len}};
    int rc = put_dynamic(e, tags[is_ext][str][dyn_header], pc, 2, "envelope");
    if (rc == 0) {
        if (!dyn_header && env->header_len)
            memcpy(e->stat, env->header, env->header_len);
        e->hdr[KNIT__W_END] = (uint32_t)body_len;
        e->hdr[KNIT__W_LEN] = (uint32_t)env->header_len;
    }
    free(ext);
    return rc;
}

int knit__encode(knit_value_t *v, uint32_t *hdr, uint8_t *stat, knit__arena_t *arena,
    const knit__codec_cfg_t *cfg)
{
    enc_t e = {hdr, stat, arena, cfg};
    uint64_t bits;
    switch ((knit_kind_t)v->kind) {
    case KNIT_KIND_NULL:
        set_words(hdr, KNIT__T_NULL, 0, 0, 0);
        return 0;
    case KNIT_KIND_UNDEFINED:
        set_words(hdr, KNIT__T_UNDEFINED, 0, 0, 0);
        return 0;
    case KNIT_KIND_BOOL:
        set_words(hdr, v->u.b ? KNIT__T_TRUE : KNIT__T_FALSE, 0, 0, 0);
        return 0;
    case KNIT_KIND_F64:
        if (isnan(v->u.f64)) {
            set_words(hdr, KNIT__T_NAN, 0, 0, 0);
            return 0;
        }
        memcpy(&bits, &v->u.f64, sizeof bits);
        set_inline64(hdr, KNIT__T_F64, bits);
        return 0;
    case KNIT_KIND_DATE:
        memcpy(&bits, &v->u.f64, sizeof bits);
        set_inline64(hdr, KNIT__T_DATE, bits);
        return 0;
    case KNIT_KIND_INT64:
        set_inline64(hdr, KNIT__T_BIGINT_INLINE, (uint64_t)v->u.i64);
        return 0;
    case KNIT_KIND_BIGINT:
        return enc_bigint(&e, v);
    case KNIT_KIND_STRING: {
        piece_t pc[1] = {{v->u.ptr, v->len}};
        return put_payload(&e, KNIT__T_STATIC_STRING, KNIT__T_STRING, pc, 1, "string");
    }
    case KNIT_KIND_JSON: {
        piece_t pc[1] = {{v->u.ptr, v->len}};
        return put_payload(&e, KNIT__T_STATIC_JSON, KNIT__T_JSON, pc, 1, "json");
    }
    case KNIT_KIND_BYTES: {
        piece_t pc[1] = {{v->u.ptr, v->len}};
        return put_payload(&e, KNIT__T_STATIC_BINARY, KNIT__T_BINARY, pc, 1, "bytes");
    }
    case KNIT_KIND_TYPED:
        return enc_typed(&e, v);
    case KNIT_KIND_ERROR:
        return enc_error(&e, v);
    case KNIT_KIND_ENVELOPE:
        return enc_envelope(&e, v->u.env);
    case KNIT_KIND_PSB:
        return enc_psb(&e, v->u.psb);
    case KNIT_KIND_SHARED:
        if (cfg->process_boundary)
            return knit__err(KNIT_E_PROCESS_BOUNDARY,
                "a shared buffer cannot cross a process-worker boundary; use a "
                "ProcessSharedBuffer instead");
        put_pointer_words(stat, v->u.shared, v->u.shared->len);
        set_words(hdr, KNIT__T_SHARED, 0, 0, 32);
        knit_shared_buf_retain(v->u.shared); /* the reference the receiver adopts */
        return 0;
    case KNIT_KIND_MOVED:
        if (cfg->process_boundary)
            return knit__err(KNIT_E_PROCESS_BOUNDARY,
                "a moved buffer cannot cross a process-worker boundary; use a "
                "ProcessSharedBuffer instead");
        put_pointer_words(stat, v->u.moved, v->u.moved->len);
        set_words(hdr, KNIT__T_MOVED, 0, 0, 32);
        *v = knit_v_undefined(); /* ownership travels with the frame */
        return 0;
    default:
        return knit__err(KNIT_E_UNSUPPORTED, "unknown value kind %u", v->kind);
    }
}

/* --- decoding ------------------------------------------------------------------------------- */

/* Validate and locate a payload. Static: at most 512 bytes at the static area. Dynamic: inside
 * the arena mapping. */
static int locate(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *a, bool dynamic,
    uint64_t len, const uint8_t **src)
{
    if (!dynamic) {
        if (len > KNIT__STATIC_BYTES)
            return knit__err(KNIT_E_CORRUPT, "static payload length %llu exceeds %u bytes (tag %s)",
                (unsigned long long)len, KNIT__STATIC_BYTES, knit__tag_name(hdr[KNIT__W_TAG]));
        *src = stat;
        return 0;
    }
    uint64_t start = hdr[KNIT__W_START];
    if (!a || start % 64 != 0 || start + len > knit__arena_usable(a))
        return knit__err(KNIT_E_CORRUPT,
            "region [%llu, +%llu) is outside the %llu-byte arena (tag %s)",
            (unsigned long long)start, (unsigned long long)len,
            (unsigned long long)(a ? knit__arena_usable(a) : 0), knit__tag_name(hdr[KNIT__W_TAG]));
    *src = knit__arena_at(a, (uint32_t)start);
    return 0;
}

static int copy_out(const uint8_t *src, uint64_t len, void **out)
{
    uint8_t *p = malloc(len + 1);
    if (!p)
        return knit__err(KNIT_E_NOMEM, "decoding a %llu-byte payload", (unsigned long long)len);
    if (len)
        memcpy(p, src, len);
    p[len] = 0; /* text payloads are handed out NUL-terminated */
    *out = p;
    return 0;
}

static void free_region(const uint32_t *hdr, const knit__arena_t *a)
{
    knit__arena_free(a->free_bits, hdr[KNIT__W_META] & KNIT__META_REGION_MASK);
}

static int dec_buffer(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *a,
    const knit__codec_cfg_t *cfg, const tag_info_t *ti, knit_value_t *out)
{
    bool dyn = ti->place == P_DYNAMIC;
    uint64_t len = hdr[KNIT__W_LEN];
    const uint8_t *src = NULL;
    int rc = locate(hdr, stat, a, dyn, len, &src);
    if (rc < 0)
        return rc;
    knit_value_t v = knit_v_make_(ti->kind, ti->sub, 0, 0);
    if (ti->kind == KNIT_KIND_TYPED) {
        if (len % knit_elem_size((knit_elem_t)ti->sub))
            return knit__err(KNIT_E_CORRUPT, "%s payload of %llu bytes is not whole elements",
                knit_elem_name((knit_elem_t)ti->sub), (unsigned long long)len);
    }
    if (ti->kind == KNIT_KIND_BIGINT) {
        if (len < 1 || src[0] > 1)
            return knit__err(KNIT_E_CORRUPT, "bigint payload has no valid sign byte");
        v.sub = src[0];
        src++;
        len--;
        /* One representation per number (knit_v_bigint): a peer's padded magnitude or a number
         * in int64 range decodes as knit would have encoded it. */
        knit_value_t n = knit_v_bigint(v.sub, src, (size_t)len);
        if (n.kind == KNIT_KIND_INT64) {
            if (dyn)
                free_region(hdr, a);
            *out = n;
            return 0;
        }
        len = n.len;
    }
    void *p = NULL;
    uint8_t *small = len < KNIT__SMALL_BYTES && cfg->small ? cfg->small(cfg->small_ctx, hdr) : NULL;
    if (small) {
        memcpy(small, src, (size_t)len);
        small[len] = 0; /* as copy_out: text is handed out NUL-terminated */
        p = small;
        v.flags = KNIT_VF_LENT;
    } else {
        rc = copy_out(src, len, &p);
        if (rc < 0)
            return rc;
        v.flags = KNIT_VF_OWNED;
    }
    if (dyn)
        free_region(hdr, a);
    v.len = (size_t)len;
    v.u.ptr = p;
    *out = v;
    return 0;
}

static int dec_error(
    const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *a, knit_value_t *out)
{
    const uint8_t *src = NULL;
    int rc = locate(hdr, stat, a, true, hdr[KNIT__W_LEN], &src);
    if (rc < 0)
        return rc;
    knit_error_value_t *err = NULL;
    rc = knit__error_from_json((const char *)src, hdr[KNIT__W_LEN], &err);
    if (rc < 0)
        return rc;
    free_region(hdr, a);
    *out = knit_v_error(err);
    out->flags = KNIT_VF_OWNED;
    return 0;
}

/* A descriptor that would make this process open one of its own fds on a peer's word. */
static int psb_origin(const knit_psb_desc_t *d, const knit__codec_cfg_t *cfg)
{
    if (!cfg->process_boundary || d->fd < 0 || d->name[0]
        || (d->pid != 0 && !knit__psb_pid_is_ours(d->pid)))
        return 0;
    if (knit__psb_fd_is_held(d->fd))
        return 0; /* one of this process's own buffers, sent back */
    return knit__err(KNIT_E_PROCESS_BOUNDARY,
        "a ProcessSharedBuffer from another process names fd %d of this process (pid %d), "
        "which is not a buffer this process holds: refused, a peer may not open this "
        "process's other descriptors through it",
        (int)d->fd, (int)my_pid());
}

static int dec_psb_words(const uint8_t *stat, const knit__codec_cfg_t *cfg, knit_value_t *out)
{
    uint32_t w[8];
    memcpy(w, stat, sizeof w);
    if (cfg->process_boundary) /* the encoder writes this form only inside one process */
        return knit__err(KNIT_E_PROCESS_BOUNDARY,
            "a ProcessSharedBuffer in fd-word form (fd %d of this process) came from another "
            "process: refused, a peer may not open this process's own descriptors",
            (int)w[0]);
    if ((int32_t)w[0] < 0 || (uint64_t)w[3] + w[4] > w[1])
        return knit__err(KNIT_E_CORRUPT, "ProcessSharedBuffer words are inconsistent");
    knit_psb_desc_t *d = calloc(1, sizeof *d);
    if (!d)
        return knit__err(KNIT_E_NOMEM, "decoding a ProcessSharedBuffer");
    d->fd = (int32_t)w[0];
    d->size = w[1];
    d->offset = w[3];
    d->length = w[4];
    *out = knit_v_psb(d);
    out->flags = KNIT_VF_OWNED;
    return 0;
}

static int dec_external(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *a,
    const knit__codec_cfg_t *cfg, const tag_info_t *ti, knit_value_t *out)
{
    bool dyn = ti->place == P_DYNAMIC;
    const uint8_t *src = NULL;
    int rc = locate(hdr, stat, a, dyn, hdr[KNIT__W_LEN], &src);
    if (rc < 0)
        return rc;
    knit_psb_desc_t *d = NULL;
    rc = knit__psb_from_json((const char *)src, hdr[KNIT__W_LEN], &d);
    if (rc < 0)
        return rc;
    rc = psb_origin(d, cfg);
    if (rc < 0) {
        free(d);
        return rc;
    }
    if (dyn)
        free_region(hdr, a);
    *out = knit_v_psb(d);
    out->flags = KNIT_VF_OWNED;
    return 0;
}

static int dec_envelope(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *a,
    const knit__codec_cfg_t *cfg, knit_value_t *out)
{
    uint32_t tag = hdr[KNIT__W_TAG];
    bool ext = tag >= KNIT__T_ENV_STATIC_JSON_EXT;
    bool dyn_header = ((tag - (ext ? KNIT__T_ENV_STATIC_JSON_EXT : KNIT__T_ENV_STATIC_JSON)) & 1u);
    bool str = tag == KNIT__T_ENV_STATIC_STRING || tag == KNIT__T_ENV_DYN_STRING
        || tag == KNIT__T_ENV_STATIC_STRING_EXT || tag == KNIT__T_ENV_DYN_STRING_EXT;
    uint64_t hlen = hdr[KNIT__W_LEN], blen = hdr[KNIT__W_END];
    const uint8_t *region, *hsrc = stat;
    if (!dyn_header && hlen > KNIT__STATIC_BYTES)
        return knit__err(
            KNIT_E_CORRUPT, "static envelope header of %llu bytes", (unsigned long long)hlen);
    int rc = locate(hdr, stat, a, true, (dyn_header ? hlen : 0) + blen, &region);
    if (rc < 0)
        return rc;
    if (dyn_header)
        hsrc = region;
    const uint8_t *bsrc = region + (dyn_header ? hlen : 0);

    knit_envelope_t *env = calloc(1, sizeof *env);
    if (!env)
        return knit__err(KNIT_E_NOMEM, "decoding an envelope");
    void *h = NULL;
    rc = copy_out(hsrc, hlen, &h);
    if (rc == 0) {
        env->header = h;
        env->header_len = (size_t)hlen;
        env->header_kind = str ? KNIT_ENV_STRING : KNIT_ENV_JSON;
        if (ext) {
            knit_psb_desc_t *d = NULL;
            rc = knit__psb_from_json((const char *)bsrc, blen, &d);
            if (rc == 0 && (rc = psb_origin(d, cfg)) < 0)
                free(d);
            if (rc == 0) {
                env->body = knit_v_psb(d);
                env->body.flags = KNIT_VF_OWNED;
            }
        } else {
            void *b = NULL;
            rc = copy_out(bsrc, blen, &b);
            if (rc == 0) {
                env->body = knit_v_bytes(b, (size_t)blen);
                env->body.flags = KNIT_VF_OWNED;
            }
        }
    }
    knit_value_t v = knit_v_envelope(env);
    v.flags = KNIT_VF_OWNED;
    if (rc < 0) {
        knit_value_free(&v);
        return rc;
    }
    free_region(hdr, a);
    *out = v;
    return 0;
}

static int dec_pointer(
    const uint32_t *hdr, const uint8_t *stat, const knit__codec_cfg_t *cfg, knit_value_t *out)
{
    bool shared = hdr[KNIT__W_TAG] == KNIT__T_SHARED;
    const char *what = shared ? "shared buffer" : "moved buffer";
    if (cfg->process_boundary)
        return knit__err(KNIT_E_PROCESS_BOUNDARY,
            "a %s cannot cross a process-worker boundary; use a ProcessSharedBuffer "
            "instead",
            what);
    void *p = NULL;
    uint64_t len = 0;
    int rc = get_pointer_words(stat, what, &p, &len);
    if (rc < 0)
        return rc;
    if (!p)
        return knit__err(KNIT_E_CORRUPT, "%s frame carries a NULL pointer", what);
    if (shared) {
        knit_shared_buf_t *b = p;
        if (b->magic != KNIT__SHARED_MAGIC || b->len != len)
            return knit__err(KNIT_E_CORRUPT, "shared buffer frame does not point at a live buffer");
        *out = knit_v_shared(b); /* adopts the reference the encoder took */
    } else {
        knit_moved_buf_t *m = p;
        if (m->len != len)
            return knit__err(KNIT_E_CORRUPT, "moved buffer frame length mismatch");
        *out = knit_v_moved(m);
    }
    out->flags = KNIT_VF_OWNED;
    return 0;
}

/* A region larger than the lane's maxPayloadBytes: the peer's encoder would have refused it. */
static int check_region_size(const uint32_t *hdr, const knit__codec_cfg_t *cfg)
{
    uint64_t bytes = knit__frame_region_bytes(hdr);
    if (bytes <= cfg->max_payload_bytes)
        return 0;
    return knit__err(KNIT_E_CORRUPT,
        "a %s frame claims a %llu-byte region, over the lane's maxPayloadBytes (%llu)",
        knit__tag_name(hdr[KNIT__W_TAG]), (unsigned long long)bytes,
        (unsigned long long)cfg->max_payload_bytes);
}

static int decode_frame(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *arena,
    const knit__codec_cfg_t *cfg, knit_value_t *out)
{
    uint32_t tag = hdr[KNIT__W_TAG];
    uint64_t bits = (uint64_t)hdr[KNIT__W_START] | ((uint64_t)hdr[KNIT__W_END] << 32);
    *out = knit_v_undefined();
    if (tag >= KNIT__T_MAX_ || tag_table[tag].place == P_NONE)
        return knit__err(KNIT_E_CORRUPT, "unknown type tag %u", tag);
    const tag_info_t *ti = &tag_table[tag];
    /* only frames with a region (dynamic payloads, every envelope) can claim too much */
    int rc = ti->place == P_DYNAMIC || ti->kind == KNIT_KIND_ENVELOPE ? check_region_size(hdr, cfg)
                                                                      : 0;
    if (rc < 0)
        return rc;
    switch (tag) {
    case KNIT__T_NAN:
        *out = knit_v_f64(NAN);
        return 0;
    case KNIT__T_F64:
    case KNIT__T_DATE: {
        double d;
        memcpy(&d, &bits, sizeof d);
        *out = tag == KNIT__T_F64 ? knit_v_f64(d) : knit_v_date(d);
        return 0;
    }
    case KNIT__T_BIGINT_INLINE:
        *out = knit_v_int64((int64_t)bits);
        return 0;
    case KNIT__T_TRUE:
    case KNIT__T_FALSE:
        *out = knit_v_bool(ti->sub);
        return 0;
    case KNIT__T_NULL:
        *out = knit_v_null();
        return 0;
    case KNIT__T_UNDEFINED:
        return 0;
    case KNIT__T_ERROR:
        return dec_error(hdr, stat, arena, out);
    case KNIT__T_PSB:
        return dec_psb_words(stat, cfg, out);
    case KNIT__T_EXTERNAL:
    case KNIT__T_STATIC_EXTERNAL:
        return dec_external(hdr, stat, arena, cfg, ti, out);
    case KNIT__T_SHARED:
    case KNIT__T_MOVED:
        return dec_pointer(hdr, stat, cfg, out);
    default:
        if (ti->kind == KNIT_KIND_ENVELOPE)
            return dec_envelope(hdr, stat, arena, cfg, out);
        return dec_buffer(hdr, stat, arena, cfg, ti, out);
    }
}

int knit__decode(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *arena,
    const knit__codec_cfg_t *cfg, knit_value_t *out)
{
    int rc = decode_frame(hdr, stat, arena, cfg, out);
    /* A well-formed frame that could not be taken (out of memory, a codec this side does not
     * know, a descriptor this side refuses) still hands its region back, or 32 such frames would
     * jam the writer's arena. A corrupt frame keeps it: its region index cannot be trusted either.
     */
    if ((rc == KNIT_E_NOMEM || rc == KNIT_E_UNSUPPORTED || rc == KNIT_E_PROCESS_BOUNDARY) && arena
        && knit__tag_is_dynamic(hdr[KNIT__W_TAG]))
        free_region(hdr, arena);
    return rc;
}

int knit__decode_in_place(const uint32_t *hdr, const uint8_t *stat, const knit__arena_t *arena,
    const knit__codec_cfg_t *cfg, knit_value_t *out, int32_t *region)
{
    uint32_t tag = hdr[KNIT__W_TAG];
    *region = -1;
    *out = knit_v_undefined(); /* what a refused frame leaves, as knit__decode does */
    const tag_info_t *ti = tag < KNIT__T_MAX_ ? &tag_table[tag] : NULL;
    bool viewable = ti && ti->place == P_DYNAMIC && arena
        && (ti->kind == KNIT_KIND_BYTES || ti->kind == KNIT_KIND_STRING
            || ti->kind == KNIT_KIND_JSON || ti->kind == KNIT_KIND_TYPED);
    if (!viewable)
        return knit__decode(hdr, stat, arena, cfg, out);
    uint64_t len = hdr[KNIT__W_LEN];
    const uint8_t *src = NULL;
    int rc = check_region_size(hdr, cfg);
    if (rc == 0)
        rc = locate(hdr, stat, arena, true, len, &src);
    if (rc < 0)
        return rc;
    if (ti->kind == KNIT_KIND_TYPED && len % knit_elem_size((knit_elem_t)ti->sub))
        return knit__err(KNIT_E_CORRUPT, "%s payload of %llu bytes is not whole elements",
            knit_elem_name((knit_elem_t)ti->sub), (unsigned long long)len);
    *out = knit_v_make_(ti->kind, ti->sub, 0, (size_t)len);
    out->u.ptr = src;
    *region = (int32_t)(hdr[KNIT__W_META] & KNIT__META_REGION_MASK);
    return 0;
}
