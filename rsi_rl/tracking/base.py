"""The tracker interface, the no-op and CSV trackers, and how a command starts one.

A tracker listens to a run (see :mod:`rsi_rl.tracking`); :func:`tracked` starts the one of
``cfg.logger`` and always finishes it. The per-experiment scalars and the columns of the
experiments table come from :class:`~rsi_rl.core.record.ExperimentRecord`
(:data:`~rsi_rl.core.record.STEP_KEYS`, :data:`~rsi_rl.core.record.TABLE_FIELDS`,
:data:`~rsi_rl.core.record.CSV_FIELDS`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rsi_rl.core.errors import ConfigError, user_message
from rsi_rl.core.record import (
    BOOL_FIELDS,
    CSV_FIELDS,
    LEDGER_COLUMNS,
    TABLE_FIELDS,
    RecordLike,
    as_dict,
)

#: fields of the experiments table shown as numbers (``None`` when not finite)
_REAL_FIELDS = frozenset(name for name, sql in LEDGER_COLUMNS if sql == "REAL")


class Tracker:
    """No-op tracker; subclasses override what they record."""

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Called once with the run directory and the resolved config."""

    def log_experiment(self, record: RecordLike, info: dict[str, Any]) -> None:
        """Called after every experiment with its record (an
        :class:`~rsi_rl.core.record.ExperimentRecord` or its dict) and the env's ``info``."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record scalars (e.g. ``{"train/episode_return": 0.3}``) at an optional step."""

    def log_table(
        self, name: str, rows: list[dict[str, Any]], columns: list[str] | None = None
    ) -> None:
        """Record a table: one dict per row; ``columns`` fixes their order (default: first row's keys)."""

    def log_images(self, images: Mapping[str, str | Path]) -> None:
        """Record image files (PNG plots) under names."""

    def log_artifact(
        self,
        path: str | Path,
        name: str,
        type: str = "result",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Record a file or folder as a versioned artifact."""

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Called once at the end of a successful run."""

    def tensorboard_log(self, run_dir: str | Path) -> str | None:
        """Folder where SB3 should write TensorBoard logs for this tracker (``None``: none)."""
        return None

    def finish(self) -> None:
        """Always called (in ``finally``)."""


class NullTracker(Tracker):
    """``logger=none``: nothing beyond the ledger."""


class CSVTracker(Tracker):
    """``logger=csv``: ``progress.csv`` in the run directory."""

    #: the columns of ``progress.csv``
    FIELDS = CSV_FIELDS

    def __init__(self, filename: str = "progress.csv"):
        self.filename = filename
        self._fh: Any = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        self._fh = open(Path(run_dir) / self.filename, "w", newline="")  # noqa: SIM115 - open until finish()
        self._w = csv.DictWriter(self._fh, fieldnames=self.FIELDS, extrasaction="ignore")
        self._w.writeheader()

    def log_experiment(self, record: RecordLike, info: dict[str, Any]) -> None:
        if self._fh is not None:
            self._w.writerow({**as_dict(record), "seconds_used": info.get("seconds_used")})
            self._fh.flush()

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --------------------------------------------------------------------------- helpers
def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def experiment_row(record: RecordLike, max_diff: int = 4000) -> dict[str, Any]:
    """One row of the experiments table from a record or ledger row (diff truncated).

    Its columns are :data:`~rsi_rl.core.record.TABLE_COLUMNS`: numbers as floats (``None``
    when missing or not finite), flags as bools.
    """
    fields = as_dict(record)
    row: dict[str, Any] = {}
    for name, column in TABLE_FIELDS:
        value = fields.get(name)
        if name == "diff":
            value = str(value or "")
            if len(value) > max_diff:
                value = value[:max_diff] + f"\n... ({len(value) - max_diff} more characters)"
        elif name in _REAL_FIELDS:
            value = _number(value)
        elif name in BOOL_FIELDS:
            value = bool(value)
        row[column] = value
    return row


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _flat_scalars(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_scalars(value, f"{name}/"))
        elif isinstance(value, bool | int | float | str) or value is None:
            out[name] = value
    return out


# --------------------------------------------------------------------------- command helpers
def make_tracker(logger_cfg: Any) -> Tracker:
    """The tracker of a ``logger`` config group (``None``: :class:`NullTracker`)."""
    if logger_cfg is None:
        return NullTracker()
    from hydra.utils import instantiate

    try:
        tracker = instantiate(logger_cfg)
    except ConfigError:
        raise
    except Exception as exc:  # Hydra wraps errors raised in constructors
        cause = exc.__cause__ if isinstance(exc.__cause__, ConfigError) else None
        if cause is not None:
            raise cause from None
        raise ConfigError(f"logger config failed: {user_message(exc)}") from exc
    if not isinstance(tracker, Tracker):
        raise ConfigError(
            f"logger._target_ {logger_cfg.get('_target_')!r} is not an rsi_rl Tracker"
        )
    return tracker


@contextmanager
def tracked(cfg: Any, run_dir: str | Path) -> Iterator[Tracker]:
    """Start the tracker of ``cfg.logger`` with the resolved ``cfg``; always finish it.

    Example (a Hydra job)::

        with tracked(cfg, run_dir) as tracker:
            result = work(cfg, run_dir)
            tracker.log_summary(result)
    """
    from omegaconf import OmegaConf

    tracker = make_tracker(cfg.get("logger"))
    config = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    tracker.start(Path(run_dir), config)  # type: ignore[arg-type]
    try:
        yield tracker
    finally:
        tracker.finish()
