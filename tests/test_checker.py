"""The task checker and the reusable InnerTaskTestCase, on the built-in tasks."""

from __future__ import annotations

import numpy as np
import pytest
from rsi_rl.envs.tabular.task import TabularTask

from rsi_rl.actions import MAX_SLOTS
from rsi_rl.checker import CheckReport, _Checker, check_task
from rsi_rl.core.edits import start_candidate
from rsi_rl.core.task import CodePatch, Instance, Knob
from rsi_rl.exec.runner import ExperimentResult
from rsi_rl.testing import InnerTaskTestCase


@pytest.mark.slow
class TestDigitsMLP(InnerTaskTestCase):
    task = "digits_mlp"
    config = {"epochs": 2}


class TestTabular(InnerTaskTestCase):
    """The fast suite's real check: a baseline of under a second; the costly corner (the
    largest config) runs into a 5 s limit instead of tabular's 30 s, and warns."""

    task = "tabular"
    seeds = (0,)
    timeout = 5.0


class LeakyTabular(TabularTask):
    name = "leaky_tabular"

    def child_inputs(self, instance: Instance, split: str) -> dict[str, np.ndarray]:
        inputs = super().child_inputs(instance, split)
        inputs["hint"] = instance.data[f"y_{split}"]
        return inputs


class RandomInstances(TabularTask):
    name = "random_instances"

    def make_instance(self, seed: int) -> Instance:
        return super().make_instance(int(np.random.randint(1 << 30)))


class TimedRunner:
    """Answers every run with the given status and cost; records the configs it was asked."""

    def __init__(self, status: str = "ok", seconds: float = 1.0):
        self.status, self.seconds = status, seconds
        self.configs: list[dict] = []

    def run(self, inst, cand, seed):
        self.configs.append(cand.config)
        return ExperimentResult(status=self.status, seconds=self.seconds, metrics={"val_acc": 0.5})


class CategoricalTabular(TabularTask):
    """Tabular with a categorical knob (the program ignores it; the checker does not run)."""

    name = "categorical_tabular"
    knobs = (
        *TabularTask.knobs,
        Knob("act", "activation", "categorical", choices=("relu", "gelu", "tanh")),
    )

    def make_instance(self, seed: int) -> Instance:
        inst = super().make_instance(seed)
        inst.start_config = {**inst.start_config, "act": "relu"}
        return inst


def _with(**attrs) -> TabularTask:
    """A tabular task with other class data (knobs, patches)."""
    return type("Variant", (TabularTask,), {"name": "variant", **attrs})()


def test_checker_counts_edits_and_edit_slots(tabular):
    report = check_task("tabular", run=False)
    n = len(tabular.edit_space())
    assert n == 6 * len(tabular.knobs) + len(tabular.patches)
    assert report.item("class data").detail == (
        f"{n} edits ({len(tabular.knobs)} knobs, {len(tabular.patches)} patches) "
        f"take {n} of {MAX_SLOTS} edit slots"
    )
    edits = report.item("edits")
    assert (
        edits.verdict == "pass"
        and f"of {n} edits apply to the start (moves, settings and toggles undone" in edits.detail
    )
    assert "all 11 patches compose" in edits.detail


def test_checker_fails_more_edits_than_slots():
    wide = Knob(
        "act", "activation", "categorical", choices=tuple(f"a{i}" for i in range(MAX_SLOTS))
    )
    report = check_task(_with(knobs=(*TabularTask.knobs, wide)), run=False)
    item = report.item("class data")
    assert item.verdict == "fail" and f"do not fit the {MAX_SLOTS} edit slots" in item.detail


def test_checker_fails_two_edits_of_one_name_without_crashing():
    clash = CodePatch(
        "lr_up", "named like a knob's move", (("smoothing = 0.0", "smoothing = 0.1"),)
    )
    report = check_task(_with(patches=(clash,)), run=False)
    item = report.item("class data")
    assert item.verdict == "fail" and "share the name(s) ['lr_up']; rename one" in item.detail
    assert report.item("edits") is None and not report.ok


def test_checker_names_a_patch_that_does_not_apply_and_a_knob_missing_from_the_start():
    nowhere = CodePatch("nowhere", "edits text the program lacks", (("no such line", "x"),))
    extra = Knob("momentum", "other", "linear", 0.0, 0.99, 0.1)
    report = check_task(_with(patches=(nowhere,), knobs=(*TabularTask.knobs, extra)), run=False)
    detail = report.item("edits").detail
    assert report.item("edits").verdict == "fail"
    assert "nowhere: patch 'nowhere' does not apply" in detail
    assert "knob keys ['momentum'] are not keys of the start config" in detail


