"""In-process tasks: a tabulated or synthetic landscape answers without a program.

An in-process task (:class:`~rsi_rl.core.landscape.LandscapeTask` with ``in_process``)
runs nothing: :func:`lookup` answers with the task's own lookup, charged at the seconds
the lookup reports, and its runner holds a :class:`NoSandbox` that never starts a fork
server.
"""

from __future__ import annotations

import math
from typing import Any

from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import RsiRlError, TaskError
from rsi_rl.core.landscape import LandscapeTask
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.sandbox import Sandbox


class NoSandbox(Sandbox):
    """The sandbox of an in-process task: it has nothing to start and runs nothing."""

    def spawn(self) -> None:
        return None

    def start(self) -> None:
        return None

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an in-process task runs no program in a sandbox")


def in_process(task: InnerTask) -> LandscapeTask | None:
    """``task`` when it answers in this process, else None.

    Raises:
        TaskError: ``in_process = True`` on a task that is not a LandscapeTask.
    """
    if not task.in_process:
        return None
    if not isinstance(task, LandscapeTask):
        raise TaskError(
            f"task {task.name!r} sets in_process = True: it must subclass "
            "rsi_rl.core.landscape.LandscapeTask (and implement its lookup)"
        )
    return task


def lookup(
    task: LandscapeTask, instance: Instance, cand: Candidate, seed: int, split: str, limit: float
) -> ExperimentResult:
    """An in-process task's answer: its lookup, charged at the seconds it reports (a
    ``timeout`` at the run's wall-clock ``limit`` when those exceed it)."""
    try:
        metrics, seconds = task.lookup(instance, cand, seed, split)
    except RsiRlError as exc:
        return ExperimentResult("invalid", message=str(exc))
    if seconds > limit:
        return ExperimentResult(
            "timeout",
            seconds=limit,
            message=f"would take {seconds:.4g}s, over the {limit:g}s wall-clock limit",
        )
    metric = task.metric_for(split)
    value = metrics.get(metric)
    if value is None or not math.isfinite(value):
        return ExperimentResult("nan", seconds=seconds, message=f"metric {metric} is not finite")
    return ExperimentResult("ok", metrics, seconds=seconds, run_seconds=seconds)


__all__ = ["NoSandbox", "in_process", "lookup"]
