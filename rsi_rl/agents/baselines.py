"""Baseline agents a researcher would otherwise use.

* :class:`RandomAgent`: a uniformly random valid edit each step (no memory).
* :class:`GreedyAgent`: autoresearch's loop. Propose an edit to the incumbent, keep it if
  it beats the incumbent (the env decides, noise-aware), otherwise revert; never propose
  an edit that already failed on the current incumbent, so the budget is not spent twice
  on the same idea. When every edit has failed on the incumbent, rerun it on a new seed.
  With an external proposer configured, ``propose`` is one of the ideas (never tabu).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rsi_rl.actions import PROPOSE, REEVALUATE, STOP
from rsi_rl.agents.base import EDIT_ACTIONS, Agent


class RandomAgent(Agent):
    """Uniform over valid edits and ``reevaluate``; never stops early.

    With ``batch_size`` B > 1 it proposes B distinct valid edits of the incumbent at once
    (uniform without replacement; no ``reevaluate`` or ``propose`` in a batch), trained
    together by the env's executor; when no edit is valid it takes one ordinary step.
    """

    name = "random"
    supports_batch = True

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        allowed = mask.copy()
        allowed[STOP] = False
        return self._uniform(allowed)

    def propose_batch(self, env: Any, n: int) -> list[tuple[Any, str, str]]:
        idx = np.flatnonzero(env.action_masks() & EDIT_ACTIONS)
        out, seen = [], set()
        for a in self.rng.choice(idx, size=min(int(n), len(idx)), replace=False):
            name = env.action_names[int(a)]
            child, description = env.space.apply(env.incumbent, name)
            if child.hash not in seen:  # two edits that build the same child: train it once
                seen.add(child.hash)
                out.append((child, description, name))
        return out


class GreedyAgent(Agent):
    """Keep-or-revert hill climbing with a per-incumbent tabu list."""

    name = "greedy"

    def reset(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        self.tried: set[int] = set()

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        if not hasattr(self, "tried"):
            self.tried = set()
        allowed = mask & EDIT_ACTIONS
        for a in self.tried:
            allowed[a] = False
        # an external proposer (autoresearch's LLM) is one more idea per step; each call
        # proposes afresh, so it is never tabu
        allowed[PROPOSE] = bool(mask[PROPOSE])
        if not allowed.any():
            self.tried.clear()
            return REEVALUATE
        return self._uniform(allowed)

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        if info.get("experiment", {}).get("kept"):
            self.tried.clear()
        else:
            self.tried.add(int(action))
