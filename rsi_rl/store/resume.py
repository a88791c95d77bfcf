"""Resume a killed campaign from its run directory, losing and repeating nothing.

The ledger commits every finished experiment before the next starts. To resume, the
campaign is replayed from the start with the same seed and agent: every experiment the
ledger holds is answered from the runner's cache (prefilled from the ledger), so the agent
sees exactly the observations it saw before and makes the same choices, and the ledger
skips rows it already has. The first experiment the ledger lacks (the one that was running
when the process died) is trained for real, and the campaign goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsi_rl.core.errors import ConfigError
from rsi_rl.core.record import ExperimentRecord
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.exec.runner import Runner
from rsi_rl.store.ledger import read_ledger


def ledger_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of the run directory's ledger, or a one-line error naming what is missing."""
    path = Path(run_dir)
    if not (path / "ledger.sqlite").exists():
        raise ConfigError(
            f"resume={run_dir}: no ledger.sqlite there; pass the run directory of a search"
        )
    return read_ledger(path)


def prefill(runner: Runner, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Put the ledger's experiments into the runner's cache. Returns (campaign, count)."""
    records = [ExperimentRecord.from_row(row) for row in rows]
    campaigns = [r.campaign for r in records if r.campaign is not None]
    campaign = max(campaigns) if campaigns else 1
    n = 0
    for rec in records:
        seed, instance, candidate = rec.seed, rec.instance, rec.candidate
        if rec.campaign != campaign or rec.status == "invalid":
            continue
        if seed is None or instance is None or candidate is None:
            continue  # not a run of a candidate (a refused action)
        result = ExperimentResult(**rec.result_fields())
        key = runner.cache_key(instance, candidate, seed, rec.split or "val")
        runner.remember(key, result)
        n += 1
    return campaign, n
