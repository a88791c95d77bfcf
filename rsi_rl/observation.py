"""Encoding a campaign's state as the observation of :mod:`rsi_rl.actions`.

:class:`History` keeps the campaign's record of each edit and of each knob or patch (tries,
mean normalised change, share kept); :func:`slot_rows` turns the task's edits, the
incumbent and the mask into the per-slot feature rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rsi_rl.actions import MAX_SLOTS, SLOT_FEATURES
from rsi_rl.edits import EDIT_OPS, Candidate, EditSpace
from rsi_rl.roles import ROLES

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


def slot_rows(
    space: EditSpace,
    incumbent: Candidate,
    children: Sequence[Candidate | None],
    valid: Sequence[bool] | np.ndarray,
    edits: History,
    targets: History,
    budget: int,
) -> np.ndarray:
    """The ``(MAX_SLOTS, len(SLOT_FEATURES))`` rows describing the task's edits."""
    rows = np.zeros((MAX_SLOTS, len(SLOT_FEATURES)), dtype=np.float32)
    task = space.task
    for i, (edit, child) in enumerate(zip(space.edits, children, strict=True)):
        row: list[float] = [1.0]
        row += [1.0 if j == _ROLE[edit.role] else 0.0 for j in range(_N_ROLES)]
        row += [1.0 if j == _OP[edit.op] else 0.0 for j in range(_N_OPS)]
        row.append(edit.level if edit.level is not None else 0.0)
        row += list(_positions(task, edit.target, edit.op, edit.value, incumbent, child))
        row += edits.features(edit.name, budget)
        row += targets.features(edit.target, budget)
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


__all__ = ["History", "clip", "slot_rows"]
