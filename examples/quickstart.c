/* knit quick start: two tasks, a pool of two workers, a few calls. */
#include <stdio.h>
#include <string.h>

#include <knit/knit.h>

/* A task takes one value and fills in one result; returning 0 resolves the call. */
static int square(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    if (arg->kind != KNIT_KIND_F64) {
        *result = knit_v_str("square wants a number");
        return KNIT_TASK_REJECT; /* the caller sees KNIT_E_TASK and this value */
    }
    *result = knit_v_f64(arg->u.f64 * arg->u.f64);
    return 0;
}

static int greet(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    static _Thread_local char buf[128];
    snprintf(buf, sizeof buf, "hello %.*s", (int)arg->len, (const char *)arg->u.ptr);
    *result = knit_v_str(buf); /* borrowed: copied when the result is sent */
    return 0;
}

int main(void)
{
    const knit_task_def_t tasks[] = {
        {.name = "square", .fn = square},
        {.name = "greet", .fn = greet},
    };
    knit_pool_opts_t opts = {.threads = 2};
    knit_pool_t *pool;
    int rc = knit_pool_create(&opts, tasks, 2, &pool);
    if (rc < 0) {
        fprintf(stderr, "knit_pool_create: %s\n", knit_errmsg());
        return 1;
    }

    knit_value_t two = knit_v_f64(2), name = knit_v_str("knit");
    knit_future_t *four, *message;
    knit_call_name(pool, "square", &two, &four);
    knit_call_name(pool, "greet", &name, &message);

    if (knit_future_wait(four, -1) == 0 && knit_future_wait(message, -1) == 0)
        printf("square(2) = %g, greet = %s\n", knit_future_value(four)->u.f64,
            (const char *)knit_future_value(message)->u.ptr);
    knit_future_release(four);
    knit_future_release(message);

    /* Many calls in flight: they queue behind the 32 slots of each lane and all settle. */
    enum { N = 1000 };
    knit_future_t *fs[N];
    double sum = 0;
    for (int i = 0; i < N; i++) {
        knit_value_t v = knit_v_f64(i);
        knit_call_name(pool, "square", &v, &fs[i]);
    }
    for (int i = 0; i < N; i++) {
        if (knit_future_wait(fs[i], -1) == 0)
            sum += knit_future_value(fs[i])->u.f64;
        knit_future_release(fs[i]);
    }
    printf("sum of squares below %d = %.0f\n", N, sum);

    knit_pool_shutdown(pool, KNIT_SHUTDOWN_DRAIN, 0);
    knit_pool_destroy(pool);
    return sum == 332833500.0 ? 0 : 1;
}
