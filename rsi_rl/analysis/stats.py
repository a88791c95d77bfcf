"""Statistics of a bench: intervals, paired tests, multiple-comparison correction, regret.

Numbers in, numbers out: nothing here knows about campaigns or files. ``scipy.stats``
does the resampling and the Wilcoxon test (imported on first use).

Example::

    >>> normalised_regret(best=0.75, start=0.5, best_known=1.0)
    0.5
    >>> holm([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]

Power of the paired Wilcoxon test (normal differences, by simulation)::

    >>> round(wilcoxon_power(effect=0.1, sd=0.2, n=40), 2)
    0.85
    >>> pairs_needed(effect=0.1, sd=0.2)  # pairs for 80% power at alpha = 0.05
    36
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

_N = TypeVar("_N", int, float)

#: differences at most this large are ties
TIE = 1e-12

#: alternatives of a paired test: ``less`` claims ``a`` is lower (better) than ``b``
ALTERNATIVES = ("two-sided", "less", "greater")


def finite(values: Iterable[float | None]) -> list[float]:
    """The finite numbers among ``values`` (None and NaN dropped)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def mean_or_none(values: Iterable[float | None]) -> float | None:
    """The mean of the finite ``values``, None when there is none."""
    x = finite(values)
    return float(np.mean(x)) if x else None


def median_or_none(values: Iterable[float | None]) -> float | None:
    """The median of the finite ``values``, None when there is none."""
    x = finite(values)
    return float(np.median(x)) if x else None


def bootstrap_ci(
    values: Sequence[float | None], n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (``scipy.stats.bootstrap``).

    Non-finite values are left out; no value gives ``(nan, nan)``, one value (or values
    all equal) a zero-width interval.
    """
    x = np.asarray(finite(values), dtype=float)
    if len(x) == 0:
        return (math.nan, math.nan)
    if len(x) == 1 or float(np.ptp(x)) == 0.0:
        return (float(x[0]), float(x[0]))
    from scipy.stats import bootstrap

    res = bootstrap(
        (x,),
        np.mean,
        n_resamples=int(n_boot),
        confidence_level=1.0 - alpha,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return (float(ci.low), float(ci.high))


@dataclass(frozen=True)
class PairedTest:
    """Paired comparison of ``a`` with ``b`` (lower is better) over the same pairs.

    ``wins`` counts pairs where ``a`` is lower, ``losses`` where it is higher;
    ``p_value`` is the Wilcoxon signed-rank p-value of ``alternative`` (two-sided unless
    declared; 1.0 when every pair ties), ``p_holm`` the same after Holm's correction over
    its family of comparisons (set by :func:`holm_correct`; None until then), ``sd_diff``
    the standard deviation of the paired differences.
    """

    n: int
    wins: int
    ties: int
    losses: int
    mean_diff: float
    p_value: float
    p_holm: float | None = None
    alternative: str = "two-sided"
    sd_diff: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "mean_diff": self.mean_diff,
            "p_value": self.p_value,
        }
        if self.p_holm is not None:
            out["p_holm"] = self.p_holm
        if self.alternative != "two-sided":
            out["alternative"] = self.alternative
        if self.sd_diff is not None:
            out["sd_diff"] = self.sd_diff
        return out


def paired_test(
    a: Sequence[float], b: Sequence[float], alternative: str = "two-sided", sd: bool = False
) -> PairedTest:
    """Wins of ``a`` over ``b`` (lower is better) and the Wilcoxon signed-rank p-value.

    Pairs where either value is not finite are left out. Zero differences are dropped
    before ranking (``zero_method="wilcox"``); scipy picks the exact distribution for
    small samples without ties, the normal approximation otherwise. ``alternative``
    ``less`` tests the claim that ``a`` is lower than ``b`` (one-sided); ``sd`` also
    records the standard deviation of the differences (``sd_diff``).
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}: use one of {', '.join(ALTERNATIVES)}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired_test needs pairs: {len(x)} values against {len(y)}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    d = x - y
    p = 1.0
    if (np.abs(d) > TIE).any():
        from scipy.stats import wilcoxon

        try:
            p = float(wilcoxon(x, y, zero_method="wilcox", alternative=alternative).pvalue)
        except ValueError:  # too few non-zero differences for scipy
            p = 1.0
        if not math.isfinite(p):
            p = 1.0
    return PairedTest(
        n=int(len(d)),
        wins=int((d < -TIE).sum()),
        ties=int((np.abs(d) <= TIE).sum()),
        losses=int((d > TIE).sum()),
        mean_diff=float(d.mean()) if len(d) else math.nan,
        p_value=p,
        alternative=alternative,
        sd_diff=(float(d.std(ddof=1)) if len(d) > 1 else None) if sd else None,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; a NaN counts as 1).

    The i-th smallest of m p-values is multiplied by ``m - i + 1`` (i from 1), capped at
    1, and made non-decreasing in that order; rejecting where the adjusted value is below
    alpha controls the family-wise error rate at alpha.
    """
    p = np.asarray([v if math.isfinite(v) else 1.0 for v in p_values], dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]


def holm_correct(tests: Sequence[PairedTest]) -> list[PairedTest]:
    """``tests`` (one family of comparisons) with ``p_holm`` set by :func:`holm`."""
    from dataclasses import replace

    adjusted = holm([t.p_value for t in tests])
    return [replace(t, p_holm=p) for t, p in zip(tests, adjusted, strict=True)]


def wilcoxon_power(
    effect: float,
    sd: float,
    n: int,
    alpha: float = 0.05,
    sims: int = 2000,
    alternative: str = "two-sided",
    seed: int = 0,
) -> float:
    """Power of the paired Wilcoxon signed-rank test, by simulation.

    Draws ``sims`` samples of ``n`` paired differences from a normal with mean ``-effect``
    (``a`` better than ``b`` by ``effect``, lower being better) and sd ``sd``, and returns
    the share of them whose p-value (of ``alternative``, as :func:`paired_test` computes
    it) is below ``alpha``. Deterministic in ``seed``.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}: use one of {', '.join(ALTERNATIVES)}")
    n, sims = int(n), int(sims)
    if n < 1 or sims < 1:
        return 0.0
    if sd <= 0:  # every difference equal: the smallest exact p-value decides
        tails = 2 if alternative == "two-sided" else 1
        right_way = alternative == "two-sided" or (effect > 0) == (alternative == "less")
        return 1.0 if effect != 0 and right_way and tails / 2**n < alpha else 0.0
    from scipy.stats import wilcoxon

    d = np.random.default_rng(seed).normal(-float(effect), float(sd), size=(sims, n))
    p = wilcoxon(d, axis=1, zero_method="wilcox", alternative=alternative).pvalue
    return float(np.mean(np.nan_to_num(np.asarray(p, dtype=float), nan=1.0) < alpha))


