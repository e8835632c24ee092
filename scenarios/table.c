/* knit-bench - the scenario table: names (as on the command line and in the JSON), in run order. */
#include "bench.h"

const kb_scenario_t kb_scenarios[] = {
    {"floor",
        "physical limits with no scheduler: spin, futex, pipe, unix, tcp round trips, a raw "
        "ring, memcpy, thread and process spawn",
        kb_scenario_floor},
    {"latency", "one call in flight, empty task, 8-byte argument", kb_scenario_latency},
    {"batch", "bursts of 1-1000 concurrent empty calls on 1, 2, 4 workers", kb_scenario_batch},
    {"echo", "a ~30-byte JSON object echoed in bursts of 1, 25, 50", kb_scenario_echo},
    {"types", "echo of each value kind, 1 and 100 per round", kb_scenario_types},
    {"payload", "bytes echo from 8 B to 8 MiB, batch 1 and 100", kb_scenario_payload},
    {"load", "open-loop arrivals (constant, Poisson) swept to saturation", kb_scenario_load},
    {"balance", "balancers and stealing under flat, uniform, heavy-tailed, bimodal costs",
        kb_scenario_balance},
    {"startup", "pool creation to first reply, and shutdown", kb_scenario_startup},
    {"idle", "CPU per idle worker, first call after idle gaps", kb_scenario_idle},
    {"cpu", "CPU-heavy work (primes) speed-up against worker count", kb_scenario_cpu},
    {"dispatch", "per-thread vs serial-channel dispatcher, 1-64 calls in flight",
        kb_scenario_dispatch},
    {"contended", "latency and bursts while busy processes compete for the CPUs",
        kb_scenario_contended},
};

const unsigned kb_nscenarios = sizeof kb_scenarios / sizeof kb_scenarios[0];
