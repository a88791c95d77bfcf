"""What the acquisition agent knows of a candidate: its features, from the campaign so far.

Every candidate of a task's :class:`~rsi_rl.core.space.CandidateSpace` is a point: per
ordinal knob its lattice position scaled to [0, 1], per categorical knob (and per code
toggle) its option. The distance of two points is the mean over parameters of their
per-parameter distance (the difference of scaled positions; 0 or 1 for a categorical),
so it lies in [0, 1] whatever the task, and the features below mean the same on every
task: this is what lets one scorer, trained on some families, act on another.

The features of a pool of candidates (:data:`FEATURES`) come from the points the
campaign ran and their metrics, standardised within the campaign (higher is better; a
failed run counts as the worst value so far):

- two Gaussian processes (exponential kernel on the distance, length scales
  :data:`LENGTH_SCALES`): posterior mean, standard deviation and expected improvement
  over the best value so far;
- a Parzen density ratio as TPE uses it (the best quarter of the runs against the rest);
- distances to the incumbent and to the nearest run point, that point's value, how many
  parameters differ from the incumbent;
- where the campaign is: the share of its budget used and the incumbent's standing;
- where the candidate came from (an edit of the incumbent, a local perturbation, a
  uniform draw) and its rank in the pool by expected improvement and density ratio;
- a third process whose length scale (:data:`FIT_SCALES`) is the one that explains the
  runs best (marginal likelihood), with that length scale: how smooth this landscape
  looks;
- its distance to the start config and the share of its ordinal knobs at a lattice end;
- the share of the space's parameters that are categorical (a constant per task: the
  kind of space the campaign is in).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the features, in column order
FEATURES: tuple[str, ...] = (
    "gp_mean_short",
    "gp_sd_short",
    "gp_ei_short",
    "gp_mean_long",
    "gp_sd_long",
    "gp_ei_long",
    "parzen_ratio",
    "dist_incumbent",
    "changed_params",
    "dist_nearest",
    "value_nearest",
    "budget_used",
    "runs_seen",
    "incumbent_value",
    "from_edit",
    "from_local",
    "from_uniform",
    "rank_ei",
    "rank_parzen",
    "gp_mean_fit",
    "gp_sd_fit",
    "gp_ei_fit",
    "fit_scale",
    "dist_start",
    "edge_share",
    "categorical_share",
)
#: the Gaussian processes' length scales, in units of the mean per-parameter distance
LENGTH_SCALES = (0.15, 0.5)
#: the length scales the fitted process chooses from, by marginal likelihood
FIT_SCALES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
#: the Gaussian processes' noise variance, in units of the campaign's metric variance
GP_NOISE = 0.05
#: the Parzen estimator's length scale, and the share of runs that count as good
PARZEN_SCALE, PARZEN_GOOD = 0.2, 0.25
#: where a pool's candidates come from (the ``from_*`` features)
SOURCES = ("edit", "local", "uniform")


@dataclass(frozen=True)
class Encoding:
    """How a space's parameters become points: per parameter its kind and size.

    Attributes:
        names: the parameter names, in the space's order.
        sizes: per parameter, its number of values (lattice length or options).
        ordinal: per parameter, True for a lattice index, False for a categorical value.
        options: per categorical parameter, its options (None for ordinal ones).
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    ordinal: tuple[bool, ...]
    options: tuple[tuple[Any, ...] | None, ...]

    @classmethod
    def of(cls, distributions: dict[str, Any]) -> Encoding:
        """The encoding of an Optuna distribution per parameter (a space's
        ``distributions``: ``IntDistribution`` lattice indices, ``CategoricalDistribution``
        options)."""
        names: list[str] = []
        sizes: list[int] = []
        ordinal: list[bool] = []
        options: list[tuple[Any, ...] | None] = []
        for name, dist in distributions.items():
            names.append(name)
            if hasattr(dist, "choices"):
                choices = tuple(dist.choices)
                sizes.append(len(choices))
                ordinal.append(False)
                options.append(choices)
            else:
                sizes.append(int(dist.high) - int(dist.low) + 1)
                ordinal.append(True)
                options.append(None)
        return cls(tuple(names), tuple(sizes), tuple(ordinal), tuple(options))

    def index(self, params: dict[str, Any]) -> tuple[int, ...]:
        """A parameter set as one whole number per parameter (lattice index or option
        index): the key the agent remembers run points by."""
        out = []
        for name, opts in zip(self.names, self.options, strict=True):
            value = params[name]
            out.append(int(value) if opts is None else opts.index(value))
        return tuple(out)

    def params(self, index: Sequence[int]) -> dict[str, Any]:
        """The parameter set of an index tuple (the inverse of :meth:`index`)."""
        return {
            name: int(i) if opts is None else opts[int(i)]
            for name, opts, i in zip(self.names, self.options, index, strict=True)
        }

    def points(self, indices: np.ndarray) -> np.ndarray:
        """Index tuples (rows) as points: ordinal positions scaled to [0, 1],
        categorical option indices as they are."""
        idx = np.asarray(indices, dtype=np.float64).reshape(-1, len(self.names))
        out = idx.copy()
        for j, (size, ordinal) in enumerate(zip(self.sizes, self.ordinal, strict=True)):
            if ordinal:
                out[:, j] = idx[:, j] / (size - 1) if size > 1 else 0.0
        return out

    def distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The mean per-parameter distances of points ``a`` (rows) to points ``b``."""
        mask = np.asarray(self.ordinal)
        diff = np.abs(a[:, None, :] - b[None, :, :])
        per = np.where(mask, diff, (diff > 0).astype(np.float64))
        return per.mean(axis=2) if per.shape[2] else np.zeros(per.shape[:2])


def pool(
    enc: Encoding,
    incumbent: tuple[int, ...],
    run: set[tuple[int, ...]],
    rng: np.random.Generator,
    n_uniform: int = 64,
    n_local: int = 32,
) -> tuple[list[tuple[int, ...]], list[str]]:
    """Candidates to score, none already run: every edit of the incumbent (one
    parameter one lattice step away, or another option), ``n_local`` perturbations of
    it (two or three parameters redrawn) and ``n_uniform`` uniform draws; with the
    source of each (:data:`SOURCES`)."""
    seen = set(run)
    out: list[tuple[int, ...]] = []
    sources: list[str] = []

    def add(point: tuple[int, ...], source: str) -> None:
        if point not in seen:
            seen.add(point)
            out.append(point)
            sources.append(source)

    inc = list(incumbent)
    for j, (size, ordinal) in enumerate(zip(enc.sizes, enc.ordinal, strict=True)):
        moves = [inc[j] - 1, inc[j] + 1] if ordinal else range(size)
        for v in moves:
            if 0 <= v < size and v != inc[j]:
                add(tuple(inc[:j] + [int(v)] + inc[j + 1 :]), "edit")
    d = len(enc.sizes)
    for _ in range(n_local):
        point = list(inc)
        for j in rng.choice(d, size=min(d, int(rng.integers(2, 4))), replace=False):
            point[j] = int(rng.integers(enc.sizes[j]))
        add(tuple(point), "local")
    for _ in range(n_uniform):
        add(tuple(int(rng.integers(s)) for s in enc.sizes), "uniform")
    return out, sources


def _log_likelihood(k_xx: np.ndarray, y: np.ndarray, noise: float) -> float:
    """The log marginal likelihood of ``y`` under a process with covariance ``k_xx``."""
    chol = np.linalg.cholesky(k_xx + (noise + 1e-9) * np.eye(len(y)))
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    return float(-0.5 * y @ alpha - np.log(np.diag(chol)).sum())


def _gp(
    k_xx: np.ndarray, k_px: np.ndarray, y: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation (unit prior variance) at the pool."""
    n = len(y)
    chol = np.linalg.cholesky(k_xx + (noise + 1e-9) * np.eye(n))
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    mean = k_px @ alpha
    v = np.linalg.solve(chol, k_px.T)
    var = np.clip(1.0 - (v * v).sum(axis=0), 1e-12, None)
    return mean, np.sqrt(var)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of a Gaussian with ``mean`` and ``sd``."""
    z = (mean - best) / sd
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    out: np.ndarray = (mean - best) * cdf + sd * pdf
    return out


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (1: the largest; one candidate: 1)."""
    if len(x) < 2:
        return np.ones(len(x))
    order = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return np.asarray(order / (len(x) - 1), dtype=np.float64)


