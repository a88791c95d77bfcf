"""Artifacts: files a task's program writes that the user keeps (``InnerTask.artifacts``).

After a successful run the runner copies them out of the scratch dir (no link followed,
regular files only, ``sandbox.artifact_mb`` in all) into a per-candidate store; a search
keeps the best candidate's under ``best/artifacts/``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

from rsi_rl.agents import make_agent
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import TaskError
from rsi_rl.core.script_task import ScriptTask
from rsi_rl.env import ResearchEnv
from rsi_rl.exec.artifacts import keep_artifacts
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits
from rsi_rl.exec.scratch_io import ScratchDir, UnsafeScratchFile
from rsi_rl.search import run_campaign, save_best

#: softmax regression in torch on tabular's data; saves its weights and its lr
PROGRAM = """\
import os
import torch
from rsi_rl import harness

cfg, d = harness.config(), harness.data()
x = torch.tensor(d["x_train"], dtype=torch.float32)
y = torch.tensor(d["y_train"], dtype=torch.long)
model = torch.nn.Linear(x.shape[1], int(d["n_classes"]))
opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
for step in range(int(cfg["steps"])):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    harness.log(step=step, train_loss=loss.item())
torch.save({**model.state_dict(), "lr": torch.tensor(cfg["lr"])}, "model.pt")
os.makedirs("out", exist_ok=True)
with open("out/notes.txt", "w") as fh:
    fh.write(f"lr={cfg['lr']}")
with torch.no_grad():
    harness.submit(model(torch.tensor(d["x_eval"], dtype=torch.float32)).numpy())
