"""A research campaign on one task instance, without Gym: the keep-or-revert loop.

:class:`Campaign` holds the start candidate, the incumbent, the noise model, the keep rule
and the budget (experiments and seconds, time spent proposing included). Its one method
:meth:`Campaign.run` takes a list of :class:`Proposal` s (whole candidates, edits already
applied, reruns of the incumbent, or proposals refused before running), trains them on the
executor, judges each in order and returns one :class:`Outcome` per recorded experiment.
Listeners (the ledger, the env's own history) receive every record.

:class:`rsi_rl.env.ResearchEnv` is a Gymnasium adapter over it: action -> proposal ->
campaign -> observation, mask, reward.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import TaskError
from rsi_rl.core.noise import check_noise_model, keep_noise
from rsi_rl.core.record import ExperimentRecord
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.pruning import PrunerSettings, PruningStudy
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.runner import RECORD_STATUSES, Runner

Listener = Callable[[dict[str, Any]], None]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Proposal:
    """One experiment to run.

    Args:
        kind: the record's label: an edit's name, ``reevaluate``, ``propose``, an agent's.
        candidate: what to train; None reruns the incumbent on a fresh seed.
        description: one line for people.
        refused: a reason: the proposal is recorded as ``invalid`` and not trained (a
            masked action, a failed proposal). It still uses one experiment of the budget.
        seconds: time already spent making the proposal (an external proposer's), charged
            like training time.
        penalty: subtracted from the reward (the env's ``invalid_penalty``).
    """

    kind: str
    candidate: Candidate | None = None
    description: str = ""
    refused: str | None = None
    seconds: float = 0.0
    penalty: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """What one recorded experiment did: its record, reward, kept flag, normalised change
    against the incumbent, and whether the budget is now spent."""

    record: dict[str, Any]
    reward: float
    kept: bool
    delta: float
    truncated: bool


class Campaign:
    """Keep-or-revert research on one instance under a budget.

    Args:
        task, instance: what is researched.
        runner, executor: how candidates train (the executor bound to the runner).
        eval_seed: the seed every candidate is compared on (common random numbers).
        campaign: the campaign's number in the ledger.
        budget: experiments (the baseline is free).
        budget_seconds: optional hard cap on experiment seconds.
        keep_threshold: a child must beat the incumbent by this many noise std.
        noise_model: the noise of the keep rule (:data:`~rsi_rl.core.noise.NOISE_MODELS`). ``global``: the
            task's ``noise_prior`` shrunk toward the std of the incumbent's reruns.
            ``local``: :func:`~rsi_rl.core.noise.relative_noise`, the noise where the incumbent stands, for
            landscapes whose noise shrinks toward the optimum; the same as ``global`` for
            a task without a ``metric_optimum``.
        cost_per_second: reward penalty per experiment second.
        listeners: called with every record, in order (the ledger's ``append`` returns
            the row id, stored as ``id``).
        pruner: stop candidates' runs early by their intermediate reports
            (:mod:`rsi_rl.exec.pruning`): the campaign's runs on its evaluation seed are the
            trials of one study; only candidates are stopped, never the start
            candidate's run or a rerun. None: no pruning.
    """

    def __init__(
        self,
        task: InnerTask,
        instance: Instance,
        runner: Runner,
        executor: Any,
        eval_seed: int,
        campaign: int,
        budget: int,
        budget_seconds: float | None = None,
        keep_threshold: float = 1.0,
        cost_per_second: float = 0.0,
        listeners: Sequence[Listener] = (),
        ledger: Any = None,
        noise_model: str = "global",
        pruner: PrunerSettings | None = None,
    ):
        self.task, self.instance = task, instance
        self.runner, self.executor = runner, executor
        self.eval_seed = int(eval_seed)
        self.campaign = int(campaign)
        self.budget, self.budget_seconds = int(budget), budget_seconds
        self.keep_threshold = float(keep_threshold)
        self.noise_model = check_noise_model(noise_model)
        #: (headroom, scores on their seeds) of earlier incumbents rerun at least once
        self.earlier_reruns: list[tuple[float, list[float]]] = []
        self.cost_per_second = float(cost_per_second)
        self.listeners = list(listeners)
        self.ledger = ledger
        self._next_seed = self.eval_seed
        self.step_index = 0
        self.experiments_used = 0
        self.seconds_used = 0.0
        self.log: list[dict[str, Any]] = []
        self.last: dict[str, Any] = {}
        self.status_counts = dict.fromkeys(RECORD_STATUSES, 0)
        direction = getattr(task, "report_direction", "minimize")
        self.pruning = PruningStudy(pruner, direction) if pruner is not None else None
        self.since_improvement = 0
        self.last_delta = 0.0

    # ------------------------------------------------------------------ start
    def start(self, start: Candidate) -> dict[str, Any]:
        """Train the start candidate (the baseline; free) and make it the incumbent.

        Raises:
            TaskError: the start candidate does not train.
        """
        with self.runner.watching(self.pruning, prune=False):  # reports, never stopped
            result = self.runner.run(self.instance, start, self.eval_seed)
        if result.status != "ok":
            raise TaskError(
                f"task {self.task.name!r}: the start candidate of instance "
                f"{self.instance.seed} failed ({result.status}: {result.message})"
            )
        score = self.task.score(result.metrics[self.task.metric])
        self.start_score = self.best_score = score
        opt = self.task.metric_optimum
        headroom = abs(self.task.score(opt) - score) if opt is not None else abs(score)
        self.scale = max(headroom, 2.0 * self.task.noise_prior, 1e-8)
        self.optimum_score = self.task.score(opt) if opt is not None else None
        self.incumbent = start
        self.incumbent_scores = {self.eval_seed: score}
        return self._record("baseline", start, None, "start config", self.eval_seed, result)

    # ------------------------------------------------------------------ running
    @property
    def experiments_left(self) -> int:
        if self.budget_seconds is not None and self.seconds_used >= self.budget_seconds:
            return 0
        return max(0, self.budget - self.experiments_used)

    @property
    def truncated(self) -> bool:
        """The budget (experiments or seconds) is spent."""
        return self.experiments_left == 0

    def run(self, proposals: Sequence[Proposal]) -> list[Outcome]:
        """Run ``proposals`` and record them, in order; one path for one or many.

        The list is first cut to the experiments left. Candidates train together on the
        executor on the evaluation seed (a rerun of the incumbent on a fresh seed), each
        run's wall-clock limit capped at what is left of ``budget_seconds``. Each result is
        then judged against the incumbent of the moment (an earlier one may have replaced
        it); every record's ``parent`` is the incumbent the batch started from. If the
        seconds cap is reached mid-batch, the remaining results are dropped (not
        recorded, not charged).
        """
        proposals = list(proposals)[: self.experiments_left]
        parent = self.incumbent
        out: list[Outcome] = []
        for proposal, (result, seed) in zip(proposals, self._train(proposals), strict=True):
            out.append(self._judge(proposal, result, seed, parent))
            if out[-1].truncated:
                break
        return out

    def _train(self, proposals: list[Proposal]) -> list[tuple[ExperimentResult, int | None]]:
        """(result, seed) per proposal: refused ones invalid (no seed), the rest trained."""
        out: list[tuple[ExperimentResult, int | None] | None] = [None] * len(proposals)
        cap = None  # no run may take longer than what is left of the seconds cap
        if self.budget_seconds is not None:
            cap = self.budget_seconds - self.seconds_used - sum(p.seconds for p in proposals)
        batch: list[int] = []
        for i, p in enumerate(proposals):
            if p.refused is not None:
                out[i] = (ExperimentResult(status="invalid", message=p.refused), None)
            elif p.candidate is None:  # a rerun of the incumbent on a fresh seed of its own
                seed = self.fresh_seed()
                runs = self.executor.run_many(self.instance, [self.incumbent], seed, timeout=cap)
                out[i] = (runs[0], seed)
            else:
                batch.append(i)
        cands = [c for c in (proposals[i].candidate for i in batch) if c is not None]
        with self.runner.watching(self.pruning):  # a pruner may stop candidates' runs
            trained = self.executor.run_many(self.instance, cands, self.eval_seed, timeout=cap)
        for i, result in zip(batch, trained, strict=True):
            out[i] = (result, self.eval_seed)
        charged: list[tuple[ExperimentResult, int | None]] = []
        for p, item in zip(proposals, out, strict=True):
            assert item is not None
            if p.seconds:  # a proposer's time is charged like training time
                item = (dataclasses.replace(item[0], seconds=item[0].seconds + p.seconds), item[1])
            charged.append(item)
        return charged

    def _judge(
        self,
        proposal: Proposal,
        result: ExperimentResult,
        seed: int | None,
        parent: Candidate,
    ) -> Outcome:
        """Keep-or-revert (or the noise update of a rerun), reward and record of one run."""
        self.step_index += 1
        old = self.incumbent_estimate
        kept, delta = False, 0.0
        cand = proposal.candidate
        if cand is None:  # rerun: feeds the noise estimate only
            cand = self.incumbent
            if result.status == "ok" and seed is not None:
                self.incumbent_scores[seed] = self.task.score(result.metrics[self.task.metric])
        elif result.status == "ok":
            score = self.task.score(result.metrics[self.task.metric])
            delta = score - self.incumbent_scores[self.eval_seed]
            kept = delta > self.keep_threshold * self.noise
            if kept:
                headroom = self.headroom
                if headroom is not None and len(self.incumbent_scores) >= 2:
                    self.earlier_reruns.append((headroom, list(self.incumbent_scores.values())))
                self.incumbent = cand
                self.incumbent_scores = {self.eval_seed: score}
                self.best_score = max(self.best_score, score)
        self.last_delta = delta / self.scale
        self.since_improvement = 0 if kept else self.since_improvement + 1
        reward = (self.incumbent_estimate - old) / self.scale
        reward -= self.cost_per_second * result.seconds + proposal.penalty
        description = proposal.description
        if proposal.candidate is None and seed is not None:
            description = description or f"rerun incumbent on seed {seed}"
        record = self._record(
            proposal.kind,
            cand,
            parent if proposal.refused is None else self.incumbent,
            description or (proposal.refused or ""),
            seed,
            result,
            kept=kept,
            reward=reward,
        )
        return Outcome(record, float(reward), kept, delta / self.scale, self.truncated)

    # ------------------------------------------------------------------ seeds & estimates
    def fresh_seed(self) -> int:
        """A seed the incumbent has not run on (a fixed sequence from the evaluation seed)."""
        while True:
            self._next_seed = (self._next_seed * 1103515245 + 12345) % (2**31 - 1)
            if self._next_seed not in self.incumbent_scores:
                return self._next_seed

    @property
    def incumbent_estimate(self) -> float:
        """The incumbent's score on the campaign's evaluation seed.

        Every candidate is compared on that one seed (common random numbers), so the
        incumbent's score, the reward and the best-so-far all use it too. Runs on other
        seeds (reruns) tighten the noise estimate, and so the keep threshold, but never mix
        a multi-seed mean into a comparison with single-seed children.
        """
        return float(self.incumbent_scores[self.eval_seed])

    @property
    def headroom(self) -> float | None:
        """Optimum score minus the incumbent's (None: the task declares no optimum)."""
        if self.optimum_score is None:
            return None
        return self.optimum_score - self.incumbent_estimate

    @property
    def noise(self) -> float:
        """Std of the metric across seeds, by the campaign's ``noise_model``: ``global``,
        the task's prior shrunk toward the incumbent's reruns; ``local``,
        :func:`~rsi_rl.core.noise.relative_noise` (``global`` without a metric optimum, or
        when the start is already at it)."""
        return keep_noise(
            self.noise_model,
            self.task.noise_prior,
            list(self.incumbent_scores.values()),
            self.incumbent_estimate,
            self.start_score,
            self.optimum_score,
            self.earlier_reruns,
        )

    def metric_of(self, score: float) -> float:
        """Metric value of a higher-is-better score."""
        return self.task.score(score)

    @property
    def start_metric(self) -> float:
        return self.metric_of(self.start_score)

    @property
    def incumbent_metric(self) -> float:
        return self.metric_of(self.incumbent_estimate)

    @property
    def best_metric(self) -> float:
        return self.metric_of(self.best_score)

    # ------------------------------------------------------------------ records
    def evaluate_test(self, candidate: Candidate | None = None) -> dict[str, Any]:
        """Score the incumbent (or ``candidate``) once on the test split, for the report:
        recorded with ``split="test"``, never charged or rewarded."""
        cand = candidate or self.incumbent
        result = self.runner.run(self.instance, cand, self.eval_seed, split="test")
        return self._record(
            "test", cand, None, "final test evaluation", self.eval_seed, result, split="test"
        )

    def _record(
        self,
        kind: str,
        cand: Candidate,
        parent: Candidate | None,
        description: str,
        seed: int | None,
        result: ExperimentResult,
        kept: bool = False,
        reward: float = 0.0,
        split: str = "val",
    ) -> dict[str, Any]:
        metric_name = self.task.metric_for(split)
        metric = result.metrics.get(metric_name) if result.status == "ok" else None
        if kind != "baseline" and split == "val":
            self.experiments_used += 1
            self.seconds_used += result.seconds
            self.status_counts[result.status] = self.status_counts.get(result.status, 0) + 1
        now = _now()
        record = ExperimentRecord.from_result(
            result,
            campaign=self.campaign,
            step=self.step_index,
            instance=self.instance.id,
            parent=parent.hash if parent is not None else None,
            candidate=cand.hash,
            kind=kind,
            description=description,
            config=cand.config,
            diff=cand.diff(parent) if parent is not None else "",
            seed=seed,
            split=split,
            budget_seconds=self.runner.limits.timeout,
            metric=metric,
            kept=bool(kept or kind == "baseline"),
            incumbent_metric=self.incumbent_metric,
            best_metric=self.best_metric,
            reward=float(reward),
            seconds_used=self.seconds_used,  # the campaign's, this experiment included
            started_at=now,
            finished_at=now,
        )
        rec = record.to_dict()
        if self.ledger is not None:
            rec["id"] = self.ledger.append(rec)
        for listener in self.listeners:
            listener(rec)
        self.last = rec
        self.log.append(rec)
        return rec


__all__ = ["Campaign", "Outcome", "Proposal"]
