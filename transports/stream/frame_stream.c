/* knit transports/stream - frames over a byte stream or a record socket (frame_stream.h). */
#define _GNU_SOURCE
#include "transports/stream/frame_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"

#define PREFIX_BYTES (KNIT__FS_PREFIX_WORDS * 4u)
#define HEADROOM     64u /* the reader's buffer starts this far in, so arena views stay inside */

static uint64_t align64(uint64_t n)
{
    return (n + 63u) & ~(uint64_t)63u;
}

static int set_nonblock(int fd);

/* The fields both directions share; makes the descriptor non-blocking. */
static int init_end(
    knit__fs_end_t *e, int fd, bool is_socket, uint32_t record_max, const knit__codec_cfg_t *codec)
{
    *e = (knit__fs_end_t) {fd, is_socket, record_max, *codec};
    return set_nonblock(fd);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return knit__err(KNIT_E_SYS, "fcntl(O_NONBLOCK) on fd %d: %s", fd, strerror(errno));
    return 0;
}

int knit__fs_writer_init(knit__fs_writer_t *w, int fd, bool is_socket, uint32_t record_max,
    const knit__codec_cfg_t *codec)
{
    memset(w, 0, sizeof *w);
    int rc = init_end(&w->end, fd, is_socket, record_max, codec);
    if (rc < 0)
        return rc;
    w->region = -1;
    uint64_t bytes
        = KNIT__ARENA_RESERVED + align64(codec->max_payload_bytes ? codec->max_payload_bytes : 1);
    w->arena_mem = malloc(bytes);
    if (!w->arena_mem)
        return knit__err(KNIT_E_NOMEM, "frame arena of %llu bytes", (unsigned long long)bytes);
    knit__arena_init(&w->arena, w->arena_mem, bytes, bytes, &w->alloc_bits, &w->free_bits);
    return 0;
}

void knit__fs_writer_fini(knit__fs_writer_t *w)
{
    /* A frame the peer never got whole holds what it carries: a moved buffer's ownership or a
     * shared buffer's reference (frames of pointers, within one process). Release them. */
    uint32_t tag = w->prefix[1 + KNIT__W_TAG];
    if (knit__fs_busy(w) && (tag == KNIT__T_MOVED || tag == KNIT__T_SHARED)) {
        knit_value_t v;
        if (knit__decode(&w->prefix[1], w->stat, &w->arena, &w->end.codec, &v) == 0)
            knit_value_free(&v);
        w->done = w->total;
    }
    free(w->arena_mem);
    w->arena_mem = NULL;
}

