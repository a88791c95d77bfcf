"""rsi-rl train: tiny meta-training runs (net_arch=[8], budget 3) write a loadable policy,
checkpoints and logs, and resume from a checkpoint. Training a policy is what these tests
test, not training the inner programs: their experiments are a formula
(:func:`rsi_rl.testing.instant_experiments`) unless a test says otherwise."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from rsi_rl.actions import SPACE_VERSION
from rsi_rl.agents.sb3 import PolicyAgent, read_metadata
from rsi_rl.cli import conf_dir
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.registry import make_task
from rsi_rl.meta.train import check_total_steps, make_vec_envs, resume_changes, train
from rsi_rl.testing import instant_experiments

TINY = [
    "task=tabular",
    "budget=3",
    "n_envs=1",
    "total_steps=8",
    "eval.freq=8",
    "eval.episodes=1",
    "eval.instances=1",
    "checkpoint_freq=8",
    "progress=false",
]


#: a small MaskablePPO rollout (PPO's defaults: n_steps=256, batch 128)
ARCH = ["trainer.hyperparams.policy_kwargs.net_arch=[8]"]
SMALL = [
    *ARCH,
    "trainer.hyperparams.n_steps=8",
    "trainer.hyperparams.batch_size=8",
    "trainer.hyperparams.n_epochs=1",
]


def _cfg(*overrides: str, small: bool = True):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("train", overrides=[*TINY, *(SMALL if small else []), *overrides])


@pytest.mark.parametrize("name", ["maskable_ppo", "ppo", "a2c", "dqn"])
def test_every_trainer_config_composes(name):
    cfg = _cfg(f"trainer={name}", *ARCH, small=False)
    assert cfg.trainer.hyperparams.policy_kwargs.net_arch == [8]
    assert cfg.trainer.algo == name and cfg.trainer._target_.endswith("build_algorithm")
    assert "agent" not in cfg


def _lr_score(cand) -> float:
    """A formula for an experiment's metric: something for the policy to learn."""
    return 1.0 / (1.0 + abs(float(cand.config.get("lr", 0.01)) - 0.01))


def test_train_writes_policy_checkpoints_and_resumes(tmp_path):
    with instant_experiments(_lr_score):
        _checkpoints_and_resume(tmp_path)


def _checkpoints_and_resume(tmp_path):
    policy = train(_cfg(), tmp_path / "run")
    run = tmp_path / "run"
    meta = read_metadata(policy)
    assert meta["space_version"] == SPACE_VERSION and meta["steps"] >= 8
    assert (run / "best_policy.zip").is_file() and (run / "tb").is_dir()
    ckpts = sorted((run / "checkpoints").glob("*.zip"))
    assert ckpts
    info = json.loads((run / "train.json").read_text())
    assert info["algo"] == "maskable_ppo" and info["eval"]["timesteps"]
    assert info["cache"]["train"]["experiments"] >= 8 and info["cache"]["path"] is None
    PolicyAgent(policy)  # loads
    resumed = train(
        _cfg(
            "total_steps=16", f"resume={ckpts[-1]}", "eval.freq=0", "+resume_hyperparams.gamma=1.0"
        ),
        tmp_path / "run2",
    )
    assert read_metadata(resumed)["steps"] >= 16
    from sb3_contrib import MaskablePPO

    model = MaskablePPO.load(resumed, device="cpu")  # the change is trained with and saved
    assert model.gamma == 1.0 and model.rollout_buffer.gamma == 1.0


