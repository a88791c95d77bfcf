"""``check-task``'s edit check: every edit of the task's space applies to the start
candidate and its opposite undoes it, and the task's patches compose.

Nothing trains here; :func:`check_edits` also returns the children it built, which
:mod:`rsi_rl.checker.runs` may train.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rsi_rl.checker.report import Checker
from rsi_rl.core.edits import Candidate, Edit, EditSpace
from rsi_rl.core.errors import EditError
from rsi_rl.core.knob import Knob
from rsi_rl.core.task import InnerTask


def check_edits(
    c: Checker, t: InnerTask, space: EditSpace, start: Candidate
) -> dict[str, Candidate]:
    """Apply every edit of the space to ``start`` and undo it; the children by edit name."""
    children: dict[str, Candidate] = {}
    bad: list[str] = []
    lossy: list[str] = []
    not_valid: list[str] = []
    missing = [k.key for k in t.knobs if k.key not in start.config]
    if missing:
        bad.append(f"knob keys {missing} are not keys of the start config {sorted(start.config)}")
    off = [
        f"{k.key}={start.config[k.key]!r}"
        for k in t.knobs
        if k.key in start.config and not _in_range(k, start.config[k.key])
    ]
    for edit in space.edits:
        if edit.target in missing:
            continue
        try:
            child, _ = space.apply(start, edit.name)
        except EditError as exc:
            if edit.op == "toggle":
                bad.append(f"{edit.name}: {exc}")
            else:  # at a bound, already at the jump's value, or the current option
                not_valid.append(edit.name)
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a numeric knob holding a string
            bad.append(f"{edit.name}: {type(exc).__name__}: {exc}")
            continue
        if child.hash == start.hash:
            bad.append(f"{edit.name}: changes nothing")
            continue
        children[edit.name] = child
        undo = _undo(space, edit, start.config.get(edit.target))
        if undo is None:
            continue
        try:
            back: Candidate | None = space.apply(child, undo.name)[0]
        except EditError:
            back = None
        if back is not None and _same(start, back):
            continue
        if edit.op == "toggle":
            bad.append(f"{edit.name}: toggling it twice does not restore the source")
        else:  # e.g. an integer knob rounds: 5 -> 2 -> 4
            lossy.append(edit.name)
    composed = start  # patches of one task must compose
    for p in t.patches:
        try:
            composed, _ = space.apply(composed, p.name)
        except EditError as exc:
            bad.append(f"{p.name} does not compose with the patches before it: {exc}")
            break
    note = f"; masked at the start: {_listed(not_valid)}" if not_valid else ""
    if bad:
        c.add("edits", "fail", "; ".join(bad))
    elif lossy or off:
        problems = []
        if off:
            problems.append(f"start values outside their knob's range or choices: {', '.join(off)}")
        if lossy:
            problems.append(f"the opposite edit does not undo {_listed(lossy)} (rounding)")
        c.add("edits", "warn", "; ".join(problems) + f"; the rest apply and undo{note}")
    else:
        c.add(
            "edits",
            "pass",
            f"{len(children)} of {len(space)} edits apply to the start (moves, settings and "
            f"toggles undone by their opposites); {_compose(len(t.patches))}{note}",
        )
    return children


def _undo(space: EditSpace, edit: Edit, old: Any) -> Edit | None:
    """The edit that takes a child of ``edit`` back: the same toggle, the opposite move,
    the setting of the ``old`` option (None for a jump, which no single edit undoes)."""
    if edit.op == "toggle":
        return edit
    want = {"up": "down", "down": "up", "set": "set"}.get(edit.op)
    return next(
        (
            e
            for e in space.edits
            if e.target == edit.target and e.op == want and (want != "set" or e.value == old)
        ),
        None,
    )


def _same(a: Candidate, b: Candidate) -> bool:
    """Same source and config (numbers up to float rounding)."""
    if a.source != b.source or set(a.config) != set(b.config):
        return False
    return all(
        math.isclose(float(v), float(b.config[k]), rel_tol=1e-6)
        if isinstance(v, (int, float)) and isinstance(b.config[k], (int, float))
        else v == b.config[k]
        for k, v in a.config.items()
    )


def _in_range(knob: Knob, value: Any) -> bool:
    if knob.scale in ("choice", "categorical"):
        return value in knob.choices
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return (value == 0 and knob.zero_ok) or knob.low <= value <= knob.high


def _compose(n: int) -> str:
    return {0: "no patches", 1: "the patch applies"}.get(n, f"all {n} patches compose")


def _listed(names: Sequence[str], limit: int = 8) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


__all__ = ["check_edits"]
