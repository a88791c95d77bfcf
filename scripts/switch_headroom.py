"""Headroom of a switch between TPE and the slot policy, on validation instances only.

Would an agent that chooses, at each experiment, between TPE's proposal and the policy's
best edit beat TPE? Per family F this runs, on the first ``--instances`` pairs of F's
frozen validation yardstick (campaign i: seed i on the i-th instance, as the bench pairs
them), K = ``--budget`` experiments, these arms through :func:`rsi_rl.search.run_campaign`
(the campaign's own keep-or-revert, records and budget):

* ``tpe``: Optuna TPE alone (``conf/agent/tpe.yaml``, seed i);
* ``policy``: the leave-one-family-out policy alone (``policies/transfer/lofo_<F>.zip``,
  deterministic, as ``agent=policy`` acts);
* ``oracle``: at each experiment both agents propose for the current campaign state, the
  proposal whose candidate has the better *true* value runs (ties: TPE; a rerun of the
  incumbent counts as the incumbent), and both agents are told every record, so TPE
  models every evaluated point. An unasked-for TPE trial is failed and dropped by TPE
  itself on its next ask. This is the best a learned switch could do, step by step;
* ``first5``, ``first10``: the policy for the first k experiments, then TPE;
* ``alternate``: policy, TPE, policy, ... (a fixed rule asks only the agent it picks).

Regret is the bench's (:func:`rsi_rl.analysis.headline.campaign_measures` on the
incumbent's true value after k experiments, from
:func:`rsi_rl.analysis.bench_campaign.run_one`, against the frozen
``docs/figures/transfer/<F>/yardstick_val.json``). Per family it prints mean regret@5/10/20
and AUC per arm, the paired two-sided Wilcoxon p (scipy, via
:func:`rsi_rl.analysis.stats.paired_test`) of the oracle and of the best fixed rule
(picked after the fact by mean regret@20) against TPE, and how often the oracle ran the
policy's edit::

    nice -n 10 .venv/bin/python scripts/switch_headroom.py --instances 50 \\
        --out /tmp/switch_headroom.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.agents.base import Agent, Record, ask
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.core.edits import Candidate

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("hpobench", "nb201", "synth_smooth", "synth_rugged")
ENDPOINTS = (5, 10, 20)
TPE, POLICY = "tpe", "policy"

#: which inner agent a fixed rule asks at experiment ``step`` (0-based)
Rule = Callable[[int], str]


def policy_first(k: int) -> Rule:
    """The policy for the first ``k`` experiments, then TPE."""
    return lambda step: POLICY if step < k else TPE


def alternate(step: int) -> str:
    """The policy on even experiments, TPE on odd ones."""
    return POLICY if step % 2 == 0 else TPE


RULES: dict[str, Rule] = {
    "first5": policy_first(5),
    "first10": policy_first(10),
    "alternate": alternate,
}
ARMS = (TPE, POLICY, "oracle", *RULES)


class SwitchAgent(Agent):
    """Each experiment from one of two agents, ``tpe`` or ``policy``; both told every record.

    Args:
        agents: ``{"tpe": agent, "policy": agent}``.
        rule: which agent a step asks; None: the oracle, which asks both and runs the
            proposal whose candidate has the better value under ``truth``.
        truth: the true value of a candidate on the campaign's instance (the oracle's
            privilege: agents never see it otherwise).
        maximize: the task's direction.
        name: the arm's label.
    """

    def __init__(
        self,
        agents: dict[str, Agent],
        rule: Rule | None = None,
        truth: Callable[[Candidate], float | None] | None = None,
        maximize: bool = True,
        name: str = "switch",
    ):
        super().__init__(None)
        if rule is None and truth is None:
            raise ValueError("the oracle (rule=None) needs truth")
        self.agents, self.rule, self.truth = agents, rule, truth
        self.maximize, self.name = maximize, name
        self.step = 0
        #: per experiment: the agent whose proposal ran
        self.choices: list[str] = []
        #: per oracle experiment: true values of TPE's candidate, of the policy's and of
        #: the incumbent they were proposed for
        self.values: list[tuple[float, float, float]] = []

    def reset(self, view: CampaignView) -> None:
        self.step, self.choices, self.values = 0, [], []
        for agent in self.agents.values():
            agent.reset(view)

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        if self.rule is not None:
            which = self.rule(self.step)
            props = ask(self.agents[which], view, 1)
            if not props:  # the asked agent stops: the other one goes on
                which = TPE if which == POLICY else POLICY
                props = ask(self.agents[which], view, 1)
        else:
            which, props = self._oracle(view)
        if props:
            self.choices.append(which)
        return props

    def _oracle(self, view: CampaignView) -> tuple[str, list[Proposal]]:
        by_tpe = ask(self.agents[TPE], view, 1)
        by_policy = ask(self.agents[POLICY], view, 1)
        if not by_policy or not by_tpe:
            return (TPE, by_tpe) if by_tpe else (POLICY, by_policy)
        vt, vp = self._value(view, by_tpe[0]), self._value(view, by_policy[0])
        self.values.append((vt, vp, self._value(view, view.proposal("reevaluate"))))
        better = vp > vt if self.maximize else vp < vt
        return (POLICY, by_policy) if better else (TPE, by_tpe)

    def _value(self, view: CampaignView, prop: Proposal) -> float:
        """The true value of what a proposal runs: a rerun or a refused proposal leaves
        the incumbent as it is, so it counts as the incumbent."""
        assert self.truth is not None
        cand = prop.candidate if prop.candidate is not None and not prop.refused else None
        v = self.truth(cand if cand is not None else view.incumbent)
        if v is None:
            return -np.inf if self.maximize else np.inf
        return float(v)

    def tell(self, records: Sequence[Record]) -> None:
        self.step += len(records)
        for agent in self.agents.values():
            agent.tell(records)


def make_arm(
    arm: str, seed: int, policy: Agent, env: Any, maximize: bool
) -> tuple[Agent, SwitchAgent | None]:
    """Arm ``arm``'s agent for campaign ``seed`` (and the switch inside it, if any).

    ``policy`` is shared across campaigns (loaded once; it is deterministic and
    :meth:`~rsi_rl.agents.base.Agent.reset` clears its state)."""
    from rsi_rl.agents import make_agent
    from rsi_rl.analysis.yardstick import true_value

    tpe = make_agent(TPE, seed=seed)
    if arm == TPE:
        return tpe, None
    if arm == POLICY:
        return policy, None
    agents = {TPE: tpe, POLICY: policy}
    if arm == "oracle":

        def truth(cand: Candidate) -> float | None:
            return true_value(env.task, env.instance, cand)

        switch = SwitchAgent(agents, truth=truth, maximize=maximize, name=arm)
    else:
        switch = SwitchAgent(agents, rule=RULES[arm], maximize=maximize, name=arm)
    return switch, switch


def run_family(
    task: Any,
    instances: Sequence[int],
    ys: Any,
    policy: Agent,
    arms: Sequence[str] = ARMS,
    budget: int = 20,
    endpoints: Sequence[int] = ENDPOINTS,
) -> list[dict[str, Any]]:
    """One row per (arm, campaign): its measures (``regret@k``, ``auc``) and, for the
    switches, the agent each experiment came from (and the oracle's true values)."""
    from rsi_rl.analysis.bench_campaign import run_one
    from rsi_rl.analysis.headline import campaign_measures
    from rsi_rl.builder import make_env

    ends = [int(k) for k in endpoints if int(k) <= budget]
    env = make_env(task, budget, [int(i) for i in instances], {"executor": "serial"})
    rows: list[dict[str, Any]] = []
    maximize = task.direction == "maximize"
    try:
        for seed, inst in enumerate(instances):
            for arm in arms:
                agent, switch = make_arm(arm, seed, policy, env, maximize)
                camp = run_one(env, agent, seed, int(inst), reference=False, label=arm)
                truths = {int(t["k"]): t["truth"] for t in camp.trace}
                row: dict[str, Any] = {"arm": arm, "instance": int(inst), "seed": seed}
                row.update(campaign_measures(truths, int(inst), ys, ends, budget))
                if switch is not None:
                    row["choices"] = list(switch.choices)
                    if switch.values:
                        row["values"] = [list(v) for v in switch.values]
                rows.append(row)
    finally:
        env.close()
    return rows


def _mean(vals: Sequence[float | None]) -> float | None:
    xs = [float(v) for v in vals if v is not None]
    return float(np.mean(xs)) if xs else None


def summarise(
    rows: Sequence[dict[str, Any]], measures: Sequence[str], maximize: bool = True
) -> dict[str, Any]:
    """Per arm the mean of each measure; the paired tests of the oracle and of the best
    fixed rule (by mean of the last endpoint) against TPE; the oracle's policy share, by
    phase and on the decisive steps (where the better candidate beats the incumbent)."""
    from rsi_rl.analysis.stats import paired_test

    by_arm: dict[str, dict[tuple[int, int], dict[str, Any]]] = {}
    for r in rows:
        by_arm.setdefault(r["arm"], {})[(r["instance"], r["seed"])] = r
    means = {
        a: {m: _mean([r[m] for r in rs.values()]) for m in measures} for a, rs in by_arm.items()
    }
    out: dict[str, Any] = {"campaigns": {a: len(rs) for a, rs in by_arm.items()}, "means": means}
    last = measures[-2] if measures[-1] == "auc" else measures[-1]
    scored = {a: v for a in by_arm if a in RULES and (v := means[a][last]) is not None}
    best_rule = min(scored, key=scored.__getitem__) if scored else None
    out["best_rule"] = best_rule
    tests: dict[str, Any] = {}
    for a in ["oracle", *([best_rule] if best_rule else [])]:
        if a not in by_arm or TPE not in by_arm:
            continue
        keys = sorted(set(by_arm[a]) & set(by_arm[TPE]))
        tests[f"{a}_vs_tpe"] = {}
        for m in measures:
            ok = [k for k in keys if None not in (by_arm[a][k][m], by_arm[TPE][k][m])]
            t = paired_test([by_arm[a][k][m] for k in ok], [by_arm[TPE][k][m] for k in ok])
            tests[f"{a}_vs_tpe"][m] = t.to_dict()
    out["tests"] = tests
    oracle = list(by_arm.get("oracle", {}).values())
    if oracle:
        choices = [c for r in oracle for c in r.get("choices", [])]
        out["oracle_policy_share"] = choices.count(POLICY) / max(1, len(choices))
        phases = {"1-5": (0, 5), "6-10": (5, 10), "11-20": (10, 20)}
        out["oracle_policy_share_by_k"] = {
            name: _share([c for r in oracle for c in r.get("choices", [])[lo:hi]])
            for name, (lo, hi) in phases.items()
        }
        # decisive steps: the better of the two candidates beats the incumbent, so the
        # choice can change the incumbent (otherwise neither improves it in truth)
        sign = 1.0 if maximize else -1.0
        steps = [(c, v) for r in oracle for c, v in zip(r["choices"], r["values"], strict=True)]
        decisive = [c for c, (vt, vp, vi) in steps if max(sign * vt, sign * vp) > sign * vi]
        out["oracle_decisive_share"] = len(decisive) / max(1, len(steps))
        out["oracle_policy_share_decisive"] = _share(decisive)
    return out


def _share(choices: Sequence[str]) -> float | None:
    return choices.count(POLICY) / len(choices) if choices else None


def table(results: dict[str, Any], measures: Sequence[str]) -> str:
    """The markdown tables: mean measures per family and arm, then the tests."""
    head = "| family | arm | " + " | ".join(measures) + " |"
    lines = [head, "|" + "---|" * (len(measures) + 2)]
    for fam, res in results.items():
        for arm, ms in res["means"].items():
            cells = " | ".join("-" if ms[m] is None else f"{ms[m]:.3f}" for m in measures)
            lines.append(f"| {fam} | {arm} | {cells} |")
    lines += [
        "",
        "| family | comparison | measure | wins/ties/losses | mean diff | p (two-sided) |",
        "|---|---|---|---|---|---|",
    ]
    for fam, res in results.items():
        for comp, tests in res["tests"].items():
            for m, t in tests.items():
                lines.append(
                    f"| {fam} | {comp.replace('_vs_', ' vs ')} | {m} | "
                    f"{t['wins']}/{t['ties']}/{t['losses']} | {t['mean_diff']:+.3f} | "
                    f"{t['p_value']:.2g} |"
                )
    lines += [
        "",
        "| family | oracle: policy share | k 1-5 | k 6-10 | k 11-20 | decisive steps "
        "| policy share of decisive |",
        "|---|---|---|---|---|---|---|",
    ]
    for fam, res in results.items():
        if "oracle_policy_share" in res:
            shares = [
                res["oracle_policy_share"],
                *res["oracle_policy_share_by_k"].values(),
                res["oracle_decisive_share"],
                res["oracle_policy_share_decisive"],
            ]
            cells = " | ".join("-" if v is None else f"{v:.3f}" for v in shares)
            lines.append(f"| {fam} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    import torch

    from rsi_rl.agents.sb3 import PolicyAgent
    from rsi_rl.analysis.headline import AUC, endpoint_key
    from rsi_rl.analysis.yardstick import read_yardstick
    from rsi_rl.core.families import family
    from rsi_rl.core.registry import make_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--instances", type=int, default=50, help="first n validation pairs")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--policy", default=None, help="default: policies/transfer/lofo_<F>.zip")
    parser.add_argument("--out", default=None, help="write rows and summaries as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one small forward pass per step: threads only contend
    if TPE not in args.arms:
        parser.error("--arms must include tpe: every comparison is against it")
    ends = [k for k in ENDPOINTS if k <= args.budget] or [args.budget]
    measures = [*(endpoint_key(k) for k in ends), AUC]
    results: dict[str, Any] = {}
    rows_out: dict[str, Any] = {}
    for fam in args.families:
        t0 = time.monotonic()
        ys = read_yardstick(ROOT / "docs" / "figures" / "transfer" / fam / "yardstick_val.json")
        if ys.meta.get("split") != "val":
            raise SystemExit(f"{ys.path} is not a validation yardstick")
        task = make_task(family(fam).task)
        instances = sorted(ys.entries)[: args.instances]
        policy = PolicyAgent(args.policy or ROOT / "policies" / "transfer" / f"lofo_{fam}.zip")
        rows = run_family(task, instances, ys, policy, args.arms, args.budget, ends)
        results[fam] = summarise(rows, measures, task.direction == "maximize")
        results[fam]["seconds"] = round(time.monotonic() - t0, 1)
        rows_out[fam] = rows
        print(f"{fam}: {len(rows)} campaigns in {results[fam]['seconds']} s", file=sys.stderr)
    print(table(results, measures))
    if args.out:
        meta = {"instances": args.instances, "budget": args.budget, "arms": args.arms}
        payload = {"meta": meta, "results": results, "rows": rows_out}
        Path(args.out).write_text(json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
