/* knit runtimes - the runtimes by id: the one file that knows every implementation. */
#include "runtimes/process/process.h"
#include "runtimes/runtime.h"
#include "runtimes/thread/thread.h"

const knit__runtime_ops_t *knit__runtime_ops(knit_runtime_t rt)
{
    switch (rt) {
    case KNIT_RUNTIME_THREAD:
        return &knit__thread_runtime_ops;
    case KNIT_RUNTIME_PROCESS:
        return &knit__process_runtime_ops;
    default:
        return NULL;
    }
}
