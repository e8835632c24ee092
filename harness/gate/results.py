"""Reading knit-bench documents for the gate and for compare.

knit-bench/2 keeps its per-case records in `cases` (its `benchmarks` is Google Benchmark's
shape); knit-bench/1 kept them in `benchmarks`. A case is judged by one figure per run, a cost
(higher is worse), the same in both versions:

  bursts (scenario batch, or batch > 1)   ns per call: 1e9 / calls_per_s
  everything else                         latency_ns.p50 (the median of repetition_p50_ns
                                          when the p50 is missing), else 1e9 / calls_per_s
"""
import json
import statistics

SCHEMAS = ("knit-bench/1", "knit-bench/2")
# Context fields that must match between the runs compared (--allow-mismatch overrides).
MATCHED = ("schema", "quick", "build_type", "repetitions", "host", "cpu_model", "cpus")


class BadInput(Exception):
    """Input a comparison cannot use: exit 2."""


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") not in SCHEMAS:
        raise BadInput(f"{path} is not a knit-bench document ({' or '.join(SCHEMAS)})")
    return doc


def cases(doc):
    """name -> the case's record, from `cases` (knit-bench/2) or `benchmarks` (/1)."""
    records = doc.get("cases")
    if records is None and doc.get("schema") == "knit-bench/1":
        records = doc.get("benchmarks", [])
    out = {}
    for c in records or []:
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            out[c["name"]] = c
    return out


def is_burst(case):
    return case.get("scenario") == "batch" or (case.get("batch") or 1) > 1


def _positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def figure(case):
    """(value, metric) of one run of a case, or (None, why not)."""
    cps = case.get("calls_per_s")
    if is_burst(case) and _positive(cps):
        return 1e9 / cps, "ns per call (burst throughput)"
    lat = case.get("latency_ns")
    if isinstance(lat, dict) and _positive(lat.get("p50")):
        return float(lat["p50"]), "p50 ns"
    reps = [v for v in case.get("repetition_p50_ns") or [] if _positive(v)]
    if reps:
        return float(statistics.median(reps)), "p50 ns"
    if _positive(cps):
        return 1e9 / cps, "ns per operation"
    return None, "no timed figure"


def repetition_figures(case):
    """The per-repetition figures of one run (compare --repetition-samples)."""
    per_op = [v for v in case.get("repetition_ns_per_op") or [] if _positive(v)]
    if is_burst(case) and per_op:
        return per_op
    return [float(v) for v in case.get("repetition_p50_ns") or [] if _positive(v)]


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
