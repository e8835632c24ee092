#!/usr/bin/python3
"""Write one self-contained HTML page of a knit-bench result (./run.sh report).

usage: report.py [RESULT.json] [--out FILE] [--runs DIR]

RESULT.json defaults to the newest full run (results/runs/, else results/baseline/). The page
(default results/report.html) holds the run's context, its charts inline (drawn now, as
plots.py draws them; the history of the runs saved in --runs, default results/runs/, when
there are any) and every case in one table that sorts by any column (click its header) and
filters by scenario, transport, runtime, balancer and a name search; each case shows its
reference: the raw mechanism it is read against and how many times that mechanism it is.
Nothing is loaded from the network: no external script, style sheet or font, and the page's
Content-Security-Policy forbids it. Exit status: 0, or 2 for bad input or missing tools.
"""
import base64
import html
import json
import os
import sys
import tempfile

import knitdata as kd
import plots

CHART_ORDER = ("latency", "spectrum", "batch", "payload", "startup", "idle", "contended",
               "balancers", "history")
FILTERS = ("scenario", "transport", "runtime", "balancer")
# Nothing but this page: images from data: URIs, its own inline style and script.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")


def si(value, unit, digits=3):
    if value is None:
        return ""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"),
                           (1e-6, "\u00b5"), (1e-9, "n")):
        if abs(value) >= factor or factor == 1e-9:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:g} {unit}"


def ns(value):
    return si(value * 1e-9, "s") if value is not None else ""


def reference_text(case):
    """("3.15x spin", 3.15) or ("none: why", None)."""
    ref = kd.reference(case)
    ratio, mechanism = kd.num(ref.get("ratio")), ref.get("mechanism")
    if ratio is not None:
        return f"{ratio:.3g}x {mechanism or ''}".strip(), ratio
    if mechanism:
        return f"{mechanism} (no ratio)", None
    why = ref.get("none")
    return (f"none: {why}" if isinstance(why, str) else ""), None


# (header, kind, value of a case: (text, sort key))
COLUMNS = (
    ("case", "text", lambda c: (c["name"], c["name"])),
    ("scenario", "text", lambda c: (str(c.get("scenario", "")),) * 2),
    ("transport", "text", lambda c: (str(c.get("transport", "")),) * 2),
    ("runtime", "text", lambda c: (str(c.get("runtime", "")),) * 2),
    ("balancer", "text", lambda c: (str(c.get("balancer", "")),) * 2),
    ("wait", "text", lambda c: (str(c.get("wait", "")),) * 2),
    ("workers", "num", lambda c: (str(c.get("workers", "")), kd.num(c.get("workers")))),
    ("batch", "num", lambda c: (str(c.get("batch", "")), kd.num(c.get("batch")))),
    ("payload", "num", lambda c: (si(kd.num(c.get("payload_bytes")), "B") if
                                  c.get("payload_bytes") is not None else "",
                                  kd.num(c.get("payload_bytes")))),
    ("p50", "num", lambda c: (ns(kd.lat(c)), kd.lat(c))),
    ("p99", "num", lambda c: (ns(kd.lat(c, "p99")), kd.lat(c, "p99"))),
    ("calls/s", "num", lambda c: (si(kd.field(c, "calls_per_s"), "/s"),
                                  kd.field(c, "calls_per_s"))),
    ("bytes/s", "num", lambda c: (si(kd.field(c, "bytes_per_s"), "B/s")
                                  if kd.field(c, "bytes_per_s") else "",
                                  kd.field(c, "bytes_per_s"))),
    ("reference", "num", reference_text),
    ("errors", "num", lambda c: (str(c.get("errors", "")), kd.num(c.get("errors")))),
)

