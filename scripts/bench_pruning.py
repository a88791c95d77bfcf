"""What pruning saves: experiment seconds and final regret of one agent, pruned vs not.

Reads two ``rsi-rl bench`` folders of the same agent on the same (instance, seed) pairs,
one run with ``env.pruner=null`` and one with a pruner, merges them with
:func:`rsi_rl.analysis.folders.merge_benches` (so the best known per instance, and the
fresh-seed regret, come from both arms) and compares them pair by pair
(docs/benchmarks.md, "Pruning: experiment seconds saved"):

- savings = 1 - sum of the pruned arm's experiment seconds / the unpruned arm's, with a
  percentile bootstrap CI over the pairs;
- final regret: the paired difference (pruned - unpruned) of the fresh-seed regret, its
  bootstrap CI, the two-sided Wilcoxon p, and non-inferiority (the CI's upper end below
  ``--margin``).

Example (the digits_mlp table)::

    .venv/bin/python scripts/bench_pruning.py /tmp/pruning/digits_none /tmp/pruning/digits_median \\
        --out docs/figures/pruning/digits_mlp.json --tsv docs/figures/pruning/digits_mlp_pairs.tsv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: the agent labels of the two arms in the merge
OFF, ON = "unpruned", "pruned"


@dataclass(frozen=True)
class PairRow:
    """One (instance, seed) pair: each arm's experiment seconds, fresh-seed regret and
    final incumbent's fresh-seed metric, and the runs the pruner stopped."""

    instance: int
    seed: int
    seconds_off: float
    seconds_on: float
    regret_off: float | None
    regret_on: float | None
    final_off: float | None
    final_on: float | None
    pruned_runs: int
    timeouts_off: int
    timeouts_on: int

    @property
    def savings(self) -> float:
        """1 - seconds_on / seconds_off of this pair (nan when the unpruned arm used none)."""
        return 1.0 - self.seconds_on / self.seconds_off if self.seconds_off > 0 else math.nan


def pair_rows(result: Any) -> list[PairRow]:
    """The pairs both arms of a merged :class:`~rsi_rl.analysis.results.BenchResult` ran,
    in (instance, seed) order."""
    arms: dict[str, dict[tuple[int, int], Any]] = {OFF: {}, ON: {}}
    for s in result.scores:
        if s.campaign.agent in arms:
            arms[s.campaign.agent][(s.campaign.instance, s.campaign.seed)] = s
    rows = []
    for key in sorted(set(arms[OFF]) & set(arms[ON])):
        off, on = arms[OFF][key], arms[ON][key]
        rows.append(
            PairRow(
                instance=key[0],
                seed=key[1],
                seconds_off=_seconds(off.campaign),
                seconds_on=_seconds(on.campaign),
                regret_off=off.regret_fresh,
                regret_on=on.regret_fresh,
                final_off=off.campaign.final_fresh,
                final_on=on.campaign.final_fresh,
                pruned_runs=int(on.campaign.statuses.get("pruned", 0)),
                timeouts_off=int(off.campaign.statuses.get("timeout", 0)),
                timeouts_on=int(on.campaign.statuses.get("timeout", 0)),
            )
        )
    return rows


def _seconds(campaign: Any) -> float:
    """Experiment seconds charged to a campaign (the start run's are free)."""
    return float(campaign.seconds[-1]) if campaign.seconds else 0.0


