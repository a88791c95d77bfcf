"""Whole-candidate proposals from a model of the campaign: the ``suggest`` meta-action.

Edit kinds move one knob or toggle one patch per experiment. A model-based optimiser
such as Optuna's TPE instead proposes a whole candidate (every knob and toggle at once)
from a density model of the experiments run so far. ``suggest`` gives the meta-agent that
operator as one more action: the env fits TPE to *this campaign's* experiments on its
evaluation seed (whichever actions produced them, the baseline included) and proposes
its next candidate. A learned policy can then mix local edits (cheap, guided by its
meta-learned prior) with global model-based proposals, and learn when each pays.

:class:`CandidateSpace` is the search space both ``suggest`` and the ``tpe`` baseline use:
for each knob of the task the values its up/down moves reach from the start config (an
ordered index, so TPE models it as ordinal) and for each code patch an on/off toggle.
It is the space the edit agents reach, so no proposer searches a larger one.
"""

from __future__ import annotations

import warnings
from typing import Any

from rsi_rl.edits import Candidate, start_candidate
from rsi_rl.errors import EditError
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


class Suggester:
    """TPE over one campaign's experiments: told every result, asked for ``suggest``.

    Deterministic given the campaign (seeded by its evaluation seed) and the sequence of
    experiments, so a resumed campaign replays to the same proposals.

    Args:
        task: the inner task.
        start_config: the instance's start config.
        seed: seed of the sampler.
        n_startup_trials: experiments in the campaign before TPE models the space (until
            then, ``suggest`` samples the space uniformly).
        direction: ``maximize`` or ``minimize`` (the task's).
    """

    #: asks before giving up on a proposal that is new to the campaign
    MAX_ASKS = 20

    def __init__(
        self,
        task: InnerTask,
        start_config: dict[str, Any],
        seed: int,
        n_startup_trials: int = 5,
        direction: str = "maximize",
    ):
        import optuna

        self.space = CandidateSpace(task, start_config)
        sampler = tpe_sampler(seed, n_startup_trials)
        self.study = optuna.create_study(
            direction="minimize" if direction == "minimize" else "maximize", sampler=sampler
        )
        self._pending: tuple[Any, str] | None = None  # (trial, candidate hash) asked, not run

    def tell(self, cand: Candidate, value: float | None) -> None:
        """Record one experiment of the campaign (``value`` None: it failed)."""
        import optuna

        if self._pending is not None and self._pending[1] == cand.hash:
            trial, _ = self._pending
            self._pending = None
            if value is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, float(value))
            return
        state = optuna.trial.TrialState.COMPLETE if value is not None else None
        self.study.add_trial(
            optuna.trial.create_trial(
                params=self.space.params_of(cand),
                distributions=self.space.distributions,
                value=None if value is None else float(value),
                state=state or optuna.trial.TrialState.FAIL,
            )
        )

    def ask(self, seen: dict[str, float | None]) -> tuple[Candidate, str]:
        """The next proposal, avoiding candidates already run (``seen``: hash -> value).

        A proposal that was already run is told its known result without spending an
        experiment, and TPE is asked again (up to :attr:`MAX_ASKS` times).
        """
        import optuna

        self._fail_pending()
        cand, desc = self.space.start, "start config"
        for _ in range(self.MAX_ASKS):
            trial = self.study.ask(self.space.distributions)
            try:
                cand, desc = self.space.candidate(trial.params, "suggest")
            except EditError:  # patches that do not compose
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            if cand.hash in seen:
                value = seen[cand.hash]
                if value is None:
                    self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    self.study.tell(trial, float(value))
                continue
            self._pending = (trial, cand.hash)
            return cand, desc
        return cand, desc + " (repeat: nothing new found)"

    def _fail_pending(self) -> None:
        import optuna

        if self._pending is not None:
            self.study.tell(self._pending[0], state=optuna.trial.TrialState.FAIL)
            self._pending = None


__all__ = ["CandidateSpace", "Suggester", "tpe_sampler"]
