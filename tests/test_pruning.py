"""Intermediate reports and pruning: ``harness.report``, the report file's safe reads, the
Optuna study of a campaign, a pruned run's record, and hostile report files.

Fast tests use a scratch folder and an in-memory study; the tests marked by their use of
``runner`` run real programs in the real sandbox (numpy only preloaded), because stopping
and judging a running program is what they test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time

import pytest

from rsi_rl import harness
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.exec.pruning import (
    REPORT_TAIL,
    PrunerSettings,
    PruningStudy,
    Report,
    parse_reports,
    pruner_settings,
)
from rsi_rl.exec.runner import RECORD_STATUSES, STATUSES, Runner, observed_status
from rsi_rl.exec.scratch_io import ScratchDir

optuna = pytest.importorskip("optuna")
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: a program whose reports are good (``bad`` false) or clearly worse; 20 steps of 0.1 s
PROGRAM = """\
import time
import numpy as np
from rsi_rl import harness

cfg, d = harness.config(), harness.data()
for step in range(1, 21):
    time.sleep(0.1)
    harness.report(step, (10.0 if cfg.get("bad") else 1.0) + 1.0 / step)
harness.submit(np.zeros((len(d["x_eval"]), int(d["n_classes"]))))
"""
#: the seconds the full program takes at least
FULL_RUN = 2.0


def _cand(inst, body: str = PROGRAM, **config) -> Candidate:
    return Candidate({**inst.start_config, **config}, {"train.py": body})


# ---------------------------------------------------------------- statuses and settings
def test_observation_statuses_unchanged():
    from rsi_rl.actions import OBSERVATION_FEATURES, SPACE_VERSION

    assert STATUSES == ("ok", "crash", "timeout", "oom", "nan", "invalid")
    assert (*STATUSES, "pruned") == RECORD_STATUSES
    assert "status_pruned" not in OBSERVATION_FEATURES and len(OBSERVATION_FEATURES) == 3674
    # the layout saved policies were trained on (pruning adds no feature)
    assert hashlib.sha256(SPACE_VERSION.encode()).hexdigest()[:16] == "674991f7238884d4"
    assert observed_status("pruned") == "timeout"
    assert observed_status("ok") == "ok" and observed_status(None) is None


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("median", "MedianPruner"),
        ("successive_halving", "SuccessiveHalvingPruner"),
        ("hyperband", "HyperbandPruner"),
    ],
)
def test_settings_make_optuna_pruners(name, cls):
    settings = pruner_settings(name, warmup_steps=2)
    assert settings is not None
    assert type(settings.make()).__name__ == cls


def test_settings_none_and_errors():
    assert pruner_settings(None) is None and pruner_settings("none") is None
    with pytest.raises(ConfigError, match="env.pruner='asha' is not a pruner"):
        pruner_settings("asha")
    with pytest.raises(ConfigError, match="env.pruner_reduction_factor"):
        PrunerSettings("hyperband", reduction_factor=1)
    with pytest.raises(ConfigError, match="env.pruner_warmup_steps"):
        PrunerSettings("median", warmup_steps=-1)


def test_config_schema_takes_the_pruner_keys():
    from omegaconf import OmegaConf

    from rsi_rl.builder import ENV_KEYS
    from rsi_rl.config_schema import validate

    cfg = OmegaConf.create(
        {"budget": 3, "seed": 0, "env": {"pruner": "hyperband", "pruner_warmup_steps": 2}}
    )
    typed = validate(cfg, "search")
    assert typed.env.pruner.value == "hyperband" and typed.env.pruner_warmup_steps == 2
    assert {"pruner", "pruner_warmup_steps"} <= set(ENV_KEYS)
    with pytest.raises(ConfigError, match="env.pruner"):
        validate(OmegaConf.create({"env": {"pruner": "asha"}}), "search")


def test_bench_command_line_reaches_the_env():
    """``rsi-rl bench ... env.pruner=hyperband budget_seconds=...``: the documented
    cost-aware baseline composes, validates and becomes ResearchEnv arguments."""
    from hydra import compose, initialize_config_dir

    from rsi_rl.builder import env_kwargs, settings
    from rsi_rl.confpaths import conf_dir

    overrides = ["task=digits_mlp", "env.pruner=hyperband", "budget_seconds=120"]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=overrides)
    assert settings(cfg, "bench").budget_seconds == 120
    kwargs = env_kwargs(cfg)
    assert kwargs["pruner"] == "hyperband" and kwargs["pruner_reduction_factor"] == 3
    assert pruner_settings(kwargs["pruner"]).name == "hyperband"


# ---------------------------------------------------------------- the report file
def test_harness_report_appends_json_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("RSI_RL_WORKDIR", str(tmp_path))
    harness.report(1, 0.5)
    harness.report(2, float("nan"))
    lines = (tmp_path / harness.REPORTS_FILE).read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 1, "value": 0.5}
    assert parse_reports((tmp_path / harness.REPORTS_FILE).read_bytes(), cut=False) == [
        (1, 0.5, None),
        (2, math.inf, None),  # NaN reads as the worst value
    ]


def test_parse_reports_skips_garbage_and_partial_lines():
    data = (
        b'{"step": 1, "value": 2.0}\n'
        b"garbage\n"
        b'{"step": true, "value": 1}\n'
        b'{"step": -1, "value": 1}\n'
        b'{"step": 2, "value": "x"}\n'
        b"[1, 2]\n"
        b'{"step": 3, "value": 1}\n'
        b'{"step": 4, "val'  # still being written
    )
    assert parse_reports(data, cut=False) == [(1, 2.0, None), (3, 1.0, None)]
    assert parse_reports(data, cut=True) == [(3, 1.0, None)]  # a cut tail's first line is partial


def test_reports_carry_their_total(tmp_path, monkeypatch):
    monkeypatch.setenv("RSI_RL_WORKDIR", str(tmp_path))
    harness.report(1, 0.5, total=40)
    data = (tmp_path / harness.REPORTS_FILE).read_bytes()
    assert json.loads(data) == {"step": 1, "value": 0.5, "total": 40}
    data += b'{"step": 2, "value": 1, "total": 0}\n{"step": 3, "value": 1, "total": "9"}\n'
    data += b'{"step": 4, "value": 1, "total": true}\n{"step": 5, "value": 1, "total": 7.5}\n'
    reports = parse_reports(data, cut=False)
    assert reports[0] == Report(1, 0.5, 40) and reports[0].total == 40
    assert [r.total for r in reports[1:]] == [None] * 4  # a total that is not a count is none


def test_script_report_regex_may_capture_the_total(tmp_path, monkeypatch):
    from rsi_rl.exec.script_launch import _Capture

    monkeypatch.setenv("RSI_RL_WORKDIR", str(tmp_path))
    capture = _Capture(r"step (?P<step>\d+)/(?P<total>\d+) loss (?P<value>\S+)")
    capture.keep("step 10/200 loss 2.5\nstep 20/2")
    capture.keep("00 loss 2.0\n")
    data = (tmp_path / harness.REPORTS_FILE).read_bytes()
    assert parse_reports(data, cut=False) == [(10, 2.5, 200), (20, 2.0, 200)]


def _scratch(tmp_path, rows=None, raw=None) -> ScratchDir:
    scratch = ScratchDir.create(tmp_path / "run")
    if raw is not None:
        scratch.write_bytes(harness.REPORTS_FILE, raw)
    elif rows is not None:
        text = "".join(json.dumps({"step": s, "value": v}) + "\n" for s, v in rows)
        scratch.write_text(harness.REPORTS_FILE, text)
    return scratch


def _complete(study: PruningStudy, tmp_path, values: list[float]) -> None:
    with _scratch(tmp_path, list(enumerate(values, start=1))) as scratch:
        watch = study.watch(scratch, prune=False)
        assert watch.poll() is False
        watch.finish("ok")


def test_median_study_prunes_a_clearly_worse_run(tmp_path):
    study = PruningStudy(PrunerSettings("median", startup_trials=1))
    _complete(study, tmp_path / "a", [1.5, 1.2, 1.0])
    with _scratch(tmp_path / "b", [(1, 1.4)]) as scratch:
        good = study.watch(scratch)
        assert good.poll() is False
        good.finish("ok")
    with _scratch(tmp_path / "c", [(1, 9.0)]) as scratch:
        bad = study.watch(scratch)
        assert bad.poll() is True
        assert "median pruner at step 1 (reported 9)" in bad.message
        bad.finish("pruned")
    states = [t.state.name for t in study.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert study.study.trials[0].intermediate_values == {1: 1.5, 2: 1.2, 3: 1.0}


def test_a_timed_out_run_counts_with_the_reports_it_made(tmp_path):
    """A run stopped by its wall-clock limit completes its trial with the reports it made
    (on a task where many runs time out, the median pruner would otherwise wait for ever);
    a crashed run's reports count for nothing."""
    study = PruningStudy(PrunerSettings("median", startup_trials=1))
    with _scratch(tmp_path / "a", [(1, 7.0)]) as scratch:
        crashed = study.watch(scratch, prune=False)
        crashed.poll()
        crashed.finish("crash")
    with _scratch(tmp_path / "b", [(1, 1.5), (2, 1.2)]) as scratch:
        slow = study.watch(scratch, prune=False)
        slow.finish("timeout")
    with _scratch(tmp_path / "c", [(1, 9.0)]) as scratch:
        assert study.watch(scratch).poll() is True
    assert [t.state.name for t in study.study.trials[:2]] == ["FAIL", "COMPLETE"]
    assert study.study.trials[1].intermediate_values == {1: 1.5, 2: 1.2}


