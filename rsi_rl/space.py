"""The whole-candidate search space of a task around one start config.

:class:`CandidateSpace` is what a whole-candidate proposer (the ``tpe`` baseline) searches:
for each knob of the task the values its up/down moves reach from the start config (an
ordered index, so TPE models it as ordinal) and for each code patch an on/off toggle. It
is the space the edit agents reach, so no proposer searches a larger one.
"""

from __future__ import annotations

import warnings
from typing import Any

from rsi_rl.edits import Candidate, start_candidate
from rsi_rl.task import InnerTask


class CandidateSpace:
    """The knob lattice and code toggles of a task around one start config.

    Args:
        task: the inner task.
        start_config: the instance's start config (the origin of the lattice).
    """

    def __init__(self, task: InnerTask, start_config: dict[str, Any]):
        from optuna.distributions import CategoricalDistribution, IntDistribution

        self.task = task
        self.start = start_candidate(task, dict(start_config))
        self.values: dict[str, list[Any]] = {}
        self.distributions: dict[str, Any] = {}
        for knob in task.knobs:
            values = knob.reachable(self.start.config.get(knob.key))
            self.values[knob.kind] = values
            self.distributions[knob.kind] = IntDistribution(0, len(values) - 1)
        for patch in task.patches:
            self.distributions[patch.kind] = CategoricalDistribution([False, True])

    def params_of(self, cand: Candidate) -> dict[str, Any]:
        """The parameters of ``cand``: lattice index per knob (nearest), toggle per patch."""
        params: dict[str, Any] = {}
        for knob in self.task.knobs:
            values, value = self.values[knob.kind], cand.config.get(knob.key)
            if value in values:
                params[knob.kind] = values.index(value)
            else:  # off the lattice (e.g. a user's edit): the nearest position
                pos = knob.position(value)
                params[knob.kind] = min(
                    range(len(values)), key=lambda i: abs(knob.position(values[i]) - pos)
                )
        for patch in self.task.patches:
            params[patch.kind] = patch.kind in cand.toggles
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
            value = self.values[knob.kind][int(params[knob.kind])]
            if value != config.get(knob.key):
                changes.append(f"{knob.key}={value}")
            config[knob.key] = value
        source = dict(self.start.source)
        toggles = []
        for patch in self.task.patches:
            if params.get(patch.kind):
                source[patch.file] = patch.apply(source[patch.file])
                toggles.append(patch.kind)
        desc = " ".join(changes + [f"+{t}" for t in toggles]) or "start config"
        return Candidate(config, source, frozenset(toggles), self.start.hash, label), desc


def tpe_sampler(seed: int | None, n_startup_trials: int, **kwargs: Any) -> Any:
    """Optuna's TPE sampler, with its "experimental" warnings silenced."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # constant_liar is "experimental" in some Optuna versions
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, **kwargs)


def random_sampler(seed: int | None) -> Any:
    """Optuna's seeded random sampler (random search over the same space), quiet like TPE's."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.samplers.RandomSampler(seed=seed)


__all__ = ["CandidateSpace", "random_sampler", "tpe_sampler"]
