"""A reusable pytest test case for inner tasks (as ``optuna.testing`` ships for samplers).

Subclass :class:`InnerTaskTestCase` in your own test suite, name the task, and pytest
runs :func:`rsi_rl.checker.check_task` on it once per class and turns each check into
a test::

    # tests/test_my_task.py
    from rsi_rl.testing import InnerTaskTestCase

    class TestMyTask(InnerTaskTestCase):
        task = "my_task"                 # a name, class, instance or {_target_: ...} config
        config = {"epochs": 2}           # start-config overrides that keep runs short
        seeds = (0, 1)

A failing test prints the checker's one-line diagnosis (what to fix). Set
``run_edits = "code"`` to also train every code edit once.

For tests of agents and tools, :class:`ToyTask` is a task whose space has what the
built-in tasks may lack (two knobs of one role, categorical knobs, a patch), and
:func:`instant_runs` replaces an env's training by a formula, so campaigns take
milliseconds (:func:`instant_experiments` does it for every runner, including those a
command, a bench or an executor makes, and starts no sandbox); :func:`untrained_policy` saves a policy of the env's current action and
observation layout (random weights) for tests that load one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from rsi_rl.checker import CheckReport, RunEdits, check_task
from rsi_rl.core.edits import Candidate
from rsi_rl.core.task import CodePatch, InnerTask, Instance, Knob


def _asserts(*names: str) -> Callable[[InnerTaskTestCase, CheckReport], None]:
    """A test of :class:`InnerTaskTestCase` that passes when the checks ``names`` pass,
    warn or skip."""

    def test(self: InnerTaskTestCase, check_report: CheckReport) -> None:
        for name in names:
            self._assert(check_report, name)

    test.__doc__ = f"check-task's {', '.join(map(repr, names))} check(s) do not fail."
    return test


class InnerTaskTestCase:
    """Base class of task test suites; pytest collects its subclasses named ``Test*``."""

    #: the task under test: name, class, instance or ``_target_`` config
    task: ClassVar[Any] = None
    #: start-config overrides that make each experiment cheap
    config: ClassVar[dict[str, Any]] = {}
    #: experiment seeds (the first runs twice; two or more estimate the noise)
    seeds: ClassVar[tuple[int, ...]] = (0, 1)
    #: also train every code edit (``code``) or every edit (``all``) once
    run_edits: ClassVar[RunEdits] = "none"
    #: the instance seed to check (default: the task's first held-out instance)
    instance: ClassVar[int | None] = None
    #: wall-clock seconds per experiment (default: the task's)
    timeout: ClassVar[float | None] = None

    @pytest.fixture(scope="class")
    @classmethod
    def check_report(cls) -> CheckReport:
        """The checker's report, computed once per test class."""
        if cls.task is None:
            pytest.skip("set the class attribute `task`")
        return check_task(
            cls.task,
            instance=cls.instance,
            seeds=cls.seeds,
            run_edits=cls.run_edits,
            config=dict(cls.config) or None,
            timeout=cls.timeout,
        )

    def _assert(
        self, report: CheckReport, name: str, allow: tuple[str, ...] = ("pass", "warn", "skip")
    ) -> None:
        item = report.item(name)
        if item is None:  # an earlier check failed and stopped the checker
            failed = report.failures[0] if report.failures else None
            pytest.fail(
                f"check {name!r} did not run"
                + (f"; {failed.name} failed: {failed.detail}" if failed else "")
            )
        assert item.verdict in allow, f"{name}: {item.detail}"

    test_loads = _asserts("load", "class data")
    test_instance_is_deterministic = _asserts("instance")
    test_labels_stay_out_of_the_sandbox = _asserts("labels")
    test_edits_apply_and_revert = _asserts("source", "edits")
    test_baseline_metric_is_finite = _asserts("baseline")
    test_seeding_is_repeatable = _asserts("repeatable")
    test_noise_is_estimated = _asserts("noise")

    def test_no_check_fails(self, check_report: CheckReport) -> None:
        assert check_report.ok, check_report.format()


