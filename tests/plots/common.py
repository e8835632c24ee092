"""What the chart and report tests share: where things are, and running a program of plots/."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLOTS = os.path.join(ROOT, "plots")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-matplotlib
# A trimmed real full run (knit-bench/1, 0187f28) and a trimmed real --quick run (knit-bench/2):
# tests/plots/README.md says how they were cut.
FULL = os.path.join(HERE, "full-run.json")
QUICK = os.path.join(HERE, "quick-run.json")
TRANSPORTS = ("knit", "pipe", "unix", "seqpacket", "tcp", "seq")

sys.path.insert(0, PLOTS)


def cases(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return doc["cases"] if isinstance(doc.get("cases"), list) else doc["benchmarks"]


def transports(path, scenario):
    """The transports of a fixture's cases of one scenario (what a chart must show)."""
    return {c["transport"] for c in cases(path) if c["scenario"] == scenario} & set(TRANSPORTS)


def run(program, *args, env=None, python=(PYTHON,)):
    """Run plots/<program> with args; returns (exit status, stdout, stderr)."""
    p = subprocess.run([*python, os.path.join(PLOTS, program), *args], capture_output=True,
                       text=True, env=env)
    return p.returncode, p.stdout, p.stderr


class Checks:
    """Collects failed expectations; `done()` prints them and gives the exit status."""

    def __init__(self, name):
        self.name, self.failed, self.passed = name, [], 0

    def expect(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"FAIL: {what}", file=sys.stderr)
        return ok

    def done(self):
        print(f"{self.name}: {self.passed} checks passed, {len(self.failed)} failed")
        return 1 if self.failed else 0