STYLE = """
body { font: 14px/1.45 "DejaVu Sans", sans-serif; margin: 1.5em auto; max-width: 1250px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; }
#context td, #context th { text-align: left; padding: 2px 10px 2px 0; vertical-align: top; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; max-width: 60em; }
.filters { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: center; margin: 0.6em 0; }
.filters label { font-size: 0.9em; }
#case-table { font-size: 12px; width: 100%; }
#case-table th { position: sticky; top: 0; background: #f4f4f4; cursor: pointer;
                 text-align: left; padding: 4px 6px; border-bottom: 1px solid #ccc;
                 white-space: nowrap; user-select: none; }
#case-table th[aria-sort=ascending]::after { content: " \\25B2"; }
#case-table th[aria-sort=descending]::after { content: " \\25BC"; }
#case-table td { padding: 2px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
#case-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
#case-table tr:hover td { background: #f6f9ff; }
"""

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("case-table");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var search = document.getElementById("filter-name");
  var shown = document.getElementById("shown");

  function apply() {
    var text = search.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var ok = selects.every(function (s) {
        return !s.value || row.getAttribute("data-" + s.getAttribute("data-filter")) === s.value;
      }) && (!text || row.cells[0].textContent.toLowerCase().indexOf(text) >= 0);
      row.hidden = !ok;
      if (ok) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " cases";
  }

  function key(row, col, numeric) {
    var v = row.cells[col].getAttribute("data-v");
    if (numeric) { return v === null || v === "" ? null : parseFloat(v); }
    return v === null ? "" : v;
  }

  function sortBy(th) {
    var col = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    rows.sort(function (a, b) {
      var x = key(a, col, numeric), y = key(b, col, numeric);
      if (x === null || y === null) { return x === y ? 0 : x === null ? 1 : -1; }
      if (numeric) { return dir * (x - y); }
      return dir * x.localeCompare(y);
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (row) { frag.appendChild(row); });
    body.appendChild(frag);
  }

  headers.forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
  });
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  document.getElementById("filter-reset").addEventListener("click", function () {
    selects.forEach(function (s) { s.value = ""; });
    search.value = "";
    apply();
  });
  apply();
}());
"""


def esc(value):
    return html.escape(str(value), quote=True)


def context_table(run):
    rows = [("file", run.name), ("schema", run.schema), ("cases", len(run.cases))]
    for key in sorted(run.context):
        value = run.context[key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append((key, text))
    return "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)


def figures(charts):
    out = []
    for name in CHART_ORDER:
        path = charts.get(name)
        if not path:
            continue
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        out.append(f'<figure id="chart-{name}"><img alt="{esc(name)} chart" '
                   f'src="data:image/svg+xml;base64,{data}">'
                   f"<figcaption>{esc(plots.CAPTIONS.get(name, ''))}</figcaption></figure>")
    return "\n".join(out)


def case_rows(run):
    out = []
    for c in run.cases:
        attrs = " ".join(f'data-{f}="{esc(c.get(f, ""))}"' for f in FILTERS)
        cells = []
        for header, kind, get in COLUMNS:
            text, value = get(c)
            v = "" if value is None else (repr(float(value)) if kind == "num" else value)
            cls = ' class="num"' if kind == "num" and header != "reference" else ""
            cells.append(f'<td{cls} data-v="{esc(v)}">{esc(text)}</td>')
        out.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    return "\n".join(out)


def filter_controls(run):
    out = []
    for f in FILTERS:
        values = sorted({str(c.get(f)) for c in run.cases if c.get(f) is not None})
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        out.append(f'<label>{f} <select data-filter="{f}" id="filter-{f}">'
                   f'<option value="">all</option>{options}</select></label>')
    out.append('<label>name <input type="search" id="filter-name" placeholder="contains"></label>')
    out.append('<button type="button" id="filter-reset">reset</button>')
    out.append('<span id="shown"></span>')
    return "\n".join(out)


def page(run, charts):
    head = "".join(f'<th data-type="{kind}">{esc(h)}</th>' for h, kind, _ in COLUMNS)
    title = f"knit-bench: {run.machine}, {run.date}, commit {run.commit}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p>{esc(run.label())}. Every ratio is against a reference measured in the same run, next to
the case: compare ratios, not absolute times, across machines and runs.</p>
<h2>Context</h2>
<table id="context">
{context_table(run)}
</table>
<h2>Charts</h2>
{figures(charts) or "<p>No chart could be drawn from this result.</p>"}
<h2 id="cases">Every case</h2>
<p>Click a column header to sort (again to reverse); the reference column is the case over
its raw mechanism (1x = at the mechanism's own cost).</p>
<div class="filters">
{filter_controls(run)}
</div>
<table id="case-table">
<thead><tr>{head}</tr></thead>
<tbody>
{case_rows(run)}
</tbody>
</table>
<script>{SCRIPT}</script>
</body>
</html>
"""


def main(argv):
    out = os.path.join(plots.ROOT, "results", "report.html")
    runs_dir = os.path.join(plots.ROOT, "results", "runs")
    results = []
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if a in ("--out", "--runs"):
            value = next(it, None)
            if not value:
                plots.say(f"report: {a} needs a value (see --help)")
                return 2
            out, runs_dir = (value, runs_dir) if a == "--out" else (out, value)
        elif a.startswith("-"):
            plots.say(f"report: unknown option {a!r} (see --help)")
            return 2
        else:
            results.append(a)
    if len(results) > 1:
        plots.say("report: give one result (see --help)")
        return 2
    path = results[0] if results else kd.latest_result(plots.ROOT)
    if path is None:
        plots.say("report: no result given and no full run in results/runs/ or "
                  "results/baseline/ (run ./run.sh, or pass RESULT.json)")
        return 2
    try:
        run = kd.load(path)
        with tempfile.TemporaryDirectory(prefix="knit-report-") as tmp:
            written, failures = plots.render(run, tmp, ("svg",))
            written += plots.render_history(runs_dir, ("svg",), outdir=tmp)
            charts = {os.path.splitext(os.path.basename(p))[0]: p for p in written}
            text = page(run, charts)
    except (kd.DataError, plots.Failure) as e:
        plots.say(f"report: {e}")
        return 2
    for failure in failures:
        plots.say(f"report: chart FAILED {failure}")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(plots.shown(out))
    plots.say(f"report: {len(run.cases)} cases and {len(charts)} charts from {plots.shown(path)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
