"""Shared fixtures. W&B never leaves the temp folder; runs go to tmp_path."""

from __future__ import annotations

import os
import tempfile

import pytest

_WANDB = tempfile.mkdtemp(prefix="rsi_rl_wandb_")
for key in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
    os.environ[key] = _WANDB
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.pop("WANDB_API_KEY", None)


@pytest.fixture(scope="session")
def digits():
    from rsi_rl.registry import make_task

    return make_task("digits_mlp")


@pytest.fixture(scope="session")
def tabular():
    from rsi_rl.registry import make_task

    return make_task("tabular")
