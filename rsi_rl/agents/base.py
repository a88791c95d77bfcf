"""The agent interface: anything that picks edits, from a baseline to an SB3 policy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from rsi_rl.actions import MAX_SLOTS, N_ACTIONS, REEVALUATE, STOP
from rsi_rl.errors import ConfigError

#: actions that edit the incumbent: the edit slots (not the meta-actions)
EDIT_ACTIONS = np.arange(N_ACTIONS) < MAX_SLOTS


class Agent(ABC):
    """Picks one action per step: an edit slot or a meta-action (:mod:`rsi_rl.actions`).

    Subclasses implement :meth:`_act`; :meth:`act` checks the mask first. Agents see what a
    policy sees: the observation, the action mask and the step's ``info``; never the env.

    Args:
        seed: seed of the agent's own randomness.
        batch_size: experiments proposed at once (:meth:`propose_batch`), for agents that
            declare ``supports_batch``; 1 = one action per step.
    """

    #: the agent's label in progress lines, the ledger's ``kind`` of its proposals, summaries
    #: and bench tables: its ``conf/agent/<name>.yaml`` preset; an instance may refine it
    #: from its settings (``policy_tpe`` with ``bundle`` > 1 is ``policy_bundle_tpe``)
    name: str = ""
    #: can propose several experiments at once (:meth:`propose_batch`, ``batch_size`` > 1)
    supports_batch: ClassVar[bool] = False

    def __init__(self, seed: int | None = None, batch_size: int = 1):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"agent.batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > 1 and not self.supports_batch:
            raise ConfigError(
                f"agent {self.name or type(self).__name__} proposes one experiment at a time; "
                "batch_size > 1 needs an agent that batches (random, tpe)"
            )
        self.batch_size = batch_size

    def reset(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        """Start of a campaign (after the baseline ran)."""

    def act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        """The next action; ``mask[i]`` is True where action ``i`` is valid."""
        if not np.any(mask):
            return STOP
        return int(self._act(obs, np.asarray(mask, dtype=bool), info))

    @abstractmethod
    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int: ...

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        """Outcome of the last action (for agents that learn within a campaign)."""

    def propose_batch(self, env: Any, n: int) -> list[tuple[Any, str, str]]:
        """Up to ``n`` candidates to train at once, as (candidate, description, kind).

        :func:`rsi_rl.search.run_campaign` runs them through
        :meth:`rsi_rl.env.ResearchEnv.try_candidates` and calls :meth:`observe` once per
        recorded experiment, in order. An empty list means "take one ordinary step".
        """
        raise NotImplementedError(f"{type(self).__name__} does not propose batches")

    def _uniform(self, allowed: np.ndarray) -> int:
        idx = np.flatnonzero(allowed)
        if len(idx) == 0:
            return REEVALUATE
        return int(self.rng.choice(idx))


class CandidateAgent(Agent):
    """An agent that proposes whole candidates rather than edits (e.g. Optuna TPE).

    :func:`rsi_rl.search.run_campaign` runs each proposal through
    :meth:`rsi_rl.env.ResearchEnv.try_candidate`: one experiment, charged to the same
    budget, kept or reverted under the same noise-aware rule as an edit.
    """

    @abstractmethod
    def propose(self, env: Any) -> tuple[Any, str]:
        """The next candidate to train and a one-line description of it."""

    def proposes(self, env: Any) -> bool:
        """Whether the next experiment is a whole candidate (:meth:`propose`); False takes
        an ordinary edit step through :meth:`act` (an agent that mixes the two)."""
        return True

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        raise NotImplementedError(
            f"{type(self).__name__} proposes whole candidates; drive it with "
            "rsi_rl.search.run_campaign (env.try_candidate), not env.step"
        )
