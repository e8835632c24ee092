#!/usr/bin/env bash
# knit-bench end to end: a --quick --json run prints exactly one JSON document on stdout that
# matches results/SCHEMA.md with every scenario present, the idle gap cases carry their
# same-gap futex references, and Google Benchmark's compare.py reads two of our documents.
# usage: check_bench.sh KNIT_BENCH SOURCE_DIR
set -euo pipefail
bench="$1"
src="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# stdout must parse as one document (json.load rejects trailing text)
"$bench" --quick --json --out "$tmp/quick-file.json" >"$tmp/quick.json" 2>"$tmp/quick.err" || {
    cat "$tmp/quick.err" >&2
    exit 1
}
/usr/bin/python3 "$src/tests/bench/check_schema.py" "$src/results/SCHEMA.md" "$tmp/quick.json" \
    --all-scenarios
# each idle gap case is read against the futex round trip after the same gap, which it names,
# and also carries the warm futex round trip; both measured (positive)
/usr/bin/python3 - "$tmp/quick.json" <<'EOF'
import json, sys
gaps = [b for b in json.load(open(sys.argv[1]))["cases"]
        if b["scenario"] == "idle" and b["variant"].startswith("gap-")]
own = {"knit": "futex"}
bad = [b["name"] for b in gaps
       if b["floor_mechanism"] != own.get(b["transport"], b["transport"]) + "-" + b["variant"]
       or not (b["floor_ns"] or 0) > 0 or not b.get("warm_futex_ns", 0) > 0]
if not gaps or bad:
    sys.exit(f"check_bench: idle gap references missing or wrong: {bad or 'no gap cases'}")
EOF
cmp -s <(/usr/bin/python3 -m json.tool --sort-keys "$tmp/quick.json") \
    <(/usr/bin/python3 -m json.tool --sort-keys "$tmp/quick-file.json") || {
    echo "check_bench: --out wrote a different document from stdout" >&2
    exit 1
}

# two small runs through compare.py
"$bench" --quick --json --scenario floor,latency --repetitions 2 >"$tmp/a.json" 2>/dev/null
"$bench" --quick --json --scenario floor,latency --repetitions 2 >"$tmp/b.json" 2>/dev/null
compare=/usr/share/benchmark/compare.py
if [ ! -f "$compare" ]; then
    echo "check_bench: $compare is missing (Debian package libbenchmark-tools)" >&2
    exit 1
fi
/usr/bin/python3 "$compare" benchmarks "$tmp/a.json" "$tmp/b.json" >"$tmp/compare.txt"
# with 2 repetitions a side its U test runs (and warns that more repetitions are recommended)
grep -q "U Test" "$tmp/compare.txt" || {
    echo "check_bench: compare.py ran no U test on our per-repetition entries" >&2
    cat "$tmp/compare.txt" >&2
    exit 1
}
for name in floor/spin/thread/w1/b1/p8 latency/knit/thread/w1/b1/p8 latency/pipe/process/w1/b1/p8; do
    grep -q "$name" "$tmp/compare.txt" || {
        echo "check_bench: compare.py did not report $name" >&2
        cat "$tmp/compare.txt" >&2
        exit 1
    }
done
echo "check_bench: ok"
