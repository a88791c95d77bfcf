"""The leave-one-family-out headline across families, re-derived from the committed records.

For each family with a finished bench under ``docs/figures/transfer/<family>/<split>/``,
re-derives its headline from its records and frozen yardstick alone
(:func:`rsi_rl.analysis.rederive.rederive`), then applies Holm's correction across *all*
declared tests of all families together (the protocol in docs/benchmarks.md) and prints
the Markdown tables of docs/results.md::

    .venv/bin/python scripts/transfer_summary.py            # the test split (headline)
    .venv/bin/python scripts/transfer_summary.py --split val
    .venv/bin/python scripts/transfer_summary.py --design acquisition   # its headline
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "transfer"
FAMILIES = ("hpobench", "nb201", "synth_smooth", "synth_rugged")
MEASURES = ("regret@5", "regret@10", "regret@20", "auc")
#: the declared tests of the protocol (docs/benchmarks.md): comparison -> measures
DECLARED = {
    "policy_vs_tpe": MEASURES,
    "policy_vs_opening_tpe": ("regret@20", "auc"),
    "tpe_vs_tpe_b": MEASURES,
}
#: the acquisition agent's headline: its folder and declared tests (docs/benchmarks.md)
DESIGNS: dict[str, tuple[Path, dict[str, tuple[str, ...]]]] = {
    "policy": (OUT, DECLARED),
    "acquisition": (
        ROOT / "docs" / "figures" / "acquisition",
        {
            "acquisition_vs_tpe": MEASURES,
            "acquisition_vs_opening_tpe": ("regret@20", "auc"),
            "acquisition_vs_gp_ei": ("regret@20", "auc"),
            "tpe_vs_tpe_b": MEASURES,
        },
    ),
}


def _fmt(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def summary(split: str, design: str = "policy") -> str:
    """The Markdown tables of every finished family bench of ``split``."""
    from rsi_rl.analysis.rederive import rederive
    from rsi_rl.analysis.stats import holm
    from rsi_rl.analysis.tables import markdown_table

    out, declared = DESIGNS[design]
    heads: dict[str, Any] = {}
    for fam in FAMILIES:
        folder = out / fam / split
        if (folder / "records.jsonl.gz").is_file():
            heads[fam] = rederive(folder).to_dict()
    if not heads:
        return f"no finished bench under {out}/*/{split}"
    means = [
        [fam, agent, *(f"{stats[m]['mean']:.3f}" if m in stats else "-" for m in MEASURES)]
        for fam, h in heads.items()
        for agent, stats in h["agents"].items()
    ]
    lines = [
        f"Mean regret (0 = optimum, 1 = median config) on the {split} pairs; each family's "
        f"learned {design} never trained on that family.",
        "",
        *markdown_table(["family", "agent", *MEASURES], means),
    ]
    lines += _exhaustive(out, split, heads)
    tests: list[tuple[str, str, str, dict[str, Any]]] = []
    for fam, h in heads.items():
        for name, measures in declared.items():
            comp = h["comparisons"][name]
            for measure in measures:
                tests.append((fam, name, measure, comp["tests"][measure]))
    p_all = holm([float(t["p_value"]) for *_, t in tests])
    lines += [
        "",
        f"Paired two-sided Wilcoxon tests (diff = a - b; negative: a better); Holm over all "
        f"{len(tests)} declared tests of {len(heads)} families.",
        "",
    ]
    rows = [
        [
            fam,
            name.replace("_vs_", " vs "),
            measure,
            f"{t['wins']}/{t['ties']}/{t['losses']}",
            f"{t['mean_diff']:+.3f}",
            _fmt(float(t["p_value"])),
            _fmt(ph),
        ]
        for (fam, name, measure, t), ph in zip(tests, p_all, strict=True)
    ]
    columns = "family,comparison,measure,wins/ties/losses,mean diff,p,p Holm (all)"
    lines += markdown_table(columns.split(","), rows)
    return "\n".join(lines)


def _exhaustive(out: Path, split: str, heads: dict[str, Any]) -> list[str]:
    """Per table family, the regret of an exhaustive single-seed search on the bench's
    pairs (:func:`rsi_rl.analysis.yardstick.exhaustive_regret`), beside TPE's regret@20
    and half of it."""
    import gzip
    import json

    import numpy as np

    from rsi_rl.analysis.tables import markdown_table
    from rsi_rl.analysis.yardstick import exhaustive_regret, read_yardstick
    from rsi_rl.core.families import family
    from rsi_rl.core.registry import make_task

    rows = []
    for fam, h in heads.items():
        folder = out / fam / split
        with gzip.open(folder / "records.jsonl.gz", "rt") as fh:
            pairs = sorted({(int(r["instance"]), int(r["seed"])) for r in map(json.loads, fh)})
        task = make_task(family(fam).task)
        exh = exhaustive_regret(task, read_yardstick(folder / "yardstick.json"), pairs)
        tpe = h["agents"].get("tpe", {}).get("regret@20", {}).get("mean")
        if exh is None or tpe is None:
            continue
        rows.append(
            [fam, str(len(pairs)), f"{np.nanmean(exh):.3f}", f"{tpe:.3f}", f"{tpe / 2:.3f}"]
        )
    if not rows:
        return []
    return [
        "",
        "Exhaustive single-seed search: the mean regret of the config best on each "
        "campaign's evaluation seed, i.e. what a campaign that ran every config would keep "
        "(not a bound: a campaign that runs fewer, better configs can end below it).",
        "",
        *markdown_table(["family", "pairs", "exhaustive", "tpe regret@20", "half of tpe"], rows),
    ]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--design", default="policy", choices=sorted(DESIGNS))
    args = parser.parse_args(argv)
    print(summary(args.split, args.design))


if __name__ == "__main__":
    main(sys.argv[1:])
