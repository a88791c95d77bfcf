"""Baseline agents a researcher would otherwise use.

* :class:`RandomAgent`: a uniformly random valid edit each step (no memory).
* :class:`GreedyAgent`: autoresearch's loop. Propose an edit to the incumbent, keep it if
  it beats the incumbent (the env decides, noise-aware), otherwise revert; never propose
  an edit that already failed on the current incumbent, so the budget is not spent twice
  on the same idea. When every edit has failed on the incumbent, rerun it on a new seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rsi_rl.agents.base import EDIT_ACTIONS, Agent
from rsi_rl.vocab import KIND_INDEX


class RandomAgent(Agent):
    """Uniform over valid edits and ``reevaluate``; never stops early."""

    name = "random"

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        allowed = mask.copy()
        allowed[KIND_INDEX["stop"]] = False
        return self._uniform(allowed)


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
        if not allowed.any():
            self.tried.clear()
            return KIND_INDEX["reevaluate"]
        return self._uniform(allowed)

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        if info.get("experiment", {}).get("kept"):
            self.tried.clear()
        else:
            self.tried.add(int(action))
