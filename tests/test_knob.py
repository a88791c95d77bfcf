"""Knobs: validation, the four scales, moves, jumps and positions."""

from __future__ import annotations

import pytest

from rsi_rl.core.errors import TaskError
from rsi_rl.core.knob import Knob
from rsi_rl.core.roles import ROLES, role_of


def test_log_knob_moves_within_bounds():
    k = Knob("lr", "learning_rate", "log", 1e-4, 1e-1, 2.0)
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


def test_integer_linear_and_choice_knobs():
    depth = Knob("depth", "depth", "linear", 1, 4, 1, integer=True)
    assert depth.move(1, up=True) == 2 and depth.move(4, up=True) is None
    assert isinstance(depth.move(2, up=False), int)
    batch = Knob("batch_size", "batch", "choice", choices=(16, 32, 64))
    assert batch.move(32, up=True) == 64 and batch.move(64, up=True) is None
    assert batch.move(16, up=False) is None
    assert batch.position(32) == 0.5
    assert batch.reachable(32) == [16, 32, 64]


def test_categorical_knob_has_no_order_to_move_or_jump_along():
    act = Knob("act", "activation", "categorical", choices=("relu", "gelu", "tanh"))
    assert act.categorical and act.choices == ("relu", "gelu", "tanh")
    assert act.move("relu", up=True) is None and act.move("gelu", up=False) is None
    assert act.jump("relu", 1.0) is None
    assert act.reachable("gelu") == ["relu", "gelu", "tanh"]
    assert [act.position(v) for v in act.choices] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("scale", ["choice", "categorical"])
@pytest.mark.parametrize(
    ("choices", "message"),
    [((), "at least two choices"), (("relu",), "at least two choices"), (("a", "a"), "twice")],
)
def test_knob_with_options_needs_two_distinct_choices(scale, choices, message):
    with pytest.raises(TaskError, match=message):
        Knob("act", "activation", scale, choices=choices)


def test_choices_given_as_a_list_become_a_tuple():
    assert Knob("act", "activation", "categorical", choices=["relu", "gelu"]).choices == (
        "relu",
        "gelu",
    )


def test_bad_role_names_the_roles():
    with pytest.raises(
        TaskError, match="'momentum' is not a role; use one of: learning_rate,"
    ) as e:
        Knob("m", "momentum", "linear")
    assert all(role in str(e.value) for role in ROLES)
    assert "knob 'm' role" in str(e.value)


def test_role_aliases_resolve():
    assert Knob("lr", "lr", "log", 1e-4, 1e-1).role == "learning_rate"
    assert Knob("epochs", "epochs", "log", 1, 64, integer=True).role == "duration"
    assert role_of("Optimizer") == "optimiser" and role_of("norm") == "normalisation"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "my-lr", "role": "lr", "scale": "log", "low": 1e-4}, "identifier"),
        ({"key": "lr", "role": "lr", "scale": "exp"}, "scale 'exp' is not one of"),
        ({"key": "lr", "role": "lr", "scale": "log", "low": 0.0}, "low > 0 and step > 1"),
        ({"key": "lr", "role": "lr", "scale": "log", "low": 1e-3, "step": 1.0}, "step > 1"),
        ({"key": "d", "role": "depth", "scale": "linear", "step": 0.0}, "step > 0"),
        ({"key": "d", "role": "depth", "scale": "linear", "low": 4, "high": 1}, "above high"),
    ],
)
def test_knob_validation_names_the_field(kwargs, message):
    with pytest.raises(TaskError, match=message):
        Knob(**kwargs)


def test_jumps_land_on_the_lattice_of_moves():
    k = Knob("steps", "duration", "log", 25, 1600, 2.0, integer=True)
    lattice = k.reachable(100)
    assert lattice == [25, 50, 100, 200, 400, 800, 1600]
    assert k.jump(100, 0.0) == 25 and k.jump(100, 1.0) == 1600
    assert k.jump(100, 2 / 3) == 400  # 25 * 64 ** (2/3)
    assert k.jump(100, 1 / 3) is None and k.jump(25, 0.0) is None  # already there
