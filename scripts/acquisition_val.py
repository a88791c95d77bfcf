"""The acquisition agent against TPE on validation pairs (design decisions only).

Per family F, on every ``--every``-th pair of F's validation pairs (the transfer bench's
``PAIRS``: campaign i runs seed i on the i-th instance), K = ``--budget`` experiments,
arms through :func:`rsi_rl.analysis.bench_campaign.run_one` (the campaign's own
keep-or-revert, records and budget):

* ``tpe`` and ``tpe_b`` (a second draw of TPE: the A/A arm), ``random_search``, ``gp``
  (Optuna's Gaussian-process sampler; by far the slowest arm, run only when named);
* ``gp_ei``: the acquisition agent with its unlearned scorer;
* ``acq``: the acquisition agent with the scorer trained without F
  (``policies/acquisition/lofo_<F>.npz``; ``--scorer-dir`` to read others, or
  ``--scorer FILE`` for one scorer on every family, e.g. one that trained on F too).

Regret is the bench's, on the incumbent's true value after k experiments, against the
frozen ``docs/figures/transfer/<F>/yardstick_val.json``. Per family it prints the mean
regret@5/10/20 and AUC per arm and the paired two-sided Wilcoxon p of each arm against
TPE (unadjusted: this is exploration, not a headline), and ``best_run``: the regret of
the best true point the campaign ran, kept or not (its gap to ``regret@K`` is what the
single-seed keep-or-revert loses to noise)::

    nice -n 10 .venv/bin/python scripts/acquisition_val.py --every 3 --out /tmp/acq_val.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from transfer_bench import FAMILIES, PAIRS  # noqa: E402

ENDPOINTS = (5, 10, 20)
ARMS = ("tpe", "tpe_b", "random_search", "gp", "gp_ei", "acq")
#: the regret of the best true point a campaign ran (kept or not): what its search found,
#: against ``regret@K``, what its single-seed keep-or-revert kept
BEST_RUN = "best_run"


def make_arm(arm: str, seed: int, family: str, scorer_dir: Path, **pool: Any) -> Any:
    """The agent of ``arm``; ``acq`` reads ``scorer_dir/lofo_<family>.npz``, or the
    ``scorer`` file in ``pool`` when one is given (None: the leave-one-family-out one)."""
    from rsi_rl.agents import make_agent
    from rsi_rl.agents.acquisition import AcquisitionAgent

    scorer = pool.pop("scorer", None) or scorer_dir / f"lofo_{family}.npz"
    if arm == "tpe_b":
        agent = make_agent("tpe", seed=seed, seed_offset=1_000_003)
        agent.name = "tpe_b"
        return agent
    if arm in ("tpe", "random_search", "gp"):
        return make_agent(arm, seed=seed)
    if arm == "gp_ei":
        return AcquisitionAgent(seed=seed, **pool)
    return AcquisitionAgent(seed=seed, scorer=scorer, **pool)


def run_family(
    family: str,
    instances: Sequence[int],
    arms: Sequence[str],
    budget: int,
    scorer_dir: Path,
    keep_threshold: float = 1.0,
    **pool: Any,
) -> list[dict[str, Any]]:
    from rsi_rl.analysis.bench_campaign import run_one
    from rsi_rl.analysis.headline import campaign_measures
    from rsi_rl.analysis.yardstick import read_yardstick
    from rsi_rl.builder import make_env
    from rsi_rl.core.families import family as get_family
    from rsi_rl.core.registry import make_task

    ys = read_yardstick(ROOT / "docs" / "figures" / "transfer" / family / "yardstick_val.json")
    if ys.meta.get("split") != "val":
        raise SystemExit(f"{ys.path} is not a validation yardstick")
    task = make_task(get_family(family).task)
    ends = [k for k in ENDPOINTS if k <= budget]
    env_kw = {"executor": "serial", "keep_threshold": keep_threshold}
    env = make_env(task, budget, [int(i) for i in instances], env_kw)
    rows: list[dict[str, Any]] = []
    try:
        for seed, inst in enumerate(instances):
            for arm in arms:
                agent = make_arm(arm, seed, family, scorer_dir, **pool)
                t0 = time.process_time()
                camp = run_one(env, agent, seed, int(inst), reference=False, label=arm)
                truths = {int(t["k"]): t["truth"] for t in camp.trace}
                row: dict[str, Any] = {"arm": arm, "instance": int(inst), "seed": seed}
                row.update(campaign_measures(truths, int(inst), ys, ends, budget))
                ran = [t["truth_run"] for t in camp.trace if t.get("truth_run") is not None]
                best = (max if ys.maximize else min)(ran) if ran else None
                row[BEST_RUN] = ys.regret(int(inst), best)
                row["cpu_seconds"] = time.process_time() - t0
                rows.append(row)
    finally:
        env.close()
    return rows


def summarise(rows: Sequence[dict[str, Any]], measures: Sequence[str]) -> dict[str, Any]:
    from rsi_rl.analysis.stats import paired_test

    by_arm: dict[str, dict[tuple[int, int], dict[str, Any]]] = {}
    for r in rows:
        by_arm.setdefault(r["arm"], {})[(r["instance"], r["seed"])] = r
    means = {
        a: {m: float(np.mean([r[m] for r in rs.values() if r[m] is not None])) for m in measures}
        for a, rs in by_arm.items()
    }
    cpu = {a: float(np.mean([r["cpu_seconds"] for r in rs.values()])) for a, rs in by_arm.items()}
    tests: dict[str, Any] = {}
    for a in by_arm:
        if a == "tpe" or "tpe" not in by_arm:
            continue
        keys = sorted(set(by_arm[a]) & set(by_arm["tpe"]))
        tests[a] = {}
        for m in measures:
            ok = [k for k in keys if None not in (by_arm[a][k][m], by_arm["tpe"][k][m])]
            t = paired_test([by_arm[a][k][m] for k in ok], [by_arm["tpe"][k][m] for k in ok])
            tests[a][m] = t.to_dict()
    return {
        "campaigns": {a: len(rs) for a, rs in by_arm.items()},
        "means": means,
        "cpu_seconds": cpu,
        "tests": tests,
    }


def table(results: dict[str, Any], measures: Sequence[str]) -> str:
    lines = ["| family | arm | " + " | ".join(measures) + " | CPU s / campaign |"]
    lines.append("|" + "---|" * (len(measures) + 3))
    for fam, res in results.items():
        for arm, ms in res["means"].items():
            cells = " | ".join(f"{ms[m]:.3f}" for m in measures)
            lines.append(f"| {fam} | {arm} | {cells} | {res['cpu_seconds'][arm]:.2f} |")
    lines += [
        "",
        "| family | arm vs tpe | measure | wins/ties/losses | mean diff | p |",
        "|---|---|---|---|---|---|",
    ]
    for fam, res in results.items():
        for arm, tests in res["tests"].items():
            for m, t in tests.items():
                lines.append(
                    f"| {fam} | {arm} | {m} | {t['wins']}/{t['ties']}/{t['losses']} | "
                    f"{t['mean_diff']:+.3f} | {t['p_value']:.2g} |"
                )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from rsi_rl.analysis.headline import AUC, endpoint_key

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--every", type=int, default=3, help="every n-th validation pair")
    parser.add_argument("--limit", type=int, default=None, help="at most this many pairs")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--arms", nargs="+", default=[a for a in ARMS if a != "gp"], choices=ARMS)
    parser.add_argument("--scorer-dir", type=Path, default=ROOT / "policies" / "acquisition")
    parser.add_argument(
        "--scorer", type=Path, default=None, help="one scorer file for every family"
    )
    parser.add_argument("--n-uniform", type=int, default=64, help="uniform draws per pool")
    parser.add_argument("--n-local", type=int, default=32, help="perturbations per pool")
    parser.add_argument(
        "--keep-threshold",
        type=float,
        default=1.0,
        help="the campaign's keep rule: a child must beat the incumbent by this many noise sd",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    ends = [k for k in ENDPOINTS if k <= args.budget]
    measures = [*(endpoint_key(k) for k in ends), AUC, BEST_RUN]
    results: dict[str, Any] = {}
    rows_out: dict[str, Any] = {}
    for fam in args.families:
        t0 = time.monotonic()
        instances = PAIRS[fam]["val"][:: args.every][: args.limit]
        rows = run_family(
            fam,
            instances,
            args.arms,
            args.budget,
            args.scorer_dir,
            keep_threshold=args.keep_threshold,
            n_uniform=args.n_uniform,
            n_local=args.n_local,
            scorer=args.scorer,
        )
        results[fam] = summarise(rows, measures)
        results[fam]["seconds"] = round(time.monotonic() - t0, 1)
        rows_out[fam] = rows
        print(f"{fam}: {len(rows)} campaigns in {results[fam]['seconds']} s", file=sys.stderr)
    print(table(results, measures))
    if args.out:
        meta = {
            "every": args.every,
            "limit": args.limit,
            "budget": args.budget,
            "arms": args.arms,
            "scorer_dir": str(args.scorer_dir),
            "scorer": None if args.scorer is None else str(args.scorer),
            "keep_threshold": args.keep_threshold,
        }
        Path(args.out).write_text(
            json.dumps({"meta": meta, "results": results, "rows": rows_out}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