def test_maximize_direction(tmp_path):
    study = PruningStudy(PrunerSettings("median", startup_trials=1), direction="maximize")
    _complete(study, tmp_path / "a", [0.5, 0.8])
    with _scratch(tmp_path / "b", [(1, 0.1)]) as scratch:
        assert study.watch(scratch).poll() is True  # a lower accuracy is the worse one
    with pytest.raises(ConfigError, match="report_direction"):
        PruningStudy(PrunerSettings("median"), direction="up")


def test_no_prune_watch_never_stops(tmp_path):
    study = PruningStudy(PrunerSettings("median", startup_trials=1))
    _complete(study, tmp_path / "a", [1.0])
    with _scratch(tmp_path / "b", [(1, 9.0)]) as scratch:
        watch = study.watch(scratch, prune=False)
        assert watch.poll() is False
        watch.finish("ok")
    assert study.study.trials[-1].state.name == "COMPLETE"


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _paced(study, scratch, limit, steps, every, total):
    """Begin a watch with ``limit``, then write one report per ``every`` fake seconds
    and poll after each; the step at which it stopped (None: never)."""
    clock = study.clock = _Clock()
    watch = study.watch(scratch)
    watch.begin(limit)
    clock.now += 3.0  # start-up: not counted against the run's pace
    for step in range(1, steps + 1):
        clock.now += every
        row = {"step": step, "value": 1.0} | ({"total": total} if total else {})
        with open(scratch.path / harness.REPORTS_FILE, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if watch.poll():
            return watch, step
    return watch, None


def test_a_run_forecast_to_time_out_is_stopped(tmp_path):
    """A run whose pace says it needs far more than its limit is stopped once its pace
    was measured for three seconds; a run that will finish, one that gives no total, and the
    start candidate's unprunable run are not. No finished run is needed to compare."""
    study = PruningStudy(PrunerSettings("median"))
    with _scratch(tmp_path / "a") as scratch:
        slow, at = _paced(study, scratch, limit=10, steps=50, every=0.5, total=100)
    assert at == 7  # the pace is measured from the first report, over at least 3 s
    assert slow.message.startswith("stopped early: at step 7 of 100 after 6.5 s")
    assert "would need about 53 s, past its 10 s limit" in slow.message
    with _scratch(tmp_path / "b") as scratch:  # needs about 11 s: within 1.25 x 10 s
        on_time, at = _paced(study, scratch, limit=10, steps=20, every=0.4, total=20)
    assert at is None and on_time.forecast is None
    with _scratch(tmp_path / "c") as scratch:  # the same slow pace, no total: never forecast
        _, at = _paced(study, scratch, limit=10, steps=20, every=0.5, total=None)
    assert at is None
    with _scratch(tmp_path / "d") as scratch:
        study.clock = _Clock()
        watch = study.watch(scratch, prune=False)
        watch.begin(10)
        for step in range(1, 8):
            study.clock.now += 1.0
            scratch.write_text(
                harness.REPORTS_FILE, json.dumps({"step": step, "value": 1, "total": 99}) + "\n"
            )
            assert watch.poll() is False
    with _scratch(tmp_path / "e") as scratch:  # no limit given: never forecast
        study.clock = _Clock()
        watch = study.watch(scratch)
        watch.begin(None)
        for step in range(1, 8):
            study.clock.now += 1.0
            scratch.write_text(
                harness.REPORTS_FILE, json.dumps({"step": step, "value": 1, "total": 99}) + "\n"
            )
            assert watch.poll() is False


def test_median_waits_for_a_share_of_the_runs_own_total(tmp_path):
    """The median pruner is asked about a run that reports its total only once it made
    ``warmup_fraction`` of it: a long run is not judged on its first steps."""
    study = PruningStudy(PrunerSettings("median", startup_trials=1, warmup_fraction=0.25))
    _complete(study, tmp_path / "a", [1.5, 1.2, 1.0, 0.9])
    rows = [{"step": 1, "value": 9.0, "total": 8}]
    with _scratch(
        tmp_path / "b", raw=b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    ) as scratch:
        long_run = study.watch(scratch)
        assert long_run.poll() is False  # step 1 of 8: before a quarter of its length
        with open(scratch.path / harness.REPORTS_FILE, "a") as fh:
            fh.write(json.dumps({"step": 2, "value": 9.0, "total": 8}) + "\n")
        assert long_run.poll() is True  # step 2 of 8: judged, and clearly worse
        long_run.finish("pruned")
    no_wait = PruningStudy(PrunerSettings("median", startup_trials=1, warmup_fraction=0.0))
    _complete(no_wait, tmp_path / "c", [1.5, 1.2])
    with _scratch(tmp_path / "d", raw=b'{"step": 1, "value": 9.0, "total": 8}\n') as scratch:
        assert no_wait.watch(scratch).poll() is True
    with pytest.raises(ConfigError, match="env.pruner_warmup_fraction"):
        PrunerSettings("median", warmup_fraction=1.0)


def test_successive_halving_keeps_the_start_runs_rungs(tmp_path):
    study = PruningStudy(PrunerSettings("successive_halving", warmup_steps=1))
    _complete(study, tmp_path / "a", [1.0, 0.9, 0.8, 0.7])
    with _scratch(tmp_path / "b", [(1, 5.0)]) as scratch:
        assert study.watch(scratch).poll() is True  # worse than the only rival at rung 0


@pytest.mark.parametrize("hostile", ["symlink", "fifo", "dir", "huge", "garbage"])
def test_hostile_report_files_are_read_safely(tmp_path, hostile):
    """Fast: no link followed, no FIFO opened, a bounded read, garbage skipped."""
    scratch = ScratchDir.create(tmp_path / "run")
    path = tmp_path / "run" / harness.REPORTS_FILE
    if hostile == "symlink":
        path.symlink_to("/etc/passwd")
    elif hostile == "fifo":
        os.mkfifo(path)
    elif hostile == "dir":
        path.mkdir()
    elif hostile == "huge":  # 40 MiB of lines, a good report at the end
        line = json.dumps({"step": 1, "value": 1.0}) + "\n"
        with open(path, "w") as fh:
            fh.write(line * (40 * 2**20 // len(line)))
            fh.write(json.dumps({"step": 7, "value": 2.0}) + "\n")
    else:
        path.write_bytes(os.urandom(100_000) + b"\n\xff\xfe{]\n")
    study = PruningStudy(PrunerSettings("median", startup_trials=0))
    watch = study.watch(scratch)
    t0 = time.monotonic()
    assert watch.poll() is False
    assert time.monotonic() - t0 < 2.0
    if hostile in ("symlink", "fifo", "dir"):
        assert watch.ignored and "not a regular file" in watch.ignored
        assert watch.last is None
    elif hostile == "huge":
        assert watch.last == (7, 2.0) and watch.n_reports <= REPORT_TAIL // 20
    else:
        assert watch.last is None and watch.ignored is None
    watch.finish("ok")
    scratch.remove()


# ---------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def runner(light_runner):
    return light_runner(timeout=20.0)


def _fast_study() -> PruningStudy:
    return PruningStudy(PrunerSettings("median", startup_trials=1, poll_seconds=0.1))


@linux
def test_runner_prunes_a_clearly_worse_run(runner, inst):
    study = _fast_study()
    with runner.watching(study, prune=False):
        base = runner.run(inst, _cand(inst), 0)
    assert base.status == "ok", base.message + base.stderr_tail
    assert base.seconds >= FULL_RUN
    assert study.study.trials[0].intermediate_values[20] == pytest.approx(1.05)
    with runner.watching(study):
        bad = runner.run(inst, _cand(inst, bad=True), 0)
        good = runner.run(inst, _cand(inst, tag="good"), 0)
    assert bad.status == "pruned", bad.message + bad.stderr_tail
    assert bad.seconds < FULL_RUN / 2 and bad.metrics == {}
    assert bad.message.startswith("stopped early by the median pruner at step")
    assert good.status == "ok"
    with runner.watching(study):  # never served from the cache: it runs (and stops) again
        again = runner.run(inst, _cand(inst, bad=True), 0)
    assert again.status == "pruned" and not again.cached
    assert [t.state.name for t in study.study.trials] == [
        "COMPLETE",
        "PRUNED",
        "COMPLETE",
        "PRUNED",
    ]
    plain = runner.run(inst, _cand(inst, bad=True), 0)  # outside ``watching``: no pruning
    assert plain.status == "ok" and plain.seconds >= FULL_RUN


#: a program that reports its total and would need about 30 s at its pace
SLOW = PROGRAM.replace("range(1, 21)", "range(1, 301)").replace(
    "1.0 / step)", "1.0 / step, total=300)"
)


@linux
def test_runner_stops_a_run_forecast_to_pass_its_limit(runner, inst):
    """Real sandbox: a run that would need about 30 s against the 20 s limit is stopped
    within a few seconds, and its record says why."""
    with runner.watching(_fast_study()):
        res = runner.run(inst, _cand(inst, SLOW), 0)
    assert res.status == "pruned", res.message + res.stderr_tail
    assert res.seconds < 10 and res.metrics == {}
    assert "of 300 after" in res.message and "past its 20 s limit" in res.message


HOSTILE = {
    "symlink": "os.symlink('/etc/passwd', 'reports.jsonl')",
    "fifo": "os.mkfifo('reports.jsonl')",
    "chmod": "harness.report(1, 0.0)\nos.chmod('reports.jsonl', 0)",
    "huge": (
        "fh = open('reports.jsonl', 'w')\n"
        "for _ in range(200):\n"
        "    fh.write('x' * 100_000 + '\\n')\n"
        "fh.flush()"
    ),
    "garbage": "open('reports.jsonl', 'wb').write(os.urandom(50_000) + b'\\n{\"step\": 1}\\n')",
    "swap": (  # a good report, then the file replaced by a link while the parent polls
        "harness.report(1, 0.0)\n"
        "time.sleep(0.3)\n"
        "os.remove('reports.jsonl')\n"
        "os.symlink('/etc/passwd', 'reports.jsonl')"
    ),
}


@linux
@pytest.mark.parametrize("hardened", [False, True], ids=["plain", "hardened"])
@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_hostile_report_file_run_is_judged_normally(runner, inst, hostile, hardened):
    """A program that makes its report file a link, a FIFO, unreadable, huge or garbage:
    the parent neither hangs nor reads outside the scratch folder, and the run is judged
    as usual (``ok``: its predictions are fine). In hardened mode the report file is the
    host's, bind-mounted: the program can write it but not replace it."""
    attack = HOSTILE[hostile].replace("\n", "\n    ")
    keep = hostile in ("chmod", "huge", "garbage", "swap")  # these use the file as it is
    body = (
        "import os, time\nimport numpy as np\nfrom rsi_rl import harness\n"
        "d = harness.data()\n"
        f"if 'reports.jsonl' in os.listdir('.') and not {keep}:\n"
        "    try:\n"
        "        os.remove('reports.jsonl')\n"
        "    except OSError as exc:\n"
        "        print('refused:', exc)\n"
        "try:\n"
        f"    {attack}\n"
        "except OSError as exc:\n"
        "    print('refused:', exc)\n"
        "time.sleep(0.5)\n"
        "harness.submit(np.zeros((len(d['x_eval']), int(d['n_classes']))))\n"
    )
    study = _fast_study()
    limits = runner.limits
    runner.limits = dataclasses.replace(limits, hardened=hardened)
    try:
        with runner.watching(study):
            t0 = time.monotonic()
            res = runner.run(inst, _cand(inst, body, hostile=hostile, hardened=hardened), 0)
    finally:
        runner.limits = limits
    assert res.status == "ok", res.message + res.stderr_tail
    assert time.monotonic() - t0 < 10.0
    assert "root:" not in json.dumps(res.to_dict())
    trial = study.study.trials[0]
    assert trial.state.name in ("COMPLETE", "FAIL")
    assert set(trial.intermediate_values) <= {1}


# ---------------------------------------------------------------- script tasks
SCRIPT = """\
import argparse, time
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
args = parser.parse_args()
for epoch in range(1, 6):
    time.sleep(0.05)
    print(f"epoch {epoch} train_loss 0.1 val_loss {args.lr * 10 + 1 / epoch:.4f}")
print("noise: epoch x val_loss y")
print("val_loss: 0.25")
"""


def _script_task(tmp_path, **over):
    from rsi_rl.core.script_task import ScriptTask

    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    kwargs = dict(
        name="reports",
        script=str(script),
        metric="val_loss",
        flags={"lr": "--lr"},
        start_config={"lr": 0.01},
        report_regex=r"epoch (?P<step>\d+) .* val_loss (?P<value>\S+)",
        timeout=20,
        preload=["numpy"],
    )
    return ScriptTask(**{**kwargs, **over})


def test_script_task_report_regex_is_checked(tmp_path):
    from rsi_rl.core.errors import TaskError

    with pytest.raises(TaskError, match="report_regex needs the named groups"):
        _script_task(tmp_path, report_regex=r"epoch (\d+) (\S+)")
    with pytest.raises(TaskError, match="report_regex is not a valid regex"):
        _script_task(tmp_path, report_regex=r"epoch (?P<step>")
    with pytest.raises(TaskError, match="report_direction"):
        _script_task(tmp_path, report_direction="down")
    plain = _script_task(tmp_path, report_regex=None)
    assert '"report_regex"' not in plain.source()["_rsi_rl_launch.py"]
    assert _script_task(tmp_path, report_direction="maximize").report_direction == "maximize"


@linux
def test_script_task_output_lines_are_reports(tmp_path):
    from rsi_rl.core.edits import start_candidate

    task = _script_task(tmp_path)
    inst = task.make_instance(0)
    study = PruningStudy(PrunerSettings("median", poll_seconds=0.1))
    with Runner(task) as runner, runner.watching(study, prune=False):
        res = runner.run(inst, start_candidate(task, inst.start_config), 0)
    assert res.status == "ok" and res.metrics["val_loss"] == 0.25  # the metric is unchanged
    values = study.study.trials[0].intermediate_values
    assert values == {e: pytest.approx(0.1 + 1 / e, abs=1e-4) for e in range(1, 6)}


# ---------------------------------------------------------------- the research env
@pytest.fixture(scope="module")
def reporting(light_tabular):
    """light_tabular with :data:`PROGRAM`: reports good or (config ``bad``) clearly worse."""

    class Reporting(type(light_tabular)):
        name = "reporting"

        def source(self) -> dict[str, str]:
            return {self.entry: PROGRAM}

    return Reporting()


def test_env_without_pruner_is_unchanged(reporting, monkeypatch):
    from rsi_rl.env import ResearchEnv

    env = ResearchEnv(task=reporting, budget=2, instances=0)
    try:
        assert env.pruner is None and env.runner.pruning is None
        with pytest.raises(ConfigError, match="serial and local executors only"):
            ResearchEnv(task=reporting, budget=2, pruner="median", executor={"name": "ray"})
    finally:
        env.close()


@linux
@pytest.mark.parametrize("executor", ["serial", "local"])
def test_env_records_a_pruned_run(reporting, tmp_path, executor):
    """A clearly worse run is stopped early and recorded ``pruned``, whether the env's own
    runner trains it or a worker of the local pool (which reports to the same study)."""
    from rsi_rl.actions import OBSERVATION_FEATURES
    from rsi_rl.env import ResearchEnv
    from rsi_rl.store.ledger import read_ledger

    env = ResearchEnv(
        task=reporting,
        budget=3,
        instances=0,
        run_dir=tmp_path / "run",
        pruner=PrunerSettings("median", startup_trials=1, poll_seconds=0.1),
        executor={"name": executor, "workers": 1} if executor == "local" else "serial",
    )
    try:
        _, info = env.reset(seed=0)
        assert info["experiment"]["status"] == "ok"  # the start run is never stopped
        assert env.research.pruning is not None
        bad = Candidate({**env.incumbent.config, "bad": True}, env.incumbent.source)
        obs, reward, _, _, info = env.try_candidate(bad, "clearly worse", "jump")
        rec = info["experiment"]
        assert rec["status"] == "pruned" and rec["kept"] is False and rec["metric"] is None
        assert rec["seconds"] < FULL_RUN / 2
        assert "median pruner at step" in rec["message"]
        features = dict(zip(OBSERVATION_FEATURES, obs, strict=True))
        assert features["status_timeout"] == 1.0  # the observation reads it as a timeout
        assert env.status_counts["pruned"] == 1 and env.seconds_used == pytest.approx(
            rec["seconds"]
        )
        good = Candidate({**env.incumbent.config, "tag": 1}, env.incumbent.source)
        assert env.try_candidate(good)[4]["experiment"]["status"] == "ok"
    finally:
        env.close()
    rows = read_ledger(tmp_path / "run")
    assert [r["status"] for r in rows] == ["ok", "pruned", "ok"]
