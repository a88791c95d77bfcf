"""The keep rule's noise models: how much a metric varies from seed to seed, estimated from
the task's prior and the reruns a campaign has made.

``global`` is one figure per task: the task's ``noise_prior`` shrunk toward the std of the
incumbent's reruns (:func:`global_noise`). ``local`` is a figure per incumbent: the noise
where it stands, proportional to the headroom left (:func:`relative_noise`), for
landscapes whose noise shrinks toward the optimum. :func:`keep_noise` picks between them
as :class:`rsi_rl.campaign.Campaign` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rsi_rl.core.errors import ConfigError

#: the keep rule's noise models: ``global`` (one figure per task: the task's prior shrunk
#: toward the incumbent's reruns) and ``local`` (a figure per incumbent:
#: :func:`relative_noise`)
NOISE_MODELS = ("global", "local")


def check_noise_model(name: Any) -> str:
    """``name`` as one of :data:`NOISE_MODELS` (an enum member counts by its value).

    Raises:
        ConfigError: any other value, in one line naming the allowed ones.
    """
    value = getattr(name, "value", name)
    if value not in NOISE_MODELS:
        raise ConfigError(
            f"noise_model={value!r} is not a noise model; give one of {', '.join(NOISE_MODELS)}"
        )
    return str(value)


def global_noise(noise_prior: float, scores: Sequence[float]) -> float:
    """The ``global`` model: ``noise_prior`` shrunk toward the std of ``scores`` (the
    incumbent's scores on its seeds), the prior counted as one observation.

    Example:
        >>> global_noise(0.05, [0.9])  # one seed: the prior
        0.05
    """
    vals = list(scores)
    if len(vals) < 2:
        return noise_prior
    var = float(np.var(vals, ddof=1))
    n = len(vals)
    return math.sqrt((noise_prior**2 + (n - 1) * var) / n)


def relative_noise(
    noise_prior: float,
    start_headroom: float,
    headroom: float,
    current: Sequence[float],
    earlier: Sequence[tuple[float, Sequence[float]]] = (),
    floor: float = 0.01,
) -> float:
    """Seed noise (std) of an incumbent ``headroom`` away from the metric's optimum, under
    the relative model ``std = c * headroom``, with ``c`` fitted on the reruns seen so far.

    Many landscapes are noisier far from their optimum than near it (a model that barely
    learns varies a lot from seed to seed; one near the best varies little), so one noise
    figure per task either lets noise through at the start or blocks every refinement near
    the end. The relative model is the simplest one with that shape and a single parameter,
    so every rerun informs it wherever it was made: a rerun group of an incumbent at
    headroom ``h_i`` with sample variance ``v_i`` over ``n_i`` seeds measures ``c**2`` as
    ``v_i / h_i**2`` with ``n_i - 1`` degrees of freedom. The groups are pooled (their
    squared deviations divided by ``h_i**2``, summed, over the degrees of freedom summed),
    together with one pseudo-observation of the prior ``c0 = noise_prior / start_headroom``
    (the task's prior noise is the noise at the start), exactly as the ``global`` model
    shrinks ``noise_prior`` toward the incumbent's reruns. Hence:

    - with no reruns the noise is ``noise_prior * headroom / start_headroom``, the task's
      prior scaled by the headroom left;
    - at the start incumbent, with only its own reruns, it equals the ``global`` estimate;
    - reruns of earlier incumbents count as much as the incumbent's own, rescaled to its
      headroom, which is what makes them comparable; nothing else weights them.

    The result is never below ``floor * noise_prior`` (a guard against extrapolating the
    model toward zero noise) unless the incumbent's own reruns (``current``, two scores or
    more) measure a smaller std: then that std is the floor.

    Args:
        noise_prior: the task's prior std (at the start).
        start_headroom: optimum score minus the start's score (> 0).
        headroom: optimum score minus the incumbent's score (<= 0 gives the floor).
        current: the incumbent's scores on its seeds (evaluation seed and reruns).
        earlier: ``(headroom, scores)`` of earlier incumbents; groups with fewer than two
            scores or no headroom (at or past the optimum) carry no information on ``c``.
        floor: the floor as a share of ``noise_prior``.

    Example:
        >>> round(relative_noise(0.04, 0.5, 0.05, current=[0.95]), 6)  # prior, scaled
        0.004
    """
    total, dof = (noise_prior / start_headroom) ** 2, 1.0
    for h, scores in [*earlier, (headroom, current)]:
        if len(scores) >= 2 and h > 0:
            n = len(scores)
            total += (n - 1) * float(np.var(scores, ddof=1)) / h**2
            dof += n - 1
    lowest = floor * noise_prior
    if len(current) >= 2:
        lowest = min(lowest, float(np.std(current, ddof=1)))
    return max(math.sqrt(total / dof) * max(headroom, 0.0), lowest)


def keep_noise(
    model: str,
    noise_prior: float,
    scores: Sequence[float],
    incumbent_score: float,
    start_score: float,
    optimum_score: float | None,
    earlier: Sequence[tuple[float, Sequence[float]]] = (),
) -> float:
    """The noise of the keep rule by ``model`` (:data:`NOISE_MODELS`): ``global``,
    :func:`global_noise`; ``local``, :func:`relative_noise` (``global`` without a metric
    optimum, or when the start is already at it).

    Args:
        model: ``global`` or ``local``.
        noise_prior: the task's prior std.
        scores: the incumbent's scores on its seeds (evaluation seed and reruns).
        incumbent_score, start_score: the incumbent's and the start's score on the
            evaluation seed.
        optimum_score: the metric optimum's score (None: the task declares none).
        earlier: ``(headroom, scores)`` of earlier incumbents rerun at least once.
    """
    if model == "local" and optimum_score is not None:
        start_headroom = optimum_score - start_score
        if start_headroom > 0:
            return relative_noise(
                noise_prior, start_headroom, optimum_score - incumbent_score, scores, earlier
            )
    return global_noise(noise_prior, scores)


__all__ = ["NOISE_MODELS", "check_noise_model", "global_noise", "keep_noise", "relative_noise"]
