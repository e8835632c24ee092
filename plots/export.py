#!/usr/bin/python3
"""Write the data files the gnuplot charts read, from one knit-bench result.

usage: export.py RESULT.json DIR

For every chart drawn by plots/<chart>.gp it writes DIR/<chart>*.dat (tab-separated columns)
and DIR/<chart>.vars.gp (the chart's references, series lists and notes as gnuplot
variables), plus DIR/colors.gp (one line type per transport) and DIR/meta.gp (the footer:
machine, date and commit). Prints one line per chart: written, or why it was skipped (no
case of its scenario in the result). Nothing is edited by hand; plots.py runs this for you.
Exit status: 0, or 2 when the result cannot be read.
"""
import os
import sys

import knitdata as kd
from knitdata import lat, field, order

REFERENCE_LT = 9  # the line type of floor references in colors.gp
OTHER_LT = len(kd.TRANSPORTS) + 1  # the line type of any other name (7)


def tindex(transport):
    """The transport's line type in colors.gp (1-6), OTHER_LT for any other name."""
    return kd.TRANSPORTS.index(transport) + 1 if transport in kd.TRANSPORTS else OTHER_LT


def cell(value):
    if value is None:
        return "NaN"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value).replace("\t", " ").replace("\n", " ") or "-"


def gp_value(value):
    if value is None:
        return "NaN"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class Export:
    """Writes files into one directory and remembers nothing else."""

    def __init__(self, run, outdir):
        self.run, self.dir = run, outdir

    def table(self, name, rows):
        with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
            for row in rows:
                f.write("\t".join(cell(v) for v in row) + "\n")

    def vars(self, chart, **values):
        with open(os.path.join(self.dir, chart + ".vars.gp"), "w", encoding="utf-8") as f:
            for key, value in values.items():
                f.write(f"{key} = {gp_value(value)}\n")

    def series(self, prefix, cases, key, row):
        """One file per `key(case)` (a transport name...): `prefix-<key>.dat`, rows sorted;
        returns the keys that got a file, in transport order."""
        groups = {}
        for c in cases:
            r = row(c)
            if r is not None:
                groups.setdefault(key(c), []).append(r)
        for k, rows in groups.items():
            self.table(f"{prefix}-{k}.dat", sorted(rows))
        return sorted(groups, key=lambda k: order(k, kd.TRANSPORTS))


def words(items):
    """A gnuplot word list (word(s, i), words(s), `for [w in s]`); quoted when spaced."""
    return " ".join(f"'{w}'" if " " in w else w for w in (str(i).replace("'", "") for i in items))


def union(lists):
    """Names of several series lists, once each, in transport order."""
    return sorted({n for names in lists for n in names}, key=lambda t: order(t, kd.TRANSPORTS))


def missing_note(**refs):
    gone = [name for name, value in refs.items() if value is None]
    return ("no " + ", ".join(gone) + " in this result") if gone else ""


def bars(cases, group_key, group_label):
    """Bar positions of `cases` (already in order), one bar's gap between groups: returns
    [(x, case)], the centre of every group and its label."""
    rows, groups, x, last = [], [], 0, object()
    for c in cases:
        g = group_key(c)
        if g != last:
            x += 1 if rows else 0
            groups.append([x + 1, x + 1, group_label(c)])
            last = g
        x += 1
        groups[-1][1] = x
        rows.append((x, c))
    return rows, [(lo + hi) / 2 for lo, hi, _ in groups], [g[2] for g in groups]


def round_trip(case):
    """The case's own reference round trip in ns (its raw mechanism), or None."""
    ref = kd.reference(case)
    return kd.num(ref.get("ns")) if ref.get("kind") in (None, "round-trip") else None


def references(cases, prefix, figure):
    """(x, median figure) of the cases whose reference mechanism starts with `prefix`,
    by payload or burst size: `figure(case, ns)` turns the reference into the plotted value."""
    points = {}
    for c in cases:
        ref = kd.reference(c)
        ns = kd.num(ref.get("ns"))
        if str(ref.get("mechanism", "")).startswith(prefix) and ns:
            points.setdefault(c["x"], []).append(figure(c, ns))
    return sorted((x, kd.median(v)) for x, v in points.items())


def num_or(case, key, default):
    value = field(case, key)
    return default if value is None else value


# --- one function per chart: returns None when written, else why it was skipped -------------

