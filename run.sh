#!/usr/bin/env bash
# knit - the single entry point: set-up, build, tests, benchmarks, charts.
# ./run.sh --help lists every command and option.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$ROOT/build"

# Debian packages the project needs (build, tests, benchmarks, charts, wrappers used by tests).
PACKAGES=(
    gcc g++ make cmake ninja-build pkg-config clang libclang-rt-14-dev
    libcmocka-dev libbenchmark-dev libbenchmark-tools libjansson-dev libseccomp-dev
    gnuplot-nox python3-matplotlib python3-scipy python3-numpy
    chromium
    bubblewrap util-linux valgrind
    linux-perf sockperf
)

usage() {
    cat <<'EOF'
Usage: ./run.sh [COMMAND] [OPTIONS]

Commands:
  (none)                 set up, build, run the default benchmark suite (knit-bench: every
                         scenario, under 15 minutes on 2 cores), print a table per scenario
                         and save the JSON document under results/runs/; after a full run
                         (no --quick, no filter) redraw docs/charts/ from it
  test [--fast]          set up, build and run every test through ctest: the Release build,
                         then the AddressSanitizer+UBSan and ThreadSanitizer builds and
                         the libFuzzer targets (clang, about 2 minutes; --fast: Release
                         build only). Exits non-zero on any failure.
  micro [--json] [ARGS]  Google Benchmark micro-benchmarks of the codec, slots, arenas and
                         pool (round trips with p50/p99, bursts, start-up); --json: Google
                         Benchmark's JSON on stdout; other ARGS go to Google Benchmark,
                         e.g. --benchmark_filter=pool/roundtrip --benchmark_min_time=1
  gate BASE_REV [NEW_REV] [--quick] [--pairs N] [--scenario A,B] [OPTIONS]
                         the regression gate (docs/gate.md): builds both revisions (NEW_REV
                         defaults to the working tree) under build/gate/, runs latency and
                         bursts of every transport x runtime as interleaved fresh processes
                         (ABBA, 12 pairs), flags a case whose 99 % lower bound of NEW/BASE
                         clears a 2 % noise margin and whose estimate is over 5 %, re-runs
                         flagged cases; table, verdict.json, summary.md, forest.png; exit 0
                         pass, 1 regression, 2 bad input or undecided (--help for options)
  compare BASE.json NEW.json | A1.json A2.json ... -- B1.json B2.json ... [OPTIONS]
                         compare saved results: refuses mismatched contexts, fails on missing
                         cases, new errors and failed cases; runs are the samples (several
                         per side, exact Mann-Whitney bounds, Bonferroni over the cases);
                         one run per side is "undecided"; exit 0 pass, 1 regression, 2 bad
                         input or undecided (harness/compare.py --help for options)
  plots [RESULT.json | BASE.json NEW.json] [--out DIR] [--runs DIR] [--format svg,png]
                         draw the charts (gnuplot and matplotlib, SVG and PNG) of a result
                         (default: the latest full run) into docs/charts/ (or DIR); with two
                         results also the forest plot of NEW against BASE; the history of
                         the runs saved in results/runs/ (or --runs DIR) is drawn there
  report [RESULT.json] [--out FILE]
                         write one self-contained HTML page (default results/report.html):
                         context, charts, every case in a sortable, filterable table
  soak [--duration S] [--seed N] [OPTIONS]
                         the soak test (knit-soak, docs/RELIABILITY.md): random pools of every
                         transport x runtime created and destroyed, random value kinds and
                         sizes, process workers SIGKILLed while calls are in flight, a checksum
                         on every call both ways; prints progress on stderr and a summary per
                         transport x runtime; exit 0 clean, 1 when a call was lost, duplicated,
                         corrupted, unexpectedly rejected or hung, 2 bad options (--json, and
                         soak --help for every option)
  interop [--quick]      what a native worker buys a knitting user: one knitting host (Bun)
                         timed against knitting's own JS process worker and against
                         knit-knitting-worker (1 call in flight p50/p99, bursts of 1, 10, 100,
                         1000; interop/README.md); needs KNIT_KNITTING_DIR (a knitting
                         checkout) and Bun (installed from npm into build/js); writes
                         results/runs/interop/<time>.json. A full benchmark run (no --quick,
                         no filter) ends with it when both are present.
  setup                  only install/check the Debian packages and configure the build
  build                  set up and build (Release) without running anything

Options of the benchmark suite (results/SCHEMA.md describes the JSON):
  --json                 stdout carries exactly one JSON document; progress goes to stderr
  --quick                reduced matrix that finishes in under 60 s on 2 cores
  --scenario A,B         only these scenarios: floor, latency, batch, echo, types, payload,
                         load, balance, startup, idle, cpu, dispatch, contended
  --transport T,U        knit, pipe, unix, seqpacket, tcp, seq (floor: spin, futex, ring, memcpy,
                         thread-spawn, process-spawn, pipe, unix, tcp)
  --runtime R            thread, process
  --balancer B           roundRobin (robinRound accepted), firstIdle, randomLane,
                         firstIdleOrRandom, steal (work stealing), - (the pool's default)
  --workers N,M          worker counts
  --repetitions N        repetitions per case (default 5; --quick 3)
  --out FILE             also write the JSON document to FILE
  --list                 list the scenarios

  -h, --help             this text

Set-up: missing Debian packages are installed with apt-get when running as root (one
'apt-get update' first); otherwise the exact install command is printed and the script exits 2.
EOF
}

die() {
    echo "run.sh: $*" >&2
    exit 2
}

# --- set-up -------------------------------------------------------------------------------------

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            echo "$p"
        fi
    done
}

