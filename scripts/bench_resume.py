#!/usr/bin/env python
"""Resume timing: kill a campaign, ``rsi-rl search resume=RUN_DIR``, compare with no kill.

Per repetition (campaign seed = repetition):

1. *uninterrupted*: ``rsi-rl search task=tabular agent=greedy budget=K`` runs to the end;
   the script polls the ledger and notes when each experiment lands.
2. *killed*: the same command in a fresh run directory, SIGKILLed (its whole process group,
   as a scheduler or the OOM killer would) as soon as the ledger holds N experiments.
3. *resumed*: ``rsi-rl search resume=RUN_DIR`` on the killed run: time until its first new
   experiment lands, and until it exits.

It checks that the resumed ledger matches the uninterrupted one (same candidates, one row
each, no duplicates) and writes the timings to a JSON file.

    .venv/bin/python scripts/bench_resume.py [--budget 40] [--kill-after 20] [--reps 3]
        [--agent greedy] [--out docs/figures/resume.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

POLL = 0.02  # seconds between ledger polls


def experiments(run_dir: Path) -> list[tuple[str, str]]:
    """(kind, candidate) of the ledger's experiments after the baseline, in order."""
    path = run_dir / "ledger.sqlite"
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = db.execute(
                "SELECT kind, candidate FROM experiments WHERE kind != 'baseline' ORDER BY id"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.OperationalError:  # the table is not there yet
        return []
    return [(str(k), str(c)) for k, c in rows]


def command(args: argparse.Namespace, seed: int, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rsi_rl.cli",
        "search",
        f"task={args.task}",
        f"agent={args.agent}",
        f"budget={args.budget}",
        f"seed={seed}",
        "test=false",
        "quiet=true",
        f"hydra.run.dir={run_dir}",
    ]


def watch(argv: list[str], run_dir: Path, cwd: Path, kill_at: int | None = None) -> dict[str, Any]:
    """Run ``argv``; note when the ledger's experiment count grows; SIGKILL at ``kill_at``."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    start = len(experiments(run_dir))
    landed: list[float] = []  # seconds since start at which experiment start+i+1 landed
    killed = False
    while proc.poll() is None:
        n = len(experiments(run_dir))
        now = time.monotonic() - t0
        while start + len(landed) < n:
            landed.append(now)
        if kill_at is not None and n >= kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(POLL)
    proc.wait()
    total = time.monotonic() - t0
    n = len(experiments(run_dir))
    while start + len(landed) < n:
        landed.append(total)
    err = proc.stderr.read() if proc.stderr else ""
    if not killed and proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err}")
    return {"seconds": total, "landed": landed, "before": start, "after": n, "killed": killed}


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="tabular")
    ap.add_argument("--agent", default="greedy")
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--kill-after", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="docs/figures/resume.json")
    args = ap.parse_args()
    if not 0 < args.kill_after < args.budget:
        raise SystemExit("need 0 < --kill-after < --budget")
    root = Path(tempfile.mkdtemp(prefix="rsi_rl_bench_resume_"))
    reps = []
    for seed in range(args.reps):
        full_dir, kill_dir = root / f"full{seed}", root / f"killed{seed}"
        full = watch(command(args, seed, full_dir), full_dir, root)
        killed = watch(command(args, seed, kill_dir), kill_dir, root, kill_at=args.kill_after)
        resumed = watch(
            [sys.executable, "-m", "rsi_rl.cli", "search", f"resume={kill_dir}"], kill_dir, root
        )
        n_kill = killed["after"]
        # the uninterrupted run's time per experiment around the kill point, for comparison
        per_exp = (full["landed"][-1] - full["landed"][0]) / max(1, len(full["landed"]) - 1)
        rep = {
            "seed": seed,
            "uninterrupted_seconds": round(full["seconds"], 3),
            "uninterrupted_first_experiment_seconds": round(full["landed"][0], 3),
            "uninterrupted_seconds_per_experiment": round(per_exp, 3),
            "uninterrupted_remaining_seconds": round(
                full["seconds"] - full["landed"][n_kill - 1], 3
            ),
            "killed_after_experiments": n_kill,
            "killed_at_seconds": round(killed["seconds"], 3),
            "resume_first_new_experiment_seconds": round(resumed["landed"][0], 3),
            "resume_total_seconds": round(resumed["seconds"], 3),
            "killed_plus_resume_seconds": round(killed["seconds"] + resumed["seconds"], 3),
            "same_experiments_as_uninterrupted": experiments(kill_dir) == experiments(full_dir),
            "ledger_experiments": resumed["after"],
        }
        reps.append(rep)
        print(json.dumps(rep), flush=True)
    keys = [k for k in reps[0] if k.endswith("seconds") or k.endswith("per_experiment")]
    out = {
        "command": f"rsi-rl search task={args.task} agent={args.agent} budget={args.budget} "
        "test=false quiet=true seed=<rep>; SIGKILL of the process group after "
        f"{args.kill_after} experiments; rsi-rl search resume=RUN_DIR",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "reps": reps,
        "median": {k: median([r[k] for r in reps]) for k in keys},
        "all_resumes_match": all(r["same_experiments_as_uninterrupted"] for r in reps),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["median"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