def test_train_reports_the_cache_hit_rate_of_a_shared_cache(tmp_path, monkeypatch):
    """... and, without TensorBoard, leaves no SB3 log folder in the temporary directory."""
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    quick = ["eval.freq=0", "checkpoint_freq=0", "tensorboard=false", f"cache={tmp_path}/c.sqlite"]
    with instant_experiments(_lr_score):
        train(_cfg(*quick), tmp_path / "a")
        assert not list((tmp_path / "tmp").glob("SB3-*"))
        first = json.loads((tmp_path / "a" / "train.json").read_text())["cache"]
        train(_cfg(*quick), tmp_path / "b")  # same seed: the same experiments, all in the file
    second = json.loads((tmp_path / "b" / "train.json").read_text())["cache"]
    assert first["path"] == f"{tmp_path}/c.sqlite" and first["train"]["experiments"] >= 8
    assert second["train"]["hits"] == second["train"]["experiments"] > first["train"]["hits"]
    assert second["train"]["hit_rate"] == 1.0


def test_train_refuses_a_baseline_agent_and_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match="not trainable"):
        train(_cfg("trainer._target_=rsi_rl.agents.GreedyAgent", small=False), tmp_path)
    with pytest.raises(ConfigError, match=r"^n_envs=two is not an integer; give a whole"):
        train(_cfg("n_envs=two"), tmp_path)
    with pytest.raises(ConfigError, match=r"^env.invalid_penalty=-1: must be a finite"):
        train(_cfg("env.invalid_penalty=-1"), tmp_path)
    with pytest.raises(ConfigError, match="resume"):
        train(_cfg(f"resume={tmp_path / 'nope.zip'}"), tmp_path)
    with pytest.raises(ConfigError, match="cannot change policy_kwargs"):
        resume_changes({"gamma": 1.0, "policy_kwargs": {"net_arch": [4]}})
    assert resume_changes(None) == {} and resume_changes({"gamma": 1.0}) == {"gamma": 1.0}
    # what may change is read from each algorithm's constructor
    assert resume_changes({"exploration_fraction": 0.5}, "dqn") == {"exploration_fraction": 0.5}
    with pytest.raises(ConfigError, match="cannot change exploration_fraction of ppo"):
        resume_changes({"exploration_fraction": 0.5}, "ppo")


def test_total_steps_below_one_rollout_fails_naming_the_fix(tmp_path):
    """SB3 collects whole rollouts: total_steps=256 with 4 envs of n_steps=256 would train
    1024 steps. train refuses it before building any env."""
    with pytest.raises(ConfigError) as err:
        train(_cfg("total_steps=256", "n_envs=4", small=False), tmp_path / "run")
    assert str(err.value) == (
        "total_steps=256 is below one rollout of maskable_ppo (trainer.hyperparams.n_steps=256 "
        "x n_envs=4 = 1024 env steps), which would run whole; set total_steps>=1024 or "
        "trainer.hyperparams.n_steps<=64"
    )
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="set total_steps>=6 or n_envs<=2"):
        check_total_steps(2, "a2c", {"n_steps": 2}, 3)
    check_total_steps(1024, "ppo", {"n_steps": 256}, 4)  # exactly one rollout
    check_total_steps(8, "dqn", {}, 1)  # no rollouts
    check_total_steps(2048, "ppo", {}, 1)  # PPO's own default n_steps=2048


