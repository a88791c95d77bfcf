"""The task author's API: what a task module imports, in one place.

    from rsi_rl.task import CodePatch, InnerTask, Instance, Knob, split_dataset

The definitions live in :mod:`rsi_rl.core` (``core.task``, ``core.knob``,
``core.landscape``, ``core.errors``); this module is their stable public path, so that the
library's internals can move without breaking a user's task. Inner programs import
:mod:`rsi_rl.harness` instead.
"""

from __future__ import annotations

from rsi_rl.core.errors import TaskError
from rsi_rl.core.knob import Knob
from rsi_rl.core.landscape import LandscapeTask, TabulatedTask, hash_ints, hash_normal
from rsi_rl.core.task import CodePatch, InnerTask, Instance, split_dataset

__all__ = [
    "CodePatch",
    "InnerTask",
    "Instance",
    "Knob",
    "LandscapeTask",
    "TabulatedTask",
    "TaskError",
    "hash_ints",
    "hash_normal",
    "split_dataset",
]
