"""policy_tpe: the shipped policy's edits first, then TPE told every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsi_rl.agents import PolicyTPEAgent, make_agent
from rsi_rl.env import ResearchEnv
from rsi_rl.errors import ConfigError
from rsi_rl.search import run_campaign
from rsi_rl.vocab import META_KINDS, VOCABULARY

SHIPPED = Path(__file__).resolve().parents[1] / "policies" / "tabular_maskable_ppo.zip"


def _campaign(tabular, agent, budget):
    env = ResearchEnv(task=tabular, budget=budget, instances=[10_000])
    try:
        summary = run_campaign(env, agent, seed=0, test=False)
        kinds = [r["kind"] for r in env.log if r["split"] == "val" and r["kind"] != "baseline"]
        return summary, kinds, env
    finally:
        env.close()


def test_policy_then_tpe_told_every_experiment(tabular):
    agent = make_agent("policy_tpe", path=str(SHIPPED), switch_after=3, seed=0)
    summary, kinds, env = _campaign(tabular, agent, budget=5)
    assert summary["experiments"] == 5
    assert all(k in VOCABULARY for k in kinds[:3]) and kinds[3:] == ["policy_tpe"] * 2
    trials = agent.tpe.study.trials
    # the start, the policy's edits (a rerun on a fresh seed tells TPE nothing), then TPE's 2
    edits = [r for r in env.log if r["split"] == "val" and r["kind"] in kinds[:3]]
    edits = [r for r in edits if r["kind"] not in META_KINDS][:3]
    assert len(trials) == 1 + len(edits) + 2
    assert [t.value for t in trials[1 : 1 + len(edits)]] == pytest.approx(
        [r["metric"] for r in edits]
    )
    # a told trial is the candidate the edit built: its params map back to the same config
    for trial, record in zip(trials[1:], edits, strict=False):
        cand, _ = agent.tpe.space.candidate(trial.params, "check")
        assert cand.config == record["config"]


def test_switch_after_zero_is_tpe_from_the_start(tabular):
    agent = PolicyTPEAgent(path=SHIPPED, switch_after=0, seed=0)
    _, kinds, _ = _campaign(tabular, agent, budget=2)
    assert kinds == ["policy_tpe", "policy_tpe"]


def test_bad_switch_after():
    with pytest.raises(ConfigError, match="switch_after"):
        PolicyTPEAgent(path=SHIPPED, switch_after=-1)
