"""A fixed opening: the same few role-level moves on every instance, then another agent.

:class:`OpeningAgent` proposes a fixed list of *moves*, one experiment each, on the
incumbent (keep-or-revert decides as for any edit), and then returns no proposal, so that
a :class:`~rsi_rl.agents.sequence.SequenceAgent` hands over to its next stage. The
``opening_tpe`` preset is this baseline: an opening chosen in advance on meta-train
instances (``scripts/choose_opening.py``), then Optuna TPE told all of it. A learned
policy must beat it to show that it learned more than a good constant first move::

    rsi-rl search task=tabular agent=opening_tpe budget=20
    rsi-rl search task=tabular agent=opening_tpe \\
        'agent.stages.0.agent.moves=[learning_rate:down,width:hi+normalisation:on]'

A move names roles (:data:`rsi_rl.core.roles.ROLES`, aliases such as ``lr`` or
``normalization`` accepted), never a task's keys, so one opening applies to any task.

Move grammar::

    move := part ("+" part)*          several parts: one experiment, all applied together
    part := ROLE ":" down | up        one step of every numeric or ordinal knob of the role
          | ROLE ":" min | lo | hi | max
                                      a jump of every such knob to that point of its range
                                      (0, 1/3, 2/3, 1: rsi_rl.core.knob.JUMP_LEVELS)
          | ROLE ":" set              every categorical knob of the role to its first option
                                      (declared order) other than its current value
          | ROLE ":" OPTION           every categorical knob of the role to OPTION (compared
                                      as text: ``act:relu``, ``mix:2``); a knob without that
                                      option takes its first option other than the current
          | ROLE ":" on | off         every code patch of the role turned on (off)
          | "+" ROLE | "-" ROLE       the same as ROLE:on, ROLE:off

Examples: ``learning_rate:down``, ``width:hi``, ``activation:relu``, ``+normalisation``,
``width:hi+learning_rate:down``. A ``+`` that starts a part (``+normalisation``, or
``width:hi++normalisation`` in a bundle) is the patch toggle.

How a move maps onto a task (:func:`move_edits`):

* **Several knobs or patches of one role** (a learning rate per layer group) are all
  edited, in one candidate and one experiment, each with the task's own edit
  (``lr_down`` and ``head_lr_down``). A knob or patch where that edit cannot apply now (a
  knob at its bound or already at the value, a patch that does not compose) is left as
  it is; the others are still edited.
* **A move with nothing to apply** on this task and incumbent (no knob or patch of the
  role, every edit invalid, or a candidate the campaign already ran) is skipped: it costs
  no experiment, and the next move is tried in the same ask.
* **Cumulative on the incumbent.** Each move edits the incumbent of the moment, so a kept
  move is the base of the next and a reverted one is not.

Records of a one-edit move carry that edit's name as ``kind`` (so it counts in the edit's
history, as a policy's edit would); a move of several edits is labelled ``opening``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rsi_rl.agents.base import Agent
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.core.edits import Candidate, Edit, EditSpace
from rsi_rl.core.errors import ConfigError, EditError, TaskError
from rsi_rl.core.knob import JUMP_LEVELS
from rsi_rl.core.roles import role_of

#: arguments of a part that move numeric or ordinal knobs (one step)
STEP_ARGS: tuple[str, ...] = ("down", "up")
#: arguments of a part that jump numeric or ordinal knobs (:data:`rsi_rl.core.knob.JUMP_LEVELS`)
JUMP_ARGS: tuple[str, ...] = tuple(JUMP_LEVELS)
#: arguments of a part that toggle code patches
PATCH_ARGS: tuple[str, ...] = ("on", "off")
#: the argument of a part that sets categorical knobs to another option
SET_ARG = "set"


@dataclass(frozen=True)
class Part:
    """One role-level change: ``role`` (a shared role) and ``arg`` (what to do to it)."""

    role: str
    arg: str

    def __str__(self) -> str:
        if self.arg == "on":
            return f"+{self.role}"
        if self.arg == "off":
            return f"-{self.role}"
        return f"{self.role}:{self.arg}"


@dataclass(frozen=True)
class Move:
    """One experiment of an opening: one or more :class:`Part` s applied together."""

    parts: tuple[Part, ...]

    def __str__(self) -> str:
        return "+".join(str(p) for p in self.parts)


def parse_move(text: str) -> Move:
    """The :class:`Move` a descriptor stands for (roles resolved, e.g. ``lr`` ->
    ``learning_rate``); ``str()`` of the result is its canonical spelling.

    Raises:
        ConfigError: an empty part, an unknown role, a part without ``:`` or a sign, or a
            role named twice in one move.

    Example:
        >>> str(parse_move("lr:down+normalization:on"))
        'learning_rate:down++normalisation'
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"opening move {text!r} is empty; write e.g. learning_rate:down")
    tokens = text.strip().split("+")
    raw: list[str] = []
    sign = ""
    for token in tokens:
        token = token.strip()
        if not token:  # a "+" that starts a part: the patch toggle
            if sign:
                raise ConfigError(f"opening move {text!r} has an empty part (+++?)")
            sign = "+"
            continue
        raw.append(sign + token)
        sign = ""
    if sign or not raw:
        raise ConfigError(f"opening move {text!r} ends with '+'; remove it or name a role after it")
    parts = tuple(_parse_part(text, r) for r in raw)
    roles = [p.role for p in parts]
    twice = sorted({r for r in roles if roles.count(r) > 1})
    if twice:
        raise ConfigError(
            f"opening move {text!r} names the role(s) {', '.join(twice)} twice; one part per role"
        )
    return Move(parts)


