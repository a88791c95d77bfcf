"""The synthetic landscape families: each instance's function is pinned to the value.

A change to how an instance's function is drawn or evaluated changes every benchmark
number of these families; these values catch it (exact floats, not approximations).
"""

from __future__ import annotations

import pytest
from rsi_rl.envs.synthetic.task import RuggedSyntheticTask, SmoothSyntheticTask

PINNED = {
    SmoothSyntheticTask: {
        "start": {"lr": 0.0004, "width": 1024, "depth": 6, "dropout": 0.3,
                  "weight_decay": 0.001, "activation": "gelu"},
        "mean": (0.6138524557560988, 953.528624734083),
        "sample": (0.6056171637389559, 991.9785765133022),
        "summary": {"optimum": 0.9263790327393355, "median": 0.5839777592095634,
                    "worst": 0.4045591268520759, "start": 0.6138524557560988},
    },
    RuggedSyntheticTask: {
        "start": {"lr": 4e-05, "batch_size": 64, "width1": 32, "width2": 64, "dropout": 0.3,
                  "epochs": 10, "optimizer": "adam", "norm": "layer"},
        "mean": (0.47542588199193614, 5.642451647710499),
        "sample": (0.49286072772029077, 5.855949741702492),
        "summary": {"optimum": 0.8020862532566906, "median": 0.41273010846299163,
                    "worst": 0.24694745347829145, "start": 0.47542588199193614},
    },
}  # fmt: skip


@pytest.mark.parametrize("cls", list(PINNED), ids=lambda c: c.name)
def test_an_instance_draws_the_same_function(cls):
    task, pinned = cls(), PINNED[cls]
    inst = task.make_instance(10_003)
    assert inst.start_config == pinned["start"]
    assert task.mean(inst, inst.start_config) == pinned["mean"]
    assert task.sample(inst, inst.start_config, 0) == pinned["sample"]
    assert task.truth_summary(inst) == pinned["summary"]
