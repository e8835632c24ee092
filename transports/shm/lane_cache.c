/*
 * knit transport - a per-process cache of released lane mappings (see shm_lane.h).
 *
 * A lane is a memfd of two full payload arenas plus the control block (128 MiB by default,
 * mapped MAP_NORESERVE) of which a pool that starts and answers one call touches four or five
 * pages. Creating it (memfd_create, ftruncate, mmap), taking the first-touch fault of each of
 * those pages (a new shmem page is allocated, zeroed and mapped: 4-7 us each on a VM) and
 * unmapping it again (munmap, close) cost more than starting the worker thread. A released lane
 * is therefore made to read as zeros in place and kept: the pages every pool touches (the
 * control block, the abort bitmap and both arena headers) stay mapped and are cleared with
 * memset; the rest (the arena bodies) is punched out through the mapping (MADV_REMOVE), so it
 * reads as zeros again and holds no memory. The next pool asking for a lane of the same size
 * takes it without a syscall or a page fault. A cacheable lane's memfd is closed as soon as it
 * is mapped (the mapping keeps the memory; nothing else needs the descriptor), so the cache
 * holds mappings only, never descriptors a program could close or see recycled.
 *
 * Only lanes whose endpoints stay in this process are cached: a process worker maps the lane
 * itself and may outlive its pool. A forked child drops the cache it inherited (those mappings
 * share their memory with the parent's), and neither side caches a lane that was acquired
 * before the fork: the other process may still have it mapped in a live pool.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "transports/shm/shm_lane.h"

typedef struct cached_lane {
    uint8_t *map;
    uint64_t total; /* bytes of the file and the mapping */
} cached_lane_t;

static struct {
    pthread_mutex_t lock;
    cached_lane_t v[KNIT__LANE_CACHE_SLOTS];
    unsigned n;
    uint32_t epoch; /* never 0; moves on at every fork, in the parent and in the child */
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER, .epoch = 1};

static pthread_once_t fork_hooks_once = PTHREAD_ONCE_INIT;

static void unmap_entry(const cached_lane_t *e)
{
    munmap(e->map, e->total);
}

static void next_epoch(void)
{
    if (++cache.epoch == 0)
        cache.epoch = 1;
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&cache.lock);
}

/* Lanes live at the fork are mapped in the child too: the parent must not recycle them. */
static void fork_parent(void)
{
    next_epoch();
    pthread_mutex_unlock(&cache.lock);
}

/* The child's cached mappings share their memory with the parent's: drop them, and let no lane
 * acquired before the fork back in. */
static void fork_child(void)
{
    for (unsigned i = 0; i < cache.n; i++)
        unmap_entry(&cache.v[i]);
    cache.n = 0;
    next_epoch();
    pthread_mutex_unlock(&cache.lock);
}

static void install_fork_hooks(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Remove and return the most recently released entry of `total` bytes (cache locked). */
static bool cache_take(uint64_t total, cached_lane_t *out)
{
    for (unsigned i = cache.n; i-- > 0;) {
        if (cache.v[i].total != total)
            continue;
        *out = cache.v[i];
        cache.v[i] = cache.v[--cache.n];
        return true;
    }
    return false;
}

/* Free the pages of [from, to) of the lane's file through the mapping; they read as zeros. */
static int punch(uint8_t *map, uint64_t from, uint64_t to)
{
    if (from >= to)
        return 0;
    return madvise(map + from, to - from, MADV_REMOVE);
}

/* The end of the page holding byte `at - 1`, at most `limit`. */
static uint64_t page_end(uint64_t at, uint64_t page, uint64_t limit)
{
    uint64_t end = (at + page - 1) / page * page;
    return end < limit ? end : limit;
}

/* Make every byte of the lane read as zero again (see the top of the file): the head (control
 * block, abort bitmap, request arena header) and the page of the return arena header are
 * cleared in place, the rest is punched. 0, or -1 when the file cannot be punched (the lane is
 * then closed instead). */
static int lane_zero(const knit__shm_lane_t *lane)
{
    const knit__layout_t *l = &lane->layout;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t head_end = page_end(l->req_arena_off + KNIT__ARENA_RESERVED, page, l->total);
    uint64_t tail_hi = page_end(l->ret_arena_off + KNIT__ARENA_RESERVED, page, l->total);
    uint64_t tail_lo = l->ret_arena_off / page * page;
    tail_lo = tail_lo > head_end ? tail_lo : head_end;
    if (punch(lane->map, head_end, tail_lo) < 0 || punch(lane->map, tail_hi, l->total) < 0)
        return -1;
    memset(lane->map, 0, head_end);
    memset(lane->map + tail_lo, 0, tail_hi - tail_lo);
    return 0;
}

int knit__shm_lane_acquire(knit__shm_lane_t *lane, const knit__lane_cfg_t *cfg_in)
{
    knit__lane_cfg_t cfg = *cfg_in;
    int rc = knit__lane_cfg_resolve(&cfg);
    if (rc < 0)
        return rc;
    if (cfg.process_boundary)
        return knit__shm_lane_create(lane, &cfg); /* cache_epoch 0: never cached */
    pthread_once(&fork_hooks_once, install_fork_hooks);
    knit__layout_t l = knit__layout_make(cfg.payload_max_bytes, cfg.abort_capacity);
    cached_lane_t e = {0};
    pthread_mutex_lock(&cache.lock);
    uint32_t epoch = cache.epoch;
    bool hit = cache_take(l.total, &e);
    pthread_mutex_unlock(&cache.lock);
    if (hit) {
        memset(lane, 0, sizeof *lane);
        lane->fd = -1;
        lane->map = e.map;
        lane->layout = l;
        lane->cfg = cfg;
    } else {
        rc = knit__shm_lane_create(lane, &cfg);
        if (rc < 0)
            return rc;
        close(lane->fd); /* the mapping keeps the memory; see the top of the file */
        lane->fd = -1;
    }
    lane->cache_epoch = epoch;
    return 0;
}

/* Zero the lane into the cache: false when it is not eligible or the cache is full. */
static bool cache_keep(const knit__shm_lane_t *lane)
{
    pthread_mutex_lock(&cache.lock);
    bool keep = lane->cache_epoch == cache.epoch && cache.n < KNIT__LANE_CACHE_SLOTS
        && lane_zero(lane) == 0;
    if (keep)
        cache.v[cache.n++] = (cached_lane_t) {lane->map, lane->layout.total};
    pthread_mutex_unlock(&cache.lock);
    return keep;
}

void knit__shm_lane_release(knit__shm_lane_t *lane)
{
    if (lane->map && lane->cache_epoch && cache_keep(lane)) {
        lane->map = NULL;
        lane->fd = -1;
        lane->cache_epoch = 0;
        return;
    }
    knit__shm_lane_close(lane);
}

unsigned knit__lane_cache_size(void)
{
    pthread_mutex_lock(&cache.lock);
    unsigned n = cache.n;
    pthread_mutex_unlock(&cache.lock);
    return n;
}

void knit__lane_cache_clear(void)
{
    pthread_mutex_lock(&cache.lock);
    for (unsigned i = 0; i < cache.n; i++)
        unmap_entry(&cache.v[i]);
    cache.n = 0;
    pthread_mutex_unlock(&cache.lock);
}
