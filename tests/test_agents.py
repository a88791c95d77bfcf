"""Agents on the ask/tell protocol: masks are respected; greedy does not retry a failed edit;
``ask`` never returns more than it is asked for; every agent searches the task's whole edit
space (knobs sharing a role, categorical knobs)."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.actions import MAX_SLOTS, N_ACTIONS, PROPOSE, REEVALUATE, STOP
from rsi_rl.agents import Agent, CampaignView, GreedyAgent, RandomAgent, make_agent
from rsi_rl.agents.base import EDIT_ACTIONS, AgentError, Tabu
from rsi_rl.core.errors import ConfigError, UnknownAgentError
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_experiments, instant_runs, untrained_policy


@pytest.fixture(autouse=True)
def _instant():
    """Agent logic, not training, is tested here: every run is a made-up score (input_norm
    and more steps help), and no sandbox starts."""

    def score(cand) -> float:
        return 0.5 + 0.1 * ("input_norm" in cand.toggles) + 1e-4 * cand.config.get("steps", 0)

    with instant_experiments(score):
        yield


def _toy_env(budget: int, **kwargs) -> ResearchEnv:
    env = ResearchEnv(task=ToyTask(), budget=budget, instances=[1000], **kwargs)
    instant_runs(env, lambda c: 0.5 + 0.1 * (c.config["act"] == "gelu"))
    return env


class _Masked:
    """A view whose mask is fixed (for agents' choice rules)."""

    def __init__(self, env: ResearchEnv, mask: np.ndarray):
        self.view = CampaignView(env, np.zeros(1))
        self.mask = mask

    def __getattr__(self, name):
        return getattr(self.view, name)

    def action_masks(self) -> np.ndarray:
        return self.mask.copy()


@pytest.fixture
def toy():
    env = _toy_env(budget=10)
    obs, _ = env.reset(seed=0)
    yield env, CampaignView(env, obs)
    env.close()


def _kind(env: ResearchEnv, action: int) -> str:
    return env.action_names[action]


def test_edit_actions_are_the_slots():
    assert EDIT_ACTIONS.shape == (N_ACTIONS,) and EDIT_ACTIONS.sum() == MAX_SLOTS
    assert not EDIT_ACTIONS[[REEVALUATE, PROPOSE, STOP]].any()


def test_random_respects_mask_and_never_stops(toy):
    env, _ = toy
    mask = np.zeros(N_ACTIONS, dtype=bool)
    mask[[7, STOP]] = True
    view = _Masked(env, mask)
    agent = RandomAgent(seed=0)
    for _ in range(20):
        (p,) = agent.ask(view, 1)
        assert p.kind == _kind(env, 7) and p.candidate == env.child_of(7)
    mask[7] = False  # only stop is valid: the agent stops
    assert agent.ask(view, 1) == []


def test_greedy_tabu_until_kept(toy):
    env, _ = toy
    a, b = 0, 4
    mask = np.zeros(N_ACTIONS, dtype=bool)
    mask[[a, b, REEVALUATE, STOP]] = True
    view = _Masked(env, mask)
    agent = GreedyAgent(seed=0)
    agent.reset(view)
    (first,) = agent.ask(view, 1)
    agent.tell([{"kind": first.kind, "kept": False}])
    (second,) = agent.ask(view, 1)
    assert {first.kind, second.kind} == {_kind(env, a), _kind(env, b)}
    agent.tell([{"kind": second.kind, "kept": False}])
    assert agent.ask(view, 1)[0].kind == "reevaluate"
    agent.tell([{"kind": "tpe", "kept": True}])  # anyone's keep: a new incumbent
    assert agent.ask(view, 1)[0].kind in (_kind(env, a), _kind(env, b))


def test_greedy_counts_the_edits_another_agent_ran(toy):
    env, view = toy
    agent = GreedyAgent(seed=0)
    agent.reset(view)
    valid = [n for i, n in enumerate(env.action_names[:MAX_SLOTS]) if env.action_masks()[i]]
    agent.tell([{"kind": n, "kept": False} for n in valid[1:]])
    assert [p.kind for p in agent.ask(view, 1)] == valid[:1]


def test_greedy_treats_the_proposer_as_an_idea_never_tabu(toy):
    env, _ = toy
    mask = np.zeros(N_ACTIONS, dtype=bool)
    mask[[PROPOSE, REEVALUATE]] = True
    view = _Masked(env, mask)
    agent = GreedyAgent(seed=0)
    agent.reset(view)
    for _ in range(3):  # each call proposes afresh: a reverted proposal is no repeat
        (p,) = agent.ask(view, 1)
        assert p.kind == "propose"
        agent.tell([{"kind": "propose", "kept": False}])


def test_tabu_masks_edit_slots_only():
    tabu = Tabu()
    names = ("lr_up", "lr_down") + ("",) * (MAX_SLOTS - 2) + ("reevaluate", "propose", "stop")
    tabu.update({"kind": "lr_up", "kept": False})
    tabu.update({"kind": "reevaluate", "kept": False})
    tabu.update({"kind": "tpe", "kept": False}, edit="lr_down")  # a candidate as its edit
    out = tabu.allowed(np.ones(N_ACTIONS, dtype=bool), names)
    assert not out[0] and not out[1] and out[REEVALUATE] and out[PROPOSE]
    tabu.update({"kind": "tpe", "kept": True})
    assert tabu.allowed(np.ones(N_ACTIONS, dtype=bool), names).all()


def test_make_agent_lists_known_names():
    assert make_agent("greedy", seed=1).name == "greedy"
    with pytest.raises(UnknownAgentError, match="known agents: .*greedy.*random.*sequence"):
        make_agent("clever")


def test_batch_size_needs_an_agent_that_batches():
    class Single(Agent):
        name = "single"

        def ask(self, view, n):
            return [view.proposal("reevaluate")]

    with pytest.raises(ConfigError, match="agent single proposes one experiment at a time"):
        Single(batch_size=2)


@pytest.mark.parametrize("name", ["random", "greedy"])
def test_agents_run_a_campaign(name, tmp_path):
    env = ResearchEnv(task="tabular", budget=4, instances=[10_002], run_dir=tmp_path)
    try:
        summary = run_campaign(env, make_agent(name, seed=0), seed=0)
    finally:
        env.close()
    assert summary["experiments"] == 4 and summary["agent"] == name
    kept = [r for r in env.log if r.get("kept") and r.get("split") == "val"]
    assert summary["best_metric"] == kept[-1]["metric"]  # the last kept candidate's score
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


def test_random_batch_proposes_distinct_edits_by_name(toy):
    env, view = toy
    batch = RandomAgent(seed=0, batch_size=5).ask(view, 5)
    assert len(batch) == 5 and len({p.candidate.hash for p in batch}) == 5
    for p in batch:
        assert p.kind in env.space.index and p.description and p.refused is None
        assert p.candidate.hash == env.child_of(env.action_index(p.kind)).hash
    summary = run_campaign(env, RandomAgent(seed=1, batch_size=3), seed=0, test=False)
    assert summary["experiments"] == 10
    assert all(r["kind"] in env.space.index for r in env.log[1:])


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return untrained_policy(tmp_path_factory.mktemp("policy") / "policy.zip")


def _every_agent(policy) -> list[Agent]:
    from rsi_rl.agents import SequenceAgent

    return [
        make_agent("random", seed=0),
        make_agent("random", seed=0, batch_size=4),
        make_agent("greedy", seed=0),
        make_agent("tpe", seed=0, batch_size=3),
        make_agent("random_search", seed=0, batch_size=4),
        make_agent("policy", seed=0, path=str(policy)),
        make_agent("policy", seed=0, path=str(policy), bundle=3),
        SequenceAgent(
            [(make_agent("random", batch_size=4), 3), (make_agent("tpe", batch_size=2), None)],
            seed=0,
        ),
    ]


def test_ask_never_exceeds_n_or_the_budget(policy):
    """Each agent returns at most n proposals for every n the loop asks with, and its
    campaign spends exactly the budget, however the batches fall."""
    for agent in _every_agent(policy):
        env = _toy_env(budget=7)
        try:
            calls: list[tuple[int, int, int]] = []
            ask = agent.ask

            def counted(view, n, ask=ask, calls=calls):
                out = ask(view, n)
                calls.append((n, len(out), view.experiments_left))
                return out

            agent.ask = counted  # type: ignore[method-assign]
            summary = run_campaign(env, agent, seed=0, test=False)
        finally:
            env.close()
        assert summary["experiments"] == 7, agent.name
        assert all(1 <= n <= agent.batch_size and got <= n <= left for n, got, left in calls)
        assert sum(got for _, got, _ in calls) == 7


def test_an_agent_that_returns_too_many_proposals_fails_in_one_line():
    class Eager(Agent):
        name = "eager"

        def ask(self, view, n):
            return [view.proposal("reevaluate")] * (n + 1)

    env = _toy_env(budget=3)
    try:
        with pytest.raises(AgentError, match="eager returned 2 proposals when asked for at most 1"):
            run_campaign(env, Eager(), seed=0, test=False)
    finally:
        env.close()


def test_an_agent_that_returns_nothing_ends_the_campaign():
    class Twice(Agent):
        name = "twice"

        def reset(self, view):
            self.left = 2

        def ask(self, view, n):
            self.left -= 1
            return [view.proposal("reevaluate")] if self.left >= 0 else []

    env = _toy_env(budget=5)
    try:
        summary = run_campaign(env, Twice(), seed=0, test=False)
    finally:
        env.close()
    assert summary["experiments"] == 2 and summary["agent"] == "twice"
