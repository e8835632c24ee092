/*
 * knit-micro - Google Benchmark micro-benchmarks of knit's codec, slots and arenas.
 *
 * Each source file of this folder registers one group of benchmarks; this file registers
 * them all and hands the command line to Google Benchmark (./run.sh micro, harness/README.md).
 */
#include <stdio.h>
#include <string.h>

#include "gbench/gbench.h"
#include "micro.h"

static const struct group {
    const char *name;
    int (*register_fn)(void);
} groups[] = {
    {"codec", knit_micro_register_codec},
    {"slot", knit_micro_register_slot},
    {"arena", knit_micro_register_arena},
    {"pool", knit_micro_register_pool},
};

int main(int argc, char **argv)
{
    int worker = knit_micro_worker_guard(); /* in a process worker: serve, then exit */
    if (worker >= 0)
        return worker;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        int rc = groups[i].register_fn();
        if (rc < 0) {
            fprintf(stderr, "knit-micro: registering the %s benchmarks failed: %s\n",
                groups[i].name, strerror(-rc));
            return 2;
        }
    }
    return knit_gbench_main(argc, argv);
}
