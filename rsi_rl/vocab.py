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

VOCABULARY: Final[tuple[str, ...]] = CONFIG_KINDS + CODE_KINDS + META_KINDS
VOCAB_VERSION: Final[str] = "v1:" + ",".join(VOCABULARY)
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
