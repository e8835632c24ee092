"""Interleaved A/B runs and their analysis.

A unit is one knit-bench invocation (scenarios x one transport x one runtime); every case it
reports is judged. The sitting runs N rounds; each round visits every unit once, in an order
shuffled with a fixed seed, and runs it as a pair of fresh processes, BASE then NEW or NEW then
BASE, alternating from pair to pair and from unit to unit (ABBA), so a drift of the machine
during the sitting weighs on both builds alike. Every process is one sample: a case's figure
from it (harness/gate/results.py). Samples are appended to samples.jsonl as they come, so a
sitting can be judged again (--from-samples) with other settings.
"""
import json
import os
import random
import statistics
import subprocess
import sys
import time

from gate import results, stats

RUN_TIMEOUT_S = 900


class Unit:
    def __init__(self, index, scenarios, transport, runtime, workers, repetitions):
        self.index, self.scenarios = index, scenarios
        self.transport, self.runtime = transport, runtime
        self.workers, self.repetitions = workers, repetitions

    @property
    def id(self):
        parts = [",".join(self.scenarios)]
        if self.transport:
            parts.append(f"{self.transport}/{self.runtime}")
        return " ".join(parts)

    def args(self):
        a = ["--json", "--scenario", ",".join(self.scenarios),
             "--repetitions", str(self.repetitions)]
        if self.transport:
            a += ["--transport", self.transport, "--runtime", self.runtime]
        if self.workers:
            a += ["--workers", self.workers]
        return a


def plan_units(scenarios, transports, runtimes, workers, repetitions):
    """One unit per transport x runtime for the scenarios that have them, one for `floor`."""
    units = []
    per_pool = [s for s in scenarios if s != "floor"]
    if "floor" in scenarios:
        units.append(Unit(len(units), ["floor"], None, None, None, repetitions))
    if per_pool:
        for t in transports:
            for r in runtimes:
                units.append(Unit(len(units), per_pool, t, r, workers, repetitions))
    return units


