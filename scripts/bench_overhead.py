#!/usr/bin/env python
"""Framework overhead per experiment, and env throughput with 1 and 2 workers.

Overhead: the same candidate program is timed (a) bare, run in-process with runpy in a
warm interpreter that already holds torch (the cheapest way to train it at all), and (b)
through rsi_rl's Runner: scratch directory, inputs, fork-server sandbox with its limits,
trusted evaluation, clean-up. Overhead = (b) - (a), as medians over many experiments,
with distinct seeds so the cache never answers.

Throughput: random valid edits on held-out ``tabular`` instances, with 1 worker process
and with 2 worker processes in parallel (each its own env and sandbox).

    .venv/bin/python scripts/bench_overhead.py [--n 40] [--steps 60] [--out docs/figures/overhead.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import runpy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rsi_rl import harness
from rsi_rl.core.edits import reference_candidate, start_candidate
from rsi_rl.core.registry import make_task
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits


def bare_time(task, instance, cand, seed: int) -> float:
    """Train the candidate in this (warm) process: no sandbox, no fork, no evaluation."""
    import torch

    work = Path(tempfile.mkdtemp(prefix="bare_"))
    try:
        for name, text in cand.source.items():
            (work / name).write_text(text)
        np.savez(work / harness.INPUTS_FILE, **task.child_inputs(instance, "val"))
        (work / harness.JOB_FILE).write_text(
            json.dumps({"config": cand.config, "seed": seed, "budget_seconds": 60})
        )
        os.environ["RSI_RL_WORKDIR"] = str(work)
        harness._job = None
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        runpy.run_path(str(work / task.entry), run_name="__main__")
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        harness._job = None


def overhead(task_name: str, n: int, hardened: bool | None, which: str = "start") -> dict:
    task = make_task(task_name)
    instance = task.make_instance(task.heldout_seeds[0])
    cand = start_candidate(task, instance.start_config)
    if which == "reference":
        ref = reference_candidate(task, instance)
        assert ref is not None, f"{task_name} has no reference"
        cand = ref
    limits = SandboxLimits(timeout=task.default_timeout)
    if hardened is not None and hasattr(limits, "hardened"):
        limits.hardened = hardened  # type: ignore[attr-defined]
    bare, total, run = [], [], []
    with Runner(task, limits) as runner:
        runner.run(instance, cand, 10_000)  # start the fork server; not timed
        for i in range(3):
            bare_time(task, instance, cand, 20_000 + i)  # warm this process too
        for i in range(n):
            bare.append(bare_time(task, instance, cand, i))
            res = runner.run(instance, cand, i)
            assert res.status == "ok", res.message
            total.append(res.seconds)
            run.append(res.run_seconds)
    mb, mt, mr = statistics.median(bare), statistics.median(total), statistics.median(run)
    return {
        "task": task_name,
        "candidate": which,
        "hardened": hardened,
        "experiments": n,
        "bare_train_s": round(mb, 4),
        "sandboxed_total_s": round(mt, 4),
        "sandboxed_program_s": round(mr, 4),
        "overhead_s": round(mt - mb, 4),
        "overhead_pct_of_training": round(100 * (mt - mb) / mb, 1),
    }


def _worker(args: tuple[int, int]) -> tuple[int, float]:
    from rsi_rl.env import ResearchEnv

    worker, steps = args
    env = ResearchEnv(task="tabular", budget=10**6, instances="heldout")
    rng = np.random.default_rng(worker)
    env.reset(seed=worker)
    t0 = time.perf_counter()
    for i in range(steps):
        mask = env.action_masks()
        mask[-1] = False  # never stop
        env.step(int(rng.choice(np.flatnonzero(mask))))
        if (i + 1) % 20 == 0:
            env.reset(seed=worker * 1000 + i)
    dt = time.perf_counter() - t0
    env.close()
    return steps, dt


def throughput(workers: int, steps: int) -> dict:
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(workers) as pool:
        out = pool.map(_worker, [(w, steps) for w in range(workers)])
    wall = time.perf_counter() - t0
    total = sum(s for s, _ in out)
    per_worker = [s / dt for s, dt in out]
    return {
        "workers": workers,
        "steps": total,
        "steps_per_s": round(sum(per_worker), 2),
        "per_worker_steps_per_s": [round(x, 2) for x in per_worker],
        "wall_s_incl_startup": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="experiments per overhead measurement")
    ap.add_argument("--steps", type=int, default=60, help="env steps per worker")
    ap.add_argument("--out", default="docs/figures/overhead.json")
    args = ap.parse_args()
    results: dict = {
        "command": "python scripts/bench_overhead.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, no GPU",
        "date": time.strftime("%Y-%m-%d"),
        "overhead": [],
        "throughput": [],
    }
    modes: list[bool | None] = [None]
    if hasattr(SandboxLimits(), "hardened"):
        modes = [False, True]
    for task, which in (("digits_mlp", "start"), ("tabular", "start"), ("digits_mlp", "reference")):
        for mode in modes:
            r = overhead(task, args.n if which == "start" else max(5, args.n // 3), mode, which)
            print(json.dumps(r), flush=True)
            results["overhead"].append(r)
    for w in (1, 2):
        r = throughput(w, args.steps)
        print(json.dumps(r), flush=True)
        results["throughput"].append(r)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
