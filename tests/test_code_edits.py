"""Code-edit operators of the built-in tasks: real source changes that compose.

On source (every operator, every pair, both orders): the patched program compiles, the
pair commutes, and reverting gives back the exact original. Run in the sandbox: every
operator changes what the trained program predicts, and a sample of pairs trains.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from rsi_rl.core.edits import apply_edit, start_candidate, valid_edits
from rsi_rl.core.registry import make_task
from rsi_rl.core.roles import PATCH_ROLES
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits

TASKS = ("digits_mlp", "tabular")
SMALL = {
    "digits_mlp": {"epochs": 2, "batch_size": 32, "width": 16, "depth": 2},
    "tabular": {"steps": 25, "width": 8, "depth": 2},
}


def _pairs(name: str) -> list[tuple[str, str]]:
    return list(itertools.combinations([p.name for p in make_task(name).patches], 2))


@pytest.mark.parametrize("name", TASKS)
def test_every_operator_is_a_real_source_change(name):
    task = make_task(name)
    assert len(task.patches) >= 10
    assert {p.name for p in task.patches} >= set(PATCH_ROLES)  # the shared patch names
    cand = start_candidate(task, task.make_instance(task.heldout_seeds[0]).start_config)
    for patch in task.patches:
        child, description = apply_edit(task, cand, patch.name)
        assert child.source != cand.source and child.hash != cand.hash
        assert description.startswith("+")
        diff = child.diff(cand)
        assert diff.startswith("--- a/train.py") and "\n-" in diff and "\n+" in diff
        compile(child.source[patch.file], patch.file, "exec")
        back, _ = apply_edit(task, child, patch.name)  # toggle off
        assert back.source == cand.source and back.hash == cand.hash
        assert valid_edits(task, child)[patch.name]  # the toggle-off stays available


@pytest.mark.parametrize("name", TASKS)
def test_every_pair_composes_in_both_orders_and_reverts(name):
    task = make_task(name)
    cand = start_candidate(task, task.make_instance(task.heldout_seeds[0]).start_config)
    for a, b in _pairs(name):
        ab, _ = apply_edit(task, apply_edit(task, cand, a)[0], b)
        ba, _ = apply_edit(task, apply_edit(task, cand, b)[0], a)
        assert ab.source == ba.source and ab.toggles == ba.toggles == frozenset({a, b})
        compile(ab.source["train.py"], f"{a}+{b}", "exec")
        only_b, _ = apply_edit(task, ab, a)  # revert a, keep b
        assert only_b.source == apply_edit(task, cand, b)[0].source
        assert apply_edit(task, only_b, b)[0].source == cand.source


def _predictions(runner: Runner, instance, cand, seed: int = 0) -> tuple[str, np.ndarray | None]:
    res = runner.run(instance, cand, seed)
    workdir = sorted(Path(runner.scratch_root).glob(f"exp*_{cand.hash[:8]}_val"))[-1]
    pred = workdir / "predictions.npy"
    status = (
        res.status
        if res.status == "ok"
        else f"{res.status}: {res.message} {res.stderr_tail[-300:]}"
    )
    return status, (np.load(pred) if pred.exists() else None)


@pytest.mark.parametrize("name", ["tabular", pytest.param("digits_mlp", marks=pytest.mark.slow)])
def test_every_operator_changes_behaviour(name, tmp_path):
    task = make_task(name)
    inst = task.make_instance(task.heldout_seeds[0])
    cand = start_candidate(task, {**inst.start_config, **SMALL[name]})
    if name == "digits_mlp":  # large steps, so that clipping the gradient norm at 1 matters
        cand = start_candidate(task, {**cand.config, "lr": 0.05})
    with Runner(
        task, SandboxLimits(timeout=60), scratch_root=tmp_path, keep_scratch=True
    ) as runner:
        status, base = _predictions(runner, inst, cand)
        assert status == "ok" and base is not None
        for patch in task.patches:
            child, _ = apply_edit(task, cand, patch.name)
            status, pred = _predictions(runner, inst, child)
            assert status == "ok", f"{patch.name}: {status}"
            assert pred is not None and pred.shape == base.shape
            assert not np.allclose(pred, base, atol=1e-6), (
                f"{patch.name} did not change the predictions"
            )


@pytest.mark.slow
@pytest.mark.parametrize("name", TASKS)
def test_sampled_pairs_train(name, tmp_path):
    task = make_task(name)
    inst = task.make_instance(task.heldout_seeds[0])
    cand = start_candidate(task, {**inst.start_config, **SMALL[name]})
    rng = np.random.default_rng(0)
    pairs = _pairs(name)
    with Runner(task, SandboxLimits(timeout=60), scratch_root=tmp_path) as runner:
        for i in rng.choice(len(pairs), size=6, replace=False):
            a, b = pairs[int(i)]
            child, _ = apply_edit(task, apply_edit(task, cand, a)[0], b)
            res = runner.run(inst, child, 0)
            assert res.status == "ok", (a, b, res.message)
