/*
 * knit-bench - the floor mechanisms (floor.h): the physical IPC limits, measured with no
 * scheduler. This file owns the mechanisms, their peer threads, the CPU pinning of a floor
 * measurement, and the opaque kb_floor_t.
 *
 * Each mechanism is an engine (as in fio): a struct whose first member is the common header
 * kb_floor_t, and a table of functions - open (descriptors, buffers), peer (the thread that
 * answers, or NULL), round (one round of timed operations), stop (make a blocked peer return so
 * the join cannot hang) and release (free what open made; safe on a half-opened engine).
 * The common code pins the threads, starts and joins the peer, and frees the object.
 *
 * Every peer echoes the caller's sequence number and the round function checks it: a mismatch
 * counts in rep->errors, so a benchmark that never really crosses to the peer shows up.
 *
 * An engine may take a gap (futex-gap): its name is then "<engine>-<time>" (futex-gap-100ms),
 * the parsed time is kb_floor_t.gap_ns, and each round sleeps it before its one timed round
 * trip. These are references for the idle scenario's gap cases, not cases of the floor
 * scenario, so kb_floor_mechs does not list them.
 */
#define _GNU_SOURCE

#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"

const char *const kb_floor_mechs[] = {"spin", "futex", "pipe", "unix", "seqpacket", "tcp",
    "pipe-poll", "unix-poll", "seqpacket-poll", "tcp-poll", "ring", "ring-b1000", "memcpy",
    "xcopy-1048576", "thread-spawn", "process-spawn", NULL};

#define KB_LINE        64u
#define KB_ROUND_TRIPS 8u /* per round: spin, futex, pipe, unix, tcp */
#define KB_MSG_BYTES   8u
#define KB_RING_SLOTS  1024u /* power of two; holds a whole burst (see ring_round) */
#define KB_RING_BURST  1000u
#define KB_COPY_BYTES  (1024u * 1024u)
#define KB_COPIES      4u
#define KB_GAP_MAX_NS  10000000000ull /* 10 s: a longer gap in a name is a typo */
#define KB_WINDOW      32u            /* requests in flight per lane, as in knit's lanes */
#define KB_BURST_MAX   100000u
#define KB_XCOPY_MAX   (256ull << 20) /* working set of an xcopy reference, per direction */

/* What a name's suffixes may add to an engine (kb_floor_engine_t.takes). */
enum {
    KB_TAKES_GAP = 1u << 0,   /* "<name>-<time>": sleep before each round trip */
    KB_TAKES_POLL = 1u << 1,  /* "-poll": non-blocking descriptors, busy-polled */
    KB_TAKES_BURST = 1u << 2, /* "-b<n>": bursts of n items, at most KB_WINDOW in flight */
    KB_TAKES_BYTES = 1u << 3, /* "<name>-<bytes>": the size of each item (required) */
};

/* --- the common header and the engine table --------------------------------------------------- */

typedef struct kb_floor_engine {
    const char *name;
    size_t size; /* of the engine's struct, whose first member is kb_floor_t */
    int (*open)(kb_floor_t *f);
    void *(*peer)(void *f); /* NULL: no peer thread */
    int (*round)(kb_floor_t *f, kb_rep_t *rep);
    void (*stop)(kb_floor_t *f); /* after the stop flag is set, before the join; may be NULL */
    void (*release)(kb_floor_t *f);
    unsigned takes; /* KB_TAKES_*: the suffixes its names accept */
} kb_floor_engine_t;

struct kb_floor {
    const kb_floor_engine_t *eng;
    pthread_t peer;
    bool peer_running;
    bool pinned;      /* caller on CPU 0, peer on CPU 1 */
    cpu_set_t saved;  /* the caller's mask before open (restored by close) */
    unsigned spin_at; /* pauses before a busy-wait starts yielding too */
    uint64_t gap_ns;  /* engines with a gap: the sleep before each round trip; else 0 */
    bool poll;        /* "-poll": descriptors are non-blocking and both sides busy-poll */
    uint32_t burst;   /* "-b<n>": items per round (0 = the engine's own round) */
    uint64_t bytes;   /* "<name>-<bytes>": bytes per item */
    atomic_bool stop; /* set by close; every waiting loop of a peer checks it */
};

/* Items in flight at most during a burst of n: the lane window, as knit's lanes allow. */
static uint32_t window_of(uint32_t n)
{
    return n < KB_WINDOW ? n : KB_WINDOW;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kb_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)}, rem;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
}

static long online_cpus(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN);
}

/* CPUs this thread may run on (1 when unknown). */
static int allowed_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 1;
    return CPU_COUNT(&set);
}

/* One step of a busy-wait: pause; after spin_at steps also yield, so a waiter whose partner
 * was preempted (or shares its CPU) lets the partner run. *n counts the steps of this wait. */
static inline void relax(const kb_floor_t *f, unsigned *n)
{
    __builtin_ia32_pause();
    if (++*n >= f->spin_at)
        sched_yield();
}

static bool stopping(kb_floor_t *f)
{
    /* relaxed: the flag carries no data; the join orders everything after it */
    return atomic_load_explicit(&f->stop, memory_order_relaxed);
}

static int sys_err(const char *mech, const char *what)
{
    return knit__err(KNIT_E_SYS, "floor %s: %s: %s", mech, what, strerror(errno));
}

