"""Trackers: where a run's progress goes besides the ledger (a layer; the core never imports one).

A command instantiates ``cfg.logger`` (a Hydra group) and calls, in this order::

    tracker.start(run_dir, resolved_config)
    tracker.log_experiment(record, info)      # after every experiment (campaigns)
    tracker.log_metrics({"train/x": 1.0}, step=...)   # any scalars (meta-training, bench)
    tracker.log_table("bench", rows)          # list of dicts -> one table
    tracker.log_images({"best_so_far": "plot.png"})
    tracker.log_artifact(path, name, type)    # a file or folder, versioned
    tracker.log_summary(summary)              # once, at the end of a successful run
    tracker.finish()                          # always, in ``finally``

Loggers: ``logger=none`` keeps only the ledger; ``logger=csv`` also writes
``progress.csv``; ``logger=tensorboard`` writes TensorBoard event files;
``logger=wandb`` records the run in Weights & Biases (offline unless asked otherwise).
Commands that train SB3 models ask :meth:`Tracker.tensorboard_log` where SB3 should write
its TensorBoard logs (``None``: nowhere); the W&B tracker syncs them.

Experiments are counted from 0 everywhere (``experiment/index``, the console lines and the
ledger's ``step`` of the start config): index 0 is the baseline.

Also :func:`progress_bar`: a tqdm bar with an ETA on a terminal, and one log line every
30 seconds (done/total, rate, ETA) when stderr is not a terminal (nohup, SLURM, CI).

Modules: ``base`` (the :class:`Tracker` interface, ``none`` and ``csv``, :func:`tracked`),
``wandb``, ``tensorboard``, ``progress``, ``context`` (Hydra job, run names, W&B folders)
and ``commands`` (what ``train`` and ``bench`` log at their end). Every public name is
importable from ``rsi_rl.tracking``.
"""

from rsi_rl.core.record import STEP_KEYS, TABLE_COLUMNS
from rsi_rl.tracking.base import (
    CSVTracker,
    NullTracker,
    Tracker,
    experiment_row,
    make_tracker,
    tracked,
)
from rsi_rl.tracking.commands import log_bench, log_training
from rsi_rl.tracking.context import has_wandb_api_key, hydra_context, run_name, wandb_root
from rsi_rl.tracking.progress import PROGRESS_SECONDS, LogProgress, progress_bar
from rsi_rl.tracking.tensorboard import TensorBoardTracker
from rsi_rl.tracking.wandb import WandbTracker

__all__ = [
    "PROGRESS_SECONDS",
    "STEP_KEYS",
    "TABLE_COLUMNS",
    "CSVTracker",
    "LogProgress",
    "NullTracker",
    "TensorBoardTracker",
    "Tracker",
    "WandbTracker",
    "experiment_row",
    "has_wandb_api_key",
    "hydra_context",
    "log_bench",
    "log_training",
    "make_tracker",
    "progress_bar",
    "run_name",
    "tracked",
    "wandb_root",
]
