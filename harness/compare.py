#!/usr/bin/python3
"""Compare knit-bench results case by case, honestly (file mode of the regression gate).

usage: compare.py BASE.json NEW.json [options]
       compare.py A1.json A2.json ... -- B1.json B2.json ... [options]

A case is judged by one figure per run: its p50 latency, or its ns per call for bursts
(harness/gate/results.py). Runs of one build differ from each other far more than the
repetitions inside a run do (about 20 % against 2 % on the development VM), so the samples
are runs: with several runs per side, the ratio NEW/BASE is the Hodges-Lehmann shift of the
runs' log figures, with one-sided bounds from the exact Mann-Whitney distribution at the
family-wise level (--alpha, Bonferroni over the judged cases). A case regresses when its lower
bound is above 1 + margin and its estimate above 1 + threshold. One run per side cannot
separate a change from run-to-run variation: every case is then "undecided" - use several runs
per side, or `./run.sh gate` (interleaved builds).

Before any timing, the runs must be comparable: the same schema, quick or full, build type,
repetitions, machine (host, CPU model, CPU count) and allocator policy in every file - else
the comparison is refused (--allow-mismatch overrides). A case missing from a NEW run, a case with errors in NEW
but not in BASE, and NEW runs with failed cases fail the comparison.

options:
  --threshold PCT        smallest slowdown that fails, in percent (default 10)
  --margin PCT           noise margin the lower bound must clear (default 2)
  --alpha A              family-wise significance (default 0.05): each of the m judged cases
                         uses A/m; a case whose samples cannot reach A/m is "undecided"
  --paired               the runs were interleaved (A1 B1 A2 B2 ...): judge the per-pair
                         ratios (Wilcoxon signed-rank) instead of independent samples
  --repetition-samples   one run per side: use its repetitions as the samples. They are
                         slices of one process in one machine state, not independent runs:
                         valid only for two runs taken back to back (the old behaviour)
  --normalize            divide each run's figure by the case's reference (floor_ns) measured
                         in that run; a case whose reference mechanism changed is skipped
  --cases REGEX          judge only the cases whose name matches (Python regular expression,
                         searched): fewer cases split the family-wise alpha fewer ways
  --allow-mismatch       compare despite context differences (they are still listed)
  --strict               an inconclusive case (no significant change, but its upper bound
                         does not exclude a slowdown of the threshold's size) cannot decide
  --json                 print the verdict JSON instead of the table
  --markdown FILE        also write a markdown summary (e.g. for a CI job summary)
  --plot FILE            also draw the forest plot (PNG) of every case's ratio and bounds

Exit status: 0 no regression (and every case decided), 1 a regression, a missing case, new
errors or failed cases in NEW, 2 bad input, refused contexts, or cases that could not be
decided (the output says which and why).
"""
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gate import report, results, stats  # noqa: E402


def fail(msg):
    print(f"compare: {msg}", file=sys.stderr)
    return 2


def parse_args(argv):
    o = {"threshold": 10.0, "margin": 2.0, "alpha": 0.05, "paired": False, "reps": False,
         "normalize": False, "allow": False, "strict": False, "json": False, "markdown": None,
         "plot": None, "cases": None, "base": [], "new": []}
    side, files, split = "base", [], False
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        elif a in ("--threshold", "--margin", "--alpha"):
            v = next(it, None)
            try:
                o[a[2:]] = float(v)
            except (TypeError, ValueError):
                raise results.BadInput(f"{a} needs a number, not {v!r}") from None
        elif a == "--cases":
            v = next(it, None)
            try:
                o["cases"] = re.compile(v or "")
            except re.error as e:
                raise results.BadInput(f"--cases: {e}") from None
            if not v:
                raise results.BadInput("--cases needs a regular expression")
        elif a in ("--markdown", "--plot"):
            v = next(it, None)
            if not v:
                raise results.BadInput(f"{a} needs a file name")
            o[a[2:]] = v
        elif a == "--":
            if split:
                raise results.BadInput("'--' may appear once (BASE runs -- NEW runs)")
            split, side = True, "new"
        elif a in ("--paired", "--normalize", "--json", "--strict"):
            o[a[2:]] = True
        elif a == "--repetition-samples":
            o["reps"] = True
        elif a == "--allow-mismatch":
            o["allow"] = True
        elif a.startswith("-"):
            raise results.BadInput(f"unknown option {a!r} (see --help)")
        else:
            o[side].append(a)
            files.append(a)
    if not split:
        if len(files) != 2:
            raise results.BadInput("needs BASE.json NEW.json, or A1.json ... -- B1.json ... "
                                   "(see --help)")
        o["base"], o["new"] = [files[0]], [files[1]]
    if not o["base"] or not o["new"]:
        raise results.BadInput("each side needs at least one file (A1.json ... -- B1.json ...)")
    if not 0 < o["alpha"] < 1 or o["threshold"] < 0 or o["margin"] < 0:
        raise results.BadInput("--alpha must be in (0, 1), --threshold and --margin at least 0")
    if o["paired"] and len(o["base"]) != len(o["new"]):
        raise results.BadInput("--paired needs as many BASE runs as NEW runs")
    if o["reps"] and (len(o["base"]) > 1 or len(o["new"]) > 1):
        raise results.BadInput("--repetition-samples is for one run per side")
    return o


