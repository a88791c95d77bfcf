"""Executors: how the sandboxed experiments of a batch run, one after another or at once.

An :class:`~rsi_rl.exec.batch.Executor` is bound to an env's
:class:`~rsi_rl.exec.runner.Runner` (its task, limits and result cache) and runs a batch of
candidates on one seed with :meth:`~rsi_rl.exec.batch.Executor.run_many`, returning their
results in the order given, the same results as running them one by one (the batch
protocol, :mod:`rsi_rl.exec.batch`). Only the experiments' wall-clock seconds differ:
concurrent experiments share the machine.

* ``serial`` (default): the env's own runner, one experiment at a time.
* ``local`` with ``workers=N``: N warm workers on this machine, each a
  :class:`~rsi_rl.exec.runner.Runner` with its own sandbox fork server, driven by N threads of
  this process (the training happens in the sandboxed children, so the threads only wait).
* ``ray``: N Ray actors, each owning a warm Runner, on a local Ray instance or a cluster
  (``address``); needs the ``ray`` extra (:mod:`rsi_rl.exec.ray_pool`).

Agents that propose several candidates at once (``random`` and ``tpe`` with
``batch_size`` > 1) run each batch through
:meth:`~rsi_rl.env.ResearchEnv.try_candidates`. Meta-training is parallel in another way:
``rsi-rl train n_envs=N`` steps N envs in ``SubprocVecEnv`` worker processes, each with
its own serial executor (see :mod:`rsi_rl.meta.train`).

Example:
    >>> from rsi_rl.exec.executor import make_executor
    >>> make_executor({"name": "local", "workers": 2}).workers
    2
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.task import Instance
from rsi_rl.exec.batch import Executor, RunSpec, capped, run_fresh
from rsi_rl.exec.devices import resolve_devices
from rsi_rl.exec.ray_pool import RayExecutor
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits


def worker_limits(limits: SandboxLimits, i: int) -> SandboxLimits:
    """The limits of worker ``i``: one GPU of ``limits.devices``, round robin (worker i
    gets the i-th, modulo their number), or the CPU."""
    gpus = resolve_devices(limits.devices)
    return dataclasses.replace(limits, devices=(gpus[i % len(gpus)],) if gpus else "cpu")


class SerialExecutor(Executor):
    """One experiment at a time in the env's own runner (the default)."""

    name = "serial"

    def __init__(self) -> None:
        super().__init__(workers=1)

    def _run_batch(
        self, instance: Instance, cands: list[Candidate], spec: RunSpec
    ) -> list[ExperimentResult]:
        """:meth:`Runner.run` one by one: the env runner's own cache, under the cap."""
        runner = self._bound()
        with capped(runner, spec.timeout):
            return [runner.run(instance, cand, spec.seed, spec.split) for cand in cands]

    def _run_fresh(
        self, instance: Instance, cands: list[Candidate], spec: RunSpec
    ) -> list[ExperimentResult]:
        runner = self._bound()
        return [run_fresh(runner, instance, cand, spec) for cand in cands]


class LocalExecutor(Executor):
    """``workers`` experiments at once on this machine, each in its own warm sandbox.

    Each worker is a :class:`Runner` with its own fork server, started in the background
    as soon as the executor is bound (an experiment never pays for it), and driven by a
    thread of this process. Scratch folders live inside the env runner's scratch root;
    artifacts go to the env runner's store. With GPUs (``sandbox.devices``), worker i
    trains on the i-th GPU, round robin (:func:`worker_limits`).

    Args:
        workers: experiments at once; about one per free core (each trains with
            ``sandbox.threads`` threads).
    """

    name = "local"

    def __init__(self, workers: int = 2):
        super().__init__(workers)
        self._runners: list[Runner] = []
        self._roots: list[str] = []
        self._idle: queue.SimpleQueue[Runner] = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None

    def bind(self, runner: Runner) -> None:
        super().bind(runner)
        if self._pool is not None:
            return
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="rsi_rl-experiment")
        for i in range(self.workers):
            root = tempfile.mkdtemp(prefix=f"worker{i}_", dir=runner.scratch_root)
            self._roots.append(root)
            worker = Runner(
                runner.task,
                worker_limits(runner.limits, i),
                root,
                keep_scratch=runner.keep_scratch,
                artifact_dir=runner.artifact_dir,
            )
            self._runners.append(worker)
            self._pool.submit(self._warm, worker)  # joins the idle workers once its server is up

    def _warm(self, worker: Runner) -> None:
        """Start ``worker``'s fork server in the background (a failure shows on its first run)."""
        try:
            with contextlib.suppress(Exception):  # its first run retries and reports it
                worker.sandbox.start()
        finally:
            self._idle.put(worker)

    def _run_fresh(
        self, instance: Instance, cands: list[Candidate], spec: RunSpec
    ) -> list[ExperimentResult]:
        if self._pool is None:
            raise RuntimeError("the local executor is closed")
        bound = self._bound()
        study, prune = bound.pruning, bound.prune_runs  # the campaign's pruning, if any

        def one(cand: Candidate) -> ExperimentResult:
            worker = self._idle.get()
            try:
                with worker.watching(study, prune):
                    return run_fresh(worker, instance, cand, spec)
            finally:
                self._idle.put(worker)

        futures = [self._pool.submit(one, cand) for cand in cands]
        wait(futures)  # every run ends (each under its own timeout) before an error surfaces
        return [f.result() for f in futures]

    @property
    def processes(self) -> list[int]:
        """Process ids of the workers' live fork servers."""
        out = []
        for worker in self._runners:
            proc = worker.sandbox._proc
            if proc is not None and proc.poll() is None:
                out.append(proc.pid)
        return out

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for worker in self._runners:
            worker.close()
        for root in self._roots:
            if not (self.runner is not None and self.runner.keep_scratch):
                shutil.rmtree(root, ignore_errors=True)
        self._runners, self._roots = [], []


# ---------------------------------------------------------------------------- registry
EXECUTORS: dict[str, type[Executor]] = {
    "serial": SerialExecutor,
    "local": LocalExecutor,
    "ray": RayExecutor,
}


def make_executor(spec: str | Mapping[str, Any] | Executor | None = None) -> Executor:
    """An executor from a name, a mapping (``name`` plus its settings, e.g. the Hydra group
    ``executor``), or an executor; None is ``serial``.

    Raises:
        ConfigError: an unknown name, an unknown setting, ``workers`` < 1, or ``ray``
            without Ray installed; one line naming the key to fix.
    """
    if isinstance(spec, Executor):
        return spec
    if spec is None:
        return SerialExecutor()
    settings: dict[str, Any] = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = str(settings.pop("name", "serial"))
    settings = {k: v for k, v in settings.items() if not str(k).startswith("_")}
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; known: {', '.join(sorted(EXECUTORS))}")
    if name == "serial" and settings.pop("workers", 1) != 1:
        raise ConfigError(
            "executor=serial runs one experiment at a time; use executor=local executor.workers=N"
        )
    try:
        return EXECUTORS[name](**settings)
    except TypeError as exc:
        raise ConfigError(f"bad executor setting for executor={name}: {exc}") from None


__all__ = ["EXECUTORS", "LocalExecutor", "SerialExecutor", "make_executor", "worker_limits"]