def test_checker_tries_every_other_option_of_a_categorical_knob():
    from rsi_rl.checker import _check_edits, _run_edits

    task = CategoricalTabular()
    inst = task.make_instance(0)
    start = start_candidate(task, inst.start_config)
    report = CheckReport(task=task.name)
    c = _Checker(report, None)
    children = _check_edits(c, task, task.edit_space(), start)
    assert report.item("edits").verdict == "pass"
    assert {"act:gelu", "act:tanh"} <= set(children) and "act:relu" not in children
    assert children["act:tanh"].config_changes(start) == {"act": ("relu", "tanh")}
    runner = TimedRunner()
    _run_edits(c, task, task.edit_space(), report, runner, inst, children, 0, 0.5, "code")
    assert set(report.edit_metrics) == {p.name for p in task.patches} | {"act:gelu", "act:tanh"}
    assert report.item("edit runs").verdict == "pass"


def test_checker_reports_leaked_labels():
    report = check_task(LeakyTabular(), run=False)
    assert not report.ok
    assert report.item("labels").verdict == "fail" and "'hint'" in report.item("labels").detail
    assert "FAIL  labels" in report.format() and report.format().splitlines()[-1].startswith(
        "FAILED"
    )


def test_checker_reports_nondeterministic_instances():
    report = check_task(RandomInstances(), run=False)
    assert report.item("instance").verdict == "fail"
    assert "not deterministic" in report.item("instance").detail


def test_checker_reports_a_task_that_does_not_load():
    report = check_task("no_such_task")
    assert (
        not report.ok
        and report.items[0].name == "load"
        and "unknown task" in report.items[0].detail
    )


@pytest.mark.parametrize(
    ("measured", "prior", "word"),
    [(0.05, 0.01, "understates"), (0.021, 0.01, "understates"), (0.004, 0.01, "overstates")],
)
def test_noise_prior_off_by_more_than_2x_either_way_warns(measured, prior, word):
    from rsi_rl.checker import noise_prior_verdict

    verdict = noise_prior_verdict(measured, prior)
    assert verdict is not None and word in verdict
    assert f"noise_prior ~ {measured:.2g}" in verdict


@pytest.mark.parametrize(
    ("measured", "prior"), [(0.01, 0.01), (0.019, 0.01), (0.006, 0.01), (0.0, 0.01)]
)
def test_noise_prior_within_2x_passes(measured, prior):
    from rsi_rl.checker import noise_prior_verdict

    assert noise_prior_verdict(measured, prior) is None


def test_costly_corner_pushes_cost_knobs_to_their_largest_reachable_value(tabular):
    from rsi_rl.checker import COSTLY_ROLES, costly_corner

    start = tabular.make_instance(0).start_config
    corner = costly_corner(tabular, start)
    costly = [k for k in tabular.knobs if k.role in COSTLY_ROLES and k.key in start]
    assert {k.key for k in costly} == {"width", "depth", "steps", "batch_size"}
    for knob in costly:
        assert corner[knob.key] == knob.reachable(start[knob.key])[-1]
        assert knob.move(corner[knob.key], up=True) is None  # nothing larger is reachable
    others = {k: v for k, v in start.items() if k not in {kn.key for kn in costly}}
    assert all(corner[k] == v for k, v in others.items())


@pytest.mark.parametrize(
    ("status", "seconds", "verdict"),
    [("ok", 6.0, "warn"), ("timeout", 10.0, "warn"), ("ok", 1.0, "pass")],
)
def test_costly_corner_warns_within_2x_of_the_timeout(tabular, status, seconds, verdict):
    from rsi_rl.checker import _check_costly_corner

    inst = tabular.make_instance(0)
    start = start_candidate(tabular, inst.start_config)
    report = CheckReport(task="tabular")
    runner = TimedRunner(status, seconds)
    _check_costly_corner(_Checker(report, None), tabular, runner, inst, start, 0, timeout=10.0)
    (item,) = [i for i in report.items if i.name == "costly"]
    assert item.verdict == verdict
    assert runner.configs and runner.configs[0] != start.config
    if verdict == "warn":
        assert "sandbox.timeout" in item.detail
