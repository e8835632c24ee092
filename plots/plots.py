#!/usr/bin/python3
"""Draw knit's charts from knit-bench results (./run.sh plots).

usage: plots.py [RESULT.json | BASE.json NEW.json] [--out DIR] [--runs DIR] [--format F,G]
                [--normalize]

With one result (default: the newest full run in results/runs/, else the newest full run in
results/baseline/), writes its charts into DIR (default docs/charts/):
  gnuplot, from data files plots/export.py writes into a temporary folder:
    latency    round trip p50/p99 by transport x runtime x wait policy, floor lines
    spectrum   latency by percentile (x axis in nines), one line per transport
    batch      calls/s against burst size, with the raw ring's rate
    payload    bytes/s and round trip against payload size, with the copy bound
    startup    pool start-up beside its spawn reference
    idle       idle CPU per worker, first call after an idle gap beside the futex one
    contended  latency and bursts while busy processes compete for the CPUs
  matplotlib:
    balancers  balancers against each other per task-cost shape
With BASE.json NEW.json, the charts are NEW's, plus `compare` (matplotlib): the gate's forest
plot of NEW against BASE, per case (--normalize: against each case's floor reference).
Every time, `history` (matplotlib) is drawn from the runs saved in --runs (default
results/runs/) into that folder: the headline ratios over the saved runs.

Files are SVG and PNG (--format svg or png for one of them); a chart whose data the result
lacks is skipped with a message and its old files are removed, so DIR holds only charts of
this result. The files carry no date or random id: they change only when their data does.
Exit status: 0 done, 1 a chart failed to render, 2 bad input or gnuplot/matplotlib missing.
"""
import concurrent.futures
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import export
import knitdata as kd

PLOTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PLOTS)
FORMATS = ("svg", "png")
GNUPLOT_CHARTS = tuple(export.CHARTS)
MPL_CHARTS = ("balancers", "compare")

# How to read each chart: one sentence (the report page's captions).
CAPTIONS = {
    "latency": "Bars are the p50 round trip of one call, dots its p99, on a log axis; a grey "
               "dash is the case's own reference (its raw mechanism under the same wait "
               "policy, no pool) and the grey lines the physical floor (a cache line between "
               "two cores) and a futex wake-up, so the gap from a bar down to its dash is what "
               "the pool - scheduler and codec - adds.",
    "spectrum": "Each line is one transport's latency from its minimum through p50, p90, "
                "p99, p99.9 to its maximum (x axis in nines), so the tail is as visible as "
                "the median; lower is better everywhere.",
    "batch": "Calls per second as more calls are submitted at once; the grey line is a raw "
             "lock-free ring with the same bursts on the same machine, the ceiling for any "
             "queue.",
    "payload": "Top: payload bytes per second as the argument grows; bottom: the round trip; "
               "the grey line is what knit's copies alone allow, with no scheduler.",
    "startup": "Time from creating a pool to its first reply (bar p50, dot p99) next to the "
               "bare cost of starting a thread or a process (grey).",
    "idle": "Left: CPU an idle worker burns (percent of one core); right: the first call "
            "after the host slept, against a futex wake-up after the same sleep (grey).",
    "contended": "The same single calls and bursts while busy processes occupy every CPU; "
                 "the open diamonds are the quiet-machine figures.",
    "balancers": "For each task-cost shape (column): makespan over the ideal, p99 of the "
                 "cheap calls and fairness (rows) per pool and balancer; each panel's title "
                 "names the balancer closest to the best in every pool, a star the best bar "
                 "of each pool.",
    "compare": "Each row is one case: the dot is new/base of the median p50, the bar its "
               "interval; rows whose bar misses the grey band moved beyond the gate's "
               "threshold.",
    "history": "The headline ratios of every saved run, oldest first (x axis: date and "
               "commit); each ratio is against a reference of the same run.",
}


class Failure(Exception):
    """A problem the user can act on (missing tool, bad input): exit status 2."""


def say(msg):
    print(f"plots: {msg}", file=sys.stderr)


