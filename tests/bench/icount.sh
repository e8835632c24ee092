#!/usr/bin/env bash
# Exact instruction counts of the knit call path (knit-icount under callgrind) for an 8-byte
# and a 4 KiB value, checked against results/baseline/icount.json: more than the tolerance
# above the reference fails; far below it asks for the reference to be lowered.
# usage: icount.sh KNIT_ICOUNT SOURCE_DIR
set -euo pipefail
icount="$1"
ref="$2/results/baseline/icount.json"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
for size in 8 4096; do
    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$tmp/cg.$size" \
        "$icount" --size "$size" --rounds 1000 >/dev/null 2>"$tmp/vg.$size" || {
        cat "$tmp/vg.$size" >&2
        exit 1
    }
    total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$tmp/cg.$size")
    /usr/bin/python3 - "$ref" "$size" "$total" <<'PY' || status=1
import json, sys
ref = json.load(open(sys.argv[1]))
size, total = sys.argv[2], int(sys.argv[3])
per = total / 1000.0
want = ref["instructions_per_round"][size]
tol = ref["tolerance_percent"]
change = (per - want) / want * 100.0
verdict = "ok"
if change > tol:
    verdict = "REGRESSION"
elif change < -2 * tol:
    verdict = "ok (far below the reference: lower it in results/baseline/icount.json)"
print(f"icount: {size:>5} B: {per:8.1f} instructions per round, reference {want:8.1f} "
      f"({change:+.1f} %): {verdict}")
sys.exit(1 if verdict == "REGRESSION" else 0)
PY
done
exit "$status"
