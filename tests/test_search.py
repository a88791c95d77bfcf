"""The campaign loop: ask, run, tell. A batch's records are told in order, each listener
sees each record once, and the view shows the observation after the batch."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.agents import Agent, CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs


class _BatchRecorder(Agent):
    """Asks for two edits by name and one whole candidate labelled ``tpe`` per batch."""

    name = "recorder"
    supports_batch = True

    def __init__(self) -> None:
        super().__init__(seed=0, batch_size=3)
        self.asked: list[list[Proposal]] = []
        self.told: list[list[dict]] = []
        self.observations: list[np.ndarray] = []

    def reset(self, view: CampaignView) -> None:
        self.observations.append(view.observation())

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        if self.told:  # the view shows the state after the last batch
            assert view.log[-1]["candidate"] == self.told[-1][-1]["candidate"]
            self.observations.append(view.observation())
        mask = view.action_masks()
        edits = [e.name for e in view.space.edits if mask[view.action_index(e.name)]]
        out = [view.proposal(name) for name in edits[:2]]
        first = out[0].candidate
        assert first is not None
        whole = view.space.apply(first, edits[-1])[0]
        out.append(Proposal("tpe", whole, "two edits at once"))
        self.asked.append(out[:n])
        return out[:n]

    def tell(self, records) -> None:
        self.told.append([dict(r) for r in records])


def test_a_batch_is_told_in_order_and_each_record_reaches_the_listener():
    env = ResearchEnv(task=ToyTask(), budget=7, instances=[1000])
    instant_runs(env, lambda c: 0.5 + 0.1 * (c.config["act"] != "relu"))
    agent = _BatchRecorder()
    heard: list[tuple[str, int]] = []  # (kind, step) of each record the listener sees
    try:
        summary = run_campaign(
            env,
            agent,
            seed=0,
            test=False,
            on_experiment=lambda r, info: heard.append((r["kind"], r["step"])),
        )
    finally:
        env.close()
    assert summary["experiments"] == 7
    assert [len(b) for b in agent.asked] == [3, 3, 1]  # the last cut to the budget left
    for asked, told in zip(agent.asked, agent.told, strict=True):
        assert [p.kind for p in asked] == [r["kind"] for r in told]
        assert [p.candidate.hash for p in asked] == [r["candidate"] for r in told]
    assert [k for k, _ in heard] == ["baseline"] + [r["kind"] for b in agent.told for r in b]
    assert [n for _, n in heard] == list(range(8))  # each record once, in order
    assert summary["return"] == pytest.approx(sum(r["reward"] for b in agent.told for r in b))
    assert len(agent.observations) == 3
    assert not np.array_equal(agent.observations[0], agent.observations[1])  # budget used


def test_the_view_runs_no_experiment():
    """Building proposals through the view charges nothing: only the loop runs them."""
    env = ResearchEnv(task=ToyTask(), budget=3, instances=[1000])
    instant_runs(env, lambda c: 0.5)
    try:
        obs, _ = env.reset(seed=0)
        view = CampaignView(env, obs)
        for name in view.space.index:
            view.proposal(name)
        view.proposal("reevaluate")
        assert view.experiments_used == 0 and view.experiments_left == 3
        assert len(view.log) == 1 and not hasattr(view, "step")
        assert view.candidate(view.incumbent.hash) == view.incumbent
    finally:
        env.close()
