"""Encoding a campaign's state as the observation of :mod:`rsi_rl.actions`.

:class:`History` keeps the campaign's record of each edit and of each knob or patch (tries,
mean normalised change, share kept); :class:`Evidence` keeps the candidates the campaign
has evaluated as points of the task's knob space and scores the child each slot would
train against them (what a model-based search such as TPE exploits); :func:`slot_rows`
turns the task's edits, the incumbent and the mask into the per-slot feature rows.
:class:`CampaignMemory` keeps these for one campaign, told each outcome by the env, and
:func:`encode` turns the campaign, its memory and the mask into the observation vector
(:data:`rsi_rl.actions.OBSERVATION_FEATURES`), and :func:`step_info` a record into a step's
``info``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rsi_rl.actions import EVIDENCE_FEATURES, MAX_SLOTS, SLOT_FEATURES
from rsi_rl.campaign import Campaign, Outcome, Proposal
from rsi_rl.core.edits import EDIT_OPS, Candidate, EditSpace
from rsi_rl.core.knob import Knob
from rsi_rl.core.record import VOLATILE_KEYS
from rsi_rl.core.roles import ROLES
from rsi_rl.exec.runner import STATUSES, observed_status

_ROLE = {r: i for i, r in enumerate(ROLES)}
_OP = {op: i for i, op in enumerate(EDIT_OPS)}
_N_ROLES, _N_OPS = len(ROLES), len(EDIT_OPS)


def clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    """``x`` clipped to [lo, hi]; 0 for a non-finite value."""
    if not math.isfinite(x):
        return 0.0
    return float(min(hi, max(lo, x)))


class History:
    """Per-key tries, sum of normalised changes and number kept."""

    def __init__(self) -> None:
        self._stats: dict[str, list[float]] = {}

    def add(self, key: str, delta: float, kept: bool) -> None:
        s = self._stats.setdefault(key, [0, 0.0, 0])
        s[0] += 1
        s[1] += delta
        s[2] += int(kept)

    def tries(self, key: str) -> int:
        return int(self._stats.get(key, (0,))[0])

    def features(self, key: str, budget: int) -> tuple[float, float, float]:
        """(tries / budget, mean change, share kept), each in [-1, 1]."""
        tries, total, wins = self._stats.get(key, (0, 0.0, 0))
        if not tries:
            return 0.0, 0.0, 0.0
        return clip(tries / budget, 0, 1), clip(total / tries), wins / tries


class Evidence:
    """The candidates a campaign has evaluated, as points of the task's knob space.

    Each knob is a coordinate (its :meth:`~rsi_rl.core.knob.Knob.position` in [0, 1]; a
    categorical knob's option and a patch's on/off are compared by exact match) and each
    evaluated candidate a point with its *progress*: its score's change from the start
    candidate, in units of the instance's scale (so the incumbent's progress is the
    observation's ``incumbent_progress``). A failed run is a point without progress.

    :meth:`features` scores the children the edit slots would train against these points
    with a Gaussian kernel ``exp(-d^2 / 2h^2)`` (``h = bandwidth``; an option or patch that
    differs counts as distance ``mismatch``); see
    :data:`rsi_rl.actions.EVIDENCE_FEATURES`:

    * ``model_delta``: a kernel-weighted (Nadaraya-Watson) estimate of the child's progress
      minus the incumbent's, shrunk toward 0 by a pseudo-weight ``prior`` (little evidence
      near the child: little predicted change), clipped to [-1, 1];
    * ``model_support``: the kernel weight of the evaluated points near the child,
      ``W / (1 + W)`` in [0, 1);
    * ``good_ratio``: a TPE-style density ratio: ``log((l + u) / (g + u))`` divided by
      ``log((1 + u) / u)``, with ``l`` and ``g`` the mean kernel weight of the child to the
      best ``gamma`` share of the evaluated points and to the rest (failed runs included),
      ``u = floor``; in [-1, 1], 0 with fewer than two distinct outcomes;
    * ``child_seen``: 1 if the child itself was already evaluated.

    Adding a point costs one :meth:`~rsi_rl.core.knob.Knob.position` per knob; scoring the
    children is a few array operations over (children x points x knobs).

    Args:
        space: the task's edit space (its knobs and patches are the coordinates).
        bandwidth: the kernel width ``h``, in position units.
        mismatch: the distance of a differing categorical option or patch.
        prior: the pseudo-weight that shrinks ``model_delta`` toward 0.
        gamma: the share of evaluated points that count as good in ``good_ratio``.
        floor: the flat density ``u`` added to both densities of ``good_ratio``.
    """

    def __init__(
        self,
        space: EditSpace,
        bandwidth: float = 0.15,
        mismatch: float = 0.25,
        prior: float = 0.5,
        gamma: float = 0.25,
        floor: float = 0.1,
    ) -> None:
        task = space.task
        self.knobs: tuple[Knob, ...] = tuple(task.knobs)
        self.patches: tuple[str, ...] = tuple(p.name for p in task.patches)
        self.dim: dict[str, int] = {k.key: i for i, k in enumerate(self.knobs)}
        self.dim.update({name: len(self.knobs) + i for i, name in enumerate(self.patches)})
        n = len(self.dim)
        self.exact = np.zeros(n, dtype=bool)  # coordinates compared by exact match
        self.exact[[i for i, k in enumerate(self.knobs) if k.categorical]] = True
        self.exact[len(self.knobs) :] = True
        self.bandwidth, self.mismatch, self.prior = float(bandwidth), float(mismatch), float(prior)
        self.gamma, self.floor = float(gamma), float(floor)
        self._points: list[np.ndarray] = []
        self._progress: list[float] = []  # nan: a failed run
        self._seen: dict[str, int] = {}
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._points)

    def seen(self, cand: Candidate) -> bool:
        """Whether ``cand`` was evaluated."""
        return cand.hash in self._seen

    def coordinate(self, knob: Knob, value: Any) -> float:
        """``value``'s coordinate on ``knob``: its position, or a categorical option's
        index (-1 for a value that is not an option)."""
        if knob.categorical:
            return float(knob.choices.index(value)) if value in knob.choices else -1.0
        if value is None:
            return 0.0
        return knob.position(value)

    def point(self, cand: Candidate) -> np.ndarray:
        """``cand``'s coordinates: one per knob, then one per patch (1.0: on)."""
        out = np.empty(len(self.dim), dtype=np.float64)
        for i, knob in enumerate(self.knobs):
            out[i] = self.coordinate(knob, cand.config.get(knob.key))
        for i, name in enumerate(self.patches):
            out[len(self.knobs) + i] = 1.0 if name in cand.toggles else 0.0
        return out

    def add(self, cand: Candidate, progress: float | None) -> None:
        """Record an evaluation of ``cand`` (``progress`` None: the run failed). A candidate
        already recorded keeps its first outcome."""
        if cand.hash in self._seen:
            return
        self._seen[cand.hash] = len(self._points)
        self._points.append(self.point(cand))
        ok = progress is not None and math.isfinite(progress)
        self._progress.append(float(progress) if ok else math.nan)  # type: ignore[arg-type]
        self._cache = None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points, progress, good): the evaluated points, their progress (nan: failed),
        and which of them count as good for ``good_ratio``."""
        if self._cache is None:
            x = np.asarray(self._points, dtype=np.float64).reshape(len(self._points), -1)
            y = np.asarray(self._progress, dtype=np.float64)
            good = np.zeros(len(y), dtype=bool)
            ok = np.flatnonzero(np.isfinite(y))
            if len(ok) >= 2 and np.ptp(y[ok]) > 0:
                n_good = max(1, math.ceil(self.gamma * len(ok)))
                good[ok[np.argsort(-y[ok], kind="stable")[:n_good]]] = True
            self._cache = (x, y, good)
        return self._cache

    def children_points(
        self, space: EditSpace, incumbent: Candidate, children: Sequence[Candidate | None]
    ) -> np.ndarray:
        """The points of ``children`` (the incumbent's, where a child is None). Each edit
        changes one coordinate of the incumbent, so a child costs one position."""
        base = self.point(incumbent)
        out = np.repeat(base[None, :], len(children), axis=0)
        for i, (edit, child) in enumerate(zip(space.edits, children, strict=True)):
            if child is None:
                continue
            j = self.dim[edit.target]
            if edit.op == "toggle":
                out[i, j] = 1.0 if edit.target in child.toggles else 0.0
            else:
                out[i, j] = self.coordinate(self.knobs[j], child.config.get(edit.target))
        return out

    def features(self, points: np.ndarray, progress: float) -> np.ndarray:
        """The ``(len(points), len(EVIDENCE_FEATURES))`` features of candidates at
        ``points``, against an incumbent at ``progress``, less ``child_seen``'s column
        (filled by :meth:`slot_features`)."""
        out = np.zeros((len(points), len(EVIDENCE_FEATURES)), dtype=np.float64)
        if not len(self._points) or not len(points):
            return out
        x, y, good = self._arrays()
        diff = points[:, None, :] - x[None, :, :]
        sq = np.where(self.exact, (diff != 0) * self.mismatch**2, diff**2).sum(axis=-1)
        w = np.exp(-sq / (2.0 * self.bandwidth**2))  # (candidates, points)
        ok = np.isfinite(y)
        w_ok = w[:, ok]
        total = w_ok.sum(axis=1)
        out[:, 0] = np.clip(w_ok @ (y[ok] - progress) / (total + self.prior), -1.0, 1.0)
        out[:, 1] = total / (1.0 + total)
        if good.any():
            u = self.floor
            lo, hi = w[:, good].mean(axis=1), w[:, ~good].mean(axis=1)
            out[:, 2] = np.log((lo + u) / (hi + u)) / math.log((1.0 + u) / u)
        return out

    def slot_features(
        self,
        space: EditSpace,
        incumbent: Candidate,
        children: Sequence[Candidate | None],
        progress: float,
    ) -> np.ndarray:
        """:data:`EVIDENCE_FEATURES` of each edit slot's child (zeros where it is None)."""
        points = self.children_points(space, incumbent, children)
        out = self.features(points, progress)
        present = np.array([c is not None for c in children], dtype=bool)
        out[:, 3] = [c is not None and c.hash in self._seen for c in children]
        out[~present] = 0.0
        return out


class CampaignMemory:
    """What the observation keeps of one campaign: the history of each edit, of each knob
    or patch and of the meta-actions (``reevaluate``, ``propose``), and the
    :class:`Evidence` of the candidates trained on the campaign's evaluation seed.

    Args:
        space: the task's edit space.
        research: the campaign, after its start (the start candidate is the first point
            of the evidence, at progress 0).
    """

    def __init__(self, space: EditSpace, research: Campaign) -> None:
        self.space, self.research = space, research
        self.edits, self.targets = History(), History()
        self.meta = History()  # reevaluate and propose
        self.evidence = Evidence(space)
        self.evidence.add(research.incumbent, 0.0)

    def tell(self, outcome: Outcome, proposal: Proposal) -> None:
        """Count one recorded experiment (of ``proposal``) in the history and evidence."""
        record = outcome.record
        kind = record["kind"]
        if kind == "reevaluate":
            self.meta.add(kind, 0.0, False)
        elif record["status"] != "invalid" or kind == "propose":
            self._count(kind, outcome.delta, outcome.kept)
        self._witness(record, proposal)

    def _count(self, kind: str, delta: float, kept: bool) -> None:
        """The history of an edit (and its knob or patch) or a proposal: tries, mean
        normalised change, kept. Other labels (``tpe``) count nowhere."""
        if kind in self.space.index:
            self.edits.add(kind, delta, kept)
            self.targets.add(self.space.get(kind).target, delta, kept)
        elif kind == "propose":
            self.meta.add(kind, delta, kept)

    def _witness(self, record: dict[str, Any], proposal: Proposal) -> None:
        """Add a candidate trained on the evaluation seed to the evidence: its progress
        from the start (None when the run failed)."""
        research = self.research
        if proposal.candidate is None or record["status"] == "invalid":
            return
        if record.get("seed") != research.eval_seed:
            return
        metric = record.get("metric")
        progress = None
        if record["status"] == "ok" and metric is not None:
            progress = (research.task.score(metric) - research.start_score) / research.scale
        self.evidence.add(proposal.candidate, progress)


def encode(
    memory: CampaignMemory, children: Sequence[Candidate | None], mask: np.ndarray
) -> np.ndarray:
    """The observation of the campaign's current state: the global features, one row per
    edit slot (:func:`slot_rows`) and the meta-actions' mask.

    Args:
        memory: the campaign's memory (its campaign gives the budget, scores and last
            record).
        children: the child each edit of the space would train now (None: invalid).
        mask: the env's action mask (``stop`` valid).
    """
    research, space = memory.research, memory.space
    task, budget = research.task, research.budget
    f: list[float] = []
    last = research.last
    f.append(clip(research.experiments_used / budget, 0, 1))
    f.append(
        clip(research.seconds_used / research.budget_seconds, 0, 1)
        if research.budget_seconds
        else 0.0
    )
    progress = (research.incumbent_estimate - research.start_score) / research.scale
    f.append(clip(progress))
    metric = last.get("metric") if last.get("kind") not in ("baseline", "stop") else None
    if metric is not None and last.get("split") == "val":
        s = task.score(metric)
        f.append(clip((s - research.start_score) / research.scale))
        f.append(clip(research.last_delta))
    else:
        f.extend([0.0, 0.0])
    f.append(clip(research.noise / research.scale, 0, 1))
    f.append(min(len(research.incumbent_scores), 5) / 5.0)
    f.append(1.0 if last.get("kept") and last.get("kind") != "baseline" else 0.0)
    f.append(clip(research.since_improvement / budget, 0, 1))
    diag = last.get("diagnostics") or {}
    f.append(clip(diag.get("loss_ratio", 1.0) / 2.0, 0, 1))
    gap = 0.0
    if "train_acc" in diag and metric is not None and task.metric.endswith("acc"):
        gap = diag["train_acc"] - metric
    f.append(clip(gap))
    f.append(clip(diag.get("slope", 0.0)))
    n_exp = max(1, research.experiments_used)
    failed = sum(v for k, v in research.status_counts.items() if k != "ok")
    f.append(clip(failed / n_exp, 0, 1))
    f.append(len(space) / MAX_SLOTS)
    f.append(memory.meta.features("reevaluate", budget)[0])
    f.extend(memory.meta.features("propose", budget)[:2])
    status = observed_status(last.get("status"))  # a pruned run reads as a timeout
    f.extend(1.0 if status == s else 0.0 for s in STATUSES)
    rows = slot_rows(
        space,
        research.incumbent,
        children,
        mask[: len(space)],
        memory.edits,
        memory.targets,
        budget,
        memory.evidence,
        progress,
    )
    meta = [1.0 if m else 0.0 for m in mask[MAX_SLOTS:]]
    return np.concatenate(
        [np.asarray(f, dtype=np.float32), rows.ravel(), np.asarray(meta, dtype=np.float32)]
    )


def step_info(
    research: Campaign, record: dict[str, Any], used: int | None = None
) -> dict[str, Any]:
    """``info`` of a step: the record (less volatile fields) and the campaign's state
    as of that record (``used``: experiments counted up to it)."""
    exp = copy.deepcopy({k: v for k, v in record.items() if k not in VOLATILE_KEYS and k != "id"})

    def own(key: str, now: Any) -> Any:
        value = record.get(key)
        return now if value is None else value

    return {
        "experiment": exp,
        "status": record.get("status"),
        "kind": record.get("kind"),
        "start_metric": research.start_metric,
        "incumbent_metric": own("incumbent_metric", research.incumbent_metric),
        "best_metric": own("best_metric", research.best_metric),
        "experiments_used": research.experiments_used if used is None else used,
        "seconds_used": own("seconds_used", research.seconds_used),
        "instance": research.instance.id,
    }


def slot_rows(
    space: EditSpace,
    incumbent: Candidate,
    children: Sequence[Candidate | None],
    valid: Sequence[bool] | np.ndarray,
    edits: History,
    targets: History,
    budget: int,
    evidence: Evidence | None = None,
    progress: float = 0.0,
) -> np.ndarray:
    """The ``(MAX_SLOTS, len(SLOT_FEATURES))`` rows describing the task's edits.

    ``evidence`` (the campaign's evaluated candidates) and ``progress`` (the incumbent's)
    give the :data:`EVIDENCE_FEATURES` columns; without it they are 0.
    """
    rows = np.zeros((MAX_SLOTS, len(SLOT_FEATURES)), dtype=np.float32)
    task = space.task
    n = len(space)
    if evidence is not None and n:
        model = evidence.slot_features(space, incumbent, children, progress)
    else:
        model = np.zeros((n, len(EVIDENCE_FEATURES)))
    for i, (edit, child) in enumerate(zip(space.edits, children, strict=True)):
        row: list[float] = [1.0]
        row += [1.0 if j == _ROLE[edit.role] else 0.0 for j in range(_N_ROLES)]
        row += [1.0 if j == _OP[edit.op] else 0.0 for j in range(_N_OPS)]
        row.append(edit.level if edit.level is not None else 0.0)
        row += list(_positions(task, edit.target, edit.op, edit.value, incumbent, child))
        row += edits.features(edit.name, budget)
        row += targets.features(edit.target, budget)
        row += model[i].tolist()
        row.append(1.0 if valid[i] else 0.0)
        rows[i] = row
    return rows


def _positions(
    task: Any,
    target: str,
    op: str,
    value: Any,
    incumbent: Candidate,
    child: Candidate | None,
) -> tuple[float, float, float, float]:
    """(position before, position after, on before, on after) of an edit's target."""
    if op == "toggle":
        before = 1.0 if target in incumbent.toggles else 0.0
        return 0.0, 0.0, before, 1.0 - before
    knob = task.knob(target)
    now = incumbent.config.get(target)
    before = knob.position(now)
    after = knob.position(child.config.get(target)) if child is not None else before
    if op == "set":
        return before, after, 1.0 if now == value else 0.0, 1.0
    return before, after, 0.0, 0.0


__all__ = ["CampaignMemory", "Evidence", "History", "clip", "encode", "slot_rows", "step_info"]
