"""The inner-task API: knobs, code patches, instances, splits."""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.errors import PatchError, TaskError
from rsi_rl.task import CodePatch, Knob


def test_log_knob_moves_within_bounds():
    k = Knob("lr", "lr", "log", 1e-4, 1e-1, 2.0)
    assert k.move(1e-3, up=True) == pytest.approx(2e-3)
    assert k.move(1e-3, up=False) == pytest.approx(5e-4)
    assert k.move(0.08, up=True) is None  # 0.16 > high
    assert k.move(1e-4, up=False) is None
    assert 0.0 <= k.position(1e-3) <= 1.0
    assert k.position(1e-4) == 0.0 and k.position(1e-1) == 1.0


def test_zero_ok_knob_reaches_and_leaves_zero():
    k = Knob("wd", "weight_decay", "log", 1e-5, 1e-1, 10.0, zero_ok=True)
    assert k.move(0.0, up=True) == pytest.approx(1e-5)
    assert k.move(1e-5, up=False) == 0.0
    assert k.move(0.0, up=False) is None


def test_integer_and_choice_knobs():
    depth = Knob("depth", "depth", "linear", 1, 4, 1, integer=True)
    assert depth.move(1, up=True) == 2 and depth.move(4, up=True) is None
    assert isinstance(depth.move(2, up=False), int)
    batch = Knob("batch", "batch_size", "choice", choices=(16, 32, 64))
    assert batch.move(32, up=True) == 64 and batch.move(64, up=True) is None
    assert batch.move(16, up=False) is None
    assert batch.position(32) == 0.5


def test_knob_rejects_unknown_kind():
    with pytest.raises(TaskError, match="not in the vocabulary"):
        Knob("momentum", "m", "linear")


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
    from rsi_rl.registry import make_task

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


def test_every_builtin_task_covers_the_vocabulary(digits, tabular):
    from rsi_rl.vocab import VOCABULARY

    for task in (digits, tabular):
        assert set(task.supported_kinds()) == set(VOCABULARY)
        assert len(task.patches) >= 10


def test_evaluator_rejects_wrong_shapes(digits):
    inst = digits.make_instance(0)
    n = len(inst.data["y_val"])
    good = np.eye(10)[inst.data["y_val"]]
    assert digits.evaluate(good, inst, "val")["val_acc"] == 1.0
    assert digits.evaluate(inst.data["y_val"], inst, "val")["val_acc"] == 1.0
    assert "test_acc" in digits.evaluate(np.eye(10)[inst.data["y_test"]], inst, "test")
    with pytest.raises(ValueError, match="shape"):
        digits.evaluate(np.zeros((n, 3)), inst, "val")
