"""Seconds from starting a command to its first line of output, median of several runs.

    python scripts/startup_time.py -n 5 -- rsi-rl search task=digits_mlp agent=random budget=2

For ``rsi-rl search`` the first line is the baseline's (the first experiment, done);
``--match REGEX`` times the first line that matches instead (e.g. past a library's banner).
Each run gets its own ``hydra.run.dir`` under a temporary folder unless the command names one.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time


def first_line_seconds(cmd: list[str], match: str = "") -> tuple[float, float]:
    """(seconds to the first line of stdout or stderr that matches ``match``, seconds to
    exit) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    t_first: float | None = None
    for line in proc.stdout:
        if t_first is None and re.search(match, line):
            t_first = time.perf_counter() - t0
        lines.append(line)
    if proc.wait() != 0 or t_first is None:
        sys.exit(f"{' '.join(cmd)} failed or printed no line matching {match!r}:\n{''.join(lines)}")
    return t_first, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs (default 5)")
    parser.add_argument("--match", default="", help="time the first line matching this regex")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the command")
    args = parser.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("give a command after --")
    firsts, totals = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            run = list(cmd)
            if "search" in run and not any(a.startswith("hydra.run.dir=") for a in run):
                run.append(f"hydra.run.dir={tmp}/run{i}")
            first, total = first_line_seconds(run, args.match)
            firsts.append(first)
            totals.append(total)
            print(f"run {i + 1}: first line {first:.2f}s, exit {total:.2f}s", flush=True)
    print(
        f"median of {args.n}: first line {statistics.median(firsts):.2f}s, "
        f"exit {statistics.median(totals):.2f}s"
    )


if __name__ == "__main__":
    main()