setup_packages() {
    command -v dpkg-query >/dev/null || die "this script needs a Debian-based system (dpkg-query)"
    local missing
    missing="$(missing_packages | tr '\n' ' ')"
    missing="${missing% }"
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: missing Debian packages: $missing" >&2
        echo "run.sh: install them with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y $missing" >&2
        exit 2
    fi
    echo "run.sh: installing missing Debian packages: $missing" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >&2
}

# configure DIR [cmake args...]: configure once; later runs only rebuild what changed.
configure() {
    local dir="$1"
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        cmake -S "$ROOT" -B "$dir" -G Ninja "$@" >&2
    fi
}

build_tree() {
    local dir="$1"
    shift
    configure "$dir" "$@"
    cmake --build "$dir" >&2
}

build_release() {
    build_tree "$BUILD/release" -DCMAKE_BUILD_TYPE=Release
}

# --- commands -----------------------------------------------------------------------------------

# setup_bun: Bun (the npm package `bun`) for the knitting interop tests and benchmark, installed
# with npm into build/js, never globally; exported as KNIT_BUN. Without npm or a reachable
# registry it says so and the interop tests that need Bun report themselves skipped.
setup_bun() {
    local bun="$BUILD/js/node_modules/.bin/bun"
    if [ ! -x "$bun" ]; then
        if ! command -v npm >/dev/null; then
            echo "run.sh: npm not found: Bun not installed, the live knitting interop tests" \
                "will be skipped" >&2
            return 0
        fi
        echo "run.sh: installing Bun from npm into build/js (for the knitting interop tests)" >&2
        mkdir -p "$BUILD/js"
        if ! timeout 300 npm install --prefix "$BUILD/js" --no-save --no-audit --no-fund \
            --fetch-retries=1 --fetch-timeout=30000 bun >"$BUILD/js/npm-install.log" 2>&1 \
            || ! "$bun" --version >/dev/null 2>&1; then
            echo "run.sh: Bun could not be installed (is the npm registry reachable? see" \
                "build/js/npm-install.log): the live knitting interop tests will be skipped" >&2
            return 0
        fi
    fi
    export KNIT_BUN="$bun"
    if [ -z "${KNIT_KNITTING_DIR:-}" ]; then
        echo "run.sh: Bun $("$bun" --version) in build/js; KNIT_KNITTING_DIR is not set, so the" \
            "live knitting interop tests will be skipped (docs/CONFORMANCE.md)" >&2
    fi
}

run_ctest() {
    local dir="$1" label="$2"
    echo "run.sh: tests ($label)" >&2
    ctest --test-dir "$dir" --output-on-failure --timeout 900
}

cmd_test() {
    local fast=0
    while [ $# -gt 0 ]; do
        case "$1" in
        --fast) fast=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "test: unknown option '$1'" ;;
        esac
        shift
    done
    setup_packages
    local status=0
    build_release
    setup_bun
    run_ctest "$BUILD/release" "Release" || status=1
    if [ "$fast" -eq 0 ]; then
        build_tree "$BUILD/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKNIT_SANITIZE=address \
            -DKNIT_BUILD_BENCH=OFF
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            run_ctest "$BUILD/asan" "AddressSanitizer + UndefinedBehaviorSanitizer" || status=1
        build_tree "$BUILD/tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKNIT_SANITIZE=thread \
            -DKNIT_BUILD_BENCH=OFF
        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
            run_ctest "$BUILD/tsan" "ThreadSanitizer" || status=1
        # the decoders under libFuzzer (tests/fuzz/README.md), about 20 s per target
        build_tree "$BUILD/fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DKNIT_FUZZ=ON -DKNIT_BUILD_TESTS=OFF -DKNIT_BUILD_BENCH=OFF
        run_ctest "$BUILD/fuzz" "libFuzzer targets" || status=1
    fi
    if [ "$status" -ne 0 ]; then
        echo "run.sh: some tests FAILED" >&2
    else
        echo "run.sh: all tests passed" >&2
    fi
    return "$status"
}

cmd_bench() {
    setup_packages
    build_release
    local marker status=0
    marker="$(mktemp)"
    "$BUILD/release/harness/knit-bench" --save-dir "$ROOT/results/runs" "$@" || status=$?
    refresh_charts "$marker" "$@"
    if [ -n "${KNIT_KNITTING_DIR:-}" ] && full_run "$@"; then
        interop_bench || status=1
    fi
    rm -f "$marker"
    return "$status"
}

