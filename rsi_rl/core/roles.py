"""The shared role vocabulary: what a knob or a code patch *is*, across tasks.

A task may declare any number of knobs and patches under its own keys. Each carries one
role from :data:`ROLES`, and several may share a role (a width per hidden layer). A
learned policy sees roles, never keys, which is what lets it act on a task it has not
seen. Changing this list changes the observation, so saved policies record it (through
:data:`rsi_rl.actions.SPACE_VERSION`) and refuse to load against another one.
"""

from __future__ import annotations

from typing import Final

from rsi_rl.core.errors import TaskError

ROLES: Final[tuple[str, ...]] = (
    "learning_rate",
    "width",
    "depth",
    "batch",
    "duration",
    "weight_decay",
    "dropout",
    "schedule",
    "activation",
    "normalisation",
    "optimiser",
    "regulariser",
    "architecture",
    "initialisation",
    "data",
    "other",
)

#: other spellings accepted when a task declares a role
ROLE_ALIASES: Final[dict[str, str]] = {
    "lr": "learning_rate",
    "wd": "weight_decay",
    "steps": "duration",
    "epochs": "duration",
    "iterations": "duration",
    "batch_size": "batch",
    "normalization": "normalisation",
    "norm": "normalisation",
    "optimizer": "optimiser",
    "regularizer": "regulariser",
    "regularization": "regulariser",
    "init": "initialisation",
    "initialization": "initialisation",
    "arch": "architecture",
}

#: roles of the code patches the built-in tasks share, when a patch names no role
PATCH_ROLES: Final[dict[str, str]] = {
    "activation_gelu": "activation",
    "norm_layer": "normalisation",
    "residual": "architecture",
    "grad_clip": "regulariser",
    "label_smoothing": "regulariser",
    "cosine_schedule": "schedule",
    "warmup": "schedule",
    "weight_ema": "regulariser",
    "optimizer_swap": "optimiser",
    "init_scheme": "initialisation",
    "input_norm": "data",
}


def role_of(name: str, what: str = "role") -> str:
    """The role ``name`` stands for (an alias resolved).

    Raises:
        TaskError: ``name`` is no role; the message lists the roles.

    Example:
        >>> role_of("lr")
        'learning_rate'
    """
    role = ROLE_ALIASES.get(str(name).lower(), str(name).lower())
    if role not in ROLES:
        raise TaskError(f"{what} {name!r} is not a role; use one of: {', '.join(ROLES)}")
    return role


def patch_role(name: str, role: str | None) -> str:
    """The role of a patch: the declared one, else the shared default for its name."""
    return role_of(role, f"patch {name!r} role") if role else PATCH_ROLES.get(name, "other")


__all__ = ["PATCH_ROLES", "ROLES", "ROLE_ALIASES", "patch_role", "role_of"]
