/*
 * knit-bench scenario `payload`: bandwidth of the bytes echo. A bytes value of 8 B to 8 MiB
 * (doubling; payload_bytes is the size) goes to the echo task and back, 1 or 100 calls per
 * round (burst: submitted back to back, then waited for; each call timed from just before
 * knit_call to its settlement); bytes_per_s counts the argument and the result. Batch 100 stops
 * at 1 MiB: 100 x 8 MiB would hold 800 MiB of argument copies in the pool's backlog, and the
 * cap is written into each batch-100 entry ("batch_100_max_bytes"). Read against the `memcpy`
 * floor; the copies a round trip is assumed to make are in "copies_per_round_trip" (knit:
 * encode + decode each way = 4; message transports: 4 + 2 kernel copies each way = 8), for the
 * reader to scale with. Every transport x runtime. --quick: 8 B, 64 KiB and 1 MiB on knit and
 * pipe, thread.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)

static const uint64_t max_bytes_b1 = 8 * MIB;
static const uint64_t max_bytes_b100 = 1 * MIB;
static const uint32_t batches[] = {1, 100};

static bool quick_skips(const kb_case_t *c)
{
    bool size = c->payload_bytes == 8 || c->payload_bytes == 64 * KIB || c->payload_bytes == MIB;
    bool transport = !strcmp(c->transport, "knit") || !strcmp(c->transport, "pipe");
    return !(size && transport && !strcmp(c->runtime, "thread"));
}

static bool in_place(const kb_case_t *c)
{
    return !strcmp(c->variant, "in-place");
}

static json_t *fields(const kb_case_t *c)
{
    json_t *j = json_object();
    /* knit and seq: encode and decode each way (an argument read in place skips the worker's
     * decode copy); message transports: plus the kernel's copy in and out each way */
    int copies = !kb_shared_memory(c->transport) ? 8 : in_place(c) ? 3 : 4;
    json_object_set_new(j, "copies_per_round_trip", json_integer(copies));
    if (c->batch == 100)
        json_object_set_new(j, "batch_100_max_bytes", json_integer((json_int_t)max_bytes_b100));
    return j;
}

/* The argument bytes, made when the first case is wanted; NULL when memory ran out. */
static const uint8_t *payload_data(uint8_t **data)
{
    if (!*data && (*data = malloc(max_bytes_b1)) != NULL)
        for (uint64_t i = 0; i < max_bytes_b1; i++)
            (*data)[i] = (uint8_t)(i * 131u + (i >> 12));
    return *data;
}

static int run_one(kb_ctx_t *ctx, const kb_case_t *c, uint8_t **data)
{
    if ((kb_quick(ctx) && quick_skips(c)) || !kb_want(ctx, c))
        return 0;
    if (!payload_data(data))
        return KNIT_E_NOMEM;
    kb_plan_t plan = {.rep_ns = kb_ms(ctx, 30, 25), .warmup_ns = kb_ms(ctx, 10, 5)};
    knit_value_t arg = knit_v_bytes(*data, c->payload_bytes);
    kb_calls_spec_t spec = {.task = in_place(c) ? KB_TASK_ECHO_IN_PLACE : KB_TASK_ECHO,
        .args = &arg,
        .nargs = 1,
        .bytes_per_call = 2 * c->payload_bytes};
    kb_calls_case(ctx, c, &plan, NULL, &spec, fields(c));
    return 0;
}

static int run_sizes(
    kb_ctx_t *ctx, const char *transport, const char *runtime, uint32_t batch, uint8_t **data)
{
    uint64_t max = batch == 1 ? max_bytes_b1 : max_bytes_b100;
    int rc = 0;
    for (uint64_t size = 8; rc == 0 && size <= max; size *= 2) {
        kb_case_t c;
        kb_case_init(&c, "payload", transport, runtime);
        c.batch = batch;
        c.payload_bytes = size;
        rc = run_one(ctx, &c, data);
        if (rc == 0 && kb_shared_memory(transport) && size > 512) {
            snprintf(c.variant, sizeof c.variant, "in-place"); /* the task reads in place */
            rc = run_one(ctx, &c, data);
        }
    }
    return rc;
}

int kb_scenario_payload(kb_ctx_t *ctx)
{
    uint8_t *data = NULL;
    int rc = 0;
    for (const char *const *t = kb_transport_names; rc == 0 && *t; t++)
        for (const char *const *r = kb_runtime_names; rc == 0 && *r; r++)
            for (size_t b = 0; rc == 0 && b < sizeof batches / sizeof batches[0]; b++)
                rc = run_sizes(ctx, *t, *r, batches[b], &data);
    free(data);
    return rc;
}
