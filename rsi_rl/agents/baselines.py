"""Baseline agents a researcher would otherwise use.

* :class:`RandomAgent`: a uniformly random valid edit each step (no memory).
* :class:`GreedyAgent`: autoresearch's loop. Propose an edit to the incumbent, keep it if
  it beats the incumbent (the campaign decides, noise-aware), otherwise revert; never
  propose an edit that already failed on the current incumbent, so the budget is not spent
  twice on the same idea. When every edit has failed on the incumbent, rerun it on a new
  seed. With an external proposer configured, ``propose`` is one of the ideas (never tabu).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rsi_rl.actions import PROPOSE, STOP
from rsi_rl.agents.base import EDIT_ACTIONS, Agent, Record, Tabu, uniform
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal


class RandomAgent(Agent):
    """Uniform over valid edits and meta-actions (``reevaluate``, ``propose``); never stops.

    With ``batch_size`` B > 1 it asks for B distinct valid edits of the incumbent at once
    (uniform without replacement; no meta-action in a batch), trained together by the
    env's executor; when no edit is valid it asks for one uniform action.
    """

    name = "random"
    supports_batch = True

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        mask = view.action_masks()
        if self.batch_size > 1:
            batch = self._distinct_edits(view, mask, n)
            if batch:
                return batch
        allowed = mask.copy()
        allowed[STOP] = False
        action = uniform(self.rng, allowed)
        return [] if action is None else [view.proposal(view.action_names[action])]

    def _distinct_edits(self, view: CampaignView, mask: np.ndarray, n: int) -> list[Proposal]:
        idx = np.flatnonzero(mask & EDIT_ACTIONS)
        out: list[Proposal] = []
        seen: set[str] = set()
        for a in self.rng.choice(idx, size=min(int(n), len(idx)), replace=False):
            child = view.child_of(int(a))
            if child is not None and child.hash not in seen:  # two edits, one child: once
                seen.add(child.hash)
                out.append(view.proposal(view.action_names[int(a)]))
        return out


class GreedyAgent(Agent):
    """Keep-or-revert hill climbing with a per-incumbent tabu list (:class:`Tabu`).

    Every record counts, whoever asked for it: an edit another agent ran and reverted on
    this incumbent is tabu too.
    """

    name = "greedy"

    def __init__(self, seed: int | None = None, batch_size: int = 1):
        super().__init__(seed, batch_size)
        self.tabu = Tabu()

    def reset(self, view: CampaignView) -> None:
        self.tabu.clear()

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        mask = view.action_masks()
        allowed = self.tabu.allowed(mask & EDIT_ACTIONS, view.action_names)
        # an external proposer (autoresearch's LLM) is one more idea per step; each call
        # proposes afresh, so it is never tabu
        allowed[PROPOSE] = bool(mask[PROPOSE])
        action = uniform(self.rng, allowed)
        if action is None:  # every idea failed on this incumbent: measure it again
            self.tabu.clear()
            return [view.proposal("reevaluate")]
        return [view.proposal(view.action_names[action])]

    def tell(self, records: Sequence[Record]) -> None:
        for record in records:
            self.tabu.update(record)


__all__ = ["GreedyAgent", "RandomAgent"]
