"""``rsi_rl/Research-v0``: the research loop as a Gymnasium environment.

An episode is a *campaign* on one task instance. ``reset`` draws an instance, trains its
start candidate (the baseline; not charged to the budget) and makes it the incumbent.
Each ``step`` takes an action: an edit slot (one of the task's own edits, generated from its
knobs and patches; :mod:`rsi_rl.actions`) or a meta-action. An edit is applied to the
incumbent, the child trained in the sandbox and scored with the task's trusted evaluator. The child
replaces the incumbent only if it beats it, on the same seed, by more than
``keep_threshold`` times the noise estimate (keep-or-revert). ``reevaluate`` reruns the
incumbent on a fresh seed (tightening the noise estimate, hence the keep threshold; the
incumbent's score stays its evaluation-seed score); ``stop`` ends the campaign.

Reward = change of the incumbent's score estimate divided by the instance's scale (the
headroom from the start to the metric's optimum), minus ``cost_per_second`` times the
seconds spent. A campaign's return therefore telescopes to its normalised improvement.
Failed experiments (crash, timeout, oom, nan, invalid) change nothing but cost budget.

The observation is a flat ``Box`` in [-1, 1] that never names the task: budget used,
incumbent and last-candidate progress, noise, last-run diagnostics and status, then one row
per edit slot (role, edit type, knob position before and after, this campaign's history of
the edit and of its knob or patch, what the candidates evaluated so far say of the child it
would train, validity) and the meta-actions' mask. See
:data:`rsi_rl.actions.OBSERVATION_FEATURES` and docs/concepts.md.

This module is the Gymnasium adapter only (action -> proposal -> campaign -> observation,
mask, reward): the research loop is :mod:`rsi_rl.campaign`, what the observation keeps of a
campaign and its encoding :mod:`rsi_rl.observation`, and the runner, executor and sandbox
limits an env is built on :mod:`rsi_rl.env_setup`. It runs past the project's ~450 lines
only by its documentation (about 130 lines of docstrings: every constructor argument and
the contract of each public method), which belongs beside the code it describes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rsi_rl.actions import (
    MAX_SLOTS,
    META_ACTIONS,
    N_ACTIONS,
    OBSERVATION_FEATURES,
    STOP,
)
from rsi_rl.campaign import Campaign, Outcome, Proposal
from rsi_rl.core.edits import Candidate, start_candidate
from rsi_rl.core.errors import ConfigError, EditError, TaskError
from rsi_rl.core.noise import check_noise_model
from rsi_rl.core.read_through import ReadThrough
from rsi_rl.core.registry import make_task
from rsi_rl.core.seeds import draw_evaluation_seed
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.env_setup import bound_runner, env_limits, instance_pool
from rsi_rl.exec.pruning import PrunerSettings, pruner_settings
from rsi_rl.exec.sandbox import SandboxLimits
from rsi_rl.observation import CampaignMemory, Evidence, encode, step_info
from rsi_rl.proposer import ProposerError, make_proposer
from rsi_rl.store.ledger import Ledger


def _campaign(env: ResearchEnv, name: str) -> Campaign:
    """The current campaign, whose attribute ``name`` an env attribute reads through."""
    return env._research(name)


class ResearchEnv(gym.Env[np.ndarray, np.int64]):
    """The research process on an inner task as a Gymnasium environment.

    Args:
        task: a task name (``"digits_mlp"``, ``"tabular"``, a plugin), class or instance.
        budget: experiments per campaign (K); the baseline in ``reset`` is free.
        budget_seconds: optional cap on the campaign's experiment seconds.
        instances: ``"train"`` (meta-train seeds), ``"heldout"``, one instance seed, or a
            list of seeds; ``reset`` draws from it with the env's RNG.
        keep_threshold: a child must beat the incumbent by this many noise std to be kept.
        noise_model: how that noise is estimated: ``"global"`` (the task's noise prior
            shrunk toward the incumbent's reruns) or ``"local"`` (the noise where the
            incumbent stands, for landscapes whose noise shrinks near the optimum); see
            :class:`~rsi_rl.campaign.Campaign`.
        cost_per_second: reward penalty per experiment second.
        invalid_penalty: reward penalty for a masked (invalid) action.
        mask_duplicates: also mask an edit whose child was already trained on the campaign's
            evaluation seed (undoing a kept edit, repeating a reverted one): the result is
            known (the runner would serve it from its cache) yet charged in full.
        timeout: wall-clock seconds per experiment (default: the task's).
        sandbox: extra :class:`~rsi_rl.exec.sandbox.SandboxLimits` fields (memory_mb, ...).
        run_dir: where to keep the ledger (``ledger.sqlite`` + ``results.tsv``); None
            keeps no ledger.
        scratch_dir: parent folder of per-experiment scratch folders (default: a temp dir).
        cache_path: optional SQLite result cache shared across runs (:mod:`rsi_rl.exec.cache`).
        executor: how :meth:`try_candidates` runs a batch: ``"serial"`` (default), a mapping
            such as ``{"name": "local", "workers": 2}``, or an
            :class:`~rsi_rl.exec.batch.Executor` (see :mod:`rsi_rl.exec.executor`).
        proposer: an external proposer (:class:`~rsi_rl.proposer.Proposer`, an argv list,
            or a mapping with ``command``); it unmasks the ``propose`` action, whose
            proposals are trained and kept-or-reverted like any edit.
        allow_stop: unmask ``stop`` in :meth:`action_masks`. Masked by default: with no
            compute cost stopping never pays, yet a learner trained on the mask (e.g.
            sb3-contrib's MaskablePPO) readily learns to stop at step 1. ``step(stop)``
            ends the campaign either way, and the observation does not depend on it.
        pruner: stop candidates' runs early by the reports their programs make with
            ``harness.report`` (:mod:`rsi_rl.exec.pruning`): ``None`` (default), ``"median"``,
            ``"successive_halving"`` or ``"hyperband"``, or a
            :class:`~rsi_rl.exec.pruning.PrunerSettings`. A stopped run is recorded as
            ``pruned`` and counts as a ``timeout`` in the observation. Needs the
            ``serial`` executor.
        pruner_warmup_steps, pruner_startup_trials, pruner_reduction_factor,
        pruner_warmup_fraction: the pruner's settings (:class:`~rsi_rl.exec.pruning.PrunerSettings`).

    Example:
        >>> import gymnasium as gym, rsi_rl
        >>> env = gym.make("rsi_rl/Research-v0", task="tabular", budget=5)  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample(
        ...     mask=env.unwrapped.action_masks().astype(np.int8)))  # doctest: +SKIP
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        task: str | InnerTask | Any = "digits_mlp",
        budget: int = 20,
        budget_seconds: float | None = None,
        instances: str | int | list[int] = "heldout",
        keep_threshold: float = 1.0,
        noise_model: str = "global",
        cost_per_second: float = 0.0,
        invalid_penalty: float = 0.0,
        mask_duplicates: bool = True,
        timeout: float | None = None,
        sandbox: dict[str, Any] | SandboxLimits | None = None,
        run_dir: str | Path | None = None,
        scratch_dir: str | Path | None = None,
        render_mode: str | None = None,
        proposer: Any = None,
        cache_path: str | Path | None = None,
        executor: Any = None,
        allow_stop: bool = False,
        pruner: str | PrunerSettings | None = None,
        pruner_warmup_steps: int = 0,
        pruner_startup_trials: int = 5,
        pruner_reduction_factor: int = 3,
        pruner_warmup_fraction: float = 0.25,
    ):
        super().__init__()
        if int(budget) < 1:
            raise ConfigError(f"budget must be a positive number of experiments, got {budget}")
        if budget_seconds is not None and float(budget_seconds) <= 0:
            raise ConfigError(f"budget_seconds must be positive or null, got {budget_seconds}")
        if keep_threshold < 0:
            raise ConfigError(f"keep_threshold must be >= 0, got {keep_threshold}")
        self.task: InnerTask = make_task(task)
        self.space = self.task.edit_space()
        if len(self.space) > MAX_SLOTS:
            raise TaskError(
                f"task {self.task.name!r} has {len(self.space)} edits; an env holds at most "
                f"{MAX_SLOTS} edit slots: declare fewer knobs, options or patches"
            )
        self.budget = int(budget)
        self.budget_seconds = None if budget_seconds is None else float(budget_seconds)
        self.instances = instances
        self._instance_pool = instance_pool(self.task, instances)
        self.keep_threshold = float(keep_threshold)
        self.noise_model = check_noise_model(noise_model)
        self.cost_per_second = float(cost_per_second)
        self.invalid_penalty = float(invalid_penalty)
        self.mask_duplicates = bool(mask_duplicates)
        self.allow_stop = bool(allow_stop)
        limits = env_limits(self.task, sandbox, timeout, run_dir, cache_path)
        self.pruner = pruner_settings(
            pruner,
            pruner_warmup_steps,
            pruner_startup_trials,
            pruner_reduction_factor,
            pruner_warmup_fraction,
        )
        self.runner, self.executor = bound_runner(
            self.task, limits, scratch_dir, cache_path, executor, self.pruner
        )
        self.proposer = make_proposer(proposer)
        self.ledger = (
            Ledger(run_dir, self.task.name, self.task.metric, self.task.direction)
            if run_dir
            else None
        )
        self.render_mode = render_mode
        #: what each action does: the task's edit names, "" for empty slots, meta-actions
        self.action_names: tuple[str, ...] = (
            tuple(e.name for e in self.space.edits)
            + ("",) * (MAX_SLOTS - len(self.space))
            + META_ACTIONS
        )
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (len(OBSERVATION_FEATURES),), np.float32)
        self.instance: Instance | None = None
        self.campaign = 0
        self.research: Campaign | None = None
        self._children: list[Candidate | None] = []

    # ------------------------------------------------------------------ set-up
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "instance" in options:
            inst_seed = int(options["instance"])
        else:
            inst_seed = int(
                self._instance_pool[int(self.np_random.integers(len(self._instance_pool)))]
            )
        self.instance = self.task.make_instance(inst_seed)
        if "campaign" in options:  # resuming: replay into the same campaign of the ledger
            self.campaign = int(options["campaign"])
        else:
            self.campaign = self.ledger.next_campaign() if self.ledger else self.campaign + 1
        self.research = Campaign(
            self.task,
            self.instance,
            self.runner,
            self.executor,
            eval_seed=draw_evaluation_seed(self.np_random),
            campaign=self.campaign,
            budget=self.budget,
            budget_seconds=self.budget_seconds,
            keep_threshold=self.keep_threshold,
            cost_per_second=self.cost_per_second,
            ledger=self.ledger,
            noise_model=self.noise_model,
            pruner=self.pruner,
        )
        record = self.research.start(start_candidate(self.task, self.instance.start_config))
        self.memory = CampaignMemory(self.space, self.research)  # what the observation keeps
        self._mask = self._compute_mask()
        return self._obs(), self._info(record)

    # ------------------------------------------------------------------ stepping
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        research = self._research("step")
        action = int(action)
        if not 0 <= action < N_ACTIONS:
            raise gym.error.InvalidAction(f"action {action} is outside Discrete({N_ACTIONS})")
        kind = self.action_names[action] or f"slot{action}"
        if kind == "stop":
            research.step_index += 1
            record = {"kind": "stop", "step": research.step_index, "status": "stopped"}
            return self._obs(), 0.0, True, False, self._info(record)
        out = self.run_proposals([self.action_proposal(action)])
        if not out:  # the budget is spent: the campaign records nothing more
            return self._obs(), 0.0, False, True, self._info(self.last)
        return out[0]

    def action_proposal(self, action: int) -> Proposal:
        """The experiment action ``action`` asks for now: the child of an edit slot, a rerun
        of the incumbent, the external proposer's patch, or (masked) a refused one."""
        self._research("action_proposal")
        kind = self.action_names[action] or f"slot{action}"
        if not self._mask[action]:
            what = f"edit {kind!r}" if self.action_names[action] else f"empty edit slot {action}"
            return Proposal(
                kind, refused=f"{what} is not valid for the incumbent", penalty=self.invalid_penalty
            )
        if kind in ("reevaluate", "propose"):
            return Proposal(kind)
        child = self._children[action]
        assert child is not None  # the mask holds only buildable edits
        return Proposal(kind, child, self.space.apply(self.incumbent, kind)[1])

    def edit_proposal(self, name: str) -> Proposal:
        """:meth:`action_proposal` of an edit or meta-action by name (``lr_up``)."""
        return self.action_proposal(self.action_index(name))

    def run_proposals(
        self, proposals: list[Proposal]
    ) -> list[tuple[np.ndarray, float, bool, bool, dict[str, Any]]]:
        """Run experiments (:meth:`rsi_rl.campaign.Campaign.run`): ``step``'s tuple per
        recorded one, in order. A ``propose`` proposal without a candidate asks the
        external proposer now; a ``reevaluate`` one reruns the incumbent on a fresh seed."""
        research = self._research("run_proposals")
        proposals = [
            self._ask_proposer()
            if p.kind == "propose" and p.candidate is None and p.refused is None
            else p
            for p in proposals
        ]
        return self._results(research.run(proposals), proposals)

    def try_candidate(
        self, child: Candidate, description: str = "", kind: str = "jump"
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One experiment on a whole candidate (not one edit away), under ``step``'s rules.

        For agents that propose complete configurations, such as Optuna TPE: ``child`` runs
        on the campaign's evaluation seed, is charged to the budget, replaces the incumbent
        only if it beats it by more than ``keep_threshold`` times the noise, and the reward
        is the change of the incumbent estimate. ``kind`` labels the record (the name of one
        of the task's edits also counts in that edit's history, as in ``step``; another
        label, e.g. ``"tpe"``, leaves the history alone). Returns ``step``'s tuple.
        """
        out = self.try_candidates([child], [description], [kind])
        if not out:
            return self._obs(), 0.0, False, True, self._info(self.last)
        return out[0]

    def try_candidates(
        self,
        children: list[Candidate],
        descriptions: list[str] | None = None,
        kinds: list[str] | None = None,
    ) -> list[tuple[np.ndarray, float, bool, bool, dict[str, Any]]]:
        """A batch of :meth:`try_candidate` experiments, trained at once by the env's executor.

        The batch is first cut to the experiments left in the budget; its candidates then
        train concurrently on the campaign's evaluation seed (``executor=local`` or ``ray``;
        one by one with the default ``serial`` executor) and are recorded one by one, in
        the order given, under the same keep-or-revert rule, budget and seconds accounting
        as :meth:`try_candidate` (:meth:`rsi_rl.campaign.Campaign.run`). Results do not
        depend on the executor or its number of workers.

        Returns:
            ``step``'s tuple for each recorded experiment, in order (may be shorter than
            ``children``; empty when the budget is spent).
        """
        research = self._research("try_candidates")
        children = list(children)
        descriptions = [""] * len(children) if descriptions is None else list(descriptions)
        kinds = ["jump"] * len(children) if kinds is None else list(kinds)
        if not len(children) == len(descriptions) == len(kinds):
            raise ValueError("try_candidates: children, descriptions and kinds differ in length")
        proposals = [
            Proposal(k, c, d) for c, d, k in zip(children, descriptions, kinds, strict=True)
        ]
        return self._results(research.run(proposals), proposals)  # never "propose" asks

    def _research(self, what: str) -> Campaign:
        if self.research is None:
            raise gym.error.ResetNeeded(f"call reset() before {what}()")
        return self.research

    def _results(
        self, outcomes: list[Outcome], proposals: list[Proposal]
    ) -> list[tuple[np.ndarray, float, bool, bool, dict[str, Any]]]:
        """``step``'s tuple per outcome (of ``proposals``, in order); the observation's
        history and evidence count each."""
        out = []
        for o, p in zip(outcomes, proposals, strict=False):
            self.memory.tell(o, p)
        self._mask = self._compute_mask()
        n = len(outcomes)
        for i, o in enumerate(outcomes):  # one observation per outcome: the state after the
            # batch; info counts each outcome's own experiments, seconds and metrics
            info = self._info(o.record, used=self.experiments_used - (n - 1 - i))
            out.append((self._obs(), o.reward, False, o.truncated, info))
        return out

    def action_index(self, name: str) -> int:
        """The action of an edit or meta-action name (``lr_up``, ``reevaluate``)."""
        try:
            return self.action_names.index(name) if name else -1
        except ValueError:
            raise EditError(
                f"task {self.task.name!r} has no action {name!r}; "
                f"its edits: {', '.join(self.space.index)}"
            ) from None

    def _ask_proposer(self) -> Proposal:
        """The external proposer's patch as a proposal (refused when it fails); the time it
        took is charged like training time."""
        assert self.proposer is not None and self.research is not None
        t0 = time.monotonic()
        try:
            seed = self.research.fresh_seed()
            request = self.proposer.request(
                self.task,
                self.incumbent,
                self.log,
                seed,
                self.research.step_index + 1,
                self.incumbent_metric,
            )
            child, description, spent = self.proposer.propose(self.task, self.incumbent, request)
        except ProposerError as exc:
            return Proposal("propose", refused=str(exc), seconds=time.monotonic() - t0)
        return Proposal("propose", child, description, seconds=spent)

    # ------------------------------------------------------------------ campaign state
    # the current campaign's state, read through (``reset`` first)
    incumbent: ReadThrough[Candidate] = ReadThrough(_campaign, "the current incumbent candidate")
    incumbent_scores: ReadThrough[dict[int, float]] = ReadThrough(
        _campaign, "the incumbent's score per seed"
    )
    eval_seed: ReadThrough[int] = ReadThrough(_campaign, "the seed every candidate is compared on")
    status_counts: ReadThrough[dict[str, int]] = ReadThrough(_campaign, "experiments per status")
    scale: ReadThrough[float] = ReadThrough(
        _campaign, "the instance's headroom (reward normaliser)"
    )
    start_score: ReadThrough[float] = ReadThrough(_campaign, "the start candidate's score")
    incumbent_estimate: ReadThrough[float] = ReadThrough(_campaign, "the incumbent's score")
    noise: ReadThrough[float] = ReadThrough(_campaign, "the noise estimate of the keep rule")
    start_metric: ReadThrough[float] = ReadThrough(_campaign, "the start candidate's metric")
    incumbent_metric: ReadThrough[float] = ReadThrough(_campaign, "the incumbent's metric")
    best_metric: ReadThrough[float] = ReadThrough(_campaign, "the best metric reached")

    @property
    def log(self) -> list[dict[str, Any]]:
        return self.research.log if self.research is not None else []

    @property
    def last(self) -> dict[str, Any]:
        return self.research.last if self.research is not None else {}

    @property
    def experiments_used(self) -> int:
        return self.research.experiments_used if self.research is not None else 0

    @property
    def seconds_used(self) -> float:
        return self.research.seconds_used if self.research is not None else 0.0

    @property
    def step_index(self) -> int:
        return self.research.step_index if self.research is not None else 0

    def _info(self, record: dict[str, Any], used: int | None = None) -> dict[str, Any]:
        return step_info(self._research("info"), record, used)

    def observation(self) -> np.ndarray:
        """The observation of the campaign's current state (what ``step`` last returned)."""
        self._research("observation")
        return self._obs()

    @property
    def experiments_left(self) -> int:
        """Experiments the budget still allows (0 once experiments or seconds are spent)."""
        return self.research.experiments_left if self.research is not None else self.budget

    # ------------------------------------------------------------------ masks & obs
    def _compute_mask(self) -> np.ndarray:
        children = self.space.children(self.incumbent)  # each edit built once per step
        self._children = children
        mask = np.zeros(N_ACTIONS, dtype=bool)
        mask[: len(children)] = [c is not None for c in children]
        mask[MAX_SLOTS:] = [True, self.proposer is not None, True]
        if self.mask_duplicates:  # an experiment already run on this seed teaches nothing
            seen = {
                r.get("candidate")
                for r in self.log
                if r.get("seed") == self.eval_seed and r.get("split") == "val"
            }
            for i, child in enumerate(children):
                if mask[i] and child is not None:
                    mask[i] = child.hash not in seen
        return mask

    def child_of(self, action: int) -> Candidate | None:
        """The candidate edit slot ``action`` would train now (None: empty or invalid)."""
        if not 0 <= action < len(self._children):
            return None
        return self._children[action]

    def action_masks(self) -> np.ndarray:
        """Boolean mask of the actions to choose from (the sb3-contrib MaskablePPO protocol).

        The valid actions, less ``stop`` unless the env was made with ``allow_stop=True``.
        The observation's ``mask_*`` features keep ``stop`` valid (it always is an action
        ``step`` accepts), so a policy sees the same observation whatever ``allow_stop``.
        """
        mask = self._mask.copy()
        if not self.allow_stop:
            mask[STOP] = False
        return mask

    def _obs(self) -> np.ndarray:
        return encode(self.memory, self._children, self._mask)

    @property
    def evidence(self) -> Evidence:
        """The candidates this campaign evaluated, which the observation scores slots against."""
        self._research("evidence")
        return self.memory.evidence

    # ------------------------------------------------------------------ final report
    def evaluate_test(self, candidate: Candidate | None = None) -> dict[str, Any]:
        """Score the incumbent (or ``candidate``) once on the test split, for the report.

        Recorded in the ledger with ``split="test"``; never part of the reward.
        """
        return self._research("evaluate_test").evaluate_test(candidate)

    def render(self) -> str | None:
        if self.render_mode != "ansi" or not self.last:
            return None
        r = self.last
        m = "-" if r.get("metric") is None else f"{r['metric']:.4f}"
        return f"[{self.experiments_used}/{self.budget}] {r.get('kind')} {m} {r.get('status')}"

    def close(self) -> None:
        self.executor.close()
        self.runner.close()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
