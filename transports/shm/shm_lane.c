/* knit transport - lane memory and endpoints (see transports/shm/shm_lane.h). */
#define _GNU_SOURCE
#include "transports/shm/shm_lane.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/futex.h"
#include "base/sigbus.h"

int knit__lane_cfg_resolve(knit__lane_cfg_t *c)
{
    if (c->payload_max_bytes == 0)
        c->payload_max_bytes = KNIT_PAYLOAD_DEFAULT_MAX_BYTES;
    if (c->payload_max_bytes < 8 || c->payload_max_bytes > KNIT_PAYLOAD_LIMIT_MAX_BYTES)
        return knit__err(KNIT_E_RANGE, "payloadMaxByteLength must be >= 8 and <= %llu; got %llu",
            KNIT_PAYLOAD_LIMIT_MAX_BYTES, (unsigned long long)c->payload_max_bytes);
    if (c->payload_initial_bytes == 0)
        c->payload_initial_bytes = KNIT_PAYLOAD_DEFAULT_INITIAL_BYTES;
    if (c->payload_initial_bytes > c->payload_max_bytes)
        c->payload_initial_bytes = c->payload_max_bytes;
    uint64_t cap = c->payload_max_bytes >> 3;
    if (c->max_payload_bytes == 0)
        c->max_payload_bytes = cap;
    if (c->max_payload_bytes > cap)
        return knit__err(KNIT_E_RANGE, "maxPayloadBytes must be > 0 and <= %llu; got %llu",
            (unsigned long long)cap, (unsigned long long)c->max_payload_bytes);
    return 0;
}

static int map_lane(knit__shm_lane_t *lane, int fd, const knit__lane_cfg_t *cfg)
{
    lane->cfg = *cfg;
    lane->layout = knit__layout_make(cfg->payload_max_bytes, cfg->abort_capacity);
    /* MAP_NORESERVE: the arenas are mapped at full size up front and committed page by page
     * as they are touched, so a large payloadMaxByteLength costs address space, not memory. */
    void *p
        = mmap(NULL, lane->layout.total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED)
        return knit__err(KNIT_E_SYS, "mmap of a %llu-byte lane: %s",
            (unsigned long long)lane->layout.total, strerror(errno));
    lane->map = p;
    lane->fd = fd;
    return 0;
}

/* Size a fresh object to the layout and map it (closes fd on failure). */
static int size_and_map(knit__shm_lane_t *lane, int fd, const knit__lane_cfg_t *cfg_in)
{
    knit__lane_cfg_t cfg = *cfg_in;
    int rc;
    knit__layout_t l = knit__layout_make(cfg.payload_max_bytes, cfg.abort_capacity);
    if (ftruncate(fd, (off_t)l.total) < 0) {
        rc = knit__err(KNIT_E_SYS, "ftruncate of the lane memfd to %llu bytes: %s",
            (unsigned long long)l.total, strerror(errno));
        close(fd);
        return rc;
    }
    rc = map_lane(lane, fd, &cfg);
    if (rc < 0)
        close(fd);
    return rc; /* a fresh object reads as zeros: every word starts at 0 */
}

int knit__shm_lane_create(knit__shm_lane_t *lane, const knit__lane_cfg_t *cfg_in)
{
    knit__lane_cfg_t cfg = *cfg_in;
    int rc = knit__lane_cfg_resolve(&cfg);
    if (rc < 0)
        return rc;
    memset(lane, 0, sizeof *lane);
    lane->fd = -1;
    int fd = memfd_create("knit-lane", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return knit__err(KNIT_E_SYS, "memfd_create: %s", strerror(errno));
    rc = size_and_map(lane, fd, &cfg);
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        /* a process worker holds this file too: without the seals it could shrink it under
         * the host's mapping, and the host would fault on its next read */
        rc = knit__err(KNIT_E_SYS, "sealing the lane memfd: %s", strerror(errno));
        knit__shm_lane_close(lane);
    }
    return rc;
}

