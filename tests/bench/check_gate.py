#!/usr/bin/python3
"""The regression gate (harness/gate) on data with known answers.

1. Statistics: the exact Wilcoxon and Mann-Whitney distributions against hand-counted ones and
   scipy's exact p-values, the smallest sample that reaches 99 %, the bounds' coverage under
   no change, and the verdict rule.
2. Every verdict and exit status, judging synthetic sittings (--from-samples): A/A passes; a
   30 % slowdown confirmed by the re-run fails; one the re-run does not repeat passes; small
   significant changes and improvements pass; a noisy case gets a wider margin; too few pairs,
   differing placements and a failing BASE cannot decide (2); NEW failing, losing a case or
   with new errors fails (1); unreadable input is 2; the outputs are written.
3. The runner end to end with a stand-in knit-bench (fake_bench.py): ABBA order, A/A passes, a
   slower transport is flagged, re-run and fails, NEW or BASE failing.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "..", "..", "harness")
GATE = os.path.join(HARNESS, "gate")
FAKE = os.path.join(HERE, "fake_bench.py")
sys.path.insert(0, HARNESS)

from gate import stats  # noqa: E402

problems = []


def expect(what, ok, detail=""):
    if not ok:
        problems.append(f"{what}{': ' + str(detail) if detail else ''}")


def gate(*args):
    p = subprocess.run([sys.executable, GATE, *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


# --- 1. statistics ----------------------------------------------------------------------------

def check_stats():
    # n = 3: T takes 0,1,2,3,3,4,5,6 (of 8 sign patterns)
    want = np.cumsum([1, 1, 1, 2, 1, 1, 1]) / 8
    expect("signed-rank cdf n=3", np.allclose(stats.signed_rank_cdf(3), want),
           stats.signed_rank_cdf(3))
    # m = n = 2: U over the 6 orderings is 0,1,2,2,3,4
    want = np.cumsum([1, 1, 2, 1, 1]) / 6
    expect("Mann-Whitney cdf 2x2", np.allclose(stats.mann_whitney_cdf(2, 2), want),
           stats.mann_whitney_cdf(2, 2))
    expect("6 pairs cannot reach 99 %", stats.order_index(stats.signed_rank_cdf(6), 0.01) == 0)
    expect("7 pairs reach 99 % at the extremes",
           stats.order_index(stats.signed_rank_cdf(7), 0.01) == 1)
    expect("3+3 runs cannot reach 99 %", stats.order_index(stats.mann_whitney_cdf(3, 3), .01) == 0)
    # 5+5: P(U <= 1) = 2/252 <= 0.01 < P(U <= 2) = 4/252
    expect("5+5 runs reach 99 %", stats.order_index(stats.mann_whitney_cdf(5, 5), .01) == 2)
    try:
        from scipy.stats import mannwhitneyu, wilcoxon
    except ImportError:
        problems.append("python3-scipy is missing: the p-values cannot be checked")
        return
    rng = np.random.default_rng(7)
    for n in (7, 10, 15):
        a = rng.lognormal(0, 0.1, n)
        b = a * rng.lognormal(0.04, 0.1, n)
        mine = stats.paired(a, b)["p_value"]
        ref = wilcoxon(np.log(b) - np.log(a), alternative="greater", method="exact").pvalue
        expect(f"Wilcoxon p-value n={n}", math.isclose(mine, ref, rel_tol=1e-9), (mine, ref))
    for m, n in ((4, 5), (5, 5), (6, 9)):
        a, b = rng.lognormal(0, 0.1, m), rng.lognormal(0.05, 0.1, n)
        mine = stats.unpaired(a, b)["p_value"]
        ref = mannwhitneyu(b, a, alternative="greater", method="exact").pvalue
        expect(f"Mann-Whitney p-value {m}+{n}", math.isclose(mine, ref, rel_tol=1e-9),
               (mine, ref))
    # no change: the 99 % lower bound is above 1 in about 1 % of sittings, never much more
    rng = np.random.default_rng(11)
    above = sum(stats.paired(a, a * rng.lognormal(0, 0.09, 12))["lower"] > 1
                for a in (rng.lognormal(0, 0.1, 12) for _ in range(2000)))
    expect("coverage of the paired 99 % bound", 0.002 <= above / 2000 <= 0.02, above / 2000)
    # a constant ratio is estimated exactly, with no width
    r = stats.paired([100.0] * 9, [130.0] * 9)
    expect("constant ratio", math.isclose(r["estimate"], 1.3) and math.isclose(r["lower"], 1.3)
           and math.isclose(r["upper"], 1.3), r)
    for est, lo, hi, want in ((1.10, 1.03, 1.2, stats.REGRESSION),
                              (1.04, 1.03, 1.05, stats.SLOWER), (1.01, 0.99, 1.03, stats.SAME),
                              (1.10, 1.01, 1.2, stats.INCONCLUSIVE),
                              (0.8, 0.7, 0.9, stats.IMPROVEMENT),
                              (0.97, 0.96, 0.975, stats.FASTER)):
        got = stats.judge({"decidable": True, "estimate": est, "lower": lo, "upper": hi},
                          0.05, 0.02)
        expect(f"judge {est} [{lo}, {hi}]", got == want, got)
    expect("judge undecidable", stats.judge({"decidable": False}, .05, .02) == stats.UNDECIDED)


# --- 2. verdicts from synthetic sittings ------------------------------------------------------

# fixed, symmetric noise: quantiles of a normal distribution, shuffled by a fixed permutation
Z = [-1.38, 0.32, 0.89, -0.67, 1.73, -0.1, 0.45, -0.45, 0.1, -1.73, 0.67, -0.32, 1.38, -0.89,
     0.0, 0.2, -0.2, 1.1, -1.1, 0.55]


def rec(phase, pair, side, cases, unit="latency knit/thread", error=None):
    r = {"phase": phase, "unit": unit, "pair": pair, "side": side, "exit": 0,
         "first": "base" if pair % 2 == 0 else "new",
         "cases": {n: {"value": v, "metric": "p50 ns", "errors": 0,
                       "placement": "host:cpu0,workers:cpu1"} for n, v in cases.items()}}
    if error:
        r["error"], r["exit"] = error, 1
    return r


def sitting(pairs, ratio, noise=0.01, phase="main", name="latency/knit/thread/w1/b1/p8"):
    """BASE around 1000 ns, NEW = ratio x BASE, each with its own fixed noise."""
    out = []
    for i in range(pairs):
        b = 1000 * math.exp(noise * Z[i % len(Z)])
        n = 1000 * ratio * math.exp(noise * Z[(i + 7) % len(Z)])
        out += [rec(phase, i, "base", {name: b}), rec(phase, i, "new", {name: n})]
    return out


def judge(records, *args, meta=True):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "samples.jsonl"), "w", encoding="utf-8") as f:
            if meta:
                f.write(json.dumps({"meta": {"base": {"label": "A"}, "new": {"label": "B"}}})
                        + "\n")
            for r in records:
                f.write(json.dumps(r) + "\n")
        rc, out = gate("--from-samples", d, *args)
        files = {n: os.path.exists(os.path.join(d, n))
                 for n in ("verdict.json", "summary.md", "table.txt", "forest.png")}
        verdict = json.load(open(os.path.join(d, "verdict.json"))) if files["verdict.json"] \
            else None
        summary = open(os.path.join(d, "summary.md")).read() if files["summary.md"] else ""
    return rc, out, verdict, files, summary


def final(verdict, name="latency/knit/thread/w1/b1/p8"):
    row = next(r for r in verdict["cases"] if r["name"] == name)
    c = row.get("confirm")
    if row["verdict"] == "regression" and c:
        return c["verdict"] if c["verdict"] in ("regression", "undecided", "failed") \
            else "not confirmed"
    return row["verdict"]


def case(what, records, want_rc, want_verdict, *args, name="latency/knit/thread/w1/b1/p8",
         needle=None):
    rc, out, verdict, files, summary = judge(records, *args)
    got = final(verdict, name) if verdict else None
    if rc != want_rc or got != want_verdict or (needle and needle not in out):
        problems.append(f"{what}: exit {rc} (want {want_rc}), verdict {got!r} (want "
                        f"{want_verdict!r}); output:\n{out}")
    return rc, out, verdict, files, summary


def check_verdicts():
    rc, out, verdict, files, summary = case("A/A", sitting(12, 1.0), 0, "same")
    expect("A/A writes every output", all(files.values()), files)
    expect("A/A verdict.json says pass", verdict and verdict["verdict"] == "pass"
           and verdict["exit_status"] == 0, verdict and verdict["verdict"])
    expect("summary headline", summary.startswith("## knit gate: PASS"), summary[:80])

    slow = sitting(12, 1.3) + sitting(12, 1.3, phase="confirm")
    rc, out, verdict, files, summary = case("30 % slower, confirmed", slow, 1, "regression",
                                            needle="confirmation re-run")
    expect("regression summary", "REGRESSION" in summary and "**regression**" in summary,
           summary[:300])
    r = verdict["cases"][0]
    expect("ratio of a 30 % slowdown", abs(r["estimate"] - 1.3) < 0.02 and r["lower"] > 1.25,
           r)
    case("30 % slower, not repeated by the re-run",
         sitting(12, 1.3) + sitting(12, 1.0, phase="confirm"), 0, "not confirmed")
    case("30 % slower, the re-run failing", sitting(12, 1.3) + [
        rec("confirm", i, s, {} if s == "new" else {"latency/knit/thread/w1/b1/p8": 1000.0},
            error="exit 1: crashed" if s == "new" else None)
        for i in range(12) for s in ("base", "new")], 1, "failed")
    case("30 % slower, no re-run recorded", sitting(12, 1.3), 2, "undecided",
         needle="not re-run")
    case("30 % slower, --confirm-pairs 0", sitting(12, 1.3), 1, "regression",
         "--confirm-pairs", "0")
    case("3 % slower: significant, under the threshold", sitting(12, 1.03, noise=0.002), 0,
         "slower")
    case("3 % slower with threshold 1 %", sitting(12, 1.03, noise=0.002), 1, "regression",
         "--threshold", "1", "--confirm-pairs", "0")
    case("30 % faster", sitting(12, 0.7), 0, "improvement")
    case("2 % faster", sitting(12, 0.97, noise=0.002), 0, "faster")

    # a noisy case: 40 pairs, about 35 % spread, 15 % slower - its lower bound clears the
    # default margin but not a quarter of its spread
    noisy = sitting(40, 1.15, noise=0.35 / math.sqrt(2))
    base = [r["cases"]["latency/knit/thread/w1/b1/p8"] for r in noisy if r["side"] == "base"]
    new = [r["cases"]["latency/knit/thread/w1/b1/p8"] for r in noisy if r["side"] == "new"]
    pr = stats.paired([c["value"] for c in base], [c["value"] for c in new])
    expect("noisy premise", 1.02 < pr["lower"] < 1 + 0.25 * pr["spread"], pr)
    case("noisy case, margin from its spread", noisy, 0, "inconclusive", "--confirm-pairs", "0",
         needle="1 cases are inconclusive")
    case("noisy case, --strict", noisy, 2, "inconclusive", "--confirm-pairs", "0", "--strict")
    case("noisy case, spread factor 0", noisy, 1, "regression", "--spread-factor", "0",
         "--confirm-pairs", "0")

    case("6 pairs", sitting(6, 1.3), 2, "undecided", needle="needs 7")
    errs = sitting(12, 1.0)
    for r in errs:
        if r["side"] == "new" and r["pair"] == 3:
            r["cases"]["latency/knit/thread/w1/b1/p8"]["errors"] = 2
    case("new errors", errs, 1, "new errors")
    crash = sitting(12, 1.0)
    crash[7] = rec("main", 3, "new", {}, error="exit 1: worker crashed")
    case("NEW run failed", crash, 1, "failed", needle="worker crashed")
    lost = sitting(12, 1.0)
    lost[9] = rec("main", 4, "new", {"latency/knit/thread/w1/b1/p8/renamed": 1000.0})
    rc, out, *_ = case("case missing from NEW", lost, 1, "missing")
    expect("a case only in NEW is listed", "renamed: only in NEW" in out, out[-400:])
    placed = sitting(12, 1.0)
    for r in placed:
        if r["side"] == "new":
            r["cases"]["latency/knit/thread/w1/b1/p8"]["placement"] = "unpinned"
    case("placement differs", placed, 2, "undecided", needle="placement differs")
    broken_base = sitting(12, 1.0)
    for i in range(0, 12, 2):
        broken_base[2 * i] = rec("main", i, "base", {}, error="exit 1")
    case("BASE failing in half the pairs", broken_base, 2, "undecided",
         needle="BASE gave no figure")

    dead = [rec("main", i, side, {}, unit="latency tcp/process", error="exit 1: no pool")
            for i in range(12) for side in ("base", "new")]
    rc, out, verdict, *_ = judge(sitting(12, 1.0) + dead)
    expect("a unit that no run got through cannot decide",
           rc == 2 and "(latency tcp/process)" in out and "no pool" in out, out)
    rc, out, *_ = judge([{"phase": "main"}])
    expect("a sample without fields is bad input", rc == 2, out)
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "samples.jsonl"), "w").write("{not json\n")
        rc, out = gate("--from-samples", d)
        expect("samples that are not JSON", rc == 2 and "not JSON" in out, out)
    for args, needle in ((["HEAD", "--pairs", "5"], "needs at least 7"),
                         (["HEAD", "--bogus"], "unknown option"),
                         (["no-such-revision-xyz", "--dry-run"], None),
                         (["--base-bin", FAKE], "go together"),
                         (["HEAD", "--transport", "carrier-pigeon"], "unknown")):
        rc, out = gate(*args)
        if args[-1] == "--dry-run":
            expect("--dry-run does not resolve revisions", rc == 0, out)
            continue
        expect(f"bad input {args}", rc == 2 and needle in out, out)
    rc, out = gate("no-such-revision-xyz", "--pairs", "7", "--build-dir",
                   tempfile.mkdtemp(), "--out", tempfile.mkdtemp())
    expect("an unknown revision", rc == 2 and "not a revision" in out, out)


# --- 3. the runner with a stand-in knit-bench -------------------------------------------------

def fake(d, name, **cfg):
    cfg.setdefault("counter", os.path.join(d, name + ".counter"))
    cfg_path = os.path.join(d, name + ".json")
    json.dump(cfg, open(cfg_path, "w"))
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "{cfg_path}" "$@"\n')
    os.chmod(path, 0o755)
    return path


def run_gate(d, base, new, *args):
    out = os.path.join(d, "out-" + os.path.basename(new))
    rc, text = gate("--base-bin", base, "--new-bin", new, "--transport", "knit,pipe",
                    "--runtime", "thread", "--pairs", "7", "--no-plot", "--out", out, *args)
    recs = [json.loads(line) for line in open(os.path.join(out, "samples.jsonl"))] \
        if os.path.exists(os.path.join(out, "samples.jsonl")) else []
    verdict = json.load(open(os.path.join(out, "verdict.json"))) \
        if os.path.exists(os.path.join(out, "verdict.json")) else None
    return rc, text, recs[1:], verdict


def check_runner():
    with tempfile.TemporaryDirectory() as d:
        a, a2 = fake(d, "base"), fake(d, "same")
        rc, text, recs, verdict = run_gate(d, a, a2)
        expect("runner A/A passes", rc == 0, text)
        expect("runner: 2 units x 7 pairs x 2 runs", len(recs) == 28, len(recs))
        units = sorted({r["unit"] for r in recs})
        for r in recs:
            u = units.index(r["unit"])  # plan order: knit before pipe
            want_first = "base" if (r["pair"] + u) % 2 == 0 else "new"
            if r["first"] != want_first:
                problems.append(f"ABBA order: {r['unit']} pair {r['pair']} began with "
                                f"{r['first']}")
                break
        by = {}
        for r in recs:
            by.setdefault((r["unit"], r["pair"]), []).append(r)
        expect("each pair adjacent and complete", all(
            sorted(x["side"] for x in v) == ["base", "new"] and abs(v[0]["seq"] - v[1]["seq"]) == 1
            for v in by.values()), by)
        expect("runner A/A judged 6 cases", verdict and len(verdict["cases"]) == 6,
               verdict and len(verdict["cases"]))

        slow = fake(d, "slowpipe", factor={"pipe": 1.3})
        rc, text, recs, verdict = run_gate(d, a, slow)
        flagged = sorted(r["name"] for r in verdict["cases"]
                         if r.get("confirm", {}).get("verdict") == "regression") if verdict else []
        expect("runner: a 30 % slower transport fails", rc == 1 and flagged == [
            "batch/pipe/thread/w1/b1/p8", "batch/pipe/thread/w1/b1000/p8",
            "latency/pipe/thread/w1/b1/p8"], (rc, flagged, text[-600:]))
        again = {r["unit"] for r in recs if r["phase"] == "confirm"}
        expect("runner: only the flagged unit is re-run",
               again == {"latency,batch pipe/thread"}, again)

        crash = fake(d, "crashtcp", fail=["pipe"])
        rc, text, recs, verdict = run_gate(d, a, crash)
        expect("runner: NEW failing fails the gate", rc == 1 and "failed" in text, text[-600:])
        rc, text, recs, verdict = run_gate(d, crash, a)
        expect("runner: BASE failing cannot decide", rc == 2 and "undecided" in text,
               text[-600:])
        rc, text, recs, verdict = run_gate(d, a, fake(d, "errs", errors=["knit"]))
        expect("runner: new errors fail", rc == 1 and "new errors" in text, text[-600:])
        rc, text, recs, verdict = run_gate(d, a, a2, "--json")
        try:
            doc = json.loads(text[:text.rindex("}") + 1])
            expect("--json prints the verdict", doc["exit_status"] == 0 and rc == 0, doc)
        except ValueError:
            problems.append(f"--json printed no JSON: {text[:300]}")


def main():
    check_stats()
    check_verdicts()
    check_runner()
    for p in problems:
        print("check_gate: " + p, file=sys.stderr)
    print(f"check_gate: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
