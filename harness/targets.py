#!/usr/bin/python3
"""The performance targets (docs/PERFORMANCE.md) computed from one knit-bench result.

usage: targets.py RESULT.json [--markdown]

Every ratio comes from the same run, against the floor measured closest in time to the case
(each entry's floor_ns / floor_p99_ns) or against a rival measured in the same run; absolute
times from this noisy machine are never compared across runs. Prints one row per target:
target, measured ratio, pass/fail (with --markdown also the command that reruns its cases).
Exit 0 always (a report, not a gate).
"""
import json
import os
import sys


def load(path):
    doc = json.load(open(path, encoding="utf-8"))
    return doc, {b["name"]: b for b in doc["benchmarks"]}


def get(by, name):
    return by.get(name)


def p50(b):
    return b["latency_ns"]["p50"] if b and b.get("latency_ns") else None


def p99(b):
    return b["latency_ns"]["p99"] if b and b.get("latency_ns") else None


def ratio(a, b):
    return a / b if a and b else None


def floor_of(b, mech):
    """The case's floor reference when it is mechanism `mech` (older results used others)."""
    return b["floor_ns"] if b and b.get("floor_mechanism") == mech else None


def row(rows, target, value, ok, fmt, note=""):
    if value is None:
        rows.append((target, "not measured", "n/a", note))
    elif ok is None:
        rows.append((target, fmt.format(value), "stated", note))
    else:
        rows.append((target, fmt.format(value), "pass" if ok(value) else "FAIL", note))


def targets(by):
    rows = []
    lat = lambda t, rt="thread": get(by, f"latency/{t}/{rt}/w1/b1/p8")
    bat = lambda t, rt="thread": get(by, f"batch/{t}/{rt}/w1/b1000/p8")
    k = lat("knit")
    row(rows, "1a latency knit p50 <= 2x floor spin p50", ratio(p50(k), k and k["floor_ns"]),
        lambda v: v <= 2, "{:.2f}x")
    row(rows, "1b latency knit p99 <= 3x floor spin p99",
        ratio(p99(k), k and k.get("floor_p99_ns")), lambda v: v <= 3, "{:.2f}x")
    kb = bat("knit")
    ring_cps = 1e9 / kb["floor_ns"] if kb and kb.get("floor_ns") else None
    row(rows, "2 batch-1000 knit calls/s >= 1/3 of the raw ring's",
        ratio(kb and kb["calls_per_s"], ring_cps), lambda v: v >= 1 / 3, "{:.3f} of the ring")
    for t in ("pipe", "unix", "seqpacket", "tcp"):
        r = lat(t)
        req = (lambda v: v >= 100) if t == "pipe" else None
        row(rows, f"3 latency p50: {t} / knit" + (" >= 100" if t == "pipe" else ""),
            ratio(p50(r), p50(k)), req, "{:.1f}x")
    for t in ("pipe", "unix", "seqpacket", "tcp"):
        r = bat(t)
        req = (lambda v: v >= 10) if t == "pipe" else None
        row(rows, f"3 batch-1000 calls/s: knit / {t}" + (" >= 10" if t == "pipe" else ""),
            ratio(kb and kb["calls_per_s"], r and r["calls_per_s"]), req, "{:.1f}x")
    pay = get(by, "payload/knit/thread/w1/b100/p1048576")
    if pay and pay.get("floor_ns"):
        bw = (1 << 20) / (pay["floor_ns"] * 1e-9)  # memcpy bytes/s of the 1 MiB floor
        allowed = 2 * bw / pay.get("copies_per_round_trip", 4)
        row(rows, "4 payload 1 MiB batch 100 bytes/s >= 60 % of the memcpy bound",
            pay["bytes_per_s"] / allowed, lambda v: v >= 0.6, "{:.0%}")
    else:
        row(rows, "4 payload 1 MiB batch 100 bytes/s >= 60 % of the memcpy bound", None, None, "")
    for name in ("payload/knit/thread/w1/b100/p1048576", "payload/knit/thread/w1/b1/p8388608"):
        base, view = get(by, name), get(by, name + "/in-place")
        row(rows, f"4b arg_in_place: bytes/s gain over copying, {name.split('/', 4)[4]}",
            ratio(view and view["bytes_per_s"], base and base["bytes_per_s"]),
            lambda v: True, "{:.2f}x", "the option exists; the figure is what it saves")
    idle = get(by, "idle/knit/thread/w1/b1/p8/cpu")
    row(rows, "5a idle CPU per worker < 1 % of a core",
        idle and idle.get("cpu_percent_per_worker"), lambda v: v < 1, "{:.3f} %")
    gap = get(by, "idle/knit/thread/w1/b1/p8/gap-100ms")
    row(rows, "5b first call after 100 ms idle <= 2x futex round trip after 100 ms idle",
        ratio(p50(gap), floor_of(gap, "futex-gap-100ms")), lambda v: v <= 2, "{:.2f}x",
        "same-gap reference: both CPUs may have halted")
    warm = gap and (gap.get("warm_futex_ns") or floor_of(gap, "futex"))
    row(rows, "5b first call after 100 ms idle / warm futex round trip", ratio(p50(gap), warm),
        None, "{:.2f}x", "both CPUs busy: not the limit after a gap")
    pgap = get(by, "idle/pipe/thread/w1/b1/p8/gap-100ms")
    row(rows, "5b pipe: first call after 100 ms idle / futex round trip after 100 ms idle",
        ratio(p50(pgap), floor_of(pgap, "futex-gap-100ms")), None, "{:.2f}x")
    st = get(by, "startup/knit/thread/w1/b1/p8")
    row(rows, "6a thread pool first reply <= 3x pthread_create+join",
        ratio(p50(st), st and st.get("floor_ns")), lambda v: v <= 3, "{:.2f}x")
    sp = get(by, "startup/knit/process/w1/b1/p8/inherit")
    row(rows, "6b process pool first reply <= 2x spawn of a tiny program",
        ratio(p50(sp), sp and sp.get("floor_ns")), lambda v: v <= 2, "{:.2f}x")
    cpu = get(by, "cpu/knit/thread/w2/b40/p8")
    row(rows, "7 cpu: 2 workers >= 1.8x one", cpu and cpu.get("speedup_vs_1"),
        lambda v: v >= 1.8, "{:.2f}x")
    kp = lat("knit", "process")
    row(rows, "8a process / thread latency p50 <= 1.5", ratio(p50(kp), p50(k)),
        lambda v: v <= 1.5, "{:.2f}x")
    kbp = bat("knit", "process")
    row(rows, "8b thread / process batch-1000 calls/s <= 1.5",
        ratio(kb and kb["calls_per_s"], kbp and kbp["calls_per_s"]), lambda v: v <= 1.5, "{:.2f}x")
    c = lambda t, v: get(by, f"contended/{t}/thread/w1/b1/p8/latency-hog{v}")
    cb = lambda t, v: get(by, f"contended/{t}/thread/w1/b1000/p8/batch-hog{v}")
    hogs = next((n.rsplit("hog", 1)[1] for n in by if n.startswith("contended/knit/thread/w1/b1/")),
                None)
    if hogs:
        kc = c("knit", hogs)
        rivals = [c(t, hogs) for t in ("pipe", "unix", "seqpacket", "tcp")]
        rivals = [r for r in rivals if r]
        best50 = min((p50(r) for r in rivals), default=None)
        best99 = min((p99(r) for r in rivals), default=None)
        row(rows, "9a contended knit p50 <= best rival p50", ratio(p50(kc), best50),
            lambda v: v <= 1, "{:.2g}x")
        row(rows, "9b contended knit p99 <= best rival p99", ratio(p99(kc), best99),
            lambda v: v <= 1, "{:.2g}x")
        kcb, pcb = cb("knit", hogs), cb("pipe", hogs)
        row(rows, "9c contended burst knit >= 5x pipe",
            ratio(kcb and kcb["calls_per_s"], pcb and pcb["calls_per_s"]), lambda v: v >= 5,
            "{:.1f}x")
    return rows


