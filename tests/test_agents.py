"""Baseline agents: masks are respected; greedy does not retry a failed edit; every agent
searches the task's whole edit space (knobs sharing a role, categorical knobs)."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.actions import MAX_SLOTS, N_ACTIONS, PROPOSE, REEVALUATE, STOP
from rsi_rl.agents import GreedyAgent, RandomAgent, make_agent
from rsi_rl.agents.base import EDIT_ACTIONS
from rsi_rl.env import ResearchEnv
from rsi_rl.errors import UnknownAgentError
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs


def _toy_env(budget: int, **kwargs) -> ResearchEnv:
    env = ResearchEnv(task=ToyTask(), budget=budget, instances=[1000], **kwargs)
    instant_runs(env, lambda c: 0.5 + 0.1 * (c.config["act"] == "gelu"))
    return env


def test_edit_actions_are_the_slots():
    assert EDIT_ACTIONS.shape == (N_ACTIONS,) and EDIT_ACTIONS.sum() == MAX_SLOTS
    assert not EDIT_ACTIONS[[REEVALUATE, PROPOSE, STOP]].any()


def test_random_respects_mask_and_never_stops():
    agent = RandomAgent(seed=0)
    mask = np.zeros(N_ACTIONS, dtype=bool)
    mask[[7, STOP]] = True
    for _ in range(20):
        assert agent.act(np.zeros(3), mask, {}) == 7
    assert agent.act(np.zeros(3), np.zeros(N_ACTIONS, dtype=bool), {}) == STOP


def test_greedy_tabu_until_kept():
    agent = GreedyAgent(seed=0)
    agent.reset(np.zeros(3), {})
    mask = np.zeros(N_ACTIONS, dtype=bool)
    a, b = 0, 40
    mask[[a, b, REEVALUATE, STOP]] = True
    first = agent.act(np.zeros(3), mask, {})
    agent.observe(first, 0.0, np.zeros(3), {"experiment": {"kept": False}})
    second = agent.act(np.zeros(3), mask, {})
    assert {first, second} == {a, b}
    agent.observe(second, 0.0, np.zeros(3), {"experiment": {"kept": False}})
    assert agent.act(np.zeros(3), mask, {}) == REEVALUATE
    agent.observe(a, 0.1, np.zeros(3), {"experiment": {"kept": True}})
    assert agent.act(np.zeros(3), mask, {}) in (a, b)


def test_greedy_treats_the_proposer_as_an_idea_never_tabu():
    agent = GreedyAgent(seed=0)
    agent.reset(np.zeros(3), {})
    mask = np.zeros(N_ACTIONS, dtype=bool)
    mask[[PROPOSE, REEVALUATE]] = True
    for _ in range(3):  # each call proposes afresh: a reverted proposal is no repeat
        assert agent.act(np.zeros(3), mask, {}) == PROPOSE
        agent.observe(PROPOSE, 0.0, np.zeros(3), {"experiment": {"kept": False}})


def test_make_agent_lists_known_names():
    assert make_agent("greedy", seed=1).name == "greedy"
    with pytest.raises(UnknownAgentError, match="known agents: .*greedy.*random"):
        make_agent("clever")


@pytest.mark.parametrize("name", ["random", "greedy"])
def test_agents_run_a_campaign(name, tmp_path):
    env = ResearchEnv(task="tabular", budget=4, instances=[10_002], run_dir=tmp_path)
    try:
        summary = run_campaign(env, make_agent(name, seed=0), seed=0)
    finally:
        env.close()
    assert summary["experiments"] == 4 and summary["agent"] == name
    assert summary["best_metric"] >= summary["start_metric"]
    assert summary["test_metric"] is not None


@pytest.mark.parametrize("name", ["random", "greedy"])
def test_edit_agents_reach_every_kind_of_edit(name):
    """On a task with two learning-rate knobs and categorical knobs, a campaign's edits
    are the task's own edit names, and they touch both knobs of the role and a
    categorical setting."""
    env = _toy_env(budget=40)
    try:
        run_campaign(env, make_agent(name, seed=0), seed=0, test=False)
        kinds = {r["kind"] for r in env.log if r["kind"] not in ("baseline", "reevaluate")}
    finally:
        env.close()
    assert kinds and kinds <= set(env.space.index)
    targets = {env.space.get(k).target for k in kinds}
    assert {"lr", "head_lr"} <= targets
    assert any(env.space.get(k).op == "set" for k in kinds)


def test_random_batch_proposes_distinct_edits_by_name():
    env = _toy_env(budget=6)
    try:
        obs, info = env.reset(seed=0)
        agent = RandomAgent(seed=0, batch_size=5)
        batch = agent.propose_batch(env, 5)
        assert len(batch) == 5 and len({c.hash for c, _, _ in batch}) == 5
        for child, description, name in batch:
            assert name in env.space.index and description
            assert child.hash == env.child_of(env.action_index(name)).hash
        summary = run_campaign(env, RandomAgent(seed=1, batch_size=3), seed=0, test=False)
        assert summary["experiments"] == 6
        assert all(r["kind"] in env.space.index for r in env.log[1:])
    finally:
        env.close()