int knit__shm_lane_create_named(
    knit__shm_lane_t *lane, const knit__lane_cfg_t *cfg_in, const char *name)
{
    knit__lane_cfg_t cfg = *cfg_in;
    int rc = knit__lane_cfg_resolve(&cfg);
    if (rc < 0)
        return rc;
    memset(lane, 0, sizeof *lane);
    lane->fd = -1;
    /* shm_open sets FD_CLOEXEC; O_EXCL: never adopt an object somebody else made */
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0)
        return knit__err(KNIT_E_SYS, "shm_open(%s, O_CREAT|O_EXCL): %s", name, strerror(errno));
    rc = size_and_map(lane, fd, &cfg);
    /* a POSIX shm object cannot be sealed: guard the mapping against a worker shrinking it */
    if (rc == 0 && (rc = knit__sigbus_guard(lane->map, lane->layout.total, &lane->guard)) < 0)
        knit__shm_lane_close(lane);
    if (rc < 0)
        shm_unlink(name);
    return rc;
}

bool knit__shm_lane_faulted(const knit__shm_lane_t *lane)
{
    return knit__sigbus_hit(lane->guard);
}

int knit__shm_lane_open_named(knit__shm_lane_t *lane, const char *name, const knit__lane_cfg_t *cfg)
{
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0)
        return knit__err(KNIT_E_SYS, "shm_open(%s): %s", name, strerror(errno));
    int rc = knit__shm_lane_attach(lane, fd, cfg);
    if (rc < 0)
        close(fd);
    return rc;
}

int knit__shm_lane_attach(knit__shm_lane_t *lane, int fd, const knit__lane_cfg_t *cfg_in)
{
    knit__lane_cfg_t cfg = *cfg_in;
    int rc = knit__lane_cfg_resolve(&cfg);
    if (rc < 0)
        return rc;
    memset(lane, 0, sizeof *lane);
    lane->fd = -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return knit__err(KNIT_E_SYS, "fstat of lane fd %d: %s", fd, strerror(errno));
    knit__layout_t l = knit__layout_make(cfg.payload_max_bytes, cfg.abort_capacity);
    if ((uint64_t)st.st_size < l.total)
        return knit__err(KNIT_E_INVAL,
            "lane fd %d holds %lld bytes but the layout needs %llu (payload or "
            "abort settings differ from the creator's)",
            fd, (long long)st.st_size, (unsigned long long)l.total);
    return map_lane(lane, fd, &cfg);
}

void knit__shm_lane_close(knit__shm_lane_t *lane)
{
    knit__sigbus_unguard(lane->guard);
    lane->guard = NULL;
    if (lane->map)
        munmap(lane->map, lane->layout.total);
    if (lane->fd >= 0)
        close(lane->fd);
    lane->map = NULL;
    lane->fd = -1;
}

void knit__endpoint_init(knit__endpoint_t *ep, const knit__shm_lane_t *lane, knit__side_t side)
{
    knit__ctrl_t *c = knit__shm_ctrl(lane);
    bool host = side == KNIT__SIDE_HOST;
    knit__sector_t *txs = host ? &c->req : &c->ret, *rxs = host ? &c->ret : &c->req;
    uint8_t *tx_base = lane->map + (host ? lane->layout.req_arena_off : lane->layout.ret_arena_off);
    uint8_t *rx_base = lane->map + (host ? lane->layout.ret_arena_off : lane->layout.req_arena_off);

    memset(ep, 0, sizeof *ep);
    ep->ctrl = c;
    ep->tx_slab = host ? c->req_slab : c->ret_slab;
    ep->rx_slab = host ? c->ret_slab : c->req_slab;
    knit__qprod_init(&ep->tx, &txs->q_host.word, &txs->q_worker.word);
    knit__qcons_init(&ep->rx, &rxs->q_host.word, &rxs->q_worker.word);
    knit__arena_init(&ep->tx_arena, tx_base, lane->layout.arena_bytes,
        lane->cfg.payload_initial_bytes, &txs->alloc_host.word, &txs->alloc_free.word);
    knit__arena_init(&ep->rx_arena, rx_base, lane->layout.arena_bytes, lane->layout.arena_bytes,
        &rxs->alloc_host.word, &rxs->alloc_free.word);
    ep->codec.max_payload_bytes = lane->cfg.max_payload_bytes;
    ep->codec.process_boundary = lane->cfg.process_boundary;
}

