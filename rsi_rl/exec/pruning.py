"""Pruning: stop a run early when its own intermediate reports say it is clearly worse.

A training program may call :func:`rsi_rl.harness.report` (``step``, ``value``) as it
trains, e.g. the loss on a held-in slice of its training data after each epoch; a script
task gets the same reports from its output lines (``report_regex``). The values are the
program's own and untrusted: they are used only to stop a run early, never as its metric.

With ``env.pruner`` set, every campaign keeps one in-memory Optuna study
(:class:`PruningStudy`) in which each of its experiments on the evaluation seed is a
trial. While a run trains, the runner polls its report file about every
``poll_seconds``, passes the new values to the trial (``trial.report(value, step)``) and
asks Optuna's pruner (``trial.should_prune()``); a run the pruner stops is killed, charged
the seconds it used, and recorded with status ``pruned`` (never kept, never cached).

Pruners (:data:`PRUNERS`), with the settings they use:

- ``median``: :class:`optuna.pruners.MedianPruner` (``startup_trials``, ``warmup_steps``):
  stop a run whose best value so far is worse than the median of the finished runs at
  the same step.
- ``successive_halving``: :class:`optuna.pruners.SuccessiveHalvingPruner`
  (``warmup_steps`` is the minimum resource, ``reduction_factor``): at each rung, keep the
  best ``1 / reduction_factor`` of the runs that reached it.
- ``hyperband``: :class:`optuna.pruners.HyperbandPruner` (``warmup_steps`` as minimum
  resource, ``reduction_factor``): several successive-halving brackets.

A run that reports how many steps it will make in all (``total``) is also judged two
more ways, whatever the pruner:

- *Forecast to time out*: once its reports have come in for at least
  :data:`FORECAST_MIN_SECONDS`, a run whose pace says it would need more than
  :data:`FORECAST_MARGIN` times its time limit to reach ``total`` is stopped now (a
  timed-out run is never kept, so the rest of its limit would buy nothing). The pace is
  measured from its first report, so start-up is not counted against it.
- *A share of its own length first* (``median`` only, ``warmup_fraction``): the pruner
  is not asked before a run has made that share of its ``total``, so a long run with a low
  learning rate or a warm-up schedule is not judged on its first steps against short
  runs.

The report file is read the way :mod:`rsi_rl.exec.scratch_io` reads every scratch file: held
by the directory's descriptor, no link followed, no FIFO or device opened, only its last
:data:`REPORT_TAIL` bytes; a file that breaks these rules ends the watch of that run (it
trains to the end and is judged as usual), and lines that are not a report are skipped.

Optuna is imported only when a pruner is configured.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from rsi_rl.core.errors import ConfigError, RsiRlError
from rsi_rl.exec.scratch_io import ScratchDir
from rsi_rl.harness import REPORTS_FILE

if TYPE_CHECKING:
    import optuna

#: the ``env.pruner`` names
PRUNERS = ("median", "successive_halving", "hyperband")
#: bytes of the report file read per poll (its tail)
REPORT_TAIL = 64 << 10
#: reports of one run passed to its trial at most (later ones are ignored)
MAX_REPORTS = 10_000
#: the largest step accepted
MAX_STEP = 2**31 - 1
#: a run forecast to need more than this many times its time limit is stopped
FORECAST_MARGIN = 1.25
#: seconds of reports a run's pace is measured over before it may be forecast (a shorter
#: window reads the 0.2 s polling and a busy machine's jitter as pace)
FORECAST_MIN_SECONDS = 3.0


class Report(NamedTuple):
    """One line of the report file: the program's ``value`` at ``step`` of ``total``
    (None: the program did not say how many steps it makes in all)."""

    step: int
    value: float
    total: int | None = None


def _whole(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"env.{key} must be a whole number >= {low}, got {value!r}")
    return value


@dataclass(frozen=True)
class PrunerSettings:
    """``env.pruner`` and its settings (see the module docstring for which pruner uses
    which).

    Attributes:
        name: one of :data:`PRUNERS`.
        warmup_steps: ``median``: steps before any run is stopped; ``successive_halving``
            and ``hyperband``: the minimum resource (first rung), 0 for Optuna's default.
        startup_trials: ``median``: runs that finish before any is stopped (the start
            candidate's run counts).
        reduction_factor: ``successive_halving`` and ``hyperband``: 1 in this many runs
            goes on at each rung.
        poll_seconds: how often the runner reads a running program's reports.
        warmup_fraction: ``median``: the share of its own ``total`` a run makes before
            the pruner is asked about it (runs that report no ``total``: not used).

    Raises:
        ConfigError: a bad value, naming the ``env.pruner*`` key to fix.
    """

    name: str
    warmup_steps: int = 0
    startup_trials: int = 5
    reduction_factor: int = 3
    poll_seconds: float = 0.2
    warmup_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.name not in PRUNERS:
            raise ConfigError(
                f"env.pruner={self.name!r} is not a pruner; give null or one of "
                f"{', '.join(PRUNERS)}"
            )
        _whole("pruner_warmup_steps", self.warmup_steps, 0)
        _whole("pruner_startup_trials", self.startup_trials, 0)
        _whole("pruner_reduction_factor", self.reduction_factor, 2)
        frac = self.warmup_fraction
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac < 1:
            raise ConfigError(f"env.pruner_warmup_fraction must be in [0, 1), got {frac!r}")
        poll = self.poll_seconds
        if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll < 3600:
            raise ConfigError(f"pruner poll_seconds must be in (0, 3600) seconds, got {poll!r}")

    def make(self) -> optuna.pruners.BasePruner:
        """The Optuna pruner these settings describe."""
        import optuna

        if self.name == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_steps
            )
        min_resource: int | str = self.warmup_steps if self.warmup_steps > 0 else "auto"
        if self.name == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(
                min_resource=min_resource, reduction_factor=self.reduction_factor
            )
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, self.warmup_steps), reduction_factor=self.reduction_factor
        )


def pruner_settings(
    pruner: str | PrunerSettings | None,
    warmup_steps: int = 0,
    startup_trials: int = 5,
    reduction_factor: int = 3,
    warmup_fraction: float = 0.25,
) -> PrunerSettings | None:
    """``env.pruner`` and its settings as :class:`PrunerSettings` (None: no pruning; the
    names ``none`` and ``null`` count as None).

    Raises:
        ConfigError: an unknown pruner or a bad setting.
    """
    if isinstance(pruner, PrunerSettings):
        return pruner
    value = getattr(pruner, "value", pruner)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        return None
    return PrunerSettings(
        str(value), warmup_steps, startup_trials, reduction_factor, warmup_fraction=warmup_fraction
    )


def parse_reports(data: bytes, cut: bool) -> list[Report]:
    """The reports in ``data``, lines of the report file.

    Only whole lines count: the last one without its newline is still being written, and
    the first one is partial when the data is a ``cut`` tail. A line that is not a JSON
    object with a whole-number ``step`` (0 to :data:`MAX_STEP`) and a numeric ``value``
    is skipped. A NaN value reads as infinity (the worst a report can be). A ``total``
    that is not a whole number from 1 to :data:`MAX_STEP` reads as None.
    """
    lines = data.split(b"\n")[:-1]  # the last piece has no newline (yet)
    if cut:
        lines = lines[1:]
    out: list[Report] = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        step, value = row.get("step"), row.get("value")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        value = float(value)
        total = row.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or not 1 <= total <= MAX_STEP:
            total = None
        out.append(Report(step, math.inf if math.isnan(value) else value, total))
    return out


class PruningStudy:
    """One campaign's in-memory Optuna study: each watched run is a trial.

    Args:
        settings: the pruner and its settings.
        direction: ``minimize`` (reports are losses, the default) or ``maximize``: the
            task's ``report_direction``.

    Thread-safe: runs of one study may be watched from several threads.
    """

    def __init__(self, settings: PrunerSettings, direction: str = "minimize"):
        import optuna

        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"report_direction must be minimize or maximize, got {direction!r}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.settings = settings
        self.direction = direction
        maximize = direction == "maximize"
        self.study = optuna.create_study(
            direction="maximize" if maximize else "minimize",
            pruner=settings.make(),
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        self.lock = threading.Lock()
        #: the clock runs' paces are measured on (a test may replace it)
        self.clock: Callable[[], float] = time.monotonic

    @property
    def poll_seconds(self) -> float:
        return float(self.settings.poll_seconds)

    def watch(self, scratch: ScratchDir, prune: bool = True) -> RunWatch:
        """A new trial for the run whose scratch directory is ``scratch``; ``prune=False``
        records its reports without ever stopping it (the start candidate's run)."""
        with self.lock:
            trial = self.study.ask()
        return RunWatch(self, trial, scratch, prune)


class RunWatch:
    """One run's trial: :meth:`poll` while it runs, :meth:`finish` once it ended."""

    def __init__(self, study: PruningStudy, trial: optuna.Trial, scratch: ScratchDir, prune: bool):
        self.study, self.trial, self.scratch, self.prune = study, trial, scratch, prune
        self.last: tuple[int, float] | None = None
        self.n_reports = 0
        #: the steps the run says it makes in all (its latest report's ``total``)
        self.total: int | None = None
        #: the run's time limit in seconds, and when it started (set by :meth:`begin`)
        self.limit: float | None = None
        self.started = 0.0
        #: (seconds since the start, step) when its first reports were read
        self.first_seen: tuple[float, int] | None = None
        #: why the run was forecast to time out, None while it was not
        self.forecast: str | None = None
        #: why the watch stopped reading (an unsafe report file), None while it reads
        self.ignored: str | None = None
        self.pruned = False
        self._done = False

    def begin(self, limit: float | None = None) -> dict[str, Any]:
        """Make the run's empty report file and return the sandbox's watch arguments
        (``watch``, ``watch_every``) for :meth:`~rsi_rl.exec.sandbox.Sandbox.run`. The
        file is made by the parent: a hardened run's tmpfs shares it with the host.
        ``limit``: the run's time limit in seconds (None: never forecast)."""
        self.scratch.write_text(REPORTS_FILE, "")
        self.limit = None if limit is None else float(limit)
        self.started = self.study.clock()
        return {"watch": self.poll, "watch_every": self.study.poll_seconds}

    def _read(self) -> bool:
        """Pass the run's new reports (steps above the last one passed) to its trial and
        ask the pruner after each (successive halving records a run's rung values only
        then); True if it said stop at any of them."""
        if self.ignored is not None:
            return False
        try:
            data = self.scratch.read_tail(REPORTS_FILE, REPORT_TAIL)
        except (RsiRlError, OSError, ValueError) as exc:
            self.ignored = str(exc)
            return False
        if data is None:
            return False
        stop = False
        before = self.n_reports
        with self.study.lock:
            for step, value, total in parse_reports(data, cut=len(data) >= REPORT_TAIL):
                if self.n_reports >= MAX_REPORTS or stop:
                    break
                if self.last is not None and step <= self.last[0]:
                    continue
                self.trial.report(value, step)
                self.last = (step, value)
                self.n_reports += 1
                self.total = total
                if self._judged_at(step):
                    stop = bool(self.trial.should_prune())
        if self.n_reports > before and self.last is not None:
            now = self.study.clock() - self.started
            if self.first_seen is None:
                self.first_seen = (now, self.last[0])
            elif not stop:
                stop = self._forecast(now)
        return stop

    def _judged_at(self, step: int) -> bool:
        """Whether the pruner is asked at ``step``: always, except for the ``median``
        pruner before a run with a ``total`` made its ``warmup_fraction`` of it."""
        settings = self.study.settings
        if settings.name != "median" or self.total is None:
            return True
        return step >= settings.warmup_fraction * self.total

    def _forecast(self, now: float) -> bool:
        """True (and :attr:`forecast` says why) when the run's pace since its first
        report says it would need more than :data:`FORECAST_MARGIN` times its limit to
        reach its ``total``."""
        if self.limit is None or self.total is None or self.first_seen is None:
            return False
        assert self.last is not None
        t0, s0 = self.first_seen
        step = self.last[0]
        if now - t0 < FORECAST_MIN_SECONDS or step <= s0 or step >= self.total:
            return False
        needs = now + (self.total - step) * (now - t0) / (step - s0)
        if needs <= FORECAST_MARGIN * self.limit:
            return False
        self.forecast = (
            f"stopped early: at step {step} of {self.total} after {now:.1f} s it would need "
            f"about {needs:.0f} s, past its {self.limit:g} s limit"
        )
        return True

    def poll(self) -> bool:
        """Read the new reports; True when the pruner stops the run (never for a watch
        made with ``prune=False``). Never raises."""
        try:
            stop = self._read()
        except Exception as exc:  # noqa: BLE001 - a watch must never break the run's judging
            self.ignored = f"pruning failed: {exc}"
            return False
        self.pruned = self.pruned or (stop and self.prune)
        return self.pruned

    @property
    def message(self) -> str:
        """One line for the record of a pruned run."""
        if self.forecast is not None:
            return self.forecast
        name = self.study.settings.name
        if self.last is None:
            return f"stopped early by the {name} pruner"
        step, value = self.last
        return f"stopped early by the {name} pruner at step {step} (reported {value:.4g})"

    def finish(self, status: str) -> None:
        """Close the trial: pruned, complete (an ``ok`` run with reports, or a
        ``timeout``: the reports it made before the limit are real, only incomplete; its
        last report is the trial's value) or failed (the rest: a crashed, ``nan`` or
        ``oom`` run's reports compare with no run)."""
        if self._done:
            return
        self._done = True
        import optuna

        state = optuna.trial.TrialState
        counts = status in ("ok", "timeout")
        if counts:
            try:
                self._read()  # the reports written after the last poll (the run has ended)
            except Exception as exc:  # noqa: BLE001 - reports are a hint, never an error
                self.ignored = f"pruning failed: {exc}"
        with self.study.lock:
            try:
                if status == "pruned":
                    self.study.study.tell(self.trial, state=state.PRUNED)
                elif counts and self.last is not None and math.isfinite(self.last[1]):
                    self.study.study.tell(self.trial, self.last[1])
                else:
                    self.study.study.tell(self.trial, state=state.FAIL)
            except Exception as exc:  # noqa: BLE001 - never fail the run it watched
                self.ignored = f"pruning failed: {exc}"


__all__ = [
    "FORECAST_MARGIN",
    "FORECAST_MIN_SECONDS",
    "MAX_REPORTS",
    "PRUNERS",
    "REPORT_TAIL",
    "Report",
    "PrunerSettings",
    "PruningStudy",
    "RunWatch",
    "parse_reports",
    "pruner_settings",
]
