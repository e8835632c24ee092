#!/usr/bin/python3
"""Every chart of plots/ drawn from the committed fixtures, checked.

- plots.py draws every chart of a full run into valid, non-empty SVG and PNG files whose
  footer names the run's machine, date and commit;
- each chart's series are the fixture's transports: their names are in the SVG's text and
  their colours in the PNG, and a transport the fixture lacks appears in neither;
- the balancer chart names the fixture's balancers and shapes; the forest plot (two runs) and
  the history (a folder of runs) are drawn with the transports they share;
- rendering twice gives byte-identical files (no date, no random id);
- a knit-bench/2 result (`cases`), a result with optional fields missing or null and one
  without cases are drawn or skipped with messages, never a traceback; a panel without data
  says so in the chart; a file that is not a result exits 2;
- without gnuplot on PATH, or without matplotlib, plots.py exits 2 and names the package.
"""
import copy
import json
import os
import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET

from common import FULL, QUICK, PYTHON, TRANSPORTS, Checks, cases, run, transports

import knitdata  # noqa: E402 (plots/ is on sys.path through common)
import matplotlib.image  # noqa: E402

GNUPLOT_CHARTS = {"latency": "latency", "spectrum": "latency", "batch": "batch",
                  "payload": "payload", "startup": "startup", "idle": "idle",
                  "contended": "contended"}
RUN_CHARTS = tuple(GNUPLOT_CHARTS) + ("balancers",)


def svg_words(path):
    """The words of every text element of an SVG (parsing it: it must be valid XML)."""
    root = ET.parse(path).getroot()
    text = " ".join(t for el in root.iter() if el.tag.rsplit("}", 1)[-1] in ("text", "tspan")
                    for t in [el.text or ""])
    return set(re.split(r"[^A-Za-z0-9.-]+", text)), text, root


def png_colours(path):
    """How many pixels of a PNG have each exact RGB colour ('#RRGGBB')."""
    pixels = matplotlib.image.imread(path)
    rgb = (pixels[:, :, :3] * 255).round().astype("uint8").reshape(-1, 3)
    counts = {}
    for p in map(tuple, rgb.tolist()):
        counts[p] = counts.get(p, 0) + 1
    return {"#%02X%02X%02X" % p: n for p, n in counts.items()}


def check_files(c, folder, names, run_label_parts):
    for name in names:
        for fmt in ("svg", "png"):
            path = os.path.join(folder, f"{name}.{fmt}")
            if not c.expect(os.path.isfile(path) and os.path.getsize(path) > 2000,
                            f"{name}.{fmt} exists and is not empty"):
                continue
            if fmt == "png":
                with open(path, "rb") as f:
                    c.expect(f.read(8) == b"\x89PNG\r\n\x1a\n", f"{name}.png is a PNG")
                shape = matplotlib.image.imread(path).shape
                c.expect(shape[0] > 200 and shape[1] > 400, f"{name}.png has a size: {shape}")
            else:
                try:
                    _, text, root = svg_words(path)
                except ET.ParseError as e:
                    c.expect(False, f"{name}.svg is valid XML: {e}")
                    continue
                c.expect(root.tag.endswith("svg"), f"{name}.svg has an <svg> root")
                for part in run_label_parts:
                    c.expect(part in text, f"{name}.svg names {part!r} (machine, date, commit)")


def check_series(c, folder, chart, want, least=300):
    """The chart shows exactly the transports `want`: their names in the SVG, and in the PNG
    at least `least` pixels of their colour (a key's sample alone has fewer than 250)."""
    words, _, _ = svg_words(os.path.join(folder, f"{chart}.svg"))
    colours = png_colours(os.path.join(folder, f"{chart}.png"))
    for t in TRANSPORTS:
        colour, n = knitdata.COLOURS[t], colours.get(knitdata.COLOURS[t], 0)
        if t in want:
            c.expect(t in words, f"{chart}.svg names transport {t}")
            c.expect(n >= least, f"{chart}.png draws {t} in its colour {colour} ({n} pixels)")
        else:
            c.expect(t not in words, f"{chart}.svg does not name {t} (not in the data)")
            c.expect(n == 0, f"{chart}.png has no {t} colour {colour} ({n} pixels)")


