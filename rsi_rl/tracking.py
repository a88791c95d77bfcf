"""Trackers: where a run's progress goes besides the ledger (a layer; the core never imports one).

``logger=none`` keeps only the ledger; ``logger=csv`` also writes ``progress.csv`` (one
row per experiment: best-so-far, last metric, reward). Trackers are closed in ``finally``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class Tracker:
    """No-op tracker; subclasses override what they record."""

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Called once with the run directory and the resolved config."""

    def log_experiment(self, record: dict[str, Any], info: dict[str, Any]) -> None:
        """Called after every experiment."""

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Called once at the end of a successful run."""

    def finish(self) -> None:
        """Always called (in ``finally``)."""


class NullTracker(Tracker):
    """``logger=none``: nothing beyond the ledger."""


class CSVTracker(Tracker):
    """``logger=csv``: ``progress.csv`` in the run directory."""

    FIELDS = ("step", "kind", "status", "metric", "kept", "incumbent_metric", "best_metric", "reward", "seconds", "seconds_used")

    def __init__(self, filename: str = "progress.csv"):
        self.filename = filename
        self._fh: Any = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        self._fh = open(Path(run_dir) / self.filename, "w", newline="")
        self._w = csv.DictWriter(self._fh, fieldnames=self.FIELDS, extrasaction="ignore")
        self._w.writeheader()

    def log_experiment(self, record: dict[str, Any], info: dict[str, Any]) -> None:
        if self._fh is not None:
            self._w.writerow({**record, "seconds_used": info.get("seconds_used")})
            self._fh.flush()

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
