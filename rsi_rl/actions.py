"""The action and observation layout every task and every agent agree on.

A task's edits (:class:`rsi_rl.core.edits.EditSpace`) fill the first of :data:`MAX_SLOTS` *edit
slots*; action ``i < MAX_SLOTS`` applies the edit in slot ``i`` (slots a task leaves empty
are masked). Three meta-actions follow: rerun the incumbent on a fresh seed, ask the
configured external proposer (e.g. a code LLM) for a patch, end the campaign.

The observation is a flat ``Box`` in [-1, 1]: global campaign features, then one row of
:data:`SLOT_FEATURES` per slot (role, edit type, where the knob sits before and after the
edit, this campaign's history of that edit and of its knob or patch, what the candidates
evaluated so far say of the child it would train, validity), then the meta-actions' mask. Rows describe edits by role, never by key, so one policy acts on any
task however many knobs it has. Saved policies record :data:`SPACE_VERSION` and refuse to
load against another layout.
"""

from __future__ import annotations

from typing import Final

from rsi_rl.core.edits import EDIT_OPS
from rsi_rl.core.roles import ROLES
from rsi_rl.exec.runner import STATUSES

#: edit slots; a task with more edits is refused (split its knobs' ranges or drop edits)
MAX_SLOTS: Final[int] = 96
META_ACTIONS: Final[tuple[str, ...]] = ("reevaluate", "propose", "stop")
REEVALUATE: Final[int] = MAX_SLOTS
PROPOSE: Final[int] = MAX_SLOTS + 1
STOP: Final[int] = MAX_SLOTS + 2
N_ACTIONS: Final[int] = MAX_SLOTS + len(META_ACTIONS)

GLOBAL_FEATURES: Final[tuple[str, ...]] = (
    "budget_used",
    "time_used",
    "incumbent_progress",
    "last_progress",
    "last_delta",
    "noise",
    "incumbent_evals",
    "last_kept",
    "since_improvement",
    "loss_ratio",
    "train_val_gap",
    "loss_slope",
    "fail_rate",
    "n_edits",
    "reevaluate_tries",
    "propose_tries",
    "propose_mean_delta",
) + tuple(f"status_{s}" for s in STATUSES)

#: a slot's features from the campaign's evaluated candidates, for the child the slot's edit
#: would train (:class:`rsi_rl.observation.Evidence`): a kernel estimate of its change vs
#: the incumbent, the evidence near it, a TPE-style good/bad density ratio, already evaluated
EVIDENCE_FEATURES: Final[tuple[str, ...]] = (
    "model_delta",
    "model_support",
    "good_ratio",
    "child_seen",
)

SLOT_FEATURES: Final[tuple[str, ...]] = (
    ("present",)
    + tuple(f"role_{r}" for r in ROLES)
    + tuple(f"op_{op}" for op in EDIT_OPS)
    + (
        "jump_level",
        "position_before",
        "position_after",
        "on_before",
        "on_after",
        "edit_tries",
        "edit_mean_delta",
        "edit_success",
        "target_tries",
        "target_mean_delta",
        "target_success",
    )
    + EVIDENCE_FEATURES
    + ("valid",)
)

OBSERVATION_FEATURES: Final[tuple[str, ...]] = (
    GLOBAL_FEATURES
    + tuple(f"slot{i}_{f}" for i in range(MAX_SLOTS) for f in SLOT_FEATURES)
    + tuple(f"mask_{m}" for m in META_ACTIONS)
)

SPACE_VERSION: Final[str] = "v4:" + ",".join(
    (f"slots={MAX_SLOTS}", *GLOBAL_FEATURES, *SLOT_FEATURES, *META_ACTIONS)
)


def is_edit_action(action: int) -> bool:
    """Whether ``action`` is an edit slot (not a meta-action)."""
    return 0 <= int(action) < MAX_SLOTS


__all__ = [
    "EVIDENCE_FEATURES",
    "GLOBAL_FEATURES",
    "MAX_SLOTS",
    "META_ACTIONS",
    "N_ACTIONS",
    "OBSERVATION_FEATURES",
    "PROPOSE",
    "REEVALUATE",
    "SLOT_FEATURES",
    "SPACE_VERSION",
    "STOP",
    "is_edit_action",
]