/* --- spin: one padded atomic word ping-ponged between two busy-waiting threads ---------------- */

typedef struct kb_spin {
    kb_floor_t base;
    /* The caller writes an odd sequence number, the peer answers with number + 1. */
    _Alignas(KB_LINE) _Atomic uint64_t word;
    char pad[KB_LINE - sizeof(uint64_t)];
    uint64_t seq; /* caller-only: the last answer */
} kb_spin_t;

static int spin_open(kb_floor_t *f)
{
    kb_spin_t *s = (kb_spin_t *)f;
    atomic_init(&s->word, 0);
    s->seq = 0;
    return 0;
}

static void *spin_peer(void *arg)
{
    kb_spin_t *s = arg;
    uint64_t last = 0;
    unsigned n = 0;
    while (!stopping(&s->base)) {
        /* acquire: pairs with the caller's release store of a request (models receiving a
         * message; on x86 a plain load) */
        uint64_t v = atomic_load_explicit(&s->word, memory_order_acquire);
        if (v == last) {
            relax(&s->base, &n);
            continue;
        }
        last = v + 1;
        n = 0;
        /* release: publishes the answer to the caller's acquire load */
        atomic_store_explicit(&s->word, last, memory_order_release);
    }
    return NULL;
}

static int spin_round(kb_floor_t *f, kb_rep_t *rep)
{
    kb_spin_t *s = (kb_spin_t *)f;
    for (unsigned i = 0; i < KB_ROUND_TRIPS; i++) {
        uint64_t req = s->seq + 1, v;
        unsigned n = 0;
        uint64_t t0 = now_ns();
        /* release: publishes the request to the peer's acquire load */
        atomic_store_explicit(&s->word, req, memory_order_release);
        /* acquire: pairs with the peer's release store of the answer */
        while ((v = atomic_load_explicit(&s->word, memory_order_acquire)) == req)
            relax(f, &n);
        kb_record(rep, now_ns() - t0);
        rep->ops++;
        if (v != req + 1)
            rep->errors++;
        s->seq = req + 1;
    }
    return 0;
}

/* --- futex: the same ping-pong, each side asleep in FUTEX_WAIT until the other wakes it ------- */

typedef struct kb_futex {
    kb_floor_t base;
    /* Sequence number: odd = a request is pending, even = answered. A waiter sleeps only while
     * the word still holds the value it last saw, so no wake-up can be lost. */
    _Alignas(KB_LINE) _Atomic uint32_t word;
    char pad[KB_LINE - sizeof(uint32_t)];
    uint32_t seq; /* caller-only: the last answer */
} kb_futex_t;

static long futex_op(_Atomic uint32_t *w, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

static void futex_set(_Atomic uint32_t *w, uint32_t v)
{
    /* release: publishes the new number before the waker's FUTEX_WAKE; the sleeper's acquire
     * load after it wakes pairs with it */
    atomic_store_explicit(w, v, memory_order_release);
    futex_op(w, FUTEX_WAKE_PRIVATE, 1);
}

/* Sleep until the word is no longer `seen`; returns the new value. */
static uint32_t futex_await(_Atomic uint32_t *w, uint32_t seen, kb_floor_t *f)
{
    uint32_t v;
    /* acquire: pairs with futex_set's release store (the other side's message) */
    while ((v = atomic_load_explicit(w, memory_order_acquire)) == seen && !stopping(f))
        futex_op(w, FUTEX_WAIT_PRIVATE, seen); /* EAGAIN (changed) and EINTR: look again */
    return v;
}

static int futex_open(kb_floor_t *f)
{
    kb_futex_t *x = (kb_futex_t *)f;
    atomic_init(&x->word, 0);
    x->seq = 0;
    if (futex_op(&x->word, FUTEX_WAKE_PRIVATE, 1) < 0)
        return sys_err(f->eng->name, "futex(FUTEX_WAKE_PRIVATE)");
    return 0;
}

static void *futex_peer(void *arg)
{
    kb_futex_t *x = arg;
    uint32_t last = 0;
    for (;;) {
        uint32_t v = futex_await(&x->word, last, &x->base);
        if (stopping(&x->base))
            return NULL;
        last = v + 1;
        futex_set(&x->word, last);
    }
}

static void futex_stop(kb_floor_t *f)
{
    kb_futex_t *x = (kb_futex_t *)f;
    /* seq_cst: the stop flag (set before this) is visible once the peer sees the word change */
    atomic_fetch_add(&x->word, 2);
    futex_op(&x->word, FUTEX_WAKE_PRIVATE, 1);
}

/* One timed round trip: wake the peer with the next request, sleep until it answers. */
static void futex_trip(kb_futex_t *x, kb_rep_t *rep)
{
    uint32_t req = x->seq + 1;
    uint64_t t0 = now_ns();
    futex_set(&x->word, req);
    uint32_t v = futex_await(&x->word, req, &x->base);
    kb_record(rep, now_ns() - t0);
    rep->ops++;
    if (v != req + 1)
        rep->errors++;
    x->seq = req + 1;
}

static int futex_round(kb_floor_t *f, kb_rep_t *rep)
{
    for (unsigned i = 0; i < KB_ROUND_TRIPS; i++)
        futex_trip((kb_futex_t *)f, rep);
    return 0;
}

/* futex-gap: the same mechanism and peer, but each round first sleeps the gap (nanosleep, as
 * the idle scenario's host does), so both threads are idle and the CPUs may halt before the
 * one timed round trip - the wake-up a first call after that gap pays. */
static int futex_gap_round(kb_floor_t *f, kb_rep_t *rep)
{
    kb_sleep_ns(f->gap_ns);
    futex_trip((kb_futex_t *)f, rep);
    return 0;
}

/* --- pipe, unix, tcp: 8-byte messages echoed by a peer thread over blocking descriptors ------- */

typedef struct kb_stream {
    kb_floor_t base;
    int c_rd, c_wr; /* the caller's ends (the same socket for unix and tcp) */
    int p_rd, p_wr; /* the peer's ends */
    bool sock;
    uint64_t seq;
} kb_stream_t;

/* 1 = all n bytes read, 0 = end of file before the first byte, -1 = error (errno set). On a
 * non-blocking descriptor (a "-poll" mechanism) it busy-polls: EAGAIN means read again. */
static int read_full(int fd, void *buf, size_t n, kb_floor_t *f)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
            if (errno == EAGAIN && stopping(f))
                return -1;
            continue;
        }
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EPIPE;
            return got ? -1 : 0;
        }
        got += (size_t)r;
    }
    return 1;
}

