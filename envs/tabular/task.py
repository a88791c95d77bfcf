"""The `tabular` task family: generated classification data sets, an MLP, accuracy.

Each instance seed draws a data set (samples, features, informative share, class
separation, label noise, classes, per-feature scales and offsets) with scikit-learn's
``make_classification``, and a start config drawn from a range of often poor choices.
Experiments take a fraction of a second, so agents can meta-train on thousands of them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.task import CodePatch, InnerTask, Instance, Knob, split_dataset

HERE = Path(__file__).parent

KNOBS = (
    Knob("lr", "learning_rate", "log", 1e-4, 0.3, 2.0),
    Knob("batch_size", "batch", "choice", choices=(16, 32, 64, 128, 256)),
    Knob("width", "width", "log", 4, 256, 2.0, integer=True),
    Knob("depth", "depth", "linear", 1, 4, 1, integer=True),
    Knob("weight_decay", "weight_decay", "log", 1e-5, 1e-1, 10.0, zero_ok=True),
    Knob("dropout", "dropout", "linear", 0.0, 0.5, 0.1),
    Knob("steps", "duration", "log", 25, 1600, 2.0, integer=True),
)

PATCHES = (
    CodePatch("activation_gelu", "ReLU -> GELU", (("act_fn = F.relu", "act_fn = F.gelu"),)),
    CodePatch(
        "norm_layer", "LayerNorm in every hidden layer", (("use_norm = False", "use_norm = True"),)
    ),
    CodePatch(
        "residual",
        "residual connections between hidden layers",
        (("use_residual = False", "use_residual = True"),),
    ),
    CodePatch(
        "grad_clip",
        "clip the gradient norm at 1.0",
        (
            (
                "max_grad_norm = 0.0  # 0 = no clipping",
                "max_grad_norm = 1.0  # clip the gradient norm",
            ),
        ),
    ),
    CodePatch("label_smoothing", "label smoothing 0.1", (("smoothing = 0.0", "smoothing = 0.1"),)),
    CodePatch(
        "cosine_schedule",
        "cosine learning-rate decay",
        (("    scale = 1.0\n", "    scale = 0.5 * (1.0 + math.cos(math.pi * t / n_steps))\n"),),
    ),
    CodePatch(
        "warmup",
        "linear warmup over the first 10% of steps",
        (("    warm = 1.0\n", "    warm = min(1.0, (t + 1) / max(1, n_steps // 10))\n"),),
    ),
    CodePatch(
        "weight_ema",
        "predict with an exponential moving average of the weights (decay 0.98)",
        (
            (
                "averaged = None  # no weight averaging",
                "averaged = torch.optim.swa_utils.AveragedModel(\n"
                "    model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.98)\n"
                ")",
            ),
        ),
    ),
    CodePatch(
        "optimizer_swap",
        "Adam -> AdamW (decoupled weight decay, amsgrad)",
        (
            (
                'optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])',
                "optimizer = torch.optim.AdamW(\n"
                '    model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], amsgrad=True\n'
                ")",
            ),
        ),
    ),
    CodePatch(
        "init_scheme",
        "Kaiming-normal weights for hidden layers",
        (
            (
                "        pass  # default initialisation\n",
                '        nn.init.kaiming_normal_(p, nonlinearity="relu")\n',
            ),
        ),
    ),
    CodePatch(
        "input_norm",
        "standardise features with training mean and std",
        (
            (
                "preprocess = lambda x: x  # noqa: E731 - raw features",
                "mu, sd = X.mean(0), X.std(0) + 1e-6\n"
                "preprocess = lambda x: (x - mu) / sd  # noqa: E731 - standardised features",
            ),
        ),
    ),
)


class TabularTask(InnerTask):
    """A family of generated classification problems; metric ``val_acc`` (maximize)."""

    name = "tabular"
    metric = "val_acc"
    direction = "maximize"
    metric_optimum = 1.0
    noise_prior = 0.01
    program_dir = HERE
    default_timeout = 30.0
    knobs = KNOBS
    patches = PATCHES
    meta_train_seeds = range(0, 10_000)
    heldout_seeds = range(10_000, 10_100)

    def make_instance(self, seed: int) -> Instance:
        from sklearn.datasets import make_classification

        rng = np.random.default_rng(seed)
        n_samples = int(rng.integers(400, 2001))
        n_features = int(rng.integers(4, 33))
        n_informative = int(max(2, round(n_features * rng.uniform(0.3, 0.9))))
        n_classes = int(rng.integers(2, 6))
        n_clusters = int(rng.integers(1, 3))
        while n_classes * n_clusters > 2**n_informative:
            n_clusters = 1
            n_informative += 1
        n_features = max(n_features, n_informative)
        params: dict[str, Any] = {
            "n_samples": n_samples,
            "n_features": n_features,
            "n_informative": n_informative,
            "n_redundant": int(rng.integers(0, max(1, n_features - n_informative) + 1))
            if n_features > n_informative
            else 0,
            "n_classes": n_classes,
            "n_clusters_per_class": n_clusters,
            "class_sep": float(rng.uniform(0.6, 2.0)),
            "flip_y": float(rng.uniform(0.0, 0.08)),
        }
        params["n_redundant"] = min(params["n_redundant"], n_features - n_informative)
        x, y = make_classification(random_state=int(seed % 2**31), **params)
        log_scale = float(rng.uniform(0.0, 3.0))
        x = x * np.exp(rng.normal(0.0, log_scale, size=n_features)) + rng.normal(
            0.0, 5.0, size=n_features
        )
        x, y = x.astype(np.float32), y.astype(np.int64)
        data = split_dataset(x, y, seed)
        start = {
            "lr": float(f"{math.exp(rng.uniform(math.log(3e-4), math.log(0.1))):.3g}"),
            "batch_size": int(rng.choice([16, 32, 64, 128, 256])),
            "width": int(rng.choice([4, 8, 16, 32, 64])),
            "depth": int(rng.integers(1, 4)),
            "weight_decay": float(rng.choice([0.0, 0.0, 1e-4, 1e-2])),
            "dropout": float(rng.choice([0.0, 0.0, 0.1, 0.3])),
            "steps": int(rng.choice([25, 50, 100, 200])),
        }
        return Instance(
            task=self.name,
            seed=seed,
            data=data,
            start_config=start,
            reference_config=None,
            info={"n_classes": n_classes, "feature_log_scale": log_scale, **params},
        )
