/* Lane layout: offsets of every slice, the arena placement and the mapping itself. */
#include "testutil.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "transports/shm/shm_lane.h"

static void test_fixed_offsets(void **state)
{
    (void)state;
    knit__layout_t l = knit__layout_make(64ull << 20, 0);
    assert_int_equal(l.abort_off, 37568);
    assert_int_equal(l.abort_bytes, 0);
    assert_int_equal(l.req_arena_off, 37568);
    assert_int_equal(l.ret_arena_off, 37568 + (64ull << 20));
    assert_int_equal(l.total, 37568 + 2 * (64ull << 20));
}

static void test_abort_bitmap_bytes(void **state)
{
    (void)state;
    assert_int_equal(knit__abort_bytes(0), 0);
    assert_int_equal(knit__abort_bytes(1), 64);
    assert_int_equal(knit__abort_bytes(258), 64); /* 9 words = 36 bytes -> one line */
    assert_int_equal(knit__abort_bytes(512), 64);
    assert_int_equal(knit__abort_bytes(513), 128);
    knit__layout_t l = knit__layout_make(1000, 258);
    assert_int_equal(l.req_arena_off, 37632);
    assert_int_equal(l.arena_bytes, 1024); /* rounded up to 64 */
}

static void test_lane_mapping_is_zeroed_and_cloexec(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 20};
    knit__shm_lane_t lane;
    assert_int_equal(knit__shm_lane_create(&lane, &cfg), 0);
    assert_true(lane.fd >= 0);
    assert_true(fcntl(lane.fd, F_GETFD) & FD_CLOEXEC);
    knit__ctrl_t *c = knit__shm_ctrl(&lane);
    /* signal words sit at +0/+64/+128 of the mapping */
    assert_ptr_equal((uint8_t *)&c->sig.op.word, lane.map + 0);
    assert_ptr_equal((uint8_t *)&c->sig.rx_status.word, lane.map + 64);
    assert_ptr_equal((uint8_t *)&c->sig.tx_status.word, lane.map + 128);
    assert_ptr_equal((uint8_t *)&c->req.q_host.word, lane.map + 192);
    assert_ptr_equal((uint8_t *)&c->ret.alloc_free.word, lane.map + 448 + 192);
    assert_ptr_equal((uint8_t *)c->ret_slab[31].hdr, lane.map + 19136 + 31 * 576 + 512);
    for (size_t i = 0; i < sizeof(knit__ctrl_t); i++)
        assert_int_equal(lane.map[i], 0);
    knit__shm_lane_close(&lane);
}

static void test_cfg_ranges(void **state)
{
    (void)state;
    knit__lane_cfg_t c = {0};
    assert_int_equal(knit__lane_cfg_resolve(&c), 0);
    assert_int_equal(c.payload_max_bytes, 64ull << 20);
    assert_int_equal(c.payload_initial_bytes, 4ull << 20);
    assert_int_equal(c.max_payload_bytes, 8ull << 20);

    knit__lane_cfg_t too_big = {.max_payload_bytes = (8ull << 20) + 1};
    assert_int_equal(knit__lane_cfg_resolve(&too_big), KNIT_E_RANGE);
    assert_non_null(strstr(knit_errmsg(), "maxPayloadBytes must be > 0 and <= 8388608"));

    knit__lane_cfg_t tiny = {.payload_max_bytes = 7};
    assert_int_equal(knit__lane_cfg_resolve(&tiny), KNIT_E_RANGE);

    knit__lane_cfg_t smallest = {.payload_max_bytes = 8};
    assert_int_equal(knit__lane_cfg_resolve(&smallest), 0);
    assert_int_equal(smallest.max_payload_bytes, 1);
    assert_int_equal(smallest.payload_initial_bytes, 8); /* clamped to the maximum */
}

static void test_attach_checks_size(void **state)
{
    (void)state;
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 20};
    knit__shm_lane_t a, b;
    assert_int_equal(knit__shm_lane_create(&a, &cfg), 0);
    knit__lane_cfg_t bigger = {.payload_max_bytes = 2 << 20};
    int fd = dup(a.fd);
    assert_int_equal(knit__shm_lane_attach(&b, fd, &bigger), KNIT_E_INVAL);
    assert_int_equal(knit__shm_lane_attach(&b, fd, &cfg), 0);
    /* both mappings see the same memory */
    knit__shm_ctrl(&a)->req_slab[3].stat[7] = 42;
    assert_int_equal(knit__shm_ctrl(&b)->req_slab[3].stat[7], 42);
    knit__shm_lane_close(&b);
    knit__shm_lane_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_offsets),
        cmocka_unit_test(test_abort_bitmap_bytes),
        cmocka_unit_test(test_lane_mapping_is_zeroed_and_cloexec),
        cmocka_unit_test(test_cfg_ranges),
        cmocka_unit_test(test_attach_checks_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
