"""The `mlp2` task family: the `tabular` data sets, a two-hidden-layer MLP tuned per layer.

Each layer has its own width, dropout and activation (categorical), and the learning-rate
schedule is categorical too: a space in which several knobs share a role.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rsi_rl.envs.tabular.task import TabularTask

from rsi_rl.task import Instance, Knob

ACTIVATIONS = ("relu", "tanh", "gelu")


class TwoLayerMLPTask(TabularTask):
    """Generated classification data (as ``tabular``); metric ``val_acc`` (maximize)."""

    name = "mlp2"
    program_dir = Path(__file__).parent
    knobs = (
        Knob("lr", "learning_rate", "log", 1e-4, 0.3, 2.0),
        Knob("width1", "width", "log", 4, 256, 2.0, integer=True),
        Knob("width2", "width", "log", 4, 256, 2.0, integer=True),
        Knob("dropout1", "dropout", "linear", 0.0, 0.5, 0.1),
        Knob("dropout2", "dropout", "linear", 0.0, 0.5, 0.1),
        Knob("act1", "activation", "categorical", choices=ACTIVATIONS),
        Knob("act2", "activation", "categorical", choices=ACTIVATIONS),
        Knob("schedule", "schedule", "categorical", choices=("constant", "cosine", "step")),
        Knob("steps", "duration", "log", 25, 1600, 2.0, integer=True),
    )
    patches = ()

    def make_instance(self, seed: int) -> Instance:
        instance = super().make_instance(seed)
        rng = np.random.default_rng([seed, 2])
        tab = instance.start_config
        instance.start_config = {
            "lr": tab["lr"],
            "width1": tab["width"],
            "width2": int(rng.choice([4, 8, 16, 32, 64])),
            "dropout1": tab["dropout"],
            "dropout2": float(rng.choice([0.0, 0.0, 0.1, 0.3])),
            "act1": str(rng.choice(ACTIVATIONS)),
            "act2": str(rng.choice(ACTIVATIONS)),
            "schedule": "constant",
            "steps": tab["steps"],
        }
        return instance
