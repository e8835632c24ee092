/*
 * knit-bench - the physical limits (the `floor` scenario's mechanisms), with no scheduler: what
 * every other figure is read against. Each mechanism is an object whose round function fits
 * kb_round_fn, so the floor scenario runs them as ordinary cases and other scenarios measure a
 * reference close in time to their own cases (kb_floor_ref).
 *
 *   spin           cross-core cache-line ping-pong between two threads (busy-wait), round trip
 *   futex          futex wait/wake round trip between two threads (no spinning)
 *   pipe           8-byte round trip over a pair of pipes between two threads (blocking)
 *   unix           8-byte round trip over a Unix stream socket pair (blocking)
 *   seqpacket      8-byte round trip over a Unix seqpacket socket pair (blocking)
 *   tcp            8-byte round trip over loopback TCP, TCP_NODELAY (blocking)
 *   <stream>-poll  the same with non-blocking descriptors that both sides busy-poll
 *   <stream>[-poll]-b<n>  bursts of n messages, at most 32 unanswered (a lane's window); one
 *                  operation = one message
 *   ring           a raw single-producer ring: bursts of 1000 8-byte items to a consumer thread
 *                  that answers each on a return ring; one operation = one item
 *   ring-b<n>      the same ring, bursts of n items with at most 32 in flight
 *   memcpy         memcpy of 1 MiB between two buffers; bytes counted once per copy
 *   <stream>-gap-<time>  one round trip after the caller slept <time>, the peer blocked in read
 *   xcopy-<bytes>[-b<n>]  an echo's copies with no codec: n payloads of <bytes> across two cores,
 *                  with an allocation at each receiving end; one operation = one payload
 *   thread-spawn   pthread_create + pthread_join of an empty thread
 *   process-spawn  posix_spawn of /bin/true + waitpid
 *
 * Not cases of the floor scenario, opened by name only: the idle scenario's references.
 *
 *   futex-gap-<time>  the futex round trip after an idle gap: a round sleeps <time> (an integer
 *                  with ns, us, ms or s, at most 10 s: futex-gap-100ms) in nanosleep with the
 *                  peer parked in FUTEX_WAIT, so the CPUs may halt as they do between the idle
 *                  scenario's calls, then times one round trip (the `futex` mechanism's)
 */
#ifndef KNIT_HARNESS_FLOOR_H
#define KNIT_HARNESS_FLOOR_H

#include "bench.h"

typedef struct kb_floor kb_floor_t;

/* Names of the floor scenario's mechanisms, in the order above (not futex-gap-<time>);
 * NULL-terminated. */
extern const char *const kb_floor_mechs[];

/* The mechanism is read by throughput (operations per second: bursts, rings, copies), not by
 * the time of one round trip. */
bool kb_floor_is_throughput(const char *mech);

/* Start a mechanism (its peer thread, descriptors, buffers). The peer thread is pinned to CPU 1
 * and the caller's thread to CPU 0 when the machine has two or more CPUs (restored by
 * kb_floor_close). KNIT_E_INVAL for an unknown name or a malformed gap. */
int kb_floor_open(const char *mech, kb_floor_t **out);

/* One round: a small fixed number of operations (about 10-100 us of work; futex-gap-<time>:
 * the sleep, then one operation), each recorded with kb_record (the ring records burst time /
 * 1000 per item); adds rep->ops and rep->bytes. */
int kb_floor_round(void *floor, kb_rep_t *rep);

void kb_floor_close(kb_floor_t *f);

#endif
