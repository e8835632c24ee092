#!/usr/bin/python3
"""External agreement check: knit-bench's pipe and tcp floors against perf and sockperf.

usage: external_check.py [--rounds N] [--tolerance PCT] [--knit-bench PATH]
                         [--mechanisms pipe,tcp[,tcp-poll]] [--perf-loops N]
                         [--sockperf-time S] [--json]

A documented check that a person runs (not a timed test). In one sitting it interleaves, over
N rounds, an external tool and knit-bench's own floor for the same mechanism, both measuring
a round trip between two threads pinned to CPUs 0 and 1 (the floor's placement):

  pipe      `perf bench sched pipe -T` (Debian linux-perf): two threads echo a 4-byte int
            over a pair of blocking pipes; it prints the run's wall time divided by its round
            trips (usecs/op), a mean. Its two threads are pinned, one to CPU 0 and one to
            CPU 1, as soon as they exist (perf has no option for it; a run whose threads made
            over 2 % of their round trips unpinned is redone). Each round makes 5 runs of as
            many round trips as one knit-bench repetition made (at least 3000) and takes
            their median.
            knit-bench: `floor/pipe` (8 bytes), by the same statistic: the median of its 5
            repetitions' wall time per round trip (`repetition_ns_per_op`). Not by its p50:
            perf has no percentiles, and where wake-ups are slow and bimodal the p50 and the
            mean differ by up to 2x (the p50 is printed beside, for reference). The median
            of 5 windows, on both sides, keeps a burst of foreign load in one window out.
  tcp       `sockperf ping-pong --tcp` (Debian sockperf) against a `sockperf server` on
            127.0.0.1: client on CPU 0, server on CPU 1 (taskset), 14-byte messages
            (sockperf's smallest), blocking sockets (recvfrom; the floor blocks in read),
            Nagle off (sockperf's default; the floor sets TCP_NODELAY), --full-rtt (the
            whole round trip; without it sockperf prints half), --no-rdtsc (CLOCK_MONOTONIC,
            the floor's clock). knit-bench: `floor/tcp`, compared by the median.
  tcp-poll  (not by default) the same with --nonblocked on both sockperf sides (they
            busy-poll recvfrom) against knit-bench's `floor/tcp-poll`: no wake-ups, so the
            TCP path alone.

Each round runs the pair back to back, in alternating order (A B, then B A) so a drift of
the machine does not favour one side. Per mechanism the report gives the external figure and
knit-bench's figure (ns per round trip: median over the rounds, with min-max), their ratio
(the median of the rounds' own ratios: a pair shares the machine's state of the moment,
which drifts between rounds) and whether it is within the tolerance. Exit status: 0 every
mechanism agrees within the tolerance (default 10 %), 1 one does not, 2 bad input or a
missing tool. --json prints one JSON document instead of the table.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLER_CPU, PEER_CPU = 0, 1  # the floor's placement (harness/bench/floor.c)
TOOLS = {"perf": "linux-perf", "sockperf": "sockperf", "taskset": "util-linux"}
PERF_RUNS = 5  # perf runs per round, as knit-bench's repetitions per case
# mechanism: (the external tool, the statistic both sides are compared by)
MECHS = {
    "pipe": ("perf bench sched pipe -T", "ns_per_op"),
    "tcp": ("sockperf ping-pong --tcp", "p50"),
    "tcp-poll": ("sockperf ping-pong --tcp --nonblocked", "p50"),
}


def fail(msg):
    print(f"external_check: {msg}", file=sys.stderr)
    sys.exit(2)


def note(msg):
    print(f"external_check: {msg}", file=sys.stderr, flush=True)


# --- the external tools ----------------------------------------------------------------------


def pin_perf_workers(p):
    """Pin the two worker threads of a starting `perf bench sched pipe -T` (pid p.pid) as
    soon as they exist: the first, which reads first, to the peer's CPU, the other to the
    caller's. Returns the round trips they had made unpinned, or None when perf ended first.
    Its main thread (tid == pid) only waits for them."""
    pinned = {}
    while len(pinned) < 2 and p.poll() is None:
        try:
            workers = sorted(int(t) for t in os.listdir(f"/proc/{p.pid}/task") if int(t) != p.pid)
            for tid, cpu in zip(workers, (PEER_CPU, CALLER_CPU)):
                if tid not in pinned:
                    os.sched_setaffinity(tid, {cpu})
                    # one voluntary switch per round trip: each blocks once in read
                    status = Path(f"/proc/{p.pid}/task/{tid}/status").read_text()
                    pinned[tid] = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status,
                                                re.M).group(1))
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.0002)
    return max(pinned.values()) if len(pinned) == 2 else None


def perf_pipe_once(loops):
    """`perf bench sched pipe -T`, its two threads pinned to the floor's CPUs: the run's wall
    time per round trip in ns. A run whose threads made more than 2 % of their round trips
    before both were pinned is run again (at most 4 times): those bias its mean by less."""
    cmd = ["perf", "bench", "sched", "pipe", "-T", "-l", str(loops)]
    for _ in range(5):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        unpinned = pin_perf_workers(p)
        out, err = p.communicate()
        if p.returncode != 0:
            fail(f"perf bench sched pipe failed (exit {p.returncode}): {err.strip()}")
        if unpinned is not None and unpinned <= loops // 50:
            break
    else:
        fail("perf's threads ran unpinned too long 5 times in a row: raise --perf-loops")
    m = re.search(r"([\d.]+)\s+usecs/op", out)
    if not m:
        fail(f"no 'usecs/op' in perf's output:\n{out}")
    return float(m.group(1)) * 1000


def perf_pipe(loops):
    """PERF_RUNS runs: the median of their wall times per round trip."""
    return {"ns_per_op": statistics.median(perf_pipe_once(loops) for _ in range(PERF_RUNS))}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sockperf_server(port, extra):
    """A `sockperf server` on 127.0.0.1:port pinned to the peer's CPU, once it listens."""
    cmd = ["taskset", "-c", str(PEER_CPU), "sockperf", "server", "--tcp", "-i", "127.0.0.1",
           "-p", str(port), *extra]
    srv = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(100):  # at most 5 s
        if srv.poll() is not None:
            fail(f"sockperf server exited: {srv.stderr.read().strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return srv
        except OSError:
            time.sleep(0.05)
    srv.kill()
    fail(f"sockperf server did not listen on 127.0.0.1:{port}")


def sockperf_tcp(seconds, extra):
    """`sockperf ping-pong` over TCP loopback: median and mean ns per round trip. A fresh
    server per run, so a busy-polling one does not outlive its run."""
    port = free_port()
    srv = sockperf_server(port, extra)
    cmd = ["taskset", "-c", str(CALLER_CPU), "sockperf", "ping-pong", "--tcp", "-i",
           "127.0.0.1", "-p", str(port), "-m", "14", "-t", str(seconds), "--full-rtt",
           "--no-rdtsc", *extra]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        srv.kill()
        srv.wait()
    if p.returncode != 0:
        fail(f"sockperf ping-pong failed (exit {p.returncode}): {p.stderr.strip()}")
    out = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout)  # it colours its summary lines
    p50 = re.search(r"percentile 50\.000 =\s*([\d.]+)", out)
    avg = re.search(r"avg-rtt=([\d.]+)", out)  # "avg-latency" would be half a round trip
    if not (p50 and avg):
        fail(f"no round-trip figures in sockperf's output:\n{out}")
    return {"p50": float(p50.group(1)) * 1000, "mean": float(avg.group(1)) * 1000}


