"""The runner of an exported candidate (``rsi-rl export``): train it, score it.

The export folder's ``run.py`` is a stub that calls :func:`main` with its own folder, which
holds ``task.yaml`` (task, instance, seed, files), ``config.yaml`` and the program files.
Without ``--sandbox`` the program runs as a plain ``python <entry>`` in a work folder, with
no limits, after what the sandbox does first (:func:`boot`: seeds, threads); its
predictions are then scored by the task's trusted evaluator. ``--sandbox`` runs it through
rsi_rl's sandbox instead, exactly as the campaign did.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import runpy
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rsi_rl import harness

USAGE = """\
    python run.py                    # train on the task's data, print the validation metric
    python run.py --split test       # score on the test split instead
    python run.py --seed 1 --config config.yaml --workdir work
    python run.py --sandbox          # through rsi_rl's sandbox, as the campaign ran it
"""


def boot(seed: int, threads: int, entry: str) -> None:
    """What the sandbox does before the program starts (seed random, numpy and torch; set
    threads), then run ``entry`` from the current folder as ``__main__``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
        torch.set_num_threads(threads)
    except ImportError:
        pass
    sys.argv = [entry]
    sys.path.insert(0, ".")
    runpy.run_path(entry, run_name="__main__")


def _parser(spec: dict[str, Any], here: Path) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Run the exported training program and score it.\n\n" + USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default=str(here / "config.yaml"), help="the candidate config")
    p.add_argument("--split", default="val", choices=["val", "test"], help="which labels score it")
    p.add_argument("--seed", type=int, default=spec["seed"], help="experiment seed")
    p.add_argument("--instance", type=int, default=spec["instance"], help="task instance seed")
    p.add_argument(
        "--timeout",
        type=float,
        default=spec.get("timeout") or 600.0,
        help="what harness.budget_seconds() returns (enforced only with --sandbox)",
    )
    p.add_argument("--threads", type=int, default=spec.get("threads") or 1, help="threads")
    p.add_argument("--workdir", default=None, help="work folder (default: a fresh ./work)")
    p.add_argument("--sandbox", action="store_true", help="run in rsi_rl's sandbox")
    return p


@dataclass(frozen=True)
class _Job:
    """What one run trains: the task, its instance, the candidate's config and files."""

    task: Any
    instance: Any
    config: dict[str, Any]
    source: dict[str, str]


def _in_sandbox(job: _Job, args: argparse.Namespace) -> int:
    from rsi_rl.core.edits import Candidate
    from rsi_rl.exec.runner import Runner
    from rsi_rl.exec.sandbox import SandboxLimits

    metric = job.task.metric_for(args.split)
    with Runner(job.task, SandboxLimits(timeout=args.timeout, threads=args.threads)) as runner:
        res = runner.run(job.instance, Candidate(job.config, job.source), args.seed, args.split)
    if res.status != "ok":
        print(f"{res.status}: {res.message}\n{res.stderr_tail}", file=sys.stderr)
        return 1
    print(f"{metric}: {res.metrics[metric]:.6f}")
    print(f"seconds: {res.seconds:.2f}")
    return 0


def _plain(job: _Job, args: argparse.Namespace, here: Path) -> int:
    work = Path(args.workdir) if args.workdir else here / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name, text in job.source.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    np.savez(work / harness.INPUTS_FILE, **job.task.child_inputs(job.instance, args.split))
    spec = {"config": job.config, "seed": args.seed, "budget_seconds": args.timeout}
    (work / harness.JOB_FILE).write_text(json.dumps(spec))
    n = str(args.threads)
    env = {
        **os.environ,
        "RSI_RL_WORKDIR": str(work),
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
    }
    call = (
        f"from rsi_rl.export_run import boot; boot({args.seed}, {args.threads}, {job.task.entry!r})"
    )
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", call], cwd=work, env=env)  # no limits here
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        print(f"the program failed with exit code {proc.returncode}", file=sys.stderr)
        return proc.returncode
    pred = work / harness.PREDICTIONS_FILE
    if not pred.exists():
        print("the program exited without harness.submit(predictions)", file=sys.stderr)
        return 1
    metrics = job.task.evaluate(np.load(pred, allow_pickle=False), job.instance, args.split)
    for key, value in metrics.items():
        print(f"{key}: {value:.6f}")
    print(f"seconds: {seconds:.2f}")
    kept = [str(work / name) for name in job.task.artifacts if (work / name).is_file()]
    if kept:
        print(f"artifacts: {', '.join(kept)}")
    return 0


def main(here: str | Path, argv: list[str] | None = None) -> int:
    """Run the export folder ``here``'s candidate as its ``run.py`` command line asks."""
    from rsi_rl.core.registry import make_task

    here = Path(here)
    spec = yaml.safe_load((here / "task.yaml").read_text())
    args = _parser(spec, here).parse_args(argv)
    task = make_task(spec["task"])
    instance = task.make_instance(args.instance)
    config = yaml.safe_load(Path(args.config).read_text())
    source = {name: (here / name).read_text() for name in spec["files"]}
    where = f"{task.name} instance {instance.id}, seed {args.seed}, split {args.split}"
    print(where, file=sys.stderr)
    job = _Job(task, instance, config, source)
    return _in_sandbox(job, args) if args.sandbox else _plain(job, args, here)


__all__ = ["USAGE", "boot", "main"]