def icount_rows(rows, ref_path):
    try:
        ref = json.load(open(ref_path, encoding="utf-8"))
    except OSError:
        return
    for size, n in ref["instructions_per_round"].items():
        rows.append((f"10 instructions per encode+publish+decode, {size} B (reference)",
                     f"{n:.0f}", "recorded", f"ctest bench/icount fails above +{ref['tolerance_percent']} %"))


# The command that reruns the cases a target reads (each case measures its floor reference
# just before it, so a filtered run gives the same ratios), by target number.
COMMANDS = {
    "1": "./run.sh --scenario latency --transport knit --runtime thread --workers 1",
    "2": "./run.sh --scenario batch --transport knit --runtime thread --workers 1",
    "3": "./run.sh --scenario latency,batch --runtime thread --workers 1",
    "4": "./run.sh --scenario payload --transport knit --runtime thread --workers 1",
    "5": "./run.sh --scenario idle",
    "6": "./run.sh --scenario startup --workers 1",
    "7": "./run.sh --scenario cpu",
    "8": "./run.sh --scenario latency,batch --transport knit --workers 1",
    "9": "./run.sh --scenario contended",
    "10": "ctest --test-dir build/release -R bench/icount",
}


def command(target):
    number = target.split()[0].rstrip("abcdefghijklmnopqrstuvwxyz")
    return COMMANDS.get(number, "./run.sh")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    doc, by = load(argv[1])
    rows = targets(by)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    icount_rows(rows, os.path.join(root, "results", "baseline", "icount.json"))
    ctx = doc["context"]
    if "--markdown" in argv:
        print(f"From `{argv[1].split('/')[-1]}` ({ctx['date']}, commit {ctx['git_commit'][:12]}, "
              f"{ctx['cpus']} CPUs, {'quick' if ctx['quick'] else 'full'} run).\n")
        print("| target | measured | verdict | command | note |\n| --- | --- | --- | --- | --- |")
        for t, v, ok, note in rows:
            print(f"| {t} | {v} | {ok} | `{command(t)}` | {note} |")
    else:
        for t, v, ok, note in rows:
            print(f"{ok:5s} {v:>22s}  {t}" + (f"  ({note})" if note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
