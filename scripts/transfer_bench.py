"""The leave-one-family-out transfer benchmark (protocol: docs/benchmarks.md).

Two designs, each with its own pairs, agents and folder:

- ``--design policy`` (default): the slot policy, ``docs/figures/transfer/<F>/``;
- ``--design acquisition``: the acquisition agent with the scorer trained without F
  (``policies/acquisition/lofo_<F>.npz``) and its unlearned ablation ``gp_ei``, on test
  pairs no earlier headline used, ``docs/figures/acquisition/<F>/``.

Two steps per family F, each writing under the design's folder:

    # 1. freeze the yardstick of F's pairs (once; refuses to overwrite)
    .venv/bin/python scripts/transfer_bench.py yardstick --family nb201 --split test
    # 2. run the bench on those pairs: the LOFO policy (policies/transfer/lofo_<F>.zip),
    #    the opening chosen without F (policies/openings/exclude_<F>.json) + TPE, and the
    #    baselines; declared comparisons, Holm, A/A arm
    .venv/bin/python scripts/transfer_bench.py bench --family nb201 --split test

``--split val`` runs on the validation pairs (design decisions); ``test`` is the
headline, run once: the test pairs of both designs below are in retired test blocks
(``rsi_rl.core.families``), so their benches are refused; a next headline declares new
pairs from the families' fresh test blocks. Re-derive every number of a finished bench
from its records:

    .venv/bin/python -m rsi_rl.analysis.rederive docs/figures/transfer/nb201/test --check
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "transfer"
FAMILIES = ("hpobench", "nb201", "synth_smooth", "synth_rugged")


def _blocks(starts: list[int], per_block: int) -> list[int]:
    return [s + i for s in starts for i in range(per_block)]


#: the benchmark's pairs: instance seeds per family and split (campaign i runs seed i on
#: the i-th of them); table families take 75 per block of 1,000 seeds (one data set each)
PAIRS: dict[str, dict[str, list[int]]] = {
    "hpobench": {"val": _blocks([4000, 5000], 75), "test": _blocks([6000, 7000], 75)},
    "nb201": {"val": _blocks([1000], 150), "test": _blocks([2000], 150)},
    "synth_smooth": {"val": _blocks([10000], 150), "test": _blocks([20000], 150)},
    "synth_rugged": {"val": _blocks([10000], 150), "test": _blocks([20000], 150)},
}

AGENTS = ["policy", "random", "random_search", "greedy", "tpe", "opening_tpe"]
COMPARISONS = [["policy", "tpe"], ["policy", "opening_tpe"]]  # + tpe vs tpe_b (A/A arm)


@dataclass(frozen=True)
class Design:
    """One headline: its folder, pairs, agents, declared comparisons (the bench adds
    ``tpe`` vs ``tpe_b``) and the per-family agent settings."""

    out: Path
    pairs: dict[str, dict[str, list[int]]]
    agents: list[str]
    comparisons: list[list[str]]
    learned: str  # the learned agent, whose per-family file is set below

    def overrides(self, family: str, learned: str | None, opening: str | None) -> list[str]:
        opening = opening or str(ROOT / "policies" / "openings" / f"exclude_{family}.json")
        moves = json.loads(Path(opening).read_text())["moves"]
        out = [
            f"+agent_overrides.opening_tpe.stages.0.agent.moves="
            f"{json.dumps(moves).replace(' ', '')}"
        ]
        if self.learned == "policy":
            path = learned or str(ROOT / "policies" / "transfer" / f"lofo_{family}.zip")
            return [f"+agent_overrides.policy.path={path}", *out]
        path = learned or str(ROOT / "policies" / "acquisition" / f"lofo_{family}.npz")
        return [f"+agent_overrides.acquisition.scorer={path}", *out]


DESIGNS: dict[str, Design] = {
    "policy": Design(OUT, PAIRS, AGENTS, COMPARISONS, "policy"),
    "acquisition": Design(
        ROOT / "docs" / "figures" / "acquisition",
        {  # fresh test pairs: every one left (the policy's headline and earlier versions
            # of this agent used hpobench 6000-6424 and 7000-7424, the others' first 850)
            "hpobench": {"val": PAIRS["hpobench"]["val"], "test": _blocks([6425, 7425], 575)},
            "nb201": {"val": PAIRS["nb201"]["val"], "test": _blocks([2850], 150)},
            "synth_smooth": {"val": PAIRS["synth_smooth"]["val"], "test": _blocks([20850], 150)},
            "synth_rugged": {"val": PAIRS["synth_rugged"]["val"], "test": _blocks([20850], 150)},
        },
        ["acquisition", "gp_ei", "random", "random_search", "greedy", "tpe", "opening_tpe"],
        [["acquisition", "tpe"], ["acquisition", "opening_tpe"], ["acquisition", "gp_ei"]],
        "acquisition",
    ),
}


def yardstick_path(family: str, split: str, design: str = "policy") -> Path:
    return DESIGNS[design].out / family / f"yardstick_{split}.json"


def freeze_yardstick(family: str, split: str, design: str = "policy") -> Path:
    """Compute and write the yardstick of the family's pairs; refuse to overwrite one."""
    from rsi_rl.analysis.yardstick import compute_yardstick, write_yardstick
    from rsi_rl.core.families import family as get_family

    path = yardstick_path(family, split, design)
    if path.exists():
        raise SystemExit(f"{path} exists: a yardstick is frozen once; delete it only by hand")
    from rsi_rl.core.registry import make_task

    task = make_task(get_family(family).task)
    entries = compute_yardstick(task, DESIGNS[design].pairs[family][split])
    meta = {"family": family, "split": split}
    write_yardstick(path, entries, task.name, task.direction, meta=meta)
    print(f"wrote {path} ({len(entries)} instances)")
    return path


def run_bench(
    family: str,
    split: str,
    learned: str | None,
    opening: str | None,
    extra: list[str],
    design: str = "policy",
) -> Path:
    """The bench of the family's pairs with the design's leave-one-family-out agent and
    opening."""
    from rsi_rl.cli import main as rsi_rl

    d = DESIGNS[design]
    pairs = d.pairs[family][split]
    out = d.out / family / split
    overrides = [
        f"family={family}",
        f"task={family}",
        f"split={split}",
        "budget=20",
        f"seeds={len(pairs)}",
        f"instances=[{','.join(map(str, pairs))}]",
        f"agents=[{','.join(d.agents)}]",
        f"comparisons={json.dumps(d.comparisons).replace(' ', '')}",
        f"yardstick={yardstick_path(family, split, design)}",
        "remeasure_seeds=0",
        "plots=true",
        *d.overrides(family, learned, opening),
        f"hydra.run.dir={out}",
    ]
    rsi_rl(["bench", *overrides, *extra])
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["yardstick", "bench"])
    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--design", default="policy", choices=sorted(DESIGNS))
    parser.add_argument(
        "--policy",
        default=None,
        help="the learned agent's file; default: policies/transfer/lofo_<F>.zip (policy) "
        "or policies/acquisition/lofo_<F>.npz (acquisition)",
    )
    parser.add_argument(
        "--opening", default=None, help="default: policies/openings/exclude_<F>.json"
    )
    args, extra = parser.parse_known_args(argv)
    if args.command == "yardstick":
        freeze_yardstick(args.family, args.split, args.design)
    else:
        run_bench(
            args.family,
            args.split,
            args.policy,
            args.opening,
            [e for e in extra if e != "--"],
            args.design,
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(sys.argv[1:])
