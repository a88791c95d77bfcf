"""Landscape tasks (hpobench, nb201, the synthetic families): lookups answered in
process, deterministic per seed, the test split is the truth, every edit stays on the
lattice, and campaigns run through the runner, executors, env and CLI without a sandbox."""

from __future__ import annotations

import ast
import math
import subprocess

import numpy as np
import pytest

from rsi_rl.agents import make_agent
from rsi_rl.checker import check_task
from rsi_rl.core.edits import start_candidate
from rsi_rl.core.errors import TaskError
from rsi_rl.core.landscape import LandscapeTask, repeat_index, table_path
from rsi_rl.core.registry import make_task
from rsi_rl.env import ResearchEnv
from rsi_rl.exec import sandbox
from rsi_rl.exec.executor import make_executor
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits
from rsi_rl.search import run_campaign

TASKS = ("hpobench", "nb201", "synth_smooth", "synth_rugged", "synth_cells", "synth_mixed")
#: one meta-train instance per task (few tables load: each costs ~0.5 s once)
INSTANCE = {
    "hpobench": 0,
    "nb201": 0,
    "synth_smooth": 3,
    "synth_rugged": 4,
    "synth_cells": 5,
    "synth_mixed": 6,
}


@pytest.fixture(scope="module")
def tasks() -> dict[str, LandscapeTask]:
    out = {}
    for name in TASKS:
        task = make_task(name)
        assert isinstance(task, LandscapeTask)
        out[name] = task
    return out


