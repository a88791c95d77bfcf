"""Paired tests of final incumbents re-measured on fresh seeds, across bench folders.

For tasks that train a program there is no true value: a bench run with
``remeasure_seeds=N`` re-measures each campaign's final incumbent on N fresh seeds
(``final_fresh`` in its ``campaigns.jsonl``). This command pairs the campaigns of two
agents by ``(instance, seed)`` (the same instance and evaluation seed), across one or
more bench folders, and prints per comparison the mean of each side, the mean paired
difference in metric units, wins/ties/losses, the two-sided Wilcoxon p and Holm's
correction over the comparisons given::

    .venv/bin/python scripts/compare_fresh.py DIR_TPE DIR_ACQ DIR_TPE_B \\
        --compare acquisition:tpe tpe_b:tpe
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def load(folders: list[Path]) -> dict[str, dict[tuple[int, int], float]]:
    """agent -> (instance, seed) -> final incumbent's fresh-seed mean, from the folders'
    ``campaigns.jsonl`` (or ``campaigns.jsonl.gz``; campaigns without a re-measurement
    are left out)."""
    out: dict[str, dict[tuple[int, int], float]] = {}
    for folder in folders:
        for row in map(json.loads, _lines(folder)):
            if row.get("final_fresh") is not None:
                key = (int(row["instance"]), int(row["seed"]))
                out.setdefault(row["agent"], {})[key] = float(row["final_fresh"])
    return out


def _lines(folder: Path) -> list[str]:
    plain = folder / "campaigns.jsonl"
    if plain.is_file():
        return plain.read_text().splitlines()
    with gzip.open(folder / "campaigns.jsonl.gz", "rt") as fh:
        return fh.read().splitlines()


def compare(
    data: dict[str, dict[tuple[int, int], float]],
    pairs: list[tuple[str, str]],
    maximize: bool = True,
) -> list[dict[str, Any]]:
    """One row per ``(a, b)`` over their common pairs: each side's mean, the mean paired
    difference ``a - b`` (metric units), wins/ties/losses of ``a`` (by the metric's
    direction), the Wilcoxon p (:func:`rsi_rl.analysis.stats.paired_test`) and Holm's."""
    from rsi_rl.analysis.stats import holm_correct, paired_test

    sign = -1.0 if maximize else 1.0  # paired_test counts lower as a win
    rows, tests = [], []
    for a, b in pairs:
        for name in (a, b):
            if name not in data:
                raise SystemExit(f"no re-measured campaigns of agent {name!r}; have {sorted(data)}")
        keys = sorted(set(data[a]) & set(data[b]))
        va, vb = np.array([data[a][k] for k in keys]), np.array([data[b][k] for k in keys])
        tests.append(paired_test(sign * va, sign * vb, sd=True))
        rows.append({"a": a, "b": b, "mean_a": float(va.mean()), "mean_b": float(vb.mean())})
    for row, t in zip(rows, holm_correct(tests), strict=True):
        row |= {
            "n": t.n,
            "diff": sign * t.mean_diff,
            "sd": t.sd_diff or 0.0,
            "wtl": (t.wins, t.ties, t.losses),
            "p": t.p_value,
            "p_holm": t.p_holm,
        }
    return rows


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="bench folders (campaigns.jsonl)")
    ap.add_argument("--compare", nargs="+", required=True, help="A:B, as many as wanted")
    ap.add_argument("--minimize", action="store_true", help="the metric is minimised")
    args = ap.parse_args(argv)
    pairs = [tuple(c.split(":", 1)) for c in args.compare]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit("--compare takes A:B pairs of agent names, e.g. acquisition:tpe")
    rows = compare(load(args.folders), [(p[0], p[1]) for p in pairs], not args.minimize)
    print("| a vs b | pairs | mean a | mean b | mean diff | sd | wins/ties/losses | p | p Holm |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        w, t, lo = r["wtl"]
        print(
            f"| {r['a']} vs {r['b']} | {r['n']} | {r['mean_a']:.4f} | {r['mean_b']:.4f} | "
            f"{r['diff']:+.4f} | {r['sd']:.4f} | {w}/{t}/{lo} | {r['p']:.3f} | {r['p_holm']:.3f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
