"""rsi_rl/Research-v0: API checks, masks, keep-or-revert, reward, budget, ledger.

Training is a formula (:func:`rsi_rl.testing.instant_runs`) except where the sandbox is
what is tested: the hard seconds cap.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import rsi_rl
from rsi_rl.actions import MAX_SLOTS, N_ACTIONS, OBSERVATION_FEATURES, PROPOSE, REEVALUATE, STOP
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError, UnknownTaskError
from rsi_rl.core.registry import BUILTIN_TASKS
from rsi_rl.env import ResearchEnv
from rsi_rl.store.ledger import read_ledger
from rsi_rl.testing import instant_runs


def landscape(cand: Candidate) -> float:
    """A made-up val_acc of tabular: input_norm +0.1; each doubling of steps +0.03, of width
    +0.005 (below the noise prior 0.01), of lr -0.02."""
    c = cand.config
    return (
        0.5
        + 0.1 * ("input_norm" in cand.toggles)
        + 0.03 * math.log2(c["steps"] / 25)
        + 0.005 * math.log2(c["width"] / 4)
        - 0.02 * math.log2(c["lr"] / 1e-4)
    )


def instant(env):
    """``env`` (or a Gymnasium wrapper of it) with its training replaced by :func:`landscape`."""
    instant_runs(env.unwrapped, landscape)
    return env


@pytest.mark.parametrize("task", sorted(BUILTIN_TASKS))
def test_check_env_gymnasium_and_sb3(task):
    """Every built-in task's env passes Gymnasium's and SB3's env checkers."""
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(rsi_rl.ENV_ID, task=task, budget=4)
    instant_runs(env.unwrapped, lambda cand: 0.5 + 0.01 * len(cand.toggles))
    try:
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)
    finally:
        env.close()


@pytest.fixture()
def env(tmp_path):
    e = instant(ResearchEnv(task="tabular", budget=6, instances=[10_001], run_dir=tmp_path))
    yield e
    e.close()


def test_spaces_and_observation(env):
    obs, info = env.reset(seed=0)
    assert env.action_space.n == N_ACTIONS
    assert obs.shape == (len(OBSERVATION_FEATURES),) and env.observation_space.contains(obs)
    assert info["experiment"]["kind"] == "baseline" and info["experiments_used"] == 0
    mask = env.action_masks()
    assert mask.dtype == bool and mask.shape == (N_ACTIONS,)
    assert not mask[PROPOSE] and not mask[STOP] and mask[REEVALUATE]
    n = len(env.space)
    assert mask[:n].any() and not mask[n:MAX_SLOTS].any()  # empty slots are masked
    # the observation carries the mask (stop shown valid) and nothing task-specific
    valid = obs[[OBSERVATION_FEATURES.index(f"slot{i}_valid") for i in range(MAX_SLOTS)]]
    assert np.array_equal(valid > 0.5, mask[:MAX_SLOTS])
    assert np.array_equal(obs[-3:] > 0.5, [True, False, True])
    assert not any("tabular" in f or "digits" in f or "lr" in f for f in OBSERVATION_FEATURES)


def test_slot_rows_describe_each_edit_by_role(env):
    """A slot's row names the edit's role and type, and where its knob sits before and
    after it: what lets one policy act on any task's own knobs."""
    obs, _ = env.reset(seed=0)
    i = env.action_index("lr_up")
    row = {
        f.split("_", 1)[1]: obs[j]
        for j, f in enumerate(OBSERVATION_FEATURES)
        if f.startswith(f"slot{i}_")
    }
    assert row["present"] == 1.0 and row["role_learning_rate"] == 1.0 and row["op_up"] == 1.0
    assert row["role_width"] == 0.0 and row["valid"] == 1.0
    assert row["position_after"] > row["position_before"]
    _, _, _, _, info = env.step(i)
    obs = env._obs()
    tries = obs[OBSERVATION_FEATURES.index(f"slot{i}_edit_tries")]
    target = obs[OBSERVATION_FEATURES.index(f"slot{env.action_index('lr_down')}_target_tries")]
    assert tries == pytest.approx(1 / env.budget) and target == pytest.approx(1 / env.budget)


def test_episode_truncates_at_budget_and_return_telescopes(env):
    obs, info = env.reset(seed=1)
    start = info["start_metric"]
    rng = np.random.default_rng(0)
    total, steps, done = 0.0, 0, False
    while not done:
        mask = env.action_masks()
        mask[STOP] = False
        action = int(rng.choice(np.flatnonzero(mask)))
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
        done = terminated or truncated
    assert truncated and not terminated and steps == env.budget == info["experiments_used"]
    expected = (info["incumbent_metric"] - start) / env.scale
    assert total == pytest.approx(expected, abs=1e-6)
    rows = read_ledger(env.ledger.run_dir)
    assert len(rows) == env.budget + 1 and rows[0]["kind"] == "baseline"
    assert {r["status"] for r in rows} <= {"ok", "crash", "timeout", "oom", "nan", "invalid"}


def test_keep_only_beyond_noise():
    """A child is kept when it beats the incumbent by more than the noise: width_up gains
    less than that and is reverted; the reward is the kept gain over the scale."""
    env = instant(ResearchEnv(task="tabular", budget=10, instances=[10_001], keep_threshold=1.0))
    try:
        env.reset(seed=2)
        kept, rewards = [], []
        for kind in ("input_norm", "steps_up", "lr_up", "width_up"):
            assert env.action_masks()[env.action_index(kind)], kind
            before = env.incumbent_metric
            _, reward, _, _, info = env.step(env.action_index(kind))
            exp = info["experiment"]
            assert exp["status"] == "ok"
            assert exp["kept"] == (exp["metric"] - before > env.noise)
            kept.append(exp["kept"])
            rewards.append(reward)
        assert kept == [True, True, False, False]
        assert rewards[0] == pytest.approx(0.1 / env.scale) and rewards[2:] == [0.0, 0.0]
    finally:
        env.close()


