#!/usr/bin/python3
"""Exact per-call counts of knit's round trip, checked against a committed reference.

usage: counts.py check KNIT_COUNT [--reference FILE] [--cases LIST] [--json]
       counts.py measure KNIT_COUNT [--cases LIST] [--repeat K] [--json]
       counts.py update KNIT_COUNT [--reference FILE] [--cases LIST]
       counts.py icount KNIT_ICOUNT [--reference FILE]

A case is TRANSPORT/RUNTIME (default: every transport x runtime, and the burst cases below).
For each case knit-count (harness/count/count.c) makes full round trips of one call -
knit_call to a settled, released future, an empty task with an 8-byte argument on one
worker - in a schedule where
the counts do not depend on timing: waits never spin, and host and worker share CPU 0 under
SCHED_FIFO, so each runs until it blocks and every call takes the full park/wake path. Two
runs per case:

  valgrind --tool=callgrind --trace-syscalls=yes   instructions (user space, every process
                                                   and thread) and system calls per round
                                                   trip, futex wakes among them
  natively                                         voluntary context switches per round
                                                   trip, host and worker (kernel counters)

TRANSPORT/RUNTIME/bB is the same in bursts: B calls made before the first wait (beyond the
lane's window of 32 the rest wait in the backlog), then all awaited; its figures are per call.

Each figure is (window of 2N round trips) - (window of N), divided by N: the marks that
delimit the windows cost the same in both, so the result is exact. clock_gettime and the
other calls the vDSO answers natively are system calls under valgrind only: they are
reported as `clock_reads` and left out of `syscalls`.

check     measure and compare with the reference (results/baseline/counts.json): a figure
          more than its tolerance above the reference fails; one far below it passes and
          asks for the reference to be lowered (`update`). Exit 0 pass, 1 a figure above
          tolerance, 2 bad input or a run that failed, 77 the schedule is not permitted (it
          needs root or CAP_SYS_NICE; ctest reports the test as skipped).
measure   print the figures; --repeat K runs every case K times and prints the spread.
update    measure and write the figures into the reference, keeping its tolerances.
icount    the single-threaded codec count (knit-icount: encode+publish+decode of one
          direction, 8 B and 4 KiB) against results/baseline/icount.json.
"""
import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REFERENCE = os.path.join(ROOT, "results", "baseline", "counts.json")
ICOUNT_REFERENCE = os.path.join(ROOT, "results", "baseline", "icount.json")
TRANSPORTS = ("knit", "pipe", "unix", "seqpacket", "tcp", "seq")
RUNTIMES = ("thread", "process")
# bursts: the call path's per-call cost when calls overlap (knit's bursts; seq's, the other
# shared-memory protocol; one message transport for contrast)
BURST_CASES = ("knit/thread/b32", "knit/thread/b1000", "pipe/thread/b1000", "seq/thread/b32",
               "seq/thread/b1000")
ALL_CASES = tuple(f"{t}/{r}" for t in TRANSPORTS for r in RUNTIMES) + BURST_CASES
ROUNDS = 200
BURST_CALLS = 2000  # calls per unit window of a burst case (N rounds of B calls)
# Gated figures, in report order; the reference holds a tolerance for each.
METRICS = ("instructions", "syscalls", "futex_wakes", "context_switches")
VDSO_CALLS = {"clock_gettime", "clock_getres", "gettimeofday", "time", "getcpu"}
FUTEX_WAKE_OPS = {1, 5, 10}  # FUTEX_WAKE, FUTEX_WAKE_OP, FUTEX_WAKE_BITSET
SKIP = 77
TIMEOUT_S = 300


class CountError(Exception):
    """A run that failed or output that cannot be read: exit 2."""


class NotPermitted(Exception):
    """The run-to-block schedule is not permitted here: exit 77."""


# --- running knit-count -----------------------------------------------------------------------

