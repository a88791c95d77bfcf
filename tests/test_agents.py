"""Baseline agents: masks are respected; greedy does not retry a failed edit."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.agents import GreedyAgent, RandomAgent, make_agent
from rsi_rl.errors import UnknownAgentError
from rsi_rl.vocab import KIND_INDEX, VOCABULARY


def test_random_respects_mask_and_never_stops():
    agent = RandomAgent(seed=0)
    mask = np.zeros(len(VOCABULARY), dtype=bool)
    mask[[KIND_INDEX["lr_up"], KIND_INDEX["stop"]]] = True
    for _ in range(20):
        assert agent.act(np.zeros(3), mask, {}) == KIND_INDEX["lr_up"]


def test_greedy_tabu_until_kept():
    agent = GreedyAgent(seed=0)
    agent.reset(np.zeros(3), {})
    mask = np.zeros(len(VOCABULARY), dtype=bool)
    a, b = KIND_INDEX["lr_up"], KIND_INDEX["width_up"]
    mask[[a, b, KIND_INDEX["reevaluate"], KIND_INDEX["stop"]]] = True
    first = agent.act(np.zeros(3), mask, {})
    agent.observe(first, 0.0, np.zeros(3), {"experiment": {"kept": False}})
    second = agent.act(np.zeros(3), mask, {})
    assert {first, second} == {a, b}
    agent.observe(second, 0.0, np.zeros(3), {"experiment": {"kept": False}})
    assert agent.act(np.zeros(3), mask, {}) == KIND_INDEX["reevaluate"]
    agent.observe(a, 0.1, np.zeros(3), {"experiment": {"kept": True}})
    assert agent.act(np.zeros(3), mask, {}) in (a, b)


def test_make_agent_lists_known_names():
    assert make_agent("greedy", seed=1).name == "greedy"
    with pytest.raises(UnknownAgentError, match="known agents: .*greedy.*random"):
        make_agent("clever")


@pytest.mark.parametrize("name", ["random", "greedy"])
def test_agents_run_a_campaign(name, tmp_path):
    from rsi_rl.env import ResearchEnv
    from rsi_rl.search import run_campaign

    env = ResearchEnv(task="tabular", budget=4, instances=[10_002], run_dir=tmp_path)
    try:
        summary = run_campaign(env, make_agent(name, seed=0), seed=0)
    finally:
        env.close()
    assert summary["experiments"] == 4 and summary["agent"] == name
    assert summary["best_metric"] >= summary["start_metric"]
    assert summary["test_metric"] is not None
