"""The inner-task API: what a training program must declare to be researched on.

An inner task is a *family*: :meth:`InnerTask.make_instance` draws one instance (data,
start config, optional reference config) from a seed, and the task's instance seeds are
split into meta-train and held-out sets. Every instance shares the task's editable program
(``train.py`` and friends), its knobs (config values) and its code patches (code edits).
Each knob and patch carries a role (:data:`rsi_rl.core.roles.ROLES`); several may share one.
The task's edits are generated from them (:class:`rsi_rl.core.edits.EditSpace`).

A task declares its capabilities as class data, SB3-style::

    class MyTask(InnerTask):
        name = "my_task"
        metric = "val_acc"
        direction = "maximize"
        program_dir = Path(__file__).parent
        knobs = (
            Knob("lr", "learning_rate", "log", 1e-4, 1e-1, 2.0),
            Knob("act", "activation", "categorical", choices=("relu", "tanh")),
        )
        patches = (CodePatch("activation_gelu", "ReLU -> GELU", (("nn.ReLU", "nn.GELU"),)),)

        def make_instance(self, seed: int) -> Instance: ...

The trusted evaluator is :meth:`InnerTask.evaluate`: it runs in the parent, on predictions
the sandboxed program submitted, against labels the program never saw.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from rsi_rl.core.errors import EditError, PatchError, TaskError
from rsi_rl.core.knob import Knob, Scale
from rsi_rl.core.roles import patch_role

if TYPE_CHECKING:
    from rsi_rl.core.edits import Candidate, EditSpace


@dataclass(frozen=True)
class CodePatch:
    """A code edit: exact-text hunks ``(old, new)`` applied to one file of the program.

    Each ``old`` must occur exactly once in the file, so a patch either applies cleanly or
    fails with :class:`PatchError` naming the text that did not match. Toggling the edit
    off applies the hunks in reverse (``new`` back to ``old``). Patches of one task touch
    disjoint lines so that they compose.

    Args:
        name: the patch's name (its edit's name; unique in the task).
        description: one line for people.
        hunks: ``(old, new)`` text pairs.
        file: the program file it edits.
        role: what it changes (:data:`rsi_rl.core.roles.ROLES`); default: the shared role of a
            built-in patch name (``warmup`` is a ``schedule``), else ``other``.
    """

    name: str
    description: str
    hunks: tuple[tuple[str, str], ...]
    file: str = "train.py"
    role: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", patch_role(self.name, self.role or None))

    @classmethod
    def from_diff(
        cls, text: str, name: str, description: str = "", origin: str = "", role: str = ""
    ) -> CodePatch:
        """The patch of a unified diff of one file (each hunk becomes exact text), parsed
        by :func:`rsi_rl.core.patching.parse_unified_diff`: one patch type for both forms.

        Raises:
            TaskError: the diff is malformed, touches more than one file or has no hunk.
        """
        from rsi_rl.core.patching import parse_unified_diff

        where = origin or "the diff"
        try:
            files = parse_unified_diff(text)
        except PatchError as exc:
            raise TaskError(f"patch file {where}: {exc}") from None
        if len(files) != 1 or not files[0].hunks:
            raise TaskError(
                f"patch file {where} must hold a unified diff of exactly one file with at "
                "least one hunk"
            )
        hunks = tuple(("".join(h.old), "".join(h.new)) for h in files[0].hunks)
        return cls(name, description or name, hunks, files[0].path, role)

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
                    f"patch {self.name!r} does not apply to {self.file}: hunk {first!r} {where}"
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
    #: code patches (by name) that belong to the reference, applied to the source
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
    #: instance seeds for choosing designs (neither meta-train nor held-out); None: none
    val_seeds: ClassVar[range | None] = None
    #: True for tasks answered in this process without running a program (tabulated or
    #: synthetic landscapes, :class:`rsi_rl.core.landscape.LandscapeTask`): no sandbox starts
    in_process: ClassVar[bool] = False
    #: files the program writes that the user keeps (paths relative to its working dir,
    #: e.g. ``("model.pt",)``): copied out after each successful run, ``best/artifacts/``
    artifacts: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        if not self.name:
            raise TaskError(f"{type(self).__name__} must set the class attribute `name`")
        keys = [k.key for k in self.knobs]
        if len(set(keys)) != len(keys):
            raise TaskError(f"task {self.name!r}: two knobs share a config key ({keys})")
        names = [p.name for p in self.patches]
        if len(set(names)) != len(names):
            raise TaskError(f"task {self.name!r}: two patches share a name ({names})")
        for p in self.patches:
            if p.file not in self.program_files:
                raise TaskError(
                    f"task {self.name!r}: patch {p.name!r} edits unknown file {p.file!r}"
                )
        self._source: dict[str, str] | None = None
        self._edit_space: EditSpace | None = None

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

    def true_value(self, instance: Instance, candidate: Candidate) -> float | None:
        """The noise-free (seed-mean) metric of ``candidate`` on ``instance``, where it is
        known (tabulated and synthetic tasks); None means it must be re-measured on fresh
        seeds."""
        return None

    # ----------------------------------------------------------------- derived
    def metric_for(self, split: str) -> str:
        """Name of the task metric on another split (``val_acc`` -> ``test_acc``)."""
        return self.metric.replace("val", split, 1) if split != "val" else self.metric

    def score(self, value: float) -> float:
        """Higher-is-better version of a metric value."""
        return value if self.direction == "maximize" else -value

    def knob(self, key: str) -> Knob | None:
        """The knob of config key ``key``, if the task has one."""
        return next((k for k in self.knobs if k.key == key), None)

    def patch(self, name: str) -> CodePatch | None:
        """The code patch named ``name``, if the task has one."""
        return next((p for p in self.patches if p.name == name), None)

    def edit_space(self) -> EditSpace:
        """The task's edits, generated from its knobs and patches (built once)."""
        if self._edit_space is None:
            from rsi_rl.core.edits import EditSpace

            self._edit_space = EditSpace(self)
        return self._edit_space

    def edit_names(self) -> list[str]:
        """Names of the task's edits, in action-slot order."""
        return [e.name for e in self.edit_space().edits]

    def instance_seeds(self, split: str) -> range:
        """Instance seeds of ``split`` (``train`` for meta-training, ``heldout``, and ``val``
        where the task declares :attr:`val_seeds`)."""
        if split in ("train", "meta_train"):
            return self.meta_train_seeds
        if split in ("heldout", "test", "held_out"):
            return self.heldout_seeds
        if split in ("val", "validation") and self.val_seeds is not None:
            return self.val_seeds
        splits = (
            "'train', 'val' or 'heldout'" if self.val_seeds is not None else "'train' or 'heldout'"
        )
        raise EditError(f"unknown instance split {split!r}; use {splits}")

    def describe(self) -> dict[str, Any]:
        """One-line facts for ``rsi-rl tasks``."""
        return {
            "name": self.name,
            "metric": self.metric,
            "direction": self.direction,
            "trust": "self-reported" if self.self_reported else "trusted evaluator",
            "knobs": [f"{k.key} ({k.role}, {k.scale})" for k in self.knobs],
            "patches": [f"{p.name} ({p.role})" for p in self.patches],
            "edits": len(self.edit_names()),
        }


__all__ = ["CodePatch", "InnerTask", "Instance", "Knob", "Scale", "split_dataset"]
