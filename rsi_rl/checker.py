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

Longer than the project's ~450 lines: every check shares one report and one set of trial
runs of the task (start config, edits, costly corner), and reads best top to bottom.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rsi_rl.actions import MAX_SLOTS
from rsi_rl.core.edits import Candidate, Edit, EditSpace, start_candidate
from rsi_rl.core.errors import ConfigError, EditError, RsiRlError, TaskError
from rsi_rl.core.knob import Knob
from rsi_rl.core.registry import make_task
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.runner import ExperimentResult, Runner
from rsi_rl.exec.sandbox import SandboxLimits

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
        from dataclasses import asdict

        return asdict(self)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


class _Checker:
    def __init__(self, report: CheckReport, on_item: Callable[[CheckItem], None] | None):
        self.report = report
        self.on_item = on_item

    def add(self, name: str, verdict: Verdict, detail: str, seconds: float = 0.0) -> CheckItem:
        item = CheckItem(name, verdict, detail, seconds)
        self.report.items.append(item)
        if self.on_item is not None:
            self.on_item(item)
        return item


def _undo(space: EditSpace, edit: Edit, old: Any) -> Edit | None:
    """The edit that takes a child of ``edit`` back: the same toggle, the opposite move,
    the setting of the ``old`` option (None for a jump, which no single edit undoes)."""
    if edit.op == "toggle":
        return edit
    want = {"up": "down", "down": "up", "set": "set"}.get(edit.op)
    return next(
        (
            e
            for e in space.edits
            if e.target == edit.target and e.op == want and (want != "set" or e.value == old)
        ),
        None,
    )


def _same(a: Candidate, b: Candidate) -> bool:
    """Same source and config (numbers up to float rounding)."""
    if a.source != b.source or set(a.config) != set(b.config):
        return False
    return all(
        math.isclose(float(v), float(b.config[k]), rel_tol=1e-6)
        if isinstance(v, (int, float)) and isinstance(b.config[k], (int, float))
        else v == b.config[k]
        for k, v in a.config.items()
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('ch') else 's'}"


def _compose(n: int) -> str:
    return {0: "no patches", 1: "the patch applies"}.get(n, f"all {n} patches compose")


def _listed(names: Sequence[str], limit: int = 8) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


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
    c = _Checker(report, on_item)
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
    children = _check_edits(c, t, space, start)
    if not run:
        return report

    # ---------------------------------------------------------------- runs
    fields = dict(sandbox or {})
    fields.setdefault("timeout", float(timeout or t.default_timeout))
    limits = SandboxLimits(**fields)
    with Runner(t, limits) as runner:
        s0 = int(seeds[0])
        base = runner.run(inst, start, s0)
        metric = _metric(t, base)
        if metric is None:
            c.add(
                "baseline",
                "fail",
                f"{base.status}: {base.message or 'no metric'}" + _stderr_hint(base),
                base.seconds,
            )
            return report
        report.baseline_metric = metric
        c.add("baseline", "pass", f"{t.metric}={metric:.6g} (status ok, finite)", base.seconds)

        runner.cache.clear()
        rerun = runner.run(inst, start, s0)
        m2 = _metric(t, rerun)
        if m2 is None:
            c.add(
                "repeatable",
                "fail",
                f"the same seed {s0} failed on a rerun: {rerun.status}: {rerun.message}",
            )
        elif m2 == metric:
            c.add("repeatable", "pass", f"seed {s0} twice: identical {t.metric}", rerun.seconds)
        elif abs(m2 - metric) <= t.noise_prior:
            c.add(
                "repeatable",
                "pass",
                f"seed {s0} twice: {metric:.6g} vs {m2:.6g}, within noise_prior {t.noise_prior:g}",
                rerun.seconds,
            )
        else:
            c.add(
                "repeatable",
                "fail",
                f"seed {s0} twice: {metric:.6g} vs {m2:.6g} differ by more than noise_prior {t.noise_prior:g}; "
                "seed every random source from harness.seed() (or the seed flag)",
                rerun.seconds,
            )

        report.seed_metrics[s0] = metric
        t0 = time.monotonic()
        for s in seeds[1:]:
            r = runner.run(inst, start, int(s))
            m = _metric(t, r)
            if m is None:
                c.add("noise", "fail", f"seed {s} failed: {r.status}: {r.message}")
                break
            report.seed_metrics[int(s)] = m
        else:
            _check_noise(c, t, report, time.monotonic() - t0)

        secs = [base.seconds, rerun.seconds]
        report.seconds_per_experiment = float(np.median(secs))
        per = report.seconds_per_experiment
        detail = f"one experiment takes {per:.2f}s (timeout {limits.timeout:g}s, cpu {base.cpu_seconds:.1f}s)"
        c.add(
            "timing",
            "warn" if per > 0.8 * limits.timeout else "pass",
            detail
            + (
                "; close to the timeout: raise timeout or shorten the default run"
                if per > 0.8 * limits.timeout
                else ""
            ),
        )

        _check_costly_corner(c, t, runner, inst, start, s0, limits.timeout)

        if run_edits != "none":
            _run_edits(c, t, space, report, runner, inst, children, s0, metric, run_edits)

    if t.self_reported:
        c.add(
            "trust",
            "warn",
            "self-reported: the program computes its own metric; reports mark it so",
        )
    else:
        c.add("trust", "pass", "trusted evaluator: the parent scores submitted predictions")
    return report


