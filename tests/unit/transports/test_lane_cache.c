/* The lane cache (transports/shm/lane_cache.c): a reused lane reads exactly like a fresh one,
 * process lanes are never kept, the cache is bounded, a forked child never shares a lane with
 * its parent, and pools that reuse lanes see nothing of the pool before. */
#include "pool_testutil.h"

#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transports/shm/shm_lane.h"

/* 1 MiB arenas and a 128-byte abort bitmap: small enough to check every byte. */
static const knit__lane_cfg_t small = {.payload_max_bytes = 1 << 20, .abort_capacity = 1000};

/* Every byte reads zero, and the lane holds no descriptor (only its mapping). */
static void assert_fresh(const knit__shm_lane_t *lane)
{
    assert_int_equal(lane->fd, -1);
    for (uint64_t i = 0; i < lane->layout.total; i++)
        if (lane->map[i] != 0)
            fail_msg(
                "byte %llu of a reused lane is %u, not 0", (unsigned long long)i, lane->map[i]);
}

static int reset(void **state)
{
    (void)state;
    knit__lane_cache_clear();
    return 0;
}

/* Fill every byte of a lane (control block, bitmap, both arenas), release it, take it back:
 * the same memory, reading as zeros. */
static void dirty_and_reuse(const knit__lane_cfg_t *cfg)
{
    knit__shm_lane_t a, b;
    assert_int_equal(knit__shm_lane_acquire(&a, cfg), 0);
    assert_int_equal(a.fd, -1);
    uint8_t *map = a.map;
    memset(a.map, 0xA5, a.layout.total);
    knit__shm_lane_release(&a);
    assert_null(a.map);
    assert_int_equal(a.fd, -1);
    assert_int_equal(knit__lane_cache_size(), 1);

    assert_int_equal(knit__shm_lane_acquire(&b, cfg), 0);
    assert_ptr_equal(b.map, map); /* the same mapping */
    assert_int_equal(knit__lane_cache_size(), 0);
    assert_fresh(&b);
    knit__shm_lane_release(&b);
}

static void test_reused_lane_reads_as_fresh(void **state)
{
    (void)state;
    dirty_and_reuse(&small);
}

static void test_reused_tiny_lane_reads_as_fresh(void **state)
{
    (void)state;
    /* 64-byte arenas: both arena headers share the control block's last page */
    knit__lane_cfg_t tiny = {.payload_max_bytes = 8};
    dirty_and_reuse(&tiny);
}

static void test_other_layout_of_the_same_size(void **state)
{
    (void)state;
    /* no bitmap, 64 more bytes per arena: the same mapping size, other offsets */
    knit__lane_cfg_t other = {.payload_max_bytes = (1 << 20) + 64};
    knit__shm_lane_t a, b;
    assert_int_equal(knit__shm_lane_acquire(&a, &small), 0);
    uint8_t *map = a.map;
    memset(a.map, 0x5A, a.layout.total);
    knit__shm_lane_release(&a);
    assert_int_equal(knit__shm_lane_acquire(&b, &other), 0);
    assert_ptr_equal(b.map, map);
    assert_int_equal(b.layout.abort_bytes, 0);
    assert_int_equal(b.layout.req_arena_off, 37568);
    assert_fresh(&b);
    knit__shm_lane_release(&b);
}

static void test_other_size_is_fresh(void **state)
{
    (void)state;
    knit__lane_cfg_t bigger = {.payload_max_bytes = 2 << 20};
    knit__shm_lane_t a, b;
    assert_int_equal(knit__shm_lane_acquire(&a, &small), 0);
    uint8_t *map = a.map;
    knit__shm_lane_release(&a);
    assert_int_equal(knit__shm_lane_acquire(&b, &bigger), 0);
    assert_ptr_not_equal(b.map, map);             /* the small one is still mapped in the cache */
    assert_int_equal(knit__lane_cache_size(), 1); /* the small one is still there */
    knit__shm_lane_release(&b);
    assert_int_equal(knit__lane_cache_size(), 2);
}

static void test_process_lanes_are_never_kept(void **state)
{
    (void)state;
    knit__lane_cfg_t proc = small;
    proc.process_boundary = true;
    knit__shm_lane_t a;
    assert_int_equal(knit__shm_lane_acquire(&a, &proc), 0);
    assert_int_equal(a.cache_epoch, 0);
    knit__shm_lane_release(&a);
    assert_int_equal(knit__lane_cache_size(), 0);
    /* nor is a thread lane handed out to a process worker */
    assert_int_equal(knit__shm_lane_acquire(&a, &small), 0);
    knit__shm_lane_release(&a);
    assert_int_equal(knit__shm_lane_acquire(&a, &proc), 0);
    assert_int_equal(knit__lane_cache_size(), 1);
    knit__shm_lane_release(&a);
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void test_bounded_and_cleared(void **state)
{
    (void)state;
    int before = open_fds();
    enum { N = KNIT__LANE_CACHE_SLOTS + 3 };
    knit__shm_lane_t v[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(knit__shm_lane_acquire(&v[i], &small), 0);
    for (int i = 0; i < N; i++)
        knit__shm_lane_release(&v[i]);
    assert_int_equal(knit__lane_cache_size(), KNIT__LANE_CACHE_SLOTS);
    assert_int_equal(open_fds(), before); /* the cache holds mappings, no descriptors */
    knit__lane_cache_clear();
    assert_int_equal(knit__lane_cache_size(), 0);
    assert_int_equal(open_fds(), before);
}

/* The child's view of a lane shares memory with the parent's: it must neither take the
 * parent's cached lanes nor put one back. Exit status: 0, or the failed check's number. */
static int child_checks(knit__shm_lane_t *inherited)
{
    if (knit__lane_cache_size() != 0)
        return 1;
    knit__shm_lane_release(inherited); /* acquired before the fork: closed, not kept */
    if (knit__lane_cache_size() != 0)
        return 2;
    knit__shm_lane_t c;
    if (knit__shm_lane_acquire(&c, &small) != 0)
        return 3;
    memset(c.map, 0xEE, c.layout.total); /* the parent's cached lane must not see this */
    knit__shm_lane_release(&c);          /* the child's own lane may be kept */
    return knit__lane_cache_size() == 1 ? 0 : 4;
}

static void test_fork_child_never_shares(void **state)
{
    (void)state;
    knit__shm_lane_t cached, live;
    assert_int_equal(knit__shm_lane_acquire(&cached, &small), 0);
    assert_int_equal(knit__shm_lane_acquire(&live, &small), 0);
    uint8_t *cached_map = cached.map;
    knit__shm_lane_release(&cached);
    live.map[100] = 7;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_checks(&live));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the parent's lanes are untouched: the live one, and the cached one reads as zeros */
    assert_int_equal(live.map[100], 7);
    assert_int_equal(knit__lane_cache_size(), 1);
    knit__shm_lane_t again;
    assert_int_equal(knit__shm_lane_acquire(&again, &small), 0);
    assert_ptr_equal(again.map, cached_map);
    assert_fresh(&again);
    knit__shm_lane_release(&again);
    /* a lane live at the fork may still be mapped in the child's pool: never recycled */
    knit__shm_lane_release(&live);
    assert_int_equal(knit__lane_cache_size(), 1);
}

/* --- pools ---------------------------------------------------------------------------------- */

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = pt_task_echo},
    {.name = "gated", .fn = pt_task_gated},
};

