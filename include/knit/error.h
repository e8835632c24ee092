/*
 * knit - error codes.
 *
 * Every knit function that can fail returns an int: 0 on success or one of the negative
 * KNIT_E... codes below. knit_strerror() gives the fixed text of a code; knit_errmsg() gives the
 * detailed message of the last failure on the calling thread (which limit, which size, which
 * system call), written when the failure happened.
 */
#ifndef KNIT_ERROR_H
#define KNIT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum knit_error {
    KNIT_OK = 0,
    KNIT_E_INVAL = -1,             /* an argument is invalid (NULL, out of range, bad name) */
    KNIT_E_NOMEM = -2,             /* host memory allocation failed */
    KNIT_E_RANGE = -3,             /* a configuration value is outside its allowed range */
    KNIT_E_SYS = -4,               /* a system call failed; knit_errmsg() names it and errno */
    KNIT_E_PAYLOAD_TOO_LARGE = -5, /* a dynamic payload exceeds maxPayloadBytes */
    KNIT_E_ARENA_FULL = -6,        /* the payload arena has no room (bytes or regions) */
    KNIT_E_UNSUPPORTED = -7,       /* the value kind cannot be encoded here */
    KNIT_E_PROCESS_BOUNDARY = -8,  /* a process-local value was sent across processes */
    KNIT_E_CORRUPT = -9,           /* a frame or header failed validation while decoding */
    KNIT_E_FULL = -10,             /* all 32 slots of a lock are in use */
    KNIT_E_AGAIN = -11,            /* nothing to do right now (no frame, no result yet) */
    KNIT_E_TASK = -12,             /* the task rejected; the future's value is its error */
    KNIT_E_TIMEOUT = -13,          /* the task's timeout expired (reject flavour) */
    KNIT_E_ABORTED = -14,          /* the caller cancelled the call */
    KNIT_E_ABORT_EXHAUSTED = -15,  /* every abort signal id is in use */
    KNIT_E_SHUTDOWN = -16,         /* the pool is shut down (or shut down under the call) */
    KNIT_E_HARD_TIMEOUT = -17,     /* the worker hard timeout expired; the pool was shut down */
    KNIT_E_WORKER_DIED = -18,      /* the worker running the call died */
    KNIT_E_WORKER_STARTUP = -19,   /* the worker failed to start */
    KNIT_E_NO_TASK = -20,          /* no task with that name or index */
};

/* Smallest (most negative) code defined by this version. */
#define KNIT_E_LAST KNIT_E_NO_TASK

/* Fixed text for an error code; never NULL ("unknown knit error" for unknown codes). */
const char *knit_strerror(int code);

/*
 * Detailed message of the last failure reported on the calling thread, e.g.
 * "dynamic payload exceeds maxPayloadBytes: limit=8388608 actual=9000000 type=bytes".
 * Empty string when nothing failed yet. Valid until the next knit call on this thread.
 */
const char *knit_errmsg(void);

#ifdef __cplusplus
}
#endif

#endif /* KNIT_ERROR_H */
