"""The task checker and the reusable InnerTaskTestCase, on the built-in tasks."""

from __future__ import annotations

import numpy as np
import pytest
from rsi_rl.envs.tabular.task import TabularTask

from rsi_rl.actions import MAX_SLOTS
from rsi_rl.checker import check_task
from rsi_rl.core.task import CodePatch, Instance, Knob
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


def test_in_process_timing_lines_say_the_seconds_are_charged():
    """A landscape trains nothing: its seconds are what a search is charged, simulated."""
    report = check_task("synth_smooth", seeds=(0,), run_edits="none")
    assert report.ok, report.format()
    timing = report.item("timing").detail
    assert timing.startswith("one experiment is charged ") and "simulated" in timing
    assert "takes" not in timing and "cpu" not in timing
    costly = report.item("costly").detail
    assert "is charged" in costly and "(simulated)" in costly and "takes" not in costly
    # the seconds beside each check are the lookup's wall clock, not the charged seconds
    assert report.item("baseline").seconds < 1.0 < report.seconds_per_experiment