def _run(cmd, what):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError as e:
        raise CountError(f"{what}: cannot run {cmd[0]}: {e}") from None
    except subprocess.TimeoutExpired:
        raise CountError(f"{what}: no answer after {TIMEOUT_S} s: {' '.join(cmd)}") from None
    if p.returncode == SKIP:
        raise NotPermitted(p.stderr.strip())
    if p.returncode != 0:
        raise CountError(f"{what}: exit {p.returncode}: {' '.join(cmd)}\n{p.stderr.strip()}")
    return p


def _marks(lines, pattern):
    """Index of the line of each mark 1..3 in `lines` (the first line matching per mark)."""
    found = {}
    for i, line in enumerate(lines):
        m = pattern.search(line)
        if m and int(m.group(1)) not in found:
            found[int(m.group(1))] = i
    return found


SYSCALL_LINE = re.compile(r"^SYSCALL\[\d+,\d+\]\(\s*\d+\) sys_(\w+)\s?\(([^)]*)")
MARK_SYSCALL = re.compile(r"sys_access.*knit-count-mark-(\d+)")


def syscall_windows(log_text):
    """Counts by name of the system calls a valgrind --trace-syscalls log shows between marks
    1 and 2 and between marks 2 and 3 (one process's log)."""
    lines = log_text.splitlines()
    marks = _marks(lines, MARK_SYSCALL)
    if not all(k in marks for k in (1, 2, 3)):
        return None

    def window(a, b):
        c = collections.Counter()
        for line in lines[marks[a] + 1:marks[b]]:
            m = SYSCALL_LINE.match(line)
            if not m:
                continue  # the completion line of a blocking call, or valgrind's own text
            name, args = m.group(1), m.group(2).split(",")
            if name == "futex" and len(args) > 1:
                try:
                    op = int(args[1].strip(), 0) & 127
                except ValueError:
                    op = -1
                name = "futex_wake" if op in FUTEX_WAKE_OPS else "futex_wait" if op in (
                    0, 9) else f"futex_op{op}"
            c[name] += 1
        return c

    return window(1, 2), window(2, 3)


DUMP_TRIGGER = re.compile(r"^desc: Trigger: Client Request: knit-count-mark-(\d+)$", re.M)
DUMP_TOTAL = re.compile(r"^(?:totals|summary): (\d+)", re.M)


def instruction_windows(paths):
    """Instructions of one process in the windows 1-2 and 2-3, from its callgrind dumps."""
    by_mark = {}
    for path in paths:
        text = open(path, encoding="utf-8", errors="replace").read()
        trig, total = DUMP_TRIGGER.search(text), DUMP_TOTAL.search(text)
        if trig and total:
            by_mark[int(trig.group(1))] = int(total.group(1))
    if 2 not in by_mark or 3 not in by_mark:
        return None
    return by_mark[2], by_mark[3]


def per_round(w12, w23, rounds):
    return (w23 - w12) / rounds


def case_parts(case):
    """(transport, runtime, burst) of TRANSPORT/RUNTIME[/bB]."""
    parts = case.split("/")
    burst = int(parts[2][1:]) if len(parts) == 3 else 1
    return parts[0], parts[1], burst


def valid_case(case):
    parts = case.split("/")
    return (len(parts) in (2, 3) and parts[0] in TRANSPORTS and parts[1] in RUNTIMES
            and (len(parts) == 2 or (parts[2][:1] == "b" and parts[2][1:].isdigit()
                                     and 1 <= int(parts[2][1:]) <= 4096)))


