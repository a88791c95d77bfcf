"""The keep rule's noise model (``env.noise_model``): ``global`` and ``local``.

A synthetic heteroscedastic task: val_acc = 1 - h + 0.1 h z, where the headroom h is the
knob ``lr`` and z is a seed's noise draw (0 on the campaign's evaluation seed, so the
comparisons are exact; +1, -1, +1, ... on the rerun seeds, in order of first use). Its
seed noise is 10% of the headroom left: 0.05 at the start (the task's ``noise_prior``),
ten times less after three halvings of ``lr``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from rsi_rl.actions import REEVALUATE
from rsi_rl.builder import env_kwargs
from rsi_rl.cli import conf_dir
from rsi_rl.config_schema import NoiseModel, validate
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.noise import (
    NOISE_MODELS,
    check_noise_model,
    global_noise,
    keep_noise,
    relative_noise,
)
from rsi_rl.core.task import InnerTask, Instance, Knob
from rsi_rl.env import ResearchEnv
from rsi_rl.exec.result import ExperimentResult

START_H = 0.5  # the start's headroom (lr)
RELATIVE_SD = 0.1  # seed noise / headroom


class HeteroTask(InnerTask):
    """Headroom = ``lr``; ``width`` changes nothing but the candidate. Never trained: its
    runs are :class:`Landscape`'s."""

    name = "hetero"
    metric = "val_acc"
    direction = "maximize"
    program_dir = Path(__file__).parent
    preload = ()
    heldout_seeds = range(1)
    metric_optimum: ClassVar[float | None] = 1.0
    noise_prior = RELATIVE_SD * START_H
    knobs: ClassVar[tuple[Knob, ...]] = (
        Knob("lr", "learning_rate", "log", 1e-9, 1.0, 2.0),
        Knob("width", "width", "choice", choices=(8, 16, 32)),
    )

    def source(self) -> dict[str, str]:
        return {"train.py": "\n"}

    def make_instance(self, seed: int) -> Instance:
        return Instance(
            task=self.name, seed=seed, data={}, start_config={"lr": START_H, "width": 16}
        )


class NoOptimumTask(HeteroTask):
    name = "hetero_no_optimum"
    metric_optimum = None


class Landscape:
    """The runner of :class:`HeteroTask` (replaces ``env.runner.run``); ``lucky`` is the
    noise draw of a ``width`` child on the evaluation seed (in units of its seed noise)."""

    def __init__(self, env: ResearchEnv, lucky: float = 0.0):
        self.env, self.lucky = env, lucky
        self.draws: dict[int, float] = {}
        env.runner.run = self  # type: ignore[method-assign]

    def __call__(
        self, instance: Instance, cand: Candidate, seed: int, split: str = "val"
    ) -> ExperimentResult:
        h = float(cand.config["lr"])
        if seed == self.env.eval_seed:
            z = self.lucky if cand.config["width"] != 16 else 0.0
        else:
            z = self.draws.setdefault(seed, 1.0 if len(self.draws) % 2 == 0 else -1.0)
        value = 1.0 - h + RELATIVE_SD * h * z
        return ExperimentResult("ok", {self.env.task.metric_for(split): value}, seconds=1.0)


def make_env(noise_model: str, task: Any = None, budget: int = 80, lucky: float = 0.0) -> Any:
    env = ResearchEnv(
        task=task or HeteroTask(), budget=budget, instances=[0], noise_model=noise_model
    )
    Landscape(env, lucky)
    env.reset(seed=0)
    return env


def refine(env: ResearchEnv, rounds: int, reruns: int) -> list[bool]:
    """``rounds`` times: rerun the incumbent ``reruns`` times, then halve ``lr`` (halve the
    headroom: a true improvement of half the headroom left). The kept flag of each halving
    (False once reverted: the same child is then masked as a duplicate)."""
    kept = []
    for _ in range(rounds):
        for _ in range(reruns):
            env.step(REEVALUATE)
        *_, info = env.step(env.action_index("lr_down"))
        kept.append(bool(info["experiment"]["kept"]))
    return kept


