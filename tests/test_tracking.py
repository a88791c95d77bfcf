"""Trackers: W&B offline run folders read back, TensorBoard, progress bars, logger=wandb sweeps."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rsi_rl.core.errors import ConfigError
from rsi_rl.tracking import (
    LogProgress,
    TensorBoardTracker,
    Tracker,
    WandbTracker,
    progress_bar,
    run_name,
)

pytest.importorskip("wandb")


# --------------------------------------------------------------------------- reading a run folder
def wandb_records(run_folder: Path) -> list[Any]:
    """Records of an offline run's ``.wandb`` file (a LevelDB-style log of protobufs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_folder.glob("*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, block, out, buf = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
            buf = b""
    return out


def read_run(run_folder: Path) -> dict[str, Any]:
    """Config, history rows, summary, artifacts and table files of an offline run."""
    recs = wandb_records(run_folder)
    kinds = Counter(r.WhichOneof("record_type") for r in recs)
    assert kinds["run"] == 1, kinds
    run = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    history = []
    for r in recs:
        if r.WhichOneof("record_type") == "history":
            history.append(
                {
                    (i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                    for i in r.history.item
                }
            )
    summary: dict[str, Any] = {}
    for r in recs:
        if r.WhichOneof("record_type") == "summary":
            for u in r.summary.update:
                summary[u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
    artifacts = [
        (r.artifact.name, r.artifact.type)
        for r in recs
        if r.WhichOneof("record_type") == "artifact"
    ]
    exit_code = next(
        (r.exit.exit_code for r in recs if r.WhichOneof("record_type") == "exit"), None
    )
    tables = {
        p.name.split("_")[0]: json.loads(p.read_text())
        for p in run_folder.glob("files/media/table/*.table.json")
    }
    return {
        "kinds": kinds, "run": run, "config": config, "history": history, "summary": summary,
        "artifacts": artifacts, "exit_code": exit_code, "tables": tables,
    }  # fmt: skip


def offline_runs(parent: Path) -> list[Path]:
    return sorted((parent / "wandb").glob("offline-run-*"))


def wandb_sync_dry_run(folder: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "wandb"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "wandb"]
    return subprocess.run(
        [*cmd, "sync", "--dry-run", str(folder)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """Offline W&B whose runs land in ``<tmp_path>/wb/wandb/`` (returns ``<tmp_path>/wb``)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    return tmp_path / "wb"


def _record(
    step: int, kind: str, metric: float | None, kept: bool, status: str = "ok"
) -> dict[str, Any]:
    return {
        "campaign": 1, "step": step, "kind": kind, "description": f"{kind} edit", "status": status,
        "metric": metric, "kept": kept, "seconds": 0.5, "reward": 0.1 if kept else 0.0,
        "best_metric": 0.8, "incumbent_metric": 0.8, "candidate": f"c{step}", "parent": "c0",
        "diff": "--- a/train.py\n+++ b/train.py\n@@\n-x\n+y\n", "split": "val",
    }  # fmt: skip


# --------------------------------------------------------------------------- W&B unit
def test_wandb_tracker_writes_an_offline_run_that_wandb_sync_accepts(tmp_path, offline):
    run_dir = tmp_path / "run"
    (run_dir / "best").mkdir(parents=True)
    (run_dir / "best" / "config.yaml").write_text("lr: 0.01\n")
    (run_dir / "best" / "train.py").write_text("print('hi')\n")
    (run_dir / "results.tsv").write_text("id\tkind\n1\tbaseline\n")
    tracker = WandbTracker(project="rsi_rl_test", tags=["unit"])
    tracker.start(run_dir, {"task": {"_target_": "x.Task"}, "budget": 3, "logger": {"mode": None}})
    tracker.log_experiment(
        {**_record(0, "baseline", 0.7, True), "parent": None}, {"seconds_used": 0.0}
    )
    tracker.log_experiment(_record(1, "lr_up", 0.8, True), {"seconds_used": 0.5})
    tracker.log_experiment(_record(2, "width_up", None, False, "crash"), {"seconds_used": 1.0})
    tracker.log_experiment({"kind": "stop", "step": 3, "status": "stopped"}, {})
    tracker.log_experiment({**_record(3, "test", 0.75, False), "split": "test"}, {})
    tracker.log_metrics({"train/loss": 1.5}, step=None)
    tracker.log_table("bench", [{"agent": "greedy", "regret": 0.1, "extra": {"a": 1}}])
    tracker.log_summary(
        {"task": "toy", "start_metric": 0.7, "best_metric": 0.8, "statuses": {"ok": 2}}
    )
    tracker.finish()
    tracker.finish()  # idempotent

    (folder,) = offline_runs(offline)
    got = read_run(folder)
    assert got["run"].project == "rsi_rl_test" and "unit" in got["run"].tags
    assert got["config"]["budget"] == 3 and got["config"]["task"] == {"_target_": "x.Task"}
    steps = [h for h in got["history"] if "experiment/index" in h]
    # 0-based like the console and the ledger's step; stop and test are not experiments
    assert [h["experiment/index"] for h in steps] == [0, 1, 2]
    assert steps[1]["experiment/metric"] == 0.8 and steps[1]["experiment/kept"] == 1
    assert "experiment/metric" not in steps[2] and steps[2]["experiment/ok"] == 0
    assert all("experiment/best_metric" in h and "experiment/reward" in h for h in steps)
    table = got["tables"]["experiments"]
    assert table["columns"][:8] == [
        "campaign",
        "step",
        "kind",
        "edit",
        "status",
        "metric",
        "kept",
        "seconds",
    ]
    assert "diff" in table["columns"] and len(table["data"]) == 3
    assert table["data"][1][2] == "lr_up" and table["data"][2][4] == "crash"
    assert got["tables"]["bench"]["columns"] == ["agent", "regret", "extra"]
    assert got["summary"]["best_metric"] == 0.8 and got["summary"]["test_metric"] == 0.75
    assert ("best-toy-run", "candidate") in got["artifacts"] and ("results-run", "ledger") in got[
        "artifacts"
    ]
    assert got["exit_code"] == 0
    p = wandb_sync_dry_run(folder)
    assert p.returncode == 0, p.stderr
    assert "Would sync 1 run" in p.stdout + p.stderr


def test_wandb_run_marked_failed_when_the_command_raises(tmp_path, offline):
    tracker = WandbTracker()
    tracker.start(tmp_path, {})
    with pytest.raises(RuntimeError):
        try:
            raise RuntimeError("boom")
        finally:
            tracker.finish()
    (folder,) = offline_runs(offline)
    assert read_run(folder)["exit_code"] == 1


def test_wandb_points_sb3_at_the_tensorboard_folder_it_syncs(tmp_path):
    assert WandbTracker().tensorboard_log(tmp_path) == str(tmp_path / "tb")
    assert WandbTracker(sync_tensorboard=False).tensorboard_log(tmp_path) is None


@pytest.mark.slow
def test_wandb_syncs_tensorboard_logs_for_meta_training(tmp_path, offline):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    tracker = WandbTracker()
    tracker.start(tmp_path, {"total_steps": 10})
    tb = tracker.tensorboard_log(tmp_path)
    assert tb == str(tmp_path / "tb")
    writer = SummaryWriter(
        os.path.join(tb, "MaskablePPO_1")
    )  # what SB3 does with tensorboard_log=tb
    for i in range(3):
        writer.add_scalar("rollout/ep_rew_mean", 0.1 * i, i * 64)
    writer.close()
    tracker.finish()
    (folder,) = offline_runs(offline)
    keys = {k for h in read_run(folder)["history"] for k in h}
    # SB3's own names, not prefixed by its run-numbered folder (MaskablePPO_1/rollout/...)
    assert "rollout/ep_rew_mean" in keys, keys
    assert not any("MaskablePPO_1" in k for k in keys), keys
    assert WandbTracker(sync_tensorboard=False).tensorboard_log(tmp_path) is None


def test_wandb_run_names_are_readable_and_unique_across_sweeps(tmp_path, offline):
    from datetime import datetime

    config = {"task": {"_target_": "x.TabularTask"}, "agent": "greedy", "seed": 3}
    t = datetime(2026, 1, 2, 3, 4, 5)
    ctx = {"choices": {"task": "tabular", "agent": "greedy"}}
    assert run_name(ctx, config, t) == "tabular-greedy-s3-260102-030405"
    assert (
        run_name({**ctx, "multirun": True, "num": 2}, config, t)
        == "tabular-greedy-s3-j2-260102-030405"
    )
    assert run_name({}, {"task": "tabular", "agents": ["a", "b"]}, t) == "tabular-260102-030405"
    # the same job of two sweeps (another start time) gets another name
    assert run_name({**ctx, "multirun": True, "num": 2}, config, datetime(2026, 1, 2, 9, 0, 0)) != (
        run_name({**ctx, "multirun": True, "num": 2}, config, t)
    )
    tracker = WandbTracker()
    tracker.start(tmp_path / "run", config)
    tracker.finish()
    (folder,) = offline_runs(offline)
    got = read_run(folder)
    assert got["run"].display_name.startswith("TabularTask-greedy-s3-"), got["run"].display_name
    assert got["config"]["run_dir"] == str(tmp_path / "run")


def test_wandb_runs_of_a_project_share_one_folder_that_wandb_sync_finds(
    tmp_path, monkeypatch, capfd
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        tracker = WandbTracker()
        tracker.start(tmp_path / "runs" / name, {"seed": 0})
        tracker.finish()
    folders = offline_runs(tmp_path)  # <project root>/wandb, not <run_dir>/wandb
    assert len(folders) == 2 and not list((tmp_path / "runs").rglob("offline-run-*"))
    err = capfd.readouterr().err
    assert "wandb leet" not in err and "wandb:" not in err  # wandb's own lines are silenced
    lines = [ln for ln in err.splitlines() if "W&B run" in ln]
    # one line per run (folders of one second sort by their random id, not by start)
    assert sorted(lines) == sorted(
        f"rsi-rl: offline W&B run: wandb sync wandb/{f.name}" for f in folders
    )
    exe = Path(sys.executable).parent / "wandb"
    p = subprocess.run(
        [str(exe), "sync", "--dry-run"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    found = p.stdout + p.stderr  # `wandb sync` with no path: every unsynced run in ./wandb
    assert "Would sync 2 run" in found and all(f.name.split("-")[-1] in found for f in folders), (
        found
    )
    # a user-set WANDB_DIR wins
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    tracker = WandbTracker()
    tracker.start(tmp_path / "runs" / "c", {})
    tracker.finish()
    assert len(offline_runs(tmp_path / "elsewhere")) == 1 and len(offline_runs(tmp_path)) == 2


def test_wandb_mode_rules(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert WandbTracker().mode == "offline"  # offline unless asked
    with pytest.raises(ConfigError, match="logger.mode=online needs a W&B API key"):
        WandbTracker(mode="online")
    with pytest.raises(ConfigError, match="logger.mode must be"):
        WandbTracker(mode="cloud")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert WandbTracker().mode == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert WandbTracker(mode="online").mode == "online"


def test_core_never_imports_wandb():
    code = "import sys, rsi_rl, rsi_rl.env, rsi_rl.search, rsi_rl.tracking, rsi_rl.analysis.report; print('wandb' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "False", p.stderr


# --------------------------------------------------------------------------- TensorBoard, progress
def test_tensorboard_tracker_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    tracker = TensorBoardTracker()
    tracker.start(tmp_path, {"budget": 2})
    tracker.log_experiment(_record(1, "lr_up", 0.8, True), {})
    tracker.log_metrics({"train/loss": 1.0}, step=1)
    tracker.log_summary({"best_metric": 0.8, "task": "toy"})
    tracker.finish()
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert tracker.tensorboard_log(tmp_path) == str(tmp_path / "tb")


def test_progress_bar_without_a_terminal_writes_periodic_lines_with_eta(capsys, monkeypatch):
    monkeypatch.delenv("RSI_RL_PROGRESS_SECONDS", raising=False)
    with progress_bar(5, "bench", "campaign") as bar:  # pytest captures stderr: not a TTY
        assert isinstance(bar, LogProgress) and bar.interval == 30.0
        bar.update(5)
    (line,) = capsys.readouterr().err.splitlines()  # the final line
    assert line.startswith("rsi-rl: bench 5/5 campaigns (100%)") and "elapsed" in line
    with progress_bar(3, "off", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""
    with progress_bar(3, "forced", enabled=True) as bar:  # tqdm even without a terminal
        bar.update(3)
    assert "forced" in capsys.readouterr().err


def test_log_progress_lines_every_interval_with_rate_and_eta():
    import io

    now = [100.0]
    out = io.StringIO()
    bar = LogProgress(40, "bench", "campaign", interval=30, stream=out, clock=lambda: now[0])
    now[0] += 10
    bar.update(2)  # 10 s: no line yet
    assert out.getvalue() == ""
    now[0] += 30
    bar.set_postfix(agent="greedy")
    bar.update(8)  # 40 s, 10 done: 0.25/s, 30 left -> 2m00s
    assert out.getvalue().splitlines() == [
        "rsi-rl: bench 10/40 campaigns (25%), 0.25 campaigns/s, elapsed 40s, ETA 2m00s, agent=greedy"
    ]
    now[0] += 5
    bar.update(1)  # 5 s after the last line: none
    assert len(out.getvalue().splitlines()) == 2 - 1
    now[0] += 75
    bar.close()
    bar.close()  # once
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("rsi-rl: bench 11/40 campaigns (28%)")
    resumed = LogProgress(100, "train", "step", initial=50, stream=out, clock=lambda: now[0])
    now[0] += 10
    resumed.update(10)  # rate counts only the new steps: 1/s, 40 left
    assert resumed.line().endswith("60/100 steps (60%), 1 steps/s, elapsed 10s, ETA 40s")


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_search_sweep_with_logger_wandb_makes_one_grouped_run_per_job(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    for key in ("WANDB_API_KEY", "WANDB_DIR"):  # runs go to <project root>/wandb
        env.pop(key, None)
    p = subprocess.run(
        [sys.executable, "-m", "rsi_rl.cli", "search", "-m", "task=tabular", "agent=random,greedy",
         "budget=3", "logger=wandb", "quiet=true"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    jobs = sorted(tmp_path.glob("runs/multirun/search/*/*/*_seed0"))
    assert [j.name for j in jobs] == ["0_random_seed0", "1_greedy_seed0"]
    assert (
        "wandb leet" not in p.stderr and p.stderr.count("offline W&B run: wandb sync wandb/") == 2
    )
    runs = {Path(read_run(f)["config"]["run_dir"]).name: f for f in offline_runs(tmp_path)}
    assert sorted(runs) == [j.name for j in jobs]  # one W&B folder for the project
    groups = set()
    for num, job in enumerate(jobs):
        got = read_run(runs[job.name])
        groups.add(got["run"].run_group)
        agent = got["config"]["hydra"]["choices"]["agent"]
        assert got["run"].job_type == "search" and agent in job.name
        assert got["run"].display_name.startswith(f"tabular-{agent}-s0-j{num}-")
        assert got["config"]["budget"] == 3
        assert len(got["tables"]["experiments"]["data"]) == 4  # baseline + 3 edits
        assert any(t == "candidate" for _, t in got["artifacts"])
        summary = json.loads((job / "summary.json").read_text())
        assert got["summary"]["best_metric"] == summary["best_metric"]
        assert got["summary"]["start_metric"] == summary["start_metric"]
        assert got["exit_code"] == 0
        dry = wandb_sync_dry_run(runs[job.name])
        assert dry.returncode == 0, dry.stderr
    (group,) = groups
    assert group.startswith("search_") and group.endswith(jobs[0].parent.name)
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)


class Recorder(Tracker):  # records every call of the interface
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def log_table(self, name, rows, columns=None):
        self.calls.append(("table", (name, rows, columns)))

    def log_images(self, images):
        self.calls.append(("images", dict(images)))

    def log_artifact(self, path, name, type="result", metadata=None):
        self.calls.append(("artifact", (Path(path).name, name, type)))

    def log_summary(self, summary):
        self.calls.append(("summary", summary))


def test_bench_and_training_helpers_feed_the_tracker_interface(tmp_path):
    from rsi_rl.tracking import log_bench, log_training

    (tmp_path / "bench.json").write_text("{}")
    (tmp_path / "regret.png").write_bytes(b"\x89PNG")
    result = {
        "agents": {
            "greedy": {"regret_mean": 0.1, "regret_ci95": [0.05, 0.2], "cotra": {"parity": 0.5}}
        },
        "paired": {
            "greedy_vs_random": {"wins": 3, "p_value": 0.04},
            "random_vs_greedy": {"wins": 0, "p_value": 0.04},  # the same test, mirrored
        },
        "plots": [str(tmp_path / "regret.png")],
        "setup": {"task": "tabular"},
    }
    rec = Recorder()
    log_bench(rec, tmp_path, result)
    tables = {c[1][0]: c[1] for c in rec.calls if c[0] == "table"}
    (row,) = tables["bench/agents"][1]
    assert row == {
        "agent": "greedy",
        "regret_mean": 0.1,
        "regret_ci95_low": 0.05,
        "regret_ci95_high": 0.2,
        "cotra_parity": 0.5,
    }
    assert [r["pair"] for r in tables["bench/paired"][1]] == ["greedy_vs_random"]  # once
    assert ("images", {"bench/regret": tmp_path / "regret.png"}) in rec.calls
    assert ("artifact", ("bench.json", f"bench-{tmp_path.name}", "bench")) in rec.calls

    info = {
        "task": "tabular",
        "algo": "ppo",
        "steps": 64,
        "eval": {"timesteps": [32, 64], "mean_return": [0.1, 0.2]},
    }
    (tmp_path / "train.json").write_text(json.dumps(info))
    (tmp_path / "policy.zip").write_bytes(b"PK")
    rec = Recorder()
    log_training(rec, tmp_path, tmp_path / "policy.zip")
    assert (
        "table",
        (
            "eval",
            [{"timesteps": 32, "mean_return": 0.1}, {"timesteps": 64, "mean_return": 0.2}],
            None,
        ),
    ) in rec.calls
    assert ("summary", {"task": "tabular", "algo": "ppo", "steps": 64}) in rec.calls
    assert ("artifact", ("policy.zip", f"policy-tabular-ppo-{tmp_path.name}", "model")) in rec.calls
