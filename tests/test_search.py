"""The campaign loop: a batch's experiments are told to the agent as the actions of their
edits (or -1 for a whole candidate), in order."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rsi_rl.agents.base import Agent
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs


class _BatchRecorder(Agent):
    """Proposes two edits by name and one whole candidate labelled ``tpe`` per batch."""

    name = "recorder"
    supports_batch: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__(seed=0, batch_size=3)
        self.observed: list[tuple[int, str]] = []

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        raise AssertionError("the recorder only proposes batches")

    def propose_batch(self, env: Any, n: int) -> list[tuple[Any, str, str]]:
        edits = [e.name for e in env.space.edits if env.action_masks()[env.action_index(e.name)]]
        out = [(*env.space.apply(env.incumbent, name), name) for name in edits[:2]]
        whole = env.space.apply(out[0][0], edits[-1])[0]
        return [*out, (whole, "two edits at once", "tpe")][:n]

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        self.observed.append((action, info["experiment"]["kind"]))


def test_a_batch_is_told_as_edit_actions_and_minus_one_for_whole_candidates():
    env = ResearchEnv(task=ToyTask(), budget=6, instances=[1000])
    instant_runs(env, lambda c: 0.5 + 0.1 * (c.config["act"] != "relu"))
    agent = _BatchRecorder()
    try:
        summary = run_campaign(env, agent, seed=0, test=False)
    finally:
        env.close()
    assert summary["experiments"] == 6 and len(agent.observed) == 6
    for action, kind in agent.observed:
        if kind == "tpe":
            assert action == -1
        else:
            assert action == env.action_index(kind) and env.action_names[action] == kind
    assert [k for _, k in agent.observed].count("tpe") == 2
