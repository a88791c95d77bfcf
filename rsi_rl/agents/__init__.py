"""Agents: baselines (random, greedy, TPE, random search, GP), learned policies and sequences
of them, all speaking one ask/tell protocol (:mod:`rsi_rl.agents.base`).

The classes are imported on first use (``rsi_rl.agents.TPEAgent`` imports
:mod:`rsi_rl.agents.tpe`), so that a campaign of a baseline never loads Optuna or SB3.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rsi_rl.core.errors import UnknownAgentError

if TYPE_CHECKING:
    from rsi_rl.agents.base import Agent
    from rsi_rl.agents.baselines import GreedyAgent, RandomAgent
    from rsi_rl.agents.opening import OpeningAgent
    from rsi_rl.agents.sb3 import PolicyAgent
    from rsi_rl.agents.sequence import SequenceAgent
    from rsi_rl.agents.tpe import GPAgent, RandomSearchAgent, TPEAgent
    from rsi_rl.agents.view import CampaignView

#: public class -> the module that defines it
_MODULES: dict[str, str] = {
    "Agent": "rsi_rl.agents.base",
    "CampaignView": "rsi_rl.agents.view",
    "GPAgent": "rsi_rl.agents.tpe",
    "GreedyAgent": "rsi_rl.agents.baselines",
    "AcquisitionAgent": "rsi_rl.agents.acquisition",
    "RandomAgent": "rsi_rl.agents.baselines",
    "OpeningAgent": "rsi_rl.agents.opening",
    "PolicyAgent": "rsi_rl.agents.sb3",
    "RandomSearchAgent": "rsi_rl.agents.tpe",
    "SequenceAgent": "rsi_rl.agents.sequence",
    "TPEAgent": "rsi_rl.agents.tpe",
}

#: agent name (``make_agent``, ``rsi-rl bench``) -> class
_NAMES: dict[str, str] = {
    "random": "RandomAgent",
    "greedy": "GreedyAgent",
    "tpe": "TPEAgent",
    "random_search": "RandomSearchAgent",
    "gp": "GPAgent",
    "policy": "PolicyAgent",
    "sequence": "SequenceAgent",
    "opening": "OpeningAgent",
    "acquisition": "AcquisitionAgent",
}


def __getattr__(name: str) -> Any:
    """Import an agent class on first access (PEP 562)."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


class _AgentTable(Mapping[str, "type[Agent]"]):
    """Agent name -> class; a class's module is imported when it is looked up."""

    def __getitem__(self, name: str) -> type[Agent]:
        cls: type[Agent] = __getattr__(_NAMES[name])
        return cls

    def __contains__(self, name: object) -> bool:
        return name in _NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)


#: agent name -> class (``name in AGENTS`` and ``sorted(AGENTS)`` import nothing)
AGENTS: Mapping[str, type[Agent]] = _AgentTable()


def make_agent(name: str, **kwargs: Any) -> Agent:
    """Build an agent by name; unknown names list the known ones."""
    if name not in _NAMES:
        raise UnknownAgentError(
            f"unknown agent {name!r}; known agents: {', '.join(sorted(_NAMES))}"
        )
    return AGENTS[name](**kwargs)


__all__ = [
    "AGENTS",
    "AcquisitionAgent",
    "Agent",
    "CampaignView",
    "GPAgent",
    "GreedyAgent",
    "OpeningAgent",
    "PolicyAgent",
    "RandomAgent",
    "RandomSearchAgent",
    "SequenceAgent",
    "TPEAgent",
    "make_agent",
]
