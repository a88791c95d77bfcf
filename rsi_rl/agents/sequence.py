"""Agents in turn: one agent for the first experiments, another for the next, ...

:class:`SequenceAgent` runs a list of stages, each an agent and a number of experiments.
The agent of the current stage is asked until its stage has that many experiments (a
stage whose agent returns no proposal ends early); every agent is told every record, so a
later agent starts from all that the earlier ones ran. The shipped ``policy_tpe`` preset
is a sequence: the learned policy for 10 experiments, then Optuna TPE told all of them,
the policy as TPE's initial design (meta-learned initialisation of Bayesian optimisation,
Feurer et al., AAAI 2015)::

    # conf/agent/policy_tpe.yaml
    _target_: rsi_rl.agents.SequenceAgent
    name: policy_tpe
    stages:
      - agent: {_target_: rsi_rl.agents.PolicyAgent, path: policies/research_policy.zip}
        experiments: 10
      - agent: {_target_: rsi_rl.agents.TPEAgent}
        experiments: null          # the rest of the budget
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rsi_rl.agents.base import Agent, Record, ask
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.core.errors import ConfigError


class SequenceAgent(Agent):
    """Stages of agents, each for a number of experiments.

    Args:
        stages: ``(agent, experiments)`` pairs, or mappings with keys ``agent`` and
            ``experiments`` (Hydra configs); ``experiments`` None = the rest of the budget
            (the last stage only). An agent built without a seed takes the sequence's.
        name: the label of the sequence (progress lines, summaries, bench tables).
        seed: the campaign's seed.

    Example:
        >>> SequenceAgent([(PolicyAgent("p.zip"), 10), (TPEAgent(), None)])  # doctest: +SKIP
    """

    name = "sequence"

    def __init__(
        self,
        stages: Sequence[Any],
        name: str | None = None,
        seed: int | None = None,
    ):
        super().__init__(seed)
        if name is not None:
            self.name = str(name)
        self.stages = [_stage(i, s) for i, s in enumerate(stages)]
        if not self.stages:
            raise ConfigError("agent.stages is empty; give a list of {agent, experiments}")
        for i, (_, quota) in enumerate(self.stages[:-1]):
            if quota is None:
                raise ConfigError(
                    f"agent.stages.{i}.experiments is null (the rest of the budget), but "
                    "stages follow it; give it a number of experiments"
                )
        for agent, _ in self.stages:
            if agent.seed is None:
                agent.reseed(seed)
        self.batch_size = max(agent.batch_size for agent, _ in self.stages)
        self._stage = 0
        self._used = [0] * len(self.stages)
        self._asker: int | None = None

    @property
    def agents(self) -> list[Agent]:
        return [agent for agent, _ in self.stages]

    @property
    def stage(self) -> int:
        """The index of the stage that asks next."""
        return self._stage

    def reset(self, view: CampaignView) -> None:
        self._stage = 0
        self._used = [0] * len(self.stages)
        self._asker = None
        for agent in self.agents:
            agent.reset(view)

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        while self._stage < len(self.stages):
            agent, quota = self.stages[self._stage]
            left = n if quota is None else quota - self._used[self._stage]
            if left > 0:
                proposals = ask(agent, view, min(n, agent.batch_size, left))
                if proposals:
                    self._asker = self._stage
                    return proposals
            self._stage += 1  # the quota is spent, or the agent stopped: the next stage
        return []

    def tell(self, records: Sequence[Record]) -> None:
        if self._asker is not None:
            self._used[self._asker] += len(records)
            self._asker = None
        for agent in self.agents:
            agent.tell(records)


def _stage(i: int, stage: Any) -> tuple[Agent, int | None]:
    """``(agent, experiments)`` of one stage, checked."""
    if isinstance(stage, Mapping):
        unknown = set(map(str, stage)) - {"agent", "experiments"}
        if unknown or "agent" not in stage:
            raise ConfigError(
                f"agent.stages.{i} must have the keys agent and experiments, got "
                f"{', '.join(sorted(map(str, stage)))}"
            )
        agent, quota = stage["agent"], stage.get("experiments")
    else:
        agent, quota = stage
    if not isinstance(agent, Agent):
        raise ConfigError(
            f"agent.stages.{i}.agent is a {type(agent).__name__}, not an rsi_rl agent; give "
            "it a _target_ such as rsi_rl.agents.TPEAgent"
        )
    if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota < 0):
        raise ConfigError(
            f"agent.stages.{i}.experiments must be a number of experiments >= 0 or null, "
            f"got {quota!r}"
        )
    return agent, quota


__all__ = ["SequenceAgent"]
