"""The history chart: the headline ratios of every saved run (results/runs/), oldest first.

Each ratio compares two figures of the same run (a case against its floor reference, or knit
against a rival measured in the same run), so runs from a noisy machine stay comparable; the
x axis names each run's date and commit (open markers: --quick runs). A run without the cases
of a ratio leaves a gap in that line.
"""
import glob
import os
import sys

import knitdata as kd
import mplcommon as mc
from knitdata import lat, field


def ratio(a, b):
    return a / b if a and b else None


def floor_ratio(run, name):
    return field(run.by_name.get(name), "floor_ratio")


# (label, transport whose colour the line takes, line style, value of one run)
HEADLINES = (
    ("knit round trip p50 / its raw mechanism (spin)", "knit", "-",
     lambda r: floor_ratio(r, "latency/knit/thread/w1/b1/p8")),
    ("pipe round trip p50 / knit round trip p50", "pipe", "-",
     lambda r: ratio(lat(r.by_name.get("latency/pipe/thread/w1/b1/p8")),
                     lat(r.by_name.get("latency/knit/thread/w1/b1/p8")))),
    ("knit burst-1000 time per call / the raw ring's", "knit", "--",
     lambda r: floor_ratio(r, "batch/knit/thread/w1/b1000/p8")),
    ("knit / pipe burst-1000 calls/s", "pipe", "--",
     lambda r: ratio(field(r.by_name.get("batch/knit/thread/w1/b1000/p8"), "calls_per_s"),
                     field(r.by_name.get("batch/pipe/thread/w1/b1000/p8"), "calls_per_s"))),
    ("thread pool start-up / pthread_create+join", "knit", ":",
     lambda r: floor_ratio(r, "startup/knit/thread/w1/b1/p8")),
    ("process pool start-up / posix_spawn", "knit", "-.",
     lambda r: floor_ratio(r, "startup/knit/process/w1/b1/p8/inherit")),
    ("first call after 100 ms idle / futex after 100 ms", "knit", (0, (1, 3)),
     lambda r: floor_ratio(r, "idle/knit/thread/w1/b1/p8/gap-100ms")),
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def load_runs(folder):
    """Every readable result in `folder`, oldest first (by its date, then file name)."""
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        try:
            runs.append(kd.load(path))
        except kd.DataError as e:
            print(f"plots: history: skipped {e}", file=sys.stderr)
    return sorted(runs, key=lambda r: (str(r.ctx("date", "")), r.name))


def draw(runs, base, formats):
    """Writes the history chart of `runs`; returns None, or why there is no chart."""
    if not runs:
        return "no saved runs"
    fig, ax = mc.figure(max(900, 60 * len(runs) + 400), 560)
    xs = range(len(runs))
    drawn = 0
    for i, (label, transport, style, value) in enumerate(HEADLINES):
        ys = [value(r) for r in runs]
        if all(y is None for y in ys):
            continue
        drawn += 1
        points = [float("nan") if y is None else y for y in ys]
        marker = MARKERS[i % len(MARKERS)]
        ax.plot(xs, points, linestyle=style, color=kd.colour(transport), linewidth=1.5,
                label=label, marker=marker, markersize=6)
        quick = [(x, y) for x, y, r in zip(xs, points, runs) if r.quick]
        if quick:
            ax.plot(*zip(*quick), marker, color=kd.colour(transport), markerfacecolor="white",
                    markersize=6)
    if not drawn:
        mc.message(ax, "none of the saved runs has the headline cases")
    else:
        ax.set_yscale("log")
        ax.axhline(1.0, color=kd.REFERENCE_COLOUR, linewidth=1)
        ax.set_ylabel("ratio (log; 1 = the reference)")
        ticks = mc.matplotlib.ticker
        ax.yaxis.set_major_formatter(ticks.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_locator(ticks.LogLocator(subs=(2, 5)))
        ax.yaxis.set_minor_formatter(ticks.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{r.date}\n{r.commit}" + ("\nquick" if r.quick else "") for r in runs],
                       fontsize=7, rotation=0 if len(runs) < 12 else 90)
    ax.set_xlim(-0.5, len(runs) - 0.5)
    hosts = sorted({r.machine for r in runs})
    fig.suptitle(f"Headline ratios over {len(runs)} saved runs (open markers: --quick runs)",
                 fontsize=11)
    mc.footer(fig, f"{', '.join(hosts)} | {runs[0].date} .. {runs[-1].date} | commits "
                   f"{runs[0].commit} .. {runs[-1].commit} | {len(runs)} runs")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    mc.save(fig, base, formats)
    return None
