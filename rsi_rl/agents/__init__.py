"""Agents: baselines (random, greedy) and, through the same interface, learned policies."""

from __future__ import annotations

from typing import Any

from rsi_rl.agents.base import Agent
from rsi_rl.agents.baselines import GreedyAgent, RandomAgent
from rsi_rl.agents.bundle import PolicyBundleAgent
from rsi_rl.agents.hybrid import PolicyTPEAgent, TPEPolicyAgent
from rsi_rl.agents.sb3 import PolicyAgent
from rsi_rl.agents.tpe import RandomSearchAgent, TPEAgent
from rsi_rl.errors import UnknownAgentError

AGENTS: dict[str, type[Agent]] = {
    "random": RandomAgent,
    "greedy": GreedyAgent,
    "tpe": TPEAgent,
    "random_search": RandomSearchAgent,
    "policy": PolicyAgent,
    "policy_tpe": PolicyTPEAgent,
    "policy_bundle": PolicyBundleAgent,
    "tpe_policy": TPEPolicyAgent,
}


def make_agent(name: str, **kwargs: Any) -> Agent:
    """Build an agent by name; unknown names list the known ones."""
    try:
        cls = AGENTS[name]
    except KeyError:
        raise UnknownAgentError(
            f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}"
        ) from None
    return cls(**kwargs)


__all__ = [
    "AGENTS",
    "Agent",
    "GreedyAgent",
    "PolicyAgent",
    "PolicyBundleAgent",
    "PolicyTPEAgent",
    "RandomAgent",
    "RandomSearchAgent",
    "TPEAgent",
    "TPEPolicyAgent",
    "make_agent",
]
