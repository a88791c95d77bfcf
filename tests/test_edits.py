"""Candidates and edits: hashing, the edit space of a task, moves, jumps, settings, toggles."""

from __future__ import annotations

import pytest

from rsi_rl.core.edits import Candidate, EditSpace, apply_edit, start_candidate, valid_edits
from rsi_rl.core.errors import EditError, PatchError, TaskError
from rsi_rl.core.task import CodePatch, InnerTask, Knob

TOY_SOURCE = "act = 'relu'\nclip = 0.0\n"


class Toy(InnerTask):
    """A task with a categorical knob, two knobs sharing a role and one patch."""

    name = "toy"
    knobs = (
        Knob("lr", "learning_rate", "log", 1e-4, 1e-1, 2.0),
        Knob("act", "activation", "categorical", choices=("relu", "gelu", "tanh")),
        Knob("width1", "width", "log", 8, 64, 2.0, integer=True),
        Knob("width2", "width", "log", 8, 64, 2.0, integer=True),
    )
    patches = (CodePatch("grad_clip", "clip at 1", (("clip = 0.0", "clip = 1.0"),)),)

    def source(self) -> dict[str, str]:
        return {"train.py": TOY_SOURCE}

    def make_instance(self, seed: int):
        raise NotImplementedError


@pytest.fixture()
def toy() -> Toy:
    return Toy()


def toy_start(toy: Toy) -> Candidate:
    return start_candidate(toy, {"lr": 1e-3, "act": "relu", "width1": 16, "width2": 32})


def test_hash_is_content_based(digits):
    a = start_candidate(digits, {"lr": 1e-3})
    b = Candidate({"lr": 1e-3}, digits.source(), parent="x", edit="y")
    assert a.hash == b.hash
    assert Candidate({"lr": 2e-3}, digits.source()).hash != a.hash


def test_edit_space_names_and_order(toy):
    """Knobs in declaration order (numeric: down, up, four jumps; categorical: one setting
    per option), then patches; the order is the order of the action slots."""

    def moves(key: str) -> list[str]:
        return [f"{key}_{op}" for op in ("down", "up", "min", "lo", "hi", "max")]

    assert toy.edit_names() == [
        *moves("lr"),
        "act:relu",
        "act:gelu",
        "act:tanh",
        *moves("width1"),
        *moves("width2"),
        "grad_clip",
    ]
    space = toy.edit_space()
    assert space is toy.edit_space()  # built once
    assert len(space) == 22 and space.index["grad_clip"] == 21
    assert [e.op for e in space.edits[:9]] == ["down", "up"] + ["jump"] * 4 + ["set"] * 3
    assert [e.level for e in space.edits[2:6]] == [0.0, 1 / 3, 2 / 3, 1.0]
    clip = space.get("grad_clip")
    assert (clip.target, clip.op, clip.role) == ("grad_clip", "toggle", "regulariser")
    assert (space.get("act:gelu").target, space.get("act:gelu").value) == ("act", "gelu")


@pytest.mark.parametrize(
    ("patch", "clash"),
    [("lr_up", "lr_up"), ("act:relu", "act:relu")],
)
def test_edit_space_refuses_two_edits_of_one_name(patch, clash):
    class Clash(Toy):
        patches = (CodePatch(patch, "a patch named like a knob's edit", (("a", "b"),)),)

    with pytest.raises(TaskError, match=rf"two edits share the name\(s\) \['{clash}'\]; rename"):
        Clash().edit_space()
    with pytest.raises(TaskError, match="share the name"):
        EditSpace(Clash())


def test_categorical_knob_sets_each_other_option(toy):
    start = toy_start(toy)
    child, desc = apply_edit(toy, start, "act:tanh")
    assert child.config == {**start.config, "act": "tanh"} and child.source == start.source
    assert child.edit == "act:tanh" and desc == "act relu -> tanh"
    with pytest.raises(EditError, match="already 'relu'"):
        apply_edit(toy, start, "act:relu")
    valid = valid_edits(toy, start)
    assert [valid[f"act:{o}"] for o in ("relu", "gelu", "tanh")] == [False, True, True]
    assert not any(name.startswith("act_") for name in valid)  # no order: no moves or jumps
    back, _ = apply_edit(toy, child, "act:relu")
    assert back.hash == start.hash


def test_knobs_sharing_a_role_keep_their_own_edits(toy):
    start = toy_start(toy)
    space = toy.edit_space()
    assert {e.role for e in space.edits if e.target in ("width1", "width2")} == {"width"}
    one, _ = apply_edit(toy, start, "width1_up")
    two, _ = apply_edit(toy, start, "width2_max")
    assert one.config_changes(start) == {"width1": (16, 32)}
    assert two.config_changes(start) == {"width2": (32, 64)}
    assert valid_edits(toy, two)["width2_up"] is False and valid_edits(toy, two)["width1_up"]