def test_invalid_action_is_recorded_not_trained(env):
    env.reset(seed=0)
    for bad in (PROPOSE, MAX_SLOTS - 1):  # no proposer; an empty slot
        _, reward, terminated, truncated, info = env.step(bad)
        assert info["status"] == "invalid" and reward == 0.0
        assert info["experiment"]["seconds"] == 0.0
    assert info["experiments_used"] == 2 and "empty edit slot" in info["experiment"]["message"]
    with pytest.raises(gym.error.InvalidAction):
        env.step(-1)


def test_reevaluate_tightens_noise_and_stop_terminates(env):
    env.reset(seed=3)
    before = env.incumbent_metric
    _, reward, _, _, info = env.step(REEVALUATE)
    assert info["kind"] == "reevaluate" and len(env.incumbent_scores) == 2
    # the rerun feeds the noise estimate only: the incumbent keeps its evaluation-seed
    # score, so comparisons with single-seed children (and best-so-far) never mix seeds
    assert env.incumbent_metric == before and reward == 0.0
    # two equal scores: the prior shrinks toward a measured spread of 0
    assert env.noise == pytest.approx(env.task.noise_prior / math.sqrt(2))
    _, reward, terminated, truncated, info = env.step(STOP)
    assert terminated and not truncated and reward == 0.0


def test_test_split_is_only_for_the_final_report(env):
    env.reset(seed=0)
    env.step(env.action_index("steps_up"))
    used = env.experiments_used
    rec = env.evaluate_test()
    assert rec["split"] == "test" and "test_acc" in rec["metrics"]
    assert env.experiments_used == used  # not charged, not rewarded
    assert read_ledger(env.ledger.run_dir)[-1]["split"] == "test"


def test_seconds_budget_truncates():
    env = instant(ResearchEnv(task="tabular", budget=100, budget_seconds=2.5, instances=[10_001]))
    try:
        env.reset(seed=0)
        truncated = [env.step(env.action_index("steps_up"))[3] for _ in range(3)]
        assert truncated == [False, False, True]  # one charged second each: 3 >= 2.5
        assert env.seconds_used == 3.0
    finally:
        env.close()


def test_seconds_cap_is_hard():
    """The last experiment's wall-clock limit is what is left of the cap: a candidate that
    would run past it is stopped and recorded as a timeout, not allowed to overshoot."""
    env = ResearchEnv(task="tabular", budget=100, budget_seconds=0.3, instances=[10_001])
    try:
        env.reset(seed=0)
        big = {**env.incumbent.config, "steps": 1600, "width": 256, "depth": 4, "batch_size": 256}
        child = Candidate(big, env.incumbent.source)
        _, _, _, truncated, info = env.try_candidate(child)
        assert info["experiment"]["status"] == "timeout" and truncated
        assert "0.3s wall-clock limit" in info["experiment"]["message"]
        key = env.runner.cache_key(env.instance.id, child.hash, env.eval_seed, "val")
        assert env.runner.cache.get(key) is None  # a capped timeout is not cached
        assert env.runner.timeout_cap is None  # the test split and later runs are not capped
        assert env.evaluate_test()["status"] == "ok"
    finally:
        env.close()


def test_bad_arguments_fail_early():
    with pytest.raises(ConfigError, match="budget"):
        ResearchEnv(task="tabular", budget=0)
    with pytest.raises(UnknownTaskError, match="known tasks"):
        ResearchEnv(task="nope")
    with pytest.raises(ConfigError, match="instance split"):
        ResearchEnv(task="tabular", instances="somewhere")
    with pytest.raises(ConfigError, match="sandbox"):
        ResearchEnv(task="tabular", sandbox={"memory": 3})


@pytest.mark.parametrize("allow_stop", [None, True])
def test_stop_is_masked_unless_allowed(allow_stop):
    """A learner trained on ``action_masks()`` must not learn to stop at step 1 (with no
    compute cost stopping never pays): ``stop`` is masked unless ``allow_stop=True``. The
    observation is the same either way, and ``step(stop)`` still ends the campaign."""
    kwargs = {} if allow_stop is None else {"allow_stop": allow_stop}
    env = instant(gym.make(rsi_rl.ENV_ID, task="tabular", budget=3, instances=[10_001], **kwargs))
    try:
        obs, _ = env.reset(seed=0)
        mask = env.unwrapped.action_masks()
        assert bool(mask[STOP]) is bool(allow_stop)
        assert mask[REEVALUATE]
        assert obs[OBSERVATION_FEATURES.index("mask_stop")] == 1.0  # stop is a valid action
        _, _, terminated, _, info = env.step(STOP)
        assert terminated and info["status"] == "stopped"
    finally:
        env.close()


def test_duplicate_mask_already_holds_the_tabu_of_acting_policies(env):
    """Policies act under :class:`~rsi_rl.agents.sb3.TabuMask` (no repeat of an edit that
    failed on the incumbent) and train on the env's own mask: with ``mask_duplicates`` the
    two are the same, so a policy trained on the env acts under the masks it learned with."""
    from rsi_rl.agents.sb3 import TabuMask

    tabu = TabuMask()
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    done, steps = False, 0
    while not done and steps < 4:
        steps += 1
        mask = env.action_masks()
        assert np.array_equal(tabu.apply(mask, env.action_names), mask)
        action = int(rng.choice(np.flatnonzero(mask)))
        _, _, terminated, truncated, info = env.step(action)
        tabu.update(info["experiment"])
        done = terminated or truncated