def features(
    enc: Encoding,
    pool_index: Sequence[tuple[int, ...]],
    sources: Sequence[str],
    run_index: Sequence[tuple[int, ...]],
    run_values: Sequence[float],
    incumbent: tuple[int, ...],
    budget_used: float,
    start: tuple[int, ...] | None = None,
) -> np.ndarray:
    """The features (:data:`FEATURES`) of each pool candidate, one row each.

    Args:
        enc: the space's encoding.
        pool_index: the candidates to score (index tuples).
        sources: where each came from (:data:`SOURCES`).
        run_index: the points the campaign ran (at least the start).
        run_values: their values, higher is better (a failed run: the worst so far).
        incumbent: the incumbent's point (one of ``run_index``).
        budget_used: the share of the campaign's experiments used so far.
        start: the start config's point (default: the first of ``run_index``).
    """
    y = np.asarray(run_values, dtype=np.float64)
    sd = float(y.std())
    ys = (y - y.mean()) / sd if len(y) > 1 and sd > 1e-12 else np.zeros_like(y)
    x_run = enc.points(np.asarray(run_index))
    x_pool = enc.points(np.asarray(pool_index))
    d_rr = enc.distances(x_run, x_run)
    d_pr = enc.distances(x_pool, x_run)
    best = float(ys.max())
    cols: list[np.ndarray] = []
    for scale in LENGTH_SCALES:
        mean, psd = _gp(np.exp(-d_rr / scale), np.exp(-d_pr / scale), ys, GP_NOISE)
        cols += [mean, psd, expected_improvement(mean, psd, best)]
    n_good = max(1, math.ceil(PARZEN_GOOD * len(ys)))
    order = np.argsort(-ys, kind="stable")
    k_par = np.exp(-d_pr / PARZEN_SCALE)
    good = k_par[:, order[:n_good]].mean(axis=1)
    rest = order[n_good:]
    bad = k_par[:, rest].mean(axis=1) if len(rest) else np.full(len(x_pool), 0.5)
    cols.append(np.log(good + 1e-3) - np.log(bad + 1e-3))
    inc_pos = list(run_index).index(tuple(incumbent))
    cols.append(d_pr[:, inc_pos])
    changed = (np.asarray(pool_index) != np.asarray(incumbent)).sum(axis=1)
    cols.append(np.minimum(changed, 4) / 4.0)
    nearest = d_pr.argmin(axis=1)
    cols.append(d_pr[np.arange(len(x_pool)), nearest])
    cols.append(ys[nearest])
    n = len(x_pool)
    cols.append(np.full(n, float(budget_used)))
    cols.append(np.full(n, min(1.0, len(ys) / 50.0)))
    cols.append(np.full(n, float(ys[inc_pos])))
    src = np.asarray(sources)
    cols += [(src == s).astype(np.float64) for s in SOURCES]
    cols.append(_rank(cols[FEATURES.index("gp_ei_short")]))
    cols.append(_rank(cols[FEATURES.index("parzen_ratio")]))
    # the process whose length scale explains the runs best: how smooth this landscape looks
    fits = [(_log_likelihood(np.exp(-d_rr / sc), ys, GP_NOISE), sc) for sc in FIT_SCALES]
    scale = max(fits)[1] if len(ys) > 2 else 0.4
    mean, psd = _gp(np.exp(-d_rr / scale), np.exp(-d_pr / scale), ys, GP_NOISE)
    cols += [mean, psd, expected_improvement(mean, psd, best)]
    cols.append(np.full(n, math.log(scale / 0.4)))
    origin = np.asarray(run_index[0] if start is None else start)
    cols.append(enc.distances(x_pool, enc.points(origin[None, :]))[:, 0])
    ordinal = np.asarray(enc.ordinal)
    if ordinal.any():
        idx = np.asarray(pool_index)[:, ordinal]
        top = np.asarray(enc.sizes)[ordinal] - 1
        cols.append(((idx == 0) | (idx == top)).mean(axis=1))
    else:
        cols.append(np.zeros(n))
    # the kind of space (a constant per task): lets one scorer read ordinal and categorical
    # spaces differently
    cols.append(np.full(n, 1.0 - float(ordinal.mean()) if len(ordinal) else 0.0))
    return np.stack(cols, axis=1)


__all__ = [
    "FEATURES",
    "GP_NOISE",
    "LENGTH_SCALES",
    "SOURCES",
    "Encoding",
    "expected_improvement",
    "features",
    "pool",
]
