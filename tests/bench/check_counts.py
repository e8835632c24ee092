#!/usr/bin/python3
"""The exact-count gate's arithmetic and verdicts (harness/count/counts.py) with stand-ins for
valgrind and knit-count whose figures are known: 3000 instructions, 3 futex wakes and 2 waits
(5 system calls; the 3 clock reads are the vDSO's natively and left out), 2 context switches
per round trip, plus the marks' cost in every window (the same in each), which the N / 2N
difference must cancel, and a start-up before the first mark that must not count. Checks: the
figures come out exact for thread and process workers (host and worker processes summed); a
reference the figures match passes (0); one 2 % below them fails and names the case and figure
(1); one far above passes and asks to be lowered; a case without a reference fails; `update`
writes a reference that then passes; knit-count refusing the schedule is 77 (skipped); a
failing run and bad usage are 2; the codec count (icount) passes and fails the same way. The
real counts are checked by the bench/counts test."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
COUNTS = os.path.join(HERE, "..", "..", "harness", "count", "counts.py")

FAKE_VALGRIND = r'''#!/usr/bin/python3
import re, sys
args = sys.argv[1:]
opt = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
prog = [a for a in args if not a.startswith("--")]
if "--collect-atstart=no" in args:  # knit-icount
    size = prog[prog.index("--size") + 1] if "--size" in prog else args[args.index("--size") + 1]
    per = {"8": 650.2, "4096": 1738.2}[size]
    open(opt["--callgrind-out-file"], "w").write(f"totals: {int(per * 1000)}\n")
    sys.exit(0)
rt = args[args.index("--runtime") + 1]
# a burst round is B calls: every figure per round is B times the per-call one
n = int(args[args.index("--rounds") + 1]) * int(
    args[args.index("--burst") + 1] if "--burst" in args else 1)
procs = [(1000, 999, 3000)] if rt == "thread" else [(1000, 999, 2000), (1001, 1000, 1000)]
for pid, parent, ins in procs:
    cg = opt["--callgrind-out-file"].replace("%p", str(pid))
    for k, total in ((1, 777777), (2, 5000 + n * ins), (3, 5000 + 2 * n * ins)):
        open(f"{cg}.{k}", "w").write(
            f"desc: Trigger: Client Request: knit-count-mark-{k}\ntotals: {total}\n")
    lines = [f"==1== Parent PID: {parent}"]
    # per round trip: 3 wakes and 2 waits and 3 clock reads, split over the processes
    wakes, waits, clocks = (3, 2, 3) if rt == "thread" else \
        ((2, 1, 2) if pid == 1000 else (1, 1, 1))
    WAKE = "SYSCALL[1,1](202) sys_futex ( 0x10, 1, 1, 0x0, 0x0 )[sync] --> Success(0x1)"
    WAIT = ["SYSCALL[1,2](202) sys_futex ( 0x10, 0, 7, 0x0, 0x0 ) --> [async] ...",
            "SYSCALL[1,2](202) ... [async] --> Success(0x0)"]
    CLOCK = "SYSCALL[1,1](228) sys_clock_gettime( 1, 0x20 )[sync] --> Success(0x0)"
    def window(rounds, overhead):
        out = ["SYSCALL[1,1](1) sys_write ( 1, 0x1, 10 ) --> Success(0xa)"] * overhead
        for _ in range(rounds):
            out += [WAKE] * wakes + WAIT * waits + [CLOCK] * clocks
        return out
    for k, body in ((1, ["SYSCALL[1,1](12) sys_brk ( 0x0 ) --> Success(0x1)"] * 40),
                    (2, window(n, 4)), (3, window(2 * n, 4))):
        lines += body
        lines.append(f"SYSCALL[1,2](21) sys_access ( 0x30(/knit-count-mark-{k}), 0 )[sync] "
                     "--> Failure(0x2)")
    lines += ["SYSCALL[1,1](231) sys_exit_group ( 0 )"]
    open(opt["--log-file"].replace("%p", str(pid)), "w").write("\n".join(lines) + "\n")
'''

FAKE_COUNT = r'''#!/usr/bin/python3
import json, os, sys
if os.environ.get("FAKE_COUNT_EXIT"):
    print("knit-count: cannot run under SCHED_FIFO", file=sys.stderr)
    sys.exit(int(os.environ["FAKE_COUNT_EXIT"]))
args = sys.argv[1:]
n = int(args[args.index("--rounds") + 1]) * int(
    args[args.index("--burst") + 1] if "--burst" in args else 1)
print(json.dumps({"transport": "x", "runtime": "y"}))
for k, (h, w) in ((1, (200, 190)), (2, (203 + n, 190 + n)), (3, (206 + 3 * n, 190 + 3 * n))):
    print(json.dumps({"mark": k, "rounds": 0, "host_voluntary": h, "host_involuntary": 9,
                      "worker_voluntary": w, "worker_involuntary": 0}))
'''

problems = []


def expect(what, got, want, needle=None):
    rc, out = got
    if rc != want or (needle and needle not in out):
        problems.append(f"{what}: exit {rc} (want {want}"
                        f"{', output with ' + repr(needle) if needle else ''}); output:\n{out}")


def main():
    with tempfile.TemporaryDirectory() as d:
        bindir = os.path.join(d, "bin")
        os.makedirs(bindir)
        for name, text in (("valgrind", FAKE_VALGRIND), ("knit-count", FAKE_COUNT),
                           ("knit-icount", "#!/bin/sh\nexit 0\n")):
            path = os.path.join(bindir, name)
            with open(path, "w") as f:
                f.write(text.replace("#!/usr/bin/python3", "#!" + sys.executable))
            os.chmod(path, 0o755)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        prog = os.path.join(bindir, "knit-count")
        cases = "knit/thread,pipe/process"

        def counts(*args, extra_env=None):
            p = subprocess.run([sys.executable, COUNTS, *args], capture_output=True, text=True,
                               env=dict(env, **(extra_env or {})))
            return p.returncode, p.stdout + p.stderr

        rc, out = counts("measure", prog, "--cases", cases, "--json")
        try:
            res = json.loads(out)["runs"][0]
            want = {"instructions": 3000.0, "syscalls": 5.0, "futex_wakes": 3.0,
                    "context_switches": 2.0}
            for case in ("knit/thread", "pipe/process"):
                got = {k: round(res[case][k], 6) for k in want}
                if got != want:
                    problems.append(f"measure {case}: {got}, want {want}")
            # a burst case is counted per call: the same figures
            rc2, out2 = counts("measure", prog, "--cases", "knit/thread/b1000", "--json")
            burst = json.loads(out2)["runs"][0]["knit/thread/b1000"]
            got = {k: round(burst[k], 6) for k in want}
            if got != want:
                problems.append(f"measure knit/thread/b1000: {got}, want {want}")
            expect("a burst beyond 4096", counts("measure", prog, "--cases", "knit/thread/b5000"),
                   2, "unknown case")
            sides = res["pipe/process"]["instructions_by_side"]
            if sides != {"host": 2000.0, "worker": 1000.0}:
                problems.append(f"process sides: {sides}")
            if res["knit/thread"]["clock_reads"] != 3.0:
                problems.append(f"clock reads: {res['knit/thread']['clock_reads']}")
        except (ValueError, KeyError) as e:
            problems.append(f"measure --json ({e}): exit {rc}\n{out}")

        def reference(**changes):
            ref = {"rounds": 50, "tolerance_percent": {m: 2 for m in (
                "instructions", "syscalls", "futex_wakes", "context_switches")}, "cases": {
                c: {"instructions": 3000.0, "syscalls": 5.0, "futex_wakes": 3.0,
                    "context_switches": 2.0} for c in ("knit/thread", "pipe/process")}}
            for key, value in changes.items():
                case, metric = key.split("__")
                ref["cases"][case.replace("_", "/")][metric] = value
            path = os.path.join(d, f"ref{len(os.listdir(d))}.json")
            json.dump(ref, open(path, "w"))
            return path

        expect("matching reference", counts("check", prog, "--cases", cases, "--reference",
                                            reference()), 0, "counts: pass")
        expect("2 % more instructions than the reference",
               counts("check", prog, "--cases", cases, "--reference",
                      reference(knit_thread__instructions=2940.0)), 1,
               "knit/thread: instructions 3000.00")
        expect("one futex wake more", counts("check", prog, "--cases", cases, "--reference",
                                             reference(pipe_process__futex_wakes=2.0)), 1,
               "pipe/process: futex_wakes")
        expect("far below the reference", counts("check", prog, "--cases", cases,
                                                 "--reference",
                                                 reference(knit_thread__instructions=3300.0)),
               0, "lower the reference")
        expect("a case without a reference",
               counts("check", prog, "--cases", "knit/thread,tcp/thread", "--reference",
                      reference()), 1, "tcp/thread: no reference")
        upd = reference(knit_thread__instructions=1.0)
        expect("update", counts("update", prog, "--cases", cases, "--reference", upd), 0,
               "wrote 2 cases")
        written = json.load(open(upd))
        if written["cases"]["knit/thread"]["instructions"] != 3000.0 \
                or written["tolerance_percent"]["instructions"] != 2:
            problems.append(f"update wrote {written}")
        expect("check after update", counts("check", prog, "--cases", cases, "--reference",
                                            upd), 0)
        expect("schedule not permitted", counts("check", prog, "--cases", cases, "--reference",
                                                reference(), extra_env={"FAKE_COUNT_EXIT": "77"}),
               77, "skipped")
        expect("knit-count failing", counts("measure", prog, "--cases", "knit/thread",
                                            extra_env={"FAKE_COUNT_EXIT": "1"}), 2, "exit 1")
        expect("unknown case", counts("measure", prog, "--cases", "knit/fibre"), 2, "unknown")
        expect("unknown command", counts("frobnicate", prog), 2, "unknown command")
        expect("not a program", counts("measure", os.path.join(d, "nothing")), 2,
               "not an executable")

        icount = os.path.join(bindir, "knit-icount")
        iref = os.path.join(d, "icount.json")
        json.dump({"tolerance_percent": 8, "instructions_per_round": {"8": 650.2,
                                                                      "4096": 1738.2}},
                  open(iref, "w"))
        expect("icount at the reference", counts("icount", icount, "--reference", iref), 0,
               "ok")
        json.dump({"tolerance_percent": 8, "instructions_per_round": {"8": 590.0,
                                                                      "4096": 1738.2}},
                  open(iref, "w"))
        expect("icount above the reference", counts("icount", icount, "--reference", iref), 1,
               "REGRESSION")
    for p in problems:
        print("check_counts: " + p, file=sys.stderr)
    print(f"check_counts: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
