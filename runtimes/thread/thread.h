/* knit runtimes/thread - workers on pthreads of the host process (thread.c). */
#ifndef KNIT_RUNTIMES_THREAD_THREAD_H
#define KNIT_RUNTIMES_THREAD_THREAD_H

#include "runtimes/runtime.h"

extern const knit__runtime_ops_t knit__thread_runtime_ops;

#endif
