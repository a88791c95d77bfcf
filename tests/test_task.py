"""The inner-task API: code patches, class data checks, instances, splits."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.actions import MAX_SLOTS
from rsi_rl.core.errors import PatchError, TaskError
from rsi_rl.core.roles import PATCH_ROLES, ROLES
from rsi_rl.core.task import CodePatch, InnerTask, Knob


def test_code_patch_applies_reverts_and_reports_missing_hunk():
    p = CodePatch("activation_gelu", "relu->gelu", (("act = relu", "act = gelu"),))
    src = "x = 1\nact = relu\n"
    on = p.apply(src)
    assert "act = gelu" in on
    assert p.apply(on, reverse=True) == src
    with pytest.raises(PatchError, match="act = relu.*not found"):
        p.apply("nothing here\n")
    with pytest.raises(PatchError, match="found 2 times"):
        p.apply("act = relu\nact = relu\n")


@pytest.mark.parametrize("name", ["digits_mlp", "tabular"])
def test_instances_are_deterministic_and_splits_disjoint(name):
    from rsi_rl.core.registry import make_task

    task = make_task(name)
    a, b = task.make_instance(task.heldout_seeds[0]), task.make_instance(task.heldout_seeds[0])
    for key in ("x_train", "y_val", "x_test"):
        np.testing.assert_array_equal(a.data[key], b.data[key])
    assert a.start_config == b.start_config
    assert set(task.meta_train_seeds).isdisjoint(task.heldout_seeds)
    n = len(a.data["y_train"]) + len(a.data["y_val"]) + len(a.data["y_test"])
    assert len(a.data["y_val"]) > 0.15 * n and len(a.data["y_test"]) > 0.15 * n


def test_child_inputs_hold_no_evaluation_labels(tabular):
    inst = tabular.make_instance(3)
    for split in ("val", "test"):
        inputs = tabular.child_inputs(inst, split)
        assert set(inputs) == {"x_train", "y_train", "x_eval", "n_classes"}
        np.testing.assert_array_equal(inputs["x_eval"], inst.data[f"x_{split}"])


def test_tabular_family_varies(tabular):
    infos = [tabular.make_instance(s).info for s in range(12)]
    assert len({i["n_classes"] for i in infos}) > 1
    assert len({i["n_features"] for i in infos}) > 1
    assert (
        len({tuple(sorted(tabular.make_instance(s).start_config.items())) for s in range(12)}) > 6
    )


@pytest.mark.parametrize("name", ["digits_mlp", "tabular", "char_lm"])
def test_builtin_tasks_declare_roles_and_fit_the_edit_slots(name):
    from rsi_rl.core.registry import make_task

    task = make_task(name)
    assert len(task.patches) >= 9 and 0 < len(task.edit_space()) <= MAX_SLOTS
    assert all(k.role in ROLES for k in task.knobs)
    assert {k.role for k in task.knobs} >= {"learning_rate", "width", "depth", "duration"}
    for p in task.patches:  # the shared patch names keep their shared role
        assert p.role == PATCH_ROLES.get(p.name, p.role) and p.role in ROLES
    assert task.describe()["edits"] == len(task.edit_names())


def test_code_patch_role_default_alias_and_refusal():
    assert CodePatch("warmup", "warm up", (("a", "b"),)).role == "schedule"
    assert CodePatch("my_trick", "?", (("a", "b"),)).role == "other"
    assert CodePatch("warmup", "warm up", (("a", "b"),), role="optimizer").role == "optimiser"
    with pytest.raises(TaskError, match="patch 'warmup' role 'magic' is not a role"):
        CodePatch("warmup", "warm up", (("a", "b"),), role="magic")


def _task(knobs=(), patches=(), files=("train.py",)) -> InnerTask:
    class Toy(InnerTask):
        name = "toy"
        program_files = files

        def make_instance(self, seed):
            raise NotImplementedError

    Toy.knobs, Toy.patches = tuple(knobs), tuple(patches)
    return Toy()


def test_task_refuses_shared_keys_names_and_unknown_files():
    lr = Knob("lr", "learning_rate", "log", 1e-4, 1e-1)
    gelu = CodePatch("gelu", "relu -> gelu", (("relu", "gelu"),))
    with pytest.raises(TaskError, match="two knobs share a config key"):
        _task(knobs=[lr, Knob("lr", "other", "linear")])
    with pytest.raises(TaskError, match="two patches share a name"):
        _task(patches=[gelu, gelu])
    with pytest.raises(TaskError, match="patch 'gelu' edits unknown file 'model.py'"):
        _task(patches=[CodePatch("gelu", "", (("relu", "gelu"),), file="model.py")])


def test_knobs_may_share_a_role():
    task = _task(
        knobs=[
            Knob("width1", "width", "log", 8, 256, 2.0, integer=True),
            Knob("width2", "width", "log", 8, 256, 2.0, integer=True),
        ]
    )
    assert [k.role for k in task.knobs] == ["width", "width"]
    assert task.knob("width2") is task.knobs[1] and task.knob("width3") is None


def test_evaluator_rejects_wrong_shapes(digits):
    inst = digits.make_instance(0)
    n = len(inst.data["y_val"])
    good = np.eye(10)[inst.data["y_val"]]
    assert digits.evaluate(good, inst, "val")["val_acc"] == 1.0
    assert digits.evaluate(inst.data["y_val"], inst, "val")["val_acc"] == 1.0
    assert "test_acc" in digits.evaluate(np.eye(10)[inst.data["y_test"]], inst, "test")
    with pytest.raises(ValueError, match="shape"):
        digits.evaluate(np.zeros((n, 3)), inst, "val")