def latency(ex):
    run = ex.run
    cases = sorted(run.select(scenario="latency"),
                   key=lambda c: (order(c.get("transport"), kd.TRANSPORTS),
                                  order(c.get("runtime"), kd.RUNTIMES),
                                  order(c.get("wait"), kd.WAITS), c["name"]))
    cases = [c for c in cases if lat(c) is not None]
    if not cases:
        return "no latency cases with latency figures"
    rows, centres, labels = bars(cases, lambda c: c.get("transport"), lambda c: c.get("transport"))
    ex.table("latency.dat", [(round(x, 3), c.get("runtime", "?"), c.get("wait", "?"),
                              tindex(c.get("transport")), lat(c), lat(c, "p99"), round_trip(c))
                             for x, c in rows])
    spin = kd.floor_of(run, "spin", cases)
    spin99 = kd.median(c.get("floor_p99_ns") for c in cases if c.get("floor_mechanism") == "spin")
    if spin99 is None:
        spin99 = lat(run.one(scenario="floor", transport="spin"), "p99")
    futex = lat(run.one(scenario="floor", transport="futex"))
    ex.vars("latency", floor_spin=spin, floor_spin_p99=spin99, floor_futex=futex,
            xmax=rows[-1][0] + 1, transports=words(run.transports(scenario="latency")),
            group_x=words(f"{x:g}" for x in centres), group_names=words(labels),
            note=missing_note(**{"spin floor": spin, "futex floor": futex}))
    return None


def spectrum(ex):
    run = ex.run
    cases = [c for c in run.select(scenario="latency") if kd.default_wait(c)]
    lists, xmax = {}, 3.0

    def row_points(c):
        return [(kd.nines(q), v) for q, v in kd.quantiles(c) if kd.nines(q) is not None]

    for rt in kd.RUNTIMES:
        names = []
        for c in sorted((c for c in cases if c.get("runtime") == rt),
                        key=lambda c: order(c.get("transport"), kd.TRANSPORTS)):
            points = row_points(c)
            if len(points) >= 2 and c.get("transport") not in names:
                ex.table(f"spectrum-{rt}-{c['transport']}.dat", points)
                names.append(c["transport"])
                xmax = max(xmax, points[-1][0])
        lists[rt] = names
    floor = row_points(run.one(scenario="floor", transport="spin"))
    if floor:
        ex.table("spectrum-floor.dat", floor)
    if not any(lists.values()):
        return "no latency cases with percentiles"
    ex.vars("spectrum", thread_list=words(lists["thread"]), process_list=words(lists["process"]),
            transports=words(union(lists.values())),
            has_floor=1 if floor else 0, xmax=xmax + 0.3,
            note=missing_note(**{"spin floor case": floor or None}))
    return None


def batch(ex):
    run = ex.run
    cases = [dict(c, x=c.get("batch")) for c in run.select(scenario="batch", workers=1)
             if field(c, "calls_per_s") and kd.default_wait(c)]
    if not cases:
        return "no one-worker batch cases"
    lists, ring = {}, {}
    ring_ns = kd.floor_of(run, "ring", cases)  # knit-bench/1: one `ring` floor, bursts of 1000
    for rt in kd.RUNTIMES:
        mine = [c for c in cases if c.get("runtime") == rt]
        lists[rt] = ex.series(f"batch-{rt}", mine, lambda c: c["transport"],
                              lambda c: (c.get("batch"), c["calls_per_s"], lat(c), lat(c, "p99")))
        # knit-bench/2: each knit burst's own reference, the raw ring with the same burst
        points = references([c for c in mine if c.get("transport") == "knit"], "ring-",
                            lambda c, ns: 1e9 / ns)
        if not points and ring_ns:
            points = [(x, 1e9 / ring_ns) for x in sorted({c["x"] for c in mine})]
        if points:
            ex.table(f"batch-{rt}-ring.dat", points)
        ring[rt] = 1 if points else 0
    ex.vars("batch", thread_list=words(lists["thread"]), process_list=words(lists["process"]),
            transports=words(union(lists.values())),
            thread_ring=ring["thread"], process_ring=ring["process"],
            note=missing_note(**{"ring reference": any(ring.values()) or None}))
    return None


