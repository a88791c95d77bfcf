"""What the observation keeps of a campaign (CampaignMemory) and how it encodes it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsi_rl.actions import OBSERVATION_FEATURES
from rsi_rl.core.record import VOLATILE_KEYS
from rsi_rl.env import ResearchEnv
from rsi_rl.observation import encode, step_info
from rsi_rl.testing import instant_runs


@pytest.fixture()
def env():
    e = ResearchEnv(task="tabular", budget=6, instances=[10_001])
    instant_runs(e, lambda cand: 0.5 + 0.03 * math.log2(cand.config["steps"] / 25))
    e.reset(seed=0)
    yield e
    e.close()


def test_memory_counts_edits_targets_and_meta_actions(env):
    memory = env.memory
    assert len(memory.evidence) == 1  # the start candidate
    env.step(env.action_index("steps_up"))
    assert memory.edits.tries("steps_up") == 1 and memory.targets.tries("steps") == 1
    assert len(memory.evidence) == 2
    env.step(env.action_index("reevaluate"))
    assert memory.meta.tries("reevaluate") == 1 and len(memory.evidence) == 2  # another seed
    child = env.space.apply(env.incumbent, "lr_up")[0]
    env.try_candidate(child, kind="tpe")  # another label: evidence only
    assert memory.edits.tries("tpe") == 0 and memory.targets.tries("lr") == 0
    assert len(memory.evidence) == 3 and memory.evidence.seen(child)


def test_encode_is_the_envs_observation(env):
    env.step(env.action_index("steps_up"))
    obs = encode(env.memory, env._children, env._mask)
    assert obs.shape == (len(OBSERVATION_FEATURES),) and np.array_equal(obs, env.observation())
    used = obs[OBSERVATION_FEATURES.index("budget_used")]
    assert used == pytest.approx(1 / env.budget)


def test_step_info_drops_volatile_fields(env):
    record = {**env.last, "id": 3}
    info = step_info(env.research, record, used=0)
    assert not set(info["experiment"]) & {*VOLATILE_KEYS, "id"}
    assert info["experiments_used"] == 0 and info["instance"] == env.instance.id
    assert info["experiment"]["kind"] == env.last["kind"]
