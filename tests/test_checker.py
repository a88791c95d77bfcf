"""The task checker and the reusable InnerTaskTestCase, on the built-in tasks."""

from __future__ import annotations

import numpy as np
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