def _double_until(ok: Callable[[_N], bool], start: _N, cap: _N) -> tuple[_N | None, _N | None]:
    """Double ``start``, at most to ``cap``, until ``ok`` holds: (the last value that
    failed, None if ``start`` passed; the first that passed, None if even ``cap`` fails).
    The search of :func:`pairs_needed` (over pairs) and :func:`min_detectable_effect`
    (over effects) for a value that reaches the power, before they bisect."""
    failed: _N | None = None
    value = start
    while not ok(value):
        if value >= cap:
            return failed, None
        failed, value = value, min(2 * value, cap)
    return failed, value


def pairs_needed(
    effect: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
    sims: int = 2000,
    n_max: int = 5000,
) -> int | None:
    """The smallest number of pairs at which :func:`wilcoxon_power` reaches ``power``.

    Starts from the normal-theory size (the paired t-test's, over the Wilcoxon test's
    efficiency of 3/pi under normality) and searches by bisection with a fixed simulation
    seed. None when even ``n_max`` pairs fall short (or the effect is zero).
    """
    if effect == 0 or sd < 0:
        return None
    from scipy.stats import norm

    tails = 2 if alternative == "two-sided" else 1
    z = norm.ppf(1 - alpha / tails) + norm.ppf(power)
    guess = max(2, math.ceil((z * sd / abs(effect)) ** 2 / (3 / math.pi)))

    def ok(n: int) -> bool:
        return wilcoxon_power(effect, sd, n, alpha, sims, alternative) >= power

    failed, hi = _double_until(ok, min(guess, n_max), n_max)
    if hi is None:
        return None
    lo = 1 if failed is None else failed
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi if not ok(lo) else lo


