// knit harness - the C API of gbench.h over Google Benchmark (1.7).
//
// Every registered definition is copied into a heap object shared by the lambda Google
// Benchmark keeps for the benchmark and by our registry (for the failure summary); the lambda
// wraps benchmark::State in a knit_gbench_state and calls the C callback. No C++ exception crosses
// into C: the few calls that allocate catch and turn a failure into an error report.
#include "gbench/gbench.h"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <vector>

struct knit_gbench_state {
    benchmark::State *st;
    const knit_gbench_def_t *def;
    bool loop_done; // knit_gbench_keep_running() has returned false (the timer is stopped)
};

namespace
{

// The registry's copy of a definition; `def.name` points into `name`.
struct Registered {
    std::string name;
    knit_gbench_def_t def;
    std::atomic<bool> failed {false}; // some run of it reported an error
};

// Every registered definition, in registration order (for the failure summary).
std::vector<std::shared_ptr<Registered>> g_registry;

constexpr uint32_t kKnownFlags
    = KNIT_GBENCH_REAL_TIME | KNIT_GBENCH_MANUAL_TIME | KNIT_GBENCH_PROCESS_CPU_TIME;

bool def_is_valid(const knit_gbench_def_t *d)
{
    if (!d || !d->name || !d->name[0] || !d->run)
        return false;
    if (d->flags & ~kKnownFlags)
        return false;
    if ((d->flags & KNIT_GBENCH_REAL_TIME) && (d->flags & KNIT_GBENCH_MANUAL_TIME))
        return false; // Google Benchmark allows one of the two
    if (d->min_time_s < 0 || d->repetitions < 0 || d->unit < KNIT_GBENCH_UNIT_DEFAULT
        || d->unit > KNIT_GBENCH_UNIT_S)
        return false;
    // Iterations() and MinTime() exclude each other in Google Benchmark.
    return !(d->iterations > 0 && d->min_time_s > 0);
}

benchmark::TimeUnit to_time_unit(knit_gbench_unit_t u)
{
    switch (u) {
    case KNIT_GBENCH_UNIT_US:
        return benchmark::kMicrosecond;
    case KNIT_GBENCH_UNIT_MS:
        return benchmark::kMillisecond;
    case KNIT_GBENCH_UNIT_S:
        return benchmark::kSecond;
    default:
        return benchmark::kNanosecond;
    }
}

// Body of every registered benchmark: call the C callback, then make sure Google Benchmark
// sees an error whenever the callback failed or left its loop early. Without one it would
// abort the whole program: a benchmark that returns before the loop ended, even after its
// last iteration, leaves the timer running. SkipWithError() stops the timer.
void run_one(benchmark::State &st, Registered *reg)
{
    const knit_gbench_def_t *def = &reg->def;
    knit_gbench_state s {&st, def, false};
    int rc = def->run(def, &s);
    if (!st.error_occurred()) {
        if (rc < 0) {
            char msg[96];
            std::snprintf(msg, sizeof msg, "benchmark failed with code %d", rc);
            st.SkipWithError(msg);
        } else if (!s.loop_done) {
            st.SkipWithError("benchmark returned before knit_gbench_keep_running() was false");
        }
    }
    if (st.error_occurred())
        reg->failed.store(true, std::memory_order_relaxed);
}

void apply_settings(benchmark::internal::Benchmark *b, const knit_gbench_def_t *d)
{
    if (d->flags & KNIT_GBENCH_REAL_TIME)
        b->UseRealTime();
    if (d->flags & KNIT_GBENCH_MANUAL_TIME)
        b->UseManualTime();
    if (d->flags & KNIT_GBENCH_PROCESS_CPU_TIME)
        b->MeasureProcessCPUTime();
    if (d->unit != KNIT_GBENCH_UNIT_DEFAULT)
        b->Unit(to_time_unit(d->unit));
    if (d->min_time_s > 0)
        b->MinTime(d->min_time_s);
    if (d->iterations > 0)
        b->Iterations(static_cast<benchmark::IterationCount>(d->iterations));
    if (d->repetitions > 0)
        b->Repetitions(d->repetitions);
}

// Name the benchmarks that reported an error on stderr; true when there was one.
bool report_failures(const char *prog)
{
    bool any = false;
    for (const auto &reg : g_registry) {
        if (!reg->failed.load(std::memory_order_relaxed))
            continue;
        std::fprintf(stderr, "%s: benchmark %s reported an error\n", prog, reg->name.c_str());
        any = true;
    }
    return any;
}

} // namespace

