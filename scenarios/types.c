/*
 * knit-bench scenario `types`: what each value kind costs to carry. The echo task returns its
 * argument, one value per call, 1 or 100 calls per round (burst: submitted back to back, then
 * waited for; each call timed from just before knit_call to its settlement). Kinds (the case
 * variant): null, undefined, true, f64, NaN, int64, bigint (16-byte magnitude), a short and a
 * 1 KiB string, JSON, 64 bytes, 64-byte typed arrays of every element type, Date, an error
 * {name, message} and an envelope (JSON header + 64-byte body). payload_bytes is the kind's
 * content (0 for null, undefined, true; 8 for numbers and dates; text, byte and magnitude
 * lengths otherwise); bytes count it out and back. knit and pipe transports, both runtimes
 * (the other message transports are left to `echo` and `payload` to keep the run short).
 * --quick: eight kinds on knit/thread.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "calls.h"

enum { BLOCK = 64, TEXT_1K = 1024, MAX_KINDS = 16 + KNIT_ELEM_COUNT_ };

typedef struct kind {
    char name[24];
    knit_value_t v;
    uint64_t bytes; /* content carried each way */
    bool quick;
} kind_t;

static const char *const transports[] = {"knit", "pipe", NULL};
static const uint32_t counts[] = {1, 100};

/* Element short names, in knit_elem_t order. */
static const char *const elem_names[KNIT_ELEM_COUNT_] = {"i8", "u8c", "i16", "u16", "i32", "u32",
    "f32", "f64", "i64", "u64", "dataview", "arraybuffer", "buffer"};

static const char short_text[] = "hello, knit";
static const char json_text[] = "{\"id\":42,\"tags\":[\"a\",\"b\"],\"ok\":true}";
static const char env_header[] = "{\"type\":\"frame\",\"seq\":1}";
static const uint8_t big_mag[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const knit_error_value_t error_value = {"TypeError", "knit-bench error value", NULL};
static char text_1k[TEXT_1K];
static uint8_t block[BLOCK];
static double typed_block[BLOCK / sizeof(double)]; /* aligned for every element type */
static knit_envelope_t envelope;

static void fill_storage(void)
{
    for (size_t i = 0; i < sizeof text_1k; i++)
        text_1k[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (uint8_t)(i * 7u);
    for (size_t i = 0; i < sizeof typed_block / sizeof typed_block[0]; i++)
        typed_block[i] = 1.5 * (double)i;
    envelope = (knit_envelope_t) {.header = env_header,
        .header_len = sizeof env_header - 1,
        .body = knit_v_bytes(block, sizeof block),
        .header_kind = KNIT_ENV_JSON};
}

static kind_t *add(kind_t *k, unsigned *n, const char *name, knit_value_t v, uint64_t bytes)
{
    kind_t *e = &k[(*n)++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->v = v;
    e->bytes = bytes;
    e->quick = false;
    return e;
}

/* The kinds, in run order; returns how many. */
static unsigned make_kinds(kind_t *k)
{
    unsigned n = 0;
    fill_storage();
    add(k, &n, "null", knit_v_null(), 0)->quick = true;
    add(k, &n, "undefined", knit_v_undefined(), 0);
    add(k, &n, "true", knit_v_bool(true), 0);
    add(k, &n, "f64", knit_v_f64(3.141592653589793), 8)->quick = true;
    add(k, &n, "nan", knit_v_f64(NAN), 8);
    add(k, &n, "int64", knit_v_int64(9007199254740993LL), 8);
    add(k, &n, "bigint", knit_v_bigint(false, big_mag, sizeof big_mag), sizeof big_mag);
    add(k, &n, "string-short", knit_v_strn(short_text, sizeof short_text - 1),
        sizeof short_text - 1)
        ->quick
        = true;
    add(k, &n, "string-1k", knit_v_strn(text_1k, sizeof text_1k), sizeof text_1k);
    add(k, &n, "json", knit_v_jsonn(json_text, sizeof json_text - 1), sizeof json_text - 1)->quick
        = true;
    add(k, &n, "bytes-64", knit_v_bytes(block, sizeof block), sizeof block)->quick = true;
    for (unsigned e = 0; e < KNIT_ELEM_COUNT_; e++) {
        char name[24];
        snprintf(name, sizeof name, "typed-%s", elem_names[e]);
        add(k, &n, name, knit_v_typed((knit_elem_t)e, typed_block, sizeof typed_block), BLOCK)
            ->quick
            = e == KNIT_ELEM_F64;
    }
    add(k, &n, "date", knit_v_date(1700000000000.0), 8);
    add(k, &n, "error", knit_v_error(&error_value),
        strlen(error_value.name) + strlen(error_value.message))
        ->quick
        = true;
    add(k, &n, "envelope", knit_v_envelope(&envelope), envelope.header_len + BLOCK)->quick = true;
    return n;
}

static json_t *describe(const kind_t *k)
{
    json_t *j = json_object();
    json_object_set_new(j, "value_kind", json_string(knit_kind_name((knit_kind_t)k->v.kind)));
    if (k->v.kind == KNIT_KIND_TYPED)
        json_object_set_new(j, "element", json_string(knit_elem_name((knit_elem_t)k->v.sub)));
    return j;
}

static void run_one(
    kb_ctx_t *ctx, const char *transport, const char *runtime, const kind_t *k, uint32_t count)
{
    kb_case_t c;
    kb_case_init(&c, "types", transport, runtime);
    c.batch = count;
    c.payload_bytes = k->bytes;
    snprintf(c.variant, sizeof c.variant, "%s", k->name);
    bool quick_skip = strcmp(transport, "knit") || strcmp(runtime, "thread") || !k->quick;
    if ((kb_quick(ctx) && quick_skip) || !kb_want(ctx, &c))
        return;
    kb_plan_t plan = {.rep_ns = kb_ms(ctx, 35, 15), .warmup_ns = kb_ms(ctx, 10, 5)};
    kb_calls_spec_t spec
        = {.task = KB_TASK_ECHO, .args = &k->v, .nargs = 1, .bytes_per_call = 2 * k->bytes};
    kb_calls_case(ctx, &c, &plan, NULL, &spec, describe(k));
}

int kb_scenario_types(kb_ctx_t *ctx)
{
    static kind_t kinds[MAX_KINDS];
    unsigned n = make_kinds(kinds);
    for (const char *const *t = transports; *t; t++)
        for (const char *const *r = kb_runtime_names; *r; r++)
            for (unsigned i = 0; i < n; i++)
                for (size_t j = 0; j < sizeof counts / sizeof counts[0]; j++)
                    run_one(ctx, *t, *r, &kinds[i], counts[j]);
    return 0;
}
