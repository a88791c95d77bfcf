"""The char_lm task: corpus, trusted bits-per-byte evaluation, checks, Gymnasium/SB3 check_env."""

from __future__ import annotations

import numpy as np
import pytest
from rsi_rl.envs.char_lm.task import CONTEXT, N_EVAL, CharLMTask, eval_chunks

from rsi_rl.testing import InnerTaskTestCase

TINY = {"steps": 10, "width": 16, "depth": 1, "batch_size": 4}


@pytest.mark.slow
class TestCharLM(InnerTaskTestCase):
    task = CharLMTask(start_config=TINY)


@pytest.fixture(scope="module")
def task_and_instance():
    task = CharLMTask()
    return task, task.make_instance(0)


def test_instance_splits_and_inputs(task_and_instance):
    task, inst = task_and_instance
    assert inst.data["x_val"].shape == (N_EVAL, CONTEXT) and inst.data["y_val"].shape == (N_EVAL,)
    assert inst.info["train_bytes"] > 200_000
    inputs = task.child_inputs(inst, "val")
    assert set(inputs) == {"train_text", "x_eval"}
    assert task.make_instance(1).data["x_val"].tobytes() != inst.data["x_val"].tobytes()


def test_targets_never_enter_the_sandbox():
    text = bytes(range(256)) * 300
    x, y = eval_chunks(text, n=100, context=8)
    # chunk i is text[9i : 9i + 9]; its target (last byte) is in no context
    assert x.shape == (100, 8) and y.tolist() == list(text[8 : 9 * 100 : 9])
    assert all(x[i, -1] == text[9 * i + 7] for i in range(100))


def test_evaluator_renormalises_scores(task_and_instance):
    task, inst = task_and_instance
    y = inst.data["y_val"]
    uniform = np.zeros((len(y), 256), dtype=np.float32)
    assert task.evaluate(uniform, inst, "val")["val_bpb"] == pytest.approx(8.0)
    forged = np.full(
        (len(y), 256), 50.0
    )  # "probability 1 for every byte" is uniform after normalising
    assert task.evaluate(forged, inst, "val")["val_bpb"] == pytest.approx(8.0)
    perfect = np.full((len(y), 256), -1e4)
    perfect[np.arange(len(y)), y] = 0.0
    assert task.evaluate(perfect, inst, "test" if False else "val")["val_bpb"] == pytest.approx(
        0.0, abs=1e-6
    )
    with pytest.raises(ValueError, match="expected"):
        task.evaluate(uniform[:, :10], inst, "val")


@pytest.mark.slow
def test_char_lm_passes_gymnasium_and_sb3_check_env(tmp_path):
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from rsi_rl.env import ResearchEnv

    env = ResearchEnv(
        task=CharLMTask(start_config=TINY), budget=3, instances=0, scratch_dir=tmp_path
    )
    try:
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True)
    finally:
        env.close()


@pytest.mark.slow
def test_char_lm_full_size_check_task():
    from rsi_rl.checker import check_task

    report = check_task("char_lm", seeds=(0, 1), run_edits="none")
    assert report.ok, report.format()
    assert 2.0 < report.baseline_metric < 4.0
