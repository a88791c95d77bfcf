"""The batch protocol every executor shares: a batch of candidates, one seed, the cache.

:meth:`Executor.run_many` trains a batch of candidates on one instance and seed and
returns their results in the order given. The result cache of the env's
:class:`~rsi_rl.exec.runner.Runner` is consulted and filled in the calling process, and a
candidate that appears twice in a batch trains once, so a batch gives the same results
(statuses, metrics, ``cached`` flags) as running its candidates one by one. A subclass
implements :meth:`Executor._run_fresh`: how the distinct, uncached candidates train
(see :mod:`rsi_rl.exec.executor` for ``serial`` and ``local``, :mod:`rsi_rl.exec.ray_pool`
for ``ray``).
"""

from __future__ import annotations

import contextlib
import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.task import Instance
from rsi_rl.exec.cache import CacheKey
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.runner import Runner


@dataclass(frozen=True)
class RunSpec:
    """What every run of one batch shares besides its instance.

    Attributes:
        seed: the seed each candidate trains with.
        split: the split its predictions are scored on (``val`` or ``test``).
        timeout: a cap on each run's wall-clock limit below the sandbox's own (what is
            left of a campaign's seconds cap); None: the sandbox's own.
    """

    seed: int
    split: str = "val"
    timeout: float | None = None


@contextlib.contextmanager
def capped(runner: Runner, timeout: float | None) -> Iterator[None]:
    """Cap ``runner``'s wall-clock limit at ``timeout`` seconds for the runs inside."""
    old = runner.timeout_cap
    runner.timeout_cap = timeout if timeout is not None else old
    try:
        yield
    finally:
        runner.timeout_cap = old


def run_fresh(
    runner: Runner, instance: Instance, cand: Candidate, spec: RunSpec
) -> ExperimentResult:
    """Train ``cand`` on ``runner`` without its cache, the run's limit capped by ``spec``."""
    with capped(runner, spec.timeout):
        return runner.run_fresh(instance, cand, spec.seed, spec.split)


def positive_workers(workers: Any) -> int:
    """``executor.workers`` checked: a positive whole number, or a ConfigError."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(
            f"executor.workers must be a positive integer (experiments at once), got {workers!r}"
        )
    return workers


class Executor(ABC):
    """Runs batches of experiments for one env. Subclasses implement :meth:`_run_fresh`.

    Use :meth:`bind` once (the env does), then :meth:`run_many`; :meth:`close` stops every
    worker and process the executor started.
    """

    #: registry name (``executor=<name>``)
    name: ClassVar[str] = ""

    def __init__(self, workers: int = 1):
        self.workers = positive_workers(workers)
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
        return self._run_batch(instance, list(cands), RunSpec(seed, split, timeout))

    def _run_batch(
        self, instance: Instance, cands: list[Candidate], spec: RunSpec
    ) -> list[ExperimentResult]:
        """:meth:`run_many`: the cache and the batch's duplicates here, the rest through
        :meth:`_run_fresh`."""
        runner = self._bound()
        results: list[ExperimentResult | None] = [None] * len(cands)
        todo: dict[CacheKey, list[int]] = {}
        for i, cand in enumerate(cands):
            key = runner.cache_key(instance.id, cand.hash, spec.seed, spec.split)
            if key in todo:
                todo[key].append(i)
                continue
            hit = runner.cache.get(key)
            if hit is not None:
                results[i] = ExperimentResult.from_cache(hit)
            else:
                todo[key] = [i]
        keys = list(todo)
        cap = None if spec.timeout is None else runner.limit_for(spec.timeout)
        fresh_spec = RunSpec(spec.seed, spec.split, cap)
        fresh = self._run_fresh(instance, [cands[todo[k][0]] for k in keys], fresh_spec)
        for key, result in zip(keys, fresh, strict=True):
            first, *dups = todo[key]
            results[first] = result
            if runner.cacheable(result, cap if cap is not None else runner.limits.timeout):
                runner.cache.put(key, result.to_dict())
            for j in dups:  # what a second Runner.run of the same key would answer
                hit = runner.cache.get(key)
                results[j] = (
                    ExperimentResult.from_cache(hit) if hit is not None else copy.deepcopy(result)
                )
        return [r for r in results if r is not None]

    @abstractmethod
    def _run_fresh(
        self, instance: Instance, cands: list[Candidate], spec: RunSpec
    ) -> list[ExperimentResult]:
        """Train each (distinct, uncached) candidate as ``spec`` says; results in the
        order given."""

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


__all__ = ["Executor", "RunSpec", "capped", "positive_workers", "run_fresh"]