def test_cli_train_below_one_rollout_is_one_line(tmp_path):
    cmd = [sys.executable, "-m", "rsi_rl.cli", "train", "total_steps=256"]
    out = subprocess.run(
        [*cmd, f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "rsi-rl: error: total_steps=256 is below one rollout of maskable_ppo "
        "(trainer.hyperparams.n_steps=256 x n_envs=4 = 1024 env steps), which would run whole; "
        "set total_steps>=1024 or trainer.hyperparams.n_steps<=64"
    ]


def test_train_and_eval_envs_are_vectorised_alike(recwarn):
    """SB3's EvalCallback warns when the eval env's VecEnv class differs from the training
    env's; with SubprocVecEnv workers (n_envs > 1) both are SubprocVecEnv."""
    from types import SimpleNamespace

    from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback

    cfg = _cfg("n_envs=2", "budget=1")
    train_env, eval_env = make_vec_envs(cfg, make_task("tabular"), seed=0)
    try:
        assert type(train_env).__name__ == type(eval_env).__name__ == "SubprocVecEnv"
        callback = MaskableEvalCallback(eval_env, eval_freq=8)
        callback.init_callback(SimpleNamespace(get_env=lambda: train_env, logger=None))
    finally:
        train_env.close()
        eval_env.close()
    assert not [w for w in recwarn if "not of the same type" in str(w.message)]


@pytest.mark.slow
def test_train_sweep_of_meta_agents(tmp_path):
    """rsi-rl train -m trainer=maskable_ppo,ppo,dqn: one tiny run per trainer."""
    args = [
        *TINY,
        "total_steps=256",  # one rollout of PPO's n_steps=256
        "eval.freq=0",
        "checkpoint_freq=0",
        f"hydra.sweep.dir={tmp_path}",
    ]
    cmd = [sys.executable, "-m", "rsi_rl.cli", "train", "-m", "trainer=maskable_ppo,ppo,dqn", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    assert len(list(tmp_path.glob("*/policy.zip"))) == 3


def test_a_trainer_config_that_is_not_sb3_is_one_line(tmp_path):
    """A user's trainer/<name>.yaml must build an SB3 algorithm."""
    conf = tmp_path / "conf" / "trainer"
    conf.mkdir(parents=True)
    (conf / "greedy.yaml").write_text("_target_: rsi_rl.agents.GreedyAgent\n")
    cmd = [sys.executable, "-m", "rsi_rl.cli", "train", "--config-dir", str(tmp_path / "conf")]
    cmd += ["trainer=greedy", "total_steps=2048", f"hydra.run.dir={tmp_path / 'run'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "rsi-rl: error: trainer._target_='rsi_rl.agents.GreedyAgent' is not trainable; rsi-rl "
        "train takes an SB3 trainer: maskable_ppo, ppo, a2c, dqn (trainer=maskable_ppo)"
    ]


@pytest.mark.parametrize("allow_stop", [False, True])
def test_training_envs_mask_stop_as_the_policy_will_act(allow_stop):
    """The learner trains on the env's own mask: ``stop`` masked unless ``allow_stop``,
    as :class:`~rsi_rl.agents.sb3.PolicyAgent` masks it when acting."""
    import numpy as np

    from rsi_rl.actions import STOP
    from rsi_rl.agents.sb3 import TabuMask
    from rsi_rl.meta.train import make_env_fn

    env = make_env_fn("tabular", 2, [10_000], {}, allow_stop, fixed_seeds=True)()
    try:
        with instant_experiments(_lr_score):
            env.reset(seed=0)
        mask = env.get_wrapper_attr("action_masks")()  # what SB3's env_method calls
        assert bool(mask[STOP]) is allow_stop
        names = env.get_wrapper_attr("action_names")
        assert np.array_equal(TabuMask(allow_stop).apply(mask, names), mask)
        assert set(env.get_wrapper_attr("cache_stats")()) == {"hits", "experiments"}
    finally:
        env.close()


def test_progress_callback_without_terminal_writes_lines_with_rate(monkeypatch, capsys):
    """Without a TTY, training progress comes as log lines (done/total, rate, ETA)."""
    from types import SimpleNamespace

    from rsi_rl.meta.train import ProgressCallback
    from rsi_rl.tracking import LogProgress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setenv("RSI_RL_PROGRESS_SECONDS", "0")
    cb = ProgressCallback(total=10, initial=2)
    cb.model = SimpleNamespace(get_env=lambda: SimpleNamespace(num_envs=2))
    cb.locals = {"infos": [{"episode": {"r": 0.5}}]}
    cb._on_training_start()
    assert isinstance(cb.bar, LogProgress)
    assert cb._on_step() is True
    cb._on_training_end()
    err = capsys.readouterr().err
    assert "rsi-rl: train 4/10 steps (40%)" in err and "ETA" in err
    assert "ep_return=0.500" in err
