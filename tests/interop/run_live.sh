#!/usr/bin/env bash
# The live interop tests (tests/interop/README.md): a real knitting host (Bun) against WORKER,
# or with --js against knitting's own JS worker. Needs a knitting checkout in KNIT_KNITTING_DIR
# and Bun (KNIT_BUN, else `bun` on PATH); without either it exits 77, which ctest reports as
# skipped, and says why.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ] || [ $# -lt 1 ]; then
    echo "usage: KNIT_KNITTING_DIR=DIR [KNIT_BUN=bun] run_live.sh (WORKER | --js)"
    exit 0
fi
if [ -z "${KNIT_KNITTING_DIR:-}" ]; then
    echo "SKIP: KNIT_KNITTING_DIR is not set: point it at a knitting checkout" \
        "(github.com/mimiMonads/knitting; the npm registry has no 'knitting' package) to run" \
        "the live interop tests (docs/CONFORMANCE.md)"
    exit 77
fi
if [ ! -f "$KNIT_KNITTING_DIR/knitting.ts" ]; then
    echo "SKIP: KNIT_KNITTING_DIR=$KNIT_KNITTING_DIR has no knitting.ts: not a knitting checkout"
    exit 77
fi
bun="${KNIT_BUN:-$(command -v bun || true)}"
if [ -z "$bun" ] || ! "$bun" --version >/dev/null 2>&1; then
    echo "SKIP: Bun not found (set KNIT_BUN or put bun on PATH; ./run.sh test installs it" \
        "from npm into build/js when the registry can be reached)"
    exit 77
fi
echo "knitting: $KNIT_KNITTING_DIR; Bun $("$bun" --version)"
if [ "$1" = "--js" ]; then
    exec "$bun" "$here/live_host.ts" --js
fi
exec "$bun" "$here/live_host.ts" --worker "$1"
