"""A learned acquisition function: the agent scores a pool of whole candidates and runs the best.

At each experiment the agent builds a pool of candidates of the task's
:class:`~rsi_rl.core.space.CandidateSpace` (the same space TPE searches: every edit of the
incumbent, perturbations of it, uniform draws; none the campaign already ran), computes
each one's features from the campaign so far (:mod:`rsi_rl.agents.acquisition_features`:
Gaussian-process and Parzen estimates, distances, budget used), and runs the candidate
its scorer rates highest. Each proposal is one experiment, kept or reverted by the
campaign like any other.

Scorers (``scorer``):

- ``gp_ei``: no learning, the expected improvement of the short-length-scale Gaussian
  process (the ablation that says what the learned scorer adds);
- a path to a ``.npz`` file written by ``scripts/train_acquisition.py``: a small
  multilayer perceptron trained, across task families, to predict a candidate's true
  improvement over the incumbent (normalised by the instance's optimum-to-median span)
  from its features. It is read with ``allow_pickle=False``: weights only, no code.

Example:
    rsi-rl search task=digits_mlp agent=acquisition budget=20
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.agents.acquisition_features import FEATURES, Encoding, features, pool
from rsi_rl.agents.base import Agent, Record, evaluated_candidate
from rsi_rl.agents.sb3 import resolve_policy_path
from rsi_rl.agents.tpe import trial_value
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.core.errors import ConfigError, EditError
from rsi_rl.core.space import CandidateSpace

#: the built-in scorer that needs no training
GP_EI = "gp_ei"


class Scorer:
    """Rates pool candidates from their features (higher: run it first).

    Args:
        path: ``gp_ei`` or a scorer file (a relative path that does not exist from the
            working directory is looked up in the project folder, as the shipped
            ``policies/acquisition/acquisition.npz`` is; ``.npz``: ``w0, b0, w1, b1, w2, b2`` of a
            ReLU perceptron, the feature ``mean`` and ``std`` it was trained with, and
            the ``features`` names, which must be :data:`FEATURES`).

    Raises:
        ConfigError: a missing or malformed file, or one trained on other features.
    """

    def __init__(self, path: str | Path = GP_EI):
        self.path = str(path)
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        if self.path == GP_EI:
            return
        file = resolve_policy_path(Path(self.path).expanduser())
        if not file.is_file():
            raise ConfigError(
                f"agent.scorer={self.path!r} is not a file; give gp_ei or a scorer written "
                "by scripts/train_acquisition.py"
            )
        try:
            with np.load(file, allow_pickle=False) as data:
                names = tuple(str(n) for n in data["features"])
                self.mean, self.std = data["mean"], data["std"]
                self.layers = [(data[f"w{i}"], data[f"b{i}"]) for i in range(3)]
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"agent.scorer={self.path!r} cannot be read: {exc}") from None
        if names != FEATURES:
            raise ConfigError(
                f"agent.scorer={self.path!r} was trained on other features; retrain it with "
                "scripts/train_acquisition.py"
            )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.layers:
            out: np.ndarray = x[:, FEATURES.index("gp_ei_short")]
            return out
        h = (x - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return np.asarray(h[:, 0], dtype=np.float64)


class AcquisitionAgent(Agent):
    """Runs, each experiment, the pool candidate its scorer rates highest.

    Args:
        seed: seed of the pool's draws (and of ties and exploration).
        scorer: ``gp_ei`` or a scorer file (see :class:`Scorer`).
        n_uniform, n_local: uniform draws and perturbations of the incumbent in each
            pool (every edit of the incumbent is always in it).
        explore: the chance of running a uniformly chosen pool candidate instead (for
            collecting training data; 0 to act).
        trace: a list to append, per experiment, the pool's features, candidates'
            parameters, the chosen row and the campaign's incumbent metric and noise
            estimate when it asked (for training a scorer); None: keep nothing.
    """

    name = "acquisition"

    def __init__(
        self,
        seed: int | None = None,
        scorer: str | Path = GP_EI,
        n_uniform: int = 64,
        n_local: int = 32,
        explore: float = 0.0,
        trace: list[dict[str, Any]] | None = None,
    ):
        super().__init__(seed)
        if not 0.0 <= float(explore) <= 1.0:
            raise ConfigError(f"agent.explore must be in [0, 1], got {explore!r}")
        self.scorer = scorer if isinstance(scorer, Scorer) else Scorer(scorer)
        self.n_uniform, self.n_local = int(n_uniform), int(n_local)
        self.explore = float(explore)
        self.trace = trace
        self._pending: dict[str, tuple[int, ...]] = {}

    def reset(self, view: CampaignView) -> None:
        self._view = view
        self.space = CandidateSpace(view.task, view.start_config)
        self.enc = Encoding.of(self.space.distributions)
        self.maximize = view.task.direction == "maximize"
        start = self.enc.index(self.space.params_of(self.space.start))
        self.points: list[tuple[int, ...]] = [start]
        self.values: list[float | None] = [float(view.start_metric)]
        self.incumbent = start
        self._pending = {}

    def _signed(self) -> list[float]:
        """The run points' values, higher is better; a failed run: the worst so far."""
        sign = 1.0 if self.maximize else -1.0
        out: list[float] = []
        for v in self.values:
            out.append(sign * v if v is not None else min(out) if out else 0.0)
        return out

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        inc = self.enc_of(view.incumbent)
        if inc is not None and inc in self.points:
            self.incumbent = inc
        run = set(self.points) | set(self._pending.values())
        cands, sources = pool(self.enc, self.incumbent, run, self.rng, self.n_uniform, self.n_local)
        if not cands:
            return []  # a spent space
        x = features(
            self.enc,
            cands,
            sources,
            self.points,
            self._signed(),
            self.incumbent,
            view.experiments_used / max(1, view.budget),
        )
        scores = self.scorer(x)
        if self.explore and self.rng.random() < self.explore:
            pick = int(self.rng.integers(len(cands)))
        else:
            top = np.flatnonzero(scores >= scores.max() - 1e-12)
            pick = int(self.rng.choice(top))
        if self.trace is not None:
            self.trace.append(
                {
                    "x": x,
                    "points": cands,
                    "pick": pick,
                    "incumbent": self.incumbent,
                    "incumbent_metric": float(view.incumbent_metric),
                    "noise": float(view.noise),
                }
            )
        try:
            child, description = self.space.candidate(self.enc.params(cands[pick]), self.name)
        except EditError:  # patches that do not compose: remember it as run, ask again
            self.points.append(cands[pick])
            self.values.append(None)
            return self.ask(view, n)
        self._pending[child.hash] = cands[pick]
        return [Proposal(self.name, child, description)]

    def enc_of(self, cand: Any) -> tuple[int, ...] | None:
        """The point of a candidate of this campaign (None: outside the space)."""
        try:
            return self.enc.index(self.space.params_of(cand))
        except (KeyError, ValueError):
            return None

    def tell(self, records: Sequence[Record]) -> None:
        for record in records:
            cand_hash = evaluated_candidate(record, self._view.eval_seed)
            if cand_hash is None:
                continue  # a rerun on a fresh seed, or refused
            point = self._pending.pop(cand_hash, None)
            if point is None:  # another agent's experiment
                cand = self._view.candidate(cand_hash)
                point = self.enc_of(cand) if cand is not None else None
                if point is None or point in self.points:
                    continue
            self.points.append(point)
            self.values.append(trial_value(record))


__all__ = ["GP_EI", "AcquisitionAgent", "Scorer"]
