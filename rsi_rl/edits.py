"""Candidates and edits: how one version of a program turns into the next.

A :class:`Candidate` is a config plus the program's source, identified by a content hash.
An edit of a vocabulary *kind* turns a candidate into a child: a config move on a knob,
or a code patch toggled on or off. :func:`valid_kinds` is the action mask: an edit that
would leave a knob's bounds, or a patch that does not apply, is not valid.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from rsi_rl.errors import EditError
from rsi_rl.task import InnerTask
from rsi_rl.vocab import CODE_KINDS, JUMP_KINDS, JUMP_LEVELS, KNOB_KINDS, VOCABULARY


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
    for kind in instance.reference_edits:
        cand, _ = apply_edit(task, cand, kind)
    return cand


def _knob_for(task: InnerTask, kind: str) -> tuple[Any, bool]:
    knob_kind, _, direction = kind.rpartition("_")
    return task.knob(knob_kind), direction == "up"


def apply_edit(task: InnerTask, cand: Candidate, kind: str) -> tuple[Candidate, str]:
    """Apply the edit of ``kind`` to ``cand``; returns the child and a readable description.

    Raises:
        EditError: the task does not support ``kind``, the knob is at its bound, or the
            patch does not apply (:class:`~rsi_rl.errors.PatchError`).
    """
    if kind in KNOB_KINDS:
        knob, up = _knob_for(task, kind)
        if knob is None:
            raise EditError(f"task {task.name!r} has no knob for edit {kind!r}")
        old = cand.config.get(knob.key)
        if kind in JUMP_KINDS:
            new = knob.jump(old, JUMP_LEVELS[kind.rpartition("_")[2]])
            if new is None:
                raise EditError(f"edit {kind!r}: {knob.key}={old} is already there")
        else:
            new = knob.move(old, up)
        if new is None:
            raise EditError(
                f"edit {kind!r}: {knob.key}={old} is at its bound [{knob.low}, {knob.high}]"
            )
        config = dict(cand.config)
        config[knob.key] = new
        child = Candidate(config, cand.source, cand.toggles, cand.hash, kind)
        return child, f"{knob.key} {old} -> {new}"
    patch = task.patch(kind)
    if patch is not None:
        on = kind not in cand.toggles
        source = dict(cand.source)
        source[patch.file] = patch.apply(source[patch.file], reverse=not on)
        toggles = cand.toggles | {kind} if on else cand.toggles - {kind}
        child = Candidate(dict(cand.config), source, frozenset(toggles), cand.hash, kind)
        return child, f"{'+' if on else '-'}{kind}: {patch.description}"
    if kind in VOCABULARY:
        raise EditError(f"task {task.name!r} does not support edit {kind!r}")
    raise EditError(f"unknown edit kind {kind!r}")


def edit_children(task: InnerTask, cand: Candidate) -> dict[str, Candidate | None]:
    """For every edit kind of the vocabulary: the child it builds from ``cand``, or None
    where it cannot be applied (so a mask needs each child built once)."""
    children: dict[str, Candidate | None] = {}
    for kind in KNOB_KINDS + CODE_KINDS:
        try:
            children[kind] = apply_edit(task, cand, kind)[0]
        except EditError:
            children[kind] = None
    return children


def valid_kinds(
    task: InnerTask, cand: Candidate, children: dict[str, Candidate | None] | None = None
) -> dict[str, bool]:
    """For every vocabulary kind: can it be applied to ``cand`` right now?

    ``children``: :func:`edit_children` of ``cand``, if already built.
    """
    if children is None:
        children = edit_children(task, cand)
    valid: dict[str, bool] = {}
    for kind in VOCABULARY:
        if kind in ("reevaluate", "stop"):
            valid[kind] = True
        elif kind == "propose":
            valid[kind] = False  # the env enables it when a proposer is configured
        else:
            valid[kind] = children.get(kind) is not None
    return valid
