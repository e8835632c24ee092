#!/usr/bin/python3
"""File mode of the regression gate (harness/compare.py) on synthetic knit-bench documents
with known answers: one run per side cannot decide (2); mismatched contexts are refused (2)
unless allowed; a case missing from NEW, new errors and failed cases fail (1); with five runs
per side a 30 % slowdown fails and is named, equal runs pass, a 30 % speed-up is an
improvement, 15 % is under a 20 % threshold and over the default one; three runs per side
cannot decide, and the family-wise alpha is split over the judged cases (--cases picks
fewer); --paired judges interleaved runs; --repetition-samples keeps the old per-repetition
reading; --normalize divides by each run's reference and skips a changed mechanism;
knit-bench/1 and /2 documents are both read; bad input is 2; --json, --markdown and --plot
write what they say."""
import copy
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "..", "..", "harness", "compare.py")
NAMES = ("latency/knit/thread/w1/b1/p8", "batch/knit/thread/w1/b1000/p8",
         "echo/pipe/process/w1/b1/p33")
# a fixed spread of run-level noise (about 3 %), different for every run
NOISE = [0.03, -0.02, 0.01, -0.035, 0.025, -0.01, 0.015, -0.025, 0.005, 0.02]


def doc(run, factors=None, schema="knit-bench/2", **ctx):
    factors = factors or {}
    cases = []
    for k, name in enumerate(NAMES):
        v = 1000.0 * (k + 1) * factors.get(name, 1.0) * math.exp(NOISE[(run + 3 * k) % 10])
        scen = name.split("/")[0]
        batch = int(name.split("/")[4][1:])
        cases.append({"name": name, "scenario": scen, "batch": batch,
                      "latency_ns": {"p50": v}, "calls_per_s": 1e9 / v,
                      "repetition_p50_ns": [v * (1 + d) for d in (0, .004, -.004, .002, -.002)],
                      "repetition_ns_per_op": [v * (1 + d) for d in (0, .004, -.004, .002,
                                                                     -.002)],
                      "errors": 0, "floor_ns": 100.0, "floor_mechanism": "spin"})
    context = {"host": "vm", "cpu_model": "cpu", "cpus": 2, "quick": False,
               "build_type": "Release", "repetitions": 5, "failed_cases": 0}
    context.update(ctx)
    d = {"schema": schema, "context": context}
    if schema == "knit-bench/1":
        d["benchmarks"] = cases
    else:
        d["cases"], d["benchmarks"] = cases, [{"name": "gbench-shaped", "run_type": "iteration"}]
    return d


def run(base, new, *args):
    """base, new: lists of documents (or raw strings); returns (exit, output)."""
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for side, docs in (("a", base), ("b", new)):
            for i, content in enumerate(docs):
                p = os.path.join(d, f"{side}{i}.json")
                with open(p, "w", encoding="utf-8") as f:
                    f.write(content if isinstance(content, str) else json.dumps(content))
                paths.append(p)
        files = paths if len(base) == 1 and len(new) == 1 and "--sep" not in args \
            else paths[:len(base)] + ["--"] + paths[len(base):]
        extra = [a for a in args if a != "--sep"]
        extra = [os.path.join(d, a[5:]) if a.startswith("FILE:") else a for a in extra]
        p = subprocess.run([sys.executable, COMPARE, *files, *extra], capture_output=True,
                           text=True)
        made = {a: os.path.exists(a) and os.path.getsize(a) > 0 for a in extra if a.startswith(d)}
        return p.returncode, p.stdout + p.stderr, made


problems = []


def expect(what, got, want, needle=None):
    rc, out = got[0], got[1]
    if rc != want or (needle and needle not in out):
        problems.append(f"{what}: exit {rc} (want {want}"
                        f"{', output with ' + repr(needle) if needle else ''}); output:\n{out}")


def runs(n, start=0, **kw):
    return [doc(start + i, **kw) for i in range(n)]


