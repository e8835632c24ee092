/*
 * A process worker that misbehaves on purpose, for the fault tests (tests/fault/README.md).
 *
 * It starts like a real worker (boot payload, lane memory, link descriptors: the runtime's own
 * child code) and then, instead of running tasks, answers the host's requests the way
 * KNIT_HOSTILE_<worker index> says, or else KNIT_HOSTILE (unset: echo every argument back).
 * Modes:
 *
 *   echo            answer every request with its argument (the honest baseline)
 *   hold            take requests and never answer
 *   spray           before answering, send results for the call ids 0-15 it was not given
 *   status:N        answer with the raw response word 0 = N (decimal or 0x hex)
 *   replay          before answering, send the previous answer again
 *   truncate        shrink the lane memory to 0 bytes at the first request, then echo
 *   scribble        write random bytes over the lane's control words, slot headers, abort
 *                   bitmap and arena headers, over and over, and never answer
 *   die:claim       SIGKILL itself when requests are waiting, before taking them
 *   die:task        take the requests, then SIGKILL itself
 *   die:result      write half a result (a slot header without publishing it; on a message
 *                   transport, half a frame), then SIGKILL itself
 *   die:published   publish the result and SIGKILL itself before waking the host
 *   frame:truncated message transports: half a frame, then close the stream (exit 0)
 *   frame:oversized a frame header claiming 4 GiB - 16 bytes
 *   frame:forged    a frame of valid length whose header words are random
 *   frame:static    a frame whose static area claims more than 512 bytes
 *
 * With KNIT_HOSTILE_ONCE=PATH only the first worker process to create PATH misbehaves; the
 * ones started after it (replacements) echo, so a test can see the pool recover.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/error.h"
#include "base/rand.h"
#include "runtimes/process/process.h"
#include "transports/link.h"
#include "transports/shm/layout.h"
#include "transports/stream/frame_stream.h"

#define MAX_BATCH 64

typedef struct hostile {
    knit__child_t c;
    knit__link_t *link;
    int raw_tx; /* message transports: a copy of the result descriptor for raw writes */
    const char *mode;
    knit__msg_t batch[MAX_BATCH];
    unsigned nbatch;
    uint32_t last_id;
    bool have_last;
    uint64_t rng;
} hostile_t;

static bool stopping(const hostile_t *h)
{
    return atomic_load_explicit(
               knit__lane_stop(h->c.lane.map, &h->c.lane.layout), memory_order_acquire)
        != 0;
}

static bool has_work(void *ctx)
{
    hostile_t *h = ctx;
    return stopping(h) || knit__link_ready(h->link);
}

static int collect(void *ctx, knit__msg_t *m)
{
    hostile_t *h = ctx;
    if (h->nbatch == MAX_BATCH) {
        knit_value_free(&m->value);
        return 0;
    }
    h->batch[h->nbatch++] = *m;
    return 0;
}

/* Send one result, waiting for room. */
static void answer(hostile_t *h, uint32_t w0, uint32_t id, knit_value_t *v)
{
    int rc;
    while ((rc = knit__link_send(h->link, w0, id, 0, v)) == KNIT_E_FULL && !stopping(h))
        usleep(100);
    knit__link_wake_peer(h->link);
}