# full_run ARGS...: true when the benchmark arguments select the whole default suite.
full_run() {
    local arg
    for arg in "$@"; do
        case "$arg" in
        --quick | --scenario* | --transport* | --runtime* | --balancer* | --workers* | --list) return 1 ;;
        esac
    done
    return 0
}

# refresh_charts MARKER ARGS...: when the run saved a result (newer than MARKER) and was a full
# run, redraw docs/charts/ from it. Everything goes to stderr (--json keeps stdout pure); a
# chart that cannot be drawn is reported and does not fail the benchmark run.
refresh_charts() {
    local marker="$1" arg saved partial=0
    shift
    saved="$(find "$ROOT/results/runs" -maxdepth 1 -name '*.json' -newer "$marker" 2>/dev/null |
        sort | tail -n 1)"
    [ -n "$saved" ] || return 0
    for arg in "$@"; do
        case "$arg" in
        --quick | --scenario* | --transport* | --runtime* | --balancer* | --workers*) partial=1 ;;
        esac
    done
    if [ "$partial" -eq 1 ]; then
        echo "run.sh: docs/charts/ left as it is (a partial run); ./run.sh plots $saved" \
            "--out DIR draws this run's charts" >&2
        return 0
    fi
    echo "run.sh: redrawing docs/charts/ from $saved" >&2
    if ! /usr/bin/python3 "$ROOT/plots/plots.py" "$saved" >&2; then
        echo "run.sh: the charts could not be redrawn (see above); the result is saved: $saved" >&2
    fi
}

# interop_bench [--quick]: the knitting host against its JS worker and the knit worker. Returns 0
# with a message when KNIT_KNITTING_DIR or Bun is missing (nothing to measure).
interop_bench() {
    if [ -z "${KNIT_KNITTING_DIR:-}" ]; then
        echo "run.sh: interop benchmark skipped: KNIT_KNITTING_DIR is not set (a knitting" \
            "checkout; docs/CONFORMANCE.md)" >&2
        return 0
    fi
    setup_bun
    if [ -z "${KNIT_BUN:-}" ]; then
        echo "run.sh: interop benchmark skipped: no Bun" >&2
        return 0
    fi
    # a folder of its own: results/runs/*.json are knit-bench documents (plots, compare)
    mkdir -p "$ROOT/results/runs/interop"
    local out
    out="$ROOT/results/runs/interop/$(date -u +%Y%m%dT%H%M%SZ).json"
    echo "run.sh: interop benchmark (knitting host, JS worker vs knit worker) -> $out" >&2
    "$KNIT_BUN" "$ROOT/interop/bench.ts" --worker "$BUILD/release/interop/knit-knitting-worker" \
        --out "$out" "$@" >&2
}

cmd_interop() {
    local args=()
    while [ $# -gt 0 ]; do
        case "$1" in
        --quick) args+=(--quick) ;;
        -h | --help) usage; exit 0 ;;
        *) die "interop: unknown option '$1'" ;;
        esac
        shift
    done
    setup_packages
    build_release
    interop_bench "${args[@]+"${args[@]}"}"
}

cmd_micro() {
    local args=()
    while [ $# -gt 0 ]; do
        case "$1" in
        --json) args+=(--benchmark_format=json) ;;
        -h | --help) usage; exit 0 ;;
        *) args+=("$1") ;;
        esac
        shift
    done
    setup_packages
    build_release
    "$BUILD/release/harness/knit-micro" "${args[@]+"${args[@]}"}"
}

cmd_soak() {
    local a
    for a in "$@"; do
        case "$a" in
        -h | --help)
            # the options are knit-soak's own: build it if needed, then let it print them
            setup_packages
            build_release
            "$BUILD/release/harness/knit-soak" --help
            return 0
            ;;
        esac
    done
    setup_packages
    build_release
    "$BUILD/release/harness/knit-soak" "$@"
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
    -h | --help | help) usage ;;
    test) shift; cmd_test "$@" ;;
    micro) shift; cmd_micro "$@" ;;
    soak) shift; cmd_soak "$@" ;;
    interop) shift; cmd_interop "$@" ;;
    setup) setup_packages; configure "$BUILD/release" -DCMAKE_BUILD_TYPE=Release ;;
    build) setup_packages; build_release ;;
    compare) shift; setup_packages; /usr/bin/python3 "$ROOT/harness/compare.py" "$@" ;;
    gate) shift; setup_packages; /usr/bin/python3 "$ROOT/harness/gate" "$@" ;;
    plots) shift; setup_packages; /usr/bin/python3 "$ROOT/plots/plots.py" "$@" ;;
    report) shift; setup_packages; /usr/bin/python3 "$ROOT/plots/report.py" "$@" ;;
    "" | --json | --quick | --scenario | --transport | --runtime | --balancer | --workers | \
        --repetitions | --out | --list) cmd_bench "$@" ;;
    *) echo "run.sh: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
    esac
}

main "$@"
