"""Optuna TPE over the same edit space and budget: the baseline a researcher would pick.

How TPE maps onto the edit-based env (the fair-comparison choice):

* **Same space.** TPE searches over exactly the candidates the edit agents can reach
  (:class:`~rsi_rl.space.CandidateSpace`), every knob and patch of the task, however many
  share a role: for a numeric or ordinal knob the values reachable from the start config
  by ``<key>_up`` / ``<key>_down`` moves within bounds (an ordered integer index, so TPE
  models it as ordinal), for a categorical knob its options, and for each code patch a
  boolean toggle. Meta-actions (``reevaluate``, ``propose``, ``stop``) have no TPE
  counterpart.
* **Same budget.** Each TPE trial is *one* experiment: the proposed whole candidate runs
  through the env's own runner on the campaign's evaluation seed
  (:meth:`~rsi_rl.env.ResearchEnv.try_candidate`), is charged to the same K experiments
  and seconds cap, and is kept only if it beats the incumbent by the same noise margin.
  TPE does not pay one experiment per edit on the way to a far configuration (that would
  handicap it); it never proposes a candidate the campaign already ran (a repeat would be
  charged in full for a known result): a repeated ask is dropped and asked again, up to
  :data:`MAX_RESAMPLES` times, then a uniformly drawn new candidate is run instead.
* **Failed runs teach.** Optuna's TPE ignores failed trials, so it would propose a
  timed-out or crashed region again and again. A failed run is told to the study as
  :func:`failure_value`: the worst value of the campaign so far (at worst the start's),
  so TPE models its region as bad.
* **Same start.** The start config's baseline run (free for every agent) is told to the
  study as its first trial, so TPE knows what the edit agents know.

Example:
    rsi-rl search task=tabular agent=tpe budget=20
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rsi_rl.agents.base import CandidateAgent
from rsi_rl.edits import Candidate
from rsi_rl.errors import EditError
from rsi_rl.space import CandidateSpace, random_sampler, tpe_sampler
from rsi_rl.task import InnerTask


def trial_value(exp: dict[str, Any]) -> float | None:
    """The metric an experiment record tells a study: None for a run that failed."""
    metric = exp.get("metric")
    return float(metric) if exp.get("status") == "ok" and metric is not None else None


#: asks of a study that may repeat a candidate of the campaign before a uniform draw
MAX_RESAMPLES = 20


def failure_value(values: list[float], direction: str) -> float:
    """What a study is told for a failed run (crash, timeout, oom, nan, invalid): the worst
    of the campaign's ``values`` so far (it holds at least the start's), in ``direction``."""
    return min(values) if direction == "maximize" else max(values)


class StudyAgent(CandidateAgent):
    """An Optuna study (ask/tell, seeded) over the task's knobs and code toggles
    (:class:`~rsi_rl.space.CandidateSpace`), one trial per experiment; subclasses choose
    the sampler (:meth:`_sampler`).

    Args:
        seed: seed of the sampler (and so of the campaign's proposals).
        batch_size: trials asked at once, trained together by the env's executor.
        seed_offset: added to ``seed`` for the sampler only (the bench gives campaign i
            seed i): a nonzero offset is another, independent draw of the same agent on
            the same instances and evaluation seeds, an A/A test of a bench's resolution.
    """

    supports_batch: ClassVar[bool] = True

    def __init__(self, seed: int | None = None, batch_size: int = 1, seed_offset: int = 0):
        super().__init__(seed, batch_size)
        self.sampler_seed = None if seed is None else int(seed) + int(seed_offset)
        self.study: Any = None
        # asked, not yet told (in the order they are recorded), with their candidate's hash
        self._trials: list[tuple[Any, str]] = []
        self._values: list[float] = []  # metrics of the campaign's runs told so far
        self._run: set[str] = set()  # hashes of the candidates run (or under way)

    def reset(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        self.study = None  # built lazily on the first proposal, from the env's task
        self._trials = []
        self._values = []
        self._run = set()

    def _setup(self, env: Any) -> None:
        import optuna

        task: InnerTask = env.task
        self.space = CandidateSpace(task, dict(env.instance.start_config))
        self.start = self.space.start
        self.distributions = self.space.distributions
        self.study = optuna.create_study(direction=task.direction, sampler=self._sampler())
        self._tell_known(self.start, float(env.start_metric))

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

    def warm_start(self, env: Any, experiments: list[tuple[Candidate, float | None]]) -> None:
        """Start the study from a campaign's experiments so far (``(candidate, metric)``,
        metric None for a failed run), all on the evaluation seed: TPE then models them as
        its own trials (and counts them towards ``n_startup_trials``)."""
        if self.study is None:
            self._setup(env)
        for cand, value in experiments:
            self._tell_known(cand, value)

    def candidate(self, task: InnerTask, params: dict[str, Any]) -> tuple[Candidate, str]:
        """The candidate of a parameter set: knob values and code toggles applied to the start."""
        return self.space.candidate(params, "tpe")

    def propose(self, env: Any) -> tuple[Candidate, str]:
        child, description, _ = self.propose_batch(env, 1)[0]
        return child, description

    def propose_batch(self, env: Any, n: int) -> list[tuple[Any, str, str]]:
        if self.study is None:
            self._setup(env)
        self._fail_pending()
        self._run.update(  # what else ran on the evaluation seed (e.g. a hybrid's edits)
            r["candidate"]
            for r in getattr(env, "log", [])
            if r.get("split") == "val" and r.get("seed") == env.eval_seed and r.get("candidate")
        )
        out: list[tuple[Any, str, str]] = []
        for _ in range(int(n)):
            trial, child, description = self._ask_new(env)
            self._trials.append((trial, child.hash))
            self._run.add(child.hash)
            out.append((child, description, self.name))
        return out

    def _ask_new(self, env: Any) -> tuple[Any, Candidate, str]:
        """A trial whose candidate the campaign has not run: the sampler's, asked up to
        :data:`MAX_RESAMPLES` times (a repeat is told FAIL: it was never run), then a
        uniform draw from the space; a repeat only when none is found (a spent space)."""
        import optuna

        trial, child, description = self._ask(env)
        for attempt in range(2 * MAX_RESAMPLES):
            if child.hash not in self._run:
                break
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if attempt >= MAX_RESAMPLES:
                self.study.enqueue_trial(self._uniform_params(), skip_if_exists=False)
            trial, child, description = self._ask(env)
        return trial, child, description

    def _ask(self, env: Any) -> tuple[Any, Candidate, str]:
        trial = self.study.ask(self.distributions)
        try:
            child, description = self.candidate(env.task, trial.params)
        except EditError:  # patches that do not compose: the start config (already run)
            child, description = self.start, "start config (proposal did not apply)"
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

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        if not self._trials:
            return
        trial, _ = self._trials.pop(0)
        self.study.tell(trial, self._told(trial_value(info.get("experiment") or {})))

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
    """

    name = "tpe"

    def __init__(
        self,
        seed: int | None = None,
        n_startup_trials: int = 10,
        multivariate: bool = False,
        batch_size: int = 1,
        seed_offset: int = 0,
    ):
        super().__init__(seed, batch_size, seed_offset)
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
    """

    name = "random_search"

    def _sampler(self) -> Any:
        return random_sampler(self.sampler_seed)


__all__ = [
    "MAX_RESAMPLES",
    "RandomSearchAgent",
    "StudyAgent",
    "TPEAgent",
    "failure_value",
    "trial_value",
]