/* 0 or -1 (errno set). Sockets use MSG_NOSIGNAL: a closed partner is an error, not SIGPIPE.
 * A full non-blocking descriptor is retried at once (busy-polled). */
static int write_full(int fd, const void *buf, size_t n, bool sock)
{
    size_t put = 0;
    while (put < n) {
        const char *p = (const char *)buf + put;
        ssize_t r = sock ? send(fd, p, n - put, MSG_NOSIGNAL) : write(fd, p, n - put);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

static void stream_init(kb_stream_t *s, bool sock)
{
    s->c_rd = s->c_wr = s->p_rd = s->p_wr = -1;
    s->sock = sock;
    s->seq = 0;
}

static int pipe_open(kb_floor_t *f)
{
    kb_stream_t *s = (kb_stream_t *)f;
    int req[2], rsp[2];
    stream_init(s, false);
    if (pipe2(req, O_CLOEXEC) < 0)
        return sys_err("pipe", "pipe2");
    s->p_rd = req[0];
    s->c_wr = req[1];
    if (pipe2(rsp, O_CLOEXEC) < 0)
        return sys_err("pipe", "pipe2");
    s->c_rd = rsp[0];
    s->p_wr = rsp[1];
    return 0;
}

static int socketpair_open(kb_floor_t *f, int type, const char *what)
{
    kb_stream_t *s = (kb_stream_t *)f;
    int sv[2];
    stream_init(s, true);
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
        return sys_err(f->eng->name, what);
    s->c_rd = s->c_wr = sv[0];
    s->p_rd = s->p_wr = sv[1];
    return 0;
}

static int unix_open(kb_floor_t *f)
{
    return socketpair_open(f, SOCK_STREAM, "socketpair(AF_UNIX, SOCK_STREAM)");
}

/* Records of 8 bytes: each read returns one whole message, as knit's seqpacket frames do. */
static int seqpacket_open(kb_floor_t *f)
{
    return socketpair_open(f, SOCK_SEQPACKET, "socketpair(AF_UNIX, SOCK_SEQPACKET)");
}

static int tcp_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A listener on 127.0.0.1, an ephemeral port; returns the descriptor or -1 (errno set). */
static int tcp_listen(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0 || listen(fd, 1) < 0
        || getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int tcp_open(kb_floor_t *f)
{
    kb_stream_t *s = (kb_stream_t *)f;
    struct sockaddr_in addr;
    stream_init(s, true);
    int lfd = tcp_listen(&addr);
    if (lfd < 0)
        return sys_err("tcp", "listen on 127.0.0.1 (is loopback up?)");
    int rc = 0;
    s->c_rd = s->c_wr = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->c_rd < 0)
        rc = sys_err("tcp", "socket");
    else if (connect(s->c_rd, (struct sockaddr *)&addr, sizeof addr) < 0)
        rc = sys_err("tcp", "connect to 127.0.0.1");
    else if ((s->p_rd = s->p_wr = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
        rc = sys_err("tcp", "accept4");
    else if (tcp_nodelay(s->c_rd) < 0 || tcp_nodelay(s->p_rd) < 0)
        rc = sys_err("tcp", "setsockopt(TCP_NODELAY)");
    close(lfd);
    return rc;
}

/* "-poll": every descriptor non-blocking, so both sides busy-poll their reads. */
static int stream_nonblock(kb_floor_t *f)
{
    kb_stream_t *s = (kb_stream_t *)f;
    int fds[4] = {s->c_rd, s->c_wr, s->p_rd, s->p_wr};
    for (int i = 0; f->poll && i < 4; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0)
            return sys_err(f->eng->name, "fcntl(O_NONBLOCK)");
    }
    return 0;
}

static void *stream_peer(void *arg)
{
    kb_stream_t *s = arg;
    uint64_t v;
    /* Ends at end of file (stream_stop) or on any error; the caller then sees the failure. */
    while (!stopping(&s->base) && read_full(s->p_rd, &v, sizeof v, &s->base) == 1)
        if (write_full(s->p_wr, &v, sizeof v, s->sock) < 0)
            break;
    return NULL;
}

/* End of file for the peer: its blocking read returns 0 and it exits. The caller's read end
 * stays open until after the join, so the peer's last write cannot raise SIGPIPE. */
static void stream_stop(kb_floor_t *f)
{
    kb_stream_t *s = (kb_stream_t *)f;
    if (s->sock) {
        shutdown(s->c_wr, SHUT_WR);
    } else {
        close(s->c_wr);
        s->c_wr = -1;
    }
}

static void stream_release(kb_floor_t *f)
{
    kb_stream_t *s = (kb_stream_t *)f;
    int fds[4] = {s->c_rd, s->c_wr, s->p_rd, s->p_wr};
    for (int i = 0; i < 4; i++) {
        bool dup = (i == 1 && fds[1] == fds[0]) || (i == 3 && fds[3] == fds[2]);
        if (fds[i] >= 0 && !dup)
            close(fds[i]);
    }
    s->c_rd = s->c_wr = s->p_rd = s->p_wr = -1;
}

static int stream_send(kb_stream_t *s, uint64_t req)
{
    if (write_full(s->c_wr, &req, sizeof req, s->sock) < 0)
        return sys_err(s->base.eng->name, "write of a request");
    return 0;
}

/* Read the answer to `req`; a wrong sequence number counts as an error. */
static int stream_answer(kb_stream_t *s, uint64_t req, kb_rep_t *rep)
{
    uint64_t v = 0;
    int r = read_full(s->c_rd, &v, sizeof v, &s->base);
    if (r <= 0)
        return r == 0
            ? knit__err(KNIT_E_SYS, "floor %s: the peer closed its end", s->base.eng->name)
            : sys_err(s->base.eng->name, "read of an answer");
    if (v != req)
        rep->errors++;
    return 0;
}

/* "-b<n>": n messages, at most KB_WINDOW unanswered; one record per message (burst time / n). */
static int stream_burst(kb_stream_t *s, kb_rep_t *rep)
{
    uint32_t n = s->base.burst, w = window_of(n), sent = 0, got = 0;
    uint64_t base = s->seq, t0 = now_ns();
    int rc = 0;
    while (rc == 0 && got < n) {
        while (rc == 0 && sent < n && sent - got < w)
            rc = stream_send(s, base + ++sent);
        if (rc == 0)
            rc = stream_answer(s, base + ++got, rep);
    }
    s->seq = base + n;
    if (rc == 0) {
        uint64_t dt = now_ns() - t0;
        knit_hist_record_n(rep->hist, dt / n ? dt / n : 1, n);
        rep->ops += n;
        rep->bytes += 2ull * KB_MSG_BYTES * n;
    }
    return rc;
}

static int stream_round(kb_floor_t *f, kb_rep_t *rep)
{
    kb_stream_t *s = (kb_stream_t *)f;
    if (f->burst)
        return stream_burst(s, rep);
    if (f->gap_ns)
        kb_sleep_ns(f->gap_ns); /* "<stream>-gap-<time>": one round trip after an idle gap */
    for (unsigned i = 0; i < (f->gap_ns ? 1u : KB_ROUND_TRIPS); i++) {
        uint64_t req = ++s->seq;
        uint64_t t0 = now_ns();
        int rc = stream_send(s, req);
        if (rc == 0)
            rc = stream_answer(s, req, rep);
        if (rc < 0)
            return rc;
        kb_record(rep, now_ns() - t0);
        rep->ops++;
        rep->bytes += 2 * KB_MSG_BYTES;
    }
    return 0;
}

/* --- ring: a raw single-producer single-consumer ring, out and back --------------------------- */

/* head: next slot the producer writes; tail: next slot the consumer reads. Each index sits on
 * its own cache line; the slots themselves are plain memory handed over by those indices. */
typedef struct kb_spsc {
    _Alignas(KB_LINE) _Atomic uint64_t head;
    _Alignas(KB_LINE) _Atomic uint64_t tail;
    _Alignas(KB_LINE) uint64_t slot[KB_RING_SLOTS];
} kb_spsc_t;

/* One side's view: its own index and a cached copy of the other side's (re-read only when the
 * ring looks full or empty, so the other side's line is not pulled on every item). */
typedef struct kb_spsc_end {
    kb_spsc_t *r;
    uint64_t mine, theirs;
} kb_spsc_end_t;

/* Push v; false when the floor is stopping while the ring is full. */
static bool spsc_push(kb_spsc_end_t *e, uint64_t v, kb_floor_t *f)
{
    unsigned n = 0;
    while (e->mine - e->theirs == KB_RING_SLOTS) {
        /* acquire: pairs with the consumer's release of tail - its reads of the slots below
         * tail are done before we overwrite them */
        e->theirs = atomic_load_explicit(&e->r->tail, memory_order_acquire);
        if (e->mine - e->theirs < KB_RING_SLOTS)
            break;
        if (stopping(f))
            return false;
        relax(f, &n);
    }
    e->r->slot[e->mine & (KB_RING_SLOTS - 1)] = v;
    e->mine++;
    /* release: the slot written above is visible before the consumer sees the new head */
    atomic_store_explicit(&e->r->head, e->mine, memory_order_release);
    return true;
}

/* Pop into *v; false when the floor is stopping while the ring is empty. */
static bool spsc_pop(kb_spsc_end_t *e, uint64_t *v, kb_floor_t *f)
{
    unsigned n = 0;
    while (e->mine == e->theirs) {
        /* acquire: pairs with the producer's release of head - the slots below head hold
         * their values */
        e->theirs = atomic_load_explicit(&e->r->head, memory_order_acquire);
        if (e->mine != e->theirs)
            break;
        if (stopping(f))
            return false;
        relax(f, &n);
    }
    *v = e->r->slot[e->mine & (KB_RING_SLOTS - 1)];
    e->mine++;
    /* release: our read of the slot is done before the producer may reuse it */
    atomic_store_explicit(&e->r->tail, e->mine, memory_order_release);
    return true;
}

typedef struct kb_ring {
    kb_floor_t base;
    kb_spsc_t req, rsp;                        /* caller -> peer, peer -> caller */
    _Alignas(KB_LINE) kb_spsc_end_t out, back; /* caller-only: produces req, consumes rsp */
    uint64_t seq;
} kb_ring_t;

static void spsc_init(kb_spsc_t *r)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
}

static int ring_open(kb_floor_t *f)
{
    kb_ring_t *g = (kb_ring_t *)f;
    spsc_init(&g->req);
    spsc_init(&g->rsp);
    g->out = (kb_spsc_end_t) {.r = &g->req};
    g->back = (kb_spsc_end_t) {.r = &g->rsp};
    g->seq = 0;
    return 0;
}

static void *ring_peer(void *arg)
{
    kb_ring_t *g = arg;
    kb_spsc_end_t in = {.r = &g->req}, out = {.r = &g->rsp};
    uint64_t v;
    while (spsc_pop(&in, &v, &g->base) && spsc_push(&out, v, &g->base)) { }
    return NULL;
}

/* "ring": the caller pushes the whole burst of 1000 before it pops a reply, so the return ring
 * must hold a whole burst (KB_RING_SLOTS >= KB_RING_BURST) or both sides would wait on a full
 * ring. "ring-b<n>": n items with at most KB_WINDOW in flight, a knit lane's window. The
 * histogram gets burst time / items per item; a reader of throughput uses ops and time. */
static int ring_round(kb_floor_t *f, kb_rep_t *rep)
{
    kb_ring_t *g = (kb_ring_t *)f;
    uint32_t n = f->burst ? f->burst : KB_RING_BURST, w = f->burst ? window_of(n) : n;
    uint64_t base = g->seq, v = 0, sent = 0, got = 0;
    uint64_t t0 = now_ns();
    while (got < n) {
        while (sent < n && sent - got < w)
            spsc_push(&g->out, base + ++sent, f);
        spsc_pop(&g->back, &v, f);
        if (v != base + ++got)
            rep->errors++;
    }
    uint64_t dt = now_ns() - t0;
    g->seq = base + n;
    knit_hist_record_n(rep->hist, dt / n ? dt / n : 1, n);
    rep->ops += n;
    rep->bytes += 2ull * KB_MSG_BYTES * n;
    return 0;
}

_Static_assert(KB_RING_SLOTS >= KB_RING_BURST, "the return ring must hold a whole burst");
_Static_assert((KB_RING_SLOTS & (KB_RING_SLOTS - 1)) == 0, "ring size must be a power of two");

/* --- memcpy: 1 MiB between two buffers -------------------------------------------------------- */

typedef struct kb_copy {
    kb_floor_t base;
    char *src, *dst;
} kb_copy_t;

static int copy_open(kb_floor_t *f)
{
    kb_copy_t *c = (kb_copy_t *)f;
    c->src = aligned_alloc(4096, KB_COPY_BYTES);
    c->dst = aligned_alloc(4096, KB_COPY_BYTES);
    if (!c->src || !c->dst)
        return knit__err(KNIT_E_NOMEM, "floor memcpy: two buffers of %u bytes", KB_COPY_BYTES);
    memset(c->src, 0x5a, KB_COPY_BYTES); /* touch both once: no page faults in the rounds */
    memset(c->dst, 0, KB_COPY_BYTES);
    return 0;
}

static int copy_round(kb_floor_t *f, kb_rep_t *rep)
{
    kb_copy_t *c = (kb_copy_t *)f;
    for (unsigned i = 0; i < KB_COPIES; i++) {
        uint64_t t0 = now_ns();
        memcpy(c->dst, c->src, KB_COPY_BYTES);
        __asm__ volatile("" : : "r"(c->dst), "r"(c->src) : "memory"); /* the copy is used */
        kb_record(rep, now_ns() - t0);
        rep->ops++;
        rep->bytes += KB_COPY_BYTES;
    }
    return 0;
}

static void copy_release(kb_floor_t *f)
{
    kb_copy_t *c = (kb_copy_t *)f;
    free(c->src);
    free(c->dst);
    c->src = c->dst = NULL;
}

/* --- xcopy: a payload's round trip between two cores, with the allocations a decode makes --- */

/*
 * "xcopy-<bytes>[-b<n>]": what an echo of n payloads of <bytes> moves at the least, with no
 * codec, queue or wake-up: for each item the caller copies its source into a request buffer;
 * the peer (the other core, busy-waiting) allocates, copies the request in, copies it into a
 * return buffer and frees; the caller allocates, copies the return buffer in and frees. The n
 * request and return buffers are distinct, so the working set is the echo's (n x bytes each
 * way) - a 100 x 1 MiB burst runs at memory speed, not in one core's cache. One operation =
 * one item; bytes count the payload both ways, as the echo cases do.
 */
typedef struct kb_xcopy {
    kb_floor_t base;
    _Alignas(KB_LINE) _Atomic uint64_t posted; /* caller: requests written so far */
    _Alignas(KB_LINE) _Atomic uint64_t done;   /* peer: answers written so far */
    _Alignas(KB_LINE) uint32_t n;
    char *src, *req, *ret; /* src: bytes; req, ret: n x bytes */
    uint64_t seq;          /* items completed before this round */
} kb_xcopy_t;

static int xcopy_open(kb_floor_t *f)
{
    kb_xcopy_t *x = (kb_xcopy_t *)f;
    x->n = f->burst ? f->burst : 1;
    if (f->bytes * x->n > KB_XCOPY_MAX)
        return knit__err(KNIT_E_RANGE, "floor %s: a working set over %llu MiB", f->eng->name,
            (unsigned long long)(KB_XCOPY_MAX >> 20));
    atomic_init(&x->posted, 0);
    atomic_init(&x->done, 0);
    x->src = malloc(f->bytes);
    x->req = malloc(f->bytes * x->n);
    x->ret = malloc(f->bytes * x->n);
    if (!x->src || !x->req || !x->ret)
        return knit__err(KNIT_E_NOMEM, "floor %s: %llu bytes", f->eng->name,
            (unsigned long long)(f->bytes * (2ull * x->n + 1)));
    memset(x->src, 0x5a, f->bytes); /* touch every page once: no first-touch faults timed */
    memset(x->req, 0, f->bytes * x->n);
    memset(x->ret, 0, f->bytes * x->n);
    return 0;
}

static void *xcopy_peer(void *arg)
{
    kb_xcopy_t *x = arg;
    size_t b = x->base.bytes;
    uint64_t k = 0;
    unsigned n = 0;
    while (!stopping(&x->base)) {
        /* acquire: pairs with the caller's release of `posted`: the request bytes are there */
        if (atomic_load_explicit(&x->posted, memory_order_acquire) == k) {
            relax(&x->base, &n);
            continue;
        }
        n = 0;
        size_t i = (size_t)(k % x->n);
        char *m = malloc(b);
        if (!m)
            break; /* the caller's wait ends with the stop flag at close */
        memcpy(m, x->req + i * b, b);
        memcpy(x->ret + i * b, m, b);
        free(m);
        k++;
        /* release: the answer's bytes are written before the caller sees `done` move */
        atomic_store_explicit(&x->done, k, memory_order_release);
    }
    return NULL;
}

static int xcopy_round(kb_floor_t *f, kb_rep_t *rep)
{
    kb_xcopy_t *x = (kb_xcopy_t *)f;
    size_t b = f->bytes;
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < x->n; i++) {
        memcpy(x->req + (size_t)i * b, x->src, b);
        /* release: the request's bytes are written before the peer sees `posted` move */
        atomic_store_explicit(&x->posted, x->seq + i + 1, memory_order_release);
    }
    for (uint32_t i = 0; i < x->n; i++) {
        unsigned n = 0;
        /* acquire: pairs with the peer's release of `done` */
        while (atomic_load_explicit(&x->done, memory_order_acquire) < x->seq + i + 1) {
            if (stopping(f))
                return knit__err(KNIT_E_SYS, "floor %s: the peer stopped", f->eng->name);
            relax(f, &n);
        }
        char *d = malloc(b);
        if (!d)
            return knit__err(KNIT_E_NOMEM, "floor %s: %zu bytes", f->eng->name, b);
        memcpy(d, x->ret + (size_t)i * b, b);
        __asm__ volatile("" : : "r"(d) : "memory"); /* the copy is used */
        if (memcmp(d, x->src, b < 64 ? b : 64) != 0)
            rep->errors++;
        free(d);
    }
    uint64_t dt = now_ns() - t0;
    x->seq += x->n;
    knit_hist_record_n(rep->hist, dt / x->n ? dt / x->n : 1, x->n);
    rep->ops += x->n;
    rep->bytes += 2ull * b * x->n;
    return 0;
}

static void xcopy_release(kb_floor_t *f)
{
    kb_xcopy_t *x = (kb_xcopy_t *)f;
    free(x->src);
    free(x->req);
    free(x->ret);
    x->src = x->req = x->ret = NULL;
}

/* --- thread-spawn and process-spawn ----------------------------------------------------------- */

typedef struct kb_spawn {
    kb_floor_t base;
} kb_spawn_t;

static void *empty_thread(void *arg)
{
    return arg;
}

static int thread_spawn_round(kb_floor_t *f, kb_rep_t *rep)
{
    (void)f;
    pthread_t t;
    uint64_t t0 = now_ns();
    int rc = pthread_create(&t, NULL, empty_thread, NULL);
    if (rc != 0)
        return knit__err(KNIT_E_SYS, "floor thread-spawn: pthread_create: %s", strerror(rc));
    pthread_join(t, NULL);
    kb_record(rep, now_ns() - t0);
    rep->ops++;
    return 0;
}

#define KB_TRUE_PATH "/bin/true"

static int process_spawn_open(kb_floor_t *f)
{
    (void)f;
    if (access(KB_TRUE_PATH, X_OK) < 0)
        return sys_err("process-spawn", "access(" KB_TRUE_PATH ", X_OK)");
    return 0;
}

static int process_spawn_round(kb_floor_t *f, kb_rep_t *rep)
{
    (void)f;
    char *const argv[] = {(char *)KB_TRUE_PATH, NULL};
    pid_t pid;
    int status = 0;
    uint64_t t0 = now_ns();
    int rc = posix_spawn(&pid, KB_TRUE_PATH, NULL, NULL, argv, environ);
    if (rc != 0)
        return knit__err(
            KNIT_E_SYS, "floor process-spawn: posix_spawn(%s): %s", KB_TRUE_PATH, strerror(rc));
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return sys_err("process-spawn", "waitpid");
    kb_record(rep, now_ns() - t0);
    rep->ops++;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rep->errors++;
    return 0;
}

/* --- the engines, in the order of kb_floor_mechs, then those with a gap ---------------------- */

static const kb_floor_engine_t kb_engines[] = {
    {"spin", sizeof(kb_spin_t), spin_open, spin_peer, spin_round, NULL, NULL, 0},
    {"futex", sizeof(kb_futex_t), futex_open, futex_peer, futex_round, futex_stop, NULL, 0},
    {"pipe", sizeof(kb_stream_t), pipe_open, stream_peer, stream_round, stream_stop, stream_release,
        KB_TAKES_POLL | KB_TAKES_BURST},
    {"unix", sizeof(kb_stream_t), unix_open, stream_peer, stream_round, stream_stop, stream_release,
        KB_TAKES_POLL | KB_TAKES_BURST},
    {"seqpacket", sizeof(kb_stream_t), seqpacket_open, stream_peer, stream_round, stream_stop,
        stream_release, KB_TAKES_POLL | KB_TAKES_BURST},
    {"tcp", sizeof(kb_stream_t), tcp_open, stream_peer, stream_round, stream_stop, stream_release,
        KB_TAKES_POLL | KB_TAKES_BURST},
    {"ring", sizeof(kb_ring_t), ring_open, ring_peer, ring_round, NULL, NULL, KB_TAKES_BURST},
    {"memcpy", sizeof(kb_copy_t), copy_open, NULL, copy_round, NULL, copy_release, 0},
    {"xcopy", sizeof(kb_xcopy_t), xcopy_open, xcopy_peer, xcopy_round, NULL, xcopy_release,
        KB_TAKES_BYTES | KB_TAKES_BURST},
    {"thread-spawn", sizeof(kb_spawn_t), NULL, NULL, thread_spawn_round, NULL, NULL, 0},
    {"process-spawn", sizeof(kb_spawn_t), process_spawn_open, NULL, process_spawn_round, NULL, NULL,
        0},
    {"futex-gap", sizeof(kb_futex_t), futex_open, futex_peer, futex_gap_round, futex_stop, NULL,
        KB_TAKES_GAP},
};

#define KB_NENGINES (sizeof kb_engines / sizeof kb_engines[0])

/* A gap: a positive integer and a unit (ns, us, ms, s), at most KB_GAP_MAX_NS; 0 otherwise. */
static uint64_t parse_gap(const char *s)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
    char *end;
    if (*s < '0' || *s > '9')
        return 0; /* strtoull would take a sign or spaces */
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0 || n == 0)
        return 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0)
            return n <= KB_GAP_MAX_NS / units[i].ns ? n * units[i].ns : 0;
    return 0;
}