# ---------------------------------------------------------------------------- the estimator
def test_without_reruns_the_prior_scales_with_the_headroom_left_down_to_a_floor():
    assert relative_noise(0.05, 0.5, 0.5, [0.5]) == pytest.approx(0.05)
    assert relative_noise(0.05, 0.5, 0.05, [0.95]) == pytest.approx(0.005)
    assert relative_noise(0.05, 0.5, 1e-6, [1.0]) == pytest.approx(0.01 * 0.05)  # the floor
    assert relative_noise(0.05, 0.5, -0.01, [1.01]) == pytest.approx(0.01 * 0.05)
    assert relative_noise(0.05, 0.5, 1e-6, [1.0], floor=0.1) == pytest.approx(0.005)


def test_at_the_start_it_is_the_global_estimate():
    prior, scores = 0.05, [0.5, 0.47, 0.52, 0.55]
    n = len(scores)
    shrunk = math.sqrt((prior**2 + (n - 1) * np.var(scores, ddof=1)) / n)
    assert global_noise(prior, scores) == pytest.approx(shrunk)
    assert global_noise(prior, scores[:1]) == prior
    assert relative_noise(prior, 0.5, 0.5, scores) == pytest.approx(shrunk)


def test_keep_noise_is_local_only_with_an_optimum_above_the_start():
    prior, scores, earlier = 0.05, [0.9, 0.92], [(0.3, [0.7, 0.75])]
    local = keep_noise("local", prior, scores, 0.9, 0.5, 1.0, earlier)
    assert local == pytest.approx(relative_noise(prior, 0.5, 0.1, scores, earlier))
    shrunk = global_noise(prior, scores)
    assert keep_noise("global", prior, scores, 0.9, 0.5, 1.0, earlier) == shrunk
    assert keep_noise("local", prior, scores, 0.9, 0.5, None, earlier) == shrunk  # no optimum
    assert keep_noise("local", prior, scores, 1.0, 1.0, 1.0, earlier) == shrunk  # start at it


def test_reruns_anywhere_are_rescaled_to_the_incumbents_headroom():
    """Earlier incumbents' reruns with std = c * headroom predict c * headroom here."""
    rng = np.random.default_rng(0)
    c = 0.2
    earlier = [(h, list(1 - h + c * h * rng.standard_normal(30))) for h in (0.4, 0.1, 0.02)]
    est = relative_noise(0.05, 0.5, 0.01, [0.99], earlier)
    assert est == pytest.approx(c * 0.01, rel=0.15)
    # groups of one score, or at or past the optimum, say nothing about c
    useless = [(0.3, [0.7]), (0.0, [1.0, 1.1]), (-0.1, [1.1, 0.9])]
    assert relative_noise(0.05, 0.5, 0.1, [0.9], useless) == pytest.approx(0.01)


def test_the_incumbents_own_reruns_may_go_below_the_floor():
    prior, h = 0.05, 1e-5
    own = [1 - h, 1 - h + 1e-7, 1 - h - 1e-7]
    est = relative_noise(prior, 0.5, h, own)
    assert est < 0.01 * prior
    c = math.sqrt(((prior / 0.5) ** 2 + 2 * np.var(own, ddof=1) / h**2) / 3)
    assert est == pytest.approx(c * h)  # the pooled model, not the floor
    # with no more than the prior's shrinkage, the own std is the floor
    flat = [1 - h, 1 - h, 1 - h + 1e-9]
    assert relative_noise(prior, 0.5, 1e-9, flat) == pytest.approx(np.std(flat, ddof=1))


def test_noise_model_values_are_checked():
    assert NOISE_MODELS == ("global", "local")
    assert [m.value for m in NoiseModel] == list(NOISE_MODELS)
    assert check_noise_model(NoiseModel["local"]) == "local"
    with pytest.raises(ConfigError, match="noise_model='loc' is not a noise model; give one"):
        ResearchEnv(task=HeteroTask(), budget=2, instances=[0], noise_model="loc")


