"""One Gym env over several task families: each campaign (episode) runs on one of them.

Meta-training a policy that transfers means training it on many kinds of task at once.
Every :class:`~rsi_rl.env.ResearchEnv` has the same action and observation layout
(:mod:`rsi_rl.actions`) whatever its task, so :class:`MixedTasks` holds one research env
per task and, at each ``reset``, hands the next campaign to one of them: the families in
turn (``order="cycle"``, equal campaigns per family) or drawn at random. ``step`` and
``action_masks`` go to the env of the current campaign; ``info["task"]`` names it::

    env = MixedTasks([make_env("hpobench"), make_env("nb201"), make_env("synth_smooth")])
    obs, info = env.reset(seed=0)        # a campaign on hpobench
    obs, info = env.reset()              # the next one on nb201

:func:`mixed_env_fn` is the picklable factory of such an env that ``rsi-rl train
tasks=[...]`` vectorises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rsi_rl import builder
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.registry import make_task


class MixedTasks(gym.Env[np.ndarray, np.int64]):
    """Campaigns of several research envs (one per task family) behind one env.

    Args:
        envs: research envs with one action and observation layout.
        order: ``cycle`` (the envs in turn, from a random first one) or ``random``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, envs: Sequence[gym.Env], order: Literal["cycle", "random"] = "cycle"):  # type: ignore[type-arg]
        if not envs:
            raise ConfigError("tasks is empty; name at least one task family to train on")
        if order not in ("cycle", "random"):
            raise ConfigError(f"order={order!r}: use 'cycle' or 'random'")
        self.envs = list(envs)
        first = self.envs[0]
        for env in self.envs[1:]:
            if env.observation_space != first.observation_space:
                raise ConfigError("the tasks' research envs have different observation layouts")
            if env.action_space != first.action_space:
                raise ConfigError("the tasks' research envs have different action spaces")
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.order = order
        self.rng = np.random.default_rng()
        self.current = 0
        self._turn = -1

    @property
    def env(self) -> gym.Env:  # type: ignore[type-arg]
        """The research env of the current campaign."""
        return self.envs[self.current]

    def task_names(self) -> list[str]:
        """The tasks' names, in the envs' order."""
        return [e.unwrapped.task.name for e in self.envs]  # type: ignore[attr-defined]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self._turn = int(self.rng.integers(len(self.envs))) - 1
        if self.order == "cycle":
            self._turn += 1
            self.current = self._turn % len(self.envs)
        else:
            self.current = int(self.rng.integers(len(self.envs)))
        sub_seed = int(self.rng.integers(2**31 - 1))
        obs, info = self.env.reset(seed=sub_seed, options=options)
        return obs, {**info, "task": self.task_names()[self.current]}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return (
            obs,
            float(reward),
            terminated,
            truncated,
            {**info, "task": self.task_names()[self.current]},
        )

    def action_masks(self) -> np.ndarray:
        return np.asarray(self.env.unwrapped.action_masks())  # type: ignore[attr-defined]

    def cache_stats(self) -> dict[str, int]:
        """Result-cache hits and experiments, summed over the tasks' envs."""
        hits = experiments = 0
        for env in self.envs:
            cache = env.unwrapped.runner.cache  # type: ignore[attr-defined]
            hits += int(cache.hits)
            experiments += int(cache.hits + cache.misses)
        return {"hits": hits, "experiments": experiments}

    def close(self) -> None:
        for env in self.envs:
            env.close()


def mixed_env_fn(
    tasks: list[Any],
    budget: int,
    split: str,
    env_kwargs: dict[str, Any],
    allow_stop: bool = False,
) -> Callable[[], gym.Env]:  # type: ignore[type-arg]
    """A picklable factory of one :class:`MixedTasks` env: a research env per task on its
    ``split`` instances (``train``: meta-train seeds; ``val``: the task's validation seeds,
    else its last 20 held-out ones), campaigns taking the tasks in turn."""
    return partial(_make_mixed, list(tasks), budget, split, env_kwargs, allow_stop)


def task_split(task: Any, split: str) -> str | list[int]:
    """The instances of ``task`` a training (``train``) or evaluation (``val``) env uses."""
    if split == "train":
        return "train"
    val = getattr(task, "val_seeds", None)
    return list(val) if val is not None else list(task.heldout_seeds)[-20:]


def _make_mixed(
    tasks: list[Any],
    budget: int,
    split: str,
    env_kwargs: dict[str, Any],
    allow_stop: bool,
) -> gym.Env:  # type: ignore[type-arg]
    envs = []
    for spec in tasks:
        task = make_task(spec)
        envs.append(
            builder.make_env(
                task, budget, task_split(task, split), env_kwargs, allow_stop=allow_stop
            )
        )
    return MixedTasks(envs)


__all__ = ["MixedTasks", "mixed_env_fn", "task_split"]
