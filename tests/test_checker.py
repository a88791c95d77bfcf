"""The task checker and the reusable InnerTaskTestCase, on the built-in tasks."""

from __future__ import annotations

import numpy as np
import pytest
from rsi_rl.envs.tabular.task import TabularTask

from rsi_rl.checker import check_task
from rsi_rl.task import Instance
from rsi_rl.testing import InnerTaskTestCase


class TestDigitsMLP(InnerTaskTestCase):
    task = "digits_mlp"
    config = {"epochs": 2}


class TestTabular(InnerTaskTestCase):
    task = "tabular"
    seeds = (0,)


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
    from rsi_rl.checker import COSTLY_KINDS, costly_corner

    start = tabular.make_instance(0).start_config
    corner = costly_corner(tabular, start)
    costly = [k for k in tabular.knobs if k.kind in COSTLY_KINDS and k.key in start]
    assert costly, "the tabular task has width/steps knobs"
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
    from rsi_rl.checker import CheckReport, _check_costly_corner, _Checker
    from rsi_rl.edits import start_candidate
    from rsi_rl.runner import ExperimentResult

    class TimedRunner:  # answers every run with the given cost, records what it was asked
        def __init__(self):
            self.configs = []

        def run(self, inst, cand, seed):
            self.configs.append(cand.config)
            return ExperimentResult(status=status, seconds=seconds)

    inst = tabular.make_instance(0)
    start = start_candidate(tabular, inst.start_config)
    report = CheckReport(task="tabular")
    runner = TimedRunner()
    _check_costly_corner(_Checker(report, None), tabular, runner, inst, start, 0, timeout=10.0)
    (item,) = [i for i in report.items if i.name == "costly"]
    assert item.verdict == verdict
    assert runner.configs and runner.configs[0] != start.config
    if verdict == "warn":
        assert "sandbox.timeout" in item.detail
