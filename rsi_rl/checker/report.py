"""What ``check-task`` reports: one :class:`CheckItem` per check, gathered in a
:class:`CheckReport`, and the :class:`Checker` that appends them as the checks run.

The checks themselves are :func:`rsi_rl.checker.check_task` (loading, class data, instance,
labels), :mod:`rsi_rl.checker.edits` (every edit applies and undoes) and
:mod:`rsi_rl.checker.runs` (the trial runs: baseline, noise, timing, costly corner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rsi_rl.core.errors import TaskError

Verdict = Literal["pass", "warn", "fail", "skip"]
RunEdits = Literal["none", "code", "all"]


@dataclass
class CheckItem:
    """One check: its name, verdict and a one-line detail (what to fix when it fails)."""

    name: str
    verdict: Verdict
    detail: str
    seconds: float = 0.0


@dataclass
class CheckReport:
    """All checks of one task, plus the figures the checker measured."""

    task: str
    metric: str = ""
    direction: str = ""
    trust: str = ""
    items: list[CheckItem] = field(default_factory=list)
    baseline_metric: float | None = None
    seed_metrics: dict[int, float] = field(default_factory=dict)
    noise: float | None = None
    seconds_per_experiment: float | None = None
    edit_metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not self.failures

    @property
    def failures(self) -> list[CheckItem]:
        return [i for i in self.items if i.verdict == "fail"]

    def item(self, name: str) -> CheckItem | None:
        """The check called ``name``, if it ran."""
        return next((i for i in self.items if i.name == name), None)

    def format(self) -> str:
        """The report as text: one line per check and a verdict line."""
        head = f"check-task {self.task}"
        if self.metric:
            head += f" ({self.metric}, {self.direction}; {self.trust})"
        lines = [head]
        for i in self.items:
            took = f"  [{i.seconds:.1f}s]" if i.seconds >= 0.05 else ""
            lines.append(f"  {i.verdict.upper():<5} {i.name:<12} {i.detail}{took}")
        counts = {
            v: sum(i.verdict == v for i in self.items) for v in ("fail", "warn", "pass", "skip")
        }
        verdict = "OK" if self.ok else "FAILED"
        lines.append(
            f"{verdict}: {counts['fail']} failed, {counts['warn']} warnings, {counts['pass']} passed, "
            f"{counts['skip']} skipped"
        )
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`~rsi_rl.core.errors.TaskError` naming the first failed check."""
        if self.failures:
            first = self.failures[0]
            more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            raise TaskError(f"task {self.task!r} fails check {first.name!r}: {first.detail}{more}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Checker:
    """Appends each finished check to ``report`` and hands it to ``on_item`` (live printing)."""

    def __init__(self, report: CheckReport, on_item: Callable[[CheckItem], None] | None):
        self.report = report
        self.on_item = on_item

    def add(self, name: str, verdict: Verdict, detail: str, seconds: float = 0.0) -> CheckItem:
        item = CheckItem(name, verdict, detail, seconds)
        self.report.items.append(item)
        if self.on_item is not None:
            self.on_item(item)
        return item


__all__ = ["CheckItem", "CheckReport", "Checker", "RunEdits", "Verdict"]