# ---------------------------------------------------------------------------- campaigns
def test_global_reverts_late_refinements_that_local_keeps():
    glob, local = make_env("global"), make_env("local")
    try:
        # global: the margin never falls below noise_prior / 2 with three reruns, so a
        # halving is reverted once half the headroom is below it (lr 1/16 -> 1/32)
        assert refine(glob, rounds=14, reruns=3) == [True] * 4 + [False] * 10
        assert glob.incumbent.config["lr"] == pytest.approx(START_H / 2**4, rel=1e-4)
        # local: the margin is 10% of the headroom left; every halving is kept
        assert refine(local, rounds=14, reruns=3) == [True] * 14
        h = local.incumbent.config["lr"]
        assert h == pytest.approx(START_H / 2**14, rel=1e-4)
        assert local.noise == pytest.approx(0.01 * HeteroTask.noise_prior)  # no reruns yet
        for _ in range(3):
            local.step(REEVALUATE)
        assert local.noise < 0.01 * HeteroTask.noise_prior  # measured below the floor
        assert local.noise == pytest.approx(RELATIVE_SD * h, rel=0.1)
        assert glob.noise > 50 * local.noise
    finally:
        glob.close()
        local.close()


def test_local_without_reruns_stops_at_the_floor():
    """The headroom-scaled prior alone never goes below 1% of noise_prior: refinements
    smaller than that need reruns of the incumbent that show it."""
    env = make_env("local")
    try:
        kept = refine(env, rounds=14, reruns=0)
        # kept while half the headroom beats 1% of 0.05, i.e. down to lr = 1/2**10
        assert kept == [True] * 9 + [False] * 5
        assert env.noise == pytest.approx(0.01 * HeteroTask.noise_prior)
    finally:
        env.close()


@pytest.mark.parametrize("reruns", [0, 3])
def test_local_still_rejects_noisy_improvements_at_the_start(reruns):
    """A ``width`` child changes nothing, but its draw on the evaluation seed makes it
    look 0.7 noise std better: reverted by both models, which agree at the start."""
    envs = {m: make_env(m, lucky=0.7) for m in NOISE_MODELS}
    try:
        for env in envs.values():
            for _ in range(reruns):
                env.step(REEVALUATE)
        assert envs["local"].noise == pytest.approx(envs["global"].noise)
        for env in envs.values():
            for edit in ("width_down", "width_up"):
                *_, info = env.step(env.action_index(edit))
                assert info["experiment"]["metric"] > 1.0 - START_H  # looks better
                assert not info["experiment"]["kept"]
    finally:
        for env in envs.values():
            env.close()


def test_local_is_global_without_a_metric_optimum():
    envs = {m: make_env(m, task=NoOptimumTask()) for m in NOISE_MODELS}
    try:
        kept = {m: refine(env, rounds=8, reruns=3) for m, env in envs.items()}
        assert kept["local"] == kept["global"]
        assert envs["local"].noise == envs["global"].noise
    finally:
        for env in envs.values():
            env.close()


# ---------------------------------------------------------------------------- config
@pytest.fixture()
def _hydra():
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


@pytest.mark.usefixtures("_hydra")
def test_the_env_group_passes_noise_model_and_types_it():
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        default = compose(config_name="search")
        local = compose(config_name="search", overrides=["env.noise_model=local"])
        bad = compose(config_name="search", overrides=["env.noise_model=loc"])
    assert env_kwargs(default)["noise_model"] == "global"
    assert env_kwargs(local)["noise_model"] == "local"
    assert validate(local, "search").env.noise_model == NoiseModel["local"]
    with pytest.raises(ConfigError) as err:
        validate(bad, "search")
    assert str(err.value) == (
        "env.noise_model=loc is not one of global, local; e.g. env.noise_model=global"
    )