def payload(ex):
    run = ex.run
    cases = [dict(c, x=c.get("payload_bytes")) for c in run.select(scenario="payload", batch=1)
             if field(c, "bytes_per_s") and field(c, "payload_bytes") and kd.default_wait(c)]
    if not cases:
        return "no payload cases with one call in flight"

    def series_name(c):
        return c["transport"] + ("-inplace" if c.get("variant") == "in-place" else "")

    def row(c):
        return (c["payload_bytes"], c["bytes_per_s"], lat(c), lat(c, "p99"))

    memcpy_ns = kd.floor_of(run, "memcpy", cases)  # knit-bench/1: one 1 MiB memcpy floor
    lists, bound = {}, {}
    for rt in kd.RUNTIMES:
        mine = [c for c in cases if c.get("runtime") == rt]
        lists[rt] = ex.series(f"payload-{rt}", mine, series_name, row)
        # The copy bound: knit's copies of an echo with no scheduler. knit-bench/2: each knit
        # case's own `xcopy-<bytes>` reference; knit-bench/1: memcpy's bandwidth, knit's copies.
        knit = [c for c in mine if c["transport"] == "knit" and c.get("variant") != "in-place"]
        points = references(knit, "xcopy", lambda c, ns: ns)
        if not points and memcpy_ns:
            points = [(c["x"], (num_or(c, "copies_per_round_trip", 4)) * c["x"] / (1 << 20)
                       * memcpy_ns) for c in knit]
        if points:
            ex.table(f"payload-{rt}-bound.dat",
                     sorted((x, 2 * x * 1e9 / ns, ns) for x, ns in points if ns))
        bound[rt] = 1 if points else 0
    ex.vars("payload",
            thread_list=words(s for s in lists["thread"] if not s.endswith("-inplace")),
            process_list=words(s for s in lists["process"] if not s.endswith("-inplace")),
            thread_inplace=words(s for s in lists["thread"] if s.endswith("-inplace")),
            process_inplace=words(s for s in lists["process"] if s.endswith("-inplace")),
            transports=words(t for t in union(lists.values()) if not t.endswith("-inplace")),
            thread_bound=bound["thread"], process_bound=bound["process"],
            note=missing_note(**{"copy reference": any(bound.values()) or None}))
    return None


def startup(ex):
    run = ex.run
    cases = [c for c in run.select(scenario="startup") if lat(c) is not None]
    if not cases:
        return "no startup cases"
    spawn = {"thread": "thread-spawn", "process": "process-spawn"}
    items, missing = [], {}
    for rt in sorted({c.get("runtime") for c in cases}, key=lambda r: order(r, kd.RUNTIMES)):
        mine = [c for c in cases if c.get("runtime") == rt]
        ref = kd.floor_of(run, spawn.get(rt, ""), mine)
        if ref is None:
            missing[f"{spawn.get(rt, rt)} reference"] = None
        else:
            ref99 = lat(run.one(scenario="floor", transport=spawn.get(rt, "")), "p99")
            items.append((rt, spawn.get(rt, "spawn"), "reference", REFERENCE_LT, ref, ref99))
        for c in sorted(mine, key=lambda c: (c.get("workers", 0), c.get("variant", ""),
                                             order(c.get("transport"), kd.TRANSPORTS))):
            sub = f"w{c.get('workers', '?')}" + (f" {c['variant']}" if c.get("variant") else "")
            items.append((rt, sub, c.get("transport"), tindex(c.get("transport")),
                          lat(c), lat(c, "p99")))
    rows, centres, labels = bars(items, lambda i: (i[0], i[1]), lambda i: i[1])
    ex.table("startup.dat", [(round(x, 3), i[2], i[3], i[4], i[5]) for x, i in rows])
    runtimes = list(dict.fromkeys(i[0] for _, i in rows))
    rt_x = [kd.median(x for x, i in rows if i[0] == rt) for rt in runtimes]
    ex.vars("startup", xmax=rows[-1][0] + 1, transports=words(run.transports(scenario="startup")),
            group_x=words(f"{x:g}" for x in centres), group_names=words(labels),
            runtime_x=words(f"{x:g}" for x in rt_x), runtime_names=words(runtimes),
            note=missing_note(**missing))
    return None


def idle(ex):
    run = ex.run
    cpu = [c for c in run.select(scenario="idle")
           if field(c, "cpu_percent_per_worker") is not None]
    gaps = [c for c in run.select(scenario="idle")
            if kd.gap_ns(c.get("variant")) and lat(c) is not None]
    if not cpu and not gaps:
        return "no idle cases"
    cpu.sort(key=lambda c: (order(c.get("transport"), kd.TRANSPORTS),
                            order(c.get("runtime"), kd.RUNTIMES), c.get("workers", 0)))
    ex.table("idle-cpu.dat", [(i + 1, c.get("transport"), c.get("runtime", "?"),
                               tindex(c.get("transport")), c["cpu_percent_per_worker"],
                               f"w{c.get('workers', '?')}") for i, c in enumerate(cpu)]
             or [(0, "-", "-", 6, None, "-")])
    lists = {rt: ex.series(f"idle-gap-{rt}", [c for c in gaps if c.get("runtime") == rt],
                           lambda c: c["transport"],
                           lambda c: (kd.gap_ns(c["variant"]), lat(c), lat(c, "p99")))
             for rt in kd.RUNTIMES}
    refs = {}
    for c in gaps:
        if str(c.get("floor_mechanism", "")).startswith("futex-gap-"):
            refs.setdefault(kd.gap_ns(c["variant"]), []).append(c.get("floor_ns"))
    ex.table("idle-gap-floor.dat", sorted((g, kd.median(v)) for g, v in refs.items())
             or [(None, None)])
    ex.vars("idle", cpu_n=len(cpu), transports=words(run.transports(scenario="idle")),
            thread_list=words(lists["thread"]), process_list=words(lists["process"]),
            has_floor=1 if refs else 0,
            note=missing_note(**{"idle CPU cases": cpu or None, "gap cases": gaps or None,
                                 "same-gap futex reference": refs or None}))
    return None


