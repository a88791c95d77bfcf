"""What ``rsi-rl train`` and ``rsi-rl bench`` hand their tracker at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsi_rl.tracking.base import Tracker


def log_training(tracker: Tracker, run_dir: str | Path, policy: str | Path | None = None) -> None:
    """After ``rsi-rl train``: ``train.json`` as the summary, the eval curve, the policy artifact.

    The training curves themselves reach W&B through TensorBoard sync.
    """
    run_dir = Path(run_dir)
    info = (
        json.loads((run_dir / "train.json").read_text())
        if (run_dir / "train.json").is_file()
        else {}
    )
    evals = info.get("eval") or {}
    steps, returns = evals.get("timesteps") or [], evals.get("mean_return") or []
    if steps:
        tracker.log_table(
            "eval",
            [{"timesteps": s, "mean_return": r} for s, r in zip(steps, returns, strict=False)],
        )
    tracker.log_summary({k: v for k, v in info.items() if k != "eval"})
    name = f"policy-{info.get('task', 'task')}-{info.get('algo', 'agent')}-{run_dir.name}"
    for path in (policy, run_dir / "best_policy.zip"):
        if path is not None and Path(path).is_file():
            stem = Path(path).stem
            tracker.log_artifact(
                path, name if stem == "policy" else f"{name}-{stem}", "model", info
            )


def log_bench(tracker: Tracker, run_dir: str | Path, result: dict[str, Any]) -> None:
    """After ``rsi-rl bench``: per-agent and paired tables (each pair once), plots, ``bench.json``."""
    run_dir = Path(run_dir)
    agents = result.get("agents") or {}
    rows = []
    for name, entry in agents.items():
        row: dict[str, Any] = {"agent": name}
        for key, value in entry.items():
            if isinstance(value, list | tuple) and len(value) == 2:
                row[f"{key}_low"], row[f"{key}_high"] = value
            elif isinstance(value, dict):
                row.update({f"{key}_{k}": v for k, v in value.items()})
            else:
                row[key] = value
        rows.append(row)
    if rows:
        cols = list(dict.fromkeys(c for r in rows for c in r))
        tracker.log_table("bench/agents", rows, cols)
    from rsi_rl.analysis.folders import unordered_pairs

    paired = [  # a_vs_b and b_vs_a are one test: each pair once
        {"pair": k, **v}
        for k, v in unordered_pairs(result.get("paired") or {}).items()
        if isinstance(v, dict)
    ]
    if paired:
        tracker.log_table("bench/paired", paired, list(dict.fromkeys(c for r in paired for c in r)))
    plots = [Path(p) for p in result.get("plots") or []] or sorted(run_dir.glob("*.png"))
    tracker.log_images({f"bench/{p.stem}": p for p in plots if p.is_file()})
    tracker.log_summary({"setup": result.get("setup"), "agents": agents})
    if (run_dir / "bench.json").is_file():
        tracker.log_artifact(run_dir / "bench.json", f"bench-{run_dir.name}", "bench")
