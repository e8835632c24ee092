/*
 * Writes the seed corpus of the fuzz targets: valid inputs made with the project's own encoders
 * (one slot per kind of value, the same values as wire frames, allocator scripts, boot payloads).
 *
 *     gen_corpus DIR      writes DIR/<target>/<seed>, replacing what is there under those names
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/codec.h"
#include "knit/error.h"
#include "runtimes/process/process.h"
#include "transports/stream/frame_stream.h"

#define ARENA (KNIT__ARENA_RESERVED + 65536u)

static const char *out_dir;

static void put(
    const char *target, const char *name, const void *a, size_t an, const void *b, size_t bn)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, an, f) != an || (bn && fwrite(b, 1, bn, f) != bn) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

typedef struct seed_value {
    const char *name;
    knit_value_t v;
    bool boundary;
} seed_value_t;

/* The slot input: flags, header, static area, free word, arena image. */
static void slot_seed(const seed_value_t *s)
{
    static uint8_t mem[ARENA], buf[1 + 32 + KNIT__STATIC_BYTES + 4];
    _Atomic uint32_t alloc_bits = 0, free_bits = 0;
    knit__arena_t a;
    memset(mem, 0, sizeof mem);
    knit__arena_init(&a, mem, sizeof mem, sizeof mem, &alloc_bits, &free_bits);
    knit__codec_cfg_t cfg = {.max_payload_bytes = 65536, .process_boundary = s->boundary};
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    uint8_t stat[KNIT__STATIC_BYTES] = {0};
    knit_value_t v = s->v;
    if (knit__encode(&v, hdr, stat, &a, &cfg) < 0) {
        fprintf(stderr, "gen_corpus: %s: %s\n", s->name, knit_errmsg());
        exit(1);
    }
    buf[0] = s->boundary ? 1u : 0u; /* maxPayloadBytes selector 0: 64 KiB */
    memcpy(buf + 1, hdr, sizeof hdr);
    memcpy(buf + 1 + sizeof hdr, stat, sizeof stat);
    size_t image = knit__tag_is_dynamic(hdr[KNIT__W_TAG])
        ? hdr[KNIT__W_START] + knit__frame_region_bytes(hdr)
        : 0;
    put("slot_decode", s->name, buf, sizeof buf, mem + KNIT__ARENA_RESERVED, image);
}

/* The same value as a wire frame of the message transports (prefixed by the target's flags). */
static void stream_seed(const seed_value_t *s, uint8_t *wire, size_t *len)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        perror("pipe2");
        exit(1);
    }
    knit__codec_cfg_t cfg = {.max_payload_bytes = 65536, .process_boundary = s->boundary};
    knit__fs_writer_t w;
    knit_value_t v = s->v;
    if (knit__fs_writer_init(&w, fds[1], false, 0, &cfg) < 0
        || knit__fs_send(&w, 1, 7, 0, 0, &v) < 0 || knit__fs_busy(&w)) {
        fprintf(stderr, "gen_corpus: %s: %s\n", s->name, knit_errmsg());
        exit(1);
    }
    ssize_t n = read(fds[0], wire + *len, 65536);
    *len += n > 0 ? (size_t)n : 0;
    knit__fs_writer_fini(&w);
    close(fds[0]);
    close(fds[1]);
}

static void value_seeds(void)
{
    static char text[2000], header[700];
    static uint8_t mag[40], bytes[3000];
    static double f64[100];
    static int16_t i16[400];
    memset(text, 'k', sizeof text);
    memset(header, ' ', sizeof header);
    memcpy(header, "{\"h\":1}", 7);
    for (size_t i = 0; i < sizeof mag; i++)
        mag[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)i;
    static knit_error_value_t inner = {.name = "TypeError", .message = "inner"};
    static knit_value_t cause;
    cause = knit_v_error(&inner);
    static knit_error_value_t outer = {.name = "Error", .message = "outer", .cause = &cause};
    static knit_envelope_t env_static
        = {.header = "{\"op\":1}", .header_len = 8, .header_kind = KNIT_ENV_JSON};
    env_static.body = knit_v_bytes(bytes, 100);
    static knit_envelope_t env_dyn
        = {.header = header, .header_len = sizeof header, .header_kind = KNIT_ENV_STRING};
    env_dyn.body = knit_v_bytes(bytes, 900);
    static knit_psb_desc_t psb_named
        = {.fd = -1, .name = "/knit-seed", .size = 4096, .offset = 64, .length = 128};
    static knit_psb_desc_t psb_peer = {.fd = 5, .pid = 1, .size = 8192, .length = 8192};
    static knit_envelope_t env_psb = {.header = "{}", .header_len = 2};
    env_psb.body = knit_v_psb(&psb_named);
    const seed_value_t seeds[] = {
        {"null", knit_v_null(), false},
        {"true", knit_v_bool(true), false},
        {"f64", knit_v_f64(3.25), false},
        {"int64", knit_v_int64(-1234567890123), false},
        {"date", knit_v_date(1.7e12), false},
        {"string_static", knit_v_strn(text, 100), false},
        {"string_dynamic", knit_v_strn(text, sizeof text), false},
        {"json_static", knit_v_json("{\"a\":[1,2,3]}"), false},
        {"bytes_dynamic", knit_v_bytes(bytes, sizeof bytes), false},
        {"f64_array_static", knit_v_typed(KNIT_ELEM_F64, f64, sizeof f64 / 2), false},
        {"i16_array_dynamic", knit_v_typed(KNIT_ELEM_I16, i16, sizeof i16 * 2 / 2), false},
        {"bigint_static", knit_v_bigint(true, mag, 20), false},
        {"bigint_dynamic", knit_v_bigint(false, bytes + 1, 600), false},
        {"error_with_cause", knit_v_error(&outer), false},
        {"envelope_static_header", knit_v_envelope(&env_static), false},
        {"envelope_dynamic_header", knit_v_envelope(&env_dyn), false},
        {"envelope_psb_body", knit_v_envelope(&env_psb), true},
        {"psb_named", knit_v_psb(&psb_named), true},
        {"psb_of_peer", knit_v_psb(&psb_peer), true},
    };
    static uint8_t wire[1u << 20];
    size_t wire_len = 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        slot_seed(&seeds[i]);
        size_t at = wire_len;
        uint8_t flags[5] = {seeds[i].boundary ? 2u : 0u, 0x5E, 0xED, 0, 0};
        stream_seed(&seeds[i], wire, &wire_len);
        put("frame_stream", seeds[i].name, flags, sizeof flags, wire + at, wire_len - at);
    }
    /* every frame on one stream, once as a byte stream and once as records */
    uint8_t flags[5] = {0, 1, 0, 0, 0};
    put("frame_stream", "all_frames_pipe", flags, sizeof flags, wire, wire_len);
    flags[0] = 1;
    flags[1] = 0xFF;
    flags[2] = 0x0F;
    put("frame_stream", "all_frames_records", flags, sizeof flags, wire, wire_len);
}

