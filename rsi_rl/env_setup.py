"""What a :class:`~rsi_rl.env.ResearchEnv` runs on, built from its arguments: the sandbox
limits (with the run's own records hidden from the program), the instance pool, and the
runner bound to its executor (and pruner).

The env itself only adapts the campaign to Gymnasium; these are its set-up rules, kept
apart so that they read in one place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rsi_rl.core.errors import ConfigError, EditError
from rsi_rl.core.task import InnerTask
from rsi_rl.exec.executor import Executor, make_executor
from rsi_rl.exec.pruning import PrunerSettings
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits


def env_limits(
    task: InnerTask,
    sandbox: dict[str, Any] | SandboxLimits | None,
    timeout: float | None,
    run_dir: str | Path | None,
    cache_path: str | Path | None,
) -> SandboxLimits:
    """The sandbox limits of an env's experiments.

    ``sandbox`` gives :class:`~rsi_rl.exec.sandbox.SandboxLimits` or its fields; ``timeout``
    (default: the task's) overrides its timeout. The run's own records (the ledger in
    ``run_dir``, the result cache at ``cache_path`` and its write-ahead log) are added to
    the paths hidden from the program.

    Raises:
        ConfigError: a field that ``SandboxLimits`` does not have.
    """
    if isinstance(sandbox, SandboxLimits):
        limits = sandbox
    else:
        fields = dict(sandbox or {})
        fields.setdefault("timeout", float(timeout or task.default_timeout))
        try:
            limits = SandboxLimits(**fields)
        except TypeError as exc:
            raise ConfigError(f"bad sandbox setting: {exc}") from None
    if timeout is not None:
        limits.timeout = float(timeout)  # checked by SandboxLimits
    # the run's own records (ledger, result cache) are no business of the program's
    private = [str(Path(run_dir).resolve())] if run_dir is not None else []
    if cache_path is not None:  # the SQLite file and its write-ahead log
        cache = str(Path(cache_path).resolve())
        private += [cache, f"{cache}-wal", f"{cache}-shm"]
    if private:
        limits = dataclasses.replace(
            limits, hidden_paths=tuple(dict.fromkeys([*limits.hidden_paths, *private]))
        )
    return limits


def instance_pool(task: InnerTask, instances: str | int | list[int]) -> list[int] | range:
    """The instance seeds ``reset`` draws from: a split's (``"train"``, ``"heldout"``), one
    seed, or a list of seeds.

    Raises:
        ConfigError: an unknown split or an empty list.
    """
    if isinstance(instances, str):
        try:
            return task.instance_seeds(instances)
        except EditError as exc:
            raise ConfigError(str(exc)) from None
    if isinstance(instances, int):
        return [instances]
    pool = [int(s) for s in instances]
    if not pool:
        raise ConfigError("instances must name at least one instance seed")
    return pool


def bound_runner(
    task: InnerTask,
    limits: SandboxLimits,
    scratch_dir: str | Path | None,
    cache_path: str | Path | None,
    executor: Any,
    pruner: PrunerSettings | None,
) -> tuple[Runner, Executor]:
    """The env's runner and the executor (``executor``'s spec) bound to it.

    Raises:
        ConfigError: a pruner with the ``ray`` executor (its workers are other processes,
            and the campaign's pruning study lives in this one).
    """
    ex = make_executor(executor)
    if pruner is not None and ex.name not in ("serial", "local"):
        raise ConfigError(
            f"env.pruner={pruner.name} watches runs of the serial and local executors only; "
            f"drop env.pruner or use executor=serial or executor=local (not {ex.name})"
        )
    runner = Runner(task, limits, scratch_dir, cache_path=cache_path)
    try:
        ex.bind(runner)
    except BaseException:
        runner.close()
        raise
    return runner, ex


__all__ = ["bound_runner", "env_limits", "instance_pool"]
