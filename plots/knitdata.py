"""Reading knit-bench results for the charts and the report page.

One place knows the results document (results/SCHEMA.md): where the per-case records are
(`cases` in knit-bench/2, `benchmarks` in knit-bench/1), which fields are optional, how a case
is labelled, and which colour each transport has. Every other file of plots/ reads results
through `load()` and the helpers below, and never assumes an optional field is present.
"""
import glob
import json
import math
import os
import re
import statistics

# One colour per transport in every chart (Okabe-Ito: safe for the common colour-vision
# deficiencies). Floor references and other mechanisms are drawn in REFERENCE_COLOUR.
TRANSPORTS = ("knit", "pipe", "unix", "seqpacket", "tcp", "seq")
# The shared-memory transports (lane memory, spin then futex; knit's references and default
# wait): seq is knit's sequence-word rival, in knit's lighter blue.
SHARED_MEMORY = ("knit", "seq")
COLOURS = {
    "knit": "#0072B2",
    "pipe": "#E69F00",
    "unix": "#009E73",
    "seqpacket": "#CC79A7",
    "tcp": "#D55E00",
    "seq": "#56B4E9",
}
REFERENCE_COLOUR = "#555555"
OTHER_COLOUR = "#999999"
RUNTIMES = ("thread", "process")
WAITS = ("adaptive", "block", "spin", "park", "busy")
BALANCERS = ("roundRobin", "firstIdle", "randomLane", "firstIdleOrRandom", "steal", "-")
SHAPES = ("flat", "uniform", "heavy-tailed", "heavy", "bimodal")

# Options of knit-bench that select part of the matrix: a run with one is not a full run.
PARTIAL_OPTIONS = ("--quick", "--scenario", "--transport", "--runtime", "--balancer",
                   "--workers")


class DataError(Exception):
    """A results file that cannot be read; the message says which file and why."""


def colour(transport):
    return COLOURS.get(transport, OTHER_COLOUR)


def order(value, known):
    """Sort key: known names in their order first, the rest alphabetically after them."""
    return (known.index(value), "") if value in known else (len(known), str(value))


