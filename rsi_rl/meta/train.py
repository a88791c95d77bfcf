"""Meta-training: learn a research policy with Stable-Baselines3 (``rsi-rl train``).

The research env is vectorised over the task's *meta-train* instances (SB3's
``make_vec_env``; ``SubprocVecEnv`` workers when ``n_envs > 1`` and ``subproc``, since an
env spends its time waiting on its sandboxed experiments), and evaluated on held-out
instances by an ``EvalCallback``. The evaluation uses the *last* ``eval.instances``
held-out seeds, so the instances ``rsi-rl bench`` reports (the first ones) never select a
model. A run directory holds::

    policy.zip         the final policy, with rsi_rl metadata (vocabulary, obs size)
    best_policy.zip    the best policy on the evaluation instances (if evaluated)
    checkpoints/       periodic checkpoints (resume=<one of them>)
    eval/              evaluations.npz of the EvalCallback
    tb/                TensorBoard logs (tensorboard --logdir <run>/tb)
    train.json         what was trained, for how long, with which settings, and the
                       result cache's hit rate (hits / experiments, summed over workers)

One job, the ``train`` command: vectorised envs, the SB3 model (new or resumed), its
callbacks (evaluation, checkpoints, progress, trackers), learning and the saved run; the
envs of several task families come from :mod:`rsi_rl.meta.mixed_env`.

Example:
    rsi-rl train task=tabular trainer=maskable_ppo total_steps=20000 n_envs=4
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rsi_rl import builder
from rsi_rl.agents.sb3 import (
    MASKED_ALGOS,
    algorithm_classes,
    build_algorithm,
    save_policy,
)
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.registry import make_task
from rsi_rl.meta.mixed_env import mixed_env_fn

log = logging.getLogger("rsi_rl")


class CacheStats(gym.Wrapper):  # type: ignore[type-arg]
    """Reports the result cache of the wrapped research env to :func:`cache_stats`
    (``env_method`` of a vectorised env reaches wrappers, not the env's runner)."""

    def cache_stats(self) -> dict[str, int]:
        """Result-cache hits and experiments (cache lookups) of this env's runner so far."""
        cache = self.env.unwrapped.runner.cache  # type: ignore[attr-defined]
        return {"hits": int(cache.hits), "experiments": int(cache.hits + cache.misses)}


def cache_stats(vec_env: Any) -> dict[str, Any]:
    """Cache hits over experiments, summed over the workers of a vectorised research env."""
    per_env = vec_env.env_method("cache_stats")
    hits = sum(s["hits"] for s in per_env)
    experiments = sum(s["experiments"] for s in per_env)
    rate = round(hits / experiments, 4) if experiments else 0.0
    return {"hits": hits, "experiments": experiments, "hit_rate": rate}


class FixedSeedPool(gym.Wrapper):  # type: ignore[type-arg]
    """Meta-train on a finite pool of instances, each always on the same evaluation seed.

    The env draws a campaign's evaluation seed from ``reset(seed=...)``; seeding it with
    the instance seed makes a candidate that was already trained on that instance a cache
    hit of the runner (instant), so revisiting an instance costs only its new experiments.
    This multiplies meta-training throughput on a small machine, at the price of a finite
    training set (held-out evaluation is unaffected).
    """

    def __init__(self, env: gym.Env, pool: list[int]):  # type: ignore[type-arg]
        super().__init__(env)
        self.pool = list(pool)
        self.rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        options = dict(options or {})
        inst = int(options.get("instance", self.pool[int(self.rng.integers(len(self.pool)))]))
        options["instance"] = inst
        return self.env.reset(seed=inst, options=options)


def make_env_fn(
    task: Any,
    budget: int,
    instances: str | list[int],
    env_kwargs: dict[str, Any],
    allow_stop: bool = False,
    fixed_seeds: bool = False,
) -> Callable[[], gym.Env]:  # type: ignore[type-arg]
    """A picklable factory of one research env (for ``make_vec_env``); ``env_kwargs``
    from :func:`rsi_rl.builder.env_kwargs`.

    The env masks ``stop`` unless ``allow_stop`` (``ResearchEnv(allow_stop=...)``), as
    :class:`~rsi_rl.agents.sb3.PolicyAgent` will when acting. With ``fixed_seeds`` and a
    list of ``instances``, campaigns draw from the list and run each instance on a fixed
    evaluation seed (:class:`FixedSeedPool`).
    """
    return partial(_make_env, task, budget, instances, env_kwargs, allow_stop, fixed_seeds)


def _make_env(
    task: Any,
    budget: int,
    instances: str | list[int],
    env_kwargs: dict[str, Any],
    allow_stop: bool,
    fixed_seeds: bool = False,
) -> gym.Env:  # type: ignore[type-arg]
    env: gym.Env = builder.make_env(  # type: ignore[type-arg]
        task, budget, instances, env_kwargs, allow_stop=allow_stop
    )
    if fixed_seeds and not isinstance(instances, str):
        env = FixedSeedPool(env, list(instances))
    return CacheStats(env)


#: constructor arguments of an SB3 algorithm that ``resume_hyperparams`` may not change:
#: the network and optimizer shape (the checkpoint's weights and optimizer state must fit),
#: the buffer classes, and run plumbing. Every other constructor argument (the update
#: rule's settings: gamma, learning_rate, n_steps, ent_coef, exploration_fraction, ...)
#: may differ, so a new SB3 argument is resumable without a change here.
NOT_RESUMABLE = frozenset(
    {
        "self",
        "policy",
        "env",
        "policy_kwargs",
        "use_sde",
        "use_rms_prop",
        "rms_prop_eps",
        "rollout_buffer_class",
        "rollout_buffer_kwargs",
        "replay_buffer_class",
        "replay_buffer_kwargs",
        "optimize_memory_usage",
        "tensorboard_log",
        "verbose",
        "seed",
        "device",
        "_init_setup_model",
    }
)


def resumable_hyperparams(algo: str = "maskable_ppo") -> frozenset[str]:
    """The settings of ``algo`` (a key of :func:`algorithm_classes`) that a resumed run may
    change: its constructor's arguments less :data:`NOT_RESUMABLE`."""
    import inspect

    cls = algorithm_classes()[algo]
    return frozenset(inspect.signature(cls.__init__).parameters) - NOT_RESUMABLE


def resume_changes(changes: Any, algo: str = "maskable_ppo") -> dict[str, Any]:
    """Check ``resume_hyperparams`` (what a resumed run changes of the checkpoint's
    settings, e.g. ``{"gamma": 1.0}``) and return it as keyword arguments for SB3's
    ``load``. Names ``algo`` does not take and the network shape are refused."""
    out = dict(builder.to_plain(changes) or {})
    allowed = resumable_hyperparams(algo)
    bad = sorted(set(out) - allowed)
    if bad:
        raise ConfigError(
            f"resume_hyperparams cannot change {', '.join(bad)} of {algo}; it takes "
            f"{', '.join(sorted(allowed))} (the network shape stays the checkpoint's)"
        )
    return out


def check_total_steps(total: int, algo: str, hyperparams: Any, n_envs: int) -> None:
    """Fail when ``total`` env steps are fewer than one rollout of an on-policy ``algo``
    (``n_steps x n_envs``), which SB3 would collect whole before stopping.

    Raises:
        ConfigError: naming the ``total_steps`` or ``trainer.hyperparams.n_steps`` that fits.
    """
    import inspect

    params = inspect.signature(algorithm_classes()[algo].__init__).parameters
    if "n_steps" not in params:  # dqn: no rollouts
        return
    n_steps = int((builder.to_plain(hyperparams) or {}).get("n_steps", params["n_steps"].default))
    if total >= n_steps * n_envs:
        return
    fit = (
        f"trainer.hyperparams.n_steps<={total // n_envs}" if total >= n_envs else f"n_envs<={total}"
    )
    raise ConfigError(
        f"total_steps={total} is below one rollout of {algo} (trainer.hyperparams.n_steps="
        f"{n_steps} x n_envs={n_envs} = {n_steps * n_envs} env steps), which would run whole; "
        f"set total_steps>={n_steps * n_envs} or {fit}"
    )


def make_vec_envs(cfg: Any, task: Any, seed: int) -> tuple[Any, Any | None]:
    """The training env over the meta-train instances and the evaluation env over the last
    ``eval.instances`` held-out ones (None when ``eval.freq`` is 0).

    Both are vectorised by the same class (``SubprocVecEnv`` workers when ``n_envs > 1``
    and ``subproc``), as SB3's ``EvalCallback`` expects.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    task_spec = builder.to_plain(cfg.task)
    env_kwargs = {**builder.env_kwargs(cfg), "budget_seconds": cfg.get("budget_seconds")}
    allow_stop = bool(cfg.get("allow_stop", False))
    n_envs = int(cfg.n_envs)
    vec_cls = SubprocVecEnv if (n_envs > 1 and cfg.get("subproc", True)) else DummyVecEnv
    vec: dict[str, Any] = {
        "vec_env_cls": vec_cls,
        "vec_env_kwargs": {"start_method": "forkserver"} if vec_cls is SubprocVecEnv else None,
    }
    tasks = builder.to_plain(cfg.get("tasks"))
    n_train = cfg.get("train_instances")
    if tasks:
        factory = mixed_env_fn(tasks, cfg.budget, "train", env_kwargs, allow_stop)
    else:
        pool: str | list[int] = list(task.meta_train_seeds)[: int(n_train)] if n_train else "train"
        factory = make_env_fn(task_spec, cfg.budget, pool, env_kwargs, allow_stop, bool(n_train))
    train_env = make_vec_env(factory, n_envs=n_envs, seed=seed, **vec)
    ev = cfg.get("eval") or {}
    if int(ev.get("freq", 0) or 0) <= 0:
        return train_env, None
    if tasks:
        eval_factory = mixed_env_fn(tasks, cfg.budget, "val", env_kwargs, allow_stop)
    else:
        heldout = list(task.heldout_seeds)
        n_eval = max(1, min(int(ev.get("instances", 10)), len(heldout)))
        eval_factory = make_env_fn(task_spec, cfg.budget, heldout[-n_eval:], env_kwargs, allow_stop)
    eval_env = make_vec_env(eval_factory, n_envs=1, seed=seed + 10_000, **vec)
    return train_env, eval_env


class ProgressCallback:
    """Progress over training steps (SB3's own bar needs ``rich``).

    A tqdm bar on a terminal; without one (nohup, SLURM, CI), a line with rate and ETA
    every ``$RSI_RL_PROGRESS_SECONDS`` (see :func:`rsi_rl.tracking.progress_bar`).
    """

    def __new__(cls, total: int, initial: int = 0) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        from rsi_rl.tracking import progress_bar

        class _Bar(BaseCallback):
            def _on_training_start(self) -> None:
                # a tqdm bar on a terminal, periodic lines with rate and ETA otherwise
                self.bar = progress_bar(total, "train", "step", initial=initial)

            def _on_step(self) -> bool:
                self.bar.update(self.training_env.num_envs)
                infos = self.locals.get("infos") or []
                for info in infos:
                    if "episode" in info:
                        self.bar.set_postfix(ep_return=f"{info['episode']['r']:.3f}")
                return True

            def _on_training_end(self) -> None:
                self.bar.close()

        return _Bar()


def train(cfg: Any, run_dir: str | Path) -> Path:
    """Meta-train the trainer of ``cfg`` (a composed ``conf/train.yaml``) into ``run_dir``.

    Returns:
        The path of ``policy.zip``.

    Raises:
        ConfigError: a bad setting (not an SB3 trainer, non-positive steps, ...).
    """
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback

    builder.settings(cfg, "train")
    spec = builder.trainer_spec(cfg)
    algo = str(spec.get("algo", "maskable_ppo"))
    total = int(cfg.total_steps)
    if total < 1:
        raise ConfigError(f"total_steps must be a positive number of env steps, got {total}")
    n_envs = int(cfg.n_envs)
    if n_envs < 1:
        raise ConfigError(f"n_envs must be >= 1, got {n_envs}")
    resume = cfg.get("resume")
    if resume and not Path(str(resume)).is_file():
        raise ConfigError(f"resume={resume} does not exist; point it at a checkpoint .zip")
    if not resume:  # a resumed run keeps the checkpoint's n_steps
        check_total_steps(total, algo, spec.get("hyperparams"), n_envs)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    threads = cfg.get("torch_threads")
    if threads:  # small policies on a shared CPU: more threads contend more than they help
        import torch

        torch.set_num_threads(int(threads))
    task = builder.make_task(cfg)  # fail early on a bad task
    tasks = builder.to_plain(cfg.get("tasks")) or []
    for name in tasks:
        make_task(name)
    seed = int(cfg.seed)
    train_env, eval_env = make_vec_envs(cfg, task, seed)
    callbacks: list[Any] = []
    if eval_env is not None:
        eval_cls: Any = EvalCallback
        if algo in MASKED_ALGOS:
            from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback

            eval_cls = MaskableEvalCallback
        callbacks.append(
            eval_cls(
                eval_env,
                n_eval_episodes=int(cfg.eval.get("episodes", 10)),
                eval_freq=max(1, int(cfg.eval.freq) // n_envs),
                log_path=str(run_dir / "eval"),
                best_model_save_path=str(run_dir / "eval"),
                deterministic=True,
                verbose=0,
            )
        )
    ckpt = int(cfg.get("checkpoint_freq", 0) or 0)
    if ckpt > 0:
        callbacks.append(
            CheckpointCallback(
                max(1, ckpt // n_envs), str(run_dir / "checkpoints"), name_prefix=algo
            )
        )
    tb = str(run_dir / "tb") if cfg.get("tensorboard", True) else None
    if tb is not None:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            log.warning("tensorboard is not installed; training without TensorBoard logs")
            tb = None

    if resume:
        path = Path(str(resume))
        changes = resume_changes(cfg.get("resume_hyperparams"), algo)
        model = algorithm_classes()[algo].load(
            str(path), env=train_env, tensorboard_log=tb, device="cpu", **changes
        )
        log.info(
            f"resuming {algo} from {path} at step {model.num_timesteps}"
            + (f" with {changes}" if changes else "")
        )
    else:
        model = build_algorithm(
            train_env,
            algo=algo,
            policy=str(spec.get("policy", "MlpPolicy")),
            hyperparams=spec.get("hyperparams") or {},
            seed=seed,
            tensorboard_log=tb,
        )
    if tb is None:  # SB3's default logger would leave an empty /tmp/SB3-<date> folder
        from stable_baselines3.common.logger import Logger

        model.set_logger(Logger(folder=None, output_formats=[]))
    remaining = max(0, total - int(model.num_timesteps))
    trained_on = "+".join(str(s) for s in tasks) if tasks else task.name
    if cfg.get("progress", True):
        callbacks.append(ProgressCallback(total, int(model.num_timesteps)))
    log.info(
        f"training {algo} on {trained_on} meta-train instances: {remaining} steps, {n_envs} envs "
        f"({type(train_env).__name__}), budget {cfg.budget}; run directory {run_dir}"
    )
    t0 = time.monotonic()
    try:
        model.learn(
            remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=not resume,
            tb_log_name=algo,
        )
        cache = {"train": cache_stats(train_env)}
        if eval_env is not None:
            cache["eval"] = cache_stats(eval_env)
    finally:
        train_env.close()
        if eval_env is not None:
            eval_env.close()
    seconds = time.monotonic() - t0
    extra = {
        "task": trained_on,
        "budget": int(cfg.budget),
        "steps": int(model.num_timesteps),
        "seed": seed,
        "train_seconds": round(seconds, 1),
    }
    policy = save_policy(model, run_dir / "policy.zip", algo, **extra)
    best = run_dir / "eval" / "best_model.zip"
    if best.is_file():
        best_model = algorithm_classes()[algo].load(str(best), device="cpu")
        save_policy(best_model, run_dir / "best_policy.zip", algo, **extra, selected="eval")
    info = {
        **extra,
        "algo": algo,
        "n_envs": n_envs,
        "vec_env": type(train_env).__name__,
        "policy": str(policy),
        "cache": {**cache, "path": cfg.get("cache")},
    }
    if eval_env is not None and (run_dir / "eval" / "evaluations.npz").is_file():
        data = np.load(run_dir / "eval" / "evaluations.npz")
        info["eval"] = {
            "timesteps": data["timesteps"].tolist(),
            "mean_return": data["results"].mean(axis=1).round(4).tolist(),
        }
    (run_dir / "train.json").write_text(json.dumps(info, indent=2))
    out = cfg.get("out")
    if out:
        Path(str(out)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(policy, str(out))
        log.info(f"copied the policy to {out}")
    hit = cache["train"]
    log.info(
        f"trained {model.num_timesteps} steps in {seconds:.0f}s; cache hits {hit['hits']}/"
        f"{hit['experiments']} experiments ({hit['hit_rate']:.0%}); policy: {policy}"
    )
    return policy


def train_job(cfg: Any) -> Path:
    """``rsi-rl train``: the Hydra job (run directory = Hydra's output directory)."""
    from hydra.core.hydra_config import HydraConfig

    from rsi_rl.tracking import log_training, tracked

    run_dir = HydraConfig.get().runtime.output_dir
    with tracked(cfg, run_dir) as tracker:  # logger=wandb syncs the TensorBoard curves
        policy = train(cfg, run_dir)
        log_training(tracker, run_dir, policy)
    return policy


__all__ = [
    "CacheStats",
    "FixedSeedPool",
    "cache_stats",
    "check_total_steps",
    "make_env_fn",
    "make_vec_envs",
    "train",
    "train_job",
]
