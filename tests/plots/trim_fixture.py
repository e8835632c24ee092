#!/usr/bin/python3
"""Cut a small test fixture out of a real knit-bench result: keep the named cases.

usage: trim_fixture.py SOURCE.json OUT.json NAME [NAME ...]

Keeps `context` and, in run order, the cases whose name is listed (in `cases` for
knit-bench/2, with their Google Benchmark entries in `benchmarks`; in `benchmarks` for
knit-bench/1). Every kept record is copied unchanged. Fails when a name is not in SOURCE.
"""
import json
import sys


def main(argv):
    if len(argv) < 3 or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    source, out, names = argv[0], argv[1], set(argv[2:])
    with open(source, encoding="utf-8") as f:
        doc = json.load(f)
    key = "cases" if isinstance(doc.get("cases"), list) else "benchmarks"
    kept = [c for c in doc[key] if c.get("name") in names]
    missing = names - {c["name"] for c in kept}
    if missing:
        print(f"trim_fixture: not in {source}: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    doc[key] = kept
    if key == "cases":
        doc["benchmarks"] = [b for b in doc.get("benchmarks", []) if b.get("run_name") in names]
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
