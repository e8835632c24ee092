"""Reading knit-bench documents for the gate and for compare.

knit-bench/2 keeps its per-case records in `cases` (its `benchmarks` is Google Benchmark's
shape); knit-bench/1 kept them in `benchmarks`. A case is judged by one figure per run, a cost
(higher is worse), the same in both versions:

  bursts (scenario batch, or batch > 1)   ns per call: 1e9 / calls_per_s
  everything else                         latency_ns.p50 (the median of repetition_p50_ns
                                          when the p50 is missing), else 1e9 / calls_per_s
"""
import json
import math
import statistics

SCHEMAS = ("knit-bench/1", "knit-bench/2")
# Context fields that must match between the runs compared (--allow-mismatch overrides).
MATCHED = ("schema", "quick", "build_type", "repetitions", "host", "cpu_model", "cpus", "malloc")


class BadInput(Exception):
    """Input a comparison cannot use: exit 2."""


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: nested too deep
        raise BadInput(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") not in SCHEMAS:
        raise BadInput(f"{path} is not a knit-bench document ({' or '.join(SCHEMAS)})")
    return doc


def cases(doc):
    """name -> the case's record, from `cases` (knit-bench/2) or `benchmarks` (/1)."""
    records = doc.get("cases")
    if records is None and doc.get("schema") == "knit-bench/1":
        records = doc.get("benchmarks", [])
    if records is not None and not isinstance(records, list):
        raise BadInput(f"its cases are a {type(records).__name__}, not a list of records")
    out = {}
    for c in records or []:
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            out[c["name"]] = c
    return out


def is_burst(case):
    batch = case.get("batch")
    return case.get("scenario") == "batch" or (_number(batch) and batch > 1)


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive(v):
    """A figure the statistics can use: a number, finite and above 0 as a float."""
    try:
        return _number(v) and math.isfinite(float(v)) and float(v) > 0
    except OverflowError:  # an int beyond the float range
        return False


def _positives(v):
    """The usable figures of a list field (nothing when the field is not a list)."""
    return [float(x) for x in v if _positive(x)] if isinstance(v, list) else []


def per_call(calls_per_s):
    """1e9 / calls_per_s, or None when that is not a usable figure."""
    ns = 1e9 / float(calls_per_s) if _positive(calls_per_s) else None
    return ns if _positive(ns) else None


def figure(case):
    """(value, metric) of one run of a case, or (None, why not)."""
    ns = per_call(case.get("calls_per_s"))
    if is_burst(case) and ns is not None:
        return ns, "ns per call (burst throughput)"
    lat = case.get("latency_ns")
    if isinstance(lat, dict) and _positive(lat.get("p50")):
        return float(lat["p50"]), "p50 ns"
    reps = _positives(case.get("repetition_p50_ns"))
    if reps:
        return float(statistics.median(reps)), "p50 ns"
    if ns is not None:
        return ns, "ns per operation"
    return None, "no timed figure"


def text_field(case, key):
    """A string field of a case, or the repr of whatever else is there (hashable, printable)."""
    v = case.get(key)
    return v if v is None or isinstance(v, str) else repr(v)


def normalized(value, floor):
    """value / the case's reference figure, or None when that is not a usable figure."""
    ratio = value / float(floor) if _positive(floor) else None
    return ratio if _positive(ratio) else None


def repetition_figures(case):
    """The per-repetition figures of one run (compare --repetition-samples)."""
    per_op = _positives(case.get("repetition_ns_per_op"))
    if is_burst(case) and per_op:
        return per_op
    return _positives(case.get("repetition_p50_ns"))


def context(doc):
    ctx = doc.get("context") if isinstance(doc.get("context"), dict) else {}
    out = {k: ctx.get(k) for k in MATCHED if k != "schema"}
    out["schema"] = doc.get("schema")
    return out


def mismatches(docs_by_path):
    """Human-readable differences of the matched context fields across documents."""
    items = list(docs_by_path.items())
    first_path, first = items[0]
    ref = context(first)
    out = []
    for path, doc in items[1:]:
        ctx = context(doc)
        for k in MATCHED:
            if ctx.get(k) != ref.get(k):
                out.append(f"{k}: {ref.get(k)!r} in {first_path}, {ctx.get(k)!r} in {path}")
    return out


def errors(case):
    e = case.get("errors")
    return e if isinstance(e, int) and not isinstance(e, bool) else 0


def failed_cases(doc):
    ctx = doc.get("context") if isinstance(doc.get("context"), dict) else {}
    v = ctx.get("failed_cases")
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
