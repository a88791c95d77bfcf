#!/usr/bin/env python
"""Long-run soak: one process runs many campaigns back to back on held-out ``tabular``
instances and samples its memory, open file descriptors and child processes.

    .venv/bin/python scripts/soak.py --experiments 1000 --out docs/figures/soak.json

Pass criteria (printed at the end): resident memory after warm-up grows by less than
the ledger's own size plus a small margin, the count of open file descriptors is flat,
and no process of the sandbox is left behind after ``env.close()``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from rsi_rl.env import ResearchEnv


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def descendants(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent chain reaches ``pid``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out = []
    for p in parents:
        q = p
        while q in parents and q not in (0, 1):
            q = parents[q]
            if q == pid:
                out.append(p)
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=1000)
    ap.add_argument("--budget", type=int, default=25, help="experiments per campaign")
    ap.add_argument("--out", default="docs/figures/soak.json")
    args = ap.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="rsi_rl_soak_"))
    env = ResearchEnv(task="tabular", budget=args.budget, instances="heldout", run_dir=run_dir)
    rng = np.random.default_rng(0)
    samples = []
    done, campaign, statuses = 0, 0, {}
    t0 = time.time()
    while done < args.experiments:
        env.reset(seed=campaign)
        campaign += 1
        finished = False
        while not finished and done < args.experiments:
            mask = env.action_masks()
            mask[-1] = False  # never stop early
            _, _, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(mask))))
            statuses[info["status"]] = statuses.get(info["status"], 0) + 1
            done += 1
            finished = term or trunc
            if done % 50 == 0:
                ledger_mb = sum(p.stat().st_size for p in run_dir.glob("ledger.sqlite*")) / 2**20
                samples.append(
                    {
                        "experiments": done,
                        "seconds": round(time.time() - t0, 1),
                        "rss_mb": round(rss_mb(), 1),
                        "open_fds": open_fds(),
                        "ledger_mb": round(ledger_mb, 2),
                        "sandbox_processes": len(descendants(os.getpid())),
                    }
                )
                print(json.dumps(samples[-1]), flush=True)
    zygote = env.runner.sandbox._proc.pid if env.runner.sandbox._proc else None
    env.close()
    time.sleep(0.5)
    left = descendants(os.getpid())
    warm = samples[min(2, len(samples) - 1)]
    last = samples[-1]
    result = {
        "command": f"python scripts/soak.py --experiments {args.experiments} --budget {args.budget}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, no GPU",
        "date": time.strftime("%Y-%m-%d"),
        "experiments": done,
        "campaigns": campaign,
        "statuses": statuses,
        "wall_seconds": round(time.time() - t0, 1),
        "rss_mb_after_warmup": warm["rss_mb"],
        "rss_mb_at_end": last["rss_mb"],
        "rss_growth_mb": round(last["rss_mb"] - warm["rss_mb"], 1),
        "ledger_mb_at_end": last["ledger_mb"],
        "open_fds_after_warmup": warm["open_fds"],
        "open_fds_at_end": last["open_fds"],
        "max_rss_mb_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "processes_left_after_close": left,
        "fork_server_pid": zygote,
        "samples": samples,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
