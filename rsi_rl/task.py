"""The inner-task API: what a training program must declare to be researched on.

An inner task is a *family*: :meth:`InnerTask.make_instance` draws one instance (data,
start config, optional reference config) from a seed, and the task's instance seeds are
split into meta-train and held-out sets. Every instance shares the task's editable program
(``train.py`` and friends), its knobs (config moves) and its code patches (code edits).

A task declares its capabilities as class data, SB3-style::

    class MyTask(InnerTask):
        name = "my_task"
        metric = "val_acc"
        direction = "maximize"
        program_dir = Path(__file__).parent
        knobs = (Knob("lr", "lr", "log", 1e-4, 1e-1, 2.0), ...)
        patches = (CodePatch("activation_gelu", "ReLU -> GELU", (("nn.ReLU", "nn.GELU"),)),)

        def make_instance(self, seed: int) -> Instance: ...

The trusted evaluator is :meth:`InnerTask.evaluate`: it runs in the parent, on predictions
the sandboxed program submitted, against labels the program never saw.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from rsi_rl.errors import EditError, PatchError, TaskError
from rsi_rl.vocab import CODE_KINDS, JUMP_LEVELS, KNOBS, META_KINDS, VOCABULARY

Scale = Literal["log", "linear", "choice"]


@dataclass(frozen=True)
class Knob:
    """A numeric or categorical config knob that ``<kind>_up`` / ``<kind>_down`` move.

    Args:
        kind: vocabulary knob name (``lr``, ``batch``, ``width``, ``depth``, ``wd``,
            ``dropout``, ``steps``).
        key: the task's config key it maps to.
        scale: ``log`` multiplies/divides by ``step``; ``linear`` adds/subtracts ``step``;
            ``choice`` moves to the next/previous entry of ``choices``.
        low, high: bounds (inclusive); a move that would leave them is masked.
        step: factor (log) or increment (linear).
        integer: round values to int.
        zero_ok: for log knobs such as weight decay: ``down`` from ``low`` goes to 0 and
            ``up`` from 0 goes to ``low``.
        choices: the ordered options of a ``choice`` knob.
    """

    kind: str
    key: str
    scale: Scale
    low: float = 0.0
    high: float = 1.0
    step: float = 2.0
    integer: bool = False
    zero_ok: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KNOBS:
            raise TaskError(f"knob kind {self.kind!r} is not in the vocabulary {KNOBS}")
        if self.scale == "choice" and len(self.choices) < 2:
            raise TaskError(f"choice knob {self.key!r} needs at least two choices")
        if self.scale == "log" and (self.low <= 0 or self.step <= 1):
            raise TaskError(f"log knob {self.key!r} needs low > 0 and step > 1")

    def move(self, value: Any, up: bool) -> Any | None:
        """The value after one move, or None when the move would leave the bounds."""
        if self.scale == "choice":
            if value not in self.choices:
                return self.choices[0] if up else None
            i = self.choices.index(value) + (1 if up else -1)
            return self.choices[i] if 0 <= i < len(self.choices) else None
        v = float(value)
        eps = 1e-9 * max(1.0, abs(self.high))
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
        """Values reachable from ``value`` by up/down moves, in ascending order."""
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
        """The value a jump to ``level`` (a position in [0, 1]) lands on, or None if none.

        The landing value is the one reachable by moves from ``value`` whose
        :meth:`position` is nearest to ``level`` (level 0 and 1 are the ends of the walk),
        so a jump never leaves the lattice of the knob's moves. None when it would not
        change ``value``.
        """
        values = self.reachable(value)
        if level <= 0.0:
            new = values[0]
        elif level >= 1.0:
            new = values[-1]
        else:
            new = min(values, key=lambda v: abs(self.position(v) - level))
        return None if new == value else new

    def position(self, value: Any) -> float:
        """Where ``value`` sits between the bounds, in [0, 1] (log knobs on a log scale)."""
        if self.scale == "choice":
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


@dataclass(frozen=True)
class CodePatch:
    """A code edit: exact-text hunks ``(old, new)`` applied to one file of the program.

    Each ``old`` must occur exactly once in the file, so a patch either applies cleanly or
    fails with :class:`PatchError` naming the text that did not match. Toggling the edit
    off applies the hunks in reverse (``new`` back to ``old``). Patches of one task touch
    disjoint lines so that they compose.
    """

    kind: str
    description: str
    hunks: tuple[tuple[str, str], ...]
    file: str = "train.py"

    def apply(self, source: str, reverse: bool = False) -> str:
        """Apply (or revert) the patch to ``source``; raises :class:`PatchError`."""
        out = source
        for old, new in self.hunks:
            if reverse:
                old, new = new, old
            n = out.count(old)
            if n != 1:
                first = old.strip().splitlines()[0] if old.strip() else repr(old)
                where = "not found" if n == 0 else f"found {n} times"
                raise PatchError(
                    f"patch {self.kind!r} does not apply to {self.file}: hunk {first!r} {where}"
                )
            out = out.replace(old, new, 1)
        return out


@dataclass
class Instance:
    """One draw of a task family: data splits, start config, optional reference config.

    ``data`` holds ``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``, ``y_test``
    (and task-specific extras). Only :meth:`InnerTask.child_inputs` decides what of it
    enters the sandbox; the labels of the validation and test splits never do.
    """

    task: str
    seed: int
    data: dict[str, np.ndarray]
    start_config: dict[str, Any]
    reference_config: dict[str, Any] | None = None
    #: code edits (vocabulary kinds) that belong to the reference, applied to the source
    reference_edits: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.task}/{self.seed}"


def split_dataset(
    x: np.ndarray, y: np.ndarray, seed: int, val: float = 0.2, test: float = 0.2
) -> dict[str, np.ndarray]:
    """Stratified, shuffled train/val/test split of a labelled data set, for ``Instance.data``.

    Example:
        >>> data = split_dataset(np.zeros((100, 3)), np.arange(100) % 2, seed=0)
        >>> [len(data[k]) for k in ("y_train", "y_val", "y_test")]
        [60, 20, 20]
    """
    from sklearn.model_selection import train_test_split

    rs = int(seed) % 2**31
    x_tr, x_rest, y_tr, y_rest = train_test_split(
        x, y, test_size=val + test, stratify=y, random_state=rs
    )
    x_va, x_te, y_va, y_te = train_test_split(
        x_rest, y_rest, test_size=test / (val + test), stratify=y_rest, random_state=rs
    )
    return {
        "x_train": x_tr,
        "y_train": y_tr,
        "x_val": x_va,
        "y_val": y_va,
        "x_test": x_te,
        "y_test": y_te,
    }


class InnerTask(ABC):
    """Base class of inner tasks. Subclasses set the class data and ``make_instance``."""

    #: registry name (``task=<name>``)
    name: ClassVar[str] = ""
    #: the metric the trusted evaluator returns and the reward is computed from
    metric: ClassVar[str] = "val_acc"
    direction: ClassVar[Literal["maximize", "minimize"]] = "maximize"
    #: best attainable metric value (1.0 for accuracy); the reward normaliser uses it
    metric_optimum: ClassVar[float | None] = 1.0
    #: prior standard deviation of the metric across seeds, before any is measured
    noise_prior: ClassVar[float] = 0.005
    #: folder holding the editable program
    program_dir: ClassVar[Path]
    #: editable files (relative to ``program_dir``) and the one the sandbox runs
    program_files: ClassVar[tuple[str, ...]] = ("train.py",)
    entry: ClassVar[str] = "train.py"
    #: modules the sandbox's fork server imports once, so experiments start warm
    preload: ClassVar[tuple[str, ...]] = ("numpy", "torch")
    #: wall-clock seconds one experiment may take at the default budget
    default_timeout: ClassVar[float] = 60.0
    #: True for tasks whose program reports its own metric (not trusted)
    self_reported: ClassVar[bool] = False
    #: False when the program cannot be scored on a held-out test split (e.g. a script
    #: task without ``split_flag``): a campaign then reports "no test split" instead of a
    #: test score
    has_test_split: ClassVar[bool] = True
    #: config moves and code edits
    knobs: ClassVar[tuple[Knob, ...]] = ()
    patches: ClassVar[tuple[CodePatch, ...]] = ()
    #: instance seeds for meta-training and for held-out evaluation
    meta_train_seeds: ClassVar[range] = range(0, 1000)
    heldout_seeds: ClassVar[range] = range(1000, 1100)

    def __init__(self) -> None:
        if not self.name:
            raise TaskError(f"{type(self).__name__} must set the class attribute `name`")
        kinds = [k.kind for k in self.knobs]
        if len(set(kinds)) != len(kinds):
            raise TaskError(f"task {self.name!r}: two knobs share a kind ({kinds})")
        for p in self.patches:
            if p.file not in self.program_files:
                raise TaskError(
                    f"task {self.name!r}: patch {p.kind!r} edits unknown file {p.file!r}"
                )
        self._source: dict[str, str] | None = None

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def make_instance(self, seed: int) -> Instance:
        """Draw instance ``seed`` of the family (deterministic in ``seed``)."""

    # ----------------------------------------------------------------- overridable
    def source(self) -> dict[str, str]:
        """The editable program: file name -> text."""
        if self._source is None:
            files = {}
            for rel in self.program_files:
                path = Path(self.program_dir) / rel
                if not path.is_file():
                    raise TaskError(f"task {self.name!r}: program file {path} does not exist")
                files[rel] = path.read_text()
            self._source = files
        return dict(self._source)

    def child_inputs(self, instance: Instance, split: str) -> dict[str, np.ndarray]:
        """What the sandboxed program receives: train data and *unlabelled* eval inputs."""
        d = instance.data
        return {
            "x_train": d["x_train"],
            "y_train": d["y_train"],
            "x_eval": d[f"x_{split}"],
            "n_classes": np.asarray(
                int(instance.info.get("n_classes", int(d["y_train"].max()) + 1))
            ),
        }

    def evaluate(self, predictions: np.ndarray, instance: Instance, split: str) -> dict[str, float]:
        """Trusted evaluator: metrics of ``predictions`` on the labels of ``split``.

        The default scores classification: predictions are class probabilities or
        logits of shape ``(n, n_classes)``, or labels of shape ``(n,)``. Raises
        ``ValueError`` on a wrong shape.
        """
        y = instance.data[f"y_{split}"]
        n_classes = int(instance.info.get("n_classes", int(instance.data["y_train"].max()) + 1))
        p = np.asarray(predictions)
        if p.ndim == 2 and p.shape == (len(y), n_classes):
            labels = p.argmax(axis=1)
        elif p.ndim == 1 and p.shape[0] == len(y):
            labels = p.astype(np.int64)
        else:
            raise ValueError(
                f"predictions have shape {p.shape}; expected ({len(y)}, {n_classes}) or ({len(y)},)"
            )
        acc = float((labels == y).mean())
        prefix = "val" if split == "val" else split
        return {f"{prefix}_acc": acc}

    # ----------------------------------------------------------------- derived
    def metric_for(self, split: str) -> str:
        """Name of the task metric on another split (``val_acc`` -> ``test_acc``)."""
        return self.metric.replace("val", split, 1) if split != "val" else self.metric

    def score(self, value: float) -> float:
        """Higher-is-better version of a metric value."""
        return value if self.direction == "maximize" else -value

    def knob(self, kind: str) -> Knob | None:
        return next((k for k in self.knobs if k.kind == kind), None)

    def patch(self, kind: str) -> CodePatch | None:
        return next((p for p in self.patches if p.kind == kind), None)

    def supported_kinds(self) -> list[str]:
        """The vocabulary kinds this task maps to knobs or patches (plus meta-actions)."""
        kinds = {f"{k.kind}_{d}" for k in self.knobs for d in ("up", "down", *JUMP_LEVELS)}
        kinds |= {p.kind for p in self.patches}
        return [k for k in VOCABULARY if k in kinds or k in META_KINDS]

    def instance_seeds(self, split: str) -> range:
        """Instance seeds of ``split`` (``train`` for meta-training, ``heldout``)."""
        if split in ("train", "meta_train"):
            return self.meta_train_seeds
        if split in ("heldout", "test", "held_out"):
            return self.heldout_seeds
        raise EditError(f"unknown instance split {split!r}; use 'train' or 'heldout'")

    def describe(self) -> dict[str, Any]:
        """One-line facts for ``rsi-rl tasks``."""
        return {
            "name": self.name,
            "metric": self.metric,
            "direction": self.direction,
            "trust": "self-reported" if self.self_reported else "trusted evaluator",
            "edits": [k for k in self.supported_kinds() if k not in META_KINDS],
        }


def check_code_kinds(task: InnerTask) -> list[str]:
    """Task-only code kinds (not in the shared vocabulary): masked for vocabulary policies."""
    return [p.kind for p in task.patches if p.kind not in CODE_KINDS]
