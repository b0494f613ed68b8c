"""The statistics behind every reading: against scipy's own tests, Holm by hand, and the detectable
difference against the power it promises (noncentral t)."""

import math
import statistics

import pytest
from scipy import stats

from attention_zoo.seed_statistics import Difference, holm, paired, summarize, welch

A = [91.1, 90.6, 91.4, 90.9, 91.0]
B = [91.5, 90.9, 92.0, 91.2, 91.6]


def test_summary_is_the_mean_with_its_student_t_interval():
    s = summarize(A)
    half = stats.t.ppf(0.975, 4) * statistics.stdev(A) / math.sqrt(5)
    assert s.mean == pytest.approx(statistics.mean(A)) and s.std == pytest.approx(statistics.stdev(A))
    assert (s.low, s.high) == pytest.approx((s.mean - half, s.mean + half))
    assert summarize([90.0]).low is None  # one seed: no interval


def test_welch_equals_scipy_and_its_interval_uses_welch_satterthwaite():
    d = welch(A, B)
    assert d.mean == pytest.approx(statistics.mean(B) - statistics.mean(A))
    assert d.p == pytest.approx(stats.ttest_ind(B, A, equal_var=False).pvalue)
    interval = stats.ttest_ind(B, A, equal_var=False).confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((interval.low, interval.high))


def test_paired_equals_scipy_on_the_shared_seeds_only():
    d = paired(dict(enumerate(A)), {**dict(enumerate(B)), 9: 50.0})  # seed 9 has no partner
    assert d.n == 5 and d.p == pytest.approx(stats.ttest_rel(B, A).pvalue)
    interval = stats.ttest_rel(B, A).confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((interval.low, interval.high))
    with pytest.raises(ValueError, match="2\\+ seeds run on both sides"):
        paired({0: 1.0}, {0: 2.0, 1: 3.0})


@pytest.mark.parametrize("test", ["welch", "paired"])
def test_the_detectable_difference_is_found_with_80_percent_power(test):
    """At the detectable difference, the noncentral t gives the test about 80% power."""
    d = welch(A, B) if test == "welch" else paired(dict(enumerate(A)), dict(enumerate(B)))
    se = (d.high - d.mean) / stats.t.ppf(0.975, _df(d, test))
    df, crit = _df(d, test), stats.t.ppf(0.975, _df(d, test))
    power = stats.nct.sf(crit, df, d.detectable / se) + stats.nct.cdf(-crit, df, d.detectable / se)
    assert 0.77 < power < 0.82


def _df(d: Difference, test: str) -> float:
    if test == "paired":
        return d.n - 1
    va, vb = statistics.variance(A) / 5, statistics.variance(B) / 5
    return (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)


def test_holm_by_hand_and_a_reading_needs_interval_and_corrected_p():
    ds = [Difference("welch", 1.0, 0.1, 1.9, p, 0.5, 5) for p in (0.01, 0.04, 0.03)]
    holm(ds)
    assert [d.p_holm for d in ds] == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01, max(2 x 0.03, .), 1 x 0.04 -> 0.06
    assert ds[0].resolved() and not ds[1].resolved()  # interval excludes 0 but Holm's p is 0.06
    assert not Difference("welch", 1.0, -0.1, 2.1, 0.001, 0.5, 5).resolved()  # interval holds 0
