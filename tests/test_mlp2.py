"""The mlp2 task: a space with several knobs per role and categorical knobs, written in
under 60 lines, that check-task passes and every agent searches as a whole."""

from __future__ import annotations

from pathlib import Path

import pytest

import rsi_rl
from rsi_rl.agents import make_agent
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import InnerTaskTestCase, instant_runs, untrained_policy

TASK_FILE = Path(rsi_rl.__file__).parent.parent / "envs" / "mlp2" / "task.py"


def test_written_in_under_60_lines():
    assert len(TASK_FILE.read_text().splitlines()) < 60


def test_edits_cover_every_knob_by_role():
    from rsi_rl.core.registry import make_task

    task = make_task("mlp2")
    roles = [k.role for k in task.knobs]
    assert roles.count("width") == 2 and roles.count("dropout") == 2
    assert roles.count("activation") == 2 and "schedule" in roles
    names = task.edit_names()
    assert {"act1:tanh", "act2:gelu", "schedule:cosine", "width2_up", "dropout1_hi"} <= set(names)


def _landscape(cand) -> float:
    """A made-up accuracy that every knob moves (so nothing is trivially kept forever)."""
    c = cand.config
    value = 0.5 + 0.05 * (c["act1"] == "tanh") + 0.05 * (c["act2"] == "gelu")
    value += 0.05 * (c["schedule"] == "cosine") + 0.001 * (c["width1"] + c["width2"]) / 64
    value -= 0.1 * (c["dropout1"] + c["dropout2"]) + 0.01 * abs(c["lr"] - 0.01)
    return value + 0.0001 * c["steps"] / 100


@pytest.mark.parametrize(
    ("agent", "kwargs", "budget"),
    [
        ("random", {}, 120),
        ("greedy", {}, 60),
        ("tpe", {"n_startup_trials": 5}, 40),
        ("random_search", {}, 40),
        ("policy", {}, 60),
    ],
)
def test_every_agent_searches_the_whole_space(agent, kwargs, budget, tmp_path):
    if agent == "policy":
        # random weights: sampled (not argmax), so the campaign is not one slot forever
        kwargs = {"path": str(untrained_policy(tmp_path / "policy.zip")), "deterministic": False}
    env = ResearchEnv(task="mlp2", budget=budget, instances=[10_001])
    try:
        instant_runs(env, _landscape)
        run_campaign(env, make_agent(agent, seed=0, **kwargs), seed=0, test=False)
        configs = [r["config"] for r in env.log if r.get("split") == "val"]
        for knob in env.task.knobs:
            seen = {c[knob.key] for c in configs}
            assert len(seen) > 1, f"{agent} never moved {knob.key}"
    finally:
        env.close()


@pytest.mark.slow
class TestMLP2(InnerTaskTestCase):
    task = "mlp2"
    config = {"steps": 25}
    seeds = (10_001,)