def run_figure(case, normalize):
    value, metric = results.figure(case)
    if value is None or not normalize:
        return value, metric
    ratio = results.normalized(value, case.get("floor_ns"))
    if ratio is None:
        return None, "no reference to normalize by"
    return ratio, metric + " / reference"


def judge_case(name, base_runs, new_runs, o, case_alpha):
    """One row: structural failures first, then the ratio."""
    row = {"name": name}
    b_cases = [c[name] for c in base_runs if name in c]
    n_cases = [c.get(name) for c in new_runs]
    if any(c is None for c in n_cases):
        missing = sum(c is None for c in n_cases)
        return {**row, "verdict": "missing",
                "reason": f"in BASE, absent from {missing} of {len(n_cases)} NEW runs"}
    b_err = sum(results.errors(c) for c in b_cases)
    n_err = sum(results.errors(c) for c in n_cases)
    if n_err and not b_err:
        return {**row, "verdict": "new errors",
                "reason": f"{n_err} failed operations in NEW, none in BASE"}
    if o["normalize"]:
        mechs = {results.text_field(c, "floor_mechanism") for c in b_cases + n_cases}
        if len(mechs) > 1:
            return {**row, "verdict": "skipped",
                    "reason": f"reference mechanism changed: {sorted(map(str, mechs))}"}
    if o["reps"]:
        base = results.repetition_figures(b_cases[0])
        new = results.repetition_figures(n_cases[0])
        metric = results.figure(n_cases[0])[1] + ", per repetition"
    else:
        figs_b = [run_figure(c, o["normalize"]) for c in b_cases]
        figs_n = [run_figure(c, o["normalize"]) for c in n_cases]
        base = [v for v, _ in figs_b if v is not None]
        new = [v for v, _ in figs_n if v is not None]
        metric = (figs_n or figs_b)[0][1]
        if len(base) != len(b_cases) or len(new) != len(n_cases):
            return {**row, "verdict": "skipped", "reason": metric}
    if not base or not new:
        return {**row, "verdict": "skipped", "reason": "no figures"}
    if o["paired"]:
        r = stats.paired(base, new, 1 - case_alpha)
    else:
        r = stats.unpaired(base, new, 1 - case_alpha)
    margin = o["margin"] / 100
    verdict = stats.judge(r, o["threshold"] / 100, margin)
    row.update({"verdict": verdict, "metric": metric,
                "n": r["n"] if o["paired"] else f"{len(base)}+{len(new)}",
                "base": statistics.median(base), "new": statistics.median(new),
                "estimate": r["estimate"], "lower": r["lower"], "upper": r["upper"],
                "margin": margin, "spread": r["spread"], "p_value": r["p_value"]})
    if verdict == stats.UNDECIDED:
        row["reason"] = (f"{row['n']} samples: the smallest p-value they can give is "
                         f"{r['min_p']:.3g}, above {case_alpha:.3g}")
    return row


