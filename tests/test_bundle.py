"""policy_bundle: the shipped policy's best few edits, applied together as one experiment."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsi_rl.agents import PolicyBundleAgent, make_agent
from rsi_rl.agents.bundle import edit_group
from rsi_rl.edits import apply_edit
from rsi_rl.env import ResearchEnv
from rsi_rl.errors import ConfigError
from rsi_rl.search import run_campaign

SHIPPED = Path(__file__).resolve().parents[1] / "policies" / "tabular_maskable_ppo.zip"


def test_edit_group_is_the_knob_or_the_patch():
    assert edit_group("lr_up") == edit_group("lr_hi") == edit_group("lr_max") == "lr"
    assert edit_group("batch_down") == "batch"
    assert edit_group("input_norm") == "input_norm"
    assert edit_group("weight_ema") == "weight_ema"


def test_bundle_is_the_policys_best_edits_one_per_knob(tabular):
    env = ResearchEnv(task=tabular, budget=3, instances=[10_000])
    try:
        agent = PolicyBundleAgent(path=SHIPPED, bundle=3, seed=0)
        obs, info = env.reset(seed=0, options={"instance": 10_000})
        agent.reset(obs, info)
        ranked = agent.ranked_kinds(env)
        child, description = agent.propose(env)
        picked = description.removeprefix("policy bundle: ").split(" + ")
        assert len(picked) == 3 and len({edit_group(k) for k in picked}) == 3
        # the first pick is the policy's own choice; the others follow in score order
        assert picked[0] == ranked[0]
        assert [ranked.index(k) for k in picked] == sorted(ranked.index(k) for k in picked)
        # the candidate is the incumbent with exactly those edits applied in order
        cand = env.incumbent
        for kind in picked:
            cand, _ = apply_edit(tabular, cand, kind)
        assert cand.hash == child.hash
    finally:
        env.close()


def test_a_reverted_bundle_makes_its_best_edit_tabu(tabular):
    env = ResearchEnv(task=tabular, budget=20, instances=[10_000])
    try:
        agent = make_agent("policy_bundle", path=str(SHIPPED), bundle=2, seed=0)
        summary = run_campaign(env, agent, seed=0, test=False)
        recs = [r for r in env.log if r["split"] == "val" and r["kind"] != "baseline"]
        assert summary["experiments"] == 20 and all(r["kind"] == "policy_bundle" for r in recs)
        picks = [r["description"].removeprefix("policy bundle: ").split(" + ") for r in recs]
        tabu: set[str] = set()
        for rec, pick in zip(recs, picks, strict=True):
            assert not tabu & set(pick)  # no edit tabu since the last keep is in the bundle
            tabu = set() if rec["kept"] else tabu | {pick[0]}
        assert sum(not r["kept"] for r in recs) > 0  # the rule was exercised
        assert summary["best_metric"] >= summary["start_metric"]
    finally:
        env.close()


def test_bad_bundle_size():
    with pytest.raises(ConfigError, match="bundle must be a positive number"):
        PolicyBundleAgent(path=SHIPPED, bundle=0)