class ToyTask(InnerTask):
    """A task for agent tests, never trained (pair it with :func:`instant_runs`).

    Its knobs: ``lr`` and ``head_lr`` (both ``learning_rate``), ``act`` (categorical
    strings), ``mix`` (categorical of a string, an int, a float and a bool) and ``width``
    (ordinal); one patch, ``norm_layer``.
    """

    name = "toy"
    metric = "val_acc"
    direction = "maximize"
    program_dir = Path(__file__).parent
    preload = ()
    knobs = (
        Knob("lr", "learning_rate", "log", 1e-3, 1e-1, 2.0),
        Knob("head_lr", "learning_rate", "log", 1e-3, 1e-1, 2.0),
        Knob("act", "activation", "categorical", choices=("relu", "tanh", "gelu")),
        Knob("mix", "other", "categorical", choices=("auto", 2, 0.5, False)),
        Knob("width", "width", "choice", choices=(8, 16, 32)),
    )
    patches = (CodePatch("norm_layer", "use a norm", (("use_norm = False", "use_norm = True"),)),)
    heldout_seeds = range(1000, 1010)

    def source(self) -> dict[str, str]:
        return {"train.py": "use_norm = False\n"}

    def make_instance(self, seed: int) -> Instance:
        start = {"lr": 0.01, "head_lr": 0.01, "act": "relu", "mix": "auto", "width": 16}
        return Instance(task=self.name, seed=seed, data={}, start_config=start)


def instant_runs(env: Any, metric: Callable[[Candidate], float]) -> None:
    """Replace ``env``'s training by ``metric(candidate)``: every run is ``ok`` at once
    (one charged second), on every split, so a campaign of any agent takes milliseconds."""
    from rsi_rl.exec.result import ExperimentResult

    def run(instance: Instance, cand: Candidate, seed: int, split: str = "val") -> Any:
        value = float(metric(cand))
        return ExperimentResult("ok", {env.task.metric_for(split): value}, seconds=1.0)

    env.runner.run = run


def instant_experiments(
    metric: Callable[[Candidate], float], noise: float = 0.0
) -> contextlib.AbstractContextManager[list[tuple[Candidate, int, str]]]:
    """A block in which nothing trains and no sandbox starts.

    Every :class:`~rsi_rl.exec.runner.Runner` (an env's, an executor worker's, the one that
    ``rsi-rl try``, ``bench`` or ``search`` makes) answers each run that its result cache
    misses with ``ok`` at once: ``metric(candidate)`` plus ``noise`` times a fixed draw
    in [-1, 1] per seed, one charged second, on every split. Caches, executors, seeds,
    ledgers and the CLI work as usual. The block yields the list of runs made,
    ``(candidate, seed, split)`` each, in order::

        with instant_experiments(lambda cand: cand.config["lr"]) as runs:
            main(["search", "task=tabular", "budget=3"])
        assert len(runs) == 5  # baseline, 3 experiments, test split
    """
    return _instant_experiments(metric, noise)


@contextlib.contextmanager
def _instant_experiments(
    metric: Callable[[Candidate], float], noise: float
) -> Iterator[list[tuple[Candidate, int, str]]]:
    from rsi_rl.exec import sandbox
    from rsi_rl.exec.result import ExperimentResult
    from rsi_rl.exec.runner import Runner

    runs: list[tuple[Candidate, int, str]] = []

    def run_fresh(
        self: Runner, instance: Instance, cand: Candidate, seed: int, split: str = "val"
    ) -> ExperimentResult:
        runs.append((cand, seed, split))
        draw = ((int(seed) * 2654435761) % 2**32) / 2**31 - 1.0
        value = float(metric(cand)) + noise * draw
        return ExperimentResult("ok", {self.task.metric_for(split): value}, seconds=1.0)

    def idle(*args: Any, **kwargs: Any) -> None:
        return None

    patched = [
        (Runner, "run_fresh", run_fresh),
        (sandbox.Sandbox, "spawn", idle),
        (sandbox.Sandbox, "start", idle),
        (sandbox, "start_ahead", idle),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patched]
    try:
        for owner, name, value in patched:
            setattr(owner, name, value)
        yield runs
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def untrained_policy(path: str | Path, algo: str = "maskable_ppo", seed: int = 0) -> Path:
    """Save a policy with random weights (one hidden layer of 8) for the env's current
    action and observation layout, with its metadata (:func:`~rsi_rl.agents.sb3.save_policy`);
    returns the path. It acts, poorly, wherever a trained policy would load."""
    import gymnasium as gym

    from rsi_rl.actions import N_ACTIONS, OBSERVATION_FEATURES
    from rsi_rl.agents.sb3 import build_algorithm, save_policy

    class _Layout(gym.Env[np.ndarray, np.int64]):
        observation_space = gym.spaces.Box(-1.0, 1.0, (len(OBSERVATION_FEATURES),), np.float32)
        action_space = gym.spaces.Discrete(N_ACTIONS)

        def action_masks(self) -> np.ndarray:
            return np.ones(N_ACTIONS, dtype=bool)

    hyperparams = {"policy_kwargs": {"net_arch": [8]}}
    model = build_algorithm(_Layout(), algo, hyperparams=hyperparams, seed=seed)
    return save_policy(model, path, algo, task="untrained")


__all__ = [
    "InnerTaskTestCase",
    "ToyTask",
    "instant_experiments",
    "instant_runs",
    "untrained_policy",
]
