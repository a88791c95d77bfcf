"""Judging a finished run, in the trusted parent: its status, its files, its metric.

:func:`judge` turns what the sandbox observed of a run (a
:class:`~rsi_rl.exec.sandbox.ProcessResult`) and the files the program left in its scratch
directory into an :class:`~rsi_rl.exec.result.ExperimentResult`: a status from how the
process ended (``timeout``, ``oom``, ``crash``, ``pruned``), the tails of its logs, the
diagnostics of its ``log.jsonl``, and the metric that ``task.evaluate`` computes from the
submitted predictions with the labels the program never saw.

The files are read through :class:`~rsi_rl.exec.scratch_io.ScratchDir` (no links followed,
no FIFO opened, sizes capped): a file the program replaced by a link, a FIFO, a device or
an oversized file makes the experiment ``invalid``, and no metric is computed from it.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np

from rsi_rl import harness
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.sandbox import ProcessResult
from rsi_rl.exec.scratch_io import ScratchDir, UnsafeScratchFile

#: bytes of stderr.log / stdout.log a result keeps (their tails)
STDERR_TAIL, STDOUT_TAIL = 2000, 500
#: bytes of log.jsonl read (its head; a longer log is cut, not refused) and rows kept
LOG_CAP, LOG_ROWS = 16 << 20, 100_000


def _log_rows(text: str) -> list[dict[str, float]]:
    """The rows of ``log.jsonl`` (at most :data:`LOG_ROWS`); lines that are not a JSON
    object of numbers are skipped."""
    rows: list[dict[str, float]] = []
    for line in text.splitlines()[:LOG_ROWS]:
        try:
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append({k: float(v) for k, v in row.items()})
        except (ValueError, TypeError):
            continue
    return rows


class _ReadBack:
    """The files of one run, read through a :class:`ScratchDir`; each refused file is
    noted in :attr:`problems` (and reads as missing)."""

    def __init__(self, scratch: ScratchDir):
        self.scratch = scratch
        self.problems: list[str] = []

    def text(self, name: str, n: int, tail: bool) -> str:
        """The last (``tail``) or first ``n`` bytes of ``name`` as text; "" if missing."""
        read = self.scratch.read_tail if tail else self.scratch.read_head
        try:
            data = read(name, n)
        except UnsafeScratchFile as exc:
            self.problems.append(str(exc))
            return ""
        return "" if data is None else data.decode(errors="replace")

    def data(self, name: str, cap: int) -> bytes | None:
        """The whole file ``name`` (None if missing or refused)."""
        try:
            return self.scratch.read_bytes(name, cap)
        except UnsafeScratchFile as exc:
            self.problems.append(str(exc))
            return None

    def check(self, name: str) -> None:
        """Note a problem with ``name`` without reading it."""
        try:
            self.scratch.check(name)
        except UnsafeScratchFile as exc:
            self.problems.append(str(exc))


def diagnostics_from_log(rows: list[dict[str, float]]) -> dict[str, float]:
    """Training diagnostics from the rows the program logged with ``harness.log``.

    ``loss_ratio`` final/initial train loss; ``slope`` relative change of the loss over
    the last quarter (negative = still improving); ``train_acc`` last reported;
    ``diverged`` 1 if a loss was non-finite.
    """
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    out: dict[str, float] = {"diverged": 0.0}
    if not losses:
        return out
    if any(not math.isfinite(v) for v in losses):
        out["diverged"] = 1.0
        return out
    first, last = losses[0], losses[-1]
    out["loss_ratio"] = last / first if first > 0 else 1.0
    k = max(1, len(losses) // 4)
    ref = losses[-k - 1] if len(losses) > k else first
    out["slope"] = (last - ref) / ref if ref > 0 else 0.0
    accs = [r["train_acc"] for r in rows if "train_acc" in r]
    if accs:
        out["train_acc"] = accs[-1]
    return out


def judge(
    proc: ProcessResult,
    scratch: ScratchDir,
    task: InnerTask,
    instance: Instance,
    split: str,
    limit: float,
    max_predictions_bytes: int,
) -> ExperimentResult:
    """The result of the run ``proc`` whose files are in ``scratch``, scored by ``task``
    on ``split``; ``limit`` is the run's wall-clock limit (for a timeout's message) and
    ``max_predictions_bytes`` the largest ``predictions.npy`` read back."""
    files = _ReadBack(scratch)
    res = ExperimentResult(
        status="ok",
        run_seconds=proc.seconds,
        cpu_seconds=proc.cpu_seconds,
        max_rss_mb=proc.max_rss_mb,
        stderr_tail=files.text("stderr.log", STDERR_TAIL, tail=True),
        stdout_tail=files.text("stdout.log", STDOUT_TAIL, tail=True),
        enforced=proc.enforced,
    )
    res.diagnostics = diagnostics_from_log(
        _log_rows(files.text(harness.LOG_FILE, LOG_CAP, tail=False))
    )
    _status_from_process(res, proc, limit)
    data = None
    if res.status == "ok" and not files.problems:
        data = files.data(harness.PREDICTIONS_FILE, max_predictions_bytes)
    else:
        files.check(harness.PREDICTIONS_FILE)
    if files.problems:  # the program tampered with its files: nothing of them is scored
        res.status, res.metrics = "invalid", {}
        res.stderr_tail = res.stdout_tail = ""
        res.message = "refused the run's scratch files: " + "; ".join(files.problems)
        if proc.sandbox_error:  # still not cached (sandbox_failed)
            res.message += f" (and {proc.sandbox_error})"
        return res
    if res.status != "ok":
        return res
    if data is None:
        res.status, res.message = "crash", "program exited without harness.submit(predictions)"
        return res
    _score(res, data, task, instance, split)
    return res


def _status_from_process(res: ExperimentResult, proc: ProcessResult, limit: float) -> None:
    """Set ``res``'s status and message from how the process ended (ok if it exited 0)."""
    if proc.sandbox_error:
        res.status, res.message, res.sandbox_failed = "crash", proc.sandbox_error, True
    elif getattr(proc, "stopped", False):
        res.status, res.message = "pruned", "stopped early by the pruner"
    elif proc.timed_out:
        res.status, res.message = "timeout", f"killed after the {limit:g}s wall-clock limit"
    elif proc.exit_code == 3 or proc.signal == 9:
        res.status, res.message = "oom", "out of memory (allocation failed or killed)"
    elif proc.signal in (24,):  # SIGXCPU
        res.status, res.message = "timeout", "CPU-time limit exceeded"
    elif proc.exit_code != 0:
        sig = f" by signal {proc.signal}" if proc.signal else f" with exit code {proc.exit_code}"
        last = res.stderr_tail.strip().splitlines()[-1:] or [""]
        res.status, res.message = "crash", f"program ended{sig}: {last[0][:200]}"


