"""What the gate and compare print and write: the table, the verdict JSON, the markdown summary
(for a CI job summary) and the forest plot (every case's ratio with its interval).

A row is a dict: name, verdict, and for a judged case metric, n (pairs, or "m+n" runs), base
and new (median figures), estimate, lower, upper (ratios NEW/BASE; bounds at the confidence),
margin, spread, p_value; `reason` explains a verdict that is not a ratio's; a gate row may
carry `confirm` (the same fields from the confirmation re-run).
"""
import json
import math

from gate import stats

FAILING = {stats.REGRESSION, "missing", "new errors", "failed"}
NOTABLE = FAILING | {stats.SLOWER, stats.IMPROVEMENT, stats.FASTER, stats.UNDECIDED,
                     stats.INCONCLUSIVE, "not confirmed"}


def fmt_ns(v):
    if v is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g} ns"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.3f}"


def fmt_pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def final(row):
    """The verdict that counts: a flagged regression's confirmation decides it (a re-run that
    fails or cannot decide passes that on; one that does not flag it again clears it)."""
    c = row.get("confirm")
    if row["verdict"] == stats.REGRESSION and c is not None:
        if c["verdict"] in FAILING or c["verdict"] == stats.UNDECIDED:
            return c["verdict"]
        return "not confirmed"
    return row["verdict"]


def _cells(r):
    return [r.get("n", "-"), fmt_ns(r.get("base")), fmt_ns(r.get("new")),
            fmt_ratio(r.get("estimate")),
            f"[{fmt_ratio(r.get('lower'))}, {fmt_ratio(r.get('upper'))}]"
            if r.get("estimate") is not None else "-",
            fmt_pct(r.get("margin")), fmt_pct(r.get("spread"))]


HEAD = ["case", "n", "base", "new", "ratio", "bounds", "margin", "spread", "verdict"]


