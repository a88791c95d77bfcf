"""The frozen yardstick: computed from a task's truth or a long search, written once, read;
regret against it; an instance missing from it is refused.

Campaigns train a formula (:func:`rsi_rl.testing.instant_experiments`); :class:`TruthToy`
is :class:`~rsi_rl.testing.ToyTask` with the landscape interface (``true_value``,
``truth_summary``), so the bench's headline is tested without the landscape tables.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rsi_rl.analysis.yardstick import (
    Yardstick,
    compute_yardstick,
    exhaustive_regret,
    read_yardstick,
    write_yardstick,
)
from rsi_rl.core.errors import ConfigError
from rsi_rl.testing import ToyTask, instant_experiments

OPTIMUM = 0.91


def truth(cand) -> float:
    """The seed-mean val_acc of a ToyTask candidate: best at lr 0.02, head_lr 0.005, gelu."""
    c = cand.config
    return (
        0.9
        - 0.05 * abs(math.log10(c["lr"] / 0.02))
        - 0.03 * abs(math.log10(c["head_lr"] / 0.005))
        + 0.01 * (c["act"] == "gelu")
    )


def _median() -> float:
    rng = np.random.default_rng(0)
    lr, head = 10 ** rng.uniform(-3, -1, 4000), 10 ** rng.uniform(-3, -1, 4000)
    gelu = rng.integers(0, 3, 4000) == 2
    vals = 0.9 - 0.05 * np.abs(np.log10(lr / 0.02)) - 0.03 * np.abs(np.log10(head / 0.005))
    return float(np.median(vals + 0.01 * gelu))


MEDIAN = _median()


class TruthToy(ToyTask):
    """ToyTask with true values: :func:`truth` (pair it with ``instant_experiments(truth)``)."""

    name = "truth_toy"

    def true_value(self, instance, candidate):
        return truth(candidate)

    def truth_summary(self, instance):
        from rsi_rl.core.edits import start_candidate

        start = truth(start_candidate(self, instance.start_config))
        return {"optimum": OPTIMUM, "median": MEDIAN, "worst": 0.75, "start": start}


def test_landscape_yardstick_reads_the_truth_and_round_trips(tmp_path):
    ys = compute_yardstick(TruthToy(), [1000, 1001])
    assert set(ys) == {1000, 1001}
    e = ys[1000]
    assert e["optimum"] == OPTIMUM and e["median"] == MEDIAN and e["source"] == "truth_summary"
    assert e["start"] == pytest.approx(0.9 - 0.05 * math.log10(2) - 0.03 * math.log10(2))
    path = tmp_path / "ys.json"
    write_yardstick(path, ys, "truth_toy", "maximize", {"family": None})
    back = read_yardstick(path)
    assert back.entries == ys and back.task == "truth_toy" and back.maximize
    assert json.loads(path.read_text())["instances"]["1001"]["optimum"] == OPTIMUM


def test_regret_is_zero_at_the_optimum_one_at_the_median_either_direction():
    up = Yardstick(
        "t", "maximize", {7: {"optimum": 0.9, "median": 0.5, "start": 0.6, "source": "x"}}
    )
    assert up.regret(7, 0.9) == 0.0 and up.regret(7, 0.5) == pytest.approx(1.0)
    assert up.regret(7, 0.7) == pytest.approx(0.5) and up.regret(7, 0.3) == pytest.approx(1.5)
    assert up.regret(7, None) is None
    down = Yardstick(
        "t", "minimize", {7: {"optimum": 1.0, "median": 3.0, "start": 3, "source": "x"}}
    )
    assert down.regret(7, 2.0) == pytest.approx(0.5) and down.regret(7, 1.0) == 0.0


def test_an_instance_missing_from_the_yardstick_is_refused_in_one_line(tmp_path):
    ys = Yardstick(
        "t", "maximize", {1: {"optimum": 1, "median": 0, "start": 0, "source": "x"}}, "ys.json"
    )
    with pytest.raises(ConfigError, match=r"^instance 2 is not in ys.json; compute") as exc:
        ys.regret(2, 0.5)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"^1 instance\(s\) not in ys.json \(3\)"):
        ys.check([1, 3])
    with pytest.raises(ConfigError, match="does not exist"):
        read_yardstick(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text(
        '{"task": "t", "direction": "maximize", "instances": {"1": {}}}'
    )
    with pytest.raises(ConfigError, match="malformed .*lacks optimum"):
        read_yardstick(tmp_path / "bad.json")


def test_trained_task_yardstick_is_a_long_search_remeasured_on_fresh_seeds():
    """A task without truth (ToyTask): a greedy search, its final incumbent and the start
    each re-measured on 5 fresh seeds; the optimum is the better mean."""
    with instant_experiments(truth, noise=0.01) as runs:
        ys = compute_yardstick(ToyTask(), [1000], agent="greedy", budget=6, fresh=5)
    e = ys[1000]
    assert e["source"] == "search:greedy:6+fresh:5"
    assert e["median"] == e["start"] and e["optimum"] >= e["start"]
    fresh = [s for _, s, split in runs if split == "val"][-10:]
    assert len(set(fresh)) == 5  # the start and the incumbent on the same 5 seeds
    with pytest.raises(ConfigError, match="needs >= 5 seeds"):
        compute_yardstick(ToyTask(), [1000], fresh=3)


def test_yardstick_command_writes_once_and_names_a_bad_family(tmp_path, capsys):
    from rsi_rl.analysis.yardstick import main

    out = tmp_path / "ys.json"
    assert main(["--family", "synth_smooth", "--n", "2", "--out", str(out)]) == 0
    assert sorted(read_yardstick(out).entries) == [10_000, 10_001]
    assert main(["--family", "synth_smooth", "--n", "2", "--out", str(out)]) == 2
    assert "exists; a yardstick is computed once" in capsys.readouterr().err
    assert main(["--family", "nope", "--out", str(tmp_path / "x.json")]) == 2
    assert "unknown family 'nope'; known families:" in capsys.readouterr().err


def test_exhaustive_regret_reads_the_best_config_on_each_campaigns_own_seed():
    from rsi_rl.builder import make_env
    from rsi_rl.core.registry import make_task
    from rsi_rl.core.seeds import evaluation_seed
    from rsi_rl.testing import ToyTask

    task = make_task("hpobench")
    ys = Yardstick(task="hpobench", direction="maximize", entries=compute_yardstick(task, [0]))
    got = exhaustive_regret(task, ys, [(0, 0), (0, 1)])
    assert got is not None and len(got) == 2
    env = make_env(task, 2, [0], {"executor": "serial"})
    try:
        inst = task.make_instance(0)
        for value, seed in zip(got, (0, 1), strict=True):
            env.reset(seed=seed, options={"instance": 0})
            assert env.eval_seed == evaluation_seed(seed)  # the seed a campaign compares on
            best = task.best_on_seed(inst, env.eval_seed)
            assert value == pytest.approx(ys.regret(0, task.mean(inst, best)[0]))
            assert 0.0 <= value < 1.0  # a good config, on a noisy table not the optimum
    finally:
        env.close()
    assert exhaustive_regret(ToyTask(), ys, [(0, 0)]) is None  # no table
