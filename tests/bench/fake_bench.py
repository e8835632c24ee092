#!/usr/bin/python3
"""A stand-in for knit-bench in the gate's tests: prints one knit-bench/2 document for the
scenarios, transport and runtime it is asked for, with figures whose answer is known.

usage: fake_bench.py CONFIG.json [knit-bench options...]

CONFIG: {"counter": FILE, "noise": 0.01, "factor": {"pipe": 1.3}, "fail": ["tcp"],
         "drop": ["batch/unix"], "errors": ["unix"], "placement": "host:cpu0,workers:cpu1"}
Each run draws its noise from a generator seeded by a counter kept in FILE (incremented per
run), so a sitting is reproducible. `factor` multiplies the figures of a transport; `fail`
makes a run of that transport exit 1 with nothing on stdout; `drop` leaves out the cases whose
name starts with a prefix; `errors` reports failed operations on a transport.
"""
import json
import random
import sys


def main(argv):
    cfg = json.load(open(argv[0], encoding="utf-8"))
    opts, it = {}, iter(argv[1:])
    for a in it:
        if a in ("--scenario", "--transport", "--runtime", "--workers", "--repetitions"):
            opts[a[2:]] = next(it)
    n = 0
    if cfg.get("counter"):
        try:
            n = int(open(cfg["counter"]).read() or 0)
        except OSError:
            pass
        with open(cfg["counter"], "w") as f:
            f.write(str(n + 1))
    rng = random.Random(f"{argv[0]}-{n}")  # each stand-in and each of its runs: own noise
    t, r = opts.get("transport", "knit"), opts.get("runtime", "thread")
    if t in cfg.get("fail", []):
        print("fake_bench: this transport fails", file=sys.stderr)
        return 1
    factor = cfg.get("factor", {}).get(t, 1.0)
    cases = []
    for scen in opts.get("scenario", "latency").split(","):
        shapes = [("latency", 1, 1000.0)] if scen == "latency" else \
            [("batch", 1, 900.0), ("batch", 1000, 150.0)]
        for s, batch, base in shapes:
            name = f"{s}/{t}/{r}/w1/b{batch}/p8"
            if any(name.startswith(p) for p in cfg.get("drop", [])):
                continue
            v = base * factor * (1 + cfg.get("noise", 0.01) * rng.gauss(0, 1))
            cases.append({"name": name, "scenario": s, "transport": t, "runtime": r,
                          "batch": batch, "workers": 1,
                          "placement": cfg.get("placement", "host:cpu0,workers:cpu1"),
                          "latency_ns": {"p50": v}, "repetition_p50_ns": [v],
                          "calls_per_s": 1e9 / v,
                          "errors": 3 if t in cfg.get("errors", []) else 0})
    doc = {"schema": "knit-bench/2", "context": {"host": "fake", "cpu_model": "fake", "cpus": 2,
           "quick": False, "build_type": "Release", "repetitions": 1, "failed_cases": 0},
           "cases": cases, "benchmarks": []}
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