def _metric(task: InnerTask, result: ExperimentResult) -> float | None:
    if result.status != "ok":
        return None
    value = result.metrics.get(task.metric)
    return float(value) if value is not None and math.isfinite(value) else None


def _stderr_hint(result: ExperimentResult) -> str:
    lines = [ln for ln in result.stderr_tail.strip().splitlines() if ln.strip()]
    if result.status == "ok" or not lines or lines[-1][:60] in result.message:
        return ""
    return f" | stderr: {lines[-1][:160]}"


def _check_labels(c: _Checker, t: InnerTask, inst: Instance) -> None:
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


def _in_range(knob: Knob, value: Any) -> bool:
    if knob.scale in ("choice", "categorical"):
        return value in knob.choices
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return (value == 0 and knob.zero_ok) or knob.low <= value <= knob.high


def _check_edits(
    c: _Checker, t: InnerTask, space: EditSpace, start: Candidate
) -> dict[str, Candidate]:
    """Apply every edit of the space to ``start`` and undo it; the children by edit name."""
    children: dict[str, Candidate] = {}
    bad: list[str] = []
    lossy: list[str] = []
    not_valid: list[str] = []
    missing = [k.key for k in t.knobs if k.key not in start.config]
    if missing:
        bad.append(f"knob keys {missing} are not keys of the start config {sorted(start.config)}")
    off = [
        f"{k.key}={start.config[k.key]!r}"
        for k in t.knobs
        if k.key in start.config and not _in_range(k, start.config[k.key])
    ]
    for edit in space.edits:
        if edit.target in missing:
            continue
        try:
            child, _ = space.apply(start, edit.name)
        except EditError as exc:
            if edit.op == "toggle":
                bad.append(f"{edit.name}: {exc}")
            else:  # at a bound, already at the jump's value, or the current option
                not_valid.append(edit.name)
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a numeric knob holding a string
            bad.append(f"{edit.name}: {type(exc).__name__}: {exc}")
            continue
        if child.hash == start.hash:
            bad.append(f"{edit.name}: changes nothing")
            continue
        children[edit.name] = child
        undo = _undo(space, edit, start.config.get(edit.target))
        if undo is None:
            continue
        try:
            back: Candidate | None = space.apply(child, undo.name)[0]
        except EditError:
            back = None
        if back is not None and _same(start, back):
            continue
        if edit.op == "toggle":
            bad.append(f"{edit.name}: toggling it twice does not restore the source")
        else:  # e.g. an integer knob rounds: 5 -> 2 -> 4
            lossy.append(edit.name)
    composed = start  # patches of one task must compose
    for p in t.patches:
        try:
            composed, _ = space.apply(composed, p.name)
        except EditError as exc:
            bad.append(f"{p.name} does not compose with the patches before it: {exc}")
            break
    note = f"; masked at the start: {_listed(not_valid)}" if not_valid else ""
    if bad:
        c.add("edits", "fail", "; ".join(bad))
    elif lossy or off:
        problems = []
        if off:
            problems.append(f"start values outside their knob's range or choices: {', '.join(off)}")
        if lossy:
            problems.append(f"the opposite edit does not undo {_listed(lossy)} (rounding)")
        c.add("edits", "warn", "; ".join(problems) + f"; the rest apply and undo{note}")
    else:
        c.add(
            "edits",
            "pass",
            f"{len(children)} of {len(space)} edits apply to the start (moves, settings and "
            f"toggles undone by their opposites); {_compose(len(t.patches))}{note}",
        )
    return children


#: knob roles whose largest value makes one experiment cost the most
COSTLY_ROLES: frozenset[str] = frozenset({"width", "depth", "duration", "batch"})


