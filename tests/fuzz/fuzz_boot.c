/*
 * Fuzz target: the boot payload a process worker reads from its environment
 * (knit__boot_decode). The input is the payload's text. Whatever it holds the decoder returns 0
 * with a consistent table, or a clean KNIT_E_WORKER_STARTUP (KNIT_E_NOMEM), and never leaks.
 */
#include "fuzz_util.h"
#include "knit/error.h"
#include "runtimes/process/process.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    knit__boot_t b;
    int rc = knit__boot_decode(text, &b);
    FZ_CHECK(rc == 0 || rc == KNIT_E_WORKER_STARTUP || rc == KNIT_E_NOMEM, "decode: %d", rc);
    if (rc == 0) {
        FZ_CHECK(b.ntasks > 0 && b.tasks, "no tasks");
        for (uint32_t i = 1; i < b.ntasks; i++)
            FZ_CHECK(strcmp(b.tasks[i - 1].name, b.tasks[i].name) < 0, "tasks not sorted");
        FZ_CHECK(
            b.cfg.max_payload_bytes > 0 && b.cfg.max_payload_bytes <= b.cfg.payload_max_bytes >> 3,
            "maxPayload %llu", (unsigned long long)b.cfg.max_payload_bytes);
        FZ_CHECK(strlen(b.name) < sizeof b.name, "name");
        knit__boot_free(&b);
    }
    free(text);
    return 0;
}
