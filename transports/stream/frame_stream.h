/*
 * knit transports/stream - frames over a byte stream or a record socket: the data path the
 * message transports (pipe, Unix stream, seqpacket, TCP) share.
 *
 * The writer encodes a value with the same codec as the shared-memory transport, into a
 * private header, static area and private arena, then writes one wire frame with writev or
 * sendmsg, without an intermediate copy:
 *
 *     u32 frame_bytes   (bytes after this word)
 *     u32 header[8]     (the task header; a region start is rewritten to 0)
 *     u32 static_bytes  (0..512)
 *     static area bytes, then the region's payload bytes
 *
 * Writes are non-blocking and resumable: a frame that does not fit the kernel buffer stays
 * pending (knit__fs_busy) and knit__fs_flush continues it. The reader reassembles frames from
 * partial reads, checks every length before it trusts it (an impossible length or a static
 * area over 512 bytes is KNIT_E_CORRUPT, and so is anything the codec refuses), and decodes
 * from its own buffer - serialise, copy into the kernel, wake, copy out, deserialise: what a
 * postMessage costs. For SOCK_SEQPACKET, `record_max` > 0 cuts frames into records of at most
 * that many bytes, and the reader reads whole records.
 */
#ifndef KNIT_TRANSPORTS_STREAM_FRAME_STREAM_H
#define KNIT_TRANSPORTS_STREAM_FRAME_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "codec/arena.h"
#include "codec/codec.h"
#include "transports/link.h"

#define KNIT__FS_PREFIX_WORDS 10u /* frame_bytes, header[8], static_bytes */

/* What both directions know about their descriptor. */
typedef struct knit__fs_end {
    int fd;
    bool is_socket; /* sendmsg/recvmsg (MSG_NOSIGNAL); otherwise writev with SIGPIPE held */
    uint32_t record_max;
    knit__codec_cfg_t codec;
} knit__fs_end_t;

typedef struct knit__fs_writer {
    knit__fs_end_t end;
    knit__arena_t arena; /* private: holds the region of the frame being written */
    uint8_t *arena_mem;
    _Atomic uint32_t alloc_bits, free_bits;
    /* the frame being written */
    uint32_t prefix[KNIT__FS_PREFIX_WORDS];
    uint8_t stat[KNIT__STATIC_BYTES];
    struct iovec iov[3];
    int iovcnt;
    uint64_t total, done;
    int32_t region; /* region index to free once written, or -1 */
} knit__fs_writer_t;

typedef struct knit__fs_reader {
    knit__fs_end_t end;
    uint64_t max_frame; /* the largest frame a sender with this codec config can produce */
    uint8_t *buf;       /* 64 bytes of headroom, then the frame being read */
    uint64_t cap, have;
    _Atomic uint32_t free_bits; /* a decoder frees "regions" here: nobody reads it */
} knit__fs_reader_t;

/* `fd` is made non-blocking. `record_max` 0 = byte stream. */
int knit__fs_writer_init(knit__fs_writer_t *w, int fd, bool is_socket, uint32_t record_max,
    const knit__codec_cfg_t *codec);
void knit__fs_writer_fini(knit__fs_writer_t *w);

/*
 * Encode and start writing one frame. KNIT_E_FULL while an earlier frame is still pending (call
 * knit__fs_flush); an encode error publishes nothing. 0 once the frame is accepted (written, or
 * pending in part). KNIT_E_WORKER_DIED when the peer has gone (EPIPE, ECONNRESET).
 */
int knit__fs_send(knit__fs_writer_t *w, uint32_t w0, uint32_t id, uint32_t stamp_ms, uint32_t seq,
    knit_value_t *v);

/* Continue a pending frame: 0 when nothing is pending any more, KNIT_E_AGAIN when the kernel
 * buffer is full again, KNIT_E_WORKER_DIED / KNIT_E_SYS on failure. */
int knit__fs_flush(knit__fs_writer_t *w);

static inline bool knit__fs_busy(const knit__fs_writer_t *w)
{
    return w->done < w->total;
}

int knit__fs_reader_init(knit__fs_reader_t *r, int fd, bool is_socket, uint32_t record_max,
    const knit__codec_cfg_t *codec);
void knit__fs_reader_fini(knit__fs_reader_t *r);

/*
 * Read what is available and decode the next complete frame into `m` (which then owns its
 * value; m->status carries a decode failure of a well-formed frame). Returns 0 with a frame,
 * KNIT_E_AGAIN when no complete frame is available yet, KNIT_E_CORRUPT for a malformed frame
 * (the stream cannot be resynchronised: fail the lane), KNIT_E_WORKER_DIED at end of stream,
 * KNIT_E_SYS on a read error.
 */
int knit__fs_recv(knit__fs_reader_t *r, knit__msg_t *m);

#endif
