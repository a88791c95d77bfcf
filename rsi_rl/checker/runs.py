"""``check-task``'s trial runs: the baseline (its metric parses and is finite), a rerun on
the same seed (repeatable within the task's noise prior), further seeds (a noise
estimate), the time of one experiment and of the costliest corner of the space, and
optionally one run of each code edit.

An in-process task (:attr:`~rsi_rl.core.task.InnerTask.in_process`: a table or a synthetic
landscape) trains nothing: its results carry the seconds a search is *charged* for them,
simulated by the lookup, so the timing lines say "is charged" rather than "takes", and
the seconds shown beside each check are the lookup's own wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rsi_rl.checker.report import Checker, CheckReport, RunEdits, Verdict
from rsi_rl.core.edits import Candidate, EditSpace, start_candidate
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits

#: knob roles whose largest value makes one experiment cost the most
COSTLY_ROLES: frozenset[str] = frozenset({"width", "depth", "duration", "batch"})


def check_runs(
    c: Checker,
    t: InnerTask,
    space: EditSpace,
    inst: Instance,
    start: Candidate,
    children: dict[str, Candidate],
    seeds: Sequence[int],
    limits: SandboxLimits,
    run_edits: RunEdits,
) -> None:
    """Run the start candidate (and the edits ``run_edits`` names) and add the checks."""
    report = c.report
    with Runner(t, limits) as runner:
        s0 = int(seeds[0])
        base, took = _timed(runner, t, inst, start, s0)
        metric = _metric(t, base)
        if metric is None:
            why = f"{base.status}: {base.message or 'no metric'}" + _stderr_hint(base)
            c.add("baseline", "fail", why, took)
            return
        report.baseline_metric = metric
        c.add("baseline", "pass", f"{t.metric}={metric:.6g} (status ok, finite)", took)

        runner.cache.clear()
        rerun, took = _timed(runner, t, inst, start, s0)
        _check_repeatable(c, t, s0, metric, rerun, took)

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

        _check_timing(c, t, report, base, rerun, limits.timeout)
        _check_costly_corner(c, t, runner, inst, start, s0, limits.timeout)
        if run_edits != "none":
            _run_edits(c, t, space, report, runner, inst, children, s0, metric, run_edits)


def _timed(
    runner: Runner, t: InnerTask, inst: Instance, cand: Candidate, seed: int
) -> tuple[ExperimentResult, float]:
    """One run and the seconds its check shows: the run's own, or for an in-process task
    (whose result carries the seconds it is charged) the lookup's wall clock."""
    t0 = time.monotonic()
    result = runner.run(inst, cand, seed)
    return result, time.monotonic() - t0 if t.in_process else result.seconds


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


def _check_repeatable(
    c: Checker, t: InnerTask, seed: int, metric: float, rerun: ExperimentResult, took: float
) -> None:
    """The start candidate's rerun on ``seed`` matches ``metric`` within the noise prior."""
    m2 = _metric(t, rerun)
    if m2 is None:
        failed = f"the same seed {seed} failed on a rerun: {rerun.status}: {rerun.message}"
        c.add("repeatable", "fail", failed)
    elif m2 == metric:
        c.add("repeatable", "pass", f"seed {seed} twice: identical {t.metric}", took)
    elif abs(m2 - metric) <= t.noise_prior:
        c.add(
            "repeatable",
            "pass",
            f"seed {seed} twice: {metric:.6g} vs {m2:.6g}, within noise_prior {t.noise_prior:g}",
            took,
        )
    else:
        c.add(
            "repeatable",
            "fail",
            f"seed {seed} twice: {metric:.6g} vs {m2:.6g} differ by more than noise_prior "
            f"{t.noise_prior:g}; seed every random source from harness.seed() (or the seed flag)",
            took,
        )


def _check_noise(c: Checker, t: InnerTask, report: CheckReport, seconds: float) -> None:
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


def _check_timing(
    c: Checker,
    t: InnerTask,
    report: CheckReport,
    base: ExperimentResult,
    rerun: ExperimentResult,
    timeout: float,
) -> None:
    """The median seconds of the baseline and its rerun; warn within 80% of the timeout."""
    per = report.seconds_per_experiment = float(np.median([base.seconds, rerun.seconds]))
    if t.in_process:
        detail = (
            f"one experiment is charged {per:.2f}s (simulated by an in-process lookup, "
            f"no program runs; timeout {timeout:g}s)"
        )
    else:
        detail = (
            f"one experiment takes {per:.2f}s (timeout {timeout:g}s, cpu {base.cpu_seconds:.1f}s)"
        )
    if per > 0.8 * timeout:
        detail += "; close to the timeout: raise timeout or shorten the default run"
    c.add("timing", "warn" if per > 0.8 * timeout else "pass", detail)


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
    c: Checker,
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
    r, took = _timed(runner, t, inst, start_candidate(t, corner), seed)
    if r.status == "timeout":
        over = (
            f"would be charged more than the {timeout:g}s timeout"
            if t.in_process
            else f"timed out at {timeout:g}s"
        )
        c.add(
            "costly",
            "warn",
            f"the largest config ({changed}) {over}: a search that reaches "
            "it wastes a whole timeout; raise sandbox.timeout or lower those knobs' bounds",
            took,
        )
        return
    verdict: Verdict = "warn" if r.seconds > timeout / 2 else "pass"
    note = (
        f"; within 2x of the {timeout:g}s timeout: raise sandbox.timeout or lower those bounds"
        if verdict == "warn"
        else f" (timeout {timeout:g}s)"
    )
    status = "" if r.status == "ok" else f", status {r.status}"
    takes = (
        f"is charged {r.seconds:.2f}s (simulated)" if t.in_process else f"takes {r.seconds:.2f}s"
    )
    c.add("costly", verdict, f"the largest config ({changed}) {takes}{status}{note}", took)


def _run_edits(
    c: Checker,
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


__all__ = ["COSTLY_ROLES", "check_runs", "costly_corner", "noise_prior_verdict"]
