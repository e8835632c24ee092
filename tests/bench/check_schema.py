#!/usr/bin/python3
"""Check a knit-bench JSON document against results/SCHEMA.md, both ways.

usage: check_schema.py SCHEMA.md RESULT.json [--all-scenarios]

Every field the schema's tables list must be present with its type; a field the tables do not
list is an error; names must be unique. --all-scenarios also requires at least one entry of
every scenario the schema names. Exit 0 when valid, 1 with the problems listed otherwise.
"""
import json
import re
import sys

ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([a-z|\\]+)\s*\|")
TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}


def parse_schema(path):
    """Tables by section: 'top', 'context', 'entry', and one per scenario."""
    tables, section = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("## Top level"):
            section = "top"
        elif line.startswith("## `context`"):
            section = "context"
        elif line.startswith("## `cases[]`"):
            section = "entry"
        elif line.startswith("## `benchmarks[]`"):
            section = "gbench"
        elif line.startswith("## "):
            section = None
        elif line.startswith("### `"):
            section = "scenario:" + line.split("`")[1]
        m = ROW.match(line)
        if m and section:
            types = m.group(2).replace("\\", "").split("|")
            tables.setdefault(section, {})[m.group(1)] = types
    return tables


def type_ok(value, types):
    for t in types:
        if t == "optional":
            continue
        want = TYPES[t]
        if t in ("integer", "number") and isinstance(value, bool):
            continue
        if isinstance(value, want):
            return True
    return False


def check_object(obj, table, where, problems):
    for field, types in table.items():
        if field not in obj:
            if "optional" not in types:
                problems.append(f"{where}: missing field '{field}'")
        elif not type_ok(obj[field], types):
            problems.append(f"{where}: '{field}' is {type(obj[field]).__name__}, "
                            f"the schema says {'|'.join(types)}")
    for field in obj:
        if field not in table:
            problems.append(f"{where}: field '{field}' is not documented in the schema")


def check_percentiles(e, where, problems):
    """A percentile is null below its sample count and a number above it."""
    lat, n = e.get("latency_ns"), e.get("samples")
    if not isinstance(lat, dict) or not isinstance(n, int):
        return
    for key, need in (("p90", 10), ("p99", 100), ("p999", 1000)):
        if (lat.get(key) is None) != (n < need):
            problems.append(f"{where}: latency_ns.{key} is {lat.get(key)!r} with {n} samples "
                            f"(reported from {need})")


def check_reference(e, where, problems):
    """Every case names its reference mechanism with a ratio, or says why there is none."""
    ref = e.get("reference")
    if not isinstance(ref, dict):
        return
    if "none" in ref:
        if not isinstance(ref["none"], str) or not ref["none"] or len(ref) != 1:
            problems.append(f"{where}: reference.none must be the only field, a reason")
        return
    for key, t in (("mechanism", str), ("kind", str), ("bracketed", bool), ("samples", int)):
        if not isinstance(ref.get(key), t):
            problems.append(f"{where}: reference.{key} is missing or mistyped")
    if ref.get("mechanism") != e.get("floor_mechanism"):
        problems.append(f"{where}: reference.mechanism differs from floor_mechanism")
    if ref.get("kind") not in ("round-trip", "throughput"):
        problems.append(f"{where}: reference.kind is {ref.get('kind')!r}")
    per = ref.get("ratio_per_repetition")
    if per is not None and len(per) != e.get("repetitions"):
        problems.append(f"{where}: reference.ratio_per_repetition has {len(per)} values")
    if ref.get("bracketed") and ref.get("samples") == e.get("repetitions", 0) + 1 \
            and not (isinstance(ref.get("ratio"), (int, float)) and ref["ratio"] > 0):
        problems.append(f"{where}: a fully bracketed reference without a ratio")


def check_gbench(doc, table, problems):
    """Google Benchmark's entries: per case, one iteration entry per repetition, then four
    aggregates when there are two or more."""
    by_case = {}
    for i, g in enumerate(doc.get("benchmarks", [])):
        check_object(g, table, f"benchmarks[{i}] {g.get('name', '?')}", problems)
        by_case.setdefault(g.get("run_name"), []).append(g)
    for e in doc.get("cases", []):
        got = by_case.get(e.get("name"), [])
        its = [g for g in got if g.get("run_type") == "iteration"]
        aggs = sorted(g.get("aggregate_name") for g in got if g.get("run_type") == "aggregate")
        if len(its) != e.get("repetitions"):
            problems.append(f"benchmarks: {e.get('name')} has {len(its)} iteration entries for "
                            f"{e.get('repetitions')} repetitions")
        want = ["cv", "mean", "median", "stddev"] if e.get("repetitions", 0) >= 2 else []
        if aggs != want:
            problems.append(f"benchmarks: {e.get('name')} has aggregates {aggs}")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tables = parse_schema(argv[1])
    doc = json.load(open(argv[2], encoding="utf-8"))
    problems = []
    check_object(doc, tables.get("top", {}), "document", problems)
    if doc.get("schema") != "knit-bench/2":
        problems.append(f"schema is {doc.get('schema')!r}, not 'knit-bench/2'")
    check_object(doc.get("context", {}), tables.get("context", {}), "context", problems)
    seen, scenarios = set(), set()
    for i, e in enumerate(doc.get("cases", [])):
        where = f"cases[{i}] {e.get('name', '?')}"
        table = dict(tables.get("entry", {}))
        table.update(tables.get("scenario:" + str(e.get("scenario")), {}))
        check_object(e, table, where, problems)
        lat = e.get("latency_ns")
        if isinstance(lat, dict):
            for k in ("min", "p50", "p90", "p99", "p999", "max", "mean", "stddev"):
                if not type_ok(lat.get(k, "missing"), ["number", "null"]):
                    problems.append(f"{where}: latency_ns.{k} is missing or not a number")
        if e.get("name") in seen:
            problems.append(f"{where}: the name is not unique")
        seen.add(e.get("name"))
        for field in ("repetition_p50_ns", "repetition_ns_per_op"):
            if isinstance(e.get(field), list) and len(e[field]) != e.get("repetitions"):
                problems.append(f"{where}: {field} has {len(e[field])} values for "
                                f"{e.get('repetitions')} repetitions")
        check_percentiles(e, where, problems)
        check_reference(e, where, problems)
        scenarios.add(e.get("scenario"))
    check_gbench(doc, tables.get("gbench", {}), problems)
    if "--all-scenarios" in argv:
        named = [s.split(":", 1)[1] for s in tables if s.startswith("scenario:")]
        for s in named:
            if s not in scenarios:
                problems.append(f"no entry of scenario '{s}'")
    for p in problems[:50]:
        print("check_schema: " + p, file=sys.stderr)
    if len(problems) > 50:
        print(f"check_schema: ... and {len(problems) - 50} more", file=sys.stderr)
    print(f"check_schema: {len(doc.get('cases', []))} cases, {len(scenarios)} scenarios, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