def test_config_move_and_bound(digits):
    inst = digits.make_instance(0)
    c = start_candidate(digits, inst.start_config)
    child, desc = apply_edit(digits, c, "lr_up")
    assert child.config["lr"] == pytest.approx(2 * c.config["lr"])
    assert child.parent == c.hash and child.edit == "lr_up" and "lr" in desc
    assert child.source == c.source and child.hash != c.hash
    low = Candidate({**c.config, "depth": 1}, c.source)
    with pytest.raises(EditError, match="bound"):
        apply_edit(digits, low, "depth_down")
    assert valid_edits(digits, low)["depth_down"] is False


def test_code_toggle_on_then_off_restores_candidate(tabular):
    c = start_candidate(tabular, tabular.make_instance(0).start_config)
    for patch in tabular.patches:
        on, desc = apply_edit(tabular, c, patch.name)
        assert desc.startswith("+") and patch.name in on.toggles and on.source != c.source
        assert "+++ b/train.py" in on.diff(c)
        off, desc = apply_edit(tabular, on, patch.name)
        assert desc.startswith("-") and off.hash == c.hash and not off.toggles


def test_patch_that_no_longer_applies_is_masked(digits):
    c = start_candidate(digits, digits.make_instance(0).start_config)
    broken = Candidate(
        c.config, {"train.py": c.source["train.py"].replace("Activation = nn.ReLU", "")}
    )
    assert valid_edits(digits, broken)["activation_gelu"] is False
    with pytest.raises(PatchError, match="does not apply"):
        apply_edit(digits, broken, "activation_gelu")


def test_valid_edits_cover_the_task_edits_in_slot_order(digits):
    c = start_candidate(digits, digits.make_instance(0).start_config)
    valid = valid_edits(digits, c)
    assert list(valid) == digits.edit_names()
    assert not {"reevaluate", "propose", "stop"} & set(valid)
    children = digits.edit_space().children(c)
    assert [ch is not None for ch in children] == list(valid.values())


def test_unknown_edit_lists_the_task_edits(digits):
    c = start_candidate(digits, digits.make_instance(0).start_config)
    with pytest.raises(EditError, match="has no edit 'make_it_better'; its edits: lr_down, lr_up"):
        apply_edit(digits, c, "make_it_better")


def test_reference_candidate(digits, tabular):
    from rsi_rl.core.edits import reference_candidate

    ref = reference_candidate(digits, digits.make_instance(0))
    assert ref is not None and ref.toggles == {"cosine_schedule", "label_smoothing"}
    assert reference_candidate(tabular, tabular.make_instance(0)) is None


def test_jumps_land_on_the_move_lattice(tabular):
    """A jump moves a knob to its range's min/lo/hi/max in one edit, only to values that
    up/down moves reach too (the search space stays the one TPE and walks share)."""
    c = start_candidate(tabular, tabular.make_instance(0).start_config)
    jumps = [e for e in tabular.edit_space().edits if e.op == "jump"]
    assert len(jumps) == 4 * len(tabular.knobs)
    for edit in jumps:
        knob = tabular.knob(edit.target)
        old = c.config[knob.key]
        lattice = knob.reachable(old)
        try:
            child, desc = apply_edit(tabular, c, edit.name)
        except EditError as exc:
            assert "already there" in str(exc)
            assert valid_edits(tabular, c)[edit.name] is False
            continue
        new = child.config[knob.key]
        assert new in lattice and new != old and knob.key in desc
        if edit.level == 0.0:
            assert new == lattice[0]
        elif edit.level == 1.0:
            assert new == lattice[-1]
        else:  # the lattice value nearest to the level's position
            dist = abs(knob.position(new) - edit.level)
            assert all(dist <= abs(knob.position(v) - edit.level) + 1e-12 for v in lattice)
        assert child.config_changes(c).keys() == {knob.key}


def test_jump_to_max_then_min_of_steps(tabular):
    c = Candidate({**tabular.make_instance(0).start_config, "steps": 50}, tabular.source())
    top, _ = apply_edit(tabular, c, "steps_max")
    assert top.config["steps"] == 1600
    with pytest.raises(EditError, match="already there"):
        apply_edit(tabular, top, "steps_max")
    bottom, _ = apply_edit(tabular, top, "steps_min")
    assert bottom.config["steps"] == 25
