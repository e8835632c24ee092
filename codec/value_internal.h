/* knit codec - value internals shared by the codec and the value helpers. */
#ifndef KNIT_CODEC_VALUE_INTERNAL_H
#define KNIT_CODEC_VALUE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "knit/value.h"

#define KNIT__SHARED_MAGIC 0x6b6e5342u /* "knSB": checked before a decoded pointer is used */

struct knit_shared_buf {
    uint32_t magic;
    _Atomic uint32_t refs;
    size_t len;
    _Alignas(64) uint8_t data[];
};

void knit__moved_destroy(knit_moved_buf_t *m);
void knit__error_destroy(knit_error_value_t *e);

/*
 * Make *dst an owned copy of *src (deep copy; a shared buffer gains a reference). A MOVED value
 * is moved instead: *dst takes it and *src becomes UNDEFINED.
 */
int knit__value_keep(knit_value_t *src, knit_value_t *dst);

/* Is `pid` this process or one of its threads (a thread id is a /proc/<pid> path too)? A
 * ProcessSharedBuffer from a peer may not name either (codec/psb.c). */
bool knit__psb_pid_is_ours(int32_t pid);
/* fd is the descriptor of a ProcessSharedBuffer this process holds open (made or opened,
 * not closed yet): the only descriptors of its own that a peer may name, when it sends such a
 * buffer back. */
bool knit__psb_fd_is_held(int fd);

#endif