def _parse_part(text: str, raw: str) -> Part:
    if raw[0] in "+-":
        role, arg = raw[1:], "on" if raw[0] == "+" else "off"
    elif ":" in raw:
        role, arg = raw.split(":", 1)
    else:
        raise ConfigError(
            f"opening move {text!r}: part {raw!r} needs ROLE:ARG (e.g. learning_rate:down, "
            "width:hi, activation:relu) or +ROLE / -ROLE for a code patch"
        )
    role, arg = role.strip(), arg.strip()
    if not arg:
        raise ConfigError(f"opening move {text!r}: part {raw!r} has nothing after ':'")
    try:
        return Part(role_of(role), arg)
    except TaskError as e:
        raise ConfigError(f"opening move {text!r}: {e}") from None


def _part_edits(space: EditSpace, cand: Candidate, part: Part) -> list[Edit]:
    """The task's edits one part stands for on ``cand``, in the task's order (before
    checking that each applies)."""
    task = space.task
    if part.arg in PATCH_ARGS:
        want_on = part.arg == "on"
        return [
            e
            for e in space.edits
            if e.op == "toggle" and e.role == part.role and (e.target in cand.toggles) != want_on
        ]
    out: list[Edit] = []
    for knob in task.knobs:
        if knob.role != part.role:
            continue
        edits = [e for e in space.edits if e.target == knob.key and e.op != "toggle"]
        if knob.categorical:
            if part.arg in STEP_ARGS or part.arg in JUMP_ARGS:
                continue
            current = cand.config.get(knob.key)
            named = [e for e in edits if str(e.value) == part.arg]
            if part.arg != SET_ARG and named:
                out.extend(named[:1])
            else:  # ``set``, or an option this knob lacks: its first other option
                out.extend([e for e in edits if e.value != current][:1])
        elif part.arg in STEP_ARGS:
            out.extend(e for e in edits if e.op == part.arg)
        elif part.arg in JUMP_ARGS:
            level = JUMP_LEVELS[part.arg]
            out.extend(e for e in edits if e.op == "jump" and e.level == level)
    return out