def count_args(case, rounds):
    """knit-count's arguments for a case, and the calls in its unit window (the divisor)."""
    transport, runtime, burst = case_parts(case)
    args = ["--transport", transport, "--runtime", runtime]
    if burst == 1:
        return args + ["--rounds", str(rounds)], rounds
    n = max(1, BURST_CALLS // burst)
    return args + ["--rounds", str(n), "--burst", str(burst),
                   "--warmup", str(max(2, 4 * BURST_CALLS // burst))], n * burst


def measure_valgrind(binary, case, rounds, tmp):
    transport, runtime, _ = case_parts(case)
    args, rounds = count_args(case, rounds)
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise CountError("valgrind is missing (Debian package valgrind; ./run.sh setup)")
    d = tempfile.mkdtemp(dir=tmp)
    _run([valgrind, "--tool=callgrind", "--trace-children=yes", "--trace-syscalls=yes",
          f"--callgrind-out-file={d}/cg.%p", f"--log-file={d}/vg.%p", binary, *args],
         f"{case} under callgrind")
    logs = {os.path.basename(p)[3:]: open(p, encoding="utf-8", errors="replace").read()
            for p in glob.glob(f"{d}/vg.*")}
    parents = {pid: (re.search(r"Parent PID: (\d+)", text) or [None, None])[1]
               for pid, text in logs.items()}
    parts = {}
    calls = collections.Counter()
    for pid, text in logs.items():
        ins = instruction_windows(glob.glob(f"{d}/cg.{pid}.*"))
        sc = syscall_windows(text)
        if ins is None and sc is None:
            continue  # a process that never marked (none is expected)
        if ins is None or sc is None:
            raise CountError(f"{case}: process {pid} marked in one trace but not the other")
        # thread workers share the host's process; a worker process is the host's child
        side = "host+worker" if runtime == "thread" else \
            "worker" if parents[pid] in logs else "host"
        parts[side] = parts.get(side, 0.0) + per_round(*ins, rounds)
        for name in set(sc[0]) | set(sc[1]):
            calls[name] += sc[1][name] - sc[0][name]
    if runtime == "process" and set(parts) != {"host", "worker"}:
        raise CountError(f"{case}: expected a host and a worker process with marks, found "
                         f"{sorted(parts) or 'none'}")
    if not any(parts.values()):
        raise CountError(f"{case}: no marks in the callgrind output (is {binary} knit-count?)")
    by_name = {k: v / rounds for k, v in sorted(calls.items()) if v}
    syscalls = sum(v for k, v in by_name.items() if k not in VDSO_CALLS)
    return {
        "instructions": sum(parts.values()),
        "instructions_by_side": {k: v for k, v in parts.items() if v},
        "syscalls": syscalls,
        "futex_wakes": by_name.get("futex_wake", 0.0),
        "clock_reads": sum(v for k, v in by_name.items() if k in VDSO_CALLS),
        "syscalls_by_name": {k: v for k, v in by_name.items() if k not in VDSO_CALLS},
    }


def measure_native(binary, case, rounds):
    args, rounds = count_args(case, rounds)
    p = _run([binary, *args], f"{case} natively")
    marks = {}
    for line in p.stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            raise CountError(f"{case}: knit-count printed a line that is not JSON: {line!r}") \
                from None
        if "mark" in doc:
            marks[doc["mark"]] = doc
    if not all(k in marks for k in (1, 2, 3)):
        raise CountError(f"{case}: knit-count printed no marks 1-3:\n{p.stdout}")
    out = {}
    for side in ("host", "worker"):
        k = f"{side}_voluntary"
        out[side] = per_round(marks[2][k] - marks[1][k], marks[3][k] - marks[2][k], rounds)
    return {"context_switches": out["host"] + out["worker"], "context_switches_by_side": out}


def measure(binary, cases, rounds):
    if not os.access(binary, os.X_OK):
        raise CountError(f"{binary} is not an executable (build the knit-count target)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            r = measure_valgrind(binary, case, rounds, tmp)
            r.update(measure_native(binary, case, rounds))
            results[case] = r
    return results


# --- references -------------------------------------------------------------------------------

def judge(value, reference, tolerance_percent):
    """Verdict of one figure against its reference: 'ok', 'ABOVE' (fails) or 'below' (passes;
    the reference should be lowered). Returns (verdict, change in percent)."""
    if reference == 0:
        change = 0.0 if value == 0 else float("inf")
    else:
        change = (value - reference) / reference * 100.0
    if change > tolerance_percent:
        return "ABOVE", change
    if change < -tolerance_percent:
        return "below", change
    return "ok", change


def load_reference(path):
    try:
        ref = json.load(open(path, encoding="utf-8"))
        ref["tolerance_percent"], ref["cases"]  # noqa: B018 - presence check
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CountError(f"cannot read the reference {path}: {e}") from None
    return ref


def check(results, ref):
    """Rows (case, metric, value, reference, tolerance, verdict, change) and the failures."""
    rows, failures = [], []
    for case, r in results.items():
        want = ref["cases"].get(case)
        if want is None:
            failures.append(f"{case}: no reference (add it with `counts.py update`)")
            continue
        for metric in METRICS:
            tol = float(ref["tolerance_percent"][metric])
            verdict, change = judge(r[metric], float(want[metric]), tol)
            rows.append((case, metric, r[metric], float(want[metric]), tol, verdict, change))
            if verdict == "ABOVE":
                failures.append(f"{case}: {metric} {r[metric]:.2f} per call is "
                                f"{change:+.1f} % from the reference {want[metric]:.2f} "
                                f"(tolerance {tol:g} %)")
    return rows, failures


def print_rows(rows, results):
    print(f"{'case':16} {'figure':17} {'per call':>10} {'reference':>10} {'change':>8}  verdict")
    for case, metric, value, want, tol, verdict, change in rows:
        note = {"ok": "ok", "ABOVE": f"ABOVE (tolerance {tol:g} %)",
                "below": "ok, far below: lower the reference (counts.py update)"}[verdict]
        print(f"{case:16} {metric:17} {value:10.2f} {want:10.2f} {change:+7.1f}%  {note}")
    for case, r in results.items():
        calls = ", ".join(f"{k} {v:g}" for k, v in r["syscalls_by_name"].items())
        sides = ", ".join(f"{k} {v:.1f}" for k, v in r["instructions_by_side"].items())
        print(f"{case}: system calls per call: {calls}; clock reads (vDSO natively) "
              f"{r['clock_reads']:g}; instructions by side: {sides}")


def print_measured(results):
    print(f"{'case':16} " + " ".join(f"{m:>17}" for m in METRICS))
    for case, r in results.items():
        print(f"{case:16} " + " ".join(f"{r[m]:17.2f}" for m in METRICS))


def spread(runs):
    """Per case and metric: min, max and (max - min) / min in percent over repeated runs."""
    out = {}
    for case in runs[0]:
        out[case] = {}
        for m in METRICS:
            vals = [r[case][m] for r in runs]
            lo, hi = min(vals), max(vals)
            out[case][m] = {"min": lo, "max": hi,
                            "spread_percent": (hi - lo) / lo * 100.0 if lo else 0.0}
    return out


# --- the single-threaded codec count (knit-icount) --------------------------------------------

def icount(binary, ref_path):
    ref = json.load(open(ref_path, encoding="utf-8"))
    tol, status = float(ref["tolerance_percent"]), 0
    with tempfile.TemporaryDirectory() as tmp:
        for size, want in ref["instructions_per_round"].items():
            out = os.path.join(tmp, f"cg.{size}")
            _run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                  f"--callgrind-out-file={out}", binary, "--size", size, "--rounds", "1000"],
                 f"knit-icount --size {size}")
            m = re.search(r"^totals: *(\d+)", open(out, encoding="utf-8").read(), re.M)
            if not m:
                raise CountError(f"no totals in {out}")
            per = int(m.group(1)) / 1000.0
            verdict, change = judge(per, float(want), tol)
            note = {"ok": "ok", "ABOVE": "REGRESSION",
                    "below": f"ok (far below the reference: lower it in {ref_path})"}[verdict]
            print(f"icount: {size:>5} B: {per:8.1f} instructions per round, reference "
                  f"{float(want):8.1f} ({change:+.1f} %): {note}")
            status |= verdict == "ABOVE"
    return status


# --- command line -----------------------------------------------------------------------------

def fail(msg, status=2):
    print(f"counts: {msg}", file=sys.stderr)
    return status


def parse(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    cmd, opts = argv[0], {"reference": None, "cases": list(ALL_CASES), "repeat": 1,
                          "json": False, "rounds": ROUNDS, "binary": None}
    if cmd not in ("check", "measure", "update", "icount"):
        raise CountError(f"unknown command {cmd!r} (check, measure, update, icount; see --help)")
    it = iter(argv[1:])
    for a in it:
        if a in ("--reference", "--cases", "--repeat", "--rounds"):
            v = next(it, None)
            if v is None:
                raise CountError(f"{a} needs a value")
            if a == "--cases":
                opts["cases"] = [c for c in v.split(",") if c]
                bad = [c for c in opts["cases"] if not valid_case(c)]
                if bad or not opts["cases"]:
                    raise CountError(f"unknown case(s) {bad} (TRANSPORT/RUNTIME[/bB], B in "
                                     f"1-4096: {', '.join(ALL_CASES)})")
            elif a in ("--repeat", "--rounds"):
                if not v.isdigit() or int(v) < 1:
                    raise CountError(f"{a} takes a positive integer, not {v!r}")
                opts[a[2:]] = int(v)
            else:
                opts["reference"] = v
        elif a == "--json":
            opts["json"] = True
        elif a.startswith("-"):
            raise CountError(f"unknown option {a!r} (see --help)")
        elif opts["binary"] is None:
            opts["binary"] = a
        else:
            raise CountError(f"unexpected argument {a!r}")
    if opts["binary"] is None:
        raise CountError(f"{cmd} needs the path of the program (see --help)")
    return cmd, opts


def main(argv):
    try:
        cmd, o = parse(argv)
        if cmd == "icount":
            return icount(o["binary"], o["reference"] or ICOUNT_REFERENCE)
        ref_path = o["reference"] or REFERENCE
        ref = load_reference(ref_path) if cmd in ("check", "update") else None
        rounds = int(ref.get("rounds", o["rounds"])) if ref else o["rounds"]
        runs = [measure(o["binary"], o["cases"], rounds) for _ in range(o["repeat"])]
    except NotPermitted as e:
        return fail(f"skipped: {e}", SKIP)
    except CountError as e:
        return fail(str(e))
    results = runs[-1]
    if cmd == "measure":
        if o["json"]:
            print(json.dumps({"rounds": rounds, "runs": runs,
                              "spread": spread(runs) if len(runs) > 1 else None}, indent=1))
        else:
            print_measured(results)
            if len(runs) > 1:
                print(f"\nspread over {len(runs)} runs of the same binary (max-min)/min:")
                for case, ms in spread(runs).items():
                    print(f"{case:16} " + " ".join(
                        f"{m} {s['spread_percent']:.3f} %" for m, s in ms.items()))
        return 0
    if cmd == "update":
        # 5 decimals: a burst case's per-call figures are fractions (1 futex wake in 16 calls
        # is 0.0625; rounded to 0.06 it reads 4 % above its own reference, past the tolerance)
        for case, r in results.items():
            ref["cases"][case] = {m: round(r[m], 5) for m in METRICS}
            ref["cases"][case]["syscalls_by_name"] = {
                k: round(v, 5) for k, v in r["syscalls_by_name"].items()}
        with open(ref_path, "w", encoding="utf-8") as f:
            json.dump(ref, f, indent=2)
            f.write("\n")
        print_measured(results)
        print(f"counts: wrote {len(results)} cases into {ref_path}")
        return 0
    rows, failures = check(results, ref)
    if o["json"]:
        print(json.dumps({"verdict": "fail" if failures else "pass", "failures": failures,
                          "rounds": rounds, "results": results}, indent=1))
    else:
        print_rows(rows, results)
        for f in failures:
            print(f"counts: FAIL {f}", file=sys.stderr)
        print(f"counts: {'FAIL' if failures else 'pass'} ({len(rows)} figures of "
              f"{len(results)} cases; reference {os.path.relpath(ref_path, ROOT)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
