/* knit - error texts and the per-thread detailed message (see include/knit/error.h). */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errmsg_buf[512];

const char *knit_strerror(int code)
{
    switch (code) {
    case KNIT_OK:
        return "success";
    case KNIT_E_INVAL:
        return "invalid argument";
    case KNIT_E_NOMEM:
        return "out of memory";
    case KNIT_E_RANGE:
        return "configuration value out of range";
    case KNIT_E_SYS:
        return "system call failed";
    case KNIT_E_PAYLOAD_TOO_LARGE:
        return "payload exceeds maxPayloadBytes";
    case KNIT_E_ARENA_FULL:
        return "payload arena capacity exceeded";
    case KNIT_E_UNSUPPORTED:
        return "unsupported payload type";
    case KNIT_E_PROCESS_BOUNDARY:
        return "value cannot cross a process boundary";
    case KNIT_E_CORRUPT:
        return "corrupt frame";
    case KNIT_E_FULL:
        return "no free slot";
    case KNIT_E_AGAIN:
        return "nothing available yet";
    case KNIT_E_TASK:
        return "task rejected";
    case KNIT_E_TIMEOUT:
        return "task timeout";
    case KNIT_E_ABORTED:
        return "call aborted";
    case KNIT_E_ABORT_EXHAUSTED:
        return "abort signal capacity exhausted";
    case KNIT_E_SHUTDOWN:
        return "pool is shut down";
    case KNIT_E_HARD_TIMEOUT:
        return "task hard timeout; pool force-shutdown";
    case KNIT_E_WORKER_DIED:
        return "worker died";
    case KNIT_E_WORKER_STARTUP:
        return "worker startup failed";
    case KNIT_E_NO_TASK:
        return "no such task";
    default:
        return "unknown knit error";
    }
}

const char *knit_errmsg(void)
{
    return errmsg_buf;
}

const char *knit__errmsg_detail(void)
{
    const char *sep = strstr(errmsg_buf, ": ");
    return sep ? sep + 2 : errmsg_buf;
}

int knit__err(int code, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(errmsg_buf, sizeof errmsg_buf, "%s: ", knit_strerror(code));
    if (n < 0 || (size_t)n >= sizeof errmsg_buf)
        return code;
    va_start(ap, fmt);
    vsnprintf(errmsg_buf + n, sizeof errmsg_buf - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

void knit__err_null(const char *fn, const char *name)
{
    knit__err(KNIT_E_INVAL, "%s: %s is NULL", fn, name);
}