def _score(
    res: ExperimentResult, data: bytes, task: InnerTask, instance: Instance, split: str
) -> None:
    """Score the submitted predictions (the bytes of ``predictions.npy``) into ``res``."""
    try:
        preds = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - garbage written by an untrusted program
        res.status, res.message = "crash", f"predictions unreadable: {exc}"
        return
    if not isinstance(preds, np.ndarray):  # an .npz archive saved under the .npy name
        res.status, res.message = "crash", "predictions unreadable: not a single .npy array"
        return
    if not np.issubdtype(preds.dtype, np.number) or not np.all(np.isfinite(preds)):
        res.status, res.message = "nan", "predictions are not finite numbers"
        return
    if res.diagnostics.get("diverged"):
        res.status, res.message = "nan", "training loss became non-finite"
        return
    try:
        res.metrics = task.evaluate(preds, instance, split)
    except ValueError as exc:
        res.status, res.message = "crash", f"evaluator rejected predictions: {exc}"
        return
    metric = task.metric_for(split)
    value = res.metrics.get(metric)
    if value is None or not math.isfinite(value):
        res.status, res.message = "nan", f"metric {metric} is not finite"


__all__ = ["LOG_CAP", "LOG_ROWS", "STDERR_TAIL", "STDOUT_TAIL", "diagnostics_from_log", "judge"]
