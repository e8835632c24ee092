/*
 * knit - ProcessSharedBuffer: shared memory that travels between host and workers by
 * descriptor, including across processes.
 *
 * An anonymous buffer is a memfd (close-on-exec); a process worker that receives its
 * descriptor opens it through /proc/<owner pid>/fd/<fd>, so the owner must keep it open while
 * others may still open it. A named buffer is a POSIX shm object ("/name", created with
 * O_CREAT|O_EXCL and mode 0600) that anyone in the same IPC view opens by name; it lives until
 * knit_psb_unlink(). Sending a buffer sends a knit_psb_desc_t value (knit_v_psb()).
 *
 * A process worker may run untrusted code, so both sides guard against each other: an
 * anonymous buffer is sealed against shrinking and growing (a peer cannot truncate it under
 * another's mapping), knit_psb_open refuses another process's fd that is not so sealed, and a
 * descriptor received from another process resolves to one of the receiver's own descriptors
 * (its own pid, one of its thread ids, or an fd without an owner) only when that descriptor is
 * a buffer the receiver holds open (made or opened, not closed): a worker may hand a host
 * buffer back, but cannot make the host open any other of its descriptors
 * (KNIT_E_PROCESS_BOUNDARY when decoded). Named buffers cannot be sealed: a peer can shrink
 * one, and this process then reads zeros past the new end instead of faulting (base/sigbus.h).
 */
#ifndef KNIT_SHARED_BUFFER_H
#define KNIT_SHARED_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "knit/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct knit_psb knit_psb_t;

/* A new zero-filled anonymous buffer of `size` bytes (> 0). */
int knit_psb_create(size_t size, knit_psb_t **out);

/* A new named buffer; `name` is "/" followed by at most 30 of [A-Za-z0-9._-]. Fails with
 * KNIT_E_SYS (EEXIST) when the name is taken. */
int knit_psb_create_named(const char *name, size_t size, knit_psb_t **out);

/* Open an existing named buffer. */
int knit_psb_open_named(const char *name, knit_psb_t **out);

/* Open the buffer a received descriptor refers to (this process's fd, another process's fd
 * through /proc, or a name). The descriptor's range is not applied: use knit_psb_view. */
int knit_psb_open(const knit_psb_desc_t *desc, knit_psb_t **out);

void *knit_psb_data(const knit_psb_t *b);
size_t knit_psb_size(const knit_psb_t *b);
const char *knit_psb_name(const knit_psb_t *b); /* "" for anonymous buffers */

/* A descriptor for [offset, offset + length) of the buffer, ready for knit_v_psb(). */
int knit_psb_describe(const knit_psb_t *b, uint64_t offset, uint64_t length, knit_psb_desc_t *out);

/* A typed window on the buffer: `length` bytes at `offset`, both multiples of the element
 * size (KNIT_E_INVAL otherwise, or when the range leaves the buffer). */
typedef struct knit_psb_view {
    void *data;
    size_t count; /* elements */
    knit_elem_t elem;
} knit_psb_view_t;

int knit_psb_view(
    const knit_psb_t *b, uint64_t offset, uint64_t length, knit_elem_t elem, knit_psb_view_t *out);

/* The view a received descriptor describes (its own offset and length). */
int knit_psb_desc_view(
    const knit_psb_t *b, const knit_psb_desc_t *desc, knit_elem_t elem, knit_psb_view_t *out);

/* Remove a named buffer's name (mappings stay valid). */
int knit_psb_unlink(knit_psb_t *b);

/* Unmap and close. */
void knit_psb_close(knit_psb_t *b);

#ifdef __cplusplus
}
#endif

#endif
