"""Knobs: the config values of a task that edits move.

A :class:`Knob` names a config key, its role (:data:`rsi_rl.core.roles.ROLES`) and its range:

* ``log``: a positive float (or int) multiplied/divided by ``step`` per move;
* ``linear``: added/subtracted ``step`` per move;
* ``choice``: an ordered list of options, moved to the next/previous one;
* ``categorical``: unordered options (an activation, a model type); its edits set one.

Numeric and ordinal knobs move on a lattice: the values ``up``/``down`` moves reach from a
start value. Jumps land on the lattice value nearest a position of the range, so every
agent searches the same set of values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

from rsi_rl.core.errors import TaskError
from rsi_rl.core.roles import role_of

Scale = Literal["log", "linear", "choice", "categorical"]
SCALES: Final[tuple[str, ...]] = ("log", "linear", "choice", "categorical")

#: jump levels: a position of the knob's range (``min`` 0, ``lo`` 1/3, ``hi`` 2/3, ``max`` 1)
JUMP_LEVELS: Final[dict[str, float]] = {"min": 0.0, "lo": 1.0 / 3.0, "hi": 2.0 / 3.0, "max": 1.0}


@dataclass(frozen=True)
class Knob:
    """A config knob that edits move.

    Args:
        key: the task's config key.
        role: what the knob is (``learning_rate``, ``width``, ...; see
            :data:`rsi_rl.core.roles.ROLES`; aliases such as ``lr`` are accepted).
        scale: ``log``, ``linear``, ``choice`` (ordered options) or ``categorical``.
        low, high: bounds (inclusive) of a numeric knob; a move that would leave them is
            not offered.
        step: factor (log) or increment (linear).
        integer: round values to int.
        zero_ok: for log knobs such as weight decay: ``down`` from ``low`` goes to 0 and
            ``up`` from 0 goes to ``low``.
        choices: the options of a ``choice`` or ``categorical`` knob.

    Example:
        >>> Knob("lr", "learning_rate", "log", 1e-4, 1e-1, 2.0).move(0.01, up=True)
        0.02
    """

    key: str
    role: str
    scale: Scale
    low: float = 0.0
    high: float = 1.0
    step: float = 2.0
    integer: bool = False
    zero_ok: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.isidentifier():
            raise TaskError(f"knob key {self.key!r} must be an identifier (a config key)")
        object.__setattr__(self, "role", role_of(self.role, f"knob {self.key!r} role"))
        if self.scale not in SCALES:
            raise TaskError(f"knob {self.key!r}: scale {self.scale!r} is not one of {SCALES}")
        if self.scale in ("choice", "categorical"):
            object.__setattr__(self, "choices", tuple(self.choices))
            if len(self.choices) < 2:
                raise TaskError(f"{self.scale} knob {self.key!r} needs at least two choices")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise TaskError(f"knob {self.key!r} lists a choice twice: {self.choices}")
        elif self.low > self.high:
            raise TaskError(f"knob {self.key!r}: low {self.low} is above high {self.high}")
        if self.scale == "log" and (self.low <= 0 or self.step <= 1):
            raise TaskError(f"log knob {self.key!r} needs low > 0 and step > 1")
        if self.scale == "linear" and self.step <= 0:
            raise TaskError(f"linear knob {self.key!r} needs step > 0")

    @property
    def categorical(self) -> bool:
        return self.scale == "categorical"

    def move(self, value: Any, up: bool) -> Any | None:
        """The value after one move, or None when the move would leave the bounds (or the
        knob is categorical: its options have no order)."""
        if self.scale == "categorical":
            return None
        if self.scale == "choice":
            if value not in self.choices:
                return self.choices[0] if up else None
            i = self.choices.index(value) + (1 if up else -1)
            return self.choices[i] if 0 <= i < len(self.choices) else None
        v = float(value)
        eps = 1e-9 * max(1.0, abs(self.high))
        new: float | None
        if self.scale == "log":
            if v <= 0:
                new = self.low if (up and self.zero_ok) else None
            elif up:
                new = v * self.step
            elif self.zero_ok and v / self.step < self.low - eps:
                new = 0.0
            else:
                new = v / self.step
        else:
            new = v + (self.step if up else -self.step)
        if new is None:
            return None
        if self.integer:
            new = round(new)
        if new == 0.0 and self.zero_ok:
            return 0 if self.integer else 0.0
        if new < self.low - eps or new > self.high + eps:
            return None
        if self.integer and int(new) == int(round(v)):
            return None
        return int(new) if self.integer else float(f"{new:.6g}")

    def reachable(self, value: Any, limit: int = 64) -> list[Any]:
        """Values reachable from ``value`` by up/down moves, in ascending order (for a
        categorical knob: its options)."""
        if self.scale == "categorical":
            return list(self.choices)
        values = [value]
        for up in (False, True):
            v = value
            for _ in range(limit):
                v = self.move(v, up)
                if v is None:
                    break
                values.insert(len(values) if up else 0, v)
        return values

    def jump(self, value: Any, level: float) -> Any | None:
        """The lattice value a jump to ``level`` (a position in [0, 1]) lands on, or None
        when it would not change ``value`` (or the knob is categorical)."""
        if self.scale == "categorical":
            return None
        values = self.reachable(value)
        if level <= 0.0:
            new = values[0]
        elif level >= 1.0:
            new = values[-1]
        else:
            new = min(values, key=lambda v: abs(self.position(v) - level))
        return None if new == value else new

    def position(self, value: Any) -> float:
        """Where ``value`` sits in the range, in [0, 1] (log knobs on a log scale; a
        categorical option by its index)."""
        if self.scale in ("choice", "categorical"):
            if value not in self.choices:
                return 0.0
            return self.choices.index(value) / (len(self.choices) - 1)
        v = float(value)
        if self.scale == "log":
            if v <= 0:
                return 0.0
            lo, hi = math.log(self.low), math.log(self.high)
            p = (math.log(v) - lo) / (hi - lo) if hi > lo else 0.0
        else:
            p = (v - self.low) / (self.high - self.low) if self.high > self.low else 0.0
        return float(min(1.0, max(0.0, p)))


__all__ = ["JUMP_LEVELS", "SCALES", "Knob", "Scale"]
