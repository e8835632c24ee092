/*
 * The codec against a hostile peer: lengths that wrap the encoder's size arithmetic, regions
 * larger than the lane's maxPayloadBytes, ProcessSharedBuffer references that would make this
 * process open its own descriptors, and buffers a peer could shrink under the other side's
 * mapping. Each case here was a hole first; the arena and static area sit on the heap at their
 * exact sizes so AddressSanitizer sees any read past them.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/codec.h"
#include "knit/error.h"
#include "knit/shared_buffer.h"

#define USABLE      65536u
#define ARENA_BYTES (USABLE + KNIT__ARENA_RESERVED)
#define MAX_PAYLOAD 1024u

typedef struct hx {
    uint32_t hdr[KNIT__HDR_WORDS];
    uint8_t *stat;
    uint8_t *mem;
    _Atomic uint32_t alloc_bits, free_bits;
    knit__arena_t arena;
    knit__codec_cfg_t cfg;
} hx_t;

static int hx_setup(void **state)
{
    hx_t *h = calloc(1, sizeof *h);
    h->stat = calloc(1, KNIT__STATIC_BYTES);
    h->mem = calloc(1, ARENA_BYTES);
    knit__arena_init(&h->arena, h->mem, ARENA_BYTES, ARENA_BYTES, &h->alloc_bits, &h->free_bits);
    h->cfg.max_payload_bytes = MAX_PAYLOAD;
    *state = h;
    return 0;
}

static int hx_teardown(void **state)
{
    hx_t *h = *state;
    free(h->stat);
    free(h->mem);
    free(h);
    return 0;
}

static void set_hdr(hx_t *h, uint32_t tag, uint32_t start, uint32_t end, uint32_t len)
{
    memset(h->hdr, 0, sizeof h->hdr);
    h->hdr[KNIT__W_TAG] = tag;
    h->hdr[KNIT__W_START] = start;
    h->hdr[KNIT__W_END] = end;
    h->hdr[KNIT__W_LEN] = len;
    knit__hdr_set_region(h->hdr, 5);
}

/* Encode and expect `code`, with nothing written to the header and no region left live. */
static void expect_encode_refused(hx_t *h, knit_value_t *v, int code)
{
    memset(h->hdr, 0, sizeof h->hdr);
    int rc = knit__encode(v, h->hdr, h->stat, &h->arena, &h->cfg);
    if (rc != code)
        print_error("encode: got %d (%s), want %d\n", rc, knit_errmsg(), code);
    assert_int_equal(rc, code);
    assert_int_equal(h->hdr[KNIT__W_TAG], 0);
    assert_int_equal(knit__arena_live(&h->arena), 0);
}

static void expect_decode(hx_t *h, int code)
{
    knit_value_t out = knit_v_int64(7);
    int rc = knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out);
    if (rc != code)
        print_error(
            "decode tag %u: got %d (%s), want %d\n", h->hdr[KNIT__W_TAG], rc, knit_errmsg(), code);
    assert_int_equal(rc, code);
    if (rc < 0)
        assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
    knit_value_free(&out);
}

/* --- size arithmetic of the encoder ------------------------------------------------------------
 */

static void test_bigint_length_near_size_max_is_refused(void **state)
{
    hx_t *h = *state;
    static uint8_t mag[16] = {1};
    knit_value_t v = {.kind = KNIT_KIND_BIGINT, .len = SIZE_MAX, .u.ptr = mag};
    expect_encode_refused(h, &v, KNIT_E_PAYLOAD_TOO_LARGE);
    assert_non_null(strstr(knit_errmsg(), "bigint"));
}

static void test_envelope_header_length_near_size_max_is_refused(void **state)
{
    hx_t *h = *state;
    static char header[600], body[20];
    knit_envelope_t env = {.header = header,
        .header_len = SIZE_MAX - 10,
        .body = knit_v_bytes(body, sizeof body),
        .header_kind = KNIT_ENV_JSON};
    knit_value_t v = knit_v_envelope(&env);
    expect_encode_refused(h, &v, KNIT_E_PAYLOAD_TOO_LARGE);
    assert_non_null(strstr(knit_errmsg(), "envelope"));
}

static void test_envelope_body_length_near_size_max_is_refused(void **state)
{
    hx_t *h = *state;
    static char header[600], body[20];
    knit_envelope_t env = {.header = header,
        .header_len = sizeof header,
        .body = knit_v_bytes(body, SIZE_MAX - 100),
        .header_kind = KNIT_ENV_STRING};
    knit_value_t v = knit_v_envelope(&env);
    expect_encode_refused(h, &v, KNIT_E_PAYLOAD_TOO_LARGE);
}

