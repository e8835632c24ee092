#!/usr/bin/python3
"""Mutation fuzzer of the results reader of compare and the gate (harness/gate/results.py and
harness/compare.py): knit-bench documents seeded from the chart fixtures (tests/plots/*.json),
mutated in their structure (a value replaced by one of another type or an extreme number, a key
dropped, a list emptied or nested deep) or in their text (bytes flipped, cut, repeated), are
read and compared against an intact document. Each must be read or refused with the project's
bad-input error (results.BadInput, exit 2 of compare); any other exception fails, naming the
seed that reproduces it.

usage: fuzz_results.py [--seconds S] [--seed N] [--iterations N]
  --seconds S      stop after S seconds (default 4)
  --seed N         first seed (default 1); iteration i uses seed N + i
  --iterations N   stop after N documents (default: no limit)
  --show N         print the mutated document of seed N and stop
"""
import copy
import json
import os
import random
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "harness"))

import compare  # noqa: E402
from gate import results  # noqa: E402

CASES_KEPT = 6  # cases kept per seed document: enough shapes, fast comparisons
EXTREMES = [None, True, False, 0, -1, 1, 2**63, -(2**63), 10**400, 1e-320, 1e308,
            float("inf"), float("-inf"), float("nan"), "", "x", "batch", "knit-bench/2",
            "knit-bench/1", [], [0], [None], {}, {"p50": "1"}, {"p50": 10**400}]


def seed_docs():
    docs = []
    folder = os.path.join(ROOT, "tests", "plots")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                doc = json.load(f)
            for key in ("cases", "benchmarks"):
                if isinstance(doc.get(key), list):
                    doc[key] = doc[key][:CASES_KEPT]
            docs.append(doc)
    # the same documents in the first schema, whose cases live in `benchmarks`
    for doc in [d for d in docs if d.get("schema") == "knit-bench/2"]:
        old = copy.deepcopy(doc)
        old["schema"] = "knit-bench/1"
        old["benchmarks"] = old.pop("cases", [])
        docs.append(old)
    return docs


def paths(node, prefix=()):
    """Every (container, key) inside a document."""
    out = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return out
    for k, v in items:
        out.append((node, k))
        out.extend(paths(v, prefix + (k,)))
    return out


def mutate_tree(doc, rng):
    for _ in range(rng.randint(1, 4)):
        spots = paths(doc)
        if not spots:
            return doc
        node, key = rng.choice(spots)
        op = rng.random()
        if op < 0.6:
            node[key] = copy.deepcopy(rng.choice(EXTREMES))
        elif op < 0.75 and isinstance(node, dict):
            del node[key]
        elif op < 0.85:
            depth = rng.choice([2, 20, 200])  # deeper: the text mutations
            deep = node[key]
            for _ in range(depth):
                deep = [deep]
            node[key] = deep
        else:
            node[key] = rng.choice([str(node[key]), [node[key]], {"v": node[key]}])
    return doc


def mutate_text(text, rng):
    b = bytearray(text.encode("utf-8"))
    for _ in range(rng.randint(1, 8)):
        if not b:
            break
        i = rng.randrange(len(b))
        op = rng.random()
        if op < 0.4:
            b[i] = rng.randrange(256)
        elif op < 0.6:
            del b[i:i + rng.randint(1, 64)]
        elif op < 0.8:
            b[i:i] = b[i:i + rng.randint(1, 64)] * rng.randint(1, 4)
        else:
            b[i:i] = rng.choice([b"[" * 100000, b"1e999", b"NaN", b"-Infinity", b"\xff\xfe",
                                 b'"\\ud800"', b"99999999999999999999999999"])
    return bytes(b)


def mutant(seeds, seed):
    rng = random.Random(seed)
    doc = copy.deepcopy(rng.choice(seeds))
    if rng.random() < 0.75:
        return json.dumps(doc if rng.random() < 0.05 else mutate_tree(doc, rng),
                          allow_nan=True).encode("utf-8"), rng
    return mutate_text(json.dumps(doc), rng), rng


def _set_case(key, value):
    def f(doc):
        for c in doc["cases"]:
            c[key] = value
        return doc
    return f


def _set_p50(value):
    def f(doc):
        for c in doc["cases"]:
            c["latency_ns"] = {"p50": value}
        return doc
    return f


def _scaled(factor):
    def f(doc):
        for c in doc["cases"]:
            c["latency_ns"] = {"p50": factor}
            c["repetition_p50_ns"] = [factor]
        return doc
    return f


