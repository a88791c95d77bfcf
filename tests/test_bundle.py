"""policy_bundle: a policy's best few edits, applied together as one experiment. The
policy is an untrained one of today's layout: these tests check the bundling rules."""

from __future__ import annotations

import pytest

from rsi_rl.agents import PolicyBundleAgent, make_agent
from rsi_rl.agents.bundle import edit_group
from rsi_rl.edits import apply_edit
from rsi_rl.env import ResearchEnv
from rsi_rl.errors import ConfigError
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs, untrained_policy


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return untrained_policy(tmp_path_factory.mktemp("policy") / "policy.zip")


def test_edit_group_is_the_knob_or_the_patch(tabular):
    space = tabular.edit_space()
    assert edit_group(space, "lr_up") == edit_group(space, "lr_hi") == "lr"
    assert edit_group(space, "batch_size_down") == "batch_size"
    assert edit_group(space, "input_norm") == "input_norm"
    toy = ToyTask().edit_space()
    assert edit_group(toy, "act:gelu") == edit_group(toy, "act:tanh") == "act"
    assert edit_group(toy, "head_lr_max") == "head_lr" != edit_group(toy, "lr_max")


def test_bundle_is_the_policys_best_edits_one_per_knob(tabular, policy):
    env = ResearchEnv(task=tabular, budget=3, instances=[10_000])
    try:
        agent = PolicyBundleAgent(path=policy, bundle=3, seed=0)
        obs, info = env.reset(seed=0, options={"instance": 10_000})
        agent.reset(obs, info)
        ranked = agent.ranked_edits(env)
        child, description = agent.propose(env)
        picked = description.removeprefix("policy bundle: ").split(" + ")
        assert len(picked) == 3 and len({edit_group(env.space, k) for k in picked}) == 3
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


def test_a_reverted_bundle_makes_its_best_edit_tabu(tabular, policy):
    env = ResearchEnv(task=tabular, budget=20, instances=[10_000])
    try:
        agent = make_agent("policy_bundle", path=str(policy), bundle=2, seed=0)
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


def test_bad_bundle_size(policy):
    with pytest.raises(ConfigError, match="bundle must be a positive number"):
        PolicyBundleAgent(path=policy, bundle=0)


def test_bundle_sets_one_option_per_categorical_knob(policy):
    """On a task with two learning-rate knobs and categorical knobs, a bundle changes each
    knob at most once (two settings of ``act`` would overwrite each other), and both
    learning-rate knobs can be in one bundle."""
    env = ResearchEnv(task=ToyTask(), budget=8, instances=[1000])
    instant_runs(env, lambda c: 0.5)
    try:
        agent = PolicyBundleAgent(path=policy, bundle=26, seed=0)  # as many as the edits
        obs, info = env.reset(seed=0)
        agent.reset(obs, info)
        child, description = agent.propose(env)
        picked = description.removeprefix("policy bundle: ").split(" + ")
    finally:
        env.close()
    groups = [edit_group(env.space, k) for k in picked]
    assert len(groups) == len(set(groups))
    assert set(groups) == {"lr", "head_lr", "act", "mix", "width", "norm_layer"}
    start = env.log[0]["config"]
    assert sum(child.config[k] != start[k] for k in start) == 5