def main():
    slow = {NAMES[0]: 1.3}
    expect("one run per side", run([doc(0)], [doc(1)]), 2, "one run per side")
    expect("quick against full", run([doc(0)], [doc(1, quick=True)]), 2, "quick")
    expect("another machine", run(runs(5), runs(5, 5, cpus=4)), 2, "cpus")
    expect("build type", run(runs(5), runs(5, 5, build_type="Debug")), 2, "build_type")
    expect("repetitions", run(runs(5), runs(5, 5, repetitions=3)), 2, "repetitions")
    expect("allocator policy", run(runs(5), runs(5, 5, malloc="glibc defaults")), 2, "malloc")
    expect("schema 1 against 2", run(runs(5), runs(5, 5, schema="knit-bench/1")), 2, "schema")
    expect("mismatch allowed", run(runs(5), runs(5, 5, cpus=4), "--allow-mismatch"), 0,
           "compared despite context differences")

    missing = runs(5, 5)
    missing[2]["cases"] = missing[2]["cases"][:2]
    expect("case missing from a NEW run", run(runs(5), missing), 1, "missing")
    errs = runs(5, 5)
    errs[1]["cases"][1]["errors"] = 4
    expect("new errors", run(runs(5), errs), 1, "new errors")
    failed = runs(5, 5)
    failed[0]["context"]["failed_cases"] = 2
    expect("failed cases in NEW", run(runs(5), failed), 1, "failed cases")

    expect("5+5 equal runs", run(runs(5), runs(5, 5)), 0, "verdict: pass")
    got = run(runs(5), runs(5, 5, factors=slow))
    expect("5+5, 30 % slower", got, 1, NAMES[0])
    expect("5+5, 30 % slower is a regression", got, 1, "regression")
    expect("5+5, 30 % faster", run(runs(5), runs(5, 5, factors={NAMES[1]: 0.7})), 0,
           "improvement")
    fifteen = {NAMES[2]: 1.15}
    expect("5+5, 15 % slower, threshold 20 %",
           run(runs(5), runs(5, 5, factors=fifteen), "--threshold", "20"), 0, "slower")
    expect("5+5, 15 % slower, threshold 10 %", run(runs(5), runs(5, 5, factors=fifteen)), 1,
           NAMES[2])
    expect("3+3 runs cannot decide", run(runs(3), runs(3, 5, factors=slow)), 2, "undecided")
    # 3+5 runs reach 1/56 = 0.018: enough for one case at 0.05, not for three at 0.05/3
    expect("family-wise alpha over 3 cases", run(runs(3), runs(5, 5, factors=slow)), 2,
           "undecided")
    expect("3+5 runs, --cases picks one", run(runs(3), runs(5, 5, factors=slow), "--cases",
                                              "^latency/"), 1, NAMES[0])
    expect("--cases matching nothing", run(runs(4), runs(4, 5), "--cases", "^nothing"), 2,
           "matching --cases")
    expect("--paired, 7 interleaved pairs", run(runs(7), runs(7, 1, factors=slow), "--sep",
                                                "--paired"), 1, NAMES[0])
    expect("--paired with unequal sides", run(runs(5), runs(6), "--paired"), 2, "as many")

    expect("--repetition-samples, same run", run([doc(0)], [doc(0)], "--repetition-samples"), 0,
           "verdict: pass")
    expect("--repetition-samples, 50 % slower",
           run([doc(0)], [doc(0, factors={NAMES[0]: 1.5})], "--repetition-samples"), 1, NAMES[0])

    slow_machine = runs(5, 5, factors={n: 2.0 for n in NAMES})
    for d in slow_machine:
        for c in d["cases"]:
            c["floor_ns"] *= 2
    expect("twice as slow machine, raw", run(runs(5), slow_machine), 1)
    expect("twice as slow machine, normalized", run(runs(5), slow_machine, "--normalize"), 0,
           "verdict: pass")
    changed = copy.deepcopy(slow_machine)
    changed[0]["cases"][0]["floor_mechanism"] = "futex"
    expect("reference mechanism changed", run(runs(5), changed, "--normalize"), 0,
           "reference mechanism changed")

    v1 = [doc(i, schema="knit-bench/1") for i in range(5)]
    expect("knit-bench/1 documents", run(v1, [doc(5 + i, factors=slow, schema="knit-bench/1")
                                              for i in range(5)]), 1, NAMES[0])

    expect("not JSON", run(["{"], [doc(0)]), 2, "cannot read")
    expect("wrong schema", run([{"schema": "other"}], [doc(0)]), 2, "not a knit-bench")
    other = doc(0)
    for c in other["cases"]:
        c["name"] += "/x"
    expect("no common cases", run(runs(5), [other] * 5), 2, "share no case")
    expect("bad alpha", run([doc(0)], [doc(1)], "--alpha", "7"), 2, "--alpha")
    expect("bad option", run([doc(0)], [doc(1)], "--frobnicate"), 2, "unknown option")

    rc, out, _ = run(runs(5), runs(5, 5, factors=slow), "--json")
    try:
        d = json.loads(out)
        row = next(r for r in d["cases"] if r["name"] == NAMES[0])
        if not (rc == 1 and d["verdict"] == "regression" and d["exit_status"] == 1
                and row["verdict"] == "regression" and 1.25 < row["estimate"] < 1.35):
            problems.append(f"--json: exit {rc}, {d['verdict']}, {row}")
    except (ValueError, StopIteration, KeyError) as e:
        problems.append(f"--json printed no verdict ({e}): {out[:300]}")
    rc, out, made = run(runs(5), runs(5, 5, factors=slow), "--markdown", "FILE:s.md", "--plot",
                        "FILE:f.png")
    if rc != 1 or not made or not all(made.values()):
        problems.append(f"--markdown/--plot: exit {rc}, files {made}")

    for p in problems:
        print("check_compare: " + p, file=sys.stderr)
    print(f"check_compare: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
