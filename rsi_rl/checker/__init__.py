"""The task checker: does an inner task work, and can a search trust what it measures?

:func:`check_task` is to inner tasks what Gymnasium's ``check_env`` is to environments.
It loads the task, draws an instance twice (it must be deterministic), checks that the
evaluation labels stay out of the sandbox, applies and reverts every edit of the task's
edit space, runs the baseline and verifies that its metric parses and is finite, reruns it on the same seed
(repeatable within the task's stated noise), on further seeds (a noise estimate), times
one experiment and the costliest corner of the space, and optionally trains every code
edit and every option of a categorical knob once. It returns a
:class:`CheckReport`; ``rsi-rl check-task task=...`` prints it and exits with status 1
when something fails.

Example:
    >>> from rsi_rl.checker import check_task
    >>> report = check_task("digits_mlp", seeds=(0, 1))  # doctest: +SKIP
    >>> print(report.format())  # doctest: +SKIP
    >>> report.raise_for_failures()  # doctest: +SKIP

The checks are split by what they need: this module loads the task and checks its class
data, instance and labels; :mod:`rsi_rl.checker.edits` applies and undoes every edit;
:mod:`rsi_rl.checker.runs` makes the trial runs; :mod:`rsi_rl.checker.report` holds the
report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rsi_rl.actions import MAX_SLOTS
from rsi_rl.checker.edits import check_edits
from rsi_rl.checker.report import Checker, CheckItem, CheckReport, RunEdits
from rsi_rl.checker.runs import COSTLY_ROLES, check_runs, costly_corner, noise_prior_verdict
from rsi_rl.core.edits import EditSpace, start_candidate
from rsi_rl.core.errors import ConfigError, RsiRlError, TaskError
from rsi_rl.core.registry import make_task
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.sandbox import SandboxLimits


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('ch') else 's'}"


def check_task(
    task: Any,
    instance: int | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    run_edits: RunEdits = "code",
    config: dict[str, Any] | None = None,
    timeout: float | None = None,
    sandbox: dict[str, Any] | None = None,
    on_item: Callable[[CheckItem], None] | None = None,
    run: bool = True,
) -> CheckReport:
    """Check an inner task end to end; returns a :class:`CheckReport` (never raises for
    a broken task: a failure is a ``fail`` item).

    Args:
        task: a task name, class, instance, or ``_target_`` config.
        instance: the instance seed to check (default: the first held-out one).
        seeds: experiment seeds: the first runs the baseline twice (repeatability), all of
            them estimate the noise (at least two for an estimate).
        run_edits: also train every patch and every option of a categorical knob
            (``code``), every edit that applies to the start (``all``), or none.
        config: overrides of the start config (e.g. fewer steps to check quickly).
        timeout: wall-clock seconds per experiment (default: the task's).
        sandbox: further :class:`~rsi_rl.exec.sandbox.SandboxLimits` fields.
        on_item: called with each check as it completes (for live printing).
        run: False stops after the static checks (load, instance, labels, edits).
    """
    if isinstance(task, str):
        name = task
    elif hasattr(task, "get"):
        name = str(task.get("name") or task.get("_target_"))
    else:
        name = str(getattr(task, "name", "") or type(task).__name__)
    report = CheckReport(task=str(name))
    c = Checker(report, on_item)
    if run_edits not in ("none", "code", "all"):
        raise ConfigError(f"run_edits must be none, code or all, not {run_edits!r}")
    if not seeds:
        raise ConfigError("seeds must name at least one experiment seed")

    # ---------------------------------------------------------------- load
    t0 = time.monotonic()
    try:
        t = make_task(task)
    except Exception as exc:  # noqa: BLE001 - a broken task is a failed check, not a crash
        c.add("load", "fail", str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return report
    report.task, report.metric, report.direction = t.name, t.metric, t.direction
    report.trust = "self-reported" if t.self_reported else "trusted evaluator"
    c.add("load", "pass", f"{type(t).__module__}.{type(t).__name__}", time.monotonic() - t0)

    problems = []
    if t.direction not in ("minimize", "maximize"):
        problems.append(f"direction must be minimize or maximize, not {t.direction!r}")
    if not t.metric:
        problems.append("metric is empty")
    if not t.noise_prior > 0:
        problems.append(f"noise_prior must be > 0, not {t.noise_prior}")
    if t.default_timeout <= 0:
        problems.append(f"default_timeout must be > 0, not {t.default_timeout}")
    space: EditSpace | None = None
    try:
        space = t.edit_space()
    except TaskError as exc:
        problems.append(str(exc))
    if space is not None and len(space) > MAX_SLOTS:
        problems.append(
            f"{len(space)} edits do not fit the {MAX_SLOTS} edit slots of the env: "
            "declare fewer knobs, categorical options or patches"
        )
    if problems:
        c.add("class data", "fail", "; ".join(problems))
    else:
        n = len(space or ())
        c.add(
            "class data",
            "pass" if n else "warn",
            f"{_count(n, 'edit')} ({_count(len(t.knobs), 'knob')}, "
            f"{_count(len(t.patches), 'patch')}) take{'s' if n == 1 else ''} {n} of "
            f"{MAX_SLOTS} edit slots"
            if n
            else "no edits: an agent can only reevaluate and stop",
        )
    if space is None:
        return report

    # ---------------------------------------------------------------- instance
    seed = t.heldout_seeds[0] if instance is None else int(instance)
    t0 = time.monotonic()
    try:
        inst = t.make_instance(seed)
        again = t.make_instance(seed)
    except Exception as exc:  # noqa: BLE001
        c.add("instance", "fail", f"make_instance({seed}) raised {type(exc).__name__}: {exc}")
        return report
    if _digest(inst.data) != _digest(again.data) or inst.start_config != again.start_config:
        c.add(
            "instance",
            "fail",
            f"make_instance({seed}) is not deterministic in its seed (data or start config differ)",
        )
    else:
        c.add(
            "instance",
            "pass",
            f"instance {seed}: {len(inst.data)} arrays, start config {inst.start_config}",
            time.monotonic() - t0,
        )
    if config:
        unknown = sorted(set(config) - set(inst.start_config))
        if unknown:
            raise ConfigError(
                f"config overrides {unknown} are not keys of the start config {sorted(inst.start_config)}"
            )
        inst = dataclasses.replace(inst, start_config={**inst.start_config, **config})

    # ---------------------------------------------------------------- labels hidden
    _check_labels(c, t, inst)

    # ---------------------------------------------------------------- edits apply/revert
    try:
        start = start_candidate(t, inst.start_config)
    except RsiRlError as exc:
        c.add("source", "fail", str(exc))
        return report
    if t.entry not in start.source:
        c.add(
            "source",
            "fail",
            f"entry {t.entry!r} is not among the program files {sorted(start.source)}",
        )
        return report
    c.add("source", "pass", f"{len(start.source)} files, entry {t.entry}")
    children = check_edits(c, t, space, start)
    if not run:
        return report

    # ---------------------------------------------------------------- runs
    fields = dict(sandbox or {})
    fields.setdefault("timeout", float(timeout or t.default_timeout))
    check_runs(c, t, space, inst, start, children, seeds, SandboxLimits(**fields), run_edits)

    if t.self_reported:
        c.add(
            "trust",
            "warn",
            "self-reported: the program computes its own metric; reports mark it so",
        )
    else:
        c.add("trust", "pass", "trusted evaluator: the parent scores submitted predictions")
    return report


def _check_labels(c: Checker, t: InnerTask, inst: Instance) -> None:
    if t.self_reported:
        c.add("labels", "skip", "self-reported task: the program holds its own data")
        return
    if t.in_process:
        c.add("labels", "skip", "in-process task: no program runs, nothing enters a sandbox")
        return
    leaks = []
    for split in ("val", "test"):
        y = inst.data.get(f"y_{split}")
        if y is None:
            continue
        try:
            inputs = t.child_inputs(inst, split)
        except Exception as exc:  # noqa: BLE001
            c.add(
                "labels",
                "fail",
                f"child_inputs(instance, {split!r}) raised {type(exc).__name__}: {exc}",
            )
            return
        for key, arr in inputs.items():
            a = np.asarray(arr)
            if key == f"y_{split}" or (a.shape == y.shape and a.size > 1 and np.array_equal(a, y)):
                leaks.append(f"{split} labels in input {key!r}")
    if leaks:
        c.add(
            "labels",
            "fail",
            "child_inputs leaks " + ", ".join(leaks) + "; pass only unlabelled eval inputs",
        )
    elif not any(f"y_{s}" in inst.data for s in ("val", "test")):
        c.add("labels", "warn", "the instance has no y_val/y_test arrays to check against")
    else:
        c.add("labels", "pass", "no validation or test labels among the sandbox inputs")


__all__ = [
    "COSTLY_ROLES",
    "CheckItem",
    "CheckReport",
    "RunEdits",
    "check_task",
    "costly_corner",
    "noise_prior_verdict",
]