def min_detectable_effect(
    sd: float,
    n: int,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
    sims: int = 1000,
) -> float | None:
    """The smallest effect :func:`wilcoxon_power` resolves with ``n`` pairs at ``power``.

    Found by bisection on ``effect / sd`` (power rises with it). None when no effect is
    resolvable (too few pairs for any p-value below ``alpha``, or no spread measured).
    """
    if n < 1 or not math.isfinite(sd) or sd <= 0:
        return None

    def ok(ratio: float) -> bool:
        return wilcoxon_power(ratio, 1.0, n, alpha, sims, alternative) >= power

    _, ceiling = _double_until(ok, 1.0, 64.0)
    if ceiling is None:
        return None
    lo, hi = 0.0, ceiling
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return float(hi * sd)


def improvement(a: float, b: float, maximize: bool = True) -> float:
    """How much metric value ``a`` beats ``b`` (negative when worse), whichever the direction."""
    return float(a - b) if maximize else float(b - a)


def normalised_regret(best: float, start: float, best_known: float, maximize: bool = True) -> float:
    """``(best_known - best) / (best_known - start)`` in [0, 1] (0 when nothing was found)."""
    gap = improvement(best_known, start, maximize)
    if gap <= TIE:
        return 0.0
    return float(min(1.0, max(0.0, improvement(best_known, best, maximize) / gap)))


def beats(a: float, b: float, maximize: bool = True) -> bool:
    """Whether metric value ``a`` is better than ``b`` (by more than a tie)."""
    return improvement(a, b, maximize) > TIE


def reaches(a: float, target: float, maximize: bool = True) -> bool:
    """Whether metric value ``a`` is at least as good as ``target`` (ties reach it)."""
    return improvement(a, target, maximize) >= -TIE


def first_hit(curve: Sequence[float], target: float, maximize: bool = True) -> int | None:
    """The first k (from 1) at which ``curve[k - 1]`` reaches ``target``; None if never."""
    return next((k for k, v in enumerate(curve, start=1) if reaches(v, target, maximize)), None)


def censored(hit: int | None, budget: int) -> int:
    """A first hit with a miss counted as ``budget + 1`` (censored at the budget)."""
    return hit if hit is not None else budget + 1


def censored_median(hits: Sequence[int | None], budget: int) -> float:
    """Median of first hits over all campaigns, each miss counted as ``budget + 1``.

    The median among hits alone flatters an agent that is fast when it succeeds but often
    fails; this one does not.
    """
    if not hits:
        return math.nan
    return float(np.median([censored(h, budget) for h in hits]))


def pooled_sd(groups: Iterable[Sequence[float]]) -> float | None:
    """Pooled standard deviation of ``groups`` (each group's own mean removed).

    Groups of fewer than two values carry no spread and are left out; None when none is
    left.
    """
    sq, dof = 0.0, 0
    for g in groups:
        x = np.asarray(g, dtype=float)
        if len(x) < 2:
            continue
        sq += float(((x - x.mean()) ** 2).sum())
        dof += len(x) - 1
    return math.sqrt(sq / dof) if dof else None


def regret_band(runs: Sequence[Sequence[float]]) -> tuple[Any, Any, Any]:
    """Mean regret curve and its 95% normal band, the band clipped to [0, 1].

    Regret lives in [0, 1]: a band around a mean near 0 must not dip below it.
    """
    arr = np.asarray(runs, dtype=float)
    mean = arr.mean(axis=0)
    se = arr.std(axis=0, ddof=1) / math.sqrt(len(arr)) if len(arr) > 1 else 0 * mean
    return mean, np.clip(mean - 1.96 * se, 0.0, 1.0), np.clip(mean + 1.96 * se, 0.0, 1.0)


__all__ = [
    "ALTERNATIVES",
    "PairedTest",
    "beats",
    "bootstrap_ci",
    "censored",
    "censored_median",
    "first_hit",
    "holm",
    "holm_correct",
    "improvement",
    "min_detectable_effect",
    "normalised_regret",
    "paired_test",
    "pairs_needed",
    "pooled_sd",
    "reaches",
    "regret_band",
    "wilcoxon_power",
]