/* One write of what is left (at most record_max bytes for record sockets). */
static ssize_t write_some(knit__fs_writer_t *w)
{
    struct iovec iov[3];
    int n = 0;
    uint64_t skip = w->done, limit = w->end.record_max ? w->end.record_max : UINT64_MAX;
    for (int i = 0; i < w->iovcnt && limit; i++) {
        if (skip >= w->iov[i].iov_len) {
            skip -= w->iov[i].iov_len;
            continue;
        }
        size_t len = w->iov[i].iov_len - (size_t)skip;
        if (len > limit)
            len = (size_t)limit;
        iov[n].iov_base = (uint8_t *)w->iov[i].iov_base + skip;
        iov[n++].iov_len = len;
        limit -= len;
        skip = 0;
    }
    if (w->end.is_socket) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        return sendmsg(w->end.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    /* a pipe whose reader is gone raises SIGPIPE: hold it, and take back only our own */
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    ssize_t r = writev(w->end.fd, iov, n);
    int err = errno;
    if (r < 0 && err == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return r;
}

int knit__fs_flush(knit__fs_writer_t *w)
{
    while (w->done < w->total) {
        ssize_t r = write_some(w);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return KNIT_E_AGAIN;
            if (errno == EPIPE || errno == ECONNRESET)
                return knit__err(
                    KNIT_E_WORKER_DIED, "the peer closed its end (%s)", strerror(errno));
            return knit__err(KNIT_E_SYS, "writing a frame: %s", strerror(errno));
        }
        w->done += (uint64_t)r;
    }
    if (w->region >= 0) { /* the bytes are in the kernel now: the region is free */
        knit__arena_free(&w->free_bits, (uint32_t)w->region);
        w->region = -1;
    }
    return 0;
}

int knit__fs_send(knit__fs_writer_t *w, uint32_t w0, uint32_t id, uint32_t stamp_ms, uint32_t seq,
    knit_value_t *v)
{
    if (knit__fs_busy(w))
        return KNIT_E_FULL;
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    hdr[KNIT__W_FN] = w0;
    hdr[KNIT__W_ID] = id;
    hdr[KNIT__W_SCRATCH] = seq;
    knit__hdr_set_stamp(hdr, stamp_ms);
    int rc = knit__encode(v, hdr, w->stat, &w->arena, &w->end.codec);
    if (rc < 0)
        return rc;
    uint32_t slen = knit__frame_static_bytes(hdr);
    uint64_t dlen = knit__frame_region_bytes(hdr);
    const uint8_t *dyn = NULL;
    if (knit__tag_is_dynamic(hdr[KNIT__W_TAG])) {
        dyn = knit__arena_at(&w->arena, hdr[KNIT__W_START]);
        w->region = (int32_t)(hdr[KNIT__W_META] & KNIT__META_REGION_MASK);
        hdr[KNIT__W_START] = 0; /* the reader's region starts right after the static bytes */
        knit__hdr_set_region(hdr, 0);
    }
    w->prefix[0] = (uint32_t)(PREFIX_BYTES - 4u + slen + dlen);
    memcpy(&w->prefix[1], hdr, sizeof hdr);
    w->prefix[9] = slen;
    w->iov[0] = (struct iovec) {w->prefix, PREFIX_BYTES};
    w->iov[1] = (struct iovec) {w->stat, slen};
    w->iov[2] = (struct iovec) {(void *)dyn, (size_t)dlen};
    w->iovcnt = 3;
    w->total = PREFIX_BYTES + slen + dlen;
    w->done = 0;
    rc = knit__fs_flush(w);
    return rc == KNIT_E_AGAIN ? 0 : rc; /* pending is fine: the frame is accepted */
}

int knit__fs_reader_init(knit__fs_reader_t *r, int fd, bool is_socket, uint32_t record_max,
    const knit__codec_cfg_t *codec)
{
    memset(r, 0, sizeof *r);
    int rc = init_end(&r->end, fd, is_socket, record_max, codec);
    if (rc < 0)
        return rc;
    r->max_frame = PREFIX_BYTES - 4u + KNIT__STATIC_BYTES + codec->max_payload_bytes;
    r->cap = 64 * 1024 > record_max ? 64 * 1024 : record_max;
    r->buf = malloc(HEADROOM + r->cap);
    if (!r->buf)
        return knit__err(KNIT_E_NOMEM, "frame reader buffer");
    return 0;
}

void knit__fs_reader_fini(knit__fs_reader_t *r)
{
    free(r->buf);
    r->buf = NULL;
}

static int grow(knit__fs_reader_t *r, uint64_t need)
{
    if (need <= r->cap)
        return 0;
    uint64_t cap = r->cap * 2 > need ? r->cap * 2 : need;
    uint8_t *b = realloc(r->buf, HEADROOM + cap);
    if (!b)
        return knit__err(
            KNIT_E_NOMEM, "frame reader buffer of %llu bytes", (unsigned long long)cap);
    r->buf = b;
    r->cap = cap;
    return 0;
}

/* Decode the complete frame at the start of the buffer (frame_bytes already checked). */
static int take_frame(knit__fs_reader_t *r, uint32_t frame_bytes, knit__msg_t *m)
{
    const uint8_t *p = r->buf + HEADROOM + 4;
    uint32_t hdr[KNIT__HDR_WORDS], slen;
    memcpy(hdr, p, sizeof hdr);
    memcpy(&slen, p + sizeof hdr, 4);
    if (slen > KNIT__STATIC_BYTES || slen > frame_bytes - (PREFIX_BYTES - 4u))
        return knit__err(KNIT_E_CORRUPT, "frame declares a %u-byte static area", slen);
    const uint8_t *stat_src = p + PREFIX_BYTES - 4u;
    const uint8_t *dyn = stat_src + slen;
    uint64_t dlen = frame_bytes - (PREFIX_BYTES - 4u) - slen;
    bool dynamic = knit__tag_is_dynamic(hdr[KNIT__W_TAG]);
    if (!dynamic && dlen)
        return knit__err(KNIT_E_CORRUPT, "a %s frame carries %llu unexpected bytes",
            knit__tag_name(hdr[KNIT__W_TAG]), (unsigned long long)dlen);
    /* the static area in a zero-padded copy: the decoder may read all 512 bytes of it */
    uint8_t stat[KNIT__STATIC_BYTES] = {0};
    memcpy(stat, stat_src, slen);
    knit__arena_t view;
    knit__arena_init(&view, (uint8_t *)dyn - KNIT__ARENA_RESERVED, KNIT__ARENA_RESERVED + dlen,
        KNIT__ARENA_RESERVED + dlen, &r->free_bits, &r->free_bits);
    m->w0 = hdr[KNIT__W_FN];
    m->id = hdr[KNIT__W_ID];
    m->stamp = knit__hdr_stamp(hdr);
    m->seq = hdr[KNIT__W_SCRATCH];
    m->region = -1; /* arguments never stay in a stream's buffer: always copies */
    m->region_free = NULL;
    m->status = knit__decode(hdr, stat, &view, &r->end.codec, &m->value);
    return m->status == KNIT_E_CORRUPT ? KNIT_E_CORRUPT : 0;
}

int knit__fs_recv(knit__fs_reader_t *r, knit__msg_t *m)
{
    for (;;) {
        if (r->have >= 4) {
            uint32_t frame_bytes;
            memcpy(&frame_bytes, r->buf + HEADROOM, 4);
            if (frame_bytes < PREFIX_BYTES - 4u || frame_bytes > r->max_frame)
                return knit__err(KNIT_E_CORRUPT,
                    "frame length %u is impossible (from %u to %llu bytes)", frame_bytes,
                    PREFIX_BYTES - 4u, (unsigned long long)r->max_frame);
            uint64_t whole = 4ull + frame_bytes;
            if (r->have >= whole) {
                int rc = take_frame(r, frame_bytes, m);
                memmove(r->buf + HEADROOM, r->buf + HEADROOM + whole, r->have - whole);
                r->have -= whole;
                return rc;
            }
            int rc = grow(r, whole + r->end.record_max);
            if (rc < 0)
                return rc;
        }
        if (r->end.record_max && r->cap - r->have < r->end.record_max) {
            int rc = grow(r, r->have + r->end.record_max);
            if (rc < 0)
                return rc;
        }
        ssize_t n;
        if (r->end.is_socket) {
            struct iovec iov = {r->buf + HEADROOM + r->have, r->cap - r->have};
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
            n = recvmsg(r->end.fd, &msg, MSG_DONTWAIT);
            if (n > 0 && (msg.msg_flags & MSG_TRUNC))
                return knit__err(
                    KNIT_E_CORRUPT, "a record was longer than %u bytes", r->end.record_max);
        } else {
            n = read(r->end.fd, r->buf + HEADROOM + r->have, r->cap - r->have);
        }
        if (n > 0) {
            r->have += (uint64_t)n;
            continue;
        }
        if (n == 0)
            /* a peer that ended in the middle of a frame died at an awkward moment; what it
             * did send is not a malformed frame */
            return r->have ? knit__err(KNIT_E_WORKER_DIED,
                       "the peer closed its end inside a frame (%llu bytes of it)",
                       (unsigned long long)r->have)
                           : knit__err(KNIT_E_WORKER_DIED, "the peer closed its end");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return KNIT_E_AGAIN;
        if (errno == ECONNRESET)
            return knit__err(KNIT_E_WORKER_DIED, "the peer reset the connection");
        return knit__err(KNIT_E_SYS, "reading a frame: %s", strerror(errno));
    }
}
