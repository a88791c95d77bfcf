"""``logger=tensorboard``: TensorBoard event files in the run directory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsi_rl.core.errors import ConfigError
from rsi_rl.core.record import STEP_KEYS, RecordLike, as_dict
from rsi_rl.tracking.base import Tracker, _flat_scalars, _jsonable, _number


class TensorBoardTracker(Tracker):
    """``logger=tensorboard``: event files in ``<run_dir>/tb`` (``tensorboard --logdir <run_dir>/tb``).

    Per experiment the scalars ``experiment/metric``, ``best_metric``, ``reward``...;
    :meth:`log_metrics` writes any scalars; SB3 training logs go to the same folder.
    """

    def __init__(self, subdir: str = "tb"):
        self.subdir = subdir
        self._writer: Any = None
        self._n = 0

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "logger=tensorboard needs the tensorboard package: pip install tensorboard"
            ) from exc
        self._writer = SummaryWriter(log_dir=str(Path(run_dir) / self.subdir / "rsi_rl"))
        self._writer.add_text("config", "```\n" + json.dumps(_jsonable(config), indent=2) + "\n```")

    def log_experiment(self, record: RecordLike, info: dict[str, Any]) -> None:
        if self._writer is None:
            return
        fields = as_dict(record)
        if fields.get("kind") == "stop" or fields.get("split", "val") != "val":
            return
        n, self._n = self._n, self._n + 1  # 0 = the baseline, like the console and ledger
        for key in STEP_KEYS:
            v = _number(fields.get(key))
            if v is not None:
                self._writer.add_scalar(f"experiment/{key}", v, n)
        self._writer.add_scalar("experiment/kept", float(bool(fields.get("kept"))), n)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._writer is None:
            return
        for key, value in metrics.items():
            v = _number(value)
            if v is not None:
                self._writer.add_scalar(key, v, step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        if self._writer is not None:
            for key, value in _flat_scalars(summary).items():
                v = _number(value) if not isinstance(value, str) else None
                if v is not None:
                    self._writer.add_scalar(f"summary/{key}", v, 0)

    def tensorboard_log(self, run_dir: str | Path) -> str | None:
        return str(Path(run_dir) / self.subdir)

    def finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