def check_tools(formats):
    """gnuplot with its svg/pngcairo terminals, and matplotlib, or a clear Failure."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        raise Failure("gnuplot is not installed: apt-get install gnuplot-nox "
                      "(./run.sh setup installs it)")
    terms = {"svg": "svg", "png": "pngcairo"}
    for fmt in formats:
        probe = subprocess.run([gnuplot, "-e", f"set terminal {terms[fmt]}"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            raise Failure(f"gnuplot has no '{terms[fmt]}' terminal: apt-get install gnuplot-nox")
    try:
        importlib.import_module("mplcommon")  # imports matplotlib
    except ImportError:
        raise Failure("matplotlib is not installed for /usr/bin/python3: apt-get install "
                      "python3-matplotlib (./run.sh setup installs it)") from None
    return gnuplot


def gp_string(text):
    return "'" + text.replace("'", "''") + "'"


def gnuplot_chart(gnuplot, chart, data, path, fmt):
    """Render one chart; returns (path, error text or None, warnings)."""
    # Run in the data folder with data='.': no temporary path can end up in a file.
    setup = (f"set loadpath {gp_string(PLOTS)}; data='.'; out={gp_string(os.path.abspath(path))}; "
             f"fmt={gp_string(fmt)}")
    done = subprocess.run([gnuplot, "-e", setup, os.path.join(PLOTS, chart + ".gp")],
                          capture_output=True, text=True, cwd=data)
    if done.returncode != 0 or not os.path.exists(path) or os.path.getsize(path) == 0:
        return path, done.stderr.strip() or f"gnuplot exited with {done.returncode}", ""
    return path, None, done.stderr.strip()


def remove_outputs(outdir, chart, formats):
    gone = [f"{chart}.{fmt}" for fmt in formats
            if os.path.exists(os.path.join(outdir, f"{chart}.{fmt}"))]
    for name in gone:
        os.remove(os.path.join(outdir, name))
    return gone


def render(run, outdir, formats=FORMATS, base=None, normalize=False):
    """Every chart of `run` (and `compare` when `base` is given) into outdir.
    Returns (written paths, failures); prints a line per skipped chart on stderr."""
    gnuplot = check_tools(formats)
    import balancers
    import forest

    written, failures, skipped = [], [], {}
    with tempfile.TemporaryDirectory(prefix="knit-plots-") as data:
        status = export.export(run, data)
        jobs = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for chart in GNUPLOT_CHARTS:
                if status[chart] is not None:
                    skipped[chart] = status[chart]
                    continue
                for fmt in formats:
                    path = os.path.join(outdir, f"{chart}.{fmt}")
                    jobs.append(pool.submit(gnuplot_chart, gnuplot, chart, data, path, fmt))
            for job in jobs:
                path, error, warnings = job.result()
                if error:
                    failures.append(f"{os.path.basename(path)}: {error}")
                else:
                    written.append(path)
                    if warnings:
                        say(f"{os.path.basename(path)}: gnuplot said: {warnings}")
    why = balancers.draw(run, os.path.join(outdir, "balancers"), formats)
    if why:
        skipped["balancers"] = why
    else:
        written += [os.path.join(outdir, f"balancers.{fmt}") for fmt in formats]
    if base is None:
        skipped["compare"] = None  # only with two results: remove silently
    else:
        why = forest.draw(base, run, os.path.join(outdir, "compare"), formats, normalize)
        if why:
            skipped["compare"] = why
        else:
            written += [os.path.join(outdir, f"compare.{fmt}") for fmt in formats]
    for chart, why in skipped.items():
        gone = remove_outputs(outdir, chart, formats)
        if why:
            say(f"{chart}: skipped ({why})"
                + (f"; removed the old {', '.join(gone)}" if gone else ""))
    return sorted(written), failures


def render_history(folder, formats, outdir=None):
    """The history chart of the runs saved in `folder`, written there (or into outdir)."""
    import history

    if not os.path.isdir(folder):
        say(f"history: skipped (no folder {folder})")
        return []
    base = os.path.join(outdir or folder, "history")
    why = history.draw(history.load_runs(folder), base, formats)
    if why:
        say(f"history: skipped ({why})")
        return []
    return [f"{base}.{fmt}" for fmt in formats]


def parse(argv):
    opts = {"out": os.path.join(ROOT, "docs", "charts"),
            "runs": os.path.join(ROOT, "results", "runs"),
            "formats": FORMATS, "normalize": False, "results": []}
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            print(__doc__.strip())
            sys.exit(0)
        elif a in ("--out", "--runs", "--format"):
            value = next(it, None)
            if not value:
                raise Failure(f"{a} needs a value (see --help)")
            if a == "--format":
                fmts = tuple(f for f in value.split(",") if f)
                if not fmts or any(f not in FORMATS for f in fmts):
                    raise Failure(f"--format takes svg, png or svg,png, not {value!r}")
                opts["formats"] = fmts
            else:
                opts[a[2:]] = value
        elif a == "--normalize":
            opts["normalize"] = True
        elif a.startswith("-"):
            raise Failure(f"unknown option {a!r} (see --help)")
        else:
            opts["results"].append(a)
    if len(opts["results"]) > 2:
        raise Failure("give one result, or BASE.json NEW.json (see --help)")
    return opts


def shown(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def main(argv):
    try:
        opts = parse(argv)
        paths = opts["results"] or [kd.latest_result(ROOT)]
        if paths[0] is None:
            raise Failure("no result given and no full run in results/runs/ or results/baseline/ "
                          "(run ./run.sh, or pass RESULT.json)")
        try:
            runs = [kd.load(p) for p in paths]
        except kd.DataError as e:
            raise Failure(str(e)) from None
        os.makedirs(opts["out"], exist_ok=True)
        base = runs[0] if len(runs) == 2 else None
        written, failures = render(runs[-1], opts["out"], opts["formats"], base, opts["normalize"])
    except Failure as e:
        say(str(e))
        return 2
    written += render_history(opts["runs"], opts["formats"])
    for path in written:
        print(shown(path))
    for failure in failures:
        say(f"FAILED {failure}")
    say(f"{len(written)} files from {shown(runs[-1].path)}"
        + (f" against {shown(base.path)}" if base else "")
        + (" (with failures)" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