def external(mech, a, knit):
    """The external figure for `mech`; `knit` is knit-bench's latest result for it."""
    if mech == "pipe":
        return perf_pipe(a.perf_loops or max(3000, knit["ops_per_rep"]))
    return sockperf_tcp(a.sockperf_time, ["--nonblocked"] if mech == "tcp-poll" else [])


# --- knit-bench --------------------------------------------------------------------------------


def knit_floor(binary, mech):
    """knit-bench's floor/<mech> case: the median of its repetitions' wall times per round
    trip, its p50 and its mean, in ns. Retried twice, as the binary may be in the middle of a
    rebuild; bad options (exit 2) are not retried."""
    cmd = [str(binary), "--scenario", "floor", "--transport", mech, "--json"]
    for _ in range(3):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if p.returncode in (0, 2):
                break
            why = f"exit {p.returncode}: {p.stderr.strip()}"
        except OSError as e:
            why = str(e)
        time.sleep(2)
    else:
        fail(f"knit-bench failed ({why}): {' '.join(cmd)}")
    if p.returncode != 0:
        fail(f"knit-bench refused its options: {' '.join(cmd)}\n{p.stderr.strip()}")
    doc = json.loads(p.stdout)
    if doc.get("schema") != "knit-bench/2":
        fail(f"{binary} writes {doc.get('schema')}; this check reads knit-bench/2 (rebuild it)")
    cases = [c for c in doc["cases"] if c["name"].startswith(f"floor/{mech}/")]
    if len(cases) != 1 or cases[0]["errors"] or not cases[0]["latency_ns"]:
        fail(f"knit-bench gave no clean floor/{mech} case")
    c = cases[0]
    return {"ns_per_op": statistics.median(c["repetition_ns_per_op"]),
            "p50": c["latency_ns"]["p50"], "mean": c["latency_ns"]["mean"],
            "ops_per_rep": c["iterations"] // c["repetitions"]}


# --- the check ---------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="external_check.py", description=__doc__.split("\n\n")[0],
        epilog="What each side measures: the text at the top of harness/external_check.py.")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--tolerance", type=float, default=10.0,
                    help="agreement tolerance in percent (default 10)")
    ap.add_argument("--knit-bench", type=Path,
                    default=ROOT / "build" / "release" / "harness" / "knit-bench",
                    help="knit-bench binary (default: build/release/harness/knit-bench)")
    ap.add_argument("--mechanisms", default="pipe,tcp",
                    help="comma-separated: pipe, tcp, tcp-poll (default pipe,tcp)")
    ap.add_argument("--perf-loops", type=int, default=0,
                    help="round trips per perf run (default: as many as one repetition of "
                         "knit-bench's floor/pipe made in the same round, at least 3000)")
    ap.add_argument("--sockperf-time", type=int, default=3,
                    help="seconds per sockperf run; it keeps the last S - 1.2 (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        sys.exit(0 if e.code == 0 else 2)
    if a.rounds < 1 or a.tolerance <= 0 or a.sockperf_time < 2 or a.perf_loops < 0 \
            or 0 < a.perf_loops < 1000:
        fail("need --rounds >= 1, --tolerance > 0, --sockperf-time >= 2 and --perf-loops 0 "
             "(as knit-bench) or >= 1000")
    a.mechanisms = a.mechanisms.split(",")
    unknown = [m for m in a.mechanisms if m not in MECHS]
    if unknown:
        fail(f"unknown mechanism {', '.join(unknown)} (valid: {', '.join(MECHS)})")
    return a


def check_environment(a):
    for tool, package in TOOLS.items():
        if not shutil.which(tool):
            fail(f"'{tool}' not found: install Debian's {package} "
                 f"(apt-get install -y {package})")
    if not os.access(a.knit_bench, os.X_OK):
        fail(f"no knit-bench at {a.knit_bench} (build it with ./run.sh build, or --knit-bench)")
    if not {CALLER_CPU, PEER_CPU} <= os.sched_getaffinity(0):
        fail(f"CPUs {CALLER_CPU} and {PEER_CPU} must both be usable (the floor pins to them)")


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": values}


def summary(mech, sides, tolerance):
    tool, stat = MECHS[mech]
    ext = [r[stat] for r in sides["ext"]]
    knit = [r[stat] for r in sides["knit"]]
    # Each round's two figures were taken back to back: their ratio cancels the machine's
    # drift between rounds, which the ratio of the two medians would not.
    ratio = spread([k / e for k, e in zip(knit, ext)])
    return {"tool": tool, "statistic": stat, "external_ns": spread(ext), "knit_ns": spread(knit),
            "knit_p50_ns": spread([r["p50"] for r in sides["knit"]]),
            "ratio": ratio, "agree": abs(ratio["median"] - 1) * 100 <= tolerance}


def fmt(figures):
    return ", ".join(f"{k} {figures[k] / 1000:.1f} us" for k in ("ns_per_op", "p50", "mean")
                     if k in figures)


def cell(s, scale=1000, digits=1):
    return (f"{s['median'] / scale:.{digits}f} "
            f"({s['min'] / scale:.{digits}f}-{s['max'] / scale:.{digits}f})")


def print_table(doc):
    rows = [("mechanism", "statistic", "external us", "knit-bench us", "knit/ext", "verdict")]
    for mech, m in doc["mechanisms"].items():
        rows.append((mech, m["statistic"], cell(m["external_ns"]), cell(m["knit_ns"]),
                     cell(m["ratio"], 1, 2), "agree" if m["agree"] else "DISAGREE"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"medians over {doc['rounds']} interleaved rounds (min-max), per round trip; "
          "knit/ext: the median of each round's ratio")
    for mech, m in doc["mechanisms"].items():
        p50 = "" if m["statistic"] == "p50" else f" (its p50: {cell(m['knit_p50_ns'])})"
        print(f"  {mech}: {m['tool']} against knit-bench floor/{mech}{p50}")
    print(f"tolerance {doc['tolerance_pct']:g} %: {'agree' if doc['agree'] else 'disagree'}")


def main(argv):
    a = parse_args(argv)
    check_environment(a)
    res = {m: {"ext": [], "knit": []} for m in a.mechanisms}
    for r in range(a.rounds):
        for mech in a.mechanisms:
            sides = res[mech]
            order = [("knit", lambda: knit_floor(a.knit_bench, mech)),
                     ("ext", lambda: external(mech, a, sides["knit"][-1]))]
            for side, measure in order if r % 2 == 0 else reversed(order):
                sides[side].append(measure())
            note(f"round {r + 1}/{a.rounds} {mech}: external {fmt(sides['ext'][-1])}; "
                 f"knit-bench {fmt(sides['knit'][-1])}")
    doc = {"rounds": a.rounds, "tolerance_pct": a.tolerance, "perf_loops": a.perf_loops,
           "sockperf_time_s": a.sockperf_time,
           "mechanisms": {m: summary(m, sides, a.tolerance) for m, sides in res.items()}}
    doc["agree"] = all(m["agree"] for m in doc["mechanisms"].values())
    if a.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)
    return 0 if doc["agree"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