/* A positive decimal integer at *s, at most `max`, moved past; 0 when there is none. */
static uint64_t parse_count(const char **s, uint64_t max)
{
    char *end;
    if (**s < '0' || **s > '9')
        return 0;
    errno = 0;
    unsigned long long n = strtoull(*s, &end, 10);
    if (errno != 0 || n == 0 || n > max)
        return 0;
    *s = end;
    return n;
}

/* The parameters a name gives its engine: "-<time>" (gap engines), "-<bytes>" (bytes engines),
 * then "-poll" and "-b<n>" where the engine takes them, in that order. false: malformed. */
static bool parse_params(const kb_floor_engine_t *e, const char *rest, kb_floor_t *p)
{
    if (e->takes & KB_TAKES_GAP)
        return *rest == '-' && (p->gap_ns = parse_gap(rest + 1)) > 0;
    if (e->takes & KB_TAKES_BYTES) {
        rest += *rest == '-';
        if ((p->bytes = parse_count(&rest, KB_XCOPY_MAX)) == 0)
            return false;
    }
    if ((e->takes & KB_TAKES_POLL) && !strncmp(rest, "-gap-", 5)) /* as the idle cases */
        return (p->gap_ns = parse_gap(rest + 5)) > 0;
    if ((e->takes & KB_TAKES_POLL) && !strncmp(rest, "-poll", 5)) {
        p->poll = true;
        rest += 5;
    }
    if ((e->takes & KB_TAKES_BURST) && !strncmp(rest, "-b", 2)) {
        rest += 2;
        if ((p->burst = (uint32_t)parse_count(&rest, KB_BURST_MAX)) == 0)
            return false;
    }
    return *rest == '\0';
}

