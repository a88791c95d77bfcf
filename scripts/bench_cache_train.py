#!/usr/bin/env python
"""Result-cache hit rate during meta-training (``rsi-rl train``), with and without a shared file.

Runs the same short ``rsi-rl train`` (MaskablePPO on ``tabular``, SubprocVecEnv workers)
in four settings and reads the cache figures ``train.json`` reports (hits / experiments,
summed over the workers):

- ``fresh``: every campaign on a new instance and seed (the default): each worker keeps an
  in-memory cache, which answers only repeats within a campaign;
- ``pool``: ``train_instances=N`` (each instance on a fixed seed): revisits hit the worker's
  own in-memory cache;
- ``pool_shared``: the same with ``cache=FILE`` (a new SQLite file): workers answer each
  other's experiments;
- ``pool_shared_warm``: the same command again on the now-filled file (a second run).

    .venv/bin/python scripts/bench_cache_train.py [--steps 600] [--n-steps 150] [--n-envs 2] [--pool 8]
        [--out docs/figures/cache_train.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--n-steps", type=int, default=150, help="PPO rollout length per env")
    ap.add_argument("--n-envs", type=int, default=2)
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--pool", type=int, default=8)
    ap.add_argument("--out", default="docs/figures/cache_train.json")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rsi_rl_bench_cache_"))
    cache = root / "cache.sqlite"
    base = [
        "task=tabular",
        "trainer=maskable_ppo",
        f"trainer.hyperparams.n_steps={args.n_steps}",
        "trainer.hyperparams.batch_size=100",
        f"total_steps={args.steps}",
        f"n_envs={args.n_envs}",
        f"budget={args.budget}",
        "seed=0",
        "eval.freq=0",
        "checkpoint_freq=0",
        "progress=false",
        "tensorboard=false",
    ]
    settings = {
        "fresh": [],
        "pool": [f"train_instances={args.pool}"],
        "pool_shared": [f"train_instances={args.pool}", f"cache={cache}"],
        "pool_shared_warm": [f"train_instances={args.pool}", f"cache={cache}"],
    }
    results = {}
    for name, extra in settings.items():
        run_dir = root / name
        argv = [sys.executable, "-m", "rsi_rl.cli", "train", *base, *extra]
        t0 = time.monotonic()
        p = subprocess.run(
            [*argv, f"hydra.run.dir={run_dir}"], cwd=root, capture_output=True, text=True
        )
        seconds = time.monotonic() - t0
        if p.returncode != 0:
            raise SystemExit(f"{name} failed:\n{p.stderr}")
        info = json.loads((run_dir / "train.json").read_text())
        results[name] = {
            "overrides": " ".join(extra).replace(str(cache), "FILE"),
            "steps": info["steps"],
            "wall_seconds": round(seconds, 1),
            "train_seconds": info["train_seconds"],
            "steps_per_second": round(info["steps"] / info["train_seconds"], 2),
            **info["cache"]["train"],
        }
        print(name, json.dumps(results[name]), flush=True)
    out = {
        "command": "rsi-rl train " + " ".join(base) + " <overrides>",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