static void test_typed_array_length_near_size_max_is_refused(void **state)
{
    hx_t *h = *state;
    static double d[4];
    knit_value_t v = knit_v_typed(KNIT_ELEM_F64, d, SIZE_MAX - 7);
    expect_encode_refused(h, &v, KNIT_E_PAYLOAD_TOO_LARGE);
}

/* --- maxPayloadBytes on decode ------------------------------------------------------------------
 */

static void test_region_over_max_payload_is_corrupt(void **state)
{
    hx_t *h = *state;
    memset(knit__arena_at(&h->arena, 0), 'x', MAX_PAYLOAD + 64);
    set_hdr(h, KNIT__T_STRING, 0, 0, MAX_PAYLOAD + 1);
    expect_decode(h, KNIT_E_CORRUPT);
    assert_int_equal(atomic_load(&h->free_bits), 0); /* a corrupt frame frees nothing */
    set_hdr(h, KNIT__T_STRING, 0, 0, MAX_PAYLOAD);   /* exactly the limit is a payload */
    expect_decode(h, 0);
}

static void test_in_place_region_over_max_payload_is_corrupt(void **state)
{
    hx_t *h = *state;
    set_hdr(h, KNIT__T_BINARY, 64, 0, MAX_PAYLOAD + 64);
    knit_value_t out;
    int32_t region = 9;
    assert_int_equal(
        knit__decode_in_place(h->hdr, h->stat, &h->arena, &h->cfg, &out, &region), KNIT_E_CORRUPT);
    assert_int_equal(region, -1);
}

/* Found by fuzz_slot_decode: a refused in-place frame left `out` as the caller had it, and a
 * worker frees the argument of a request it could not decode. */
static void test_refused_in_place_decode_leaves_undefined(void **state)
{
    hx_t *h = *state;
    static char garbage[] = "not the decoder's";
    const uint32_t bad[][2] = {{0, MAX_PAYLOAD + 1}, {32, 16}, {USABLE, 64}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_hdr(h, KNIT__T_STRING, bad[i][0], 0, bad[i][1]);
        knit_value_t out = knit_v_str(garbage);
        int32_t region = 9;
        assert_int_equal(knit__decode_in_place(h->hdr, h->stat, &h->arena, &h->cfg, &out, &region),
            KNIT_E_CORRUPT);
        assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
    }
}

static void test_envelope_region_over_max_payload_is_corrupt(void **state)
{
    hx_t *h = *state;
    /* header and body each under the limit, their region over it */
    set_hdr(h, KNIT__T_ENV_DYN_JSON, 0, MAX_PAYLOAD / 2 + 1, MAX_PAYLOAD / 2);
    memcpy(knit__arena_at(&h->arena, 0), "{}", 2);
    expect_decode(h, KNIT_E_CORRUPT);
}

static void test_encoder_refuses_what_the_decoder_refuses(void **state)
{
    hx_t *h = *state;
    static char s[MAX_PAYLOAD + 1];
    memset(s, 's', sizeof s);
    knit_value_t v = knit_v_strn(s, sizeof s);
    expect_encode_refused(h, &v, KNIT_E_PAYLOAD_TOO_LARGE);
}

/* --- ProcessSharedBuffer references --------------------------------------------------------------
 */

static void psb_words_frame(hx_t *h, uint32_t fd)
{
    uint32_t w[8] = {fd, 4096, 4096, 0, 16, 0, 1, 0xFFFFFFFFu};
    memset(h->stat, 0, KNIT__STATIC_BYTES);
    memcpy(h->stat, w, sizeof w);
    set_hdr(h, KNIT__T_PSB, 0, 0, sizeof w);
}

/* A static external ProcessSharedBuffer naming `fd` of `pid` (pid < 0: no pid field), or a
 * shm object by `name`. */
static void psb_json_frame(hx_t *h, int fd, long pid, const char *name)
{
    char pidf[32] = "";
    if (pid >= 0)
        snprintf(pidf, sizeof pidf, "\"pid\":%ld,", pid);
    memset(h->stat, 0, KNIT__STATIC_BYTES);
    int n = snprintf((char *)h->stat, KNIT__STATIC_BYTES,
        "[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":%d,%s\"name\":\"%s\","
        "\"size\":4096,\"byteOffset\":0,\"byteLength\":16}]",
        fd, pidf, name);
    set_hdr(h, KNIT__T_STATIC_EXTERNAL, 0, 0, (uint32_t)n);
}