@pytest.fixture
def no_sandbox(monkeypatch):
    """Fail any test that starts a process in the sandbox module (a fork server)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a landscape task started a sandbox process")

    monkeypatch.setattr(sandbox.subprocess, "Popen", refuse)


def _on_lattice(task: LandscapeTask, config: dict) -> bool:
    from rsi_rl.envs.synthetic.task import lattice

    for knob in task.knobs:
        value = config[knob.key]
        options = knob.choices if knob.scale in ("choice", "categorical") else lattice(knob)
        if value not in options:
            return False
    return set(config) == {k.key for k in task.knobs}


# ---------------------------------------------------------------------------- instances
def test_seed_to_dataset_and_splits(tasks):
    hpo, nb = tasks["hpobench"], tasks["nb201"]
    assert [hpo.dataset_of(s) for s in (0, 1999, 3999)] == ["car", "phoneme", "australian"]
    assert [hpo.dataset_of(s) for s in (4000, 5999)] == ["kc1", "segment"]
    assert [hpo.dataset_of(s) for s in (6000, 7999)] == ["blood_transfusion", "credit_g"]
    assert hpo.instance_seeds("val") == range(4000, 6000)
    assert hpo.instance_seeds("heldout") == range(6000, 8000)
    assert [nb.dataset_of(s) for s in (0, 1000, 2999)] == ["cifar10", "cifar100", "imagenet"]
    assert (nb.meta_train_seeds, nb.val_seeds, nb.heldout_seeds) == (
        range(0, 1000),
        range(1000, 2000),
        range(2000, 3000),
    )
    assert hpo.make_instance(6500).info["dataset"] == "blood_transfusion"
    for name in ("synth_smooth", "synth_rugged", "synth_cells", "synth_mixed"):
        t = tasks[name]
        assert (t.meta_train_seeds, t.val_seeds, t.heldout_seeds) == (
            range(0, 10_000),
            range(10_000, 11_000),
            range(20_000, 21_000),
        )
    assert make_task("mlp2").val_seeds is None and make_task("mlp2").in_process is False


def test_hpobench_grid_is_the_packages(tasks):
    """The knobs' options are the package's search space, in its param-id order, and every
    config of the grid is in each table (read without importing the package)."""
    source = (table_path("hpobench", "car").parents[2] / "hpobench.py").read_text()
    call = next(
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.keyword) and n.arg == "search_space"
    )
    space = ast.literal_eval(call.value)
    hpo = tasks["hpobench"]
    assert list(space) == [k.key for k in hpo.knobs]
    assert all(tuple(space[k.key]) == k.choices for k in hpo.knobs)
    table = hpo.table(hpo.make_instance(0))
    assert table.values.shape[0] == 30_000 and table.repeats.min() == 5
    nb_source = (table_path("nasbench201", "cifar10").parents[2] / "nasbench201.py").read_text()
    assert str(list(tasks["nb201"].knobs[0].choices)).replace("'", '"') in nb_source
    nb = tasks["nb201"]
    assert nb.table(nb.make_instance(0)).repeats.min() >= 2


@pytest.mark.parametrize("name", TASKS)
def test_start_config_is_deterministic_and_on_the_lattice(tasks, name):
    task = tasks[name]
    for seed in (task.meta_train_seeds[0], task.meta_train_seeds[-1], task.heldout_seeds[0]):
        inst = task.make_instance(seed)
        assert inst.start_config == task.make_instance(seed).start_config
        assert _on_lattice(task, inst.start_config), inst.start_config
    starts = {str(task.make_instance(s).start_config) for s in range(20)}
    assert len(starts) > 10  # drawn per instance


# ---------------------------------------------------------------------------- lookups
@pytest.mark.parametrize("name", TASKS)
def test_lookups_are_deterministic_per_seed_and_test_is_the_truth(tasks, name):
    task = tasks[name]
    inst = task.make_instance(INSTANCE[name])
    cand = start_candidate(task, inst.start_config)
    first, secs = task.lookup(inst, cand, 123, "val")
    assert task.lookup(inst, cand, 123, "val") == (first, secs)
    assert set(first) == {"val_acc"} and secs > 0
    truth = task.true_value(inst, cand)
    test, _ = task.lookup(inst, cand, 123, "test")
    assert test == {"test_acc": truth} == task.lookup(inst, cand, 999, "test")[0]
    draws = np.array([task.lookup(inst, cand, s, "val")[0]["val_acc"] for s in range(400)])
    assert len(set(draws.tolist())) > 1  # seeds differ
    assert abs(draws.mean() - truth) < max(4 * draws.std() / 20, 1e-9) + 0.01 * abs(truth)
    with pytest.raises(TaskError, match="unknown split"):
        task.lookup(inst, cand, 0, "train")


def test_a_tabulated_val_lookup_reads_one_repeat(tasks):
    task = tasks["hpobench"]
    inst = task.make_instance(0)
    cand = start_candidate(task, inst.start_config)
    table = task.table(inst)
    row = task.row(inst, cand.config)
    for seed in range(10):
        k = repeat_index(seed, 5)
        value, secs = task.lookup(inst, cand, seed, "val")
        assert value["val_acc"] == table.values[row, k] and secs == table.seconds[row, k]
    assert task.true_value(inst, cand) == pytest.approx(table.values[row].mean())


@pytest.mark.parametrize("name", ["hpobench", "nb201"])
def test_best_on_seed_is_the_grid_best_draw_of_that_seed(tasks, name):
    task = tasks[name]
    inst = task.make_instance(0)
    best = task.best_on_seed(inst, 12345)
    top, _ = task.sample(inst, best, 12345)
    rng = np.random.default_rng(0)
    for _ in range(300):  # no config draws better on that seed
        config = {k: opts[int(rng.integers(len(opts)))] for k, opts in task.space.items()}
        assert task.sample(inst, config, 12345)[0] <= top
    s = task.truth_summary(inst)
    assert s["optimum"] >= task.mean(inst, best)[0] > s["median"]  # good, not the optimum's truth
    assert any(task.best_on_seed(inst, seed) != best for seed in range(6))  # the seed matters


@pytest.mark.parametrize("name", TASKS)
def test_truth_summary_is_sane(tasks, name):
    task = tasks[name]
    inst = task.make_instance(INSTANCE[name])
    s = task.truth_summary(inst)
    assert set(s) == {"optimum", "median", "worst", "start"}
    assert task.metric_optimum is not None
    assert task.metric_optimum >= s["optimum"] >= s["median"] >= s["worst"] >= 0
    assert s["optimum"] >= s["start"] >= s["worst"]
    assert s["start"] == task.true_value(inst, start_candidate(task, inst.start_config))
    assert s["optimum"] > s["median"]  # something to find


def test_synth_mixed_best_numeric_settings_depend_on_the_categorical_ones(tasks):
    """Its modes move with the categorical choices: the best numeric config under one
    combination of options is not the best under another."""
    task = tasks["synth_mixed"]
    inst = task.make_instance(INSTANCE["synth_mixed"])
    means = task.all_means(inst).reshape(3 * 4 * 3, -1)  # categorical combination x grid
    best = means.argmax(axis=1)
    assert len(set(best.tolist())) > 1
    assert np.ptp(means.max(axis=1)) > 0.01  # and the combinations are not equally good


@pytest.mark.parametrize("name", TASKS)
def test_every_edit_walk_stays_on_the_lattice(tasks, name):
    task = tasks[name]
    space = task.edit_space()
    rng = np.random.default_rng(0)
    for inst_seed in (task.meta_train_seeds[1], task.heldout_seeds[1]):
        inst = task.make_instance(inst_seed)
        cand = start_candidate(task, inst.start_config)
        used = set()
        for step in range(150):
            children = [c for c in space.children(cand) if c is not None]
            assert children, f"no edit applies to {cand.config}"
            cand = children[int(rng.integers(len(children)))]
            used.add(cand.edit)
            assert _on_lattice(task, cand.config), cand.config
            metrics, secs = task.lookup(inst, cand, step, "val")
            assert math.isfinite(metrics["val_acc"]) and secs >= 0
            assert math.isfinite(task.true_value(inst, cand))
        assert len(used) > len(space) // 3


def test_off_the_grid_config_is_refused(tasks):
    task = tasks["hpobench"]
    inst = task.make_instance(0)
    bad = start_candidate(task, {**inst.start_config, "width": 17})
    with pytest.raises(TaskError, match="width=17 is not on the table"):
        task.lookup(inst, bad, 0, "val")


# ---------------------------------------------------------------------------- runner
def test_runner_answers_in_process_without_a_sandbox(tasks, no_sandbox):
    task = tasks["synth_rugged"]
    inst = task.make_instance(4)
    cand = start_candidate(task, inst.start_config)
    with Runner(task) as runner:
        r = runner.run(inst, cand, 7)
        assert r.status == "ok" and r.metrics == task.lookup(inst, cand, 7, "val")[0]
        assert r.seconds == task.lookup(inst, cand, 7, "val")[1] and not r.cached
        assert runner.run(inst, cand, 7).cached  # the cache still answers
        t = runner.run(inst, cand, 7, "test")
        assert t.metrics == {"test_acc": task.true_value(inst, cand)}
        bad = start_candidate(task, {**inst.start_config, "optimizer": "lion"})
        assert runner.run(inst, bad, 7).status == "invalid"
        runner.sandbox.spawn()  # what `rsi-rl search` does ahead of the first run
        runner.sandbox.start()
        assert runner.sandbox._proc is None
    # a seconds cap below what the lookup charges: the run times out at the cap
    with Runner(task) as runner:
        secs = task.lookup(inst, cand, 7, "val")[1]
        runner.timeout_cap = secs / 2
        r = runner.run(inst, cand, 7)
        assert r.status == "timeout" and r.seconds == pytest.approx(secs / 2)


def test_a_non_finite_lookup_is_a_nan_run(tasks, no_sandbox):
    from rsi_rl.envs.synthetic.task import SmoothSyntheticTask

    class Broken(SmoothSyntheticTask):
        name = "broken"

        def sample(self, instance, config, seed):
            return math.nan, 1.0

    task = Broken()
    inst = task.make_instance(0)
    with Runner(task) as runner:
        r = runner.run(inst, start_candidate(task, inst.start_config), 0)
    assert r.status == "nan" and "not finite" in r.message


def test_in_process_needs_the_landscape_base():
    from rsi_rl.testing import ToyTask

    class Odd(ToyTask):
        in_process = True

    with pytest.raises(TaskError, match="must subclass rsi_rl.core.landscape.LandscapeTask"):
        Runner(Odd())


@pytest.mark.parametrize("executor", [{"name": "local", "workers": 2}, "serial"])
def test_executors_run_lookups(tasks, no_sandbox, executor):
    task = tasks["synth_smooth"]
    inst = task.make_instance(3)
    start = start_candidate(task, inst.start_config)
    cands = [start] + [c for c in task.edit_space().children(start) if c is not None][:5]
    runner = Runner(task, SandboxLimits(timeout=task.default_timeout))
    ex = make_executor(executor)
    try:
        ex.bind(runner)
        results = ex.run_many(inst, [*cands, cands[1]], 11)
    finally:
        ex.close()
        runner.close()
    assert [r.status for r in results] == ["ok"] * (len(cands) + 1)
    for cand, r in zip(cands, results, strict=False):
        assert r.metrics == task.lookup(inst, cand, 11, "val")[0]
    assert results[-1].cached and results[-1].metrics == results[1].metrics


# ---------------------------------------------------------------------------- campaigns
@pytest.mark.parametrize("name", TASKS)
def test_a_greedy_campaign_runs_fast(tasks, no_sandbox, name):
    task = tasks[name]
    env = ResearchEnv(task=task, budget=25, instances="val")
    try:
        summary = run_campaign(env, make_agent("greedy", seed=0), seed=1)
        inst = env.instance
        assert inst is not None and inst.seed in task.val_seeds
        assert summary["statuses"]["ok"] == 25
        truth = task.truth_summary(inst)
        assert summary["test_metric"] is not None
        assert truth["worst"] <= summary["test_metric"] <= truth["optimum"]
        assert summary["test_metric"] == task.true_value(inst, env.incumbent)
        assert env.runner.sandbox._proc is None
    finally:
        env.close()


def test_check_task_passes(no_sandbox):
    report = check_task("nb201", seeds=(0, 1, 2))
    assert report.ok, report.format()


def test_cli_lists_and_searches_landscapes(tmp_path, monkeypatch, capsys, no_sandbox):
    from rsi_rl.cli import main

    monkeypatch.chdir(tmp_path)
    main(["tasks"])
    out = capsys.readouterr().out
    for name in TASKS:
        assert f"\n{name} " in f"\n{out}"
    main(["search", "task=synth_smooth", "agent=greedy", "budget=5", "logger=csv"])
    assert "test test_acc=" in capsys.readouterr().out


def test_popen_guard_is_real():
    """The guard of these tests catches what a fork server's start would call."""
    assert sandbox.subprocess is subprocess
