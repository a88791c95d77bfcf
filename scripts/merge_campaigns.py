"""Summarise the campaigns of several ``rsi-rl bench`` jobs as one bench.

A thin command over :func:`rsi_rl.analysis.folders.merge_benches`: each source is a bench
folder (its campaigns.jsonl, oracle.jsonl and bench.json's setup) or a campaigns.jsonl
file, optionally followed by the agents to take (``:agent1,agent2``; ``agent=label``
takes an agent under another name, to set variants of one agent side by side). It prints
the bench table and writes the merged bench.json. ``--budget`` is needed only for files
without a bench.json beside them. Two bench folders, ``tpe`` of the second under its own
name::

    .venv/bin/python scripts/merge_campaigns.py --out merged.json \\
        runs/bench/2026-01-01/12-00-00 runs/bench/2026-01-02/09-00-00:tpe=tpe_new
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from rsi_rl.analysis.folders import merge_benches, write_bench_json
    from rsi_rl.analysis.tables import format_table
    from rsi_rl.core.errors import RsiRlError

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument(
        "sources", nargs="+", help="bench folder or FILE.jsonl, then :agent1,agent2=label"
    )
    ap.add_argument("--budget", type=int, help="K of the jobs (default: their bench.json's)")
    ap.add_argument("--minimize", action="store_true", help="the metric is minimised")
    ap.add_argument("--out", type=Path, help="write the merged bench.json here")
    args = ap.parse_args(argv)
    try:
        result = merge_benches(
            args.sources, budget=args.budget, maximize=False if args.minimize else None
        )
    except RsiRlError as exc:
        print(f"merge_campaigns: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(format_table(result))
    if args.out:
        write_bench_json(args.out, result)


if __name__ == "__main__":
    main()
