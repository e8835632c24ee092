"""Ratios of two builds with distribution-free confidence bounds, and the verdict rule.

Everything works on log values, so a ratio NEW/BASE of 1.10 means 10 % slower (the figures
are costs: ns per call, higher is worse) and a slowdown and the matching speed-up are
symmetric.

paired(base, new)    one ratio per pair (interleaved runs, `./run.sh gate`): the
                     Hodges-Lehmann estimate (median of the Walsh averages of the per-pair log
                     ratios) and its one-sided bounds from the exact Wilcoxon signed-rank
                     distribution. Needs 7 pairs for a 99 % bound (2^-7 < 0.01).
unpaired(base, new)  independent samples per side (several runs per side, `./run.sh compare
                     A1 A2 ... -- B1 B2 ...`): the Hodges-Lehmann shift (median of all
                     pairwise log differences) with bounds from the exact Mann-Whitney U
                     distribution. 5 runs a side reach 99 % (1/252 < 0.01); 3 never do.

Both are exact for continuous data (ties are rare in ns figures) and assume nothing about the
shape of the noise, so the occasional run that lands in the machine's other mode moves the
estimate by one rank, not by its size.
"""
import math
from functools import lru_cache

import numpy as np

# A verdict per case. Only "regression" fails the gate; "undecided" (the samples cannot reach
# the confidence at all) makes it unable to decide; "inconclusive" (no significant change, but
# the upper bound is above 1 + threshold: a slowdown of the threshold's size is not excluded)
# does too with --strict.
REGRESSION, SLOWER, SAME, INCONCLUSIVE, FASTER, IMPROVEMENT, UNDECIDED = (
    "regression", "slower", "same", "inconclusive", "faster", "improvement", "undecided")


@lru_cache(maxsize=None)
def signed_rank_cdf(n):
    """P(T <= t) for t = 0 .. n(n+1)/2, T the Wilcoxon signed-rank statistic of n pairs under
    the null hypothesis (each sign + or - with probability 1/2)."""
    p = np.zeros(n * (n + 1) // 2 + 1)
    p[0] = 1.0
    for i in range(1, n + 1):
        shifted = np.zeros_like(p)
        shifted[i:] = p[:-i]
        p = 0.5 * p + 0.5 * shifted
    return np.cumsum(p)


@lru_cache(maxsize=None)
def mann_whitney_cdf(m, n):
    """P(U <= u) for u = 0 .. m*n, U the Mann-Whitney statistic of samples of m and n under the
    null hypothesis (every ordering of the m+n values equally likely)."""
    # counts[j]: the distribution for (i, j) as i grows row by row; N(i, j, u) =
    # N(i-1, j, u-j) + N(i, j-1, u), the largest value being from the first or second sample.
    row = [np.ones(1) for _ in range(n + 1)]  # i = 0: one ordering, U = 0
    for i in range(1, m + 1):
        new = [np.ones(1)]  # j = 0
        for j in range(1, n + 1):
            c = np.zeros(i * j + 1)
            up = row[j]  # (i-1, j): shift by j
            c[j:j + len(up)] += up
            left = new[j - 1]  # (i, j-1)
            c[:len(left)] += left
            new.append(c)
        row = new
    counts = row[n]
    return np.cumsum(counts) / counts.sum()


def order_index(cdf, alpha):
    """The k (1-based) of the order statistic that bounds the parameter at level 1 - alpha:
    the largest k with P(stat <= k - 1) <= alpha; 0 when even the most extreme statistic is
    more likely than alpha (the samples cannot reach that confidence)."""
    ok = np.nonzero(cdf <= alpha * (1 + 1e-12))[0]
    return int(ok[-1]) + 1 if len(ok) else 0


def _logs(values, what):
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"{what} needs positive, finite figures")
    return np.log(v)


def robust_spread(d):
    """1.4826 x the median absolute deviation: the standard deviation for normal noise, not
    moved by a few outliers."""
    d = np.asarray(d, dtype=float)
    return float(1.4826 * np.median(np.abs(d - np.median(d)))) if d.size else 0.0


def _ratio(log_ratio):
    """exp(), saturating at inf: figures of wildly different size are still a verdict."""
    try:
        return math.exp(log_ratio)
    except OverflowError:
        return math.inf