static void test_psb_words_from_another_process_are_refused(void **state)
{
    hx_t *h = *state;
    psb_words_frame(h, 0);
    h->cfg.process_boundary = true;
    expect_decode(h, KNIT_E_PROCESS_BOUNDARY);
    h->cfg.process_boundary = false; /* a thread worker shares our descriptors */
    expect_decode(h, 0);
}

static void test_psb_naming_our_own_pid_is_refused(void **state)
{
    hx_t *h = *state;
    h->cfg.process_boundary = true;
    psb_json_frame(h, 0, (long)getpid(), "");
    expect_decode(h, KNIT_E_PROCESS_BOUNDARY);
    assert_non_null(strstr(knit_errmsg(), "this process"));
}

static void test_psb_fd_without_owner_is_refused(void **state)
{
    hx_t *h = *state;
    h->cfg.process_boundary = true;
    psb_json_frame(h, 2, 0, ""); /* pid 0: "the decoder's own" */
    expect_decode(h, KNIT_E_PROCESS_BOUNDARY);
    psb_json_frame(h, 2, -1, ""); /* no pid at all */
    expect_decode(h, KNIT_E_PROCESS_BOUNDARY);
}

static void test_psb_envelope_body_naming_our_own_pid_is_refused(void **state)
{
    hx_t *h = *state;
    h->cfg.process_boundary = true;
    char body[256];
    int n = snprintf(body, sizeof body,
        "[\"knitting.processSharedBuffer\",{\"version\":1,\"fd\":1,\"pid\":%d,\"name\":\"\","
        "\"size\":4096,\"byteOffset\":0,\"byteLength\":16}]",
        (int)getpid());
    memcpy(knit__arena_at(&h->arena, 0), body, (size_t)n);
    memset(h->stat, 0, KNIT__STATIC_BYTES);
    memcpy(h->stat, "{}", 2);
    set_hdr(h, KNIT__T_ENV_STATIC_JSON_EXT, 0, (uint32_t)n, 2);
    expect_decode(h, KNIT_E_PROCESS_BOUNDARY);
    /* a well-formed frame that cannot be taken hands its region back */
    assert_int_equal(atomic_load(&h->free_bits), 1u << 5);
}

static void test_psb_of_the_peer_or_by_name_is_accepted(void **state)
{
    hx_t *h = *state;
    h->cfg.process_boundary = true;
    psb_json_frame(h, 5, (long)getppid(), "");
    knit_value_t out;
    assert_int_equal(knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out), 0);
    assert_int_equal(out.u.psb->fd, 5);
    assert_int_equal(out.u.psb->pid, (int32_t)getppid());
    knit_value_free(&out);
    psb_json_frame(h, -1, 0, "/b");
    assert_int_equal(knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out), 0);
    assert_string_equal(out.u.psb->name, "/b");
    knit_value_free(&out);
}

/* Found by fuzz_slot_decode: a named buffer with an owner pid decoded with that pid, which
 * the encoder never writes (the pid only locates an fd), so it changed in a round trip. */
static void test_psb_named_decodes_without_an_owner_pid(void **state)
{
    hx_t *h = *state;
    psb_json_frame(h, -1, 1, "/n");
    knit_value_t out;
    assert_int_equal(knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out), 0);
    assert_int_equal(out.u.psb->pid, 0);
    assert_string_equal(out.u.psb->name, "/n");
    knit_value_free(&out);
}

/* --- ProcessSharedBuffer memory ----------------------------------------------------------------
 */

static int psb_fd(const knit_psb_t *b)
{
    knit_psb_desc_t d;
    assert_int_equal(knit_psb_describe(b, 0, 0, &d), 0);
    return d.fd;
}

static void test_psb_memfd_cannot_shrink(void **state)
{
    (void)state;
    knit_psb_t *b;
    assert_int_equal(knit_psb_create(8192, &b), 0);
    int fd = psb_fd(b);
    errno = 0;
    assert_int_equal(ftruncate(fd, 4096), -1);
    assert_int_equal(errno, EPERM);
    errno = 0;
    assert_int_equal(ftruncate(fd, 0), -1);
    assert_int_equal(errno, EPERM);
    ((volatile uint8_t *)knit_psb_data(b))[8191] = 1; /* the whole mapping is still backed */
    knit_psb_close(b);
}

/* A child process holds an unsealed memfd open until we write to `go`. */
static pid_t child_with_unsealed_memfd(int *fd_out, int *go)
{
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = memfd_create("knit-test-unsealed", MFD_CLOEXEC);
        char c;
        if (fd < 0 || ftruncate(fd, 4096) < 0 || write(up[1], &fd, sizeof fd) != sizeof fd)
            _exit(1);
        _exit(read(down[0], &c, 1) == 1 ? 0 : 1);
    }
    close(up[1]);
    close(down[0]);
    assert_int_equal(read(up[0], fd_out, sizeof *fd_out), (ssize_t)sizeof *fd_out);
    close(up[0]);
    *go = down[1];
    return pid;
}

