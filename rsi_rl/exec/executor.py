"""Executors: how the sandboxed experiments of a batch run, one after another or at once.

An :class:`Executor` is bound to an env's :class:`~rsi_rl.exec.runner.Runner` (its task,
limits and result cache) and runs a batch of candidates on one seed with
:meth:`Executor.run_many`, returning their results in the order given. The result cache
is consulted and filled in the calling process, and a candidate that appears twice in a
batch trains once, so a batch gives the same results (statuses, metrics, ``cached``
flags) as running its candidates one by one. Only the experiments' wall-clock seconds
differ: concurrent experiments share the machine.

* ``serial`` (default): today's behaviour; the env's own runner, one experiment at a time.
* ``local`` with ``workers=N``: N warm workers on this machine, each a
  :class:`~rsi_rl.exec.runner.Runner` with its own sandbox fork server, driven by N threads of
  this process (the training happens in the sandboxed children, so the threads only wait).
* ``ray``: N Ray actors, each owning a warm Runner, on a local Ray instance or a cluster
  (``address``); needs the ``ray`` extra (``pip install 'rsi-rl[ray]'``).

Agents that propose several candidates at once (``random`` and ``tpe`` with
``batch_size`` > 1) run each batch through
:meth:`~rsi_rl.env.ResearchEnv.try_candidates`. Meta-training is parallel in another way:
``rsi-rl train n_envs=N`` steps N envs in ``SubprocVecEnv`` worker processes, each with
its own serial executor (see :mod:`rsi_rl.meta.train`).

Example:
    >>> from rsi_rl.exec.executor import make_executor
    >>> make_executor({"name": "local", "workers": 2}).workers
    2

Longer than the project's ~450 lines: the three executors (serial, local, ray) share one
batch protocol (cache, duplicates, capped limits) and are read side by side.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import queue
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, ClassVar

from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.cache import CacheKey
from rsi_rl.exec.devices import resolve_devices
from rsi_rl.exec.runner import ExperimentResult, Runner
from rsi_rl.exec.sandbox import SandboxLimits

#: the one-line error when ``executor=ray`` is asked for without Ray installed
RAY_MISSING = "executor=ray needs the ray extra: pip install 'rsi-rl[ray]'"


def _positive_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(
            f"executor.workers must be a positive integer (experiments at once), got {workers!r}"
        )
    return workers


def worker_limits(limits: SandboxLimits, i: int) -> SandboxLimits:
    """The limits of worker ``i``: one GPU of ``limits.devices``, round robin (worker i
    gets the i-th, modulo their number), or the CPU."""
    gpus = resolve_devices(limits.devices)
    return dataclasses.replace(limits, devices=(gpus[i % len(gpus)],) if gpus else "cpu")


def _ray_gpus(devices: str | tuple[int, ...]) -> tuple[int, str | tuple[int, ...]]:
    """(GPUs a Ray actor asks for, the actor's ``devices``) for ``sandbox.devices``.

    A GPU actor asks Ray for one GPU, and Ray chooses which (a list of indices means
    "GPUs" here: Ray places actors on its own): the actor's runs see the GPU Ray gave it.
    ``auto`` asks for one when this process sees a GPU; ``cuda`` always does (the driver
    may have none while the cluster's workers do)."""
    if devices == "cpu" or (devices == "auto" and not resolve_devices("auto")):
        return 0, "cpu"
    return 1, "cuda"


@contextlib.contextmanager
def _capped(runner: Runner, timeout: float | None) -> Iterator[None]:
    """Cap ``runner``'s wall-clock limit at ``timeout`` seconds for the runs inside."""
    old = runner.timeout_cap
    runner.timeout_cap = timeout if timeout is not None else old
    try:
        yield
    finally:
        runner.timeout_cap = old


class Executor(ABC):
    """Runs batches of experiments for one env. Subclasses implement :meth:`_run_fresh`.

    Use :meth:`bind` once (the env does), then :meth:`run_many`; :meth:`close` stops every
    worker and process the executor started.
    """

    #: registry name (``executor=<name>``)
    name: ClassVar[str] = ""

    def __init__(self, workers: int = 1):
        self.workers = _positive_workers(workers)
        self.runner: Runner | None = None

    def bind(self, runner: Runner) -> None:
        """Attach to ``runner``: its task and limits for the workers, its cache for results."""
        if self.runner is not None and self.runner is not runner:
            raise ConfigError(f"this {self.name} executor is already bound to another env")
        self.runner = runner

    def run_many(
        self,
        instance: Instance,
        cands: Sequence[Candidate],
        seed: int,
        split: str = "val",
        timeout: float | None = None,
    ) -> list[ExperimentResult]:
        """Train every candidate on ``instance`` with ``seed``; results in the order given.

        Cached results are served (``cached=True``, charged at their original cost), a
        duplicate in the batch trains once, and fresh results enter the cache, exactly as
        :meth:`Runner.run` one by one would do. ``timeout`` caps each run's wall-clock
        limit below the sandbox's (what is left of a campaign's seconds cap); a run stopped
        by that cap is not cached.
        """
        runner = self._bound()
        results: list[ExperimentResult | None] = [None] * len(cands)
        todo: dict[CacheKey, list[int]] = {}
        for i, cand in enumerate(cands):
            key = runner.cache_key(instance.id, cand.hash, seed, split)
            if key in todo:
                todo[key].append(i)
                continue
            hit = runner.cache.get(key)
            if hit is not None:
                results[i] = ExperimentResult(**{**copy.deepcopy(hit), "cached": True})
            else:
                todo[key] = [i]
        keys = list(todo)
        cap = None if timeout is None else runner.limit_for(timeout)
        fresh = self._run_fresh(instance, [cands[todo[k][0]] for k in keys], seed, split, cap)
        for key, result in zip(keys, fresh, strict=True):
            first, *dups = todo[key]
            results[first] = result
            if runner.cacheable(result, cap if cap is not None else runner.limits.timeout):
                runner.cache.put(key, result.to_dict())
            for j in dups:  # what a second Runner.run of the same key would answer
                hit = runner.cache.get(key)
                results[j] = (
                    ExperimentResult(**{**copy.deepcopy(hit), "cached": True})
                    if hit is not None
                    else copy.deepcopy(result)
                )
        return [r for r in results if r is not None]

    @abstractmethod
    def _run_fresh(
        self,
        instance: Instance,
        cands: list[Candidate],
        seed: int,
        split: str,
        timeout: float | None = None,
    ) -> list[ExperimentResult]:
        """Train each (distinct, uncached) candidate, each run's wall-clock limit capped at
        ``timeout`` (None: the sandbox's own); results in the order given."""

    def close(self) -> None:
        """Stop the workers (idempotent)."""

    def _bound(self) -> Runner:
        if self.runner is None:
            raise RuntimeError(f"{type(self).__name__}.bind(runner) was not called")
        return self.runner

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


class SerialExecutor(Executor):
    """One experiment at a time in the env's own runner (the default)."""

    name = "serial"

    def __init__(self) -> None:
        super().__init__(workers=1)

    def run_many(
        self,
        instance: Instance,
        cands: Sequence[Candidate],
        seed: int,
        split: str = "val",
        timeout: float | None = None,
    ) -> list[ExperimentResult]:
        runner = self._bound()
        with _capped(runner, timeout):
            return [runner.run(instance, cand, seed, split) for cand in cands]

    def _run_fresh(
        self,
        instance: Instance,
        cands: list[Candidate],
        seed: int,
        split: str,
        timeout: float | None = None,
    ) -> list[ExperimentResult]:
        runner = self._bound()
        with _capped(runner, timeout):
            return [runner.run_fresh(instance, cand, seed, split) for cand in cands]


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
        self,
        instance: Instance,
        cands: list[Candidate],
        seed: int,
        split: str,
        timeout: float | None = None,
    ) -> list[ExperimentResult]:
        if self._pool is None:
            raise RuntimeError("the local executor is closed")

        def one(cand: Candidate) -> ExperimentResult:
            worker = self._idle.get()
            try:
                with _capped(worker, timeout):
                    return worker.run_fresh(instance, cand, seed, split)
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


# ---------------------------------------------------------------------------- Ray
def import_ray() -> Any:
    """``import ray``, or the one-line :class:`ConfigError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


class RunnerActor:
    """A warm :class:`Runner` in a Ray worker process (the body of the Ray actor)."""

    def __init__(
        self,
        task: InnerTask,
        limits: SandboxLimits,
        keep_scratch: bool = False,
        artifact_dir: str | None = None,
    ):
        self.runner = Runner(task, limits, keep_scratch=keep_scratch, artifact_dir=artifact_dir)

    def run(
        self,
        instance: Instance,
        cand: Candidate,
        seed: int,
        split: str,
        timeout: float | None = None,
    ) -> ExperimentResult:
        with _capped(self.runner, timeout):
            return self.runner.run_fresh(instance, cand, seed, split)

    def warm(self) -> None:
        """Start the fork server now (a failure shows on the first run)."""
        with contextlib.suppress(Exception):
            self.runner.sandbox.start()

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.runner.close()


class RayExecutor(Executor):
    """``workers`` Ray actors, each owning a warm Runner (one sandbox fork server).

    Args:
        workers: actors, i.e. experiments at once.
        address: ``None`` starts a private local Ray instance (shut down on :meth:`close`);
            ``"auto"`` joins the cluster of this node; ``"ray://host:10001"`` a remote one
            through Ray Client. Every node needs rsi_rl (and the task's files) installed.
        num_cpus: CPUs Ray reserves per actor. With GPUs (``sandbox.devices`` not ``cpu``)
            each actor also asks Ray for one GPU, and its runs train on it. Artifacts are
            kept on the actor's machine (the driver's store path): on a remote cluster, the
            search job cannot copy them into ``best/artifacts``.
        init_kwargs: more :func:`ray.init` arguments (``runtime_env``, ``namespace``, ...).
    """

    name = "ray"

    def __init__(
        self,
        workers: int = 2,
        address: str | None = None,
        num_cpus: float = 1.0,
        init_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__(workers)
        if not float(num_cpus) > 0:
            raise ConfigError(f"executor.num_cpus must be positive, got {num_cpus!r}")
        self.address = address or None
        self.num_cpus = float(num_cpus)
        self.init_kwargs = dict(init_kwargs or {})
        self._actors: list[Any] = []
        self._owns_ray = False
        self._instance_ref: tuple[str, Any] | None = None
        import_ray()  # fail at construction, before an env is built

    def bind(self, runner: Runner) -> None:
        super().bind(runner)
        if self._actors:
            return
        ray = import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if self.address is None:  # room for every actor, whatever the core count
                kwargs["num_cpus"] = max(
                    os.cpu_count() or 1, math.ceil(self.workers * self.num_cpus)
                )
                # a new instance even where `ray start` left one (else ray.init joins it)
                kwargs["address"] = "local"
            else:
                kwargs["address"] = self.address
            try:
                ray.init(**{**kwargs, **self.init_kwargs})
            except Exception as exc:  # noqa: BLE001 - ray raises many types; one line for the user
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                where = self.address or "a local instance"
                raise ConfigError(
                    f"executor=ray could not start Ray ({where}): {first[:200]} "
                    "(check executor.address and executor.init_kwargs)"
                ) from None
            self._owns_ray = True
        self._actors = [self._new_actor() for _ in range(self.workers)]

    def _new_actor(self) -> Any:
        ray = import_ray()
        runner = self._bound()
        num_gpus, devices = _ray_gpus(runner.limits.devices)
        options: dict[str, Any] = {"num_cpus": self.num_cpus}
        if num_gpus:  # only then: a CPU actor's options stay as they were
            options["num_gpus"] = num_gpus
        cls = ray.remote(**options)(RunnerActor)
        limits = dataclasses.replace(runner.limits, devices=devices)
        actor = cls.remote(runner.task, limits, runner.keep_scratch, str(runner.artifact_dir))
        actor.warm.remote()  # actor calls run in order: the first experiment waits for it
        return actor

    def _run_fresh(
        self,
        instance: Instance,
        cands: list[Candidate],
        seed: int,
        split: str,
        timeout: float | None = None,
    ) -> list[ExperimentResult]:
        if not cands:
            return []
        ray = import_ray()
        if not self._actors:
            raise RuntimeError("the ray executor is closed")
        if self._instance_ref is None or self._instance_ref[0] != instance.id:
            self._instance_ref = (instance.id, ray.put(instance))  # shipped once per instance
        ref = self._instance_ref[1]
        results: list[ExperimentResult | None] = [None] * len(cands)
        todo = list(enumerate(cands))
        idle = list(range(len(self._actors)))
        pending: dict[Any, tuple[int, int]] = {}
        while todo or pending:
            while todo and idle:  # one experiment in flight per actor
                (i, cand), a = todo.pop(0), idle.pop(0)
                pending[self._actors[a].run.remote(ref, cand, seed, split, timeout)] = (i, a)
            done, _ = ray.wait(list(pending), num_returns=1)
            for obj in done:
                i, a = pending.pop(obj)
                try:
                    results[i] = ray.get(obj)
                except Exception as exc:  # noqa: BLE001 - a dead actor is a failed run, not a crash of the campaign
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    results[i] = ExperimentResult(
                        status="crash",
                        message=f"ray worker failed: {first[:200]}",
                        sandbox_failed=True,
                    )
                    with contextlib.suppress(Exception):
                        ray.kill(self._actors[a])
                    self._actors[a] = self._new_actor()
                idle.append(a)
        return [r for r in results if r is not None]

    def pids(self) -> list[int]:
        """Process ids of the actors (for checks)."""
        ray = import_ray()
        return [int(p) for p in ray.get([a.pid.remote() for a in self._actors])]

    def close(self) -> None:
        actors, self._actors = self._actors, []
        self._instance_ref = None
        if not actors and not self._owns_ray:
            return
        ray = import_ray()
        with contextlib.suppress(Exception):
            ray.get([a.close.remote() for a in actors], timeout=60)
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        if self._owns_ray:
            self._owns_ray = False
            ray.shutdown()

    def __repr__(self) -> str:
        return f"RayExecutor(workers={self.workers}, address={self.address!r})"


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


__all__ = [
    "EXECUTORS",
    "RAY_MISSING",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "RunnerActor",
    "SerialExecutor",
    "import_ray",
    "make_executor",
    "worker_limits",
]
