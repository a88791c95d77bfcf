"""A reusable pytest test case for inner tasks (as ``optuna.testing`` ships for samplers).

Subclass :class:`InnerTaskTestCase` in your own test suite, name the task, and pytest
runs :func:`rsi_rl.checker.check_task` on it once per class and turns each check into
a test::

    # tests/test_my_task.py
    from rsi_rl.testing import InnerTaskTestCase

    class TestMyTask(InnerTaskTestCase):
        task = "my_task"                 # a name, class, instance or {_target_: ...} config
        config = {"epochs": 2}           # start-config overrides that keep runs short
        seeds = (0, 1)

A failing test prints the checker's one-line diagnosis (what to fix). Set
``run_edits = "code"`` to also train every code edit once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from rsi_rl.checker import CheckReport, RunEdits, check_task


class InnerTaskTestCase:
    """Base class of task test suites; pytest collects its subclasses named ``Test*``."""

    #: the task under test: name, class, instance or ``_target_`` config
    task: ClassVar[Any] = None
    #: start-config overrides that make each experiment cheap
    config: ClassVar[dict[str, Any]] = {}
    #: experiment seeds (the first runs twice; two or more estimate the noise)
    seeds: ClassVar[tuple[int, ...]] = (0, 1)
    #: also train every code edit (``code``) or every edit (``all``) once
    run_edits: ClassVar[RunEdits] = "none"
    #: the instance seed to check (default: the task's first held-out instance)
    instance: ClassVar[int | None] = None
    #: wall-clock seconds per experiment (default: the task's)
    timeout: ClassVar[float | None] = None

    @pytest.fixture(scope="class")
    @classmethod
    def check_report(cls) -> CheckReport:
        """The checker's report, computed once per test class."""
        if cls.task is None:
            pytest.skip("set the class attribute `task`")
        return check_task(
            cls.task,
            instance=cls.instance,
            seeds=cls.seeds,
            run_edits=cls.run_edits,
            config=dict(cls.config) or None,
            timeout=cls.timeout,
        )

    def _assert(
        self, report: CheckReport, name: str, allow: tuple[str, ...] = ("pass", "warn", "skip")
    ) -> None:
        item = report.item(name)
        if item is None:  # an earlier check failed and stopped the checker
            failed = report.failures[0] if report.failures else None
            pytest.fail(
                f"check {name!r} did not run"
                + (f"; {failed.name} failed: {failed.detail}" if failed else "")
            )
        assert item.verdict in allow, f"{name}: {item.detail}"

    def test_loads(self, check_report: CheckReport) -> None:
        self._assert(check_report, "load")
        self._assert(check_report, "class data")

    def test_instance_is_deterministic(self, check_report: CheckReport) -> None:
        self._assert(check_report, "instance")

    def test_labels_stay_out_of_the_sandbox(self, check_report: CheckReport) -> None:
        self._assert(check_report, "labels")

    def test_edits_apply_and_revert(self, check_report: CheckReport) -> None:
        self._assert(check_report, "source")
        self._assert(check_report, "edits")

    def test_baseline_metric_is_finite(self, check_report: CheckReport) -> None:
        self._assert(check_report, "baseline")

    def test_seeding_is_repeatable(self, check_report: CheckReport) -> None:
        self._assert(check_report, "repeatable")

    def test_noise_is_estimated(self, check_report: CheckReport) -> None:
        self._assert(check_report, "noise")

    def test_no_check_fails(self, check_report: CheckReport) -> None:
        assert check_report.ok, check_report.format()


__all__ = ["InnerTaskTestCase"]