static void write_raw(hostile_t *h, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(h->raw_tx, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN) {
                usleep(100);
                continue;
            }
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

/* A message-transport frame: prefix words (frame_bytes, header[8], static_bytes), then `extra`
 * bytes of static area. */
static void raw_frame(hostile_t *h, uint32_t frame_bytes, const uint32_t hdr[8],
    uint32_t static_bytes, size_t send_bytes)
{
    uint8_t buf[4 * KNIT__FS_PREFIX_WORDS + 2 * KNIT__STATIC_BYTES];
    uint32_t words[KNIT__FS_PREFIX_WORDS] = {frame_bytes};
    memcpy(&words[1], hdr, 8 * sizeof *hdr);
    words[9] = static_bytes;
    memcpy(buf, words, sizeof words);
    memset(buf + sizeof words, 0x5a, sizeof buf - sizeof words);
    write_raw(h, buf, send_bytes < sizeof buf ? send_bytes : sizeof buf);
}

static void scribble(hostile_t *h)
{
    uint8_t *map = h->c.lane.map;
    const knit__layout_t *l = &h->c.lane.layout;
    for (unsigned i = 0; i < 256 && !stopping(h); i++) {
        /* the signal words and lock sectors, a slot header line, the abort bitmap, the two
         * arena headers */
        uint64_t pick = knit__xorshift64s(&h->rng);
        uint64_t off;
        switch (pick % 5) {
        case 0:
            off = pick % offsetof(knit__ctrl_t, req_slab);
            break;
        case 1:
            off = offsetof(knit__ctrl_t, req_slab)
                + (pick >> 8) % (2 * KNIT__SLOTS) * sizeof(knit__slot_t) + KNIT__STATIC_BYTES
                + (pick >> 40) % 64;
            break;
        case 2:
            off = l->abort_bytes ? l->abort_off + (pick >> 8) % l->abort_bytes : 0;
            break;
        case 3:
            off = l->req_arena_off + 8 + (pick >> 8) % (KNIT__ARENA_RESERVED - 8);
            break;
        default:
            off = l->ret_arena_off + 8 + (pick >> 8) % (KNIT__ARENA_RESERVED - 8);
            break;
        }
        off &= ~(uint64_t)3;
        uint32_t word = (uint32_t)knit__xorshift64s(&h->rng);
        memcpy(map + off, &word, sizeof word);
    }
}

/* die:result - half a result, never published. */
static void half_result(hostile_t *h)
{
    if (h->raw_tx >= 0) {
        uint32_t hdr[8] = {0, h->batch[0].id, 5, 0, 0, 0, 0, 0};
        raw_frame(h, 4 * 9 + 64, hdr, 64, 20);
    } else {
        knit__ctrl_t *c = knit__shm_ctrl(&h->c.lane);
        memset(c->ret_slab[0].hdr, 0x7f, sizeof c->ret_slab[0].hdr);
    }
    raise(SIGKILL);
}

/* The frame:* modes: one malformed frame in place of the answer. */
static void bad_frame(hostile_t *h, const char *kind)
{
    uint32_t hdr[8] = {0, h->batch[0].id, 5, 0, 0, 0, 0, 0};
    if (!strcmp(kind, "truncated")) {
        raw_frame(h, 4 * 9 + 64, hdr, 64, 24);
        exit(0);
    } else if (!strcmp(kind, "oversized")) {
        raw_frame(h, 0xFFFFFFF0u, hdr, 64, 4 * KNIT__FS_PREFIX_WORDS + 64);
    } else if (!strcmp(kind, "forged")) {
        for (int i = 0; i < 8; i++)
            hdr[i] = (uint32_t)knit__xorshift64s(&h->rng);
        raw_frame(h, 4 * 9 + 64, hdr, 64, 4 * KNIT__FS_PREFIX_WORDS + 64);
    } else if (!strcmp(kind, "static")) {
        raw_frame(h, 4 * 9 + 600, hdr, 600, 4 + 4 * 9 + 600); /* whole, as claimed */
    }
}

/* Answer one batch of requests the mode's way. */
static void respond(hostile_t *h)
{
    const char *m = h->mode;
    if (!strcmp(m, "hold"))
        return;
    if (!strcmp(m, "die:task"))
        raise(SIGKILL);
    if (!strcmp(m, "die:result"))
        half_result(h);
    if (!strncmp(m, "frame:", 6) && h->raw_tx >= 0) {
        bad_frame(h, m + 6);
        return;
    }
    if (!strcmp(m, "truncate") && ftruncate(h->c.lane.fd, 0) < 0)
        fprintf(stderr, "hostile worker: ftruncate of the lane memory refused: %m\n");
    for (unsigned i = 0; i < h->nbatch; i++) {
        knit__msg_t *r = &h->batch[i];
        if (!strcmp(m, "spray"))
            for (uint32_t id = 0; id < 16; id++)
                if (id != r->id) {
                    knit_value_t v = knit_v_str("forged");
                    answer(h, KNIT__FLAG_RESOLVE, id, &v);
                }
        if (!strcmp(m, "replay") && h->have_last) {
            knit_value_t v = knit_v_str("replayed");
            answer(h, KNIT__FLAG_RESOLVE, h->last_id, &v);
        }
        uint32_t w0 = KNIT__FLAG_RESOLVE;
        if (!strncmp(m, "status:", 7))
            w0 = (uint32_t)strtoul(m + 7, NULL, 0);
        if (!strcmp(m, "die:published")) {
            knit__link_send(h->link, w0, r->id, 0, &r->value);
            raise(SIGKILL);
        }
        answer(h, w0, r->id, &r->value);
        h->last_id = r->id;
        h->have_last = true;
    }
}

static void serve(hostile_t *h)
{
    while (!stopping(h)) {
        if (!strcmp(h->mode, "scribble")) {
            scribble(h);
            usleep(200);
            continue;
        }
        if (!strcmp(h->mode, "die:claim") && knit__link_ready(h->link))
            raise(SIGKILL);
        h->nbatch = 0;
        int n = knit__link_drain(h->link, collect, h);
        if (n < 0)
            return; /* end of the request stream */
        if (n > 0)
            respond(h);
        for (unsigned i = 0; i < h->nbatch; i++)
            knit_value_free(&h->batch[i].value);
        if (n == 0)
            h->link->ops->park(h->link, has_work, h);
    }
}

int main(void)
{
    hostile_t h = {.raw_tx = -1, .rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid()};
    if (knit__child_open(&h.c) < 0) {
        knit__child_close(&h.c);
        return 1;
    }
    char var[32];
    snprintf(var, sizeof var, "KNIT_HOSTILE_%u", h.c.boot.worker);
    const char *mode = getenv(var) ? getenv(var) : getenv("KNIT_HOSTILE");
    const char *once = getenv("KNIT_HOSTILE_ONCE");
    bool me = mode != NULL;
    if (me && once) {
        int fd = open(once, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        me = fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    h.mode = me ? mode : "echo";
    const knit__link_ops_t *ops = knit__transport_ops(h.c.boot.transport);
    if (h.c.fds[1] >= 0)
        h.raw_tx = dup(h.c.fds[1]);
    knit__link_params_t lp = {
        .side = KNIT__SIDE_WORKER,
        .mem = &h.c.lane,
        .codec = knit__shm_lane_codec(&h.c.lane),
        .fds = {h.c.fds[0], h.c.fds[1]},
    };
    h.c.fds[0] = h.c.fds[1] = -1; /* the link takes them */
    int rc = ops ? knit__link_open(ops, &lp, &h.link) : KNIT_E_INVAL;
    knit__worker_report_boot(&h.c.lane, rc);
    if (rc == 0) {
        serve(&h);
        knit__link_close(&h.link);
    }
    if (h.raw_tx >= 0)
        close(h.raw_tx);
    knit__child_close(&h.c);
    return rc < 0 ? 1 : 0;
}
