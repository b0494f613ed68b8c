"""What a handful of seeds can say about a difference: intervals, two tests, Holm, detectable effects.

Used by scripts/results.py for the readings under each comparison table. For a row: mean, sample
standard deviation and the 95% Student-t interval of the mean. For a difference B - A:

- Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom): valid whenever the
  runs of A and B are independent, whatever the seeds share.
- The paired t-test on the per-seed differences: valid only when seed s really pairs the two runs
  (same initial backbone weights and data order), which removes the seed-to-seed variation that
  both share. Where it is not valid the caller says so instead of computing it.

Each test gives the difference, its 95% interval, the two-sided p-value and the smallest
difference it would detect with 80% power at alpha 0.05, (t_{1-alpha/2, df} + t_{power, df}) x SE,
the usual t approximation (e.g. Cohen 1988, ch. 2) evaluated at the observed standard error.
The p-values of one page's comparisons are Holm-corrected per test. A difference is "resolved"
only when its interval excludes 0 and its Holm-corrected p is below alpha; otherwise the reading
is "not resolved", never "no difference".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05
POWER = 0.80


@dataclass
class Summary:
    mean: float
    std: float | None  # sample standard deviation (n - 1)
    low: float | None  # 95% interval of the mean
    high: float | None
    n: int


@dataclass
class Difference:
    test: str  # "welch" | "paired"
    mean: float  # B - A
    low: float
    high: float
    p: float
    detectable: float  # smallest |difference| found with POWER at ALPHA, at this standard error
    n: int  # seeds (paired) or runs of the smaller group (Welch)
    p_holm: float | None = None

    def resolved(self) -> bool:
        p = self.p if self.p_holm is None else self.p_holm
        return not self.low <= 0.0 <= self.high and p < ALPHA


def summarize(values: list[float]) -> Summary:
    n, mean = len(values), statistics.fmean(values)
    if n < 2:
        return Summary(mean, None, None, None, n)
    std = statistics.stdev(values)
    half = stats.t.ppf(1 - ALPHA / 2, n - 1) * std / math.sqrt(n)
    return Summary(mean, std, mean - half, mean + half, n)


def _difference(test: str, mean: float, se: float, df: float, n: int) -> Difference:
    if se == 0.0:  # identical values: the difference is exact
        return Difference(test, mean, mean, mean, 0.0 if mean else 1.0, 0.0, n)
    t_crit = stats.t.ppf(1 - ALPHA / 2, df)
    p = 2 * stats.t.sf(abs(mean / se), df)
    detectable = (t_crit + stats.t.ppf(POWER, df)) * se
    return Difference(test, mean, mean - t_crit * se, mean + t_crit * se, float(p), float(detectable), n)


def welch(a: list[float], b: list[float]) -> Difference:
    """B - A from two independent groups of runs (at least 2 each)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's test needs 2+ runs on each side; got {len(a)} and {len(b)}.")
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se else len(a) + len(b) - 2
    return _difference("welch", statistics.fmean(b) - statistics.fmean(a), se, df, min(len(a), len(b)))


def paired(a: dict[int, float], b: dict[int, float]) -> Difference:
    """B - A over the seeds both have (at least 2), each seed's runs a pair."""
    seeds = sorted(a.keys() & b.keys())
    if len(seeds) < 2:
        raise ValueError(f"The paired test needs 2+ seeds run on both sides; shared seeds: {seeds}.")
    d = [b[s] - a[s] for s in seeds]
    se = statistics.stdev(d) / math.sqrt(len(d))
    return _difference("paired", statistics.fmean(d), se, len(d) - 1, len(d))


def holm(differences: list[Difference]) -> None:
    """Set ``p_holm`` on each: Holm's step-down adjustment over this family of comparisons."""
    order = sorted(range(len(differences)), key=lambda i: differences[i].p)
    running, m = 0.0, len(differences)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * differences[i].p))
        differences[i].p_holm = running
