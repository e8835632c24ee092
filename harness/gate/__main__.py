"""The regression gate: interleaved A/B runs of two builds, judged case by case.

usage: ./run.sh gate BASE_REV [NEW_REV] [options]
       python3 harness/gate BASE_REV [NEW_REV] [options]
       python3 harness/gate --base-bin KNIT_BENCH --new-bin KNIT_BENCH [options]
       python3 harness/gate --from-samples DIR [options]

BASE_REV and NEW_REV are git revisions (commit, branch, tag, HEAD~3...) or WORKTREE, the
working tree with its uncommitted changes; NEW_REV defaults to WORKTREE. Each is exported
(git archive) and built (Release, knit-bench only) in a tree of its own under build/gate/; the
working tree and build/release are left alone.

The sitting: every unit (one knit-bench process: the scenarios on one transport x runtime) runs
as N pairs of fresh processes, BASE/NEW in alternating order (ABBA), rounds over all units in a
seeded shuffled order, knit-bench's own pinning (host CPU 0, worker CPU 1) on both sides. Per
case, the ratio NEW/BASE is the Hodges-Lehmann estimate of the per-pair log ratios with
one-sided bounds from the exact Wilcoxon signed-rank distribution. A case is flagged when its
lower bound is above 1 + margin (the margin is --margin, or --spread-factor x the case's
per-pair spread when that is larger) and its estimate above 1 + threshold. Flagged cases are
re-run with fresh pairs; the gate fails only if they are flagged again.

Cases (default: latency and bursts of every transport x runtime, both wait policies:
knit-bench --scenario latency,batch --workers 1 --repetitions 1, 10 units, about 11 cases each):
  --quick                latency only, 8 pairs (a few minutes; catches about 20-25 % on
                         single-call latency, see docs/gate.md)
  --scenario A,B         these knit-bench scenarios instead, per transport x runtime
                         (floor: one unit)
  --transport T,U        only these transports (knit, pipe, unix, seqpacket, tcp)
  --runtime R,S          only these runtimes (thread, process)
  --workers N            knit-bench --workers (default 1)
  --repetitions N        knit-bench --repetitions: each process is one sample (default 1)
Method:
  --pairs N              pairs per case (default 12, --quick 8; at least 7 for 99 %)
  --confirm-pairs N      pairs of the re-run of flagged cases (default --pairs; 0: none)
  --threshold PCT        smallest slowdown that fails (default 5)
  --margin PCT           noise margin the lower bound must clear (default 2)
  --spread-factor F      a case's margin is at least F x its per-pair spread (default 0.25)
  --confidence C         one-sided confidence of the bounds (default 0.99)
  --seed S               seed of the unit order (default 1)
  --strict               an inconclusive case (no significant change, but its upper bound
                         does not exclude a slowdown of the threshold's size) cannot decide
                         (exit 2) instead of passing with a note
Builds:
  --base-cmake-arg ARG   an extra CMake argument for BASE's build (repeatable)
  --new-cmake-arg ARG    the same for NEW, e.g. --new-cmake-arg=-DKNIT_INJECT_DELAY_NS=2000
  --base-bin, --new-bin  prebuilt knit-bench programs instead of revisions
  --build-dir DIR        where sources and build trees go (default build/gate)
Output (in --out DIR, default build/gate/runs/<UTC time>): samples.jsonl (every process),
runs/ (their documents), verdict.json, summary.md (for a CI job summary), forest.png, table.txt.
  --out DIR              the output directory
  --json                 print verdict.json on stdout instead of the table
  --no-plot              skip the forest plot
  --from-samples PATH    judge the samples of an earlier sitting (its directory or
                         samples.jsonl), with this command's settings; runs nothing
  --dry-run              print the plan and its estimated time, run nothing

Exit status: 0 no confirmed regression, 1 a confirmed regression (or NEW failed, lost a case,
or has new errors), 2 bad input, a build that failed, or a gate that could not decide (too few
valid pairs, BASE failing, placements that differ); the last lines say why.
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gate import build, report, results, runner, stats  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRANSPORTS = ["knit", "pipe", "unix", "seqpacket", "tcp"]
RUNTIMES = ["thread", "process"]
SCENARIOS = ["floor", "latency", "batch", "echo", "types", "payload", "load", "balance",
             "startup", "idle", "cpu", "dispatch", "contended"]
# rough seconds per process of a unit at --repetitions 1 on the 2-vCPU machine (--dry-run)
SECONDS_PER_SCENARIO = {"latency": 0.7, "batch": 1.7}


def say(msg):
    print(f"gate: {msg}", file=sys.stderr)


def parse(argv):
    o = {"revs": [], "quick": False, "scenario": None, "transport": TRANSPORTS,
         "runtime": RUNTIMES, "workers": "1", "repetitions": 1, "pairs": None,
         "confirm_pairs": None, "threshold": 5.0, "margin": 2.0, "spread_factor": 0.25,
         "confidence": 0.99, "seed": "1", "base_cmake": [], "new_cmake": [],
         "base_bin": None, "new_bin": None, "build_dir": os.path.join(ROOT, "build", "gate"),
         "out": None, "json": False, "plot": True, "from_samples": None, "dry_run": False,
         "strict": False}
    expanded = []
    for a in argv:  # --option=value is --option value
        expanded += a.split("=", 1) if a.startswith("--") and "=" in a else [a]
    it = iter(expanded)

    def value(a):
        v = next(it, None)
        if v is None:
            raise results.BadInput(f"{a} needs a value (see --help)")
        return v

    def number(a, v, kind=float, low=None):
        try:
            x = kind(v)
        except ValueError:
            raise results.BadInput(f"{a} needs a number, not {v!r}") from None
        if low is not None and x < low:
            raise results.BadInput(f"{a} must be at least {low}")
        return x

    def names(a, v, allowed):
        got = [x for x in v.split(",") if x]
        bad = [x for x in got if x not in allowed]
        if bad or not got:
            raise results.BadInput(f"{a}: unknown {bad or v!r} (one of {', '.join(allowed)})")
        return got

    for a in it:
        if a in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        elif a == "--quick":
            o["quick"] = True
        elif a == "--scenario":
            o["scenario"] = names(a, value(a), SCENARIOS)
        elif a == "--transport":
            o["transport"] = names(a, value(a), TRANSPORTS)
        elif a == "--runtime":
            o["runtime"] = names(a, value(a), RUNTIMES)
        elif a == "--workers":
            v = value(a)
            if not all(x.isdigit() and 1 <= int(x) <= 1024 for x in v.split(",")):
                raise results.BadInput(f"--workers takes counts from 1 to 1024, not {v!r}")
            o["workers"] = v
        elif a in ("--repetitions", "--pairs", "--confirm-pairs"):
            o[a[2:].replace("-", "_")] = number(a, value(a), int, 0 if "confirm" in a else 1)
        elif a in ("--threshold", "--margin", "--spread-factor", "--confidence"):
            o[a[2:].replace("-", "_")] = number(a, value(a), float, 0)
        elif a == "--seed":
            o["seed"] = value(a)
        elif a in ("--base-cmake-arg", "--new-cmake-arg"):
            o[a[2:6].rstrip("-") + "_cmake"].append(value(a))
        elif a in ("--base-bin", "--new-bin", "--build-dir", "--out", "--from-samples"):
            o[a[2:].replace("-", "_")] = value(a)
        elif a == "--json":
            o["json"] = True
        elif a == "--no-plot":
            o["plot"] = False
        elif a == "--dry-run":
            o["dry_run"] = True
        elif a == "--strict":
            o["strict"] = True
        elif a.startswith("-"):
            raise results.BadInput(f"unknown option {a!r} (see --help)")
        else:
            o["revs"].append(a)
    if not 0.5 <= o["confidence"] < 1:
        raise results.BadInput("--confidence must be in [0.5, 1)")
    bins = o["base_bin"] is not None or o["new_bin"] is not None
    if bins and (o["base_bin"] is None or o["new_bin"] is None):
        raise results.BadInput("--base-bin and --new-bin go together")
    if o["from_samples"] is None:
        if bins and o["revs"]:
            raise results.BadInput("give revisions or --base-bin/--new-bin, not both")
        if not bins and not 1 <= len(o["revs"]) <= 2:
            raise results.BadInput("needs BASE_REV [NEW_REV] (see --help)")
    if o["scenario"] is None:
        o["scenario"] = ["latency"] if o["quick"] else ["latency", "batch"]
    if o["pairs"] is None:
        o["pairs"] = 8 if o["quick"] else 12
    if o["confirm_pairs"] is None:
        o["confirm_pairs"] = o["pairs"]
    need = next(k for k in range(1, 64) if 0.5 ** k <= 1 - o["confidence"])
    for key in ("pairs", "confirm_pairs"):
        if o[key] and o[key] < need:
            raise results.BadInput(f"--{key.replace('_', '-')} {o[key]}: a "
                                   f"{100 * o['confidence']:g} % bound needs at least {need} "
                                   f"pairs")
    return o


def settings(o):
    return {"threshold": o["threshold"] / 100, "margin": o["margin"] / 100,
            "spread_factor": o["spread_factor"], "confidence": o["confidence"],
            "pairs": o["pairs"], "confirm_pairs": o["confirm_pairs"],
            "scenarios": o["scenario"], "transports": o["transport"], "runtimes": o["runtime"],
            "workers": o["workers"], "repetitions": o["repetitions"], "seed": o["seed"]}


def prepare(o, out):
    """The two knit-bench programs and what they are."""
    if o["base_bin"]:
        sides = {"base": {"label": o["base_bin"], "program": os.path.abspath(o["base_bin"])},
                 "new": {"label": o["new_bin"], "program": os.path.abspath(o["new_bin"])}}
        for s in sides.values():
            if not os.access(s["program"], os.X_OK):
                raise results.BadInput(f"{s['program']} is not an executable program")
        return sides
    revs = o["revs"] + [build.WORKTREE] * (2 - len(o["revs"]))
    sides = {}
    for side, rev, args in (("base", revs[0], o["base_cmake"]), ("new", revs[1], o["new_cmake"])):
        spec = build.resolve(ROOT, rev)
        say(f"{side}: exporting {spec['label']}")
        src = build.export(ROOT, spec, o["build_dir"])
        bdir = build.build_dir(o["build_dir"], side, spec, args)
        say(f"{side}: building knit-bench in {os.path.relpath(bdir, ROOT)}"
            + (f" with {' '.join(args)}" if args else ""))
        exe = build.build(src, bdir, args, os.path.join(out, f"build-{side}.log"))
        sides[side] = {"label": spec["label"], "commit": spec["commit"], "cmake_args": args,
                       "program": exe, "source": src}
    return sides


def environment(sides):
    env = dict(os.environ)
    # knit-bench asks git for the commit of its source tree: stop it at the export instead of
    # letting it find (and describe) the repository the export sits in
    roots = {os.path.dirname(s["source"]) for s in sides.values() if s.get("source")}
    if roots:
        env["GIT_CEILING_DIRECTORIES"] = ":".join(sorted(roots))
    return env


def decide(rows, reasons, strict):
    tally = report.counts(rows)
    failing = {k: v for k, v in tally.items() if k in report.FAILING}
    undecided = tally.get(stats.UNDECIDED, 0)
    wide = tally.get(stats.INCONCLUSIVE, 0)
    if wide:
        reasons.append(f"{wide} cases are inconclusive: no significant change, but their upper "
                       f"bound does not exclude a slowdown of the threshold's size (more pairs "
                       f"narrow it)" + ("; --strict counts them as undecided" if strict else ""))
    if strict:
        undecided += wide
    if failing:
        reasons.append("failing: " + ", ".join(f"{v} {k}" for k, v in failing.items()))
        return 1, "regression"
    if undecided:
        reasons.append(f"{undecided} cases could not be decided (see their reasons)")
        return 2, "undecided"
    if not rows:
        reasons.append("no case was judged")
        return 2, "undecided"
    return 0, "pass"


def judge(o, recs, meta, out):
    s = settings(o)
    s["strict"] = o["strict"]
    rows, only_new = runner.analyse(recs, "main", s)
    flagged = [r["name"] for r in rows if r["verdict"] == stats.REGRESSION]
    confirm_rows = {}
    if any(r["phase"] == "confirm" for r in recs):
        crow, _ = runner.analyse(recs, "confirm", s, only=set(flagged))
        confirm_rows = {r["name"]: r for r in crow}
    for r in rows:
        if r["name"] in confirm_rows:
            r["confirm"] = confirm_rows[r["name"]]
        elif r["verdict"] == stats.REGRESSION and o["confirm_pairs"]:
            r["confirm"] = {"verdict": stats.UNDECIDED, "reason": "not re-run"}
    reasons = []
    status, verdict = decide(rows, reasons, o["strict"])
    doc = {"schema": "knit-gate/1", "mode": "gate", "verdict": verdict, "exit_status": status,
           "reasons": reasons, "settings": s,
           "base": (meta or {}).get("base", {}), "new": (meta or {}).get("new", {}),
           "machine": (meta or {}).get("machine"), "only_in_new": only_new,
           "wall_time_s": (meta or {}).get("wall_time_s"),
           "build_time_s": (meta or {}).get("build_time_s"), "cases": rows}
    for r in rows:
        r.pop("log_ratios", None)
        if isinstance(r.get("confirm"), dict):
            r["confirm"].pop("log_ratios", None)
    return doc


def write_outputs(o, doc, out):
    if o["plot"]:
        try:
            doc["plot"] = report.forest(
                doc["cases"], os.path.join(out, "forest.png"),
                f"knit gate: {doc['base'].get('label', 'BASE')} -> "
                f"{doc['new'].get('label', 'NEW')}",
                doc["settings"]["threshold"], doc["settings"]["margin"])
        except ImportError as e:
            doc["reasons"].append(f"no forest plot: {e} (Debian python3-matplotlib)")
    text = report.table(doc["cases"], doc["settings"]["confidence"])
    with open(os.path.join(out, "table.txt"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(report.markdown(doc))
    report.write_json(doc, os.path.join(out, "verdict.json"))
    if o["json"]:
        with open(os.path.join(out, "verdict.json"), encoding="utf-8") as f:
            sys.stdout.write(f.read())
        return
    print(text)
    for n in doc["only_in_new"]:
        print(f"{n}: only in NEW; not judged")
    tally = ", ".join(f"{k} {v}" for k, v in sorted(report.counts(doc["cases"]).items()))
    for r in doc["reasons"]:
        print(f"reason: {r}")
    wall = doc.get("wall_time_s")
    print(f"verdict: {doc['verdict']} ({tally}){f'; {wall / 60:.1f} min' if wall else ''}; "
          f"files in {out}")


def main(argv):
    t0 = datetime.datetime.now(datetime.timezone.utc)
    try:
        o = parse(argv)
        if o["from_samples"]:
            meta, recs = runner.load_samples(o["from_samples"])
            src = o["from_samples"]
            out = o["out"] or (src if os.path.isdir(src) else os.path.dirname(src) or ".")
            os.makedirs(out, exist_ok=True)
            doc = judge(o, recs, meta, out)
            write_outputs(o, doc, out)
            return doc["exit_status"]
        units = runner.plan_units(o["scenario"], o["transport"], o["runtime"], o["workers"],
                                  o["repetitions"])
        per_run = sum(SECONDS_PER_SCENARIO.get(s, 5.0) for s in units[0].scenarios) \
            * o["repetitions"] ** 0.5
        estimate = 2 * o["pairs"] * len(units) * per_run
        if o["dry_run"]:
            print(f"{len(units)} units x {o['pairs']} pairs x 2 processes; about "
                  f"{estimate / 60:.0f} min of runs (plus builds, plus a re-run of flagged "
                  f"cases):")
            for u in units:
                print(f"  knit-bench {' '.join(u.args())}")
            return 0
        out = o["out"] or os.path.join(o["build_dir"], "runs", t0.strftime("%Y%m%dT%H%M%SZ"))
        os.makedirs(out, exist_ok=True)
        sides = prepare(o, out)
    except (results.BadInput, build.BuildError) as e:
        say(str(e))
        return 2
    env = environment(sides)
    built = (datetime.datetime.now(datetime.timezone.utc) - t0).total_seconds()
    meta = {"base": {k: v for k, v in sides["base"].items() if k != "source"},
            "new": {k: v for k, v in sides["new"].items() if k != "source"},
            "started": t0.isoformat(), "build_time_s": round(built, 1), "settings": settings(o)}
    bins = {k: v["program"] for k, v in sides.items()}
    show = runner.progress_printer()
    say(f"{len(units)} units x {o['pairs']} pairs, about {estimate / 60:.0f} min; "
        f"output in {out}")
    samples_path = os.path.join(out, "samples.jsonl")
    with open(samples_path, "w", encoding="utf-8") as f:
        f.write(json_line({"meta": meta}))
        runner.sitting("main", units, o["pairs"], bins, out, f, o["seed"], env, show)
        show.end()
        _, recs = runner.load_samples(samples_path)
        first = runner.analyse(recs, "main", settings(o))[0]
        flagged = {r["unit"] for r in first if r["verdict"] == stats.REGRESSION}
        if flagged and o["confirm_pairs"]:
            again = [u for u in units if u.id in flagged]
            say(f"{sum(r['verdict'] == stats.REGRESSION for r in first)} cases flagged; "
                f"re-running {len(again)} units with {o['confirm_pairs']} fresh pairs")
            runner.sitting("confirm", again, o["confirm_pairs"], bins, out, f, o["seed"], env,
                           show)
            show.end()
    meta, recs = runner.load_samples(samples_path)
    machine = next((r["context"] for r in recs if r.get("context")), None)
    meta["machine"] = {k: machine.get(k) for k in ("host", "cpu_model", "cpus")} \
        if machine else None
    meta["wall_time_s"] = (datetime.datetime.now(datetime.timezone.utc) - t0).total_seconds()
    doc = judge(o, recs, meta, out)
    write_outputs(o, doc, out)
    return doc["exit_status"]


def json_line(d):
    import json
    return json.dumps(d) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
