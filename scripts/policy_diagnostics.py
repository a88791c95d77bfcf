"""How a saved policy spends its steps on each family: reruns, no-ops and masked mass.

For each task, runs the policy (deterministic, tabu, as ``agent=policy`` acts) on the
first ``--instances`` validation instances at K = ``--budget`` and reports:

* ``rerun_share``: the share of experiments that rerun the incumbent (``reevaluate``);
* ``noop_share``: the share of experiments whose candidate was already evaluated in the
  campaign (a no-op: nothing new is learned);
* ``masked_mass``: the mean probability the policy's *unmasked* softmax puts on actions the
  env masks (0 when the policy only wants valid edits);
* ``top_valid``: the share of steps whose unmasked top choice is a valid action.

    .venv/bin/python scripts/policy_diagnostics.py policies/transfer/all.zip \
        --tasks hpobench nb201 synth_smooth synth_rugged --instances 20
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np


def diagnose(path: str, task_name: str, instances: int, budget: int) -> dict[str, Any]:
    """The diagnostics of the policy at ``path`` on ``instances`` validation instances."""
    from rsi_rl.agents.sb3 import PolicyAgent, action_scores
    from rsi_rl.builder import make_env
    from rsi_rl.core.registry import make_task
    from rsi_rl.search import run_campaign

    task = make_task(task_name)
    val = getattr(task, "val_seeds", None)
    seeds = list(val if val is not None else task.heldout_seeds)[:instances]
    masked: list[float] = []
    top_valid: list[bool] = []

    class Probe(PolicyAgent):
        def ask(self, view: Any, n: int) -> list[Any]:
            mask = np.asarray(view.action_masks(), bool)
            scores = action_scores(self.model, view.observation())
            z = np.exp(scores - scores.max())
            p = z / z.sum()
            masked.append(float(p[~mask].sum()))
            top_valid.append(bool(mask[int(np.argmax(scores))]))
            return super().ask(view, n)

    env = make_env(task, budget, seeds, {"executor": "serial"})
    kinds: list[str] = []
    noops = 0
    try:
        for i, inst in enumerate(seeds):
            seen: set[str] = set()

            def on_exp(record: dict[str, Any], info: dict[str, Any], seen: set[str] = seen) -> None:
                nonlocal noops
                if record.get("kind") == "baseline":
                    seen.add(str(record.get("candidate")))
                    return
                if record.get("split") != "val":
                    return
                kinds.append(str(record.get("kind")))
                cand = str(record.get("candidate"))
                if record.get("kind") != "reevaluate" and cand in seen:
                    noops += 1
                seen.add(cand)

            run_campaign(env, Probe(path), seed=i, instance=inst, test=False, on_experiment=on_exp)
    finally:
        env.close()
    n = max(1, len(kinds))
    return {
        "task": task_name,
        "campaigns": len(seeds),
        "experiments": len(kinds),
        "rerun_share": round(kinds.count("reevaluate") / n, 4),
        "noop_share": round(noops / n, 4),
        "masked_mass": round(float(np.mean(masked)), 4) if masked else None,
        "top_valid": round(float(np.mean(top_valid)), 4) if top_valid else None,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy")
    parser.add_argument(
        "--tasks", nargs="+", default=["hpobench", "nb201", "synth_smooth", "synth_rugged"]
    )
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = [diagnose(args.policy, t, args.instances, args.budget) for t in args.tasks]
    for row in rows:
        print(json.dumps(row))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