/* The engine `mech` names, or NULL; `params` receives what the name's suffixes give it. */
static const kb_floor_engine_t *find_engine(const char *mech, kb_floor_t *params)
{
    const kb_floor_engine_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; mech && i < KB_NENGINES; i++) {
        const kb_floor_engine_t *e = &kb_engines[i];
        size_t n = strlen(e->name);
        /* the longest engine name that prefixes `mech` (futex-gap before futex) */
        if (strncmp(e->name, mech, n) == 0 && n > best_len && (mech[n] == '\0' || mech[n] == '-')) {
            best = e;
            best_len = n;
        }
    }
    memset(params, 0, sizeof *params);
    if (!best || !parse_params(best, mech + best_len, params))
        return NULL;
    return best;
}

bool kb_floor_is_throughput(const char *mech)
{
    kb_floor_t p;
    const kb_floor_engine_t *e = find_engine(mech, &p);
    return e
        && (p.burst || !strcmp(e->name, "ring") || (e->takes & KB_TAKES_BYTES)
            || !strcmp(e->name, "memcpy"));
}

static int unknown_mech(const char *mech)
{
    return knit__err(KNIT_E_INVAL,
        "unknown floor mechanism '%s' (valid: spin, futex, "
        "pipe|unix|seqpacket|tcp[-poll][-b<n>] or -gap-<time>, "
        "ring[-b<n>], memcpy, xcopy-<bytes>[-b<n>], thread-spawn, process-spawn, "
        "futex-gap-<n>{ns,us,ms,s}; a gap is at most 10 s, a burst at most %u)",
        mech ? mech : "(null)", KB_BURST_MAX);
}

