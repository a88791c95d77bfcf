"""What an agent may read of a running campaign: :class:`CampaignView`.

The campaign loop (:func:`rsi_rl.search.run_campaign`) hands agents a view, never the env:
an agent reads the task, its edit space, the incumbent, the records so far, the budget
left, the observation and mask a learned policy acts on, and builds proposals, but only
the loop runs experiments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rsi_rl.campaign import Proposal
from rsi_rl.core.edits import Candidate, EditSpace
from rsi_rl.core.read_through import ReadThrough

if TYPE_CHECKING:
    from rsi_rl.core.task import InnerTask
    from rsi_rl.env import ResearchEnv


def _env(view: CampaignView, name: str) -> ResearchEnv:
    return view._env


class CampaignView:
    """A read-only view of a campaign of a :class:`~rsi_rl.env.ResearchEnv`.

    Args:
        env: the env, after ``reset``.
        observation: the observation ``reset`` returned.

    Example:
        >>> view = CampaignView(env, obs)  # doctest: +SKIP
        >>> view.proposal("lr_up")  # doctest: +SKIP
        Proposal(kind='lr_up', candidate=Candidate(...), description='lr 0.01 -> 0.02', ...)
    """

    def __init__(self, env: ResearchEnv, observation: np.ndarray):
        self._env = env
        self._observation = np.asarray(observation, dtype=np.float32)
        start = env.incumbent  # reset trained it: the start candidate
        self._candidates: dict[str, Candidate] = {start.hash: start}

    def update(self, observation: np.ndarray, proposals: Sequence[Proposal]) -> None:
        """After a batch ran (the loop calls it): its observation, and its candidates for
        :meth:`candidate`."""
        self._observation = np.asarray(observation, dtype=np.float32)
        for p in proposals:
            if p.candidate is not None:
                self._candidates.setdefault(p.candidate.hash, p.candidate)
        incumbent = self._env.incumbent
        self._candidates.setdefault(incumbent.hash, incumbent)

    # ------------------------------------------------------------------ the task
    task: ReadThrough[InnerTask] = ReadThrough(_env, "The inner task.")
    space: ReadThrough[EditSpace] = ReadThrough(
        _env, "The task's edits (:class:`~rsi_rl.core.edits.EditSpace`)."
    )
    action_names: ReadThrough[tuple[str, ...]] = ReadThrough(
        _env,
        """What each action does: edit names, ``""`` for empty slots, then the
        meta-actions (``reevaluate``, ``propose``, ``stop``).""",
    )

    def action_index(self, name: str) -> int:
        """The action of an edit or meta-action name (``lr_up``, ``reevaluate``)."""
        return self._env.action_index(name)

    @property
    def start_config(self) -> dict[str, Any]:
        """The instance's start config (a copy)."""
        assert self._env.instance is not None
        return dict(self._env.instance.start_config)

    @property
    def instance_id(self) -> str:
        assert self._env.instance is not None
        return str(self._env.instance.id)

    @property
    def campaign(self) -> int:
        """The campaign's number in the ledger."""
        return int(self._env.campaign)

    # ------------------------------------------------------------------ the campaign
    incumbent: ReadThrough[Candidate] = ReadThrough(_env, "The incumbent candidate.")

    @property
    def log(self) -> tuple[Mapping[str, Any], ...]:
        """Every record of the campaign so far, the baseline first."""
        return tuple(self._env.log)

    def candidate(self, hash_: str) -> Candidate | None:
        """The candidate of a record's ``candidate`` hash: the start, an incumbent, or one
        an agent proposed in this campaign; None for others (an external proposer's)."""
        return self._candidates.get(hash_)

    eval_seed: ReadThrough[int] = ReadThrough(_env, "The seed every candidate is compared on.")
    budget: ReadThrough[int] = ReadThrough(_env, "Experiments per campaign.")
    experiments_used: ReadThrough[int] = ReadThrough(_env, "Experiments run so far.")

    @property
    def experiments_left(self) -> int:
        """Experiments left (0 once the seconds cap is spent too)."""
        research = self._env.research
        return research.experiments_left if research is not None else 0

    seconds_used: ReadThrough[float] = ReadThrough(_env, "Experiment seconds spent so far.")
    noise: ReadThrough[float] = ReadThrough(
        _env, "The noise estimate (std of the metric across seeds)."
    )
    start_metric: ReadThrough[float] = ReadThrough(_env, "The start candidate's metric.")
    incumbent_metric: ReadThrough[float] = ReadThrough(_env, "The incumbent's metric.")

    # ------------------------------------------------------------------ what a policy sees
    def observation(self) -> np.ndarray:
        """The observation after the last batch (a copy)."""
        return self._observation.copy()

    def action_masks(self) -> np.ndarray:
        """The env's action mask (``mask[i]``: action ``i`` is valid for the incumbent)."""
        return self._env.action_masks()

    def child_of(self, action: int) -> Candidate | None:
        """The candidate edit slot ``action`` would train now (None: empty or invalid)."""
        return self._env.child_of(action)

    def proposal(self, name: str) -> Proposal:
        """The experiment an edit or meta-action asks for now (``lr_up``, ``reevaluate``,
        ``propose``); a masked one is refused (recorded ``invalid``, still charged)."""
        return self._env.edit_proposal(name)


__all__ = ["CampaignView"]
