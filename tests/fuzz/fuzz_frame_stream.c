/*
 * Fuzz target: the reader of the message transports (knit__fs_recv) on an arbitrary byte stream
 * from the peer, delivered in arbitrary pieces: through a pipe (byte stream), or as records on a
 * SOCK_SEQPACKET pair with a record limit. The reader must hand out frames, ask for more
 * (KNIT_E_AGAIN) or fail the stream cleanly (KNIT_E_CORRUPT, KNIT_E_WORKER_DIED at the end), and
 * never read outside what it received.
 *
 * Input: u8 flags (bit 0 record socket, bit 1 process boundary, bits 2-3 the maxPayloadBytes
 * selector), u32 seed of the piece sizes, then the stream's bytes.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "knit/error.h"
#include "transports/stream/frame_stream.h"

#define PIECE_MAX 4096u

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Read every frame available; false once the stream has failed. */
static bool drain(knit__fs_reader_t *r, bool at_end)
{
    for (;;) {
        knit__msg_t m = {0};
        int rc = knit__fs_recv(r, &m);
        if (rc == 0) {
            FZ_CHECK(m.status <= 0 && m.status != KNIT_E_CORRUPT, "frame status %d", m.status);
            knit_value_free(&m.value);
            continue;
        }
        if (rc == KNIT_E_AGAIN) {
            FZ_CHECK(!at_end, "AGAIN after the peer closed");
            return true;
        }
        FZ_CHECK(rc == KNIT_E_CORRUPT || (at_end && rc == KNIT_E_WORKER_DIED), "recv: %d (%s)", rc,
            knit_errmsg());
        return false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint32_t flags = fz_u8(&in), seed = fz_u32(&in) | 1u;
    bool records = flags & 1u;
    uint32_t record_max = records ? 64u + seed % PIECE_MAX : 0;
    knit__codec_cfg_t cfg
        = {.max_payload_bytes = fz_max_payload(flags >> 2), .process_boundary = (flags >> 1) & 1u};
    int fds[2];
    int rc = records ? socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)
                     : pipe2(fds, O_CLOEXEC);
    FZ_CHECK(rc == 0, "no descriptors");
    if (!records) { /* pipe2: [0] reads */
        int t = fds[0];
        fds[0] = fds[1];
        fds[1] = t;
    }
    knit__fs_reader_t r;
    FZ_CHECK(knit__fs_reader_init(&r, fds[1], records, record_max, &cfg) == 0, "reader init");
    bool alive = true;
    while (alive && in.n) {
        size_t piece = 1 + next(&seed) % (records ? record_max : PIECE_MAX);
        if (piece > in.n)
            piece = in.n;
        ssize_t w = write(fds[0], in.p, piece);
        FZ_CHECK(w == (ssize_t)piece, "short write of a %zu-byte piece", piece);
        in.p += piece;
        in.n -= piece;
        alive = drain(&r, false);
    }
    close(fds[0]);
    if (alive)
        drain(&r, true);
    knit__fs_reader_fini(&r);
    close(fds[1]);
    return 0;
}
