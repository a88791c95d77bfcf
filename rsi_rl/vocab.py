"""The shared edit vocabulary: the action space every task and every agent agree on.

An action is an index into :data:`VOCABULARY`. The order is part of the contract: a
policy trained on one task acts on another because index ``i`` means the same *kind* of
edit everywhere. A task maps the kinds it supports to its own knobs and patches; the env
masks the rest. Changing this list changes the action and observation spaces, so saved
policies record :data:`VOCAB_VERSION` and refuse to load against another one.
"""

from __future__ import annotations

from typing import Final

#: Numeric knobs that config moves act on, in observation order.
KNOBS: Final[tuple[str, ...]] = ("lr", "batch", "width", "depth", "wd", "dropout", "steps")

#: Config moves: ``<knob>_up`` / ``<knob>_down`` for every knob.
CONFIG_KINDS: Final[tuple[str, ...]] = tuple(
    f"{knob}_{direction}" for knob in KNOBS for direction in ("up", "down")
)

#: Jumps: ``<knob>_<level>`` moves a knob in one experiment to the value nearest to a
#: position of its range (``min`` 0, ``lo`` 1/3, ``hi`` 2/3, ``max`` 1; log knobs on a log
#: scale), on the lattice its ``up``/``down`` moves walk. A jump reaches nothing a walk of
#: moves could not (so the search space is unchanged); it spends one experiment where the
#: walk spends several, which is what lets a meta-learned prior ("these knobs belong near
#: the top of their range") pay off within a small budget.
JUMP_LEVELS: Final[dict[str, float]] = {"min": 0.0, "lo": 1.0 / 3.0, "hi": 2.0 / 3.0, "max": 1.0}
JUMP_KINDS: Final[tuple[str, ...]] = tuple(
    f"{knob}_{level}" for knob in KNOBS for level in JUMP_LEVELS
)

#: Code edits: each toggles one source patch on or off.
CODE_KINDS: Final[tuple[str, ...]] = (
    "activation_gelu",
    "norm_layer",
    "residual",
    "grad_clip",
    "label_smoothing",
    "cosine_schedule",
    "warmup",
    "weight_ema",
    "optimizer_swap",
    "init_scheme",
    "input_norm",
)

#: Meta-actions: rerun the incumbent on a fresh seed, ask the configured external proposer
#: (e.g. a code LLM) for a patch, or end the campaign. ``propose`` is masked when the env
#: has no proposer.
META_KINDS: Final[tuple[str, ...]] = ("reevaluate", "propose", "stop")

#: Everything that edits a knob: one-step moves and jumps.
KNOB_KINDS: Final[tuple[str, ...]] = CONFIG_KINDS + JUMP_KINDS

VOCABULARY: Final[tuple[str, ...]] = CONFIG_KINDS + JUMP_KINDS + CODE_KINDS + META_KINDS
VOCAB_VERSION: Final[str] = "v2:" + ",".join(VOCABULARY)
KIND_INDEX: Final[dict[str, int]] = {kind: i for i, kind in enumerate(VOCABULARY)}


def action_of(kind: str) -> int:
    """Index of an edit kind in the action space.

    Example:
        >>> action_of("lr_up")
        0
    """
    try:
        return KIND_INDEX[kind]
    except KeyError:
        raise KeyError(
            f"unknown edit kind {kind!r}; known kinds: {', '.join(VOCABULARY)}"
        ) from None


def kind_of(action: int) -> str:
    """Edit kind of an action index."""
    return VOCABULARY[int(action)]
