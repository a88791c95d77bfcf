"""Candidates and edits: hashing, config moves, code toggles, masks."""

from __future__ import annotations

import pytest

from rsi_rl.edits import Candidate, apply_edit, start_candidate, valid_kinds
from rsi_rl.errors import EditError, PatchError
from rsi_rl.vocab import CODE_KINDS, VOCABULARY


def test_hash_is_content_based(digits):
    a = start_candidate(digits, {"lr": 1e-3})
    b = Candidate({"lr": 1e-3}, digits.source(), parent="x", edit="y")
    assert a.hash == b.hash
    assert Candidate({"lr": 2e-3}, digits.source()).hash != a.hash


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
    assert valid_kinds(digits, low)["depth_down"] is False


def test_code_toggle_on_then_off_restores_candidate(tabular):
    c = start_candidate(tabular, tabular.make_instance(0).start_config)
    for kind in CODE_KINDS:
        on, desc = apply_edit(tabular, c, kind)
        assert desc.startswith("+") and kind in on.toggles and on.source != c.source
        assert "+++ b/train.py" in on.diff(c)
        off, desc = apply_edit(tabular, on, kind)
        assert desc.startswith("-") and off.hash == c.hash and not off.toggles


def test_patch_that_no_longer_applies_is_masked(digits):
    c = start_candidate(digits, digits.make_instance(0).start_config)
    broken = Candidate(
        c.config, {"train.py": c.source["train.py"].replace("Activation = nn.ReLU", "")}
    )
    assert valid_kinds(digits, broken)["activation_gelu"] is False
    with pytest.raises(PatchError, match="does not apply"):
        apply_edit(digits, broken, "activation_gelu")


def test_valid_kinds_covers_vocabulary(digits):
    c = start_candidate(digits, digits.make_instance(0).start_config)
    valid = valid_kinds(digits, c)
    assert list(valid) == list(VOCABULARY)
    assert valid["reevaluate"] and valid["stop"] and not valid["propose"]


def test_unknown_kind(digits):
    c = start_candidate(digits, digits.make_instance(0).start_config)
    with pytest.raises(EditError, match="unknown edit kind"):
        apply_edit(digits, c, "make_it_better")


def test_reference_candidate(digits, tabular):
    from rsi_rl.edits import reference_candidate

    ref = reference_candidate(digits, digits.make_instance(0))
    assert ref is not None and ref.toggles == {"cosine_schedule", "label_smoothing"}
    assert reference_candidate(tabular, tabular.make_instance(0)) is None


def test_jumps_land_on_the_move_lattice(tabular):
    """A jump moves a knob to its range's min/lo/hi/max in one edit, only to values that
    up/down moves reach too (the search space stays the one TPE and walks share)."""
    from rsi_rl.vocab import JUMP_KINDS, JUMP_LEVELS

    c = start_candidate(tabular, tabular.make_instance(0).start_config)
    for kind in JUMP_KINDS:
        knob_kind, _, level = kind.rpartition("_")
        knob = tabular.knob(knob_kind)
        old = c.config[knob.key]
        lattice = knob.reachable(old)
        try:
            child, desc = apply_edit(tabular, c, kind)
        except EditError as exc:
            assert "already there" in str(exc)
            assert valid_kinds(tabular, c)[kind] is False
            continue
        new = child.config[knob.key]
        assert new in lattice and new != old and knob.key in desc
        if level == "min":
            assert new == lattice[0]
        elif level == "max":
            assert new == lattice[-1]
        else:  # the lattice value nearest to the level's position
            dist = abs(knob.position(new) - JUMP_LEVELS[level])
            assert all(dist <= abs(knob.position(v) - JUMP_LEVELS[level]) + 1e-12 for v in lattice)
        assert set(child.config) == set(c.config)
        assert {k for k in c.config if c.config[k] != child.config[k]} == {knob.key}


def test_jump_to_max_then_min_of_steps(tabular):
    c = Candidate({**tabular.make_instance(0).start_config, "steps": 50}, tabular.source())
    top, _ = apply_edit(tabular, c, "steps_max")
    assert top.config["steps"] == 1600
    with pytest.raises(EditError, match="already there"):
        apply_edit(tabular, top, "steps_max")
    bottom, _ = apply_edit(tabular, top, "steps_min")
    assert bottom.config["steps"] == 25