def compare(o):
    docs = {p: results.load(p) for p in o["base"] + o["new"]}
    reasons = []
    diffs = results.mismatches(docs)
    if diffs and not o["allow"]:
        raise results.BadInput("the runs are not comparable (--allow-mismatch to compare "
                               "anyway):\n  " + "\n  ".join(diffs))
    if diffs:
        reasons.append("compared despite context differences: " + "; ".join(diffs))
    base_runs = [results.cases(docs[p]) for p in o["base"]]
    new_runs = [results.cases(docs[p]) for p in o["new"]]
    names = []
    for c in base_runs:
        names += [n for n in c if n not in names]
    if o["cases"] is not None:
        names = [n for n in names if o["cases"].search(n)]
    if not names:
        raise results.BadInput("the BASE runs hold no cases" + (" matching --cases"
                                                                if o["cases"] else ""))
    only_new = sorted({n for c in new_runs for n in c
                       if o["cases"] is None or o["cases"].search(n)} - set(names))
    if not any(n in c for c in new_runs for n in names):
        raise results.BadInput("BASE and NEW share no case names")
    judged = [n for n in names if all(n in c for c in new_runs)]
    case_alpha = o["alpha"] / max(1, len(judged))
    rows = [judge_case(n, base_runs, new_runs, o, case_alpha) for n in names]
    failed = [p for p in o["new"] if results.failed_cases(docs[p])]
    for p in failed:
        reasons.append(f"{p}: {results.failed_cases(docs[p])} failed cases (see its run's "
                       f"stderr)")
    if len(o["base"]) == 1 and not o["reps"]:
        reasons.append("one run per side: the samples are runs, so no case can reach "
                       "significance; give several runs per side or use ./run.sh gate")
    tally = report.counts(rows)
    failing = sum(v for k, v in tally.items() if k in report.FAILING) + len(failed)
    undecided = tally.get(stats.UNDECIDED, 0)
    wide = tally.get(stats.INCONCLUSIVE, 0)
    if wide:
        reasons.append(f"{wide} cases are inconclusive: no significant change, but their upper "
                       f"bound does not exclude a slowdown of the threshold's size")
        if o["strict"]:
            undecided += wide
    if failing:
        status, verdict = 1, "regression"
    elif undecided:
        status, verdict = 2, "undecided"
        reasons.append(f"{undecided} of {len(rows)} cases could not be decided")
    else:
        status, verdict = 0, "pass"
    doc = {"schema": "knit-gate/1", "mode": "compare", "verdict": verdict,
           "exit_status": status, "reasons": reasons,
           "settings": {"threshold": o["threshold"] / 100, "margin": o["margin"] / 100,
                        "alpha": o["alpha"], "case_alpha": case_alpha,
                        "confidence": 1 - case_alpha, "paired": o["paired"],
                        "repetition_samples": o["reps"], "normalize": o["normalize"],
                        "strict": o["strict"]},
           "base": {"label": " ".join(o["base"]), "files": o["base"]},
           "new": {"label": " ".join(o["new"]), "files": o["new"]},
           "only_in_new": only_new, "cases": rows}
    return doc


def main(argv):
    try:
        o = parse_args(argv)
        doc = compare(o)
    except (results.BadInput, ValueError) as e:
        return fail(str(e))
    if o["plot"]:
        doc["plot"] = report.forest(doc["cases"], o["plot"], "compare: NEW / BASE",
                                    doc["settings"]["threshold"], doc["settings"]["margin"])
    if o["markdown"]:
        with open(o["markdown"], "w", encoding="utf-8") as f:
            f.write(report.markdown(doc))
    if o["json"]:
        import json
        print(json.dumps(doc, indent=1, default=report._plain))
    else:
        print(report.table(doc["cases"], doc["settings"]["confidence"]))
        for n in doc["only_in_new"]:
            print(f"{n}: only in NEW; not compared")
        for r in doc["reasons"]:
            print(f"note: {r}")
        tally = ", ".join(f"{k} {v}" for k, v in sorted(report.counts(doc["cases"]).items()))
        print(f"verdict: {doc['verdict']} ({tally}; threshold {o['threshold']:g} %, margin "
              f"{o['margin']:g} %, family-wise alpha {o['alpha']:g})")
    return doc["exit_status"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