def costly_corner(task: InnerTask, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every cost-driving knob (a role in :data:`COSTLY_ROLES`, numeric or
    ordered) at the largest value an agent can reach from it: the slowest experiment a
    search may ask for."""
    out = dict(config)
    for knob in task.knobs:
        if knob.role in COSTLY_ROLES and not knob.categorical and knob.key in out:
            out[knob.key] = knob.reachable(out[knob.key])[-1]
    return out


def _check_costly_corner(
    c: _Checker,
    t: InnerTask,
    runner: Runner,
    inst: Instance,
    start: Candidate,
    seed: int,
    timeout: float,
) -> None:
    """Time the most expensive corner of the space; warn within 2x of the timeout."""
    corner = costly_corner(t, start.config)
    if corner == start.config:
        roles = "/".join(sorted(COSTLY_ROLES))
        c.add("costly", "skip", f"no {roles} knob to push to its largest value")
        return
    changed = ", ".join(f"{k}={v}" for k, v in corner.items() if start.config.get(k) != v)
    r = runner.run(inst, start_candidate(t, corner), seed)
    if r.status == "timeout":
        c.add(
            "costly",
            "warn",
            f"the largest config ({changed}) timed out at {timeout:g}s: a search that reaches "
            "it wastes a whole timeout; raise sandbox.timeout or lower those knobs' bounds",
            r.seconds,
        )
        return
    verdict: Verdict = "warn" if r.seconds > timeout / 2 else "pass"
    note = (
        f"; within 2x of the {timeout:g}s timeout: raise sandbox.timeout or lower those bounds"
        if verdict == "warn"
        else f" (timeout {timeout:g}s)"
    )
    status = "" if r.status == "ok" else f", status {r.status}"
    c.add(
        "costly",
        verdict,
        f"the largest config ({changed}) takes {r.seconds:.2f}s{status}{note}",
        r.seconds,
    )


def _check_noise(c: _Checker, t: InnerTask, report: CheckReport, seconds: float) -> None:
    """Compare the measured seed noise with the task's ``noise_prior`` (2x either way warns).

    The keep rule's threshold is a multiple of the noise: a prior that is too small keeps
    noise as progress, one that is too large reverts real improvements.
    """
    vals = list(report.seed_metrics.values())
    if len(vals) < 2:
        c.add("noise", "skip", "one seed: pass seeds=(0, 1, 2) to estimate the noise")
        return
    sd = float(np.std(vals, ddof=1))
    report.noise = sd
    detail = f"std of {t.metric} over {len(vals)} seeds = {sd:.4g} (noise_prior {t.noise_prior:g})"
    verdict = noise_prior_verdict(sd, t.noise_prior)
    if verdict:
        c.add("noise", "warn", f"{detail}; {verdict}", seconds)
    else:
        c.add("noise", "pass", detail, seconds)


def noise_prior_verdict(measured: float, prior: float, factor: float = 2.0) -> str | None:
    """What to change when ``prior`` is off the ``measured`` seed std by more than ``factor``.

    Returns None when the prior is within the factor either way (or the metric did not vary
    across seeds, where any small prior is plausible).

    Example:
        >>> noise_prior_verdict(0.05, 0.01)
        'noise_prior understates it (5x): set noise_prior ~ 0.05'
    """
    if measured <= 0:
        return None
    ratio = measured / prior
    if ratio > factor:
        return f"noise_prior understates it ({ratio:.2g}x): set noise_prior ~ {measured:.2g}"
    if ratio < 1 / factor:
        return (
            f"noise_prior overstates it ({1 / ratio:.2g}x), so the keep rule reverts real "
            f"improvements: set noise_prior ~ {measured:.2g}"
        )
    return None


def _run_edits(
    c: _Checker,
    t: InnerTask,
    space: EditSpace,
    report: CheckReport,
    runner: Runner,
    inst: Instance,
    children: dict[str, Candidate],
    seed: int,
    base: float,
    which: RunEdits,
) -> None:
    t0 = time.monotonic()
    failed = []
    deltas = []
    for name, child in children.items():
        if which == "code" and space.get(name).op not in ("toggle", "set"):
            continue  # ``code``: patches and the options of categorical knobs
        r = runner.run(inst, child, seed)
        m = _metric(t, r)
        report.edit_metrics[name] = m
        if m is None:
            failed.append(f"{name} ({r.status}: {r.message[:100]})")
        else:
            deltas.append(f"{name} {m - base:+.3g}")
    n = len(report.edit_metrics)
    if failed:
        c.add(
            "edit runs",
            "fail",
            f"{len(failed)} of {n} edited programs fail: " + "; ".join(failed),
            time.monotonic() - t0,
        )
    else:
        c.add(
            "edit runs",
            "pass",
            f"{n} edited programs run; change of {t.metric}: " + ", ".join(deltas),
            time.monotonic() - t0,
        )


__all__ = [
    "COSTLY_ROLES",
    "CheckItem",
    "CheckReport",
    "check_task",
    "costly_corner",
    "noise_prior_verdict",
]