# Documents that once raised something other than BadInput (the fuzzer's findings): each is
# read and compared, as NEW and as BASE, with and without --normalize, before the random run.
REGRESSIONS = [
    ("p50 beyond the float range", _set_p50(10**400), None),
    ("cases not a list", lambda d: {**d, "cases": 7}, None),
    ("batch a string", _set_case("batch", "8"), None),
    ("repetition_p50_ns not a list", lambda d: _set_p50(None)(_set_case("repetition_p50_ns",
                                                                        3)(d)), None),
    ("floor_mechanism a list", _set_case("floor_mechanism", ["spin"]), None),
    ("floor_ns not finite", _set_case("floor_ns", float("nan")), None),
    ("calls_per_s so small 1e9 / it is inf", lambda d: _set_p50(None)(
        _set_case("repetition_p50_ns", None)(_set_case("calls_per_s", 1e-320)(d))), None),
    ("figures 1e600 apart", _scaled(1e-300), _scaled(1e300)),
    ("nested 100000 deep", None, None),
]


def regressions(seeds, tmp):
    seed = next(d for d in seeds if d.get("schema") == "knit-bench/2")
    for name, change, other in REGRESSIONS:
        a = os.path.join(tmp, "regression-a.json")
        b = os.path.join(tmp, "regression-b.json")
        with open(a, "w", encoding="utf-8") as f:
            if change is None:
                f.write("[" * 100000)
            else:
                json.dump(change(copy.deepcopy(seed)), f)
        with open(b, "w", encoding="utf-8") as f:
            json.dump((other or (lambda d: d))(copy.deepcopy(seed)), f)
        for argv in ([b, a], [a, b], [b, a, "--normalize"], [a, b, "--repetition-samples"]):
            try:
                compare.compare(compare.parse_args(argv + ["--allow-mismatch"]))
            except results.BadInput:
                pass
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                print(f"fuzz_results: regression {name!r} ({' '.join(argv[2:])}) raised "
                      f"something other than BadInput", file=sys.stderr)
                return False
    return True


def read_all(path, intact_path, rng):
    """Everything compare and the gate read from a document, then a comparison."""
    doc = results.load(path)
    results.context(doc)
    results.failed_cases(doc)
    for case in results.cases(doc).values():
        results.figure(case)
        results.repetition_figures(case)
        results.errors(case)
    results.mismatches({intact_path: results.load(intact_path), path: doc})
    argv = [intact_path, path, "--allow-mismatch"]
    argv += [a for a in ("--normalize", "--strict") if rng.random() < 0.3]
    if rng.random() < 0.3:
        argv.append("--repetition-samples")
    if rng.random() < 0.5:
        argv = [argv[1], argv[0]] + argv[2:]
    compare.compare(compare.parse_args(argv))


def main(argv):
    seconds, first, iterations, show = 4.0, 1, None, None
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            print(__doc__)
            return 0
        if a == "--seconds":
            seconds = float(next(it))
        elif a == "--seed":
            first = int(next(it))
        elif a == "--iterations":
            iterations = int(next(it))
        elif a == "--show":
            show = int(next(it))
        else:
            print(f"fuzz_results: unknown argument {a!r}", file=sys.stderr)
            return 2
    seeds = seed_docs()
    if show is not None:
        sys.stdout.buffer.write(mutant(seeds, show)[0][:4000] + b"\n")
        return 0
    deadline = time.monotonic() + seconds
    n = clean = 0
    with tempfile.TemporaryDirectory() as tmp:
        if not regressions(seeds, tmp):
            return 1
        intact = os.path.join(tmp, "intact.json")
        with open(intact, "w", encoding="utf-8") as f:
            json.dump(seeds[0], f)
        path = os.path.join(tmp, "mutant.json")
        seed = first
        while time.monotonic() < deadline and (iterations is None or n < iterations):
            data, rng = mutant(seeds, seed)
            with open(path, "wb") as f:
                f.write(data)
            try:
                read_all(path, intact, rng)
            except results.BadInput:
                clean += 1
            except Exception:  # noqa: BLE001 - anything else is the finding
                traceback.print_exc()
                print(f"fuzz_results: seed {seed} raised something other than BadInput "
                      f"(reproduce: fuzz_results.py --seed {seed} --iterations 1; "
                      f"--show {seed} prints the document)", file=sys.stderr)
                return 1
            n += 1
            seed += 1
    print(f"fuzz_results: {n} documents, {clean} refused as bad input, {n - clean} read")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
