/*
 * knit base - a guard for shared memory that another process can shrink.
 *
 * A memfd can be sealed against shrinking; a named POSIX shared-memory object cannot. When a
 * peer truncates a named object that this process maps, the next access past the new end
 * raises SIGBUS and would end the process. A guarded range turns that into a flag: the SIGBUS
 * handler (installed with the first guard, chaining to whatever handler was there before)
 * maps zero-filled private pages over the whole range, sets the range's flag and returns, so
 * the access completes (reading zeros) and the owner checks the flag and stops trusting the
 * memory. Faults outside every guarded range go to the previous handler, or end the process as
 * they would have.
 */
#ifndef KNIT_BASE_SIGBUS_H
#define KNIT_BASE_SIGBUS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct knit__sigbus_guard knit__sigbus_guard_t;

/* Guard [addr, addr + len) (a whole mapping, page-aligned). KNIT_E_FULL when every one of the
 * process's guard slots is in use; KNIT_E_SYS when the handler cannot be installed. */
int knit__sigbus_guard(void *addr, size_t len, knit__sigbus_guard_t **out);

/* Stop guarding (before the range is unmapped). NULL is ignored. */
void knit__sigbus_unguard(knit__sigbus_guard_t *g);

/* True once an access to the range faulted; its pages are then private zeros. */
bool knit__sigbus_hit(const knit__sigbus_guard_t *g);

#endif