int knit__slot_fill(knit__slot_t *s, knit__arena_t *arena, const knit__codec_cfg_t *codec,
    uint32_t w0, uint32_t id, uint32_t stamp_ms, uint32_t seq, knit_value_t *v)
{
    /* The header is written in place, word by word: the slot is ours until published, and a
     * failed encode leaves it unpublished. (Staging it on the stack and copying it with wider
     * loads made every fill wait for the slot's lines to arrive from the consumer's cache: a
     * load that cannot be forwarded from the staging stores waits until they, and every
     * older store to the slot, reach the cache. That stall was most of the host's time in
     * bursts.) */
    uint32_t *hdr = s->hdr;
    memset(hdr, 0, KNIT__HDR_WORDS * sizeof *hdr);
    hdr[KNIT__W_FN] = w0;
    hdr[KNIT__W_ID] = id;
    hdr[KNIT__W_SCRATCH] = seq;
    knit__hdr_set_stamp(hdr, stamp_ms);
    return knit__encode(v, hdr, s->stat, arena, codec); /* < 0: nothing published */
}

void knit__slot_take(const knit__slot_t *s, const knit__arena_t *arena,
    const knit__codec_cfg_t *codec, knit__msg_t *m)
{
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, s->hdr, sizeof hdr); /* private copy: validate what we use */
    m->w0 = hdr[KNIT__W_FN];
    m->id = hdr[KNIT__W_ID];
    m->stamp = knit__hdr_stamp(hdr);
    m->seq = hdr[KNIT__W_SCRATCH];
    m->region = -1;
    m->region_free = arena->free_bits;
    uint32_t fn = hdr[KNIT__W_FN] & 0xFFFFu;
    if (codec->in_place && fn < codec->in_place_tasks && codec->in_place[fn])
        m->status = knit__decode_in_place(hdr, s->stat, arena, codec, &m->value, &m->region);
    else
        m->status = knit__decode(hdr, s->stat, arena, codec, &m->value);
}

int knit__ep_send_hook(knit__endpoint_t *ep, uint32_t w0, uint32_t id, uint32_t stamp_ms,
    knit_value_t *v, void (*before_publish)(void *ctx), void *ctx)
{
    int slot = knit__qprod_claim(&ep->tx);
    if (slot < 0)
        return slot;
    int rc = knit__slot_fill(
        &ep->tx_slab[slot], &ep->tx_arena, &ep->codec, w0, id, stamp_ms, ep->tx_seq, v);
    if (rc < 0)
        return rc;
    ep->tx_seq++;
    if (before_publish)
        before_publish(ctx);
    knit__qprod_publish(&ep->tx, (unsigned)slot);
    return 0;
}

int knit__ep_send(
    knit__endpoint_t *ep, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    return knit__ep_send_hook(ep, w0, id, stamp_ms, v, NULL, NULL);
}

/* Whoever just received frames will most likely send next (a worker its results, the host
 * its next calls): ask for the lines of the slot the next send will claim now, with intent to
 * write, so their transfer from the peer's cache (which read them last) overlaps the work in
 * between instead of holding up the publication. */
static void prefetch_next_tx(const knit__endpoint_t *ep)
{
    int next = knit__qprod_peek(&ep->tx);
    if (next < 0)
        return;
    knit__prefetch_w(ep->tx_slab[next].hdr);
    knit__prefetch_w(ep->tx_slab[next].stat);
}

int knit__ep_drain(knit__endpoint_t *ep, int (*cb)(void *ctx, knit__msg_t *msg), void *ctx,
    unsigned ack_every, unsigned max)
{
    uint32_t pending = knit__qcons_pending(&ep->rx);
    uint32_t taken = 0;
    unsigned n = 0, since_ack = 0;
    int rc = 0;
    /* The frames' lines are in the producer's cache: ask for every published slot's header
     * and first static line at once, so the transfers overlap instead of following one
     * another as the decode touches them. */
    for (uint32_t b = pending; b; b &= b - 1) {
        const knit__slot_t *s = &ep->rx_slab[__builtin_ctz(b)];
        __builtin_prefetch(s->hdr);
        __builtin_prefetch(s->stat);
    }
    while (pending && (max == 0 || n < max)) {
        unsigned i = knit__qcons_next(&ep->rx, pending);
        pending &= ~(1u << i);
        knit__msg_t m;
        knit__slot_take(&ep->rx_slab[i], &ep->rx_arena, &ep->codec, &m);
        taken |= 1u << i;
        n++;
        rc = cb(ctx, &m);
        if (rc < 0)
            break;
        if (ack_every && ++since_ack == ack_every) {
            knit__qcons_ack(&ep->rx, taken);
            taken = 0;
            since_ack = 0;
        }
    }
    if (taken)
        knit__qcons_ack(&ep->rx, taken);
    if (n)
        prefetch_next_tx(ep);
    return rc < 0 ? rc : (int)n;
}
