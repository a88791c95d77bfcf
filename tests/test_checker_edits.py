"""check-task's edit check: every edit applies to the start and its opposite undoes it."""

from __future__ import annotations

from rsi_rl.envs.tabular.task import TabularTask

from rsi_rl.checker.edits import check_edits
from rsi_rl.checker.report import Checker, CheckReport
from rsi_rl.core.edits import start_candidate
from rsi_rl.core.task import CodePatch, InnerTask, Knob


def _check(task: InnerTask, **start: object) -> tuple[CheckReport, dict]:
    inst = task.make_instance(0)
    cand = start_candidate(task, {**inst.start_config, **start})
    report = CheckReport(task=task.name)
    children = check_edits(Checker(report, None), task, task.edit_space(), cand)
    return report, children


def _with(**attrs) -> TabularTask:
    return type("Variant", (TabularTask,), {"name": "variant", **attrs})()


def test_every_edit_of_tabular_applies_and_undoes(tabular):
    report, children = _check(tabular)
    item = report.item("edits")
    assert item is not None and item.verdict == "pass"
    assert set(children) <= set(tabular.edit_space().index) and children
    assert all(
        child.hash != start_candidate(tabular, tabular.make_instance(0).start_config).hash
        for child in children.values()
    )


def test_a_start_value_outside_its_knob_warns(tabular):
    report, _ = _check(tabular, width=1000)
    item = report.item("edits")
    assert item is not None and item.verdict == "warn"
    assert "start values outside their knob's range or choices: width=1000" in item.detail


def test_a_patch_that_does_not_apply_and_a_knob_missing_from_the_start_fail():
    nowhere = CodePatch("nowhere", "edits text the program lacks", (("no such line", "x"),))
    extra = Knob("momentum", "other", "linear", 0.0, 0.99, 0.1)
    report, _ = _check(_with(patches=(nowhere,), knobs=(*TabularTask.knobs, extra)))
    item = report.item("edits")
    assert item is not None and item.verdict == "fail"
    assert "nowhere: patch 'nowhere' does not apply" in item.detail
    assert "knob keys ['momentum'] are not keys of the start config" in item.detail
