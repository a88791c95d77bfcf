#!/usr/bin/env python
"""Figures of the built-in tasks for docs/tasks.md: start and reference metrics, seconds.

    .venv/bin/python scripts/task_figures.py [--instances 3] [--seeds 2]

digits_mlp: start, reference config, and reference config + code edits, on the first
held-out instances and seeds. tabular: start metric and experiment seconds over held-out
instances.
"""

from __future__ import annotations

import argparse
import json
import statistics

from rsi_rl.core.edits import reference_candidate, start_candidate
from rsi_rl.core.registry import make_task
from rsi_rl.exec.runner import Runner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--tabular-instances", type=int, default=20)
    args = ap.parse_args()
    out: dict = {}
    task = make_task("digits_mlp")
    with Runner(task) as runner:
        for name in ("start", "reference_config", "reference"):
            accs, secs = [], []
            for s in task.heldout_seeds[: args.instances]:
                inst = task.make_instance(s)
                if name == "start":
                    cand = start_candidate(task, inst.start_config)
                elif name == "reference_config":
                    cand = start_candidate(task, inst.reference_config or {})
                else:
                    cand = reference_candidate(task, inst)
                assert cand is not None
                for seed in range(args.seeds):
                    r = runner.run(inst, cand, seed)
                    accs.append(r.metrics["val_acc"])
                    secs.append(r.run_seconds)
            out[f"digits_mlp/{name}"] = {
                "val_acc_mean": round(statistics.mean(accs), 4),
                "val_acc_std": round(statistics.pstdev(accs), 4),
                "program_seconds_median": round(statistics.median(secs), 3),
                "n": len(accs),
            }
            print(name, out[f"digits_mlp/{name}"], flush=True)
    task = make_task("tabular")
    with Runner(task) as runner:
        accs, secs = [], []
        for s in task.heldout_seeds[: args.tabular_instances]:
            inst = task.make_instance(s)
            r = runner.run(inst, start_candidate(task, inst.start_config), 0)
            accs.append(r.metrics["val_acc"])
            secs.append(r.run_seconds)
        out["tabular/start"] = {
            "val_acc_mean": round(statistics.mean(accs), 4),
            "val_acc_min": round(min(accs), 4),
            "val_acc_max": round(max(accs), 4),
            "program_seconds_median": round(statistics.median(secs), 3),
            "program_seconds_max": round(max(secs), 3),
            "n": len(accs),
        }
        print("tabular", out["tabular/start"], flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
