"""Synthetic landscape families: a fixed knob space per task, a new function per instance.

Each instance seed draws a random function of the task's knobs (from
``numpy.random.default_rng([seed, family])``), so a family is an endless supply of
related but different tuning problems with known truth, evaluated in microseconds. The
function maps a config to an accuracy-like ``val_acc`` in [0, 1]; one experiment seed adds
noise drawn from a hash of (instance, seed, config), with a component shared by every
config on that seed (so candidates compared on one evaluation seed share part of their
noise, as trained ones do). The test split and ``true_value`` are the noise-free value.

* ``synth_smooth``: 6 knobs (log learning rate, ordinal width and depth, linear dropout,
  log weight decay with 0, categorical activation); a near-separable unimodal bowl with a
  random optimum, random curvatures and weak pairwise interactions; homoscedastic noise.
* ``synth_rugged``: 8 knobs (log learning rate, ordinal batch size, two widths sharing the
  ``width`` role, linear dropout, ordinal epochs, categorical optimiser and normalisation);
  several modes, the best learning rate moving with batch size and optimiser, the two widths
  coupled, a ripple, a divergence cliff at high learning rates, and noise that grows at high
  learning rates and low accuracy.
* ``synth_cells``: 6 categorical knobs, the operations on the edges of a 4-node cell as in
  NAS-Bench-201 (``none``, ``skip_connect``, two convolutions, a pooling); per-edge
  operation effects around a per-instance ranking of the operations, interactions on
  three random pairs of edges, and a cell whose output is cut off from its input (every
  path through a ``none`` edge) at the floor. 15,625 configs.
* ``synth_mixed``: 7 knobs, 4 numeric (log learning rate, ordinal batch size and width,
  linear dropout) and 3 categorical (optimiser, activation, schedule); several modes
  whose centres move with the categorical choices and whose heights each combination of
  choices ranks differently, so the best numeric settings depend on the categorical
  ones. 108,864 configs.

Numeric knobs live on the lattice their moves reach from their lower bound (every value an
edit can produce); ``truth_summary`` enumerates the whole lattice (98,784 configs for
``synth_smooth``, 544,320 for ``synth_rugged``, 15,625 for ``synth_cells``, 108,864 for
``synth_mixed``), once per instance.

Instance seeds: meta-train 0-9999, validation 10000-10999, held-out 20000-20999.
"""

from __future__ import annotations

import itertools
import math
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from rsi_rl.task import Instance, Knob, LandscapeTask, TaskError, hash_ints, hash_normal

#: share of a seed's noise common to every config of the instance on that seed
SHARED_NOISE = 0.5


def lattice(knob: Knob) -> list[Any]:
    """Every value edits of ``knob`` reach: its options, or the moves from its lower bound."""
    if knob.scale in ("choice", "categorical"):
        return list(knob.choices)
    return knob.reachable(int(knob.low) if knob.integer else float(knob.low))


