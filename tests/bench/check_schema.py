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
        elif line.startswith("## `benchmarks[]`"):
            section = "entry"
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


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tables = parse_schema(argv[1])
    doc = json.load(open(argv[2], encoding="utf-8"))
    problems = []
    check_object(doc, tables.get("top", {}), "document", problems)
    if doc.get("schema") != "knit-bench/1":
        problems.append(f"schema is {doc.get('schema')!r}, not 'knit-bench/1'")
    check_object(doc.get("context", {}), tables.get("context", {}), "context", problems)
    seen, scenarios = set(), set()
    for i, e in enumerate(doc.get("benchmarks", [])):
        where = f"benchmarks[{i}] {e.get('name', '?')}"
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
        if e.get("run_name") != e.get("name"):
            problems.append(f"{where}: run_name differs from name")
        if isinstance(e.get("repetition_p50_ns"), list) and \
                len(e["repetition_p50_ns"]) != e.get("repetitions"):
            problems.append(f"{where}: repetition_p50_ns has {len(e['repetition_p50_ns'])} "
                            f"values for {e.get('repetitions')} repetitions")
        scenarios.add(e.get("scenario"))
    if "--all-scenarios" in argv:
        named = [s.split(":", 1)[1] for s in tables if s.startswith("scenario:")]
        for s in named:
            if s not in scenarios:
                problems.append(f"no entry of scenario '{s}'")
    for p in problems[:50]:
        print("check_schema: " + p, file=sys.stderr)
    if len(problems) > 50:
        print(f"check_schema: ... and {len(problems) - 50} more", file=sys.stderr)
    print(f"check_schema: {len(doc.get('benchmarks', []))} entries, {len(scenarios)} scenarios, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
