"""Benchmark the sandbox: per-experiment overhead (hardened vs plain) and kill latency.

    .venv/bin/python scripts/bench_sandbox.py [--runs 20] [--kills 5]

1. Overhead: a trivial program (reads its inputs, submits predictions) run ``--runs`` times
   through :class:`rsi_rl.exec.runner.Runner` in each mode; prints the median wall-clock seconds
   per experiment (scratch dir, fork, run, evaluation) and of the sandboxed run alone.
2. Timeout to group gone: a program that forks 8 sleeping children (one detached with
   setsid) and sleeps past a 1 s limit; prints how long after the limit the parent got the
   ``exited`` event (everything killed, cgroup swept), then checks /proc for survivors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
import uuid
from pathlib import Path

from rsi_rl.core.edits import Candidate
from rsi_rl.core.registry import make_task
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits

TRIVIAL = """
import numpy as np
from rsi_rl import harness
n = len(harness.data()["x_eval"])
harness.submit(np.full((n, 10), 0.1, dtype=np.float32))
"""

SLEEPER = """
import os, time
for i in range(8):
    if os.fork() == 0:
        if i == 0:
            os.setsid()
        os.execv("/bin/sh", ["sh", "-c", "sleep 60; : MARKER"])
time.sleep(60)
"""


def survivors(marker: str) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                n += marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--kills", type=int, default=5)
    args = ap.parse_args()
    task = make_task("digits_mlp")
    inst = task.make_instance(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, uid {os.getuid()}"
    )
    for hardened in (False, True):
        mode = "hardened" if hardened else "plain"
        with Runner(task, SandboxLimits(timeout=30, hardened=hardened)) as runner:
            walls, runs = [], []
            for i in range(args.runs + 1):
                cand = Candidate({"i": i}, {"train.py": TRIVIAL})  # distinct: no cache hits
                res = runner.run(inst, cand, 0)
                assert res.status == "ok", res.message
                if i:  # the first run warms the fork server's page cache
                    walls.append(res.seconds)
                    runs.append(res.run_seconds)
            print(
                f"{mode:>8}: per experiment median {statistics.median(walls) * 1000:.0f} ms "
                f"(sandboxed run alone {statistics.median(runs) * 1000:.0f} ms; "
                f"min {min(walls) * 1000:.0f}, max {max(walls) * 1000:.0f} ms; n={len(walls)})"
            )
            lat, left = [], []
            for i in range(args.kills):
                marker = f"BENCH_{uuid.uuid4().hex[:8]}"
                cand = Candidate({"k": i}, {"train.py": SLEEPER.replace("MARKER", marker)})
                limits = SandboxLimits(timeout=1.0, hardened=hardened)
                t0 = time.monotonic()
                res = runner.sandbox.run(_prepare(runner, inst, cand), "train.py", 0, limits)
                lat.append(time.monotonic() - t0 - 1.0)
                assert res.timed_out
                time.sleep(0.2)
                left.append(survivors(marker))
                _kill(marker)
            print(
                f"{mode:>8}: timeout -> group gone median {statistics.median(lat) * 1000:.0f} ms "
                f"(max {max(lat) * 1000:.0f} ms); survivors 0.2 s later: {left}"
            )


def _prepare(runner: Runner, inst, cand) -> Path:
    import json

    import numpy as np

    from rsi_rl import harness

    work = Path(runner.scratch_root) / f"bench_{cand.hash[:8]}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "train.py").write_text(cand.source["train.py"])
    np.savez(work / harness.INPUTS_FILE, **runner.task.child_inputs(inst, "val"))
    (work / harness.JOB_FILE).write_text(json.dumps({"config": {}, "seed": 0, "budget_seconds": 1}))
    return work


def _kill(marker: str) -> None:
    """Clean up what a failed defence left (plain mode leaves the detached child)."""
    import signal

    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    main()