"""

PRELUDE = (
    "import os\nimport numpy as np\nfrom rsi_rl import harness\nn = len(harness.data()['x_eval'])\n"
)


@pytest.fixture(scope="module")
def saving_task():
    """tabular's data and knobs; a torch program that keeps its weights (model.pt) and a
    note in a sub-folder (out/notes.txt)."""
    from rsi_rl.envs.tabular.task import TabularTask

    class Saving(TabularTask):
        name = "tabular_saving"
        patches = ()
        artifacts = ("model.pt", "out/notes.txt")

        def source(self) -> dict[str, str]:
            return {self.entry: PROGRAM}

    return Saving()


@pytest.fixture(scope="module")
def light_saving(light_tabular):
    """A numpy-only sandbox (fast to start) for programs that write artifacts by hand."""

    class LightSaving(type(light_tabular)):  # type: ignore[misc]
        name = "light_saving"
        artifacts = ("model.pt", "out/notes.txt")

    return LightSaving()


def run_body(runner: Runner, body: str, lr: float = 0.1) -> Any:
    inst = runner.task.make_instance(0)
    cand = Candidate({**inst.start_config, "lr": lr}, {"train.py": PRELUDE + body})
    return runner.run(inst, cand, 0), cand


SUBMIT = "harness.submit(np.zeros((n, 3)))\n"


# ---------------------------------------------------------------- a search keeps the best's
def test_search_keeps_the_best_candidates_weights(saving_task, tmp_path):
    env = ResearchEnv(task=saving_task, budget=4, instances=[10_000], run_dir=tmp_path)
    try:
        summary = run_campaign(env, make_agent("random", seed=0), seed=0, test=False)
        best = save_best(env, tmp_path, summary)
        store = env.runner.artifact_dir
        assert store.is_dir()
    finally:
        env.close()
    assert summary["artifacts"] == ["model.pt", "out/notes.txt"]
    state = torch.load(best / "artifacts" / "model.pt", weights_only=True)
    inst = saving_task.make_instance(10_000)
    d = inst.data["x_train"].shape[1]
    assert set(state) == {"weight", "bias", "lr"}
    n_classes = int(saving_task.child_inputs(inst, "val")["n_classes"])
    assert state["weight"].shape == (n_classes, d) and state["bias"].shape == (n_classes,)
    assert state["lr"].item() == pytest.approx(summary["best_config"]["lr"])
    assert (
        best / "artifacts" / "out" / "notes.txt"
    ).read_text() == f"lr={summary['best_config']['lr']}"
    assert not store.exists()  # the store lives with the runner's scratch and goes with it


@pytest.mark.parametrize("hardened", [False, True])
def test_kept_after_a_run_in_either_mode(light_saving, hardened):
    body = (
        "open('model.pt', 'wb').write(b'w' * 100)\n"
        "os.makedirs('out')\nopen('out/notes.txt', 'w').write('hi')\n" + SUBMIT
    )
    with Runner(light_saving, SandboxLimits(timeout=30, hardened=hardened)) as runner:
        res, cand = run_body(runner, body)
        assert res.status == "ok", res.message + res.stderr_tail
        kept = runner.artifacts_of(cand.hash)
        assert kept is not None
        assert (kept / "model.pt").read_bytes() == b"w" * 100
        assert (kept / "out" / "notes.txt").read_text() == "hi"
        assert res.enforced["artifacts"].startswith("kept model.pt (100 B), out/notes.txt (2 B)")


# ---------------------------------------------------------------- hostile or odd artifacts
def test_a_symlink_artifact_is_refused(light_saving, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the scratch dir")
    body = (
        f"os.symlink({str(secret)!r}, 'model.pt')\nos.symlink({str(tmp_path)!r}, 'out')\n" + SUBMIT
    )
    with Runner(light_saving, SandboxLimits(timeout=30, hardened=False)) as runner:
        res, cand = run_body(runner, body)
        assert res.status == "ok", res.message
        assert runner.artifacts_of(cand.hash) is None  # nothing copied
        note = res.enforced["artifacts"]
        assert note.startswith("none kept")
        assert "refused model.pt is a symbolic link" in note
        assert "refused out cannot be opened safely as a folder" in note


def test_a_hard_link_and_an_oversized_artifact_are_refused(light_saving, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    body = (
        f"os.link({str(outside)!r}, 'model.pt')\n"
        "os.makedirs('out')\nopen('out/notes.txt', 'w').write('y' * 5000)\n" + SUBMIT
    )
    limits = SandboxLimits(timeout=30, hardened=False, artifact_mb=0.001)  # 1 KiB in all
    with Runner(light_saving, limits) as runner:
        if os.stat(outside).st_dev != os.stat(runner.scratch_root).st_dev:
            pytest.skip("the scratch dir is on another filesystem: no hard link across")
        res, cand = run_body(runner, body)
        note = res.enforced["artifacts"]
        assert "refused model.pt has 2 hard links" in note
        assert "refused out/notes.txt is 4.9 KiB, over the 1 KiB cap" in note
        assert runner.artifacts_of(cand.hash) is None


def test_a_later_run_that_keeps_nothing_leaves_the_earlier_artifacts(light_saving):
    with Runner(light_saving, SandboxLimits(timeout=30, hardened=False)) as runner:
        res, cand = run_body(runner, "open('model.pt', 'wb').write(b'first')\n" + SUBMIT)
        assert res.status == "ok"
        inst = light_saving.make_instance(0)
        again = runner.run(inst, Candidate(cand.config, {"train.py": PRELUDE + SUBMIT}), 1)
        assert again.enforced["artifacts"].startswith("none kept; missing model.pt")
        # a different source is another candidate: the first one's files stay
        assert (runner.artifacts_of(cand.hash) / "model.pt").read_bytes() == b"first"  # type: ignore[operator]


def test_a_failed_run_keeps_nothing(light_saving):
    with Runner(light_saving, SandboxLimits(timeout=30, hardened=False)) as runner:
        res, cand = run_body(runner, "open('model.pt', 'wb').write(b'w')\nraise SystemExit(1)\n")
        assert res.status == "crash" and "artifacts" not in res.enforced
        assert runner.artifacts_of(cand.hash) is None


def test_keep_artifacts_refuses_paths_out_of_the_scratch_dir(tmp_path):
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "ok.bin").write_bytes(b"1")
    (tmp_path / "evil").write_bytes(b"2")
    with ScratchDir(tmp_path / "scratch") as scratch:
        note = keep_artifacts(
            scratch, ["../evil", "/etc/hostname", "ok.bin"], tmp_path / "store", 10
        )
        with pytest.raises(UnsafeScratchFile):
            scratch.copy_file("a/../../evil", tmp_path / "x", 10)
    assert note.startswith("kept ok.bin (1 B)") and note.count("refused") == 2
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["ok.bin"]


# ---------------------------------------------------------------- script tasks, W&B
def test_script_task_artifacts(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('val_loss: 1.0')\n")
    base: dict[str, Any] = {"name": "s", "script": str(script), "metric": "val_loss"}
    assert ScriptTask(**base).artifacts == ()
    assert ScriptTask(**base, artifacts=["out/model.pt"]).artifacts == ("out/model.pt",)
    for bad in (["../model.pt"], ["/abs/model.pt"], "model.pt"):
        with pytest.raises(TaskError, match="artifacts"):
            ScriptTask(**base, artifacts=bad)


def test_wandb_logs_the_artifacts_as_a_model(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from rsi_rl.tracking.wandb import WandbTracker

    run_dir = tmp_path / "run"
    (run_dir / "best" / "artifacts").mkdir(parents=True)
    (run_dir / "best" / "config.yaml").write_text("lr: 0.1\n")
    (run_dir / "best" / "artifacts" / "model.pt").write_bytes(b"weights")

    class FakeRun:
        def __init__(self) -> None:
            self.summary: dict[str, Any] = {}
            self.logged: list[Any] = []

        def log_artifact(self, art: Any) -> None:
            self.logged.append(art)

        def log(self, *args: Any, **kwargs: Any) -> None:
            pass

    tracker = WandbTracker(mode="disabled")
    tracker.run, tracker.run_dir = FakeRun(), run_dir
    monkeypatch.setattr(tracker, "_log_experiments_table", lambda run: None)
    tracker.log_summary({"task": "toy", "best_config": {"lr": 0.1}})
    arts = {a.type: a for a in tracker.run.logged}
    assert arts["model"].name == "model-toy-run"
    assert sorted(arts["model"].manifest.entries) == ["model.pt"]
    assert sorted(arts["candidate"].manifest.entries) == ["config.yaml"]


def test_task_artifacts_default_is_none():
    from rsi_rl.core.task import InnerTask

    assert InnerTask.artifacts == ()
