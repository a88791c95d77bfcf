"""Custom task classes written outside the repository, found through Hydra and entry points."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rsi_rl.core.errors import UnknownTaskError
from rsi_rl.core.registry import make_task

RSI_RL = str(Path(sys.executable).with_name("rsi-rl"))

TASK_PY = '''
"""A third-party task: softmax regression in numpy on generated blobs."""
from pathlib import Path

import numpy as np

from rsi_rl.core.task import CodePatch, InnerTask, Instance, Knob


class BlobsTask(InnerTask):
    name = "blobs"
    metric = "val_acc"
    direction = "maximize"
    noise_prior = 0.01
    program_dir = Path(__file__).parent
    preload = ("numpy",)
    default_timeout = 30.0
    knobs = (
        Knob("lr", "lr", "log", 1e-3, 10.0, 2.0),
        Knob("steps", "steps", "log", 5, 500, 2.0, integer=True),
    )
    patches = (CodePatch("input_norm", "standardise inputs", (("x_mu, x_sd = 0.0, 1.0", "x_mu, x_sd = x.mean(0), x.std(0) + 1e-6"),)),)

    def make_instance(self, seed):
        rng = np.random.default_rng(seed)
        centers = rng.normal(0, 3, (3, 4))
        y = rng.integers(0, 3, 600)
        x = (centers[y] + rng.normal(0, 2, (600, 4))) * np.array([1.0, 10.0, 0.1, 5.0])
        s = {"train": slice(0, 400), "val": slice(400, 500), "test": slice(500, 600)}
        data = {f"{k}_{p}": a[v] for p, v in s.items() for k, a in (("x", x.astype(np.float32)), ("y", y))}
        return Instance(self.name, seed, data, {"lr": 0.05, "steps": 20}, info={"n_classes": 3})
'''

TRAIN_PY = """
import numpy as np

from rsi_rl import harness

cfg, data = harness.config(), harness.data()
x, y, x_eval = data["x_train"], data["y_train"], data["x_eval"]
x_mu, x_sd = 0.0, 1.0
x, x_eval = (x - x_mu) / x_sd, (x_eval - x_mu) / x_sd
k = int(data["n_classes"])
rng = np.random.default_rng(harness.seed())
w = rng.normal(0, 0.01, (x.shape[1], k))
for step in range(int(cfg["steps"])):
    z = x @ w
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + 1e-9).mean()
    p[np.arange(len(y)), y] -= 1
    w -= cfg["lr"] * x.T @ p / len(y)
    harness.log(step=step, train_loss=loss)
harness.submit(x_eval @ w)
"""


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A package, a Hydra config dir and a dist-info with entry points, all in a temp folder."""
    root = tmp_path_factory.mktemp("outside")
    pkg = root / "src" / "blobs_task"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(TASK_PY))
    (pkg / "train.py").write_text(textwrap.dedent(TRAIN_PY))
    (root / "cfg" / "task").mkdir(parents=True)
    (root / "cfg" / "task" / "blobs_cfg.yaml").write_text("_target_: blobs_task.BlobsTask\n")
    (root / "cfg" / "task" / "broken_cfg.yaml").write_text("_target_: no_such_module.Task\n")
    dist = root / "site" / "blobs_task-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: blobs-task\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[rsi_rl.tasks]\nblobs = blobs_task:BlobsTask\nbroken_plugin = blobs_task:DoesNotExist\n"
    )
    return root


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(root / "site"), str(root / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["HYDRA_FULL_ERROR"] = "0"
    return env


def _rsi_rl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RSI_RL, *args], cwd=root, env=_env(root), capture_output=True, text=True, timeout=300
    )


def test_entry_point_task_is_listed_and_a_broken_one_does_not_hide_it(outside):
    out = _rsi_rl(outside, "tasks", "--config-dir", str(outside / "cfg"))
    assert out.returncode == 0, out.stderr
    lines = {ln.split()[0]: ln for ln in out.stdout.splitlines() if ln.strip()}
    assert "plugin" in lines["blobs"] and "val_acc (maximize), trusted evaluator" in lines["blobs"]
    assert "FAILED TO LOAD" in lines["broken_plugin"] and "DoesNotExist" in lines["broken_plugin"]
    out_lines = out.stdout.splitlines()
    i = next(n for n, ln in enumerate(out_lines) if ln.startswith("blobs_cfg "))
    edits = " ".join(itertools.takewhile(lambda ln: ln.startswith(" "), out_lines[i + 1 :]))
    assert "config" in out_lines[i] and "input_norm" in edits
    assert "FAILED TO LOAD" in lines["broken_cfg"] and "_target_" in lines["broken_cfg"]
    assert "digits_mlp" in lines and "char_lm" in lines


def test_entry_point_task_passes_check_task_and_search(outside):
    out = _rsi_rl(outside, "check-task", "task=blobs", "seeds=[0,1]", "run_edits=code")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK: 0 failed" in out.stdout
    out = _rsi_rl(
        outside, "search", "task=blobs", "agent=random", "budget=3", "hydra.run.dir=run_ep"
    )
    assert out.returncode == 0, out.stderr
    assert (outside / "run_ep" / "results.tsv").exists()


def test_hydra_config_dir_task_passes_check_task_and_search(outside):
    cfg = str(outside / "cfg")
    out = _rsi_rl(
        outside,
        "check-task",
        "--config-dir",
        cfg,
        "task=blobs_cfg",
        "seeds=[0,1]",
        "run_edits=none",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    out = _rsi_rl(
        outside,
        "search",
        f"hydra.searchpath=[file://{cfg}]",
        "task=blobs_cfg",
        "budget=2",
        "hydra.run.dir=run_hy",
    )
    assert out.returncode == 0, out.stderr
    assert (outside / "run_hy" / "summary.json").exists()


def test_bad_target_and_broken_entry_point_give_one_line(outside):
    out = _rsi_rl(
        outside, "search", "--config-dir", str(outside / "cfg"), "task=broken_cfg", "budget=1"
    )
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "_target_='no_such_module.Task' does not import" in err[0], out.stderr
    assert "task/broken_cfg.yaml" in err[0]
    out = _rsi_rl(outside, "search", "task=broken_plugin", "budget=1")
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "broken_plugin" in err[0] and "rsi_rl.tasks" in err[0], out.stderr


def test_make_task_from_entry_point_in_process(outside, monkeypatch):
    monkeypatch.syspath_prepend(str(outside / "src"))
    monkeypatch.syspath_prepend(str(outside / "site"))
    task = make_task("blobs")
    assert task.name == "blobs" and task.describe()["trust"] == "trusted evaluator"
    with pytest.raises(UnknownTaskError, match="failed to load"):
        make_task("broken_plugin")
