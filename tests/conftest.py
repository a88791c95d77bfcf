"""Shared fixtures. W&B never leaves a temp folder (removed at exit); no test leaves a run
folder in the repository."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

_WANDB = tempfile.mkdtemp(prefix="rsi_rl_wandb_")
atexit.register(shutil.rmtree, _WANDB, ignore_errors=True)
for key in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
    os.environ[key] = _WANDB
os.environ["WANDB_MODE"] = "disabled"  # tests that need a run set offline themselves
os.environ.pop("WANDB_API_KEY", None)

REPO = Path(__file__).resolve().parents[1]
#: where commands started in the repository write runs (Hydra, W&B): three levels of runs/
RUN_FOLDERS = ("runs/*/*/*", "outputs/*/*", "multirun/*/*", "wandb/*")


def _run_folders() -> set[Path]:
    return {p for pattern in RUN_FOLDERS for p in REPO.glob(pattern)}


@pytest.fixture(autouse=True)
def _no_run_folders_in_the_repository():
    """A run folder that appeared in the repository during a test fails it under CI (a
    fresh clone: only the tests write there) and is a warning elsewhere (someone else may
    be running commands in the same tree). Commands under test run with ``cwd=tmp_path``
    or a ``hydra.run.dir`` under ``tmp_path``."""
    before = _run_folders()
    yield
    new = sorted(str(p.relative_to(REPO)) for p in _run_folders() - before)
    if new:
        message = f"run folders appeared in the repository during this test: {new}"
        if os.environ.get("CI"):
            pytest.fail(message)
        warnings.warn(message, stacklevel=1)


@pytest.fixture(scope="session")
def digits():
    from rsi_rl.core.registry import make_task

    return make_task("digits_mlp")


@pytest.fixture(scope="session")
def tabular():
    from rsi_rl.core.registry import make_task

    return make_task("tabular")


#: light_tabular's program: softmax regression in numpy on tabular's data (reads lr, steps)
LIGHT_PROGRAM = """\
import numpy as np
from rsi_rl import harness

cfg, d = harness.config(), harness.data()
x, y, x_eval = d["x_train"], d["y_train"], d["x_eval"]
mu, sd = x.mean(0), x.std(0) + 1e-6
x, x_eval = (x - mu) / sd, (x_eval - mu) / sd
rows = np.arange(len(y))
w = np.random.default_rng(harness.seed()).normal(0, 0.01, (x.shape[1], int(d["n_classes"])))
for step in range(int(cfg["steps"])):
    z = x @ w
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    harness.log(step=step, train_loss=float(-np.log(p[rows, y] + 1e-9).mean()))
    p[rows, y] -= 1
    w -= 100 * cfg["lr"] * x.T @ p / len(y)
harness.submit(x_eval @ w)
"""


@pytest.fixture(scope="session")
def light_tabular():
    """tabular's data and knobs with a numpy program and no patches, in a sandbox that
    preloads numpy only: its fork server starts in a tenth of the time of one importing
    torch. For tests of the sandbox, runners and executors, not of tabular's program."""
    from rsi_rl.envs.tabular.task import TabularTask

    class LightTabular(TabularTask):
        preload = ("numpy",)
        patches = ()

        def source(self) -> dict[str, str]:
            return {self.entry: LIGHT_PROGRAM}

    return LightTabular()


@pytest.fixture(scope="module")
def inst(tabular):
    """tabular's instance 0, which ``light_tabular`` runs on too (the same data)."""
    return tabular.make_instance(0)


@pytest.fixture(scope="module")
def light_runner(light_tabular):
    """Makes Runners of ``light_tabular`` (2 GiB address space) with the wall-clock limit a
    test module asks for, ``light_runner(timeout=4.0)``; all closed after the module."""
    from rsi_rl.exec.runner import Runner
    from rsi_rl.exec.sandbox import SandboxLimits

    made = []

    def make(timeout: float) -> Runner:
        made.append(Runner(light_tabular, SandboxLimits(timeout=timeout, memory_mb=2048)))
        return made[-1]

    yield make
    for runner in made:
        runner.close()


@pytest.fixture(scope="session")
def script():
    """A loader of ``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    import importlib
    import sys

    def load(name: str):
        sys.path.insert(0, str(REPO / "scripts"))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(REPO / "scripts"))

    return load
