#!/usr/bin/python3
"""The regression gate: compare two knit-bench results case by case.

usage: compare.py BASE.json NEW.json [--threshold PCT] [--alpha A] [--normalize] [--json]

Cases are matched by name. A case regresses when its repetitions are slower with statistical
significance (one-sided Mann-Whitney U over `repetition_p50_ns`, p < alpha, default 0.05) and
its median moved by more than the threshold (default 10 %). With --normalize every value is
first divided by the case's own floor reference (`floor_ns`, measured in the same run next to
the case), so results from different machines can be compared; a case whose reference changed
mechanism (`floor_mechanism`, e.g. futex -> futex-gap-100ms) is skipped then. Prints a table (case, base,
new, change, p-value, verdict) and a last line `verdict: ok|regression`; --json prints one
JSON document instead. Exit status: 0 no regression, 1 regression, 2 bad input.
With 5 repetitions a side the smallest one-sided p-value is 1/252 (0.004); with 3 it is 0.05,
so --quick results cannot show significance at the default alpha.
"""
import json
import statistics
import sys

try:
    from scipy.stats import mannwhitneyu
except ImportError:  # pragma: no cover - the package list installs python3-scipy
    mannwhitneyu = None


def fail(msg):
    print(f"compare: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    opts = {"threshold": 10.0, "alpha": 0.05, "normalize": False, "json": False, "files": []}
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        elif a in ("--threshold", "--alpha"):
            v = next(it, None)
            try:
                opts[a[2:]] = float(v)
            except (TypeError, ValueError):
                fail(f"{a} needs a number, not {v!r}")
        elif a == "--normalize":
            opts["normalize"] = True
        elif a == "--json":
            opts["json"] = True
        elif a.startswith("-"):
            fail(f"unknown option {a!r} (see --help)")
        else:
            opts["files"].append(a)
    if len(opts["files"]) != 2:
        fail("needs BASE.json and NEW.json (see --help)")
    if not 0 < opts["alpha"] < 1 or opts["threshold"] < 0:
        fail("--alpha must be in (0, 1) and --threshold at least 0")
    return opts


def load(path):
    try:
        doc = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"cannot read {path}: {e}")
    if not isinstance(doc, dict) or doc.get("schema") != "knit-bench/1":
        fail(f"{path} is not a knit-bench/1 document")
    cases = {}
    for b in doc.get("benchmarks", []):
        reps = b.get("repetition_p50_ns")
        if isinstance(b.get("name"), str) and isinstance(reps, list) and reps:
            cases[b["name"]] = b
    return cases


def values(case, normalize):
    reps = [float(v) for v in case["repetition_p50_ns"] if isinstance(v, (int, float))]
    if normalize:
        floor = case.get("floor_ns")
        if not floor:
            return None
        reps = [v / floor for v in reps]
    return reps or None


def compare_case(name, base, new, opts):
    ma, mb = base.get("floor_mechanism"), new.get("floor_mechanism")
    if opts["normalize"] and ma != mb:
        return {"name": name, "verdict": f"skipped (floor reference {ma} -> {mb})"}
    a, b = values(base, opts["normalize"]), values(new, opts["normalize"])
    if a is None or b is None:
        return {"name": name, "verdict": "skipped (no floor reference)"}
    ma, mb = statistics.median(a), statistics.median(b)
    change = (mb - ma) / ma * 100.0 if ma else 0.0
    testable = len(a) > 1 and len(b) > 1
    p = mannwhitneyu(b, a, alternative="greater").pvalue if testable else 1.0
    p_less = mannwhitneyu(b, a, alternative="less").pvalue if testable else 1.0
    slower = p < opts["alpha"] and change > opts["threshold"]
    faster = p_less < opts["alpha"] and change < -opts["threshold"]
    verdict = "REGRESSION" if slower else "improved" if faster else "same"
    return {"name": name, "base": ma, "new": mb, "change_percent": change, "p_value": p,
            "verdict": verdict}


def main(argv):
    if mannwhitneyu is None:
        fail("python3-scipy is missing (./run.sh setup installs it)")
    opts = parse_args(argv)
    base, new = load(opts["files"][0]), load(opts["files"][1])
    common = [n for n in base if n in new]
    if not common:
        fail("the two results share no case names")
    rows = [compare_case(n, base[n], new[n], opts) for n in common]
    regressions = [r for r in rows if r["verdict"] == "REGRESSION"]
    verdict = "regression" if regressions else "ok"
    if opts["json"]:
        print(json.dumps({"verdict": verdict, "threshold_percent": opts["threshold"],
                          "alpha": opts["alpha"], "normalized": opts["normalize"],
                          "only_in_base": sorted(set(base) - set(new)),
                          "only_in_new": sorted(set(new) - set(base)), "cases": rows},
                         indent=1))
    else:
        unit = "x floor" if opts["normalize"] else "ns"
        width = max(len(r["name"]) for r in rows)
        print(f"{'case':{width}}  {'base':>12}  {'new':>12}  {'change':>8}  {'p-value':>8}  verdict"
              f"   (medians of repetition p50, {unit})")
        for r in rows:
            if "base" not in r:
                print(f"{r['name']:{width}}  {'':>12}  {'':>12}  {'':>8}  {'':>8}  {r['verdict']}")
                continue
            print(f"{r['name']:{width}}  {r['base']:12.4g}  {r['new']:12.4g}  "
                  f"{r['change_percent']:+7.1f}%  {r['p_value']:8.3g}  {r['verdict']}")
        for n in sorted(set(base) ^ set(new)):
            print(f"{n}: only in {'base' if n in base else 'new'}; not compared")
        print(f"verdict: {verdict} ({len(regressions)} of {len(rows)} cases regressed; "
              f"threshold {opts['threshold']:g} %, alpha {opts['alpha']:g})")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
