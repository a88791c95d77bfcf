"""SequenceAgent: stages of agents, each for its number of experiments, every agent told
every record; the ``policy_tpe`` and ``sequence`` presets are sequences. Policies here are
untrained ones of today's layout: these tests check the hand-over, not a policy's quality."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rsi_rl.agents import Agent, GreedyAgent, RandomAgent, SequenceAgent, TPEAgent, make_agent
from rsi_rl.confpaths import conf_dir
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.task import Knob
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs, untrained_policy


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return untrained_policy(tmp_path_factory.mktemp("policy") / "policy.zip")


def _toy_env(budget: int, task=None) -> ResearchEnv:
    env = ResearchEnv(task=task or ToyTask(), budget=budget, instances=[1000])
    instant_runs(env, lambda c: 0.4 + 0.1 * (c.config["act"] == "tanh") + 0.01 * c.config["lr"])
    return env


def _recording(agent: Agent) -> list[list[str]]:
    """Wrap ``agent``'s ask and tell; returns the list of (asked kinds | told kinds)."""
    log: list[list[str]] = []
    ask, tell = agent.ask, agent.tell

    def asked(view, n):
        out = ask(view, n)
        log.append(["ask", *(p.kind for p in out)])
        return out

    def told(records):
        log.append(["tell", *(r["candidate"] for r in records)])
        tell(records)

    agent.ask, agent.tell = asked, told  # type: ignore[method-assign]
    return log


def test_hands_over_after_n_and_tells_every_agent_every_record():
    first, second = RandomAgent(batch_size=2), GreedyAgent()
    log1, log2 = _recording(first), _recording(second)
    agent = SequenceAgent([(first, 3), (second, None)], seed=0)
    assert agent.batch_size == 2 and first.seed == second.seed == 0  # the sequence's seed
    env = _toy_env(budget=8)
    try:
        summary = run_campaign(env, agent, seed=0, test=False)
    finally:
        env.close()
    assert summary["experiments"] == 8 and summary["agent"] == "sequence"
    # the first stage asks for 2, then 1 (its quota), never more
    assert [len(e) - 1 for e in log1 if e[0] == "ask"] == [2, 1]
    assert sum(e[0] == "ask" for e in log2) == 5
    every = [r["candidate"] for r in env.log[1:]]
    for log in (log1, log2):  # each agent was told all eight, in order
        assert [c for e in log if e[0] == "tell" for c in e[1:]] == every


def test_a_stage_that_stops_hands_over_early():
    class Once(Agent):
        name = "once"

        def reset(self, view):
            self.done = False

        def ask(self, view, n):
            if self.done:
                return []
            self.done = True
            return [view.proposal("reevaluate")]

    agent = SequenceAgent([(Once(), 5), (Once(), 5)], seed=0)
    env = _toy_env(budget=10)
    try:
        summary = run_campaign(env, agent, seed=0, test=False)
    finally:
        env.close()
    assert summary["experiments"] == 2 and agent.stage == 2


def _tiny_task() -> ToyTask:
    """ToyTask with one categorical knob and the patch: six candidates in all."""

    class Tiny(ToyTask):
        knobs = (Knob("act", "activation", "categorical", choices=("relu", "tanh", "gelu")),)

    return Tiny()


@pytest.mark.parametrize("first", ["greedy", "policy"])
def test_tpe_told_another_agents_records_does_not_repropose_them(first, policy):
    """Six candidates; the start and three experiments of another agent, then two TPE
    trials: TPE must find candidates nobody ran, which it can only do if it was told them."""
    lead = (
        make_agent("greedy")
        if first == "greedy"  # random weights: sampled, so it edits rather than only reruns
        else make_agent("policy", path=str(policy), deterministic=False, seed=0)
    )
    tpe = TPEAgent(n_startup_trials=2)
    agent = SequenceAgent([(lead, 3), (tpe, None)], seed=0)
    env = _toy_env(budget=5, task=_tiny_task())
    try:
        run_campaign(env, agent, seed=0, test=False)
        eval_seed = env.eval_seed
    finally:
        env.close()
    recs = [r for r in env.log if r["split"] == "val"]
    assert [r["kind"] for r in recs[4:]] == ["tpe", "tpe"]
    assert all(r["kind"] in env.space.index or r["kind"] == "reevaluate" for r in recs[1:4])
    told = [r for r in recs[1:4] if r["seed"] == eval_seed]  # not the reruns
    assert told and (first == "policy" or len(told) == 3)
    earlier = {r["candidate"] for r in recs[:4]}
    tpe_runs = [r["candidate"] for r in recs[4:]]
    assert len(set(tpe_runs)) == 2 and not earlier & set(tpe_runs)
    done = [t for t in tpe.study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 1 + len(told) + 2  # the start, the edits (told), TPE's two
    for trial, record in zip(done[1:], told, strict=False):
        assert trial.value == pytest.approx(record["metric"])
        cand, _ = tpe.space.candidate(trial.params, "check")
        assert cand.config == record["config"]


def _preset(name: str, policy) -> SequenceAgent:
    cfg = OmegaConf.load(conf_dir() / "agent" / f"{name}.yaml")
    cfg.stages[0].agent.path = str(policy)
    agent = instantiate(cfg, seed=0)
    assert isinstance(agent, SequenceAgent)
    return agent


@pytest.mark.parametrize("preset", ["policy_tpe", "sequence"])
def test_presets_are_sequences_labelled_by_their_name(preset, policy):
    """policy_tpe and sequence: the policy for 10 experiments, then TPE told all of them."""
    agent = _preset(preset, policy)
    assert agent.name == preset
    assert [type(a).__name__ for a in agent.agents] == ["PolicyAgent", "TPEAgent"]
    assert [q for _, q in agent.stages] == [10, None]
    assert all(a.seed == 0 for a in agent.agents)
    env = _toy_env(budget=12)
    try:
        summary = run_campaign(env, agent, seed=0, test=False)
    finally:
        env.close()
    kinds = [r["kind"] for r in env.log[1:]]
    assert summary["agent"] == preset and len(kinds) == 12
    assert all(k in env.space.index or k == "reevaluate" for k in kinds[:10])
    assert kinds[10:] == ["tpe", "tpe"]


def test_bad_stages_fail_in_one_line():
    with pytest.raises(ConfigError, match=r"agent.stages.0.experiments is null"):
        SequenceAgent([(RandomAgent(), None), (GreedyAgent(), 3)])
    with pytest.raises(ConfigError, match=r"agent.stages.1.agent is a str, not an rsi_rl agent"):
        SequenceAgent([{"agent": RandomAgent(), "experiments": 1}, {"agent": "tpe"}])
    with pytest.raises(ConfigError, match=r"agent.stages.0.experiments must be a number"):
        SequenceAgent([{"agent": RandomAgent(), "experiments": -1}])
    with pytest.raises(ConfigError, match=r"agent.stages.0 must have the keys agent and"):
        SequenceAgent([{"agent": RandomAgent(), "steps": 1}])
    with pytest.raises(ConfigError, match="agent.stages is empty"):
        SequenceAgent([])


def test_a_stage_agent_with_its_own_seed_keeps_it():
    agent = SequenceAgent([(TPEAgent(seed=5, seed_offset=1), None)], seed=0)
    assert agent.agents[0].seed == 5 and agent.agents[0].sampler_seed == 6
