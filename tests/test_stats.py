"""rsi_rl.analysis.stats: each statistic against a hand computation or a known value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsi_rl.analysis.stats import (
    bootstrap_ci,
    censored_median,
    first_hit,
    holm,
    holm_correct,
    improvement,
    min_detectable_effect,
    normalised_regret,
    paired_test,
    pairs_needed,
    pooled_sd,
    regret_band,
    wilcoxon_power,
)


def test_normalised_regret_and_improvement():
    assert normalised_regret(0.9, 0.5, 0.9) == 0.0
    assert normalised_regret(0.5, 0.5, 0.9) == 1.0
    assert normalised_regret(0.7, 0.5, 0.9) == pytest.approx(0.5)
    assert normalised_regret(1.0, 2.0, 0.0, maximize=False) == pytest.approx(0.5)
    assert normalised_regret(0.5, 0.5, 0.5) == 0.0  # no headroom: nothing to regret
    assert normalised_regret(0.3, 0.5, 0.9) == 1.0  # worse than the start: clipped
    assert improvement(0.7, 0.5) == pytest.approx(0.2)
    assert improvement(0.7, 0.5, maximize=False) == pytest.approx(-0.2)


def test_holm_against_a_hand_computation():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> 0.06
    # (adjusted values never decrease in that order), returned in the input's order
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.2]) == pytest.approx([0.2])  # one comparison: unchanged
    assert holm([]) == []
    assert holm([math.nan, 0.01]) == pytest.approx([1.0, 0.02])  # NaN counts as 1


def test_wilcoxon_p_values_match_the_exact_distribution():
    # twelve positive differences: the exact two-sided p is 2 / 2**12
    p = paired_test([0.0] * 12, list(np.linspace(0.1, 0.5, 12)))
    assert (p.wins, p.ties, p.losses, p.n) == (12, 0, 0, 12)
    assert p.p_value == pytest.approx(2 / 2**12)
    # differences +1, +2, +3, -4: T = min(W+, W-) = 4; the subsets of ranks {1..4}
    # summing to at most 4 are {}, {1}, {2}, {3}, {4}, {1,2}, {1,3}: p = 2 * 7/16
    p = paired_test([1.0, 2.0, 3.0, -4.0], [0.0] * 4)
    assert (p.wins, p.losses) == (1, 3)
    assert p.p_value == pytest.approx(0.875)
    assert p.mean_diff == pytest.approx(0.5)


def test_paired_test_ties_missing_values_and_shapes():
    same = paired_test([0.2, 0.3], [0.2, 0.3])
    assert same.p_value == 1.0 and same.ties == 2
    p = paired_test([0.1, math.nan, 0.2], [0.3, 0.4, math.nan])  # only the first pair counts
    assert p.n == 1 and p.wins == 1
    with pytest.raises(ValueError, match="3 values against 2"):
        paired_test([1.0, 2.0, 3.0], [1.0, 2.0])
    assert "p_holm" not in same.to_dict()


def test_holm_correct_sets_p_holm_per_test():
    tests = [paired_test([0.0] * 12, list(np.linspace(0.1, 0.5, 12))), paired_test([1, 2], [1, 2])]
    corrected = holm_correct(tests)
    assert corrected[0].p_holm == pytest.approx(2 * 2 / 2**12)
    assert corrected[1].p_holm == 1.0
    assert corrected[0].to_dict()["p_holm"] == corrected[0].p_holm


def test_bootstrap_ci():
    lo, hi = bootstrap_ci([0.1, 0.2, 0.3, 0.4])
    assert 0.1 <= lo <= 0.25 <= hi <= 0.4
    assert bootstrap_ci([0.1, 0.2, 0.3, 0.4]) == (lo, hi)  # seeded: the same every time
    assert bootstrap_ci([0.3]) == (0.3, 0.3)
    assert bootstrap_ci([0.0, 0.0, 0.0]) == (0.0, 0.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([0.2, None, math.nan, 0.2]) == (0.2, 0.2)  # missing values dropped
    # for 400 values the 95% interval is close to the normal one, mean +- 1.96 se
    x = np.random.default_rng(1).normal(size=400)
    lo, hi = bootstrap_ci(list(x))
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - half, abs=0.2 * half)
    assert hi == pytest.approx(x.mean() + half, abs=0.2 * half)


def test_first_hit_and_censored_median():
    assert first_hit([0.6, 0.7, 0.8], 0.7) == 2  # reaching it counts
    assert first_hit([0.6, 0.7], 0.9) is None
    assert first_hit([2.0, 1.0], 1.5, maximize=False) == 2
    # one hit at 1, two misses counted as K + 1 = 5: the median is 5, not 1
    assert censored_median([1, None, None], budget=4) == 5.0
    assert censored_median([3, 3, 3], budget=4) == 3.0
    assert math.isnan(censored_median([], budget=4))


def test_pooled_sd_removes_each_groups_mean():
    # squares 0.02 + 0.02 over 2 + 2 degrees of freedom; a single value carries no spread
    assert pooled_sd([[0.7, 0.8, 0.9], [0.5, 0.6, 0.7], [0.1]]) == pytest.approx(0.1)
    assert pooled_sd([[0.5], []]) is None


def test_regret_band_is_clipped_to_the_unit_interval():
    mean, low, high = regret_band([[0.0, 0.0], [0.3, 0.0], [0.0, 0.0]])
    assert mean[0] == pytest.approx(0.1) and low.min() == 0.0 and high.max() <= 1.0
    mean, low, high = regret_band([[0.5, 0.5]])
    assert list(low) == list(high) == [0.5, 0.5]  # one campaign: no band


def test_paired_test_one_sided_halves_the_p_value_in_the_claimed_direction():
    a = [0.1, 0.2, 0.15, 0.3, 0.05, 0.12, 0.22, 0.18]
    b = [x + d for x, d in zip(a, [0.1, 0.12, 0.08, 0.2, 0.15, 0.11, 0.3, 0.05], strict=True)]
    two, less = paired_test(a, b), paired_test(a, b, "less", sd=True)
    assert less.p_value == pytest.approx(two.p_value / 2)
    assert paired_test(a, b, "greater").p_value > 0.9
    assert less.alternative == "less" and less.to_dict()["alternative"] == "less"
    assert less.sd_diff == pytest.approx(float(np.std(np.subtract(a, b), ddof=1)))
    with pytest.raises(ValueError, match="alternative 'lower'"):
        paired_test(a, b, "lower")


def test_wilcoxon_power_rises_with_pairs_and_is_alpha_under_the_null():
    powers = [wilcoxon_power(0.1, 0.2, n, sims=1000) for n in (8, 16, 32, 64)]
    assert powers == sorted(powers) and powers[0] < 0.4 and powers[-1] > 0.95
    assert wilcoxon_power(0.0, 0.2, 40, sims=4000) == pytest.approx(0.05, abs=0.015)
    # one-sided in the claimed direction is more powerful; in the other, powerless
    assert wilcoxon_power(0.1, 0.2, 16, alternative="less") > powers[1]
    assert wilcoxon_power(0.1, 0.2, 16, alternative="greater") < 0.01
    # five pairs can never reach p < 0.05 two-sided (the smallest exact p is 2/32)
    assert wilcoxon_power(1.0, 0.0, 5) == 0.0 and wilcoxon_power(1.0, 0.0, 6) == 1.0


def test_pairs_needed_inverts_the_power():
    n = pairs_needed(0.1, 0.2, sims=1000)
    assert n is not None and 25 <= n <= 45  # normal theory: (2.80 * 2)^2 / 0.955 = 33
    assert (
        wilcoxon_power(0.1, 0.2, n, sims=1000) >= 0.8 > wilcoxon_power(0.1, 0.2, n - 1, sims=1000)
    )
    assert pairs_needed(0.1, 0.2, alternative="less", sims=1000) < n
    assert pairs_needed(0.0, 0.2) is None
    mde = min_detectable_effect(0.2, n, sims=1000)
    assert mde is not None and mde == pytest.approx(0.1, rel=0.15)
    assert min_detectable_effect(0.2, 5) is None  # too few pairs for any effect