def table(rows, confidence):
    """Aligned text table; bounds are one-sided at `confidence` each."""
    lines = []
    body = []
    for r in rows:
        verdict = final(r)
        if r.get("reason"):
            verdict += f" ({r['reason']})"
        body.append([r["name"], *map(str, _cells(r)), verdict])
        c = r.get("confirm")
        if c is not None:
            body.append(["  confirmation re-run", *map(str, _cells(c)), c["verdict"]
                         + (f" ({c['reason']})" if c.get("reason") else "")])
    head = list(HEAD)
    head[5] = f"{100 * confidence:.4g}% bounds"
    widths = [max(len(str(x[i])) for x in body + [head]) for i in range(len(head) - 1)]
    for row in [head] + body:
        cells = [f"{row[0]:{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(row[1:-1], widths[1:])]
        lines.append("  ".join(cells) + "  " + row[-1])
    return "\n".join(lines)


def counts(rows):
    out = {}
    for r in rows:
        v = final(r)
        out[v] = out.get(v, 0) + 1
    return out


def markdown(doc):
    """A summary for a CI job summary ($GITHUB_STEP_SUMMARY)."""
    rows = doc["cases"]
    title = {0: "PASS", 1: "REGRESSION", 2: "CANNOT DECIDE"}[doc["exit_status"]]
    s = doc["settings"]
    out = [f"## knit {doc['mode']}: {title}", ""]
    if doc.get("base") and doc.get("new"):
        out.append(f"BASE `{doc['base'].get('label')}` vs NEW `{doc['new'].get('label')}`; "
                   f"{len(rows)} cases; threshold {100 * s['threshold']:g} %, margin "
                   f"{100 * s['margin']:g} % (or more for noisy cases), "
                   f"{100 * s['confidence']:.4g} % one-sided bounds.")
    if doc.get("wall_time_s"):
        out.append(f"Wall time {doc['wall_time_s'] / 60:.1f} min"
                   + (f" (builds {doc['build_time_s'] / 60:.1f} min)"
                      if doc.get("build_time_s") is not None else "") + ".")
    for reason in doc.get("reasons", []):
        out.append(f"- {reason}")
    tally = ", ".join(f"{k}: {v}" for k, v in sorted(counts(rows).items()))
    out += ["", f"Verdicts: {tally}.", ""]
    md_head = "| case | n | base | new | ratio | bounds | margin | spread | verdict |"
    md_rule = "|" + " --- |" * 9

    def md_rows(selected):
        lines = [md_head, md_rule]
        for r in selected:
            verdict = final(r) + (f" ({r['reason']})" if r.get("reason") else "")
            if final(r) in FAILING:
                verdict = f"**{verdict}**"
            lines.append("| " + " | ".join([f"`{r['name']}`", *map(str, _cells(r)), verdict])
                         + " |")
        return lines

    notable = [r for r in rows if final(r) in NOTABLE]
    if notable:
        out += md_rows(notable) + [""]
    out += ["<details><summary>every case</summary>", ""] + md_rows(rows) + ["", "</details>"]
    if doc.get("plot"):
        out += ["", f"Forest plot: `{doc['plot']}`."]
    return "\n".join(out) + "\n"


COLOURS = {stats.REGRESSION: "#c0392b", stats.SLOWER: "#e67e22", stats.SAME: "#34495e",
           stats.INCONCLUSIVE: "#95a5a6",
           stats.FASTER: "#27ae60", stats.IMPROVEMENT: "#1e8449", stats.UNDECIDED: "#8e44ad",
           "not confirmed": "#d4ac0d"}


def forest(rows, path, title, threshold, margin):
    """Every judged case's ratio with its interval, on a log axis; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("estimate") is not None]
    height = max(2.5, 0.24 * len(shown) + 1.4)
    fig, ax = plt.subplots(figsize=(10.5, height))
    if not shown:
        ax.text(0.5, 0.5, "no case with a ratio", ha="center", va="center")
        ax.set_axis_off()
    ys = list(range(len(shown)))[::-1]
    for y, r in zip(ys, shown):
        colour = COLOURS.get(final(r), "#7f8c8d")
        lo, hi = r.get("lower"), r.get("upper")
        if lo is not None:
            ax.plot([lo, hi], [y, y], color=colour, lw=1.6)
        ax.plot([r["estimate"]], [y], "o", color=colour, ms=4)
    if shown:
        ax.axvline(1.0, color="black", lw=0.8)
        ax.axvspan(1 / (1 + margin), 1 + margin, color="#bdc3c7", alpha=0.4, lw=0,
                   label=f"noise margin {100 * margin:g} %")
        ax.axvline(1 + threshold, color="#c0392b", lw=0.8, ls=":",
                   label=f"threshold +{100 * threshold:g} %")
        ax.set_xscale("log")
        vals = [v for r in shown for v in (r["estimate"], r.get("lower"), r.get("upper")) if v]
        lo_x, hi_x = min(vals + [0.9]), max(vals + [1 + 2 * threshold])
        ax.set_xlim(lo_x / 1.05, hi_x * 1.05)
        ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50] if hi_x / lo_x > 2.5 else \
            [0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2]
        ax.set_xticks([t for t in ticks if lo_x / 1.05 <= t <= hi_x * 1.05])
        ax.set_yticks(ys)
        ax.set_yticklabels([r["name"] for r in shown], fontsize=7)
        ax.set_ylim(-1, len(shown))
        ax.set_xlabel("ratio NEW / BASE (cost; > 1 is slower), estimate and one-sided bounds")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        handles = [matplotlib.lines.Line2D([], [], color=c, marker="o", lw=1.6, label=v)
                   for v, c in COLOURS.items() if any(final(r) == v for r in shown)]
        ax.legend(handles=handles + ax.get_legend_handles_labels()[0], fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.grid(axis="x", which="major", color="#ecf0f1")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(doc, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, default=_plain)
        f.write("\n")


def _plain(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return float(v) if hasattr(v, "__float__") else str(v)
