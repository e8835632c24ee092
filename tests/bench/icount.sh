#!/usr/bin/env bash
# Exact instruction counts of the knit transport's single-threaded codec path (knit-icount
# under callgrind: encode+publish+decode of one direction) for an 8-byte and a 4 KiB value,
# checked against results/baseline/icount.json by harness/count/counts.py: more than the
# tolerance above the reference fails; far below it asks for the reference to be lowered.
# The full round trip of a call is counted by the bench/counts test (counts.py check).
# usage: icount.sh KNIT_ICOUNT SOURCE_DIR
set -euo pipefail
exec /usr/bin/python3 "$2/harness/count/counts.py" icount "$1" \
    --reference "$2/results/baseline/icount.json"
