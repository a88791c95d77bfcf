"""Summarise campaign rows from several ``rsi-rl bench`` jobs as if they were one job.

Every agent of ``rsi-rl bench`` is deterministic given its (instance, seed) pair, so an
agent's campaigns come out the same in every job; this recomputes bench.json's metrics
(regret against the best any listed campaign found per instance, paired tests, Cotra
milestones) over rows taken from several ``campaigns.jsonl`` files. It prints the
bench table and writes the merged bench.json. A single job is still the protocol (and
what the targets count); this is for adding one agent to an expensive earlier job.
``agent=label`` takes an agent's rows under another name, to set variants of one agent
(run in separate jobs) side by side. The merge of the tabular table of docs/results.md::

    .venv/bin/python scripts/merge_campaigns.py --budget 20 \\
        --out docs/figures/bench_tabular_k20_s7_merged.json \\
        docs/figures/bench_tabular_k20_s5_40pairs_campaigns.jsonl:policy_tpe,tpe,policy,greedy,random \\
        docs/figures/bench_tabular_k20_s5_random_search_campaigns.jsonl:random_search \\
        docs/figures/bench_tabular_k20_s6_policy_bundle_campaigns.jsonl:policy_bundle \\
        docs/figures/bench_tabular_k20_s7_policy_bundle_tpe_campaigns.jsonl:policy_bundle_tpe

and two variants of ``policy_tpe`` under their own names::

    .venv/bin/python scripts/merge_campaigns.py --budget 20 --out /tmp/switch.json \\
        docs/figures/val_policy_tpe_switch5_campaigns.jsonl:policy_tpe=switch5 \\
        docs/figures/val_policy_tpe_switch10_campaigns.jsonl:policy_tpe=switch10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from rsi_rl.bench import format_table, summarise

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "sources",
        nargs="+",
        help="FILE.jsonl:agent1,agent2=label (agents to take, optionally renamed)",
    )
    ap.add_argument("--budget", type=int, default=20, help="K of the jobs")
    ap.add_argument("--minimize", action="store_true", help="the metric is minimised")
    ap.add_argument("--out", type=Path, help="write the merged summary here")
    args = ap.parse_args()
    rows, agents = [], []
    for source in args.sources:
        path, _, names = source.rpartition(":")
        if not path:
            raise SystemExit(f"{source!r}: write FILE.jsonl:agent1,agent2")
        # "agent" keeps its name, "agent=label" renames it
        label = {a: new or a for a, _, new in (n.partition("=") for n in names.split(","))}
        found = [json.loads(line) for line in Path(path).read_text().splitlines()]
        missing = set(label) - {r["agent"] for r in found}
        if missing:
            raise SystemExit(f"{path} has no campaigns of {', '.join(sorted(missing))}")
        rows += [{**r, "agent": label[r["agent"]]} for r in found if r["agent"] in label]
        agents += [a for a in label.values() if a not in agents]
    result = summarise(rows, agents, args.budget, not args.minimize)
    print(format_table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
