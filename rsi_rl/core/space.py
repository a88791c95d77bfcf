"""The whole-candidate search space of a task around one start config.

:class:`CandidateSpace` is what a whole-candidate proposer (the ``tpe`` and
``random_search`` baselines) searches, one parameter per knob and per code patch of the
task, keyed by the knob's config key or the patch's name:

* a numeric or ordinal knob: the values its up/down moves reach from the start config, as
  an ordered index (``IntDistribution``), so TPE models it as ordinal;
* a categorical knob: its options (``CategoricalDistribution``), the value itself;
* a code patch: on or off (``CategoricalDistribution([False, True])``).

It is the space the edit agents reach, so no proposer searches a larger one.
"""

from __future__ import annotations

import warnings
from typing import Any

from rsi_rl.core.edits import Candidate, start_candidate
from rsi_rl.core.errors import TaskError
from rsi_rl.core.task import InnerTask


class CandidateSpace:
    """The knob values and code toggles of a task around one start config.

    Args:
        task: the inner task.
        start_config: the instance's start config (the origin of the knobs' lattices; a
            categorical knob's start value is one of its options even if the knob does
            not list it, so the start is a point of the space).

    Raises:
        TaskError: a patch is named like a knob's config key (one parameter each).

    Example:
        >>> space = CandidateSpace(task, instance.start_config)  # doctest: +SKIP
        >>> cand, description = space.candidate(space.params_of(space.start), "tpe")  # doctest: +SKIP
    """

    def __init__(self, task: InnerTask, start_config: dict[str, Any]):
        from optuna.distributions import CategoricalDistribution, IntDistribution

        self.task = task
        self.start = start_candidate(task, dict(start_config))
        #: the values of each knob, by config key: lattice values in ascending order, or
        #: a categorical knob's options
        self.values: dict[str, list[Any]] = {}
        self.distributions: dict[str, Any] = {}
        for knob in task.knobs:
            start = self.start.config.get(knob.key)
            if knob.categorical:
                options = list(knob.choices)
                if start not in options:
                    options.append(start)
                self.values[knob.key] = options
                self.distributions[knob.key] = CategoricalDistribution(options)
            else:
                values = knob.reachable(start)
                self.values[knob.key] = values
                self.distributions[knob.key] = IntDistribution(0, len(values) - 1)
        for patch in task.patches:
            if patch.name in self.distributions:
                raise TaskError(
                    f"task {task.name!r}: patch {patch.name!r} is named like a knob's config "
                    "key; rename the patch"
                )
            self.distributions[patch.name] = CategoricalDistribution([False, True])

    def params_of(self, cand: Candidate) -> dict[str, Any]:
        """The parameters of ``cand``: per knob its lattice index (the nearest, off the
        lattice) or categorical value (the start's, if not an option), per patch on/off."""
        params: dict[str, Any] = {}
        for knob in self.task.knobs:
            values, value = self.values[knob.key], cand.config.get(knob.key)
            if knob.categorical:
                params[knob.key] = value if value in values else self.start.config.get(knob.key)
            elif value in values:
                params[knob.key] = values.index(value)
            else:  # off the lattice (e.g. a user's edit): the nearest position
                pos = knob.position(value)
                params[knob.key] = min(
                    range(len(values)), key=lambda i: abs(knob.position(values[i]) - pos)
                )
        for patch in self.task.patches:
            params[patch.name] = patch.name in cand.toggles
        return params

    def candidate(self, params: dict[str, Any], label: str) -> tuple[Candidate, str]:
        """The candidate of a parameter set (knob values and toggles applied to the start)
        and a one-line description of it.

        Raises:
            EditError: the chosen patches do not compose.
        """
        config = dict(self.start.config)
        changes = []
        for knob in self.task.knobs:
            param = params[knob.key]
            value = param if knob.categorical else self.values[knob.key][int(param)]
            if value != config.get(knob.key):
                changes.append(f"{knob.key}={value}")
            config[knob.key] = value
        source = dict(self.start.source)
        toggles = []
        for patch in self.task.patches:
            if params.get(patch.name):
                source[patch.file] = patch.apply(source[patch.file])
                toggles.append(patch.name)
        desc = " ".join(changes + [f"+{t}" for t in toggles]) or "start config"
        return Candidate(config, source, frozenset(toggles), self.start.hash, label), desc


def _quiet_sampler(name: str, **kwargs: Any) -> Any:
    """``optuna.samplers.<name>(**kwargs)`` with Optuna's info logs and its "experimental"
    warnings silenced (``constant_liar``, ``GPSampler`` are experimental in some versions)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return getattr(optuna.samplers, name)(**kwargs)


def tpe_sampler(seed: int | None, n_startup_trials: int, **kwargs: Any) -> Any:
    """Optuna's TPE sampler, quiet."""
    return _quiet_sampler("TPESampler", seed=seed, n_startup_trials=n_startup_trials, **kwargs)


def gp_sampler(seed: int | None, n_startup_trials: int) -> Any:
    """Optuna's Gaussian-process sampler, quiet."""
    return _quiet_sampler("GPSampler", seed=seed, n_startup_trials=n_startup_trials)


def random_sampler(seed: int | None) -> Any:
    """Optuna's seeded random sampler (random search over the same space), quiet."""
    return _quiet_sampler("RandomSampler", seed=seed)


__all__ = ["CandidateSpace", "gp_sampler", "random_sampler", "tpe_sampler"]