def move_edits(
    space: EditSpace, cand: Candidate, move: Move | str
) -> tuple[Candidate, list[str], list[str]] | None:
    """Apply ``move`` to ``cand``: every edit of the task it stands for, one after another,
    skipping those that cannot apply.

    Returns:
        ``(child, edit names, descriptions)``, or None when nothing applies (the child
        would be ``cand`` itself).
    """
    move = parse_move(move) if isinstance(move, str) else move
    child = cand
    names: list[str] = []
    descriptions: list[str] = []
    for part in move.parts:
        for edit in _part_edits(space, cand, part):
            try:
                nxt, description = space.apply(child, edit.name)
            except EditError:  # at a bound, already there, or a patch that does not compose
                continue
            if nxt.hash != child.hash:
                child = nxt
                names.append(edit.name)
                descriptions.append(description)
    if not names:
        return None
    return child, names, descriptions


def task_moves(space: EditSpace) -> list[str]:
    """Every one-part move that maps onto at least one of the task's edits, canonical
    spelling, in the task's edit order: per numeric or ordinal knob role its steps and
    jumps, per categorical knob role each option (as text), per patch role ``+`` and
    ``-`` (the candidates ``scripts/choose_opening.py`` considers)."""
    out: dict[str, None] = {}
    for e in space.edits:
        if e.op == "toggle":
            names = [f"+{e.role}", f"-{e.role}"]
        elif e.op == "set":
            names = [f"{e.role}:{e.value}"]
        elif e.op == "jump":
            level = next(k for k, v in JUMP_LEVELS.items() if v == e.level)
            names = [f"{e.role}:{level}"]
        else:
            names = [f"{e.role}:{e.op}"]
        for name in names:
            out.setdefault(name, None)
    return list(out)


class OpeningAgent(Agent):
    """A fixed opening: ``moves`` in order, one experiment each, on the incumbent; then
    no proposal (a :class:`~rsi_rl.agents.sequence.SequenceAgent` moves on).

    Args:
        moves: the opening's moves (the grammar is in this module's docstring), e.g.
            ``["learning_rate:down", "width:hi+learning_rate:down", "+normalisation"]``.
            A move that has nothing to apply on this task is skipped without cost.
        seed: unused (the opening is deterministic); kept for the agent protocol.

    Raises:
        ConfigError: no moves, or a move that does not parse.

    Example:
        >>> agent = OpeningAgent(["lr:down", "+normalization"])
        >>> [str(m) for m in agent.moves]
        ['learning_rate:down', '+normalisation']
    """

    name = "opening"

    def __init__(self, moves: Sequence[str] | None = None, seed: int | None = None):
        super().__init__(seed)
        if moves is None or isinstance(moves, str) or not list(moves):
            raise ConfigError(
                "agent.moves must be a non-empty list of moves, e.g. [learning_rate:down, "
                f"width:hi], got {moves!r}; scripts/choose_opening.py chooses one"
            )
        self.moves: tuple[Move, ...] = tuple(parse_move(str(m)) for m in moves)
        self._next = 0

    def reset(self, view: CampaignView) -> None:
        self._next = 0

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        ran = _run_candidates(view.log)
        while self._next < len(self.moves) and n > 0:
            move = self.moves[self._next]
            self._next += 1
            found = move_edits(view.space, view.incumbent, move)
            if found is None or found[0].hash in ran:
                continue  # nothing to apply, or a known result: skipped, not charged
            child, names, descriptions = found
            kind = names[0] if len(names) == 1 else self.name
            return [Proposal(kind, child, f"{move}: " + "; ".join(descriptions))]
        return []


def _run_candidates(log: Iterable[Any]) -> set[str]:
    """Hashes of the candidates a campaign's records ran."""
    return {str(r.get("candidate")) for r in log if r.get("candidate")}


__all__ = [
    "JUMP_ARGS",
    "PATCH_ARGS",
    "SET_ARG",
    "STEP_ARGS",
    "Move",
    "OpeningAgent",
    "Part",
    "move_edits",
    "parse_move",
    "task_moves",
]