def _log(ratio):
    return math.log(ratio) if ratio > 0 else -math.inf


def _result(est, lo, hi, k, n_stat, min_p, p_value, spread, extra):
    out = {"estimate": _ratio(est), "lower": _ratio(lo) if k else None,
           "upper": _ratio(hi) if k else None, "decidable": bool(k),
           "min_p": min_p, "p_value": p_value, "spread": spread}
    out.update(extra)
    return out


def paired(base, new, confidence=0.99):
    """Ratio new/base from pairs (base[i], new[i]): estimate, one-sided bounds at `confidence`
    (lower: the ratio is at least this; upper: at most this), the smallest p-value n pairs can
    give, the one-sided p-value of "new is slower", and the per-pair log-ratio spread."""
    if len(base) != len(new):
        raise ValueError("paired samples need as many base as new figures")
    d = _logs(new, "new") - _logs(base, "base")
    n = d.size
    walsh = np.sort(((d[:, None] + d[None, :]) / 2)[np.triu_indices(n)])
    cdf = signed_rank_cdf(n)
    k = order_index(cdf, 1.0 - confidence)
    lo, hi = (walsh[k - 1], walsh[len(walsh) - k]) if k else (None, None)
    nz = d[d != 0]
    p = 1.0
    if nz.size:
        ranks = _ranks(np.abs(nz))
        t = float(ranks[nz > 0].sum())
        c = signed_rank_cdf(nz.size)
        below = int(math.ceil(t)) - 1
        p = float(1.0 - c[below]) if below >= 0 else 1.0
    return _result(float(np.median(walsh)), lo, hi, k, n, 0.5 ** n, p, robust_spread(d),
                   {"n": n, "log_ratios": d.tolist()})


def unpaired(base, new, confidence=0.99):
    """Ratio new/base from independent samples: the Hodges-Lehmann shift and its one-sided
    Mann-Whitney bounds at `confidence`; the same fields as paired()."""
    x, y = _logs(base, "base"), _logs(new, "new")
    m, n = x.size, y.size
    diffs = np.sort((y[None, :] - x[:, None]).ravel())
    cdf = mann_whitney_cdf(m, n)
    k = order_index(cdf, 1.0 - confidence)
    lo, hi = (diffs[k - 1], diffs[len(diffs) - k]) if k else (None, None)
    u = float(np.sum(diffs > 0) + 0.5 * np.sum(diffs == 0))
    below = int(math.ceil(u)) - 1
    p = float(1.0 - cdf[below]) if below >= 0 else 1.0
    spread = robust_spread(np.concatenate([x - np.median(x), y - np.median(y)]))
    return _result(float(np.median(diffs)), lo, hi, k, m * n, 1.0 / math.comb(m + n, m), p,
                   spread, {"n": min(m, n), "n_base": m, "n_new": n})


def _ranks(a):
    """Ranks 1..n of a, ties sharing their mean rank."""
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(a.size)
    ranks[order] = np.arange(1, a.size + 1)
    for v in np.unique(a):
        tie = a == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def margin_for(spread, margin, spread_factor):
    """The noise margin of a case: the default, or more for a case whose run-to-run spread
    (per-pair log ratios, robust) needs it: spread_factor x spread."""
    return max(margin, spread_factor * spread)


def judge(r, threshold, margin):
    """The verdict of one ratio r (from paired() or unpaired()): threshold and margin are
    fractions (0.05 = 5 %). A regression needs the lower bound above 1 + margin and the
    estimate above 1 + threshold; an improvement is the mirror image in log space. With
    neither, the case is the same - or inconclusive when its upper bound is above
    1 + threshold, so a slowdown of the threshold's size cannot be excluded."""
    if not r["decidable"]:
        return UNDECIDED
    up, down = math.log1p(margin), math.log1p(threshold)
    est, lo, hi = _log(r["estimate"]), _log(r["lower"]), _log(r["upper"])
    if lo > up:
        return REGRESSION if est > down else SLOWER
    if hi < -up:
        return IMPROVEMENT if est < -down else FASTER
    return INCONCLUSIVE if hi > down else SAME
