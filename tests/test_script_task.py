"""Script tasks: an unmodified command-line training script as an inner task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rsi_rl.checker import check_task
from rsi_rl.cli import conf_dir
from rsi_rl.core.edits import apply_edit, start_candidate
from rsi_rl.core.errors import TaskError
from rsi_rl.core.registry import make_task
from rsi_rl.core.script_task import ScriptTask
from rsi_rl.core.task import CodePatch
from rsi_rl.exec.runner import Runner
from rsi_rl.store.ledger import read_ledger

RSI_RL = str(Path(sys.executable).with_name("rsi-rl"))

#: a third-party-style script: argparse flags, its own data, logging to stderr, a JSON line
SCRIPT = """
import argparse, json, logging, random

logging.basicConfig(level=logging.INFO, format="%(message)s")
parser = argparse.ArgumentParser()
parser.add_argument("--learning-rate", type=float, required=True)
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--verbose", action="store_true")
args = parser.parse_args()
with open("opts.json") as fh:
    opts = json.load(fh)
rng = random.Random(args.seed)
x = 5.0
for r in range(args.rounds):
    x -= args.learning_rate * 2 * x + rng.gauss(0, 0.01)
    logging.info("round %d loss %.4f", r, x * x)
print(json.dumps({"round": args.rounds, "score": -x * x + opts["bonus"]}))
"""


def _write_script(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "fit.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def _task(script: Path, **over) -> ScriptTask:
    kwargs = dict(
        name="quad",
        script=str(script),
        metric="score",
        direction="maximize",
        metric_json="score",
        flags={"learning_rate": "--learning-rate", "rounds": "--rounds=", "verbose": "--verbose"},
        config_file="opts.json",
        seed_flag="--seed",
        start_config={"learning_rate": 0.01, "rounds": 10, "verbose": False, "bonus": 1.0},
        knobs=[
            {
                "kind": "lr",
                "key": "learning_rate",
                "scale": "log",
                "low": 1e-3,
                "high": 0.4,
                "step": 2.0,
            }
        ],
        patches=[
            {
                "kind": "grad_clip",
                "hunks": [["x -= args.learning_rate", "x -= 0.9 * args.learning_rate"]],
            }
        ],
        timeout=20,
        noise_prior=0.01,
        preload=["numpy"],
    )
    kwargs.update(over)
    return ScriptTask(**kwargs)  # type: ignore[arg-type]


def test_bundled_example_runs_and_is_self_reported():
    task = make_task(OmegaConf.load(conf_dir() / "task" / "script_example.yaml"))
    assert task.self_reported and task.describe()["trust"] == "self-reported"
    inst = task.make_instance(0)
    cand = start_candidate(task, inst.start_config)
    with Runner(task) as runner:
        res = runner.run(inst, cand, seed=0)
        assert res.status == "ok", res.message + res.stderr_tail
        assert 0 < res.metrics["val_loss"] < 1
        child, _ = apply_edit(task, cand, "init_scheme")  # a unified-diff patch file
        assert runner.run(inst, child, seed=0).status == "ok"


@pytest.mark.parametrize("launcher", ["runpy", "subprocess"])
def test_json_metric_flags_config_file_and_launchers(tmp_path, launcher):
    task = _task(_write_script(tmp_path / "s"), launcher=launcher)
    report = check_task(task, seeds=(0, 1), run_edits="all")
    assert report.ok, report.format()
    assert report.baseline_metric is not None and report.baseline_metric < 1.0


def test_regex_that_never_matches_names_the_key(tmp_path):
    task = _task(_write_script(tmp_path / "s"), metric_json=None, metric_regex=r"^final: (\S+)")
    report = check_task(task, seeds=(0,), run_edits="none")
    assert not report.ok
    detail = report.failures[0].detail
    assert (
        report.failures[0].name == "baseline"
        and "metric_regex" in detail
        and "matched nothing" in detail
    )


def test_bad_configs_give_one_line_naming_the_key(tmp_path):
    script = _write_script(tmp_path / "s")
    with pytest.raises(TaskError, match=r"script .*missing\.py' does not exist \(fix script"):
        _task(tmp_path / "missing.py")
    with pytest.raises(TaskError, match=r"flags.lr maps a config key that start_config lacks"):
        _task(script, flags={"lr": "--lr"})
    with pytest.raises(TaskError, match=r"start_config.bonus reaches the script by no flag"):
        _task(script, config_file=None)
    with pytest.raises(TaskError, match=r"knobs\[0\].key 'nope' is not a key"):
        _task(script, knobs=[{"kind": "lr", "key": "nope", "scale": "log", "low": 1e-3, "high": 1}])
    with pytest.raises(TaskError, match=r"patches\[0\] does not apply"):
        _task(script, patches=[{"kind": "grad_clip", "hunks": [["not in the script", "x"]]}])
    with pytest.raises(TaskError, match=r"patches\[0\].diff .* does not exist"):
        _task(script, patches=[{"kind": "grad_clip", "diff": "nope.diff"}])
    for err in ("x\n" * 2,):  # no hunk in a diff file
        (script.parent / "bad.diff").write_text(err)
        with pytest.raises(TaskError, match=r"patches\[0\].diff .*(exactly one file|no hunks)"):
            _task(script, patches=[{"kind": "grad_clip", "diff": "bad.diff"}])


def test_unified_diff_becomes_exact_hunks():
    diff = "--- a/t.py\n+++ b/t.py\n@@ -1,3 +1,3 @@\n a = 1\n-b = 2\n+b = 3\n c = 4\n"
    patch = CodePatch.from_diff(diff, "warmup", "d", "x.diff")
    assert patch.file == "t.py"
    assert patch.apply("a = 1\nb = 2\nc = 4\n") == "a = 1\nb = 3\nc = 4\n"


def test_script_task_search_from_a_user_config_dir(tmp_path):
    script = _write_script(tmp_path / "proj")
    (tmp_path / "cfg" / "task").mkdir(parents=True)
    cfg = {
        "_target_": "rsi_rl.core.script_task.ScriptTask",
        "name": "quad",
        "script": str(script),
        "metric": "score",
        "direction": "maximize",
        "metric_json": "score",
        "flags": {"learning_rate": "--learning-rate", "rounds": "--rounds"},
        "config_file": "opts.json",
        "start_config": {"learning_rate": 0.01, "rounds": 10, "bonus": 0.0},
        "knobs": [{"kind": "lr", "key": "learning_rate", "scale": "log", "low": 1e-3, "high": 0.4}],
        "preload": ["numpy"],
    }
    (tmp_path / "cfg" / "task" / "quad.yaml").write_text(json.dumps(cfg))
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    out = subprocess.run(
        [
            RSI_RL,
            "search",
            "--config-dir",
            str(tmp_path / "cfg"),
            "task=quad",
            "budget=3",
            "hydra.run.dir=run",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["self_reported"] is True and summary["experiments"] == 3
    assert "(self-reported)" in out.stderr + out.stdout
    # no split_flag: no test split, so no test row and no copy of the validation score
    assert summary["test_metric"] is None and summary["test_status"] == "no test split"
    assert "test: no test split" in out.stderr + out.stdout
    rows = read_ledger(tmp_path / "run")
    assert [r for r in rows if r["split"] == "test"] == []
    assert all("stdout_tail" in r for r in rows)


def test_without_split_flag_a_script_task_has_no_test_split(tmp_path):
    script = _write_script(tmp_path / "proj")
    assert _task(script).has_test_split is False
    assert _task(script, split_flag="--split").has_test_split is True
