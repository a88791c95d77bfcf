"""The harness API: the only part of rsi_rl an editable training program may use.

A training program runs inside the sandbox, in a scratch directory the trusted parent
prepared. It reads its config, seed, data and time budget through this module, logs
training diagnostics, and submits its predictions on the evaluation inputs. It never sees
validation or test labels and never computes its own score: the parent does that.

Example (the shape of every built-in ``train.py``)::

    from rsi_rl import harness
    cfg = harness.config()          # the candidate's config (a plain dict)
    data = harness.data()           # {"x_train", "y_train", "x_eval", ...} numpy arrays
    ...train...
    harness.log(step=step, train_loss=loss)
    harness.report(epoch, probe_loss)  # optional: lets a pruner stop a hopeless run early
    harness.submit(probabilities)   # shape (len(data["x_eval"]), n_classes)

This module imports only the standard library and numpy.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

JOB_FILE = "job.json"
INPUTS_FILE = "inputs.npz"
PREDICTIONS_FILE = "predictions.npy"
LOG_FILE = "log.jsonl"
REPORTS_FILE = "reports.jsonl"

_job: dict[str, Any] | None = None
#: when this run's clock started (None: not yet); see :func:`start_clock`
_t0: float | None = None
_monotonic = time.monotonic


def start_clock() -> None:
    """Start (or restart) this run's clock, from which :func:`time_left` counts.

    Called by the sandbox right before the training program runs. The sandbox's fork
    server imports this module once, long before any program, so a clock started at import
    would count the server's whole life. A program run outside the sandbox, or by a sandbox
    that does not call this, has its clock started by its first read of the job (its config,
    seed or budget).
    """
    global _t0
    _t0 = _monotonic()


def elapsed() -> float:
    """Seconds since this run's clock started (see :func:`start_clock`)."""
    if _t0 is None:
        start_clock()
    assert _t0 is not None
    return max(0.0, _monotonic() - _t0)


def _load_job() -> dict[str, Any]:
    global _job
    if _t0 is None:
        start_clock()
    if _job is None:
        path = Path(os.environ.get("RSI_RL_WORKDIR", ".")) / JOB_FILE
        if not path.exists():
            raise RuntimeError(
                f"rsi_rl.harness: no {JOB_FILE} in {path.parent}; this program is meant to run "
                "inside the rsi_rl sandbox (try `rsi-rl try task=...`)"
            )
        _job = json.loads(path.read_text())
    return _job


def _workdir() -> Path:
    return Path(os.environ.get("RSI_RL_WORKDIR", "."))


def config() -> dict[str, Any]:
    """The candidate's config: a plain dict of the task's knobs and settings."""
    return dict(_load_job()["config"])


def seed() -> int:
    """The experiment seed (the sandbox already seeded ``random``, numpy and torch with it)."""
    return int(_load_job()["seed"])


def device() -> str:
    """Where to train: ``"cuda"`` when the sandbox gave this run a GPU (``sandbox.devices``),
    else ``"cpu"``. The run sees its one GPU as ``cuda:0`` (``CUDA_VISIBLE_DEVICES``).

    Example:
        >>> model = model.to(harness.device())  # doctest: +SKIP
    """
    return "cuda" if os.environ.get("RSI_RL_DEVICE") == "cuda" else "cpu"


def budget_seconds() -> float:
    """Wall-clock seconds this run may take before the parent kills it."""
    return float(_load_job()["budget_seconds"])


def time_left() -> float:
    """Seconds left before the parent's wall-clock limit (negative once it has passed).

    Counted from the start of this program (:func:`start_clock`), so a program can size its
    training to the budget, e.g. ``while harness.time_left() > 5: ...``.
    """
    return budget_seconds() - elapsed()


def data() -> dict[str, np.ndarray]:
    """The task's inputs: training data with labels and evaluation inputs without."""
    with np.load(_workdir() / INPUTS_FILE, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def log(**metrics: float) -> None:
    """Record training diagnostics (e.g. ``step``, ``train_loss``, ``train_acc``).

    They feed the observation (loss ratio, still-improving slope, divergence) but never
    the reward.
    """
    row = {key: float(value) for key, value in metrics.items()}
    with open(_workdir() / LOG_FILE, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def report(step: int, value: float, total: int | None = None) -> None:
    """Report an intermediate value the program computes itself, e.g. the loss on a
    held-in slice of its training data after each epoch; lower is better unless the task
    says otherwise (``report_direction``).

    The parent may use these values to stop a run that is clearly worse than earlier runs
    at the same ``step`` (pruning, ``env.pruner``); they are never the metric. Report
    at steps that mean the same for every candidate (epochs, or every 50 optimiser
    steps), in increasing order: a step not above the last one reported is ignored.

    ``total``, the steps this run makes in all (e.g. its configured epochs), lets the
    parent stop a run whose pace says it cannot finish within its time limit, and judge
    a long run only once it made a share of its own length.

    Example:
        >>> harness.report(epoch + 1, probe_loss, total=epochs)  # doctest: +SKIP
    """
    row: dict[str, Any] = {"step": int(step), "value": float(value)}
    if total is not None:
        row["total"] = int(total)
    with open(_workdir() / REPORTS_FILE, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def submit(predictions: Any) -> None:
    """Hand the predictions on ``data()["x_eval"]`` to the trusted evaluator.

    Accepts anything ``numpy.asarray`` accepts (a torch tensor: call ``.numpy()`` first).
    """
    arr = np.asarray(predictions)
    if arr.dtype == object:
        raise TypeError("harness.submit: predictions must be numeric, not objects")
    np.save(_workdir() / PREDICTIONS_FILE, arr, allow_pickle=False)