/* Leave a lane as dirty as a pool can: results published and never read, requests never taken,
 * arena regions in use, the stop word set. */
static void dirty_pool(pt_gate_t *gate)
{
    knit_pool_opts_t o = {.threads = 1};
    knit_task_def_t t[2] = {tasks[0], tasks[1]};
    t[1].user_data = gate;
    knit_pool_t *pool = pt_pool(&o, t, 2);
    int echo = pt_task(pool, "echo"), gated = pt_task(pool, "gated");
    static uint8_t big[64 << 10];
    memset(big, 0x77, sizeof big);
    enum { N = 24 };
    knit_future_t *fs[N + 2];
    for (int i = 0; i < N; i++)
        fs[i] = pt_call(pool, echo, knit_v_bytes(big, sizeof big)); /* arena regions */
    fs[N] = pt_call(pool, gated, knit_v_int64(1));
    pt_gate_wait_entered(gate, 1); /* every echo result is published by now, none read */
    fs[N + 1] = pt_call(pool, echo, knit_v_int64(2)); /* a request the worker never takes */
    pt_gate_open(gate);
    knit_pool_destroy(pool);
    for (int i = 0; i < N + 2; i++)
        knit_future_release(fs[i]);
}

/* Calls one after another, each answered within 5 s (a lane that kept the old stop word or
 * queue bits would leave them hanging). */
static void echo_in_time(knit_pool_t *pool, int task, int n)
{
    for (int i = 0; i < n; i++) {
        knit_future_t *f = pt_call(pool, task, knit_v_int64(i));
        assert_int_equal(knit_future_wait(f, 5000000000ll), 0);
        assert_int_equal(knit_future_value(f)->u.i64, i);
        knit_future_release(f);
    }
}

static void test_pool_after_a_dirty_pool(void **state)
{
    (void)state;
    pt_gate_t gate;
    pt_gate_init(&gate);
    dirty_pool(&gate);
    pt_gate_destroy(&gate);
    assert_int_equal(knit__lane_cache_size(), 1);

    knit_pool_opts_t o = {.threads = 1};
    knit_pool_t *pool = pt_pool(&o, tasks, 2);
    assert_int_equal(knit__lane_cache_size(), 0); /* it took the dirty pool's lane */
    echo_in_time(pool, pt_task(pool, "echo"), 50);
    assert_int_equal(knit_pool_pending(pool), 0);
    assert_int_equal(knit_pool_progress(pool, 0), 0); /* nothing stale turns up */
    knit_pool_destroy(pool);
}

static void test_stealing_pools_in_a_row(void **state)
{
    (void)state;
    knit_pool_opts_t o = {.threads = 3, .steal = KNIT_STEAL_ON};
    for (int round = 0; round < 4; round++) {
        knit_pool_t *pool = pt_pool(&o, tasks, 2);
        assert_true(knit_pool_stealing(pool));
        int echo = pt_task(pool, "echo");
        enum { N = 100 };
        knit_future_t *fs[N];
        pt_call_range(pool, echo, fs, N, round * 1000);
        pt_wait_range(fs, N, round * 1000);
        knit_pool_destroy(pool);
        assert_int_equal(knit__lane_cache_size(), 4); /* 3 worker lanes and the shared one */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reused_lane_reads_as_fresh, reset, reset),
        cmocka_unit_test_setup_teardown(test_reused_tiny_lane_reads_as_fresh, reset, reset),
        cmocka_unit_test_setup_teardown(test_other_layout_of_the_same_size, reset, reset),
        cmocka_unit_test_setup_teardown(test_other_size_is_fresh, reset, reset),
        cmocka_unit_test_setup_teardown(test_process_lanes_are_never_kept, reset, reset),
        cmocka_unit_test_setup_teardown(test_bounded_and_cleared, reset, reset),
        cmocka_unit_test_setup_teardown(test_fork_child_never_shares, reset, reset),
        cmocka_unit_test_setup_teardown(test_pool_after_a_dirty_pool, reset, reset),
        cmocka_unit_test_setup_teardown(test_stealing_pools_in_a_row, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