/* --- pinning: caller on CPU 0, peer on CPU 1 -------------------------------------------------- */

/* Pin the caller to CPU 0 (and later the peer to CPU 1) when there are two or more CPUs,
 * whatever the caller's mask is now (the harness may have pinned it to CPU 0 already, and a
 * peer thread would inherit that mask). When the system refuses CPU 1 for this process (e.g.
 * under taskset), nothing is pinned. */
static int pin_caller(kb_floor_t *f)
{
    cpu_set_t one, two;
    if (online_cpus() < 2)
        return 0;
    int rc = pthread_getaffinity_np(pthread_self(), sizeof f->saved, &f->saved);
    if (rc != 0)
        return knit__err(KNIT_E_SYS, "floor: pthread_getaffinity_np: %s", strerror(rc));
    CPU_ZERO(&two);
    CPU_SET(0, &two);
    CPU_SET(1, &two);
    if (pthread_setaffinity_np(pthread_self(), sizeof two, &two) != 0)
        return 0; /* CPUs 0 and 1 are not both ours: leave the mask alone */
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    rc = pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    if (rc != 0) {
        pthread_setaffinity_np(pthread_self(), sizeof f->saved, &f->saved);
        return knit__err(KNIT_E_SYS, "floor: pin the caller to CPU 0: %s", strerror(rc));
    }
    f->pinned = true;
    return 0;
}

