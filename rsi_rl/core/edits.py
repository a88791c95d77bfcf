"""Candidates and edits: how one version of a program turns into the next.

A :class:`Candidate` is a config plus the program's source, identified by a content hash.
A task's :class:`EditSpace` is generated from its own knobs and patches: per numeric or
ordinal knob a move down and up and jumps to four positions of its range, per categorical
knob a setting per option, per patch a toggle. An edit turns a candidate into a child; an
edit that would leave a knob's bounds, change nothing, or whose patch does not apply, is
not valid (the env masks it).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rsi_rl.core.errors import EditError, TaskError
from rsi_rl.core.knob import JUMP_LEVELS, Knob

if TYPE_CHECKING:
    from rsi_rl.core.task import InnerTask


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Candidate:
    """One version of the program: config and source; ``toggles`` are the active code edits."""

    config: dict[str, Any]
    source: dict[str, str]
    toggles: frozenset[str] = frozenset()
    parent: str | None = None
    edit: str | None = None
    hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(_canonical({"config": self.config, "source": self.source}).encode())
        object.__setattr__(self, "hash", digest.hexdigest()[:16])

    def diff(self, other: Candidate) -> str:
        """Unified diff of the source from ``other`` to ``self`` (empty when unchanged)."""
        out: list[str] = []
        for name in sorted(set(self.source) | set(other.source)):
            a = other.source.get(name, "").splitlines(keepends=True)
            b = self.source.get(name, "").splitlines(keepends=True)
            out.extend(difflib.unified_diff(a, b, f"a/{name}", f"b/{name}"))
        return "".join(out)

    def config_changes(self, other: Candidate) -> dict[str, tuple[Any, Any]]:
        """Keys whose value differs from ``other``: key -> (old, new)."""
        keys = set(self.config) | set(other.config)
        return {
            k: (other.config.get(k), self.config.get(k))
            for k in sorted(keys)
            if other.config.get(k) != self.config.get(k)
        }


def start_candidate(task: InnerTask, config: dict[str, Any]) -> Candidate:
    """The candidate an instance starts from: its start config and the pristine source."""
    return Candidate(config=dict(config), source=task.source())


def reference_candidate(task: InnerTask, instance: Any) -> Candidate | None:
    """The instance's reference (a careful human's config and code edits), if it has one."""
    if instance.reference_config is None:
        return None
    cand = start_candidate(task, instance.reference_config)
    for name in instance.reference_edits:
        cand, _ = apply_edit(task, cand, name)
    return cand


EditOp = Literal["down", "up", "jump", "set", "toggle"]
#: edit operations, in the order of the observation's one-hot
EDIT_OPS: tuple[str, ...] = ("down", "up", "jump", "set", "toggle")


@dataclass(frozen=True)
class Edit:
    """One edit a task offers: a knob move, jump or setting, or a patch toggle.

    ``name`` is what the ledger, the console and ``rsi-rl try`` call it: ``<key>_up``,
    ``<key>_down``, ``<key>_<level>`` (a jump: ``min``, ``lo``, ``hi``, ``max``),
    ``<key>:<option>`` (a categorical setting) or the patch's name (a toggle).
    """

    name: str
    target: str
    op: EditOp
    role: str
    level: float | None = None
    value: Any = None


def knob_edits(knob: Knob) -> list[Edit]:
    """The edits of one knob: a setting per option (categorical), else down, up and jumps."""
    if knob.categorical:
        return [
            Edit(f"{knob.key}:{value}", knob.key, "set", knob.role, value=value)
            for value in knob.choices
        ]
    moves = [Edit(f"{knob.key}_{op}", knob.key, op, knob.role) for op in ("down", "up")]
    jumps = [
        Edit(f"{knob.key}_{name}", knob.key, "jump", knob.role, level=level)
        for name, level in JUMP_LEVELS.items()
    ]
    return moves + jumps


class EditSpace:
    """The edits of a task, generated from its knobs and patches, in a fixed order.

    Args:
        task: the inner task.

    Raises:
        TaskError: two edits would share a name (e.g. a patch named like a knob's move).
    """

    def __init__(self, task: InnerTask):
        self.task = task
        edits: list[Edit] = []
        for knob in task.knobs:
            edits.extend(knob_edits(knob))
        edits.extend(Edit(p.name, p.name, "toggle", p.role) for p in task.patches)
        names = [e.name for e in edits]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TaskError(f"task {task.name!r}: two edits share the name(s) {dupes}; rename one")
        self.edits: tuple[Edit, ...] = tuple(edits)
        self.index: dict[str, int] = {e.name: i for i, e in enumerate(edits)}

    def __len__(self) -> int:
        return len(self.edits)

    def get(self, name: str) -> Edit:
        """The edit called ``name``; raises :class:`EditError` listing the task's edits."""
        try:
            return self.edits[self.index[name]]
        except KeyError:
            raise EditError(
                f"task {self.task.name!r} has no edit {name!r}; its edits: {', '.join(self.index)}"
            ) from None

    def apply(self, cand: Candidate, name: str) -> tuple[Candidate, str]:
        """The child of ``cand`` after edit ``name`` and a readable description.

        Raises:
            EditError: the task has no such edit, the knob is at its bound or already at
                the value, or the patch does not apply (:class:`~rsi_rl.core.errors.PatchError`).
        """
        edit = self.get(name)
        if edit.op == "toggle":
            return self._toggle(cand, edit)
        knob = self.task.knob(edit.target)
        assert knob is not None
        old = cand.config.get(knob.key)
        if edit.op == "set":
            new = edit.value if old != edit.value else None
            if new is None:
                raise EditError(f"edit {name!r}: {knob.key} is already {old!r}")
        elif edit.op == "jump":
            assert edit.level is not None
            new = knob.jump(old, edit.level)
            if new is None:
                raise EditError(f"edit {name!r}: {knob.key}={old} is already there")
        else:
            new = knob.move(old, edit.op == "up")
            if new is None:
                raise EditError(
                    f"edit {name!r}: {knob.key}={old} is at its bound [{knob.low}, {knob.high}]"
                )
        config = dict(cand.config)
        config[knob.key] = new
        child = Candidate(config, cand.source, cand.toggles, cand.hash, name)
        return child, f"{knob.key} {old} -> {new}"

    def _toggle(self, cand: Candidate, edit: Edit) -> tuple[Candidate, str]:
        patch = self.task.patch(edit.target)
        assert patch is not None
        on = patch.name not in cand.toggles
        source = dict(cand.source)
        source[patch.file] = patch.apply(source[patch.file], reverse=not on)
        toggles = cand.toggles | {patch.name} if on else cand.toggles - {patch.name}
        child = Candidate(dict(cand.config), source, frozenset(toggles), cand.hash, edit.name)
        return child, f"{'+' if on else '-'}{patch.name}: {patch.description}"

    def children(self, cand: Candidate) -> list[Candidate | None]:
        """For every edit, in order: the child it builds from ``cand``, or None where it
        cannot be applied (so a mask needs each child built once)."""
        out: list[Candidate | None] = []
        for edit in self.edits:
            try:
                out.append(self.apply(cand, edit.name)[0])
            except EditError:
                out.append(None)
        return out


def apply_edit(task: InnerTask, cand: Candidate, name: str) -> tuple[Candidate, str]:
    """Apply the task's edit ``name`` to ``cand``: :meth:`EditSpace.apply`."""
    return task.edit_space().apply(cand, name)


def valid_edits(task: InnerTask, cand: Candidate) -> dict[str, bool]:
    """For every edit of the task: can it be applied to ``cand`` right now?"""
    space = task.edit_space()
    return {e.name: c is not None for e, c in zip(space.edits, space.children(cand), strict=True)}


__all__ = [
    "EDIT_OPS",
    "Candidate",
    "Edit",
    "EditSpace",
    "apply_edit",
    "knob_edits",
    "reference_candidate",
    "start_candidate",
    "valid_edits",
]
