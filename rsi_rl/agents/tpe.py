"""Optuna TPE over the same edit space and budget: the baseline a researcher would pick.

How TPE maps onto the edit-based env (the fair-comparison choice):

* **Same space.** TPE searches over exactly the candidates the edit agents can reach
  (:class:`~rsi_rl.core.space.CandidateSpace`), every knob and patch of the task, however many
  share a role: for a numeric or ordinal knob the values reachable from the start config
  by ``<key>_up`` / ``<key>_down`` moves within bounds (an ordered integer index, so TPE
  models it as ordinal), for a categorical knob its options, and for each code patch a
  boolean toggle. Meta-actions (``reevaluate``, ``propose``, ``stop``) have no TPE
  counterpart.
* **Same budget.** Each TPE trial is *one* experiment: the proposed whole candidate (a
  :class:`~rsi_rl.campaign.Proposal` labelled with the agent's name) runs through the
  campaign on its evaluation seed, is charged to the same K experiments and seconds cap,
  and is kept only if it beats the incumbent by the same noise margin.
  TPE does not pay one experiment per edit on the way to a far configuration (that would
  handicap it); it never proposes a candidate the campaign already ran (a repeat would be
  charged in full for a known result): a repeated ask is dropped and asked again, up to
  :data:`MAX_RESAMPLES` times, then a uniformly drawn new candidate is run instead.
* **Failed runs teach.** Optuna's TPE ignores failed trials, so it would propose a
  timed-out or crashed region again and again. A failed run is told to the study as
  :func:`failure_value`: the worst value of the campaign so far (at worst the start's),
  so TPE models its region as bad.
* **Same start.** The start config's baseline run (free for every agent) is told to the
  study as its first trial, so TPE knows what the edit agents know; so is every
  experiment another agent runs in the same campaign.

Example:
    rsi-rl search task=tabular agent=tpe budget=20
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

from rsi_rl.agents.base import Agent, Record, evaluated_candidate
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import EditError
from rsi_rl.core.space import CandidateSpace, gp_sampler, random_sampler, tpe_sampler


def trial_value(exp: Record) -> float | None:
    """The metric an experiment record tells a study: None for a run that failed."""
    metric = exp.get("metric")
    return float(metric) if exp.get("status") == "ok" and metric is not None else None


#: asks of a study that may repeat a candidate of the campaign before a uniform draw
MAX_RESAMPLES = 20


def failure_value(values: list[float], direction: str) -> float:
    """What a study is told for a failed run (crash, timeout, oom, nan, invalid): the worst
    of the campaign's ``values`` so far (it holds at least the start's), in ``direction``."""
    return min(values) if direction == "maximize" else max(values)


class StudyAgent(Agent):
    """An Optuna study (ask/tell, seeded) over the task's knobs and code toggles
    (:class:`~rsi_rl.core.space.CandidateSpace`), one trial per experiment; subclasses choose
    the sampler (:meth:`_sampler`).

    Every record on the campaign's evaluation seed becomes a trial, whoever asked for it:
    an edit of another agent (e.g. the policy before it in a
    :class:`~rsi_rl.agents.sequence.SequenceAgent`) is told as the candidate it built, so
    the study models it and never proposes it again.

    Args:
        seed: seed of the sampler (and so of the campaign's proposals).
        batch_size: trials asked at once, trained together by the env's executor.
        seed_offset: added to ``seed`` for the sampler only (the bench gives campaign i
            seed i): a nonzero offset is another, independent draw of the same agent on
            the same instances and evaluation seeds, an A/A test of a bench's resolution.
        storage: an Optuna storage URL (``sqlite:///runs/studies.db``) that keeps each
            campaign's study, named ``<agent>-<task>-<instance>-c<campaign>-s<seed>``
            (``-2``, ``-3``, ... if the name is taken); None keeps it in memory.
    """

    supports_batch: ClassVar[bool] = True

    def __init__(
        self,
        seed: int | None = None,
        batch_size: int = 1,
        seed_offset: int = 0,
        storage: str | None = None,
    ):
        super().__init__(seed, batch_size)
        self.seed_offset = int(seed_offset)
        self.storage = None if storage is None else str(storage)
        self.study: Any = None
        # asked, not yet told (in the order they are recorded), with their candidate's hash
        self._trials: list[tuple[Any, str]] = []
        self._values: list[float] = []  # metrics of the campaign's runs told so far
        self._run: set[str] = set()  # hashes of the candidates run (or under way)

    @property
    def sampler_seed(self) -> int | None:
        return None if self.seed is None else int(self.seed) + self.seed_offset

    def reset(self, view: CampaignView) -> None:
        import optuna

        self._view = view
        self.space = CandidateSpace(view.task, view.start_config)
        self.distributions = self.space.distributions
        self._trials, self._values, self._run = [], [], set()
        self.study = self._create_study(optuna, view)
        self._tell_known(self.space.start, float(view.start_metric))

    def _create_study(self, optuna: Any, view: CampaignView) -> Any:
        direction = view.task.direction
        if self.storage is None:
            return optuna.create_study(direction=direction, sampler=self._sampler())
        base = f"{self.name}-{view.task.name}-{view.instance_id}-c{view.campaign}-s{self.seed}"
        for i in itertools.count(1):
            try:
                return optuna.create_study(
                    storage=self.storage,
                    study_name=base if i == 1 else f"{base}-{i}",
                    direction=direction,
                    sampler=self._sampler(),
                )
            except optuna.exceptions.DuplicatedStudyError:
                continue
        raise AssertionError("unreachable")

    def _sampler(self) -> Any:
        raise NotImplementedError

    def _tell_known(self, cand: Candidate, value: float | None) -> None:
        """Add an experiment run outside the study (metric None: it failed) as a trial."""
        import optuna

        self._run.add(cand.hash)
        self.study.add_trial(
            optuna.trial.create_trial(
                params=self.space.params_of(cand),
                distributions=self.distributions,
                value=self._told(value),
                state=optuna.trial.TrialState.COMPLETE,
            )
        )

    def _told(self, value: float | None) -> float:
        """The value a study is told for a run's metric (None: failed, see
        :func:`failure_value`)."""
        if value is None:
            return failure_value(self._values, self.study.direction.name.lower())
        self._values.append(float(value))
        return float(value)

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        self._fail_pending()
        out: list[Proposal] = []
        for _ in range(int(n)):
            trial, child, description = self._ask_new()
            self._trials.append((trial, child.hash))
            self._run.add(child.hash)
            out.append(Proposal(self.name, child, description))
        return out

    def tell(self, records: Sequence[Record]) -> None:
        for record in records:
            cand_hash = evaluated_candidate(record, self._view.eval_seed)
            if cand_hash is None:
                continue  # a rerun on a fresh seed, or refused: no trial of this seed
            mine = next((t for t in self._trials if t[1] == cand_hash), None)
            if mine is not None:
                self._trials.remove(mine)
                self.study.tell(mine[0], self._told(trial_value(record)))
            elif cand_hash not in self._run:  # another agent's experiment
                cand = self._view.candidate(str(cand_hash))
                if cand is None:  # an external proposer's code: outside the space
                    self._run.add(str(cand_hash))
                else:
                    self._tell_known(cand, trial_value(record))

    def candidate(self, params: dict[str, Any]) -> tuple[Candidate, str]:
        """The candidate of a parameter set: knob values and code toggles applied to the start."""
        return self.space.candidate(params, self.name)

    def _ask_new(self) -> tuple[Any, Candidate, str]:
        """A trial whose candidate the campaign has not run: the sampler's, asked up to
        :data:`MAX_RESAMPLES` times (a repeat is told FAIL: it was never run), then a
        uniform draw from the space; a repeat only when none is found (a spent space)."""
        import optuna

        trial, child, description = self._ask()
        for attempt in range(2 * MAX_RESAMPLES):
            if child.hash not in self._run:
                break
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if attempt >= MAX_RESAMPLES:
                self.study.enqueue_trial(self._uniform_params(), skip_if_exists=False)
            trial, child, description = self._ask()
        return trial, child, description

    def _ask(self) -> tuple[Any, Candidate, str]:
        trial = self.study.ask(self.distributions)
        try:
            child, description = self.candidate(trial.params)
        except EditError:  # patches that do not compose: the start config (already run)
            child, description = self.space.start, "start config (proposal did not apply)"
        return trial, child, description

    def _uniform_params(self) -> dict[str, Any]:
        """Parameters drawn uniformly (the agent's seeded RNG) from the space."""
        params: dict[str, Any] = {}
        for name, dist in self.distributions.items():
            if hasattr(dist, "choices"):
                params[name] = dist.choices[int(self.rng.integers(len(dist.choices)))]
            else:
                params[name] = int(self.rng.integers(dist.low, dist.high + 1))
        return params

    def _fail_pending(self) -> None:
        """Trials of the last batch that were never recorded (the budget ran out) fail."""
        import optuna

        while self._trials:
            trial, cand_hash = self._trials.pop(0)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._run.discard(cand_hash)  # never run: it may be proposed again


class TPEAgent(StudyAgent):
    """Optuna's TPE sampler (ask/tell, seeded) over the task's knobs and code toggles.

    Args:
        seed: seed of the sampler (and so of the campaign's proposals).
        n_startup_trials: random trials before TPE models the space (Optuna's default 10).
        multivariate: model the knobs jointly (Optuna's ``multivariate`` TPE).
        batch_size: trials asked at once (B > 1: ``constant_liar=True``, so the B asks of
            one batch differ; their results are told in order), trained together by the
            env's executor.
        seed_offset: added to ``seed`` for the sampler only (see :class:`StudyAgent`).
        storage: an Optuna storage URL that keeps each campaign's study (see
            :class:`StudyAgent`); None keeps it in memory.
    """

    name = "tpe"

    def __init__(
        self,
        seed: int | None = None,
        n_startup_trials: int = 10,
        multivariate: bool = False,
        batch_size: int = 1,
        seed_offset: int = 0,
        storage: str | None = None,
    ):
        super().__init__(seed, batch_size, seed_offset, storage)
        self.n_startup_trials = int(n_startup_trials)
        self.multivariate = bool(multivariate)

    def _sampler(self) -> Any:
        liar: dict[str, Any] = {"constant_liar": True} if self.batch_size > 1 else {}
        return tpe_sampler(
            self.sampler_seed, self.n_startup_trials, multivariate=self.multivariate, **liar
        )


class RandomSearchAgent(StudyAgent):
    """Random search over whole candidates: every knob and code toggle drawn uniformly
    from the same space as :class:`TPEAgent` (Optuna's seeded ``RandomSampler``), each
    trial one experiment. This is the random search of HPO practice (Bergstra & Bengio,
    2012); ``random`` walks by random *edits* from the incumbent instead. TPE's first
    ``n_startup_trials`` trials are exactly this.

    Args:
        seed: seed of the sampler.
        batch_size: trials asked at once, trained together by the env's executor.
        seed_offset: added to ``seed`` for the sampler only (see :class:`StudyAgent`).
        storage: an Optuna storage URL that keeps each campaign's study (see
            :class:`StudyAgent`); None keeps it in memory.
    """

    name = "random_search"

    def _sampler(self) -> Any:
        return random_sampler(self.sampler_seed)


class GPAgent(StudyAgent):
    """Gaussian-process Bayesian optimisation over the same space as :class:`TPEAgent`
    (Optuna's seeded ``GPSampler``: a Matern kernel with one length scale per parameter
    fitted by marginal likelihood, log expected improvement optimised over the space),
    each trial one experiment: the model-based baseline a researcher reaches for beside
    TPE. Each ask refits the process, so it costs far more CPU per experiment than TPE.

    Args:
        seed: seed of the sampler.
        n_startup_trials: random trials before the process models the space (Optuna's
            default 10).
        batch_size: 1 (one trial at a time: without a liar, the asks of a batch would
            coincide; larger values are refused in one line).
        seed_offset: added to ``seed`` for the sampler only (see :class:`StudyAgent`).
        storage: an Optuna storage URL that keeps each campaign's study (see
            :class:`StudyAgent`); None keeps it in memory.
    """

    name = "gp"
    supports_batch: ClassVar[bool] = False

    def __init__(
        self,
        seed: int | None = None,
        n_startup_trials: int = 10,
        batch_size: int = 1,
        seed_offset: int = 0,
        storage: str | None = None,
    ):
        super().__init__(seed, batch_size, seed_offset, storage)
        self.n_startup_trials = int(n_startup_trials)

    def _sampler(self) -> Any:
        return gp_sampler(self.sampler_seed, self.n_startup_trials)


__all__ = [
    "MAX_RESAMPLES",
    "GPAgent",
    "RandomSearchAgent",
    "StudyAgent",
    "TPEAgent",
    "failure_value",
    "trial_value",
]