extern "C" int knit_gbench_register(const knit_gbench_def_t *def)
{
    if (!def_is_valid(def))
        return -EINVAL;
    try {
        auto reg = std::make_shared<Registered>();
        reg->name = def->name;
        reg->def = *def;
        reg->def.name = reg->name.c_str();
        g_registry.push_back(reg);
        benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(
            reg->name.c_str(), [reg](benchmark::State &st) { run_one(st, reg.get()); });
        apply_settings(b, &reg->def);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    }
    return 0;
}

extern "C" int knit_gbench_main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        std::fprintf(stderr, "%s: --help lists the accepted flags\n", argc > 0 ? argv[0] : "");
        return 2;
    }
    size_t matched = benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (matched == 0)
        return 2; // Google Benchmark has said that the filter matched nothing
    return report_failures(argc > 0 ? argv[0] : "knit_gbench") ? 1 : 0;
}

extern "C" bool knit_gbench_keep_running(knit_gbench_state_t *s, uint64_t batch)
{
    if (s->loop_done)
        return false; // Google Benchmark must not be asked again once it has said stop
    bool more = s->st->KeepRunningBatch(batch ? static_cast<benchmark::IterationCount>(batch) : 1);
    s->loop_done = !more;
    return more;
}

extern "C" uint64_t knit_gbench_iterations(const knit_gbench_state_t *s)
{
    return static_cast<uint64_t>(s->st->iterations());
}

extern "C" int64_t knit_gbench_arg(const knit_gbench_state_t *s)
{
    return s->def->arg;
}

// Google Benchmark aborts on pause/resume after an error; make them no-ops then.
extern "C" void knit_gbench_pause_timing(knit_gbench_state_t *s)
{
    if (!s->st->error_occurred())
        s->st->PauseTiming();
}

extern "C" void knit_gbench_resume_timing(knit_gbench_state_t *s)
{
    if (!s->st->error_occurred())
        s->st->ResumeTiming();
}

extern "C" void knit_gbench_set_iteration_time(knit_gbench_state_t *s, double seconds)
{
    s->st->SetIterationTime(seconds);
}

extern "C" void knit_gbench_set_bytes_processed(knit_gbench_state_t *s, int64_t bytes)
{
    try {
        s->st->SetBytesProcessed(bytes);
    } catch (const std::bad_alloc &) {
        knit_gbench_skip_with_error(s, "out of memory recording bytes processed");
    }
}

extern "C" void knit_gbench_set_items_processed(knit_gbench_state_t *s, int64_t items)
{
    try {
        s->st->SetItemsProcessed(items);
    } catch (const std::bad_alloc &) {
        knit_gbench_skip_with_error(s, "out of memory recording items processed");
    }
}

extern "C" void knit_gbench_set_label(knit_gbench_state_t *s, const char *label)
{
    try {
        s->st->SetLabel(label ? label : "");
    } catch (const std::bad_alloc &) {
        knit_gbench_skip_with_error(s, "out of memory recording a label");
    }
}

extern "C" void knit_gbench_set_counter(
    knit_gbench_state_t *s, const char *name, double value, bool is_rate)
{
    if (!name || !name[0])
        return;
    try {
        s->st->counters[name] = benchmark::Counter(
            value, is_rate ? benchmark::Counter::kIsRate : benchmark::Counter::kDefaults);
    } catch (const std::bad_alloc &) {
        knit_gbench_skip_with_error(s, "out of memory recording a counter");
    }
}

extern "C" void knit_gbench_skip_with_error(knit_gbench_state_t *s, const char *message)
{
    if (s->st->error_occurred())
        return; // keep the first error; Google Benchmark expects one call
    try {
        s->st->SkipWithError(message && message[0] ? message : "unspecified error");
    } catch (const std::bad_alloc &) {
        // no memory for the message: nothing more can be reported
    }
}

extern "C" void knit_gbench_skip_with_errorf(knit_gbench_state_t *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    knit_gbench_skip_with_error(s, msg);
}

extern "C" bool knit_gbench_error_occurred(const knit_gbench_state_t *s)
{
    return s->st->error_occurred();
}