def savings_ci(
    off: Sequence[float], on: Sequence[float], n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """``1 - sum(on) / sum(off)`` and its 95% percentile bootstrap CI, resampling pairs."""
    x, y = np.asarray(off, dtype=float), np.asarray(on, dtype=float)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"savings_ci needs pairs: {len(x)} values against {len(y)}")
    point = 1.0 - y.sum() / x.sum()
    idx = np.random.default_rng(seed).integers(0, len(x), size=(int(n_boot), len(x)))
    boot = 1.0 - y[idx].sum(axis=1) / x[idx].sum(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(point), float(lo), float(hi)


def summarise_pairs(
    rows: Sequence[PairRow], margin: float = 0.10, target: float = 0.30, n_boot: int = 10_000
) -> dict[str, Any]:
    """Savings with CI, the regret comparison and whether each target is met."""
    from rsi_rl.analysis.stats import bootstrap_ci, paired_test

    off = [r.seconds_off for r in rows]
    on = [r.seconds_on for r in rows]
    saved, lo, hi = savings_ci(off, on, n_boot)
    # (pruned, unpruned) fresh-seed regret of the pairs that have both
    both = [
        (r.regret_on, r.regret_off)
        for r in rows
        if r.regret_on is not None and r.regret_off is not None
    ]
    diffs = [a - b for a, b in both]
    test = paired_test([a for a, _ in both], [b for _, b in both])
    d_lo, d_hi = bootstrap_ci(diffs, n_boot=n_boot) if diffs else (math.nan, math.nan)
    # the same in the metric's own units: final incumbents on fresh seeds, pruned - unpruned
    finals = [
        r.final_on - r.final_off for r in rows if r.final_on is not None and r.final_off is not None
    ]
    return {
        "pairs": len(rows),
        "seconds_unpruned": float(sum(off)),
        "seconds_pruned": float(sum(on)),
        "seconds_per_campaign_unpruned": float(np.mean(off)),
        "seconds_per_campaign_pruned": float(np.mean(on)),
        "savings": saved,
        "savings_ci95": [lo, hi],
        "savings_per_pair_median": float(np.nanmedian([r.savings for r in rows])),
        "pruned_runs": int(sum(r.pruned_runs for r in rows)),
        "timeouts_unpruned": int(sum(r.timeouts_off for r in rows)),
        "timeouts_pruned": int(sum(r.timeouts_on for r in rows)),
        "regret_pairs": len(both),
        "regret_unpruned_mean": float(np.mean([b for _, b in both])) if both else None,
        "regret_pruned_mean": float(np.mean([a for a, _ in both])) if both else None,
        "regret_diff_mean": float(np.mean(diffs)) if diffs else None,
        "regret_diff_ci95": [d_lo, d_hi],
        "final_metric_diff_mean": float(np.mean(finals)) if finals else None,
        "final_metric_diff_ci95": list(bootstrap_ci(finals, n_boot=n_boot)),
        "regret_wins_ties_losses": [test.wins, test.ties, test.losses],  # pruned lower = win
        "regret_wilcoxon_p": test.p_value,
        "margin": float(margin),
        "non_inferior": bool(math.isfinite(d_hi) and d_hi < margin),
        "target": float(target),
        "target_met": bool(saved >= target and math.isfinite(d_hi) and d_hi < margin),
    }


def format_summary(task: str, s: dict[str, Any]) -> str:
    """A one-row markdown table of a summary."""
    lo, hi = s["savings_ci95"]
    d_lo, d_hi = s["regret_diff_ci95"]
    head = (
        "| task | pairs | seconds/campaign, unpruned | pruned | savings [95% CI] | runs stopped "
        "| fresh regret, unpruned | pruned | difference [95% CI] | Wilcoxon p |"
    )
    row = (
        f"| `{task}` | {s['pairs']} | {s['seconds_per_campaign_unpruned']:.1f} s "
        f"| {s['seconds_per_campaign_pruned']:.1f} s "
        f"| {100 * s['savings']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}] | {s['pruned_runs']} "
        f"| {s['regret_unpruned_mean']:.3f} | {s['regret_pruned_mean']:.3f} "
        f"| {s['regret_diff_mean']:+.3f} [{d_lo:+.3f}, {d_hi:+.3f}] "
        f"| {s['regret_wilcoxon_p']:.2f} |"
    )
    return "\n".join([head, "| " + " | ".join(["---"] * 10) + " |", row])


def main(argv: list[str] | None = None) -> None:
    from rsi_rl.analysis.folders import BenchSource, merge_benches, read_bench
    from rsi_rl.core.errors import RsiRlError

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("unpruned", type=Path, help="bench folder run with env.pruner=null")
    ap.add_argument("pruned", type=Path, help="bench folder of the same agent and pairs, pruned")
    ap.add_argument("--agent", default="tpe", help="the agent both folders ran (default tpe)")
    ap.add_argument("--margin", type=float, default=0.10, help="non-inferiority margin")
    ap.add_argument("--target", type=float, default=0.30, help="savings target")
    ap.add_argument("--out", type=Path, help="write the summary and pairs here (JSON)")
    ap.add_argument("--tsv", type=Path, help="write the pairs here (TSV)")
    args = ap.parse_args(argv)
    try:
        result = merge_benches(
            [
                BenchSource(args.unpruned, {args.agent: OFF}),
                BenchSource(args.pruned, {args.agent: ON}),
            ]
        )
        setups = {arm: read_bench(p).setup for arm, p in ((OFF, args.unpruned), (ON, args.pruned))}
    except RsiRlError as exc:
        print(f"bench_pruning: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    rows = pair_rows(result)
    if not rows:
        print("bench_pruning: error: the folders share no (instance, seed) pair", file=sys.stderr)
        raise SystemExit(2)
    summary = summarise_pairs(rows, args.margin, args.target)
    task = str(result.setup.get("task"))
    print(format_summary(task, summary))
    keep = ("task", "metric", "budget", "seeds", "instances", "remeasure_seeds", "commit")
    out = {
        "task": task,
        "agent": args.agent,
        "summary": summary,
        "setup": {arm: {k: s.get(k) for k in keep} for arm, s in setups.items()},
        "pairs": [{**asdict(r), "savings": r.savings} for r in rows],
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    if args.tsv:
        args.tsv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.tsv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(out["pairs"][0]), delimiter="\t")
            w.writeheader()
            w.writerows(out["pairs"])


if __name__ == "__main__":
    main()
