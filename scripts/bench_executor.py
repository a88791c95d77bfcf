#!/usr/bin/env python
"""Experiments per second with the serial executor, a local pool of 1 and 2 workers, and Ray.

The same candidates (distinct random chains of valid edits from the start config of a
held-out ``tabular`` instance) are trained by every executor, in batches of
``--batch`` as a campaign with ``agent.batch_size=B`` would send them, on one seed per
round (fresh seeds each round, so the cache never answers). Each executor's workers are
started and warmed before timing; rounds interleave the executors so that a background
load drifts evenly over them. The script checks that every executor returned the same
statuses and metrics.

    .venv/bin/python scripts/bench_executor.py [--n 24] [--batch 2] [--rounds 3] \
        [--out docs/figures/executor.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.core.edits import Candidate, apply_edit, start_candidate, valid_edits
from rsi_rl.core.registry import make_task
from rsi_rl.exec.batch import Executor
from rsi_rl.exec.executor import make_executor
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits


def candidates(task: Any, start: Candidate, n: int, seed: int = 0) -> list[Candidate]:
    """``n`` distinct candidates, each 1-3 random valid edits away from ``start``."""
    rng = np.random.default_rng(seed)
    out: dict[str, Candidate] = {}
    while len(out) < n:
        cand = start
        for _ in range(int(rng.integers(1, 4))):
            names = sorted(name for name, ok in valid_edits(task, cand).items() if ok)
            cand, _ = apply_edit(task, cand, str(rng.choice(names)))
        out.setdefault(cand.hash, cand)
    return list(out.values())


def setups(ray: bool) -> list[tuple[str, dict[str, Any]]]:
    out = [
        ("serial", {"name": "serial"}),
        ("local, workers=1", {"name": "local", "workers": 1}),
        ("local, workers=2", {"name": "local", "workers": 2}),
    ]
    if ray:
        out.append(("ray, workers=2", {"name": "ray", "workers": 2}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="candidates per round")
    ap.add_argument("--batch", type=int, default=2, help="experiments per batch (batch_size)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-ray", action="store_true", help="skip Ray even if installed")
    ap.add_argument("--out", default="docs/figures/executor.json")
    args = ap.parse_args()

    try:
        import ray  # noqa: F401

        have_ray = not args.no_ray
    except ImportError:
        have_ray = False
    task = make_task("tabular")
    instance = task.make_instance(task.heldout_seeds[0])
    start = start_candidate(task, instance.start_config)
    cands = candidates(task, start, args.n)
    limits = SandboxLimits(timeout=task.default_timeout)
    load_start = os.getloadavg()

    runners: dict[str, Runner] = {}
    executors: dict[str, Executor] = {}
    startup: dict[str, float] = {}
    for label, spec in setups(have_ray):
        t0 = time.monotonic()
        runner = Runner(task, limits)
        ex = make_executor(spec)
        ex.bind(runner)
        warm = [start, *cands[: ex.workers]]  # starts every worker's fork server; not timed
        ex.run_many(instance, warm, seed=1)
        runner.run(instance, start, seed=1)
        startup[label] = time.monotonic() - t0
        runners[label], executors[label] = runner, ex
        print(f"{label:<18} ready in {startup[label]:.1f}s", flush=True)

    walls: dict[str, list[float]] = {label: [] for label in executors}
    charged: dict[str, list[float]] = {label: [] for label in executors}
    outcomes: dict[str, list[Any]] = {label: [] for label in executors}
    try:
        for r in range(args.rounds):
            seed = 100 + r
            for label, ex in executors.items():
                t0 = time.monotonic()
                results = []
                for i in range(0, len(cands), args.batch):
                    results += ex.run_many(instance, cands[i : i + args.batch], seed)
                wall = time.monotonic() - t0
                assert not any(res.cached for res in results)
                walls[label].append(wall)
                charged[label].append(sum(res.seconds for res in results))
                outcomes[label].append([(res.status, res.metrics) for res in results])
                print(
                    f"round {r + 1}: {label:<18} {len(results) / wall:5.2f} experiments/s "
                    f"({wall:.1f}s wall, {charged[label][-1]:.1f}s charged)",
                    flush=True,
                )
    finally:
        for label in executors:
            executors[label].close()
            runners[label].close()

    reference = outcomes["serial"]
    rows = []
    base = statistics.median(args.n / w for w in walls["serial"])
    for label, spec in setups(have_ray):
        rates = [args.n / w for w in walls[label]]
        rows.append(
            {
                "executor": label,
                "spec": spec,
                "experiments_per_second_median": round(statistics.median(rates), 3),
                "experiments_per_second": [round(x, 3) for x in rates],
                "speedup_vs_serial": round(statistics.median(rates) / base, 2),
                "mean_experiment_seconds": round(
                    statistics.median(charged[label]) / args.n, 3
                ),  # charged per experiment (concurrent runs share the cores)
                "startup_seconds": round(startup[label], 1),
                "same_results_as_serial": outcomes[label] == reference,
            }
        )
    out = {
        "script": "scripts/bench_executor.py",
        "task": "tabular",
        "instance": instance.id,
        "candidates_per_round": args.n,
        "batch_size": args.batch,
        "rounds": args.rounds,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "loadavg_at_start": [round(x, 2) for x in load_start],
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "ray": have_ray,
        "results": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\n{'executor':<18} {'exp/s':>6} {'speedup':>8} {'s/exp':>6}  same results")
    for row in rows:
        print(
            f"{row['executor']:<18} {row['experiments_per_second_median']:6.2f} "
            f"{row['speedup_vs_serial']:7.2f}x {row['mean_experiment_seconds']:6.3f}  "
            f"{row['same_results_as_serial']}"
        )
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
