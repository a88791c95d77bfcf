"""The `digits_mlp` task: scikit-learn's bundled 8x8 digits, an MLP, accuracy on validation.

Instances share the data set and differ in how it is split (train 60% / val 20% /
test 20%, stratified, shuffled by the instance seed). Instance 0 is the canonical one.
The start config is reasonable but improvable; the reference config stands in for a
careful human's tuning (see docs/tasks.md for its metric).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.task import CodePatch, InnerTask, Instance, Knob, split_dataset

HERE = Path(__file__).parent

START_CONFIG: dict[str, Any] = {
    "lr": 1e-3,
    "batch_size": 128,
    "width": 32,
    "depth": 1,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "epochs": 8,
}

REFERENCE_CONFIG: dict[str, Any] = {
    "lr": 3e-3,
    "batch_size": 64,
    "width": 256,
    "depth": 2,
    "weight_decay": 1e-4,
    "dropout": 0.1,
    "epochs": 32,
}

#: code edits of the reference: cosine decay and label smoothing
REFERENCE_EDITS = ("cosine_schedule", "label_smoothing")

KNOBS = (
    Knob("lr", "learning_rate", "log", 1e-5, 0.3, 2.0),
    Knob("batch_size", "batch", "choice", choices=(16, 32, 64, 128, 256, 512)),
    Knob("width", "width", "log", 8, 1024, 2.0, integer=True),
    Knob("depth", "depth", "linear", 1, 4, 1, integer=True),
    Knob("weight_decay", "weight_decay", "log", 1e-6, 1e-1, 10.0, zero_ok=True),
    Knob("dropout", "dropout", "linear", 0.0, 0.5, 0.1),
    Knob("epochs", "duration", "log", 2, 64, 2.0, integer=True),
)

PATCHES = (
    CodePatch(
        "activation_gelu", "ReLU -> GELU", (("Activation = nn.ReLU", "Activation = nn.GELU"),)
    ),
    CodePatch(
        "norm_layer",
        "LayerNorm after each hidden linear layer",
        (("self.norm = nn.Identity()", "self.norm = nn.LayerNorm(d_out)"),),
    ),
    CodePatch(
        "residual",
        "residual connections between equal-width blocks",
        (
            (
                "self.skip = False  # residual connection when shapes match",
                "self.skip = True  # residual connection when shapes match",
            ),
        ),
    ),
    CodePatch(
        "grad_clip",
        "clip the gradient norm at 1.0",
        (
            (
                "clip_norm = None  # gradient clipping off",
                "clip_norm = 1.0  # clip the gradient norm",
            ),
        ),
    ),
    CodePatch(
        "label_smoothing",
        "label smoothing 0.1",
        (
            (
                "loss_fn = nn.CrossEntropyLoss()",
                "loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)",
            ),
        ),
    ),
    CodePatch(
        "cosine_schedule",
        "cosine learning-rate decay",
        (
            (
                "    f = 1.0  # constant learning rate\n",
                "    f = 0.5 * (1.0 + math.cos(math.pi * step / total_steps))  # cosine decay\n",
            ),
        ),
    ),
    CodePatch(
        "warmup",
        "linear learning-rate warmup over the first 10% of steps",
        (
            (
                "    return f\n",
                "    return f * min(1.0, (step + 1) / warmup_steps)  # linear warmup\n",
            ),
        ),
    ),
    CodePatch(
        "weight_ema",
        "evaluate an exponential moving average of the weights (decay 0.99)",
        (
            (
                "ema = None  # no weight averaging",
                "ema = torch.optim.swa_utils.AveragedModel(\n"
                "    model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.99)\n"
                ")  # weight EMA",
            ),
        ),
    ),
    CodePatch(
        "optimizer_swap",
        "Adam -> SGD with Nesterov momentum 0.9",
        (
            (
                'opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])',
                "opt = torch.optim.SGD(\n"
                '    model.parameters(), lr=cfg["lr"], momentum=0.9, nesterov=True, weight_decay=cfg["weight_decay"]\n'
                ")",
            ),
        ),
    ),
    CodePatch(
        "init_scheme",
        "orthogonal weight initialisation, zero biases",
        (
            (
                "    pass  # PyTorch's default (Kaiming-uniform) initialisation\n",
                "    if isinstance(module, nn.Linear):  # orthogonal initialisation\n"
                "        nn.init.orthogonal_(module.weight)\n"
                "        nn.init.zeros_(module.bias)\n",
            ),
        ),
    ),
    CodePatch(
        "input_norm",
        "standardise inputs with the training mean and std",
        (
            (
                "x_train, x_eval = x_train / 16.0, x_eval / 16.0  # pixel intensities are 0..16",
                "mu, sd = x_train.mean(0), x_train.std(0) + 1e-6  # standardise per feature\n"
                "x_train, x_eval = (x_train - mu) / sd, (x_eval - mu) / sd",
            ),
        ),
    ),
)


class DigitsMLPTask(InnerTask):
    """MLP on the bundled digits data set; metric ``val_acc`` (maximize)."""

    name = "digits_mlp"
    metric = "val_acc"
    direction = "maximize"
    metric_optimum = 1.0
    noise_prior = 0.006
    program_dir = HERE
    default_timeout = 60.0
    knobs = KNOBS
    patches = PATCHES
    heldout_seeds = range(0, 10)
    meta_train_seeds = range(10, 1000)
    #: the data set's labelled source files; the sandboxed program must not read them
    sandbox_hidden_paths = ("sklearn.datasets:data",)

    def make_instance(self, seed: int) -> Instance:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        data = split_dataset(x.astype(np.float32), y.astype(np.int64), seed)
        n_train, n_val, n_test = (len(data[f"y_{k}"]) for k in ("train", "val", "test"))
        return Instance(
            task=self.name,
            seed=seed,
            data=data,
            start_config=dict(START_CONFIG),
            reference_config=dict(REFERENCE_CONFIG),
            reference_edits=REFERENCE_EDITS,
            info={"n_classes": 10, "n_train": n_train, "n_val": n_val, "n_test": n_test},
        )
