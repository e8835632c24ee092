/* knit - internal error helpers shared by every module. */
#ifndef KNIT_BASE_ERROR_H
#define KNIT_BASE_ERROR_H

#include <stdbool.h>

#include "knit/error.h"

/*
 * Record a detailed message for the calling thread ("<strerror>: <fmt...>") and return code,
 * so a failure site reads `return knit__err(KNIT_E_RANGE, "x=%d", x);`.
 */
/* The last message without its "<strerror>: " prefix (for messages that get their own). */
const char *knit__errmsg_detail(void);

int knit__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record "invalid argument: <fn>: <name> is NULL" (the slow half of knit__null_arg). */
void knit__err_null(const char *fn, const char *name) __attribute__((cold));

/*
 * The public functions' NULL check: true when `arg` is NULL, after recording
 * "invalid argument: <fn>: <name> is NULL", so a function reads
 * `if (knit__null_arg(f, __func__, "future")) return KNIT_E_INVAL;`. Inline: it guards every
 * call and wait, and costs a compare and a branch when the argument is there.
 */
static inline bool knit__null_arg(const void *arg, const char *fn, const char *name)
{
    if (__builtin_expect(arg != 0, 1))
        return false;
    knit__err_null(fn, name);
    return true;
}

#endif
