"""Experiments: one candidate, one seed, one sandboxed run, scored by the trusted evaluator.

:class:`Runner` turns a (task instance, candidate, seed, split) into an
:class:`~rsi_rl.exec.result.ExperimentResult` with a typed status. One experiment's flow
(:meth:`Runner.run`):

1. the cache: identical (instance, candidate, seed, split, limits) are never trained
   twice; the result is served from the cache, charged at its original cost;
2. an in-process task (a tabulated or synthetic landscape) answers with its lookup and
   runs no program (:mod:`rsi_rl.exec.in_process`);
3. the scratch directory: the candidate's files, the *unlabelled* evaluation inputs and
   ``job.json``, written into a fresh folder held by a descriptor
   (:class:`~rsi_rl.exec.scratch_io.ScratchDir`);
4. the run in the :class:`~rsi_rl.exec.sandbox.Sandbox`, watched by a pruning study when
   one is set (:meth:`Runner.watching`, :mod:`rsi_rl.exec.pruning`): a run it stops is
   ``pruned``, charged the seconds it used, never cached;
5. judging, in this (trusted) process: the status, the link-safe reads of the scratch
   folder and the metric from the submitted predictions (:mod:`rsi_rl.exec.judge`);
6. the declared artifacts of a successful run, kept (:mod:`rsi_rl.exec.artifacts`);
7. every text the result carries from the program (log tails, message) passes through
   :func:`~rsi_rl.exec.redact.scrub`.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rsi_rl import harness
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError, RsiRlError
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.artifacts import keep_artifacts
from rsi_rl.exec.cache import CacheKey, ResultCache
from rsi_rl.exec.in_process import NoSandbox, in_process, lookup
from rsi_rl.exec.judge import judge
from rsi_rl.exec.redact import scrub
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.sandbox import Sandbox, SandboxLimits, resolve_paths
from rsi_rl.exec.scratch_io import ScratchDir

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
        # an in-process task answers in this process: its sandbox never starts
        self.sandbox = (
            NoSandbox(task.preload, self.limits)
            if in_process(task)
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
        #: whether the watched runs may be stopped (False: their reports are only recorded)
        self.prune_runs = False

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
        """What makes two experiments identical: instance, candidate, seed, split, limits.

        The wall-clock limit in the key is the sandbox's own, never a cap cut from a
        seconds budget: a run stopped by such a cap is not cached (:meth:`cacheable`), and
        one that finished under it is the run the full limit would have given, so every
        executor keys the same run alike, capped or not.
        """
        return (
            instance_id,
            cand_hash,
            int(seed),
            split,
            float(self.limits.timeout),
            int(self.limits.threads),
        )

    @contextlib.contextmanager
    def watching(self, study: PruningStudy | None, prune: bool = True) -> Iterator[None]:
        """The validation runs inside report to ``study`` (None: no watch), and may be
        stopped by its pruner unless ``prune`` is False (status ``pruned``)."""
        old = self.pruning, self.prune_runs
        self.pruning, self.prune_runs = study, prune
        try:
            yield
        finally:
            self.pruning, self.prune_runs = old

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

    def _run(self, instance: Instance, cand: Candidate, seed: int, split: str) -> ExperimentResult:
        table = in_process(self.task)
        if table is not None:
            return lookup(table, instance, cand, seed, split, self.timeout)
        self.sandbox.start()  # once per runner: the fork server's start-up is not an experiment's
        t0 = time.monotonic()
        self._n += 1
        workdir = self.scratch_root / f"exp{self._n:05d}_{cand.hash[:8]}_{split}"
        # held by a descriptor from now on: the program may rename or replace the path
        scratch = ScratchDir.create(workdir)
        watch = (
            self.pruning.watch(scratch, self.prune_runs)
            if self.pruning and split == "val"
            else None
        )
        status = "crash"
        try:
            self._write_job(scratch, instance, cand, seed, split)
            limits = self.limits_for(cand)
            # its pruner may stop the run
            extra = watch.begin(limits.timeout) if watch is not None else {}
            proc = self.sandbox.run(workdir, self.task.entry, seed, limits, **extra)
            result = judge(
                proc, scratch, self.task, instance, split, self.timeout, self.max_predictions_bytes
            )
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

    def _write_job(
        self, scratch: ScratchDir, instance: Instance, cand: Candidate, seed: int, split: str
    ) -> None:
        """The program's files, its *unlabelled* inputs and ``job.json`` (config, seed,
        time budget), written into the fresh ``scratch``."""
        for name, text in cand.source.items():
            scratch.write_text(name, text)
        inputs = self.task.child_inputs(instance, split)
        buf = io.BytesIO()
        np.savez(buf, **inputs)  # type: ignore[arg-type]
        scratch.write_bytes(harness.INPUTS_FILE, buf.getvalue())
        job = {"config": cand.config, "seed": int(seed), "budget_seconds": self.timeout}
        scratch.write_text(harness.JOB_FILE, json.dumps(job))
