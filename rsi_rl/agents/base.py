"""The agent protocol: ``reset``, ``ask``, ``tell``, from a baseline to an SB3 policy.

:func:`rsi_rl.search.run_campaign` runs every agent the same way::

    agent.reset(view)                       # the baseline ran; view: a CampaignView
    while experiments are left:
        proposals = agent.ask(view, n)      # at most n (batch_size, cut to the budget)
        if not proposals: stop              # the agent ends the campaign
        records = <run them>
        agent.tell(records)                 # one record per experiment run, in order

An agent never sees the env: it reads a :class:`~rsi_rl.agents.view.CampaignView` and
returns :class:`~rsi_rl.campaign.Proposal` s (an edit by name through
``view.proposal(name)``, or a whole candidate), and only the loop runs them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rsi_rl.actions import MAX_SLOTS, N_ACTIONS
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.core.errors import ConfigError, RsiRlError

#: actions that edit the incumbent: the edit slots (not the meta-actions)
EDIT_ACTIONS = np.arange(N_ACTIONS) < MAX_SLOTS

#: one experiment's record as agents are told it (:class:`rsi_rl.core.record.ExperimentRecord`
#: fields: ``kind``, ``status``, ``metric``, ``kept``, ``reward``, ``candidate``, ...)
Record = Mapping[str, Any]


class AgentError(RsiRlError):
    """An agent broke the protocol (e.g. more proposals than asked for)."""


class Agent(ABC):
    """Proposes experiments (:meth:`ask`) and learns from their records (:meth:`tell`).

    Args:
        seed: seed of the agent's own randomness (``self.rng``).
        batch_size: experiments asked for at once, for agents that declare
            ``supports_batch``; 1 = one experiment per ask.
    """

    #: the agent's label in progress lines, summaries and bench tables (its
    #: ``conf/agent/<name>.yaml`` preset), and the ``kind`` of its whole candidates
    name: str = ""
    #: can propose several experiments at once (``batch_size`` > 1)
    supports_batch: ClassVar[bool] = False

    def __init__(self, seed: int | None = None, batch_size: int = 1):
        self.reseed(seed)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"agent.batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > 1 and not self.supports_batch:
            raise ConfigError(
                f"agent {self.name or type(self).__name__} proposes one experiment at a time; "
                "batch_size > 1 needs an agent that batches (random, tpe, random_search)"
            )
        self.batch_size = batch_size

    def reseed(self, seed: int | None) -> None:
        """Set the seed (and ``self.rng``); a combinator passes its own to agents built
        without one."""
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, view: CampaignView) -> None:
        """A campaign starts (its baseline ran: ``view.log[0]``)."""

    @abstractmethod
    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        """At most ``n`` experiments to run next, in order; ``[]`` ends the campaign."""

    def tell(self, records: Sequence[Record]) -> None:
        """The records of the experiments just run, in order, whoever asked for them."""


def evaluated_candidate(record: Record, eval_seed: int) -> str | None:
    """The candidate hash of a record that a model of the campaign learns from: a run on
    the validation split and the campaign's evaluation seed; None for the others (a rerun
    on a fresh seed, a test run, a refused proposal)."""
    cand_hash = record.get("candidate")
    if record.get("split", "val") != "val" or cand_hash is None:
        return None
    if record.get("seed") != eval_seed:
        return None
    return str(cand_hash)


def ask(agent: Agent, view: CampaignView, n: int) -> list[Proposal]:
    """``agent.ask(view, n)``, checked: a list of at most ``n`` proposals.

    Raises:
        AgentError: the agent returned more than ``n`` or something else than proposals.
    """
    proposals = list(agent.ask(view, n))
    if len(proposals) > n:
        raise AgentError(
            f"agent {agent.name or type(agent).__name__} returned {len(proposals)} proposals "
            f"when asked for at most {n}; return at most n from ask()"
        )
    for p in proposals:
        if not isinstance(p, Proposal):
            raise AgentError(
                f"agent {agent.name or type(agent).__name__} returned {type(p).__name__}, not "
                "a rsi_rl.campaign.Proposal; build them with view.proposal(name) or Proposal(...)"
            )
    return proposals


class Tabu:
    """Edits that failed on the current incumbent, by name (greedy's tabu list).

    Retrying one would rebuild the same candidate on the same seed: a known result charged
    in full. A kept experiment (any agent's) clears the list; a reverted or failed one
    adds its edit. Only edit slots are ever masked: a rerun or an external proposal, which
    draw afresh, never are.
    """

    def __init__(self) -> None:
        self.names: set[str] = set()

    def clear(self) -> None:
        self.names.clear()

    def update(self, record: Record, edit: str | None = None) -> None:
        """Count ``record``; ``edit`` is the edit it stands for (default: its ``kind``)."""
        if record.get("kept"):
            self.names.clear()
        else:
            self.names.add(str(edit if edit is not None else record.get("kind", "")))

    def allowed(self, mask: np.ndarray, action_names: Sequence[str]) -> np.ndarray:
        """``mask`` (a copy) with the tabu edit slots masked."""
        out = np.asarray(mask, dtype=bool).copy()
        for i in range(MAX_SLOTS):
            if out[i] and action_names[i] in self.names:
                out[i] = False
        return out


def uniform(rng: np.random.Generator, allowed: np.ndarray) -> int | None:
    """A uniformly drawn index where ``allowed`` is True; None when none is."""
    idx = np.flatnonzero(allowed)
    return int(rng.choice(idx)) if len(idx) else None


__all__ = [
    "EDIT_ACTIONS",
    "Agent",
    "AgentError",
    "Record",
    "Tabu",
    "ask",
    "evaluated_candidate",
    "uniform",
]