static void arena_seeds(void)
{
    /* arena 64 + 4 * 0x4000, initial 4096, mirror 0, free word 0, then operations */
    static const uint8_t hdr[12] = {0x00, 0x40, 0x00, 0x04};
    static const uint8_t churn[] = {0, 0x00, 0x01, 0, 0x40, 0x00, 0, 0x10, 0x00, 1, 0, 1, 1, 0,
        0x80, 0x00, 3, 0x20, 0x00, 0, 0x00, 0x02, 1, 2, 1, 3, 0, 0x40, 0x00};
    static const uint8_t fill[] = {0, 0x00, 0x10, 0, 0x00, 0x10, 0, 0x00, 0x10, 0, 0x00, 0x10, 0,
        0x00, 0x10, 0, 0x00, 0x10, 0, 0x00, 0x10, 0, 0x00, 0x10, 2, 0x0F, 0, 0, 0, 0, 0x00, 0x08};
    static const uint8_t peer[] = {0, 0x00, 0x04, 0, 0x00, 0x04, 2, 0x01, 0, 0, 0, 0, 0x00, 0x04, 2,
        0xFF, 0xFF, 0xFF, 0xFF, 0, 0x00, 0x02, 0, 0x00, 0x02};
    put("arena", "alloc_free_churn", hdr, sizeof hdr, churn, sizeof churn);
    put("arena", "fill_then_reuse", hdr, sizeof hdr, fill, sizeof fill);
    put("arena", "peer_writes_free_word", hdr, sizeof hdr, peer, sizeof peer);
}

static void boot_seed(const char *name, knit_transport_t transport, const char *shm_name,
    const char *bootstrap, const knit_sandbox_t *sandbox)
{
    knit__shm_lane_t lane = {0};
    lane.cfg = (knit__lane_cfg_t) {.payload_max_bytes = 64ull << 20,
        .payload_initial_bytes = 4ull << 20,
        .max_payload_bytes = 8ull << 20,
        .abort_capacity = 64,
        .process_boundary = true};
    knit__task_t tasks[3] = {
        {.def = {.name = "add", .timeout_ms = 0}},
        {.def = {.name = "echo", .timeout_ms = 250, .abort_aware = true}},
        {.def = {.name = "sum",
             .arg_in_place = true,
             .import_path = "./libtasks.so",
             .import_symbol = "sum"}},
    };
    knit__runner_cfg_t rc = {.worker = {.tasks = tasks,
                                 .ntasks = 3,
                                 .index = 2,
                                 .lane = &lane,
                                 .transport = transport,
                                 .spin_ns = 20000,
                                 .bootstrap_path = bootstrap,
                                 .bootstrap_symbol = bootstrap ? "boot" : NULL},
        .wake_fd = -1};
    char *json = NULL;
    if (knit__boot_encode(&rc, shm_name, sandbox, &json) < 0) {
        fprintf(stderr, "gen_corpus: boot %s: %s\n", name, knit_errmsg());
        exit(1);
    }
    put("boot", name, json, strlen(json), NULL, 0);
    free(json);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    value_seeds();
    arena_seeds();
    static const char *const read[] = {"/usr", "/etc", NULL}, *const write[] = {"/tmp", NULL},
                             *const env[] = {"LANG", NULL};
    const knit_sandbox_t unsafe = {0},
                         strict = {.mode = KNIT_SANDBOX_STRICT,
                             .read = read,
                             .write = write,
                             .env = env,
                             .allow_exec = true};
    boot_seed("inherit_knit", KNIT_TRANSPORT_KNIT, "", NULL, &unsafe);
    boot_seed("named_pipe_bootstrap", KNIT_TRANSPORT_PIPE, "/knit-seed-lane", "./boot.so", &unsafe);
    boot_seed("sandboxed_unix", KNIT_TRANSPORT_UNIX, "", NULL, &strict);
    return 0;
}
