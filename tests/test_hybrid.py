"""policy_tpe: a policy's edits first, then TPE told every one of them (and tpe_policy,
the reverse). The policy is an untrained one of today's layout: these tests check the
hand-over, not the policy's quality."""

from __future__ import annotations

import pytest

from rsi_rl.agents import PolicyTPEAgent, TPEPolicyAgent, make_agent
from rsi_rl.env import ResearchEnv
from rsi_rl.errors import ConfigError
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs, untrained_policy


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return untrained_policy(tmp_path_factory.mktemp("policy") / "policy.zip")


def _campaign(tabular, agent, budget):
    env = ResearchEnv(task=tabular, budget=budget, instances=[10_000])
    try:
        summary = run_campaign(env, agent, seed=0, test=False)
        kinds = [r["kind"] for r in env.log if r["split"] == "val" and r["kind"] != "baseline"]
        return summary, kinds, env
    finally:
        env.close()


def test_policy_then_tpe_told_every_experiment(tabular, policy):
    agent = make_agent("policy_tpe", path=str(policy), switch_after=3, seed=0)
    summary, kinds, env = _campaign(tabular, agent, budget=5)
    assert summary["experiments"] == 5
    assert all(k in env.space.index or k == "reevaluate" for k in kinds[:3])
    assert kinds[3:] == ["policy_tpe"] * 2
    trials = agent.tpe.study.trials
    # the start, the policy's edits (a rerun on a fresh seed tells TPE nothing), then TPE's 2
    edits = [r for r in env.log if r["split"] == "val" and r["kind"] in kinds[:3]]
    edits = [r for r in edits if r["kind"] in env.space.index][:3]
    assert len(trials) == 1 + len(edits) + 2
    assert [t.value for t in trials[1 : 1 + len(edits)]] == pytest.approx(
        [r["metric"] for r in edits]
    )
    # a told trial is the candidate the edit built: its params map back to the same config
    for trial, record in zip(trials[1:], edits, strict=False):
        cand, _ = agent.tpe.space.candidate(trial.params, "check")
        assert cand.config == record["config"]


def test_switch_after_zero_is_tpe_from_the_start(tabular, policy):
    agent = PolicyTPEAgent(path=policy, switch_after=0, seed=0)
    _, kinds, _ = _campaign(tabular, agent, budget=2)
    assert kinds == ["policy_tpe", "policy_tpe"]


def test_bad_switch_after(policy):
    with pytest.raises(ConfigError, match="switch_after"):
        PolicyTPEAgent(path=policy, switch_after=-1)


def test_bundle_phase_tells_tpe_each_bundle(tabular, policy):
    agent = make_agent("policy_tpe", path=str(policy), switch_after=2, bundle=3, seed=0)
    assert agent.bundler is not None and agent.bundler.policy is agent.policy  # one load
    summary, kinds, env = _campaign(tabular, agent, budget=4)
    assert summary["experiments"] == 4
    assert agent.name == "policy_bundle_tpe" and summary["agent"] == "policy_bundle_tpe"
    assert kinds == ["policy_bundle_tpe"] * 4  # its own label, not policy_tpe's
    recs = [r for r in env.log if r["split"] == "val" and r["kind"] != "baseline"]
    assert all(r["description"].startswith("policy bundle: ") for r in recs[:2])
    assert not any(r["description"].startswith("policy bundle") for r in recs[2:])
    trials = agent.tpe.study.trials
    assert len(trials) == 1 + 2 + 2  # the start, the two bundles, TPE's two
    for trial, record in zip(trials[1:3], recs[:2], strict=True):
        assert trial.value == pytest.approx(record["metric"])
        cand, _ = agent.tpe.space.candidate(trial.params, "check")
        assert cand.config == record["config"]


def test_bad_bundle_in_policy_tpe(policy):
    with pytest.raises(ConfigError, match="bundle"):
        PolicyTPEAgent(path=policy, bundle=0)


def test_tpe_then_policy_edits_from_tpes_incumbent(tabular, policy):
    agent = make_agent("tpe_policy", path=str(policy), switch_after=3, seed=0)
    summary, kinds, env = _campaign(tabular, agent, budget=6)
    assert summary["experiments"] == 6
    assert kinds[:3] == ["tpe_policy"] * 3
    assert all(k in env.space.index or k == "reevaluate" for k in kinds[3:])
    assert len(agent.tpe.study.trials) == 1 + 3  # the start and TPE's three; none after
    recs = [r for r in env.log if r["split"] == "val" and r["kind"] != "baseline"]
    # the first edit's parent is the incumbent TPE left
    base = next(r for r in env.log if r["kind"] == "baseline")
    kept = [r for r in [base, *recs[:3]] if r["kind"] == "baseline" or r["kept"]]
    assert recs[3]["parent"] == kept[-1]["candidate"]


def test_tpe_policy_bad_switch_after(policy):
    with pytest.raises(ConfigError, match="switch_after"):
        TPEPolicyAgent(path=policy, switch_after=-2)


def test_each_hybrid_preset_is_labelled_by_its_own_name(policy):
    """The agent's name (progress lines, summary, bench) is its conf/agent preset's."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from rsi_rl.cli import conf_dir

    for preset in ("policy_tpe", "policy_bundle_tpe", "tpe_policy"):
        cfg = OmegaConf.load(conf_dir() / "agent" / f"{preset}.yaml")
        assert instantiate(cfg, path=str(policy), seed=0).name == preset


def test_policy_tpe_tells_tpe_the_edits_of_any_knob(policy):
    """On a task with two learning-rate knobs and categorical knobs, every edit of the
    policy's phase is told to TPE as the candidate it built (categorical values included)."""
    env = ResearchEnv(task=ToyTask(), budget=10, instances=[1000])
    instant_runs(env, lambda c: 0.4 + 0.1 * (c.config["act"] == "tanh") + 0.01 * c.config["lr"])
    try:
        agent = make_agent("policy_tpe", path=str(policy), switch_after=6, seed=0)
        run_campaign(env, agent, seed=0, test=False)
    finally:
        env.close()
    recs = [r for r in env.log[1:7] if r["kind"] in env.space.index]
    assert recs
    trials = agent.tpe.study.trials
    assert len(trials) == 1 + len(recs) + 4
    for trial, record in zip(trials[1:], recs, strict=False):
        cand, _ = agent.tpe.space.candidate(trial.params, "check")
        assert cand.config == record["config"]
    assert {r["kind"] for r in env.log[7:]} == {"policy_tpe"}