def write(path, doc):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    return path


def damaged(doc):
    """The document with optional fields missing, null or of another type, and new fields."""
    doc = copy.deepcopy(doc)
    doc["context"] = {"host": "x"}
    doc["unknown_top_level"] = {"a": 1}
    for i, c in enumerate(doc["benchmarks"]):
        c["some_new_field"] = [1, "two"]
        if i % 3 == 0:
            c.pop("latency_ns", None)
        if i % 3 == 1:
            c["latency_ns"] = {"p50": None, "p99": "n/a", "p999": float("nan")}
        if i % 4 == 0:
            for k in ("floor_ns", "floor_mechanism", "floor_ratio", "calls_per_s"):
                c[k] = None
        if i % 5 == 0:
            c["reference"] = {"none": "why not"}
        if i % 7 == 0:
            for k in ("repetition_p50_ns", "workers", "batch", "payload_bytes", "shape"):
                c.pop(k, None)
    return doc


def main():
    c = Checks("plots/charts")
    with open(FULL, encoding="utf-8") as f:
        full = json.load(f)
    ctx = full["context"]
    label = [ctx["host"], ctx["date"][:10], ctx["git_commit"][:7]]
    with tempfile.TemporaryDirectory(prefix="knit-charts-test-") as tmp:
        runs = os.path.join(tmp, "runs")
        os.makedirs(runs)
        for src in (FULL, QUICK):
            shutil.copy(src, runs)

        # every chart of a full run, and the history of two saved runs
        a = os.path.join(tmp, "a")
        rc, out, err = run("plots.py", FULL, "--out", a, "--runs", runs)
        c.expect(rc == 0, f"plots.py draws the fixture (exit {rc}): {err}")
        c.expect("Traceback" not in err, "no traceback")
        check_files(c, a, RUN_CHARTS, label)
        for chart, scenario in GNUPLOT_CHARTS.items():
            check_series(c, a, chart, transports(FULL, scenario))
        words, _, _ = svg_words(os.path.join(a, "balancers.svg"))
        for case in cases(FULL):
            if case["scenario"] == "balance":
                c.expect(case["balancer"] in words, f"balancers.svg names {case['balancer']}")
                c.expect(case["shape"] in words, f"balancers.svg names shape {case['shape']}")
        c.expect("best" in words, "balancers.svg names the best balancer per shape")
        check_files(c, runs, ("history",), [ctx["date"][:10], ctx["git_commit"][:7]])
        c.expect(not os.path.exists(os.path.join(a, "compare.svg")),
                 "no comparison chart from one result")

        # two runs: the run charts of NEW plus the forest plot
        b = os.path.join(tmp, "b")
        rc, out, err = run("plots.py", QUICK, FULL, "--out", b, "--runs", runs)
        c.expect(rc == 0, f"plots.py BASE NEW (exit {rc}): {err}")
        check_files(c, b, ("compare",), label)
        shared = {x["name"] for x in cases(QUICK)} & {x["name"] for x in cases(FULL)}
        check_series(c, b, "compare", {x["transport"] for x in cases(FULL)
                                      if x["name"] in shared} & set(TRANSPORTS), least=20)

        # deterministic: the same input gives the same bytes
        a2, runs2 = os.path.join(tmp, "a2"), os.path.join(tmp, "runs2")
        shutil.copytree(runs, runs2, ignore=shutil.ignore_patterns("history.*"))
        rc, _, err = run("plots.py", FULL, "--out", a2, "--runs", runs2)
        c.expect(rc == 0, f"second rendering (exit {rc}): {err}")
        for name in sorted(os.listdir(a)):
            with open(os.path.join(a, name), "rb") as x, open(os.path.join(a2, name), "rb") as y:
                c.expect(x.read() == y.read(), f"{name} is byte-identical when drawn again")
        for fmt in ("svg", "png"):
            with open(os.path.join(runs, f"history.{fmt}"), "rb") as x, \
                    open(os.path.join(runs2, f"history.{fmt}"), "rb") as y:
                c.expect(x.read() == y.read(), f"history.{fmt} is byte-identical")
        for name in os.listdir(a):
            if name.endswith(".svg"):
                with open(os.path.join(a, name), encoding="utf-8") as f:
                    text = f.read()
                c.expect(tmp not in text and "<dc:date>" not in text,
                         f"{name} holds no temporary path and no date")

        # knit-bench/2 (cases[] and Google Benchmark entries in benchmarks[])
        v2 = os.path.join(tmp, "v2")
        rc, _, err = run("plots.py", QUICK, "--out", v2, "--runs", os.path.join(tmp, "none"))
        c.expect(rc == 0 and "Traceback" not in err, f"a knit-bench/2 result is drawn: {err}")
        check_series(c, v2, "latency", transports(QUICK, "latency"))

        # optional fields missing, null, or of another type; unknown fields; no cases at all
        for what, doc in (("damaged", damaged(full)),
                          ("empty", {"schema": "knit-bench/2", "context": {}, "cases": []})):
            path = write(os.path.join(tmp, f"{what}.json"), doc)
            rc, _, err = run("plots.py", path, "--out", os.path.join(tmp, what),
                             "--runs", os.path.join(tmp, "none"))
            c.expect(rc == 0 and "Traceback" not in err,
                     f"a {what} result is drawn or skipped without a traceback (exit {rc}): {err}")
        c.expect("skipped" in err, "an empty result says which charts it skipped")

        # a panel without data says so
        thread_only = copy.deepcopy(full)
        thread_only["benchmarks"] = [x for x in full["benchmarks"] if x["runtime"] == "thread"]
        path = write(os.path.join(tmp, "thread.json"), thread_only)
        rc, _, err = run("plots.py", path, "--out", os.path.join(tmp, "thread"),
                         "--runs", os.path.join(tmp, "none"), "--format", "svg")
        _, text, _ = svg_words(os.path.join(tmp, "thread", "spectrum.svg"))
        c.expect("no process latency cases in this result" in text,
                 "the spectrum says its process panel has no data")
        c.expect(not os.path.exists(os.path.join(tmp, "thread", "spectrum.png")),
                 "--format svg writes no PNG")

        # bad input and missing tools: exit 2 with a message a user can act on
        rc, _, err = run("plots.py", write(os.path.join(tmp, "x.json"), {"a": 1}),
                         "--out", os.path.join(tmp, "x"))
        c.expect(rc == 2 and "not a knit-bench results document" in err, f"not a result: {err}")
        rc, _, err = run("plots.py", os.path.join(tmp, "missing.json"))
        c.expect(rc == 2 and "cannot read" in err, f"a missing file: {err}")
        rc, _, err = run("plots.py", FULL, "--out", os.path.join(tmp, "ng"),
                         env=dict(os.environ, PATH=os.path.join(tmp, "empty-bin")))
        c.expect(rc == 2 and "gnuplot" in err and "apt-get install gnuplot-nox" in err,
                 f"no gnuplot: exit 2 naming the package (exit {rc}): {err}")
        # python -c CODE plots.py ARGS: CODE hides matplotlib, then runs plots.py as a program
        no_mpl = ("import runpy, sys; sys.modules['matplotlib'] = None; "
                  "path = sys.argv.pop(1); sys.argv[0] = path; "
                  "sys.path.insert(0, path.rsplit('/', 1)[0]); "
                  "runpy.run_path(path, run_name='__main__')")
        rc, _, err = run("plots.py", FULL, "--out", os.path.join(tmp, "nm"),
                         python=(PYTHON, "-c", no_mpl))
        c.expect(rc == 2 and "python3-matplotlib" in err and "Traceback" not in err,
                 f"no matplotlib: exit 2 naming the package (exit {rc}): {err}")
        for program in ("plots.py", "export.py", "report.py"):
            rc, out, _ = run(program, "--help")
            c.expect(rc == 0 and "usage:" in out, f"{program} --help")
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