static void unpin_caller(kb_floor_t *f)
{
    if (f->pinned)
        pthread_setaffinity_np(pthread_self(), sizeof f->saved, &f->saved);
    f->pinned = false;
}

static int start_peer(kb_floor_t *f)
{
    pthread_attr_t attr;
    cpu_set_t one;
    int rc = pthread_attr_init(&attr);
    if (rc == 0 && f->pinned) {
        CPU_ZERO(&one);
        CPU_SET(1, &one);
        rc = pthread_attr_setaffinity_np(&attr, sizeof one, &one);
    }
    if (rc == 0)
        rc = pthread_create(&f->peer, &attr, f->eng->peer, f);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return knit__err(
            KNIT_E_SYS, "floor %s: start the peer thread: %s", f->eng->name, strerror(rc));
    f->peer_running = true;
    return 0;
}

/* --- the interface ---------------------------------------------------------------------------- */

int kb_floor_open(const char *mech, kb_floor_t **out)
{
    kb_floor_t params;
    const kb_floor_engine_t *eng = find_engine(mech, &params);
    *out = NULL;
    if (!eng)
        return unknown_mech(mech);
    size_t size = (eng->size + KB_LINE - 1) / KB_LINE * KB_LINE;
    kb_floor_t *f = aligned_alloc(KB_LINE, size);
    if (!f)
        return knit__err(KNIT_E_NOMEM, "floor %s: %zu bytes", mech, size);
    memset(f, 0, size);
    f->eng = eng;
    f->gap_ns = params.gap_ns;
    f->poll = params.poll;
    f->burst = params.burst;
    f->bytes = params.bytes;
    atomic_init(&f->stop, false);
    int rc = pin_caller(f);
    /* On one usable CPU busy-waiting only burns the partner's time slice: yield at once. */
    f->spin_at = f->pinned || allowed_cpus() >= 2 ? 1u << 14 : 1u;
    if (rc == 0 && eng->open)
        rc = eng->open(f);
    if (rc == 0 && eng->round == stream_round)
        rc = stream_nonblock(f);
    if (rc == 0 && eng->peer)
        rc = start_peer(f);
    if (rc != 0) {
        kb_floor_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int kb_floor_round(void *floor, kb_rep_t *rep)
{
    kb_floor_t *f = floor;
    return f->eng->round(f, rep);
}

void kb_floor_close(kb_floor_t *f)
{
    if (!f)
        return;
    if (f->peer_running) {
        /* seq_cst: ordered before the engine's stop action (a store the peer then sees) */
        atomic_store(&f->stop, true);
        if (f->eng->stop)
            f->eng->stop(f);
        pthread_join(f->peer, NULL);
        f->peer_running = false;
    }
    if (f->eng->release)
        f->eng->release(f);
    unpin_caller(f);
    free(f);
}
