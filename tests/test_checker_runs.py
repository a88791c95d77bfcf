"""check-task's trial runs: the noise prior's verdict, the costly corner and its timing."""

from __future__ import annotations

import pytest
from rsi_rl.envs.tabular.task import TabularTask

from rsi_rl.checker.edits import check_edits
from rsi_rl.checker.report import Checker, CheckReport
from rsi_rl.checker.runs import (
    COSTLY_ROLES,
    _check_costly_corner,
    _run_edits,
    costly_corner,
    noise_prior_verdict,
)
from rsi_rl.core.edits import start_candidate
from rsi_rl.core.task import Instance, Knob
from rsi_rl.exec.result import ExperimentResult


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


def test_checker_tries_every_other_option_of_a_categorical_knob():
    task = CategoricalTabular()
    inst = task.make_instance(0)
    start = start_candidate(task, inst.start_config)
    report = CheckReport(task=task.name)
    c = Checker(report, None)
    children = check_edits(c, task, task.edit_space(), start)
    assert report.item("edits").verdict == "pass"
    assert {"act:gelu", "act:tanh"} <= set(children) and "act:relu" not in children
    assert children["act:tanh"].config_changes(start) == {"act": ("relu", "tanh")}
    runner = TimedRunner()
    _run_edits(c, task, task.edit_space(), report, runner, inst, children, 0, 0.5, "code")
    assert set(report.edit_metrics) == {p.name for p in task.patches} | {"act:gelu", "act:tanh"}
    assert report.item("edit runs").verdict == "pass"


@pytest.mark.parametrize(
    ("measured", "prior", "word"),
    [(0.05, 0.01, "understates"), (0.021, 0.01, "understates"), (0.004, 0.01, "overstates")],
)
def test_noise_prior_off_by_more_than_2x_either_way_warns(measured, prior, word):
    verdict = noise_prior_verdict(measured, prior)
    assert verdict is not None and word in verdict
    assert f"noise_prior ~ {measured:.2g}" in verdict


@pytest.mark.parametrize(
    ("measured", "prior"), [(0.01, 0.01), (0.019, 0.01), (0.006, 0.01), (0.0, 0.01)]
)
def test_noise_prior_within_2x_passes(measured, prior):
    assert noise_prior_verdict(measured, prior) is None


def test_costly_corner_pushes_cost_knobs_to_their_largest_reachable_value(tabular):
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
    inst = tabular.make_instance(0)
    start = start_candidate(tabular, inst.start_config)
    report = CheckReport(task="tabular")
    runner = TimedRunner(status, seconds)
    _check_costly_corner(Checker(report, None), tabular, runner, inst, start, 0, timeout=10.0)
    (item,) = [i for i in report.items if i.name == "costly"]
    assert item.verdict == verdict
    assert runner.configs and runner.configs[0] != start.config
    if verdict == "warn":
        assert "sandbox.timeout" in item.detail
