"""One bench campaign: its curves, trace and truth (rsi_rl.analysis.bench_campaign)."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.agents import make_agent
from rsi_rl.analysis.bench_campaign import fresh_seeds, run_one
from rsi_rl.env import ResearchEnv
from rsi_rl.testing import instant_experiments
from tests.test_bench import landscape


def test_fresh_seeds_depend_on_the_pair_only():
    assert fresh_seeds(10_000, 3, 4) == fresh_seeds(10_000, 3, 4)
    assert fresh_seeds(10_000, 3, 4)[:2] == fresh_seeds(10_000, 3, 2)
    assert fresh_seeds(10_000, 3, 4) != fresh_seeds(10_000, 4, 4)


def test_curve_of_a_batched_agent_is_each_experiments_own(tabular):
    """A batch is recorded experiment by experiment: each point of the best-so-far curves
    is that experiment's incumbent and cumulative seconds, not the end of its batch."""
    with instant_experiments(landscape, noise=0.01):
        env = ResearchEnv(task=tabular, budget=6, instances=[10_000])
        try:
            agent = make_agent("random", seed=1, batch_size=3)
            row = run_one(env, agent, seed=1, instance=10_000, reference=False)
            exps = [r for r in env.log if r["split"] == "val" and r["kind"] != "baseline"]
        finally:
            env.close()
    assert len(exps) == 6
    assert row.curve == [r["incumbent_metric"] for r in exps]
    assert row.seconds == pytest.approx(np.cumsum([r["seconds"] for r in exps]).tolist())
    assert [r["seconds_used"] for r in exps] == pytest.approx(row.seconds)
