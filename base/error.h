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

/*
 * The public functions' NULL check: true when `arg` is NULL, after recording
 * "invalid argument: <fn>: <name> is NULL", so a function reads
 * `if (knit__null_arg(f, __func__, "future")) return KNIT_E_INVAL;`.
 */
bool knit__null_arg(const void *arg, const char *fn, const char *name);

#endif