def num(value):
    """A finite float, or None for anything else (missing, null, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def median(values):
    values = [v for v in (num(x) for x in values) if v is not None]
    return statistics.median(values) if values else None


class Run:
    """One results document: `context` (dict) and `cases` (list of dicts, run order)."""

    def __init__(self, path, doc):
        self.path = path
        self.schema = doc.get("schema")
        context = doc.get("context")
        self.context = context if isinstance(context, dict) else {}
        records = doc.get("cases")
        if not isinstance(records, list):
            records = doc.get("benchmarks")
        if not isinstance(records, list):
            raise DataError(f"{path}: no 'cases' or 'benchmarks' array")
        # knit-bench/2 keeps Google Benchmark's per-repetition entries in `benchmarks`; only
        # records that carry a scenario are knit's cases.
        self.cases = [c for c in records
                      if isinstance(c, dict) and isinstance(c.get("name"), str)
                      and isinstance(c.get("scenario"), str)]
        self.by_name = {c["name"]: c for c in self.cases}

    @property
    def name(self):
        return os.path.basename(self.path)

    def ctx(self, key, default="?"):
        value = self.context.get(key)
        return default if value is None or value == "" else value

    @property
    def commit(self):
        commit = str(self.ctx("git_commit", "unknown"))
        dirty = commit.endswith("-dirty")
        short = commit[:-6][:7] if dirty else commit[:7]
        return short + ("-dirty" if dirty else "")

    @property
    def date(self):
        return str(self.ctx("date"))[:10]

    @property
    def quick(self):
        return self.context.get("quick") is True

    @property
    def full(self):
        """A run of the whole default matrix (not --quick, no filter)."""
        words = str(self.context.get("command_line", "")).split()
        return not self.quick and not any(w == o or w.startswith(o + "=")
                                          for w in words for o in PARTIAL_OPTIONS)

    @property
    def machine(self):
        host, cpus = self.ctx("host"), self.context.get("cpus")
        return f"{host}, {cpus} CPUs" if isinstance(cpus, int) else str(host)

    def label(self):
        """Machine, date and commit of the data: every chart's footer."""
        kind = "quick run" if self.quick else "full run" if self.full else "partial run"
        return (f"{self.machine} ({self.ctx('cpu_model')}) | {self.date} | "
                f"commit {self.commit} | {kind} | {self.name}")

    def select(self, **want):
        """Cases whose fields equal every keyword (a callable value is a predicate)."""
        out = []
        for c in self.cases:
            if all(v(c.get(k)) if callable(v) else c.get(k) == v for k, v in want.items()):
                out.append(c)
        return out

    def one(self, **want):
        found = self.select(**want)
        return found[0] if found else None

    def transports(self, **want):
        names = {c.get("transport") for c in self.select(**want)}
        return sorted((t for t in names if isinstance(t, str)), key=lambda t: order(t, TRANSPORTS))


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise DataError(f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("knit-bench/"):
        raise DataError(f"{path} is not a knit-bench results document (no 'knit-bench/N' schema)")
    return Run(path, doc)


def lat(case, key="p50"):
    """A latency statistic in ns (`p50`, `p99`, ...) or None."""
    stats = case.get("latency_ns") if case else None
    return num(stats.get(key)) if isinstance(stats, dict) else None


def field(case, key):
    return num(case.get(key)) if case else None


def quantiles(case):
    """(quantile, ns) pairs of a case's latency, in order: min as 0, every `pNN` key as
    0.NN (p50 0.5, p999 0.999, ...), max as 1 - 1/iterations. Empty without figures."""
    stats = case.get("latency_ns") if case else None
    if not isinstance(stats, dict):
        return []
    points = []
    for key, value in stats.items():
        v = num(value)
        m = re.fullmatch(r"p(\d+)", key)
        if v is None or v <= 0:
            continue
        if m:
            points.append((float("0." + m.group(1)), v))
        elif key == "min":
            points.append((0.0, v))
        elif key == "max":
            n = num(case.get("iterations")) or 0
            if n > 1:
                points.append((1.0 - 1.0 / n, v))
    points.sort()
    return points


def nines(q):
    """HdrHistogram's percentile axis: 0.9 -> 1, 0.99 -> 2, 0.999 -> 3."""
    return -math.log10(1.0 - q) if q < 1 else None


def floor_of(run, mechanism, cases=()):
    """A floor reference in ns: the median `floor_ns` of `cases` measured against
    `mechanism`, else the p50 of the run's own `floor` case of that mechanism."""
    refs = [c.get("floor_ns") for c in cases if c.get("floor_mechanism") == mechanism]
    ref = median(refs)
    if ref is None:
        ref = lat(run.one(scenario="floor", transport=mechanism))
    return ref


def gap_ns(text):
    """`gap-100ms` -> 1e8 (ns); None when it is not a gap variant."""
    m = re.fullmatch(r"gap-(\d+)(ns|us|ms|s)", str(text))
    if not m:
        return None
    return int(m.group(1)) * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]


def default_wait(case):
    """The case runs its transport's default wait policy: knit and seq adaptive (spin, then
    block), a message transport block (poll() at once)."""
    default = "adaptive" if case.get("transport") in SHARED_MEMORY else "block"
    return case.get("wait") in (None, default)


def reference(case):
    """The case's reference as a dict (knit-bench/2 `reference`; knit-bench/1 from its
    floor_* fields): mechanism, kind, ns, ratio, or `none` (why there is none)."""
    ref = case.get("reference") if case else None
    if isinstance(ref, dict):
        return ref
    if case and case.get("floor_mechanism"):
        return {"mechanism": case["floor_mechanism"], "ns": case.get("floor_ns"),
                "p99_ns": case.get("floor_p99_ns"), "ratio": case.get("floor_ratio")}
    return {}


def repetition_times(case):
    """Per repetition, the time the case is read by (knit-bench/2's Google Benchmark
    `real_time`): ns per operation for a throughput case (its reference is read by
    throughput, or it is a burst), else the repetition's p50 (all knit-bench/1 cases)."""
    p50 = case.get("repetition_p50_ns") or []
    per_op = case.get("repetition_ns_per_op") or []
    throughput = reference(case).get("kind") == "throughput" or (num(case.get("batch")) or 0) > 1
    out = []
    for i in range(max(len(p50), len(per_op))):
        op = num(per_op[i]) if i < len(per_op) else None
        value = op if throughput and op and op > 0 else num(p50[i]) if i < len(p50) else None
        if value and value > 0:
            out.append(value)
    return out


def latest_result(root):
    """The newest full run under results/runs/, else the newest committed full baseline."""
    def newest(paths):
        runs = []
        for p in paths:
            try:
                run = load(p)
            except DataError:
                continue
            if run.full:
                runs.append((str(run.ctx("date", "")), os.path.basename(p), p))
        return max(runs)[2] if runs else None

    return (newest(glob.glob(os.path.join(root, "results", "runs", "*.json")))
            or newest(glob.glob(os.path.join(root, "results", "baseline", "*.json"))))