def contended(ex):
    run = ex.run
    cases = run.select(scenario="contended")
    if not cases:
        return "no contended cases"

    def calm(c):
        """The same case without the competing processes (latency or batch scenario)."""
        scenario = "latency" if c.get("batch") == 1 else "batch"
        found = [u for u in run.select(scenario=scenario, transport=c.get("transport"),
                                       runtime=c.get("runtime"), workers=c.get("workers"),
                                       batch=c.get("batch"), wait=c.get("wait"))]
        return found[0] if found else None

    def key(c):
        return (order(c.get("runtime"), kd.RUNTIMES), order(c.get("transport"), kd.TRANSPORTS))

    single = sorted((c for c in cases if c.get("batch") == 1 and lat(c)), key=key)
    burst = sorted((c for c in cases if (c.get("batch") or 0) > 1 and field(c, "calls_per_s")),
                   key=key)
    ex.table("contended-lat.dat", [(i + 1, c.get("transport"), c.get("runtime", "?"),
                                    tindex(c.get("transport")), lat(c), lat(c, "p99"),
                                    lat(calm(c))) for i, c in enumerate(single)]
             or [(0, "-", "-", 6, None, None, None)])
    ex.table("contended-burst.dat", [(i + 1, c.get("transport"), c.get("runtime", "?"),
                                      tindex(c.get("transport")), c["calls_per_s"],
                                      field(calm(c), "calls_per_s")) for i, c in enumerate(burst)]
             or [(0, "-", "-", 6, None, None)])
    hogs = kd.median(c.get("hogs") for c in cases)
    bsize = kd.median(c.get("batch") for c in burst)
    ex.vars("contended", lat_n=len(single), burst_n=len(burst),
            transports=words(run.transports(scenario="contended")),
            hogs=f"{hogs:.0f}" if hogs is not None else "?",
            burst=f"{bsize:.0f}" if bsize is not None else "?",
            note=missing_note(**{"single-call cases": single or None,
                                 "burst cases": burst or None}))
    return None


CHARTS = {
    "latency": latency,
    "spectrum": spectrum,
    "batch": batch,
    "payload": payload,
    "startup": startup,
    "idle": idle,
    "contended": contended,
}


def common(ex):
    """colors.gp (line types 1-6 the transports, 7 any other, 9 references) and meta.gp."""
    lines = [f'set linetype {i + 1} lc rgb "{kd.COLOURS[t]}" lw 2 pt 7 ps 0.7  # {t}'
             for i, t in enumerate(kd.TRANSPORTS)]
    lines.append(f'set linetype {OTHER_LT} lc rgb "{kd.OTHER_COLOUR}" lw 2 pt 7 ps 0.7')
    lines.append(f'set linetype {REFERENCE_LT} lc rgb "{kd.REFERENCE_COLOUR}" lw 1.5 pt 7 ps 0.6')
    cases = " : ".join(f't eq "{t}" ? {i + 1}' for i, t in enumerate(kd.TRANSPORTS))
    lines.append(f"tindex(t) = {cases} : {OTHER_LT}")
    with open(os.path.join(ex.dir, "colors.gp"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(ex.dir, "meta.gp"), "w", encoding="utf-8") as f:
        f.write(f"footer = {gp_value(ex.run.label())}\n")


def export(run, outdir, charts=None):
    """Writes every chart's files; returns {chart: None or the reason it was skipped}."""
    ex = Export(run, outdir)
    common(ex)
    return {name: fn(ex) for name, fn in CHARTS.items() if charts is None or name in charts}


def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    if len(argv) != 2:
        print("export.py: needs RESULT.json and DIR (see --help)", file=sys.stderr)
        return 2
    try:
        run = kd.load(argv[0])
    except kd.DataError as e:
        print(f"export.py: {e}", file=sys.stderr)
        return 2
    os.makedirs(argv[1], exist_ok=True)
    for name, why in export(run, argv[1]).items():
        print(f"{name}: " + ("written" if why is None else f"skipped ({why})"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
