"""What a tracker knows about the running command: Hydra's job, run names, W&B folders."""

from __future__ import annotations

import netrc
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any


def has_wandb_api_key() -> bool:
    """Whether a W&B API key is configured (``WANDB_API_KEY`` or ``~/.netrc``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        host = (
            os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
        )
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def hydra_context() -> dict[str, Any]:
    """What the running Hydra job says about itself (empty outside a Hydra app).

    Keys: ``job`` (the command, e.g. ``search``), ``multirun`` (bool), ``sweep``
    (a name for the sweep: ``<job>_<date>_<time>`` of the sweep folder), ``num`` (the job
    number in the sweep), ``overrides`` (the task overrides) and ``choices`` (config groups).
    """
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return {}
        hc = HydraConfig.get()
    except Exception:  # noqa: BLE001 - hydra absent or not running
        return {}
    ctx: dict[str, Any] = {
        "job": hc.job.name,
        "multirun": hc.mode == RunMode.MULTIRUN,
        "overrides": list(hc.overrides.task),
        "choices": {k: v for k, v in hc.runtime.choices.items() if not str(k).startswith("hydra/")},
    }
    if ctx["multirun"]:
        sweep = Path(str(hc.sweep.dir))
        parts = [p for p in (sweep.parent.name, sweep.name) if p]
        ctx["sweep"] = "_".join([str(hc.job.name), *parts])
        ctx["num"] = getattr(hc.job, "num", None)
    return ctx


def _git_root(start: Path) -> Path | None:
    for p in (start, *start.parents):
        if (p / ".git").exists():
            return p
    return None


def _artifact_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120] or "artifact"


def _choice(ctx: dict[str, Any], config: Mapping[str, Any], key: str) -> str | None:
    """The name of config group ``key`` (``task``, ``agent``): Hydra's choice, else the config's."""
    choice = ctx.get("choices", {}).get(key)
    if choice and not str(choice).startswith("_"):
        return str(choice)
    value = config.get(key)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        for field in ("name", "_target_"):
            if isinstance(value.get(field), str) and value[field]:
                return str(value[field]).rsplit(".", 1)[-1]
    return None


def run_name(ctx: dict[str, Any], config: Mapping[str, Any], now: datetime | None = None) -> str:
    """A readable W&B run name, unique across commands and sweeps.

    ``<task>-<agent or trainer>-s<seed>[-j<job number>]-<yymmdd-HHMMSS>``: the job number of a Hydra
    multirun tells the jobs of one sweep apart, the start time tells sweeps (and single
    runs) apart. Parts that the command does not have (no agent in ``bench``) are left out.

    Args:
        ctx: :func:`hydra_context` of the running job.
        config: the resolved command config.
        now: the start time (default: now).
    """
    agent = _choice(ctx, config, "agent") or _choice(ctx, config, "trainer")  # train: trainer
    parts = [_choice(ctx, config, "task"), agent]
    seed = config.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        parts.append(f"s{seed}")
    if ctx.get("multirun") and ctx.get("num") is not None:
        parts.append(f"j{ctx['num']}")
    parts.append((now or datetime.now()).strftime("%y%m%d-%H%M%S"))
    return _artifact_name("-".join(p for p in parts if p))


def wandb_root(dir: str | None = None) -> Path:
    """The folder that holds the ``wandb/`` folder of every run of this project.

    ``dir`` if given, else ``$WANDB_DIR`` if set, else the project root (the working
    directory the command started in, before any Hydra ``chdir``). That is where
    ``wandb sync`` with no path (``wandb sync --sync-all`` in older wandb versions) looks
    when run from the project root (or with the same ``WANDB_DIR``).
    """
    if dir:
        return Path(dir)
    if os.environ.get("WANDB_DIR"):
        return Path(os.environ["WANDB_DIR"])
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd

        if HydraConfig.initialized():
            return Path(get_original_cwd())
    except Exception:  # noqa: BLE001 - hydra absent or not running
        pass
    return Path.cwd()


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to copy)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
