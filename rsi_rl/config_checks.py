"""Checks of command-line values shared by every subcommand, before anything is built.

Each check returns the value in the type the code needs, or raises a one-line
:class:`~rsi_rl.core.errors.ConfigError` that names the override to fix and what it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rsi_rl.core.errors import ConfigError

#: the ``env`` group's numbers: all >= 0
ENV_NUMBERS = ("keep_threshold", "cost_per_second", "invalid_penalty")


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
    """The numbers of the ``env`` group (``env.keep_threshold`` etc.), each finite and >= 0.

    The types are :func:`rsi_rl.config_schema.validate`'s to check; this checks the range.
    """
    out: dict[str, float] = {}
    for name in ENV_NUMBERS:
        if env is None or env.get(name) is None:
            continue
        value = env[name]
        if not 0 <= value < float("inf"):  # also rejects nan
            raise ConfigError(f"env.{name}={value:g}: must be a finite number >= 0")
        out[name] = float(value)
    return out


def check_budget(value: Any, key: str = "budget") -> int:
    """``budget=``: a positive number of experiments."""
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{key} must be a positive integer number of experiments, got {value!r}")
    return int(value)


def check_ranges(settings: Mapping[str, Any]) -> None:
    """The ranges of a command's typed settings (:func:`rsi_rl.config_schema.validate`):
    ``budget`` >= 1, ``seed`` >= 0, ``env.*`` numbers >= 0, bench's ``instances``.
    ``instance`` is checked with its task (:func:`check_instance`), which knows the
    held-out seeds."""
    if settings.get("budget") is not None:
        check_budget(settings["budget"])
    if settings.get("seed") is not None:
        check_seed(settings["seed"])
    if settings.get("env") is not None:
        check_env_settings(settings["env"])
    if "instances" in settings:
        check_instances(settings["instances"])
