"""Experiments: one candidate, one seed, one sandboxed run, scored by the trusted evaluator.

:class:`Runner` turns a (task instance, candidate, seed, split) into an
:class:`ExperimentResult` with a typed status. It writes the candidate's files and the
*unlabelled* evaluation inputs into a fresh scratch directory, runs the program in the
:class:`~rsi_rl.exec.sandbox.Sandbox`, and computes the metric in this (trusted) process from
the submitted predictions. Identical (instance, candidate, seed, split, limits) are
never trained twice: the result is served from the cache, charged at its original cost.

An in-process task (:class:`~rsi_rl.core.landscape.LandscapeTask`: a tabulated or synthetic
landscape) runs no program: the runner answers with the task's lookup, charged at the
seconds the lookup reports, and never starts a sandbox.

The scratch directory belongs to the program while it runs, so the parent reads it back
through :class:`~rsi_rl.exec.scratch_io.ScratchDir` (opened before the run, no links followed,
no FIFO opened, sizes capped): a file the program replaced by a link, a FIFO, a device or
an oversized file makes the experiment ``invalid``, and no metric is computed from it.
Every text a result carries from the program (log tails, message) passes through
:func:`~rsi_rl.exec.redact.scrub`.

Inside :meth:`Runner.watching` a pruning study (:mod:`rsi_rl.exec.pruning`) reads the
program's intermediate reports while it runs and may stop it: status ``pruned``, charged
the seconds it used, never cached.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rsi_rl import harness
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError, RsiRlError, TaskError
from rsi_rl.core.landscape import LandscapeTask
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.cache import CacheKey, ResultCache
from rsi_rl.exec.redact import scrub
from rsi_rl.exec.sandbox import Sandbox, SandboxLimits, resolve_paths
from rsi_rl.exec.scratch_io import ScratchDir, UnsafeScratchFile, keep_artifacts

if TYPE_CHECKING:
    from rsi_rl.exec.pruning import PruningStudy

Status = Literal["ok", "crash", "timeout", "oom", "nan", "invalid", "pruned"]
#: the statuses the observation encodes (its ``status_*`` features: fixed layout)
STATUSES: tuple[str, ...] = ("ok", "crash", "timeout", "oom", "nan", "invalid")
#: the statuses a result or record may hold: :data:`STATUSES` and ``pruned`` (stopped
#: early by the campaign's pruner, see :mod:`rsi_rl.exec.pruning`)
RECORD_STATUSES: tuple[str, ...] = (*STATUSES, "pruned")
#: how the observation counts a record status outside :data:`STATUSES`
OBSERVED_AS: dict[str, str] = {"pruned": "timeout"}


def observed_status(status: str | None) -> str | None:
    """The status the observation encodes for a record's ``status``: a ``pruned`` run
    counts as a ``timeout`` (stopped before it finished), the others as they are."""
    return OBSERVED_AS.get(status, status) if status is not None else None


#: bytes of stderr.log / stdout.log a result keeps (their tails)
STDERR_TAIL, STDOUT_TAIL = 2000, 500
#: bytes of log.jsonl read (its head; a longer log is cut, not refused) and rows kept
LOG_CAP, LOG_ROWS = 16 << 20, 100_000


@dataclass
class ExperimentResult:
    """The outcome of one run. ``metrics`` come from the trusted evaluator only."""

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # charged wall-clock (original cost for cache hits)
    run_seconds: float = 0.0  # the sandboxed program alone (fork to exit)
    cpu_seconds: float = 0.0
    max_rss_mb: float = 0.0
    diagnostics: dict[str, float] = field(default_factory=dict)
    stderr_tail: str = ""
    stdout_tail: str = ""
    message: str = ""
    enforced: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    #: the sandbox itself failed (not the program): such results are never cached
    sandbox_failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_cache(cls, hit: dict[str, Any]) -> ExperimentResult:
        """A cached result (:meth:`to_dict`) as a later run answers it: ``cached``, charged
        at its original cost."""
        return cls(**{**copy.deepcopy(hit), "cached": True})


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


class _NoSandbox(Sandbox):
    """The sandbox of an in-process task: it has nothing to start and runs nothing."""

    def spawn(self) -> None:
        return None

    def start(self) -> None:
        return None

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an in-process task runs no program in a sandbox")


class Runner:
    """Runs experiments of one task in one sandbox, with a result cache.

    Args:
        task: the inner task.
        limits: sandbox limits; ``timeout`` defaults to the task's ``default_timeout``.
        scratch_root: parent folder of the per-experiment scratch folders (a temp folder
            by default); scratch folders are removed after each run unless ``keep_scratch``.
        cache_path: optional SQLite file of results shared across runs and processes
            (see :mod:`rsi_rl.exec.cache`); without it the cache lives in memory.
        max_predictions_mb: the largest ``predictions.npy`` the parent reads back (MiB); a
            larger one makes the experiment ``invalid``.
        artifact_dir: the store of the task's ``artifacts``: the files of a candidate's last
            successful run go to ``<artifact_dir>/<candidate hash>/`` (see
            :meth:`artifacts_of`); default ``<scratch_root>/artifacts``.
    """

    def __init__(
        self,
        task: InnerTask,
        limits: SandboxLimits | None = None,
        scratch_root: str | Path | None = None,
        keep_scratch: bool = False,
        cache_path: str | Path | None = None,
        max_predictions_mb: float = 1024,
        artifact_dir: str | Path | None = None,
    ):
        if not max_predictions_mb > 0:
            raise ConfigError(f"max_predictions_mb={max_predictions_mb!r}: must be > 0")
        self.max_predictions_bytes = int(max_predictions_mb * (1 << 20))
        self.task = task
        self.limits = limits or SandboxLimits(timeout=task.default_timeout)
        # paths the program must not read: the user's, and the task's (e.g. a data set's files)
        hidden = [*self.limits.hidden_paths, *getattr(task, "sandbox_hidden_paths", ())]
        if hidden:
            self.limits = replace(
                self.limits, hidden_paths=tuple(dict.fromkeys(resolve_paths(hidden)))
            )
        if task.in_process and not isinstance(task, LandscapeTask):
            raise TaskError(
                f"task {task.name!r} sets in_process = True: it must subclass "
                "rsi_rl.core.landscape.LandscapeTask (and implement its lookup)"
            )
        # an in-process task answers in this process: its sandbox never starts
        self.sandbox = (
            _NoSandbox(task.preload, self.limits)
            if task.in_process
            else Sandbox(task.preload, self.limits)
        )
        self._own_root = scratch_root is None
        self.scratch_root = Path(scratch_root or tempfile.mkdtemp(prefix="rsi_rl_scratch_"))
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        self.keep_scratch = keep_scratch
        self.artifact_dir = Path(artifact_dir or self.scratch_root / "artifacts")
        self.cache = ResultCache(cache_path)
        self._catalogue: dict[str, bool] = {}
        self._n = 0
        #: optional cap (seconds) on the next runs' wall-clock limit: the env sets it to what
        #: is left of a campaign's ``budget_seconds``, so the cap is hard, not checked after
        self.timeout_cap: float | None = None
        #: the study the runs report to (see :meth:`watching`); None: runs are not watched
        self.pruning: PruningStudy | None = None
        self._prune = False

    @property
    def cache_hits(self) -> int:
        return self.cache.hits

    def catalogue_only(self, cand: Candidate) -> bool:
        """True if ``cand``'s source is the task's program with only its own patches applied."""
        known = self._catalogue.get(cand.hash)
        if known is None:
            source = self.task.source()
            try:
                for kind in sorted(cand.toggles):
                    patch = self.task.patch(kind)
                    if patch is None:
                        raise KeyError(kind)
                    source[patch.file] = patch.apply(source[patch.file])
                known = source == cand.source
            except (KeyError, RsiRlError):
                known = False
            self._catalogue[cand.hash] = known
        return known

    def limit_for(self, cap: float | None) -> float:
        """The wall-clock limit of a run under a seconds ``cap``: the sandbox's own limit,
        or less when the cap is lower (never below 10 ms, so a run can start and be
        stopped cleanly). The one rule for :attr:`timeout` and the executors' batches."""
        if cap is None:
            return float(self.limits.timeout)
        return float(min(self.limits.timeout, max(0.01, float(cap))))

    @property
    def timeout(self) -> float:
        """The wall-clock limit of the next run: the sandbox's, or less under ``timeout_cap``."""
        return self.limit_for(self.timeout_cap)

    def limits_for(self, cand: Candidate) -> SandboxLimits:
        """The limits of one run: ``hardened="auto"`` resolves per candidate (see SandboxLimits)."""
        limits = self.limits
        if self.timeout != limits.timeout:
            limits = replace(limits, timeout=self.timeout)
        if limits.hardened != "auto":
            return limits
        return replace(limits, hardened=not self.catalogue_only(cand))

    def cache_key(self, instance_id: str, cand_hash: str, seed: int, split: str) -> CacheKey:
        """What makes two experiments identical: instance, candidate, seed, split, limits."""
        return (
            instance_id,
            cand_hash,
            int(seed),
            split,
            self.timeout,
            int(self.limits.threads),
        )

    @contextlib.contextmanager
    def watching(self, study: PruningStudy | None, prune: bool = True) -> Iterator[None]:
        """The validation runs inside report to ``study`` (None: no watch), and may be
        stopped by its pruner unless ``prune`` is False (status ``pruned``)."""
        old = self.pruning, self._prune
        self.pruning, self._prune = study, prune
        try:
            yield
        finally:
            self.pruning, self._prune = old

    def artifacts_of(self, cand_hash: str) -> Path | None:
        """The folder of the artifacts kept from ``cand_hash``'s last successful run, or
        None (none declared, none written, or its runs were all served from the cache)."""
        path = self.artifact_dir / cand_hash
        return path if path.is_dir() else None

    def remember(self, key: CacheKey, result: ExperimentResult) -> None:
        """Store a result obtained elsewhere (e.g. replayed from a ledger on resume)."""
        self.cache.put(key, {**result.to_dict(), "cached": False})

    def close(self) -> None:
        self.sandbox.close()
        self.cache.close()
        if self._own_root:
            shutil.rmtree(self.scratch_root, ignore_errors=True)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self, instance: Instance, cand: Candidate, seed: int, split: str = "val"
    ) -> ExperimentResult:
        """Train ``cand`` on ``instance`` with ``seed``; evaluate on ``split`` (val or test)."""
        key = self.cache_key(instance.id, cand.hash, seed, split)
        hit = self.cache.get(key)
        if hit is not None:
            return ExperimentResult.from_cache(hit)
        result = self.run_fresh(instance, cand, seed, split)
        if self.cacheable(result):
            self.cache.put(key, result.to_dict())
        return result

    def cacheable(self, result: ExperimentResult, timeout: float | None = None) -> bool:
        """Whether ``result`` may answer a later run of the same candidate and seed.

        Not when the sandbox itself failed, nor a run stopped by a pruner, nor a
        ``timeout`` under a limit cut below the sandbox's own by a seconds cap (``timeout``
        of the run, else :attr:`timeout`): the same candidate with more time left may finish.
        """
        if result.sandbox_failed or result.status == "pruned":
            return False
        limit = self.timeout if timeout is None else float(timeout)
        return not (result.status == "timeout" and limit < float(self.limits.timeout))

    def run_fresh(
        self, instance: Instance, cand: Candidate, seed: int, split: str = "val"
    ) -> ExperimentResult:
        """:meth:`run` without the cache: always trains (an executor's worker keeps no cache)."""
        return self._run(instance, cand, seed, split)

    def _lookup(
        self, task: LandscapeTask, instance: Instance, cand: Candidate, seed: int, split: str
    ) -> ExperimentResult:
        """An in-process task's answer: its lookup, charged at the seconds it reports (a
        ``timeout`` at the run's limit when those exceed it)."""
        try:
            metrics, seconds = task.lookup(instance, cand, seed, split)
        except RsiRlError as exc:
            return ExperimentResult("invalid", message=str(exc))
        limit = self.timeout
        if seconds > limit:
            return ExperimentResult(
                "timeout",
                seconds=limit,
                message=f"would take {seconds:.4g}s, over the {limit:g}s wall-clock limit",
            )
        metric = task.metric_for(split)
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            return ExperimentResult(
                "nan", seconds=seconds, message=f"metric {metric} is not finite"
            )
        return ExperimentResult("ok", metrics, seconds=seconds, run_seconds=seconds)

    def _run(self, instance: Instance, cand: Candidate, seed: int, split: str) -> ExperimentResult:
        if isinstance(self.task, LandscapeTask) and self.task.in_process:
            return self._lookup(self.task, instance, cand, seed, split)
        self.sandbox.start()  # once per runner: the fork server's start-up is not an experiment's
        t0 = time.monotonic()
        self._n += 1
        workdir = self.scratch_root / f"exp{self._n:05d}_{cand.hash[:8]}_{split}"
        # held by a descriptor from now on: the program may rename or replace the path
        scratch = ScratchDir.create(workdir)
        watch = (
            self.pruning.watch(scratch, self._prune) if self.pruning and split == "val" else None
        )
        status = "crash"
        try:
            for name, text in cand.source.items():
                scratch.write_text(name, text)
            inputs = self.task.child_inputs(instance, split)
            buf = io.BytesIO()
            np.savez(buf, **inputs)  # type: ignore[arg-type]
            scratch.write_bytes(harness.INPUTS_FILE, buf.getvalue())
            job = {"config": cand.config, "seed": int(seed), "budget_seconds": self.timeout}
            scratch.write_text(harness.JOB_FILE, json.dumps(job))
            extra: dict[str, Any] = {}
            if watch is not None:  # its pruner may stop the run (rsi_rl.exec.pruning)
                # made here: a hardened run's tmpfs shares this file with the host
                scratch.write_text(harness.REPORTS_FILE, "")
                extra = {"watch": watch.poll, "watch_every": watch.study.poll_seconds}
            proc = self.sandbox.run(workdir, self.task.entry, seed, self.limits_for(cand), **extra)
            result = self._judge(proc, scratch, instance, split)
            if result.status == "ok" and self.task.artifacts:
                cap = int(self.limits.artifact_mb * (1 << 20))
                where = self.artifact_dir / cand.hash
                result.enforced["artifacts"] = keep_artifacts(
                    scratch, self.task.artifacts, where, cap
                )
            status = result.status
            if status == "pruned" and watch is not None:
                result.message = watch.message
            result.seconds = time.monotonic() - t0
            result.stderr_tail = scrub(result.stderr_tail)
            result.stdout_tail = scrub(result.stdout_tail)
            result.message = scrub(result.message)
            return result
        finally:
            if watch is not None:
                watch.finish(status)
            if self.keep_scratch:
                scratch.close()
            else:
                scratch.remove()

    def _judge(
        self, proc: Any, scratch: ScratchDir, instance: Instance, split: str
    ) -> ExperimentResult:
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
        self._status_from_process(res, proc)
        data = None
        if res.status == "ok" and not files.problems:
            data = files.data(harness.PREDICTIONS_FILE, self.max_predictions_bytes)
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
        self._score(res, data, instance, split)
        return res

    def _status_from_process(self, res: ExperimentResult, proc: Any) -> None:
        """Set ``res``'s status and message from how the process ended (ok if it exited 0)."""
        if proc.sandbox_error:
            res.status, res.message, res.sandbox_failed = "crash", proc.sandbox_error, True
        elif getattr(proc, "stopped", False):
            res.status, res.message = "pruned", "stopped early by the pruner"
        elif proc.timed_out:
            res.status, res.message = (
                "timeout",
                f"killed after the {self.timeout:g}s wall-clock limit",
            )
        elif proc.exit_code == 3 or proc.signal == 9:
            res.status, res.message = "oom", "out of memory (allocation failed or killed)"
        elif proc.signal in (24,):  # SIGXCPU
            res.status, res.message = "timeout", "CPU-time limit exceeded"
        elif proc.exit_code != 0:
            sig = (
                f" by signal {proc.signal}" if proc.signal else f" with exit code {proc.exit_code}"
            )
            last = res.stderr_tail.strip().splitlines()[-1:] or [""]
            res.status, res.message = "crash", f"program ended{sig}: {last[0][:200]}"

    def _score(self, res: ExperimentResult, data: bytes, instance: Instance, split: str) -> None:
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
            res.metrics = self.task.evaluate(preds, instance, split)
        except ValueError as exc:
            res.status, res.message = "crash", f"evaluator rejected predictions: {exc}"
            return
        metric = self.task.metric_for(split)
        value = res.metrics.get(metric)
        if value is None or not math.isfinite(value):
            res.status, res.message = "nan", f"metric {metric} is not finite"
