"""The gate's forest plot: two runs against each other, case by case.

For every case both runs share (by name), the ratio NEW / BASE of the medians of the time each
repetition is read by (its p50, or its time per operation for a throughput case: what
knit-bench/2 gives Google Benchmark as `real_time`), with a distribution-free interval: the
Hodges-Lehmann
interval of the shift in log time (the order statistics of all pairwise log ratios that the
exact Mann-Whitney U distribution allows, about 95 %; with too few repetitions for that, the
full range of the pairwise ratios, and the chart says which level it got). The chart shows the
cases that moved most, sorted, coloured by transport, with the gate's threshold as a band.
With `normalize`, each value is first divided by its case's reference (`floor_ns`, as the
gate's --normalize does), and a case whose reference changed mechanism is left out.
"""
import math
from functools import lru_cache

import knitdata as kd
import mplcommon as mc

SHOWN = 40
THRESHOLD = 0.10  # the gate's default (harness/compare.py)


@lru_cache(maxsize=None)
def u_counts(m, n):
    """How many of the C(m+n, m) orderings give each Mann-Whitney U = 0..m*n."""
    if m == 0 or n == 0:
        return (1,)
    a, b = u_counts(m - 1, n), u_counts(m, n - 1)
    out = [0] * (m * n + 1)
    for u, k in enumerate(a):
        out[u + n] += k
    for u, k in enumerate(b):
        out[u] += k
    return tuple(out)


def interval(base, new, level=0.95):
    """(low, high, achieved level) of the ratio new/base from the pairwise log ratios."""
    diffs = sorted(math.log(b) - math.log(a) for a in base for b in new)
    counts = u_counts(len(base), len(new))
    total = sum(counts)
    # D(k) .. D(mn+1-k) (1-based) covers the shift with probability 1 - 2 P(U <= k-1): take
    # the largest k that keeps that at `level` or more; k = 1 (the full range) at least.
    k, tail = 0, 0
    while k < len(counts) and (tail + counts[k]) / total <= (1 - level) / 2:
        tail += counts[k]
        k += 1
    if k == 0:
        k, tail = 1, counts[0]
    lo, hi = diffs[k - 1], diffs[-k]
    achieved = 1 - 2 * tail / total
    return math.exp(lo), math.exp(hi), achieved


def values(case, normalize):
    reps = kd.repetition_times(case)
    if normalize:
        floor = kd.num(case.get("floor_ns"))
        reps = [v / floor for v in reps] if floor else []
    return reps


def rows(base, new, normalize=False):
    """Every comparable case: dicts with name, transport, ratio, low, high, level."""
    out = []
    for name, b in base.by_name.items():
        n = new.by_name.get(name)
        if n is None or (normalize and b.get("floor_mechanism") != n.get("floor_mechanism")):
            continue
        a, c = values(b, normalize), values(n, normalize)
        if not a or not c:
            continue
        lo, hi, level = interval(a, c)
        out.append({"name": name, "transport": n.get("transport"),
                    "ratio": kd.median(c) / kd.median(a), "low": lo, "high": hi,
                    "level": level})
    return out


def draw(base, new, path_base, formats, normalize=False):
    """Writes the forest plot; returns None, or why there is no chart."""
    found = rows(base, new, normalize)
    if not found:
        return "the two results share no case with per-repetition times"
    shown = sorted(found, key=lambda r: (-abs(math.log(r["ratio"])), r["name"]))[:SHOWN]
    shown.sort(key=lambda r: (r["ratio"], r["name"]))
    fig, ax = mc.figure(1000, 220 + 17 * len(shown))  # keep in step with `height` below
    ys = range(len(shown))
    ax.axvspan(1 - THRESHOLD, 1 + THRESHOLD, color="#eeeeee", zorder=0)
    ax.axvline(1.0, color=kd.REFERENCE_COLOUR, linewidth=1)
    for y, r in zip(ys, shown):
        c = kd.colour(r["transport"])
        ax.plot([r["low"], r["high"]], [y, y], color=c, linewidth=2, solid_capstyle="butt")
        ax.plot([r["ratio"]], [y], "o", color=c, markersize=5)
    ax.set_xscale("log")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([r["name"] for r in shown], fontsize=7)
    ax.set_ylim(-1, len(shown))
    ax.grid(axis="y", visible=False)
    lo = min(min(r["low"] for r in shown), 1 - 2 * THRESHOLD)
    hi = max(max(r["high"] for r in shown), 1 + 2 * THRESHOLD)
    ax.set_xlim(lo / 1.1, hi * 1.1)
    ax.xaxis.set_major_formatter(mc.matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(mc.matplotlib.ticker.NullFormatter())
    what = "time over the case's reference" if normalize else "time (p50, or per operation)"
    ax.set_xlabel(f"new / base: median of the repetitions' {what} (log; grey band: "
                  f"the gate's \u00b1{THRESHOLD:.0%} threshold)")
    levels = sorted({round(r["level"], 3) for r in shown})
    level = " or ".join(f"{v:.0%}" for v in levels)
    present = sorted({r["transport"] for r in shown if r["transport"]},
                     key=lambda t: kd.order(t, kd.TRANSPORTS))
    handles = [mc.matplotlib.lines.Line2D([], [], color=kd.colour(t), marker="o", linewidth=2,
                                          label=t) for t in present]
    height = 220 + 17 * len(shown)
    fig.legend(handles=handles, loc="lower center", fontsize=8, ncol=len(handles),
               bbox_to_anchor=(0.5, 45 / height))
    fig.suptitle(f"{new.commit} ({new.date}) against {base.commit} ({base.date}): the "
                 f"{len(shown)} largest changes of {len(found)} shared cases\n"
                 f"ratio of the medians, with its {level} interval (Hodges-Lehmann, exact "
                 f"Mann-Whitney U)", fontsize=10)
    mc.footer(fig, "new:  " + new.label(), "base: " + base.label())
    fig.tight_layout(rect=(0, 75 / height, 1, 1))
    mc.save(fig, path_base, formats)
    return None
