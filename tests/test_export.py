"""``rsi-rl export``: the best candidate as a program that runs on its own and scores the same."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from rsi_rl.core.errors import ConfigError
from rsi_rl.export import export_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real campaign (greedy on tabular, 4 experiments) with best/ and summary.json (slow tests)."""
    from rsi_rl.agents import GreedyAgent
    from rsi_rl.env import ResearchEnv
    from rsi_rl.search import run_campaign, save_best

    path = tmp_path_factory.mktemp("export_run")
    env = ResearchEnv(task="tabular", budget=4, instances=[10_000], run_dir=path)
    try:
        summary = run_campaign(env, GreedyAgent(seed=0), seed=0, instance=10_000, test=False)
        save_best(env, path, summary)
    finally:
        env.close()
    return path


@pytest.fixture()
def fake_dir(tmp_path):
    """A finished run without training: a ledger row, summary.json and best/ (tabular's program)."""
    from rsi_rl.core.registry import make_task
    from rsi_rl.store.ledger import Ledger

    path = tmp_path / "run"
    led = Ledger(path, task="tabular", metric="val_acc")
    led.append({"campaign": 1, "step": 1, "kind": "lr_up", "instance": "tabular/10000", "candidate": "c1",
                "seed": 123, "split": "val", "status": "ok", "metric": 0.5, "kept": True, "budget_seconds": 30.0})  # fmt: skip
    led.close()
    (path / "best").mkdir()
    (path / "best" / "config.yaml").write_text(yaml.safe_dump({"lr": 0.002}))
    (path / "best" / "train.py").write_text(make_task("tabular").source()["train.py"])
    (path / "best" / "diff.patch").write_text("")
    summary = {
        "task": "tabular",
        "instance": "tabular/10000",
        "best_candidate": "c1",
        "metric": "val_acc",
        "best_metric": 0.5,
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_export_folder_and_task_spec(fake_dir, tmp_path):
    out = export_run(fake_dir)
    assert out == fake_dir / "export"
    for name in ("run.py", "train.py", "config.yaml", "task.yaml", "README.md", "diff.patch"):
        assert (out / name).is_file(), name
    spec = yaml.safe_load((out / "task.yaml").read_text())
    assert spec["task"] == "tabular" and spec["instance"] == 10_000 and spec["seed"] == 123
    assert spec["timeout"] == 30.0 and spec["files"] == ["train.py"] and spec["candidate"] == "c1"
    assert (out / "train.py").read_text() == (fake_dir / "best" / "train.py").read_text()
    compile((out / "run.py").read_text(), "run.py", "exec")
    assert "python run.py" in (out / "README.md").read_text()


@pytest.mark.slow
def test_export_writes_a_runnable_program_that_reproduces_the_metric(run_dir, tmp_path):
    out = export_run(run_dir, out=tmp_path / "best")
    for name in ("run.py", "train.py", "config.yaml", "task.yaml", "README.md", "diff.patch"):
        assert (out / name).is_file(), name
    spec = yaml.safe_load((out / "task.yaml").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (
        spec["task"] == "tabular" and spec["instance"] == 10_000 and spec["files"] == ["train.py"]
    )
    assert yaml.safe_load((out / "config.yaml").read_text()) == summary["best_config"]
    # runs outside the sandbox, from another folder, and scores what the campaign measured
    p = subprocess.run(
        [sys.executable, str(out / "run.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    got = dict(line.split(": ", 1) for line in p.stdout.splitlines())
    assert float(got["val_acc"]) == pytest.approx(summary["best_metric"], abs=1e-6)
    assert (out / "work" / "predictions.npy").is_file()


@pytest.mark.slow
def test_exported_program_in_the_sandbox_and_on_test(run_dir, tmp_path):
    out = export_run(run_dir, out=tmp_path / "best")
    p = subprocess.run(
        [sys.executable, str(out / "run.py"), "--sandbox"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert float(p.stdout.split("val_acc: ")[1].split()[0]) == pytest.approx(
        summary["best_metric"], abs=1e-6
    )
    p = subprocess.run(
        [sys.executable, str(out / "run.py"), "--split", "test"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0 and "test_acc: " in p.stdout, p.stderr[-2000:]


def test_export_user_errors(tmp_path, fake_dir):
    with pytest.raises(ConfigError, match="has no ledger.sqlite"):
        export_run(tmp_path)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "ledger.sqlite").write_bytes((fake_dir / "ledger.sqlite").read_bytes())
    with pytest.raises(ConfigError, match="no best/config.yaml"):
        export_run(tmp_path / "half")


def test_cli_export(fake_dir, tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "rsi_rl.cli", "export", str(fake_dir), f"out={tmp_path / 'x'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "run it with: python" in p.stdout and (tmp_path / "x" / "run.py").is_file()


def test_the_plain_run_says_where_the_declared_artifacts_are(tmp_path, capsys):
    """An exported candidate run outside the sandbox leaves the files its task declares as
    artifacts in its work folder, and says where (a cached best candidate has none in
    ``best/artifacts/``: this run is how to get them)."""
    import argparse

    import numpy as np

    from rsi_rl.export_run import _Job, _plain
    from rsi_rl.testing import ToyTask

    class Saver(ToyTask):
        artifacts = ("model.bin", "missing.bin")

        def child_inputs(self, instance, split):
            return {"x": np.zeros(2)}

        def evaluate(self, predictions, instance, split):
            return {"val_acc": float(np.mean(predictions))}

    program = (
        "import numpy as np\nfrom rsi_rl import harness\n"
        "open('model.bin', 'wb').write(b'w')\nharness.submit(np.ones(2))\n"
    )
    task = Saver()
    job = _Job(task, task.make_instance(1000), {}, {"train.py": program})
    args = argparse.Namespace(
        workdir=str(tmp_path / "work"), split="val", seed=0, timeout=60.0, threads=1
    )
    assert _plain(job, args, tmp_path) == 0
    out = capsys.readouterr().out
    assert f"artifacts: {tmp_path / 'work' / 'model.bin'}" in out.splitlines()
    assert "missing.bin" not in out