class SyntheticTask(LandscapeTask):
    """A family of random functions over a fixed space; subclasses draw and evaluate them.

    Subclasses set the knobs (numeric and ordinal knobs first, categorical ones last, as
    the function takes them) and implement :meth:`draw` (the function's parameters of one
    instance), :meth:`values` (vectorised: noise-free metric, noise std and seconds of
    configs given as positions of the numeric knobs and option indices of the categorical
    ones).
    """

    metric = "val_acc"
    direction = "maximize"
    metric_optimum = 1.0
    meta_train_seeds = range(0, 10_000)
    val_seeds = range(10_000, 11_000)
    heldout_seeds = range(20_000, 21_000)
    #: a number that makes the family's draws differ from another family's
    family: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self._numeric = [k for k in self.knobs if not k.categorical]
        self._categorical = [k for k in self.knobs if k.categorical]
        if self.knobs != (*self._numeric, *self._categorical):
            raise TaskError(f"task {self.name!r}: declare categorical knobs after the others")
        self._lattices = {k.key: lattice(k) for k in self.knobs}
        self._params: dict[int, dict[str, np.ndarray]] = {}
        self._summaries: dict[int, dict[str, float]] = {}

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The parameters of one instance's function."""

    @abstractmethod
    def values(
        self, p: dict[str, np.ndarray], x: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noise-free metric, noise std and seconds of configs ``x`` (``(n, numeric
        knobs)`` positions in [0, 1]) with options ``c`` (``(n, categorical knobs)``)."""

    # ----------------------------------------------------------------- instances
    def params(self, instance: Instance) -> dict[str, np.ndarray]:
        """The function of ``instance`` (drawn once per instance seed and process)."""
        seed = int(instance.seed)
        p = self._params.get(seed)
        if p is None:
            if len(self._params) > 4096:
                self._params.clear()
            p = self.draw(np.random.default_rng([seed, self.family]))
            self._params[seed] = p
        return p

    def make_instance(self, seed: int) -> Instance:
        rng = np.random.default_rng([int(seed), self.family, 1])
        start = {}
        for knob in self.knobs:
            options = self._lattices[knob.key]
            start[knob.key] = options[int(rng.integers(len(options)))]
        return Instance(
            task=self.name,
            seed=int(seed),
            data={},
            start_config=start,
            info={"family": self.name, "function": f"{self.name} #{int(seed)}"},
        )

    def _encode(self, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        x = np.empty((1, len(self._numeric)))
        c = np.empty((1, len(self._categorical)), dtype=np.int64)
        for i, knob in enumerate(self._numeric):
            value = config.get(knob.key)
            if knob.scale == "choice":
                if value not in knob.choices:
                    raise TaskError(f"{knob.key}={value!r} is not one of {list(knob.choices)}")
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TaskError(f"{knob.key}={value!r} is not a number")
            x[0, i] = knob.position(value)
        for j, knob in enumerate(self._categorical):
            value = config.get(knob.key)
            if value not in knob.choices:
                raise TaskError(f"{knob.key}={value!r} is not one of {list(knob.choices)}")
            c[0, j] = knob.choices.index(value)
        return x, c

    # ----------------------------------------------------------------- hooks
    def sample(self, instance: Instance, config: dict[str, Any], seed: int) -> tuple[float, float]:
        x, c = self._encode(config)
        mean, std, seconds = self.values(self.params(instance), x, c)
        key = hash_ints(*(round(v * 1e6) for v in x[0]), *c[0])
        shared = hash_normal(instance.seed, seed, self.family)
        own = hash_normal(instance.seed, seed, self.family, key)
        z = math.sqrt(SHARED_NOISE) * shared + math.sqrt(1.0 - SHARED_NOISE) * own
        value = min(1.0, max(0.0, float(mean[0]) + float(std[0]) * z))
        jitter = 1.0 + 0.05 * hash_normal(instance.seed, seed, key, 7)
        return value, float(seconds[0]) * max(0.5, jitter)

    def mean(self, instance: Instance, config: dict[str, Any]) -> tuple[float, float]:
        x, c = self._encode(config)
        mean, _, seconds = self.values(self.params(instance), x, c)
        return float(mean[0]), float(seconds[0])

    def all_means(self, instance: Instance) -> np.ndarray:
        """The noise-free metric over the whole lattice (every categorical combination
        times the grid of the numeric knobs' lattices)."""
        p = self.params(instance)
        axes = [np.array([k.position(v) for v in self._lattices[k.key]]) for k in self._numeric]
        combos = itertools.product(*(range(len(k.choices)) for k in self._categorical))
        if not axes:  # categorical knobs only: every combination at once
            c_all = np.array(list(combos), dtype=np.int64)
            return self.values(p, np.zeros((len(c_all), 0)), c_all)[0]
        grid = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
        out = []
        for combo in combos:
            c = np.tile(np.array(combo, dtype=np.int64), (len(grid), 1))
            out.append(self.values(p, grid, c)[0])
        return np.concatenate(out)

    def truth_summary(self, instance: Instance) -> dict[str, float]:
        seed = int(instance.seed)
        summary = self._summaries.get(seed)
        if summary is None:
            if len(self._summaries) > 4096:
                self._summaries.clear()
            summary = super().truth_summary(instance)
            self._summaries[seed] = summary
        return dict(summary)


class SmoothSyntheticTask(SyntheticTask):
    """A near-separable unimodal bowl per instance (6 knobs); ``val_acc`` in [0, 1]."""

    name = "synth_smooth"
    family = 1
    #: the median over instances of the std of val_acc across seeds at the start config
    noise_prior = 0.01
    knobs = (
        Knob("lr", "learning_rate", "log", 1e-4, 1.0, 2.0),
        Knob("width", "width", "choice", choices=(16, 32, 64, 128, 256, 512, 1024)),
        Knob("depth", "depth", "choice", choices=(1, 2, 3, 4, 5, 6)),
        Knob("dropout", "dropout", "linear", 0.0, 0.5, 0.1),
        Knob("weight_decay", "weight_decay", "log", 1e-6, 0.1, 10.0, zero_ok=True),
        Knob("activation", "activation", "categorical", choices=("relu", "tanh", "gelu", "silu")),
    )

    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d = len(self._numeric)
        curv = rng.uniform(0.1, 0.8, d)
        curv[0] *= 3.0  # the learning rate matters most
        rho = np.triu(rng.uniform(-0.15, 0.15, (d, d)), 1)
        q = np.diag(curv) - (rho + rho.T) * np.sqrt(np.outer(curv, curv))  # positive definite
        act = rng.normal(0.0, 0.25, len(self.knobs[-1].choices))
        return {
            "opt": rng.uniform(0.15, 0.85, d),
            "q": q,
            "act": act.max() - act,
            "top": rng.uniform(0.8, 0.98, 1),
            "floor": rng.uniform(0.05, 0.4, 1),
            "noise": rng.uniform(0.004, 0.015, 1),
            "t0": rng.uniform(2.0, 20.0, 1),
        }

    def values(
        self, p: dict[str, np.ndarray], x: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dx = x - p["opt"]
        score = -np.einsum("ni,ij,nj->n", dx, p["q"], dx) - p["act"][c[:, 0]]
        top, floor = p["top"][0], p["floor"][0]
        acc = floor + (top - floor) * np.exp(score)
        std = np.full(len(x), p["noise"][0])
        seconds = p["t0"][0] * 2.0 ** (6.0 * x[:, 1]) / 8.0 * (1.0 + 5.0 * x[:, 2])
        return acc, std, seconds


class RuggedSyntheticTask(SyntheticTask):
    """A multimodal, strongly interacting landscape per instance (8 knobs); ``val_acc``."""

    name = "synth_rugged"
    family = 2
    #: the median over instances of the std of val_acc across seeds at the start config
    noise_prior = 0.018
    knobs = (
        Knob("lr", "learning_rate", "log", 1e-5, 1.0, 4.0),
        Knob("batch_size", "batch", "choice", choices=(16, 32, 64, 128, 256, 512)),
        Knob("width1", "width", "choice", choices=(32, 64, 128, 256, 512, 1024)),
        Knob("width2", "width", "choice", choices=(32, 64, 128, 256, 512, 1024)),
        Knob("dropout", "dropout", "linear", 0.0, 0.6, 0.1),
        Knob("epochs", "duration", "choice", choices=(5, 10, 20, 40, 80)),
        Knob("optimizer", "optimiser", "categorical", choices=("sgd", "adam", "adamw", "rmsprop")),
        Knob("norm", "normalisation", "categorical", choices=("none", "batch", "layer")),
    )

    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d = len(self._numeric)
        n_opt, n_norm = (len(k.choices) for k in self._categorical)
        modes = int(rng.integers(3, 6))
        heights = np.concatenate([[1.0], rng.uniform(0.55, 0.95, modes - 1)])
        gain = rng.uniform(0.6, 1.0, (n_opt, n_norm))
        cliff = rng.uniform(0.85, 1.05, (n_opt, n_norm))
        cliff[:, 0] -= 0.1  # no normalisation: diverges at lower learning rates
        return {
            "centre": rng.uniform(0.1, 0.9, (modes, d)),
            "width": rng.uniform(0.45, 0.9, (modes, d)),
            "height": heights,
            "batch_lr": rng.uniform(0.2, 0.5, 1),
            "opt_lr": rng.uniform(-0.25, 0.25, n_opt),
            "gain": gain / gain.max(),
            "cliff": cliff,
            "freq": rng.integers(1, 5, d).astype(float),
            "phase": rng.uniform(0.0, 2.0 * np.pi, 1),
            "ripple": rng.uniform(0.02, 0.06, 1),
            "top": rng.uniform(0.75, 0.97, 1),
            "floor": rng.uniform(0.05, 0.3, 1),
            "noise": rng.uniform(0.004, 0.012, 1),
            "t0": rng.uniform(1.0, 10.0, 1),
        }

    def values(
        self, p: dict[str, np.ndarray], x: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        opt, norm = c[:, 0], c[:, 1]
        # the best learning rate moves with batch size and optimiser; the widths are coupled
        lr = x[:, 0] - p["batch_lr"][0] * (x[:, 1] - 0.5) + p["opt_lr"][opt]
        z = x.copy()
        z[:, 0] = lr
        z[:, 3] = np.clip(x[:, 3] - x[:, 2] + 0.5, 0.0, 1.0)
        dist = ((z[:, None, :] - p["centre"][None]) / p["width"][None]) ** 2
        core = np.max(p["height"][None] * np.exp(-0.5 * dist.sum(axis=2)), axis=1)
        core = core * p["gain"][opt, norm]
        core = core + p["ripple"][0] * np.sin(2.0 * np.pi * x @ p["freq"] + p["phase"][0])
        core = np.clip(core, 0.0, 1.0)
        core = np.where(lr > p["cliff"][opt, norm], 0.0, core)  # training diverges
        top, floor = p["top"][0], p["floor"][0]
        acc = floor + (top - floor) * core
        std = p["noise"][0] * (1.0 + 4.0 * np.clip(lr - 0.5, 0.0, None)) * (2.0 - core)
        seconds = (
            p["t0"][0]
            * 2.0 ** (4.0 * x[:, 5])
            * (0.5 + x[:, 2] + x[:, 3])
            * 2.0 ** (-1.5 * x[:, 1])
        )
        return acc, std, seconds


#: the operations of a ``synth_cells`` edge (index 0: no edge)
CELL_OPS = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool")
#: the edges of its 4-node cell, (from, to), in knob order
CELL_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


class CellsSyntheticTask(SyntheticTask):
    """A cell architecture per instance: 6 categorical edge operations; ``val_acc``."""

    name = "synth_cells"
    family = 3
    #: the median over instances of the std of val_acc across seeds at the start config
    noise_prior = 0.007
    knobs = tuple(
        Knob(f"edge_{a}_{b}", "architecture", "categorical", choices=CELL_OPS)
        for a, b in CELL_EDGES
    )

    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n_edges, n_ops = len(CELL_EDGES), len(CELL_OPS)
        rank = rng.normal(0.0, 0.5, n_ops)  # how good each operation is, on any edge
        pairs = rng.choice(n_edges * (n_edges - 1) // 2, size=3, replace=False)
        upper = [(i, j) for i in range(n_edges) for j in range(i + 1, n_edges)]
        return {
            "effect": rank[None, :] + rng.normal(0.0, 0.25, (n_edges, n_ops)),
            "pairs": np.array([upper[k] for k in pairs], dtype=np.int64),
            "inter": rng.normal(0.0, 0.3, (3, n_ops, n_ops)),
            "scale": rng.uniform(0.4, 0.8, 1),
            "top": rng.uniform(0.75, 0.95, 1),
            "floor": rng.uniform(0.05, 0.2, 1),
            "noise": rng.uniform(0.004, 0.015, 1),
            "t0": rng.uniform(2.0, 20.0, 1),
        }

    def values(
        self, p: dict[str, np.ndarray], x: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        edges = np.arange(len(CELL_EDGES))
        score = p["effect"][edges[None, :], c].sum(axis=1)
        for k, (i, j) in enumerate(p["pairs"]):
            score = score + p["inter"][k, c[:, i], c[:, j]]
        on = c != 0  # an edge that is not "none"
        e01, e02, e12, e03, e13, e23 = (on[:, k] for k in range(len(CELL_EDGES)))
        connected = e03 | (e01 & e13) | (e02 & e23) | (e01 & e12 & e23)
        top, floor = p["top"][0], p["floor"][0]
        acc = floor + (top - floor) / (1.0 + np.exp(-p["scale"][0] * score))
        acc = np.where(connected, acc, floor)
        std = np.full(len(c), p["noise"][0])
        convs = ((c == 2) | (c == 3)).sum(axis=1)
        seconds = p["t0"][0] * (1.0 + convs + 2.0 * (c == 3).sum(axis=1)) / 4.0
        return acc, std, seconds


class MixedSyntheticTask(SyntheticTask):
    """Modes that move with categorical choices (4 numeric, 3 categorical knobs); ``val_acc``."""

    name = "synth_mixed"
    family = 4
    #: the median over instances of the std of val_acc across seeds at the start config
    noise_prior = 0.01
    knobs = (
        Knob("lr", "learning_rate", "log", 1e-4, 1.0, 2.0),
        Knob("batch_size", "batch", "choice", choices=(16, 32, 64, 128, 256, 512)),
        Knob("width", "width", "choice", choices=(32, 64, 128, 256, 512, 1024)),
        Knob("dropout", "dropout", "linear", 0.0, 0.5, 0.1),
        Knob("optimizer", "optimiser", "categorical", choices=("sgd", "adam", "adamw")),
        Knob("activation", "activation", "categorical", choices=("relu", "tanh", "gelu", "silu")),
        Knob("schedule", "schedule", "categorical", choices=("constant", "cosine", "step")),
    )

    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d = len(self._numeric)
        sizes = [len(k.choices) for k in self._categorical]
        modes = int(rng.integers(2, 6))
        return {
            "centre": rng.uniform(0.15, 0.85, (modes, d)),
            "width": rng.uniform(0.25, 0.6, (modes, d)),
            "height": np.concatenate([[1.0], rng.uniform(0.6, 0.95, modes - 1)]),
            # per categorical knob and option: a shift of every mode's centre ...
            "shift": rng.normal(0.0, 0.12, (len(sizes), max(sizes), d)),
            # ... and a preference of each mode for it
            "pref": rng.normal(0.0, 0.2, (len(sizes), max(sizes), modes)),
            "top": rng.uniform(0.75, 0.97, 1),
            "floor": rng.uniform(0.05, 0.3, 1),
            "noise": rng.uniform(0.004, 0.015, 1),
            "t0": rng.uniform(2.0, 20.0, 1),
        }

    def values(
        self, p: dict[str, np.ndarray], x: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        knobs = np.arange(c.shape[1])
        shift = p["shift"][knobs[None, :], c].sum(axis=1)  # (n, d)
        pref = p["pref"][knobs[None, :], c].sum(axis=1)  # (n, modes)
        z = (x[:, None, :] - p["centre"][None] - shift[:, None, :]) / p["width"][None]
        height = np.minimum(1.0, p["height"][None] * np.exp(pref))
        core = np.max(height * np.exp(-0.5 * (z**2).sum(axis=2)), axis=1)
        top, floor = p["top"][0], p["floor"][0]
        acc = floor + (top - floor) * core
        std = p["noise"][0] * (1.5 - 0.5 * core)
        seconds = p["t0"][0] * 2.0 ** (-2.0 * x[:, 1]) * (0.5 + 2.0 * x[:, 2])
        return acc, std, seconds
