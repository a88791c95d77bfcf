"""The ``ray`` executor: N Ray actors, each owning a warm Runner, on a local Ray instance or
a cluster (``address``); needs the ``ray`` extra (``pip install 'rsi-rl[ray]'``).

Ray is imported only when a :class:`RayExecutor` is made. Each actor
(:class:`RunnerActor`) holds one :class:`~rsi_rl.exec.runner.Runner` with its own sandbox
fork server; the batch protocol (cache, duplicates, capped limits) is the one every
executor shares (:class:`~rsi_rl.exec.batch.Executor`). An actor that dies fails its
experiment (``crash``, never cached) and is replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.task import InnerTask, Instance
from rsi_rl.exec.batch import Executor, RunSpec, run_fresh
from rsi_rl.exec.devices import resolve_devices
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits

#: the one-line error when ``executor=ray`` is asked for without Ray installed
RAY_MISSING = "executor=ray needs the ray extra: pip install 'rsi-rl[ray]'"


def import_ray() -> Any:
    """``import ray``, or the one-line :class:`ConfigError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


def _first_line(exc: BaseException) -> str:
    """The first line of what ``exc`` says (its type's name when it says nothing), cut to
    200 characters: Ray's errors run over many lines."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _ray_gpus(devices: str | tuple[int, ...]) -> tuple[int, str | tuple[int, ...]]:
    """(GPUs a Ray actor asks for, the actor's ``devices``) for ``sandbox.devices``.

    A GPU actor asks Ray for one GPU, and Ray chooses which (a list of indices means
    "GPUs" here: Ray places actors on its own): the actor's runs see the GPU Ray gave it.
    ``auto`` asks for one when this process sees a GPU; ``cuda`` always does (the driver
    may have none while the cluster's workers do)."""
    if devices == "cpu" or (devices == "auto" and not resolve_devices("auto")):
        return 0, "cpu"
    return 1, "cuda"


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

    def run(self, instance: Instance, cand: Candidate, spec: RunSpec) -> ExperimentResult:
        return run_fresh(self.runner, instance, cand, spec)

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
                where = self.address or "a local instance"
                raise ConfigError(
                    f"executor=ray could not start Ray ({where}): {_first_line(exc)} "
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
        self, instance: Instance, cands: list[Candidate], spec: RunSpec
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
                pending[self._actors[a].run.remote(ref, cand, spec)] = (i, a)
            done, _ = ray.wait(list(pending), num_returns=1)
            for obj in done:
                i, a = pending.pop(obj)
                try:
                    results[i] = ray.get(obj)
                except Exception as exc:  # noqa: BLE001 - a dead actor is a failed run, not a crash of the campaign
                    results[i] = ExperimentResult(
                        status="crash",
                        message=f"ray worker failed: {_first_line(exc)}",
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


__all__ = ["RAY_MISSING", "RayExecutor", "RunnerActor", "import_ray"]
