#!/usr/bin/python3
"""The regression gate (harness/compare.py) on synthetic knit-bench documents: identical
results pass, a case made 50 % slower in every repetition fails and is named, a case 50 %
faster is reported improved, a 5 % slowdown is under the threshold, --normalize divides by
each run's floor (a machine twice as slow with a floor twice as slow passes) but skips a case
whose floor mechanism changed, and bad input exits 2."""
import copy
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GATE = os.path.join(HERE, "..", "..", "harness", "compare.py")


def doc(cases):
    return {"schema": "knit-bench/1", "context": {}, "benchmarks": [
        {"name": n, "repetition_p50_ns": reps, "floor_ns": floor} for n, reps, floor in cases]}


def run(base, new, *args):
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a.json"), os.path.join(d, "b.json")
        for path, content in ((a, base), (b, new)):
            with open(path, "w", encoding="utf-8") as f:
                f.write(content if isinstance(content, str) else json.dumps(content))
        p = subprocess.run([sys.executable, GATE, a, b, *args], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


def main():
    reps = [100.0, 101.0, 99.0, 102.0, 100.5]
    base = doc([("latency/knit/thread/w1/b1/p8", reps, 50.0), ("batch/x", reps, 10.0),
                ("echo/y", reps, 20.0)])
    problems = []

    def expect(what, got, want, needle=None):
        rc, out = got
        if rc != want or (needle and needle not in out):
            problems.append(f"{what}: exit {rc} (want {want}); output:\n{out}")

    expect("identical", run(base, base), 0, "verdict: ok")
    slow = copy.deepcopy(base)
    slow["benchmarks"][0]["repetition_p50_ns"] = [v * 1.5 for v in reps]
    expect("50 % slower", run(base, slow), 1, "latency/knit/thread/w1/b1/p8")
    rc, out = run(base, slow, "--json")
    verdict = json.loads(out)["verdict"] if rc == 1 else None
    if verdict != "regression":
        problems.append(f"--json verdict {verdict!r}, exit {rc}")
    fast = copy.deepcopy(base)
    fast["benchmarks"][1]["repetition_p50_ns"] = [v * 0.5 for v in reps]
    expect("50 % faster", run(base, fast), 0, "improved")
    small = copy.deepcopy(base)
    small["benchmarks"][2]["repetition_p50_ns"] = [v * 1.05 for v in reps]
    expect("5 % slower", run(base, small), 0, "verdict: ok")
    expect("5 % slower, threshold 1 %", run(base, small, "--threshold", "1"), 1, "echo/y")
    slow_machine = copy.deepcopy(base)
    for b in slow_machine["benchmarks"]:
        b["repetition_p50_ns"] = [v * 2 for v in reps]
        b["floor_ns"] *= 2
    expect("slower machine, raw", run(base, slow_machine), 1)
    expect("slower machine, normalized", run(base, slow_machine, "--normalize"), 0, "verdict: ok")
    new_ref = copy.deepcopy(slow_machine)
    base_ref = copy.deepcopy(base)
    base_ref["benchmarks"][0]["floor_mechanism"] = "futex"
    new_ref["benchmarks"][0]["floor_mechanism"] = "futex-gap-100ms"
    new_ref["benchmarks"][0]["floor_ns"] *= 10  # a 10x slower reference would read "improved"
    expect("floor mechanism changed, normalized", run(base_ref, new_ref, "--normalize"), 0,
           "skipped (floor reference futex -> futex-gap-100ms)")
    expect("not JSON", run("{", base), 2)
    expect("wrong schema", run({"schema": "other"}, base), 2)
    expect("no common cases", run(doc([("a", reps, 1.0)]), doc([("b", reps, 1.0)])), 2)
    expect("bad option", run(base, base, "--alpha", "7"), 2)
    for p in problems:
        print("check_compare: " + p, file=sys.stderr)
    print(f"check_compare: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