def run_one(binary, unit, out_path, env):
    """Run one sample; returns (record fields, the document or None)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([binary, *unit.args()], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S, env=env, cwd=os.path.dirname(out_path))
        code, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        code, out = "timeout", ""
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) \
            else (e.stderr or "")
    except OSError as e:
        code, out, err = "cannot start", "", str(e)
    wall = time.monotonic() - t0
    rec = {"exit": code, "wall_s": round(wall, 3)}
    doc = None
    try:
        doc = json.loads(out) if out.strip() else None
    except ValueError:
        doc = None
    if doc is None or doc.get("schema") not in results.SCHEMAS:
        rec["error"] = (f"no knit-bench document on stdout (exit {code}): "
                        + " / ".join(err.strip().splitlines()[-3:]))
        doc = None
    else:
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(out)
        rec["document"] = os.path.basename(out_path)
        if code != 0:
            rec["error"] = f"exit {code}: " + " / ".join(err.strip().splitlines()[-3:])
    return rec, doc


def record_cases(doc):
    out = {}
    for name, c in results.cases(doc).items():
        value, metric = results.figure(c)
        out[name] = {"value": value, "metric": metric, "errors": results.errors(c),
                     "placement": c.get("placement")}
    return out


def sitting(phase, units, pairs, bins, outdir, samples_file, seed, env, progress):
    """Run `pairs` rounds over `units`; append one record per process to samples_file."""
    rng = random.Random(f"{seed}-{phase}")
    total = pairs * len(units) * 2
    done, t_start = 0, time.monotonic()
    rundir = os.path.join(outdir, "runs", phase)
    os.makedirs(rundir, exist_ok=True)
    for i in range(pairs):
        order = list(units)
        rng.shuffle(order)
        for unit in order:
            sides = ("base", "new") if (i + unit.index) % 2 == 0 else ("new", "base")
            for side in sides:
                name = f"u{unit.index:02d}-p{i:02d}-{side}.json"
                rec, doc = run_one(bins[side], unit, os.path.join(rundir, name), env)
                rec.update({"phase": phase, "unit": unit.id, "pair": i, "side": side,
                            "seq": done, "first": sides[0],
                            "cases": record_cases(doc) if doc else {},
                            "failed_cases": results.failed_cases(doc) if doc else None,
                            "context": results.context(doc) if doc else None})
                samples_file.write(json.dumps(rec) + "\n")
                samples_file.flush()
                done += 1
                elapsed = time.monotonic() - t_start
                eta = elapsed / done * (total - done)
                failed = f" FAILED: {rec['error']}" if "error" in rec else ""
                progress(f"{phase}: {done}/{total} pair {i + 1}/{pairs} {unit.id} {side} "
                         f"{rec['wall_s']:.1f} s{failed} (ETA {eta / 60:.1f} min)")


def load_samples(path):
    if os.path.isdir(path):
        path = os.path.join(path, "samples.jsonl")
    meta, recs = None, []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    raise results.BadInput(f"{path}:{n}: not JSON") from None
                if "meta" in d:
                    meta = d["meta"]
                else:
                    recs.append(d)
    except OSError as e:
        raise results.BadInput(f"cannot read {path}: {e}") from None
    for r in recs:
        for k in ("phase", "unit", "pair", "side", "cases"):
            if k not in r:
                raise results.BadInput(f"{path}: a sample without {k!r}")
    return meta, recs


def analyse(recs, phase, s, only=None):
    """Rows (one per case) of one phase's samples; `s` holds threshold, margin,
    spread_factor, confidence; `only` restricts the cases."""
    by_unit = {}
    for r in recs:
        if r["phase"] == phase:
            by_unit.setdefault(r["unit"], {}).setdefault(r["pair"], {})[r["side"]] = r
    rows, only_new = [], set()
    for unit, pairs in sorted(by_unit.items()):
        names = []
        for p in sorted(pairs):
            for side in ("base", "new"):
                for n in pairs[p].get(side, {}).get("cases", {}):
                    if n not in names:
                        names.append(n)
        base_errors = [pairs[p]["base"]["error"] for p in sorted(pairs)
                       if pairs[p].get("base", {}).get("error")]
        if not names and only is None:
            errs = [pairs[p][side].get("error") for p in sorted(pairs) for side in pairs[p]]
            rows.append({"name": f"({unit})", "unit": unit, "verdict": stats.UNDECIDED,
                         "reason": "no run of this unit gave a case: "
                                   + (next((e for e in errs if e), None) or "no output")})
        for name in names:
            if only is not None and name not in only:
                continue
            row = _case_row(name, unit, pairs, s)
            if row is None and base_errors:
                row = {"name": name, "unit": unit, "verdict": stats.UNDECIDED,
                       "reason": f"BASE's run failed in {len(base_errors)} pairs: "
                                 f"{base_errors[0]}"}
            if row is None:
                only_new.add(name)
            else:
                rows.append(row)
    return rows, sorted(only_new)


def _case_row(name, unit, pairs, s):
    base_v, new_v, notes = [], [], []
    missing, failed_new, base_failed, new_err, base_err = 0, 0, 0, 0, 0
    placements = set()
    seen_base = False
    for p in sorted(pairs):
        b, n = pairs[p].get("base"), pairs[p].get("new")
        bc = (b or {}).get("cases", {}).get(name)
        nc = (n or {}).get("cases", {}).get(name)
        seen_base |= bc is not None
        if bc is None or bc.get("value") is None:
            base_failed += 1
            continue
        if nc is None or nc.get("value") is None:
            if n is None or n.get("error"):
                failed_new += 1
                notes.append((n or {}).get("error", "no NEW run"))
            else:
                missing += 1
            continue
        base_err += bc.get("errors", 0)
        new_err += nc.get("errors", 0)
        placements.add((bc.get("placement"), nc.get("placement")))
        base_v.append(bc["value"])
        new_v.append(nc["value"])
    if not seen_base:
        return None  # only in NEW
    row = {"name": name, "unit": unit}
    if failed_new:
        return {**row, "verdict": "failed",
                "reason": f"NEW's run failed in {failed_new} pairs: {notes[0]}"}
    if missing:
        return {**row, "verdict": "missing",
                "reason": f"absent from NEW's output in {missing} pairs"}
    if new_err and not base_err:
        return {**row, "verdict": "new errors",
                "reason": f"{new_err} failed operations in NEW, none in BASE"}
    if any(a != b for a, b in placements):
        return {**row, "verdict": stats.UNDECIDED,
                "reason": f"placement differs: {sorted(placements)}"}
    r = stats.paired(base_v, new_v, s["confidence"]) if base_v else None
    if r is None or not r["decidable"]:
        why = f"{len(base_v)} valid pairs"
        if base_failed:
            why += f" (BASE gave no figure in {base_failed})"
        need = next(k for k in range(1, 64) if 0.5 ** k <= 1 - s["confidence"])
        return {**row, "verdict": stats.UNDECIDED, "n": len(base_v),
                "reason": f"{why}; a {100 * s['confidence']:g} % bound needs {need}"}
    margin = stats.margin_for(r["spread"], s["margin"], s["spread_factor"])
    out = {**row, "verdict": stats.judge(r, s["threshold"], margin), "n": r["n"],
           "base": statistics.median(base_v), "new": statistics.median(new_v),
           "estimate": r["estimate"], "lower": r["lower"], "upper": r["upper"],
           "margin": margin, "spread": r["spread"], "p_value": r["p_value"],
           "log_ratios": r["log_ratios"]}
    if base_failed:
        out["reason"] = f"BASE gave no figure in {base_failed} pairs"
    return out


def progress_printer(stream=sys.stderr):
    tty = stream.isatty()

    def show(msg):
        if tty:
            stream.write("\r\033[K" + msg[:150])
        else:
            stream.write(msg + "\n")
        stream.flush()

    def end():  # finish the progress line on a terminal
        if tty:
            stream.write("\n")
    show.end = end
    return show
