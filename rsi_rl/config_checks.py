"""Checks of command-line values shared by every subcommand, before anything is built.

Each check returns the value in the type the code needs, or raises a one-line
:class:`~rsi_rl.errors.ConfigError` that names the override to fix and what it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rsi_rl.errors import ConfigError

#: the ``env`` group's settings: all numbers >= 0
ENV_SETTINGS = ("keep_threshold", "cost_per_second", "invalid_penalty")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_seed(value: Any, key: str = "seed") -> int:
    """``seed=``: a non-negative integer.

    Example:
        >>> check_seed(3)
        3
    """
    if not _is_int(value) or value < 0:
        raise ConfigError(f"{key}={value!r}: the seed must be a non-negative integer, e.g. {key}=0")
    return int(value)


def _seed_hint(task: Any) -> str:
    seeds = getattr(task, "heldout_seeds", None)
    if isinstance(seeds, range) and len(seeds):
        return f"; the task's held-out instances are {seeds.start}..{seeds.stop - 1}"
    return ""


def check_instance(value: Any, task: Any = None, key: str = "instance") -> int | None:
    """``instance=``: null (the task's first held-out instance) or a non-negative integer."""
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise ConfigError(
            f"{key}={value!r}: an instance is a non-negative integer seed (or null for the "
            f"task's first held-out instance){_seed_hint(task)}"
        )
    return int(value)


def check_instances(value: Any, task: Any = None, key: str = "instances") -> int | list[int] | None:
    """``instances=`` of ``rsi-rl bench``: null, a count n >= 1, or a list of instance seeds."""
    if value is None:
        return None
    if _is_int(value):
        if value < 1:
            raise ConfigError(f"{key}={value}: a count of held-out instances must be >= 1")
        return int(value)
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ConfigError(
            f"{key}={value!r}: give null, a count n (the first n held-out instances) or a "
            f"list of instance seeds, e.g. {key}=[1000,1001]{_seed_hint(task)}"
        )
    return [check_instance(v, task, key) for v in value]  # type: ignore[misc]


def check_env_settings(env: Mapping[str, Any] | None) -> dict[str, float]:
    """The ``env`` group (``env.keep_threshold`` etc.) as floats, each a number >= 0."""
    out: dict[str, float] = {}
    for name in ENV_SETTINGS:
        if env is None or name not in env:
            continue
        value = env[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"env.{name}={value!r}: must be a number >= 0, e.g. env.{name}=1.0")
        if not value >= 0 or value == float("inf"):  # also rejects nan
            raise ConfigError(f"env.{name}={value!r}: must be a finite number >= 0")
        out[name] = float(value)
    return out
