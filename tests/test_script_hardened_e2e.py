"""Real training scripts in the hardened sandbox, end to end: check-task, then a search.

Two script tasks, each run with ``sandbox.hardened=true`` (private /dev/shm, read-only
filesystem, namespaces):

- a PyTorch trainer whose batches come from ``DataLoader(num_workers=4)``;
- the unmodified command-line trainer of ``envs/script_example`` (``script_example``).

Each must pass ``check-task`` and a 4-experiment search whose experiments all end ``ok``.
Slow: real processes, real torch.
"""

from __future__ import annotations

import sys

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox"),
    pytest.mark.slow,
]

#: a small trainer with four DataLoader workers; prints ``val_loss: X``
LOADER_SCRIPT = """\
import argparse

import torch
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--hidden", type=int, default=16)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.manual_seed(args.seed)
g = torch.Generator().manual_seed(1234)  # the data is the same for every run
x = torch.randn(512, 8, generator=g)
y = (x[:, :4].sum(dim=1, keepdim=True) > 0).float()
train = DataLoader(TensorDataset(x[:384], y[:384]), batch_size=32, shuffle=True, num_workers=4)
model = torch.nn.Sequential(
    torch.nn.Linear(8, args.hidden), torch.nn.ReLU(), torch.nn.Linear(args.hidden, 1)
)
opt = torch.optim.SGD(model.parameters(), lr=args.lr)
loss_fn = torch.nn.BCEWithLogitsLoss()
for epoch in range(3):
    for xb, yb in train:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
with torch.no_grad():
    print(f"val_loss: {loss_fn(model(x[384:]), y[384:]).item():.6f}")
"""


def _loader_task(tmp_path):
    from rsi_rl.core.script_task import ScriptTask

    script = tmp_path / "loader_train.py"
    script.write_text(LOADER_SCRIPT)
    return ScriptTask(
        name="loader_workers",
        script=str(script),
        metric="val_loss",
        flags={"lr": "--lr", "hidden": "--hidden"},
        seed_flag="--seed",
        start_config={"lr": 0.05, "hidden": 16},
        knobs=[
            {"role": "learning_rate", "key": "lr", "scale": "log", "low": 0.005, "high": 0.5},
            {
                "role": "width",
                "key": "hidden",
                "scale": "log",
                "low": 4,
                "high": 64,
                "integer": True,
            },
        ],
        timeout=90,
        preload=["numpy", "torch"],
    )


def _script_example():
    from omegaconf import OmegaConf

    from rsi_rl.confpaths import conf_dir

    return OmegaConf.to_container(OmegaConf.load(conf_dir() / "task" / "script_example.yaml"))


@pytest.mark.parametrize("which", ["loader_workers", "script_example"])
def test_passes_check_task_and_a_hardened_search(tmp_path, which):
    from rsi_rl.agents import make_agent
    from rsi_rl.builder import make_env
    from rsi_rl.checker import check_task
    from rsi_rl.core.registry import make_task
    from rsi_rl.search import run_campaign

    spec = _loader_task(tmp_path) if which == "loader_workers" else _script_example()
    hardened = {"hardened": True}
    report = check_task(spec, seeds=(0, 1), run_edits="none", sandbox=hardened)
    assert report.ok, report.format()
    task = make_task(spec)
    env = make_env(task, 4, [0], {"executor": "serial", "sandbox": hardened})
    try:
        assert env.runner.limits.hardened is True
        run_campaign(env, make_agent("random", seed=0), seed=0, instance=0, test=False)
        runs = [r for r in env.log if r.get("kind") != "baseline" and r.get("split") == "val"]
        assert len(runs) == 4
        assert all(r["status"] == "ok" for r in runs), [
            (r["kind"], r["status"], r.get("message")) for r in runs
        ]
        assert env.log[0]["status"] == "ok"
    finally:
        env.close()
