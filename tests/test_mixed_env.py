"""Meta-training across task families: one env whose campaigns take the families in turn."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from rsi_rl.agents.sb3 import read_metadata
from rsi_rl.cli import conf_dir
from rsi_rl.core.errors import ConfigError
from rsi_rl.env import ResearchEnv
from rsi_rl.meta.mixed_env import MixedTasks, task_split
from rsi_rl.meta.train import train
from rsi_rl.testing import ToyTask, instant_experiments, instant_runs


def _envs() -> list[ResearchEnv]:
    out = []
    for task in (ToyTask(), "tabular"):
        env = ResearchEnv(task=task, budget=3, instances=[0, 1])
        instant_runs(env, lambda cand: 0.5)
        out.append(env)
    return out


def test_campaigns_take_the_tasks_in_turn_and_masks_follow():
    env = MixedTasks(_envs())
    seen = []
    for i in range(4):
        obs, info = env.reset(seed=3) if i == 0 else env.reset()
        seen.append(info["task"])
        assert obs.shape == env.observation_space.shape
        mask = env.action_masks()
        assert mask.sum() > 0
        np.testing.assert_array_equal(mask, env.env.unwrapped.action_masks())
        obs, reward, term, trunc, info = env.step(int(np.flatnonzero(mask)[0]))
        assert info["task"] == seen[-1]
    assert seen[0] != seen[1] and seen[0] == seen[2] and seen[1] == seen[3]
    env.close()


def test_mixed_envs_refuse_an_empty_list_and_a_bad_order():
    with pytest.raises(ConfigError, match="at least one task"):
        MixedTasks([])
    with pytest.raises(ConfigError, match="cycle"):
        MixedTasks(_envs(), order="sorted")  # type: ignore[arg-type]


def test_task_split_uses_validation_seeds_else_the_last_heldout_ones():
    task = ToyTask()
    assert task_split(task, "train") == "train"
    assert task_split(task, "val") == list(task.heldout_seeds)[-20:]
    task.val_seeds = [7, 8]  # type: ignore[attr-defined]
    assert task_split(task, "val") == [7, 8]


def test_train_across_tasks_writes_one_policy(tmp_path):
    overrides = [
        "tasks=[tabular,mlp2]",
        "budget=3",
        "n_envs=1",
        "total_steps=8",
        "eval.freq=8",
        "eval.episodes=2",
        "checkpoint_freq=0",
        "progress=false",
        "tensorboard=false",
        "trainer.hyperparams.policy_kwargs.net_arch=[8]",
        "trainer.hyperparams.n_steps=8",
        "trainer.hyperparams.batch_size=8",
        "trainer.hyperparams.n_epochs=1",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with instant_experiments(lambda cand: 0.5) as runs:
        policy = train(cfg, tmp_path / "run")
    assert read_metadata(policy)["task"] == "tabular+mlp2"
    assert {c.config.get("width2") is not None for c, _, _ in runs} == {True, False}
