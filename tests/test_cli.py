"""The ``rsi-rl`` command: search end to end, multirun, tasks, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsi_rl.ledger import read_ledger


def rsi_rl(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsi_rl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_search_writes_a_complete_run_directory(tmp_path):
    p = rsi_rl(
        "search", "task=tabular", "agent=greedy", "budget=4", "seed=0", "logger=csv", cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("tabular instance tabular/10000: start val_acc=")
    progress = [ln for ln in lines if ln.startswith("[")]
    assert len(progress) == 4 and all("val_acc=" in ln and "best=" in ln for ln in progress)
    assert lines[-2].startswith("done: start val_acc=") and "test test_acc=" in lines[-2]
    run_dir = Path(lines[-1].split()[2])
    assert run_dir.is_dir() and str(run_dir).startswith(str(tmp_path))
    for name in (
        "ledger.sqlite",
        "results.tsv",
        "summary.json",
        "progress.csv",
        ".hydra/config.yaml",
        "best/config.yaml",
        "best/train.py",
        "best/diff.patch",
    ):
        assert (run_dir / name).exists(), name
    rows = read_ledger(run_dir)
    assert [r["kind"] for r in rows][0] == "baseline" and rows[-1]["split"] == "test"
    assert len(rows) == 6
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["experiments"] == 4 and summary["best_metric"] >= summary["start_metric"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["task=nope"], "unknown task 'nope'; known: "),
        (["agent=foo"], "unknown agent 'foo'; known: "),
        (["budget=-3"], "budget must be a positive integer"),
        (["budget=[1"], "malformed override"),
        (["nokey=3"], "unknown config key 'nokey'"),
        (["sandbox.timeout=-1"], "timeout must be positive"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, expected):
    p = rsi_rl("search", "task=tabular", *args, cwd=tmp_path, timeout=120)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rsi-rl: error: ") and expected in err[0], p.stderr


def test_unknown_command_and_help(tmp_path):
    p = rsi_rl("frobnicate", cwd=tmp_path)
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr
    p = rsi_rl("--help", cwd=tmp_path)
    assert p.returncode == 0 and "search" in p.stdout and "tasks" in p.stdout


def test_tasks_lists_builtins(tmp_path):
    p = rsi_rl("tasks", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "digits_mlp" in p.stdout and "tabular" in p.stdout and "val_acc (maximize)" in p.stdout
    assert not list(tmp_path.iterdir())  # listing tasks leaves no run directory behind


@pytest.mark.slow
def test_multirun_sweep_writes_one_ledger_per_job(tmp_path):
    p = rsi_rl(
        "search",
        "-m",
        "task=tabular",
        "agent=random,greedy",
        "seed=0,1",
        "budget=2",
        "quiet=true",
        cwd=tmp_path,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    ledgers = sorted(tmp_path.glob("runs/multirun/search/*/*/*/ledger.sqlite"))
    assert len(ledgers) == 4
    names = sorted(lg.parent.name for lg in ledgers)
    assert names == ["0_random_seed0", "1_random_seed1", "2_greedy_seed0", "3_greedy_seed1"]
    for lg in ledgers:
        assert len(read_ledger(lg.parent)) == 4  # baseline + 2 experiments + test


def test_search_config_wires_the_example_proposer(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rsi_rl.cli import _proposer, conf_dir
    from rsi_rl.env import ResearchEnv
    from rsi_rl.vocab import KIND_INDEX

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="search", overrides=["proposer=sample_patches"])
        assert _proposer(compose(config_name="search").proposer) is None
    GlobalHydra.instance().clear()
    spec = _proposer(cfg.proposer)
    assert spec["command"][0] == sys.executable and spec["timeout"] == 30
    env = ResearchEnv(task="digits_mlp", budget=2, proposer=spec)
    try:
        env.reset(seed=0)
        assert env.action_masks()[KIND_INDEX["propose"]]
        _, _, _, _, info = env.step(KIND_INDEX["propose"])
        assert info["kind"] == "propose" and info["status"] in ("ok", "invalid")
        assert info["experiment"]["diff"] or info["experiment"]["description"]
    finally:
        env.close()