static void test_psb_open_refuses_a_peer_buffer_that_can_shrink(void **state)
{
    (void)state;
    int fd, go, status;
    pid_t pid = child_with_unsealed_memfd(&fd, &go);
    knit_psb_desc_t d = {.fd = fd, .pid = (int32_t)pid, .size = 4096, .length = 4096};
    knit_psb_t *b = NULL;
    int rc = knit_psb_open(&d, &b);
    assert_int_equal(write(go, "x", 1), 1);
    close(go);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(rc, KNIT_E_INVAL);
    assert_null(b);
    assert_non_null(strstr(knit_errmsg(), "seal"));
}

/* A second thread of this process: its thread id is a /proc/<id> path to our own fds. */
typedef struct other_thread {
    pthread_t t;
    pthread_barrier_t ready, done;
    pid_t tid;
} other_thread_t;

static void *other_thread_main(void *arg)
{
    other_thread_t *o = arg;
    o->tid = gettid();
    pthread_barrier_wait(&o->ready);
    pthread_barrier_wait(&o->done);
    return NULL;
}

/* Start the thread; its id is valid until other_thread_stop. */
static void other_thread_start(other_thread_t *o)
{
    pthread_barrier_init(&o->ready, NULL, 2);
    pthread_barrier_init(&o->done, NULL, 2);
    assert_int_equal(pthread_create(&o->t, NULL, other_thread_main, o), 0);
    pthread_barrier_wait(&o->ready);
}

static void other_thread_stop(other_thread_t *o)
{
    pthread_barrier_wait(&o->done);
    pthread_join(o->t, NULL);
    pthread_barrier_destroy(&o->ready);
    pthread_barrier_destroy(&o->done);
}

/* Found in review of the self-reference check: a peer naming the thread id of one of our
 * threads (not our pid) made knit_psb_open open this process's own fd through /proc. */
static void test_psb_open_refuses_a_thread_of_this_process(void **state)
{
    (void)state;
    other_thread_t o;
    other_thread_start(&o);
    knit_psb_t *mine, *b = NULL;
    assert_int_equal(knit_psb_create(4096, &mine), 0);
    knit_psb_desc_t d = {.fd = psb_fd(mine), .pid = (int32_t)o.tid, .size = 4096, .length = 16};
    int rc = knit_psb_open(&d, &b);
    other_thread_stop(&o);
    knit_psb_close(mine);
    assert_int_equal(rc, KNIT_E_INVAL);
    assert_null(b);
    assert_non_null(strstr(knit_errmsg(), "this process"));
}

/* The same thread id in a frame from another process: refused when decoded. */
static void test_psb_naming_a_thread_of_ours_is_refused(void **state)
{
    hx_t *h = *state;
    other_thread_t o;
    other_thread_start(&o);
    h->cfg.process_boundary = true;
    psb_json_frame(h, 0, (long)o.tid, "");
    knit_value_t out;
    int rc = knit__decode(h->hdr, h->stat, &h->arena, &h->cfg, &out);
    other_thread_stop(&o);
    assert_int_equal(rc, KNIT_E_PROCESS_BOUNDARY);
    assert_int_equal(out.kind, KNIT_KIND_UNDEFINED);
}

#define T(name) cmocka_unit_test_setup_teardown(name, hx_setup, hx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bigint_length_near_size_max_is_refused),
        T(test_envelope_header_length_near_size_max_is_refused),
        T(test_envelope_body_length_near_size_max_is_refused),
        T(test_typed_array_length_near_size_max_is_refused),
        T(test_region_over_max_payload_is_corrupt),
        T(test_in_place_region_over_max_payload_is_corrupt),
        T(test_refused_in_place_decode_leaves_undefined),
        T(test_envelope_region_over_max_payload_is_corrupt),
        T(test_encoder_refuses_what_the_decoder_refuses),
        T(test_psb_words_from_another_process_are_refused),
        T(test_psb_naming_our_own_pid_is_refused),
        T(test_psb_fd_without_owner_is_refused),
        T(test_psb_envelope_body_naming_our_own_pid_is_refused),
        T(test_psb_of_the_peer_or_by_name_is_accepted),
        T(test_psb_named_decodes_without_an_owner_pid),
        T(test_psb_memfd_cannot_shrink),
        T(test_psb_open_refuses_a_peer_buffer_that_can_shrink),
        T(test_psb_open_refuses_a_thread_of_this_process),
        T(test_psb_naming_a_thread_of_ours_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
