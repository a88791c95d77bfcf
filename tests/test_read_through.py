"""ReadThrough: read-only attributes read through to another object."""

from __future__ import annotations

import gymnasium as gym
import pytest

from rsi_rl.core.read_through import ReadThrough
from rsi_rl.env import ResearchEnv


class Inner:
    value = 3


class Outer:
    def __init__(self) -> None:
        self.inner: Inner | None = Inner()

    value: ReadThrough[int] = ReadThrough(lambda o, name: o.inner, "the inner value")


def test_reads_the_attribute_of_the_same_name_and_is_read_only():
    outer = Outer()
    assert outer.value == 3
    outer.inner.value = 5  # type: ignore[union-attr]
    assert outer.value == 5
    with pytest.raises(AttributeError, match="Outer.value is read-only"):
        outer.value = 4  # type: ignore[misc]
    assert isinstance(Outer.value, ReadThrough) and Outer.value.__doc__ == "the inner value"


def test_the_envs_campaign_state_needs_a_reset():
    env = ResearchEnv(task="synth_smooth", budget=2, instances=[0])
    try:
        with pytest.raises(gym.error.ResetNeeded, match=r"before incumbent\(\)"):
            _ = env.incumbent
        env.reset(seed=0)
        assert env.incumbent is env.research.incumbent and env.noise == env.research.noise
    finally:
        env.close()
