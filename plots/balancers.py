"""The balancer chart: which balancer for which task-cost shape (the `balance` scenario).

Columns are the task-cost shapes (flat, uniform, heavy-tailed, bimodal), rows the three
measures: makespan over the ideal (1.0 is perfect), p99 of the cheap calls (stuck behind
expensive ones?) and Jain's fairness index of the workers' busy time (1.0 is even). In every
panel the bars group the pools (runtime and worker count) and one bar per balancer; the panel
names the balancer closest to each pool's best on that measure, and a star marks the best
bar of every pool.
"""
import math

import knitdata as kd
import mplcommon as mc

# Balancers are told apart by shade and hatch (all bars are knit, so no transport colour):
# cividis is safe for colour-vision deficiencies, hatches make it safe in grey too.
HATCHES = ("", "//", "xx", "\\\\", "--", "||")

MEASURES = (
    # (label, field getter, lower is better, reference line)
    ("makespan / ideal\n(lower is better)",
     lambda c: kd.field(c, "makespan_over_ideal"), True, 1.0),
    ("p99 of cheap calls, ms\n(lower is better)",
     lambda c: (kd.field(c, "cheap_p99_ns") or kd.lat(c, "p99") or math.nan) / 1e6, True, None),
    ("fairness: Jain's index\n(higher is better)", lambda c: kd.field(c, "jain_index"), False, 1.0),
)


def shapes_of(cases):
    names = {c.get("shape") or c.get("variant") or "?" for c in cases}
    return sorted(names, key=lambda s: kd.order(s, kd.SHAPES))


def shape(c):
    return c.get("shape") or c.get("variant") or "?"


def pool(c):
    return (kd.order(c.get("runtime"), kd.RUNTIMES), c.get("workers") or 0)


def pool_label(c):
    return f"{c.get('runtime', '?')}\nw{c.get('workers', '?')}"


def value_of(cases, b, p, value):
    found = [c for c in cases if c.get("balancer") == b and pool(c) == p]
    v = value(found[0]) if found else None
    return v if v is not None and v > 0 and not math.isnan(v) else None


def best(cases, balancers, pools, value, lower):
    """Per pool, the best balancer; overall, the balancer whose values are closest to each
    pool's best (geometric mean of value / pool's best, over the pools it ran in), so a
    balancer that ran in fewer pools is neither helped nor hurt by which pools those are."""
    per_pool, gaps = {}, {}
    for p in pools:
        vals = {b: value_of(cases, b, p, value) for b in balancers}
        vals = {b: v for b, v in vals.items() if v is not None}
        if not vals:
            continue
        top = min(vals.values()) if lower else max(vals.values())
        per_pool[p] = [b for b, v in vals.items() if v == top][0]
        for b, v in vals.items():
            gaps.setdefault(b, []).append(v / top if lower else top / v)
    if not gaps:
        return None, None, per_pool
    score = {b: math.exp(sum(map(math.log, g)) / len(g)) for b, g in gaps.items()}
    pick = min(score, key=lambda b: (score[b], kd.order(b, kd.BALANCERS)))
    return pick, score[pick], per_pool


def draw(run, base, formats):
    """Writes base.svg/png from one run; returns None, or why there is no chart."""
    cases = [c for c in run.select(scenario="balance") if c.get("balancer")]
    if not cases:
        return "no balance cases"
    shapes = shapes_of(cases)
    balancers = sorted({c["balancer"] for c in cases}, key=lambda b: kd.order(b, kd.BALANCERS))
    pools = sorted({pool(c) for c in cases})
    cmap = mc.matplotlib.colormaps["cividis"]
    shades = {b: cmap(0.1 + 0.8 * i / max(1, len(balancers) - 1)) for i, b in enumerate(balancers)}
    fig, axes = mc.figure(max(900, 300 * len(shapes)), 860, nrows=len(MEASURES),
                          ncols=len(shapes), squeeze=False)
    width = 0.8 / len(balancers)
    for col, sh in enumerate(shapes):
        mine = [c for c in cases if shape(c) == sh]
        for row, (label, value, lower, ref) in enumerate(MEASURES):
            ax = axes[row][col]
            pick, score, per_pool = best(mine, balancers, pools, value, lower)
            for i, b in enumerate(balancers):
                xs, ys = [], []
                for k, p in enumerate(pools):
                    v = value_of(mine, b, p, value)
                    if v is not None:
                        xs.append(k - 0.4 + width * (i + 0.5))
                        ys.append(v)
                        if per_pool.get(p) == b:
                            ax.annotate("\u2605", (xs[-1], v), ha="center", va="bottom",
                                        fontsize=9, color="#000000")
                ax.bar(xs, ys, width * 0.95, color=shades[b], hatch=HATCHES[i % len(HATCHES)],
                       edgecolor="white", linewidth=0.4, label=b, gid=f"balancer-{b}")
            if ref is not None:
                ax.axhline(ref, color=kd.REFERENCE_COLOUR, linewidth=1, linestyle="--")
            if not pick:
                verdict = "no data"
            elif score < 1.0005:
                verdict = f"best: {pick} (best in every pool)"
            else:
                verdict = f"best: {pick} (+{100 * (score - 1):.1f} %)"
            ax.set_title(f"{sh}\n{verdict}" if row == 0 else verdict, fontsize=9)
            ax.set_xticks(range(len(pools)))
            ax.set_xticklabels([pool_label(next(c for c in cases if pool(c) == p)) for p in pools],
                               fontsize=8)
            if row == 2:
                lo = min((value(c) for c in mine if value(c) is not None), default=0.9)
                ax.set_ylim(max(0.0, min(lo, 1.0) - 0.05), 1.01)
            if col == 0:
                ax.set_ylabel(label, fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(balancers), fontsize=9,
               bbox_to_anchor=(0.5, 0.025),
               title="balancer (all knit; \u2605 the best in that pool)")
    fig.suptitle("Which balancer for which task-cost shape (bursts of burn tasks with seeded "
                 "costs, the same sequence for every balancer)\n\"best\": the balancer closest "
                 "to each pool's best on average (+N %: how far); \u2605 the best bar of a pool; "
                 "pools: runtime and workers (wN)", fontsize=10)
    mc.footer(fig, run.label())
    fig.tight_layout(rect=(0, 0.09, 1, 0.95))
    mc.save(fig, base, formats)
    return None
