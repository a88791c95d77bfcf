"""``rsi-rl bench``: agents side by side on held-out instances, equal budget, many seeds.

Protocol (DESIGN.md, "Evaluation protocol"): every agent runs one campaign per
*(instance, seed)* pair, the same pairs for every agent, each with the same budget of K
experiments (and the optional seconds cap). Campaign ``i`` (``i < seeds``) uses seed ``i``
on held-out instance ``instances[i % n]``; with ``instances=null`` every seed gets its own
held-out instance (the task's first ``seeds`` held-out seeds). Metrics, per agent:

* **normalised regret at K**: ``(best_known - best_K) / (best_known - start)`` on the
  validation metric (the one that rewards), clipped to [0, 1]; ``best_known`` of an
  instance is the best validation metric any campaign of any agent reached on it (plus
  the optional ``oracle`` search's), so 0 = as good as anything found. Mean and 95%
  bootstrap CI over campaigns.
* **AUC**: mean over k = 1..K of the normalised regret of the best-so-far (lower is
  better: it rewards improving early).
* **experiments to the reference** (tasks with a reference config): first k at which the
  best-so-far reaches the reference config's validation metric on the same seed. Two
  medians: among the campaigns that reach it (``experiments_to_reference_median``), and
  over all campaigns with a miss counted as K + 1 (``..._censored_median``; the first
  flatters an agent that is fast when it succeeds but often fails). Pairs also get a
  paired test of the censored counts (``paired[a_vs_b]["to_reference"]``).
* **paired wins**: for each pair of agents (once, ``a_vs_b`` with ``a`` listed before
  ``b`` in ``agents``: ``b``'s losses are ``a``'s wins), wins/ties/losses on regret at K over the same
  (instance, seed) pairs and the two-sided Wilcoxon signed-rank p-value; the same test of
  the AUC (``paired[a_vs_b]["auc"]``: who improves earlier) and of the absolute gap.
* **regret on fresh seeds** (``remeasure_seeds``, default 3): the same regret with each
  campaign's start and final incumbent re-measured on fresh seeds that no agent saw (the
  same seeds for every agent of a pair), against the best re-measured final of the
  instance. Selecting the best of many single-seed evaluations flatters agents that try
  many candidates (the winner's curse); this measure does not.
* **absolute gap at K** (``gap``): ``best_known - best_K`` in the metric's own units,
  not divided by the instance's headroom ``best_known - start``. Where the start is
  already within a few validation samples of the best known, one sample moves the
  normalised regret by 0.25 or more; the gap does not inflate those instances, so its
  paired test (``paired[a_vs_b]["gap"]``) weighs instances by how much metric is at stake.
  bench.json also lists each instance's ``headroom``. The normalised regret stays the
  primary measure (it makes instances of different headroom comparable: 0 = as good as
  the best known, 1 = no better than the start); the gap is reported beside it.
* **seed noise** (``noise_sd``, with ``remeasure_seeds`` >= 2): per instance, the pooled
  standard deviation of the final incumbents' metrics over the fresh seeds. Absolute gaps
  and differences between agents below it are within what retraining the same
  configuration on another seed changes. ``noise_regret`` is that sd divided by the
  instance's headroom (the normalised regret one sd amounts to; its median is
  ``noise_regret_median``), and each agent's ``gap_in_noise_sd_median`` / ``_mean`` is
  its absolute gap at K in units of the instance's sd. Rows keep the reruns
  (``start_fresh_values``, ``final_fresh_values``) and the configuration found
  (``best_config``).
* **Cotra milestones** (tasks with a reference config): share of campaigns that improve on
  the start (adequacy), reach the reference metric (parity), beat it (supremacy).

A crash of one campaign is recorded (``error`` in its row) and the bench goes on. Writes
``bench.json``, ``campaigns.jsonl`` and ``best_so_far_experiments.png`` /
``best_so_far_seconds.png`` into the run directory.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.errors import ConfigError, UnknownAgentError, fixable_cause, user_message

log = logging.getLogger("rsi_rl")


# ---------------------------------------------------------------------------- statistics
def bootstrap_ci(
    values: Sequence[float], n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return (math.nan, math.nan)
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return (float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2)))


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Wins of ``a`` over ``b`` (lower is better) and the Wilcoxon signed-rank p-value."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    d = x - y
    eps = 1e-12
    out: dict[str, Any] = {
        "n": int(len(d)),
        "wins": int((d < -eps).sum()),
        "ties": int((np.abs(d) <= eps).sum()),
        "losses": int((d > eps).sum()),
        "mean_diff": float(d.mean()) if len(d) else math.nan,
        "p_value": 1.0,
    }
    if (np.abs(d) > eps).sum() >= 1:
        from scipy.stats import wilcoxon

        try:
            out["p_value"] = float(wilcoxon(x, y, zero_method="wilcox").pvalue)
        except ValueError:
            out["p_value"] = 1.0
    return out


def improvement(a: float, b: float, maximize: bool = True) -> float:
    """How much metric value ``a`` beats ``b`` (negative when worse), whichever the direction."""
    return float(a - b) if maximize else float(b - a)


def normalised_regret(best: float, start: float, best_known: float, maximize: bool = True) -> float:
    """``(best_known - best) / (best_known - start)`` in [0, 1] (0 when nothing was found)."""
    gap = improvement(best_known, start, maximize)
    if gap <= 1e-12:
        return 0.0
    return float(min(1.0, max(0.0, improvement(best_known, best, maximize) / gap)))


# ---------------------------------------------------------------------------- campaigns
def _agent(name: str, agent_cfgs: dict[str, Any], seed: int) -> Any:
    from hydra.utils import instantiate

    from rsi_rl.agents import AGENTS, make_agent

    cfg = agent_cfgs.get(name)
    if cfg is not None:
        try:
            return instantiate(cfg, seed=seed)
        except Exception as exc:
            if fixable_cause(exc) is not None:  # e.g. a policy file that does not exist
                raise ConfigError(f"agent {name}: {user_message(exc)}") from exc
            raise
    if name in AGENTS:
        return make_agent(name, seed=seed)
    raise UnknownAgentError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")


def fresh_seeds(instance: int, seed: int, n: int) -> list[int]:
    """The ``n`` re-measurement seeds of campaign (instance, seed): the same for every agent."""
    rng = np.random.default_rng([int(instance), int(seed), 7919])
    return [int(s) for s in rng.integers(1, 2**31 - 1, size=int(n))]


def remeasure(env: Any, seed: int, n: int) -> tuple[list[float], list[float]]:
    """Validation metrics of the start and of the final incumbent on ``n`` fresh seeds.

    The campaign compared every candidate on one evaluation seed and kept the best, so its
    best-so-far carries selection bias (the winner's curse grows with the number of
    candidates tried). Rerunning the start and the final incumbent on seeds no agent saw
    removes it; the spread of the reruns is the instance's seed noise. The start's reruns
    are shared by all agents (served from the cache). Failed reruns are left out.
    """
    from rsi_rl.edits import start_candidate

    assert env.instance is not None
    start = start_candidate(env.task, env.instance.start_config)
    out: list[list[float]] = []
    for cand in (start, env.incumbent):
        vals = []
        for s in fresh_seeds(env.instance.seed, seed, n):
            res = env.runner.run(env.instance, cand, s)
            if res.status == "ok":
                vals.append(float(res.metrics[env.task.metric]))
        out.append(vals)
    return out[0], out[1]


def run_one(
    env: Any,
    agent: Any,
    seed: int,
    instance: int,
    reference: bool = True,
    remeasure_seeds: int = 0,
) -> dict[str, Any]:
    """One campaign; returns its row: start, best-so-far curve (per experiment, seconds),
    and with ``remeasure_seeds`` > 0 the start and final incumbent on fresh seeds."""
    from rsi_rl.edits import start_candidate
    from rsi_rl.search import run_campaign

    curve: list[float] = []
    seconds: list[float] = []

    def on_exp(record: dict[str, Any], info: dict[str, Any]) -> None:
        if record.get("kind") in ("baseline", "stop") or record.get("split") != "val":
            return
        # this experiment's own values: a batch is recorded one experiment at a time, but
        # the callbacks run after the whole batch, when the env holds the batch's last
        curve.append(float(record["incumbent_metric"]))
        seconds.append(float(record["seconds_used"]))

    t0 = time.monotonic()
    summary = run_campaign(
        env, agent, seed=seed, instance=instance, test=True, on_experiment=on_exp
    )
    row: dict[str, Any] = {
        "agent": agent.name or type(agent).__name__,
        "instance": int(instance),
        "seed": int(seed),
        "start": float(summary["start_metric"]),
        "best": float(summary["best_metric"]),
        "test": summary.get("test_metric"),
        "curve": curve,
        "seconds": seconds,
        "experiments": int(summary["experiments"]),
        "wall_seconds": round(time.monotonic() - t0, 2),
        "statuses": summary["statuses"],
        "best_edits": summary["best_edits"],
    }
    if summary.get("best_config") is not None:  # the configuration found, to rerun it
        row["best_config"] = summary["best_config"]
    if remeasure_seeds > 0:
        start_vals, final_vals = remeasure(env, seed, remeasure_seeds)
        row["start_fresh"] = float(np.mean(start_vals)) if start_vals else None
        row["final_fresh"] = float(np.mean(final_vals)) if final_vals else None
        row["start_fresh_values"], row["final_fresh_values"] = start_vals, final_vals
    ref_cfg = env.instance.reference_config if env.instance is not None else None
    if reference and ref_cfg is not None:
        ref = start_candidate(env.task, ref_cfg)
        res = env.runner.run(env.instance, ref, env.eval_seed)
        row["reference"] = float(res.metrics[env.task.metric]) if res.status == "ok" else None
    return row


def _best_known(rows: list[dict[str, Any]], maximize: bool) -> dict[int, float]:
    best: dict[int, float] = {}
    pick = max if maximize else min
    for r in rows:
        if "error" in r:
            continue
        vals = [r["best"], r["start"], *r["curve"]]
        if r.get("reference") is not None:
            vals.append(r["reference"])
        v = pick(vals)
        best[r["instance"]] = pick(best.get(r["instance"], v), v)
    return best


def _headroom(
    rows: list[dict[str, Any]], best_known: dict[int, float], maximize: bool
) -> dict[str, float]:
    """Per instance, how much metric the best known gains over the start config."""
    out: dict[str, float] = {}
    for r in rows:
        if "error" not in r and r["instance"] in best_known:
            out[str(r["instance"])] = improvement(best_known[r["instance"]], r["start"], maximize)
    return out


def _noise_sd(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per instance, the seed noise of a final incumbent: the pooled standard deviation of
    the campaigns' ``final_fresh_values`` (each campaign's own mean removed)."""
    sq: dict[int, float] = {}
    dof: dict[int, int] = {}
    for r in rows:
        vals = r.get("final_fresh_values") or []
        if "error" in r or len(vals) < 2:
            continue
        x = np.asarray(vals, dtype=float)
        sq[r["instance"]] = sq.get(r["instance"], 0.0) + float(((x - x.mean()) ** 2).sum())
        dof[r["instance"]] = dof.get(r["instance"], 0) + len(x) - 1
    return {str(i): float(math.sqrt(sq[i] / dof[i])) for i in sq}


def summarise(
    rows: list[dict[str, Any]], agents: list[str], budget: int, maximize: bool
) -> dict[str, Any]:
    """Per-agent metrics and pairwise tests from campaign rows (see the module docstring)."""
    best_known = _best_known(rows, maximize)
    better = (lambda a, b: a >= b - 1e-12) if maximize else (lambda a, b: a <= b + 1e-12)
    by_agent: dict[str, dict[tuple[int, int], dict[str, Any]]] = {a: {} for a in agents}
    for r in rows:
        if "error" in r or r["agent"] not in by_agent:  # the oracle's rows: best_known only
            continue
        bk = best_known[r["instance"]]
        curve = r["curve"] + [r["best"]] * max(0, budget - len(r["curve"]))
        curve = curve[:budget] if curve else [r["start"]] * budget
        regs = [normalised_regret(v, r["start"], bk, maximize) for v in curve]
        r["regret"] = normalised_regret(r["best"], r["start"], bk, maximize)
        r["gap"] = max(0.0, improvement(bk, r["best"], maximize))
        r["auc"] = float(np.mean(regs))
        r["regret_curve"] = regs
        if r.get("reference") is not None:
            hit = [k + 1 for k, v in enumerate(r["curve"]) if better(v, r["reference"])]
            r["to_reference"] = hit[0] if hit else None
            # a campaign that never reaches it counts as K + 1 (censored at the budget)
            r["to_reference_censored"] = hit[0] if hit else budget + 1
        by_agent[r["agent"]][(r["instance"], r["seed"])] = r
    # regret of the final incumbents re-measured on fresh seeds (no selection bias)
    pick = max if maximize else min
    fresh_known: dict[int, float] = {}
    for r in rows:
        if "error" in r or r.get("final_fresh") is None or r.get("start_fresh") is None:
            continue
        v = pick(r["final_fresh"], r["start_fresh"])
        fresh_known[r["instance"]] = pick(fresh_known.get(r["instance"], v), v)
    for r in rows:
        if (
            "error" not in r
            and r.get("final_fresh") is not None
            and r.get("start_fresh") is not None
        ):
            r["regret_fresh"] = normalised_regret(
                r["final_fresh"], r["start_fresh"], fresh_known[r["instance"]], maximize
            )
    out: dict[str, Any] = {}
    for a in agents:
        rs = list(by_agent[a].values())
        regret = [r["regret"] for r in rs]
        auc = [r["auc"] for r in rs]
        entry: dict[str, Any] = {
            "campaigns": len(rs),
            "errors": sum(1 for r in rows if r["agent"] == a and "error" in r),
            "regret_mean": float(np.mean(regret)) if rs else None,
            "regret_ci95": bootstrap_ci(regret),
            "regret_median": float(np.median(regret)) if rs else None,
            "gap_mean": float(np.mean([r["gap"] for r in rs])) if rs else None,
            "gap_ci95": bootstrap_ci([r["gap"] for r in rs]),
            "auc_mean": float(np.mean(auc)) if rs else None,
            "auc_ci95": bootstrap_ci(auc),
            "best_mean": float(np.mean([r["best"] for r in rs])) if rs else None,
            "start_mean": float(np.mean([r["start"] for r in rs])) if rs else None,
            "test_mean": float(np.mean([r["test"] for r in rs if r.get("test") is not None]))
            if any(r.get("test") is not None for r in rs)
            else None,
            "seconds_mean": float(np.mean([r["seconds"][-1] if r["seconds"] else 0.0 for r in rs]))
            if rs
            else None,
        }
        fresh = [r["regret_fresh"] for r in rs if r.get("regret_fresh") is not None]
        if fresh:
            entry["regret_fresh_mean"] = float(np.mean(fresh))
            entry["regret_fresh_ci95"] = bootstrap_ci(fresh)
            entry["final_fresh_mean"] = float(
                np.mean([r["final_fresh"] for r in rs if r.get("regret_fresh") is not None])
            )
        with_ref = [r for r in rs if r.get("reference") is not None]
        if with_ref:
            hits = [r["to_reference"] for r in with_ref if r.get("to_reference") is not None]
            entry["experiments_to_reference_median"] = float(np.median(hits)) if hits else None
            entry["experiments_to_reference_censored_median"] = float(
                np.median([r["to_reference_censored"] for r in with_ref])
            )
            entry["reached_reference"] = len(hits) / len(with_ref)
            cmp_gt = (lambda x, y: x > y + 1e-12) if maximize else (lambda x, y: x < y - 1e-12)
            entry["cotra"] = {
                "adequacy": float(np.mean([cmp_gt(r["best"], r["start"]) for r in with_ref])),
                "parity": float(np.mean([better(r["best"], r["reference"]) for r in with_ref])),
                "supremacy": float(np.mean([cmp_gt(r["best"], r["reference"]) for r in with_ref])),
            }
        out[a] = entry
    pairs: dict[str, Any] = {}
    for ia, a in enumerate(agents):
        for b in agents[ia + 1 :]:  # each unordered pair once, a before b in list order
            if a == b:
                continue
            keys = sorted(set(by_agent[a]) & set(by_agent[b]))
            pairs[f"{a}_vs_{b}"] = paired_test(
                [by_agent[a][k]["regret"] for k in keys], [by_agent[b][k]["regret"] for k in keys]
            )
            for measure in ("gap", "auc"):
                pairs[f"{a}_vs_{b}"][measure] = paired_test(
                    [by_agent[a][k][measure] for k in keys],
                    [by_agent[b][k][measure] for k in keys],
                )
            fk = [
                k
                for k in keys
                if "regret_fresh" in by_agent[a][k] and "regret_fresh" in by_agent[b][k]
            ]
            if fk:
                pairs[f"{a}_vs_{b}"]["fresh"] = paired_test(
                    [by_agent[a][k]["regret_fresh"] for k in fk],
                    [by_agent[b][k]["regret_fresh"] for k in fk],
                )
            rk = [
                k
                for k in keys
                if "to_reference_censored" in by_agent[a][k]
                and "to_reference_censored" in by_agent[b][k]
            ]
            if rk:
                pairs[f"{a}_vs_{b}"]["to_reference"] = paired_test(
                    [by_agent[a][k]["to_reference_censored"] for k in rk],
                    [by_agent[b][k]["to_reference_censored"] for k in rk],
                )
    headroom = _headroom(rows, best_known, maximize)
    noise = _noise_sd(rows)
    for a, entry in out.items():
        in_sd = [
            r["gap"] / noise[str(r["instance"])]
            for r in by_agent[a].values()
            if noise.get(str(r["instance"]), 0.0) > 0
        ]
        if in_sd:
            entry["gap_in_noise_sd_median"] = float(np.median(in_sd))
            entry["gap_in_noise_sd_mean"] = float(np.mean(in_sd))
    result: dict[str, Any] = {
        "agents": out,
        "paired": pairs,
        "best_known": {str(k): v for k, v in best_known.items()},
        "headroom": headroom,
        "noise_sd": noise,
        "best_known_fresh": {str(k): v for k, v in fresh_known.items()},
    }
    # the normalised regret that one seed-noise sd amounts to on each instance: agents
    # whose regrets differ by less than this are within retraining noise of each other
    floor = {i: min(1.0, sd / headroom[i]) for i, sd in noise.items() if headroom.get(i, 0) > 0}
    if floor:
        result["noise_regret"] = floor
        result["noise_regret_median"] = float(np.median(list(floor.values())))
    return result


def plot(
    rows: list[dict[str, Any]], agents: list[str], budget: int, run_dir: Path, metric: str
) -> list[Path]:
    """Best-so-far (normalised regret) vs experiments and vs seconds, mean over campaigns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rsi_rl.report import regret_band

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for a in agents:
        curves = np.array(
            [r["regret_curve"] for r in rows if r["agent"] == a and "regret_curve" in r]
        )
        if len(curves) == 0:
            continue
        k = np.arange(1, budget + 1)
        m, lo, hi = regret_band(curves.tolist())  # 95% band, clipped to [0, 1]
        ax.plot(k, m, label=a)
        ax.fill_between(k, lo, hi, alpha=0.2)
    ax.set_xlabel("experiments")
    ax.set_ylabel(f"normalised regret of best-so-far ({metric})")
    ax.set_title("normalised regret of best-so-far vs experiments")
    ax.legend()
    fig.tight_layout()
    paths.append(run_dir / "best_so_far_experiments.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    tmax = max((r["seconds"][-1] for r in rows if r.get("seconds")), default=1.0)
    grid = np.linspace(0, tmax, 100)
    for a in agents:
        series = []
        for r in rows:
            if r["agent"] != a or "regret_curve" not in r or not r["seconds"]:
                continue
            regs = [1.0] + r["regret_curve"][: len(r["seconds"])]
            times = [0.0] + r["seconds"]
            idx = np.searchsorted(times, grid, side="right") - 1
            series.append(np.asarray(regs)[np.clip(idx, 0, len(regs) - 1)])
        if series:
            ax.plot(grid, np.mean(series, axis=0), label=a)
    ax.set_xlabel("experiment seconds (wall-clock, cumulative)")
    ax.set_ylabel("normalised regret of best-so-far")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_title("best-so-far vs seconds")
    ax.legend()
    fig.tight_layout()
    paths.append(run_dir / "best_so_far_seconds.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


# ---------------------------------------------------------------------------- the job
def bench(
    task: Any,
    agents: Sequence[str],
    run_dir: str | Path,
    budget: int = 20,
    seeds: int = 20,
    instances: int | Sequence[int] | None = None,
    budget_seconds: float | None = None,
    agent_cfgs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    oracle_budget: int = 0,
    plots: bool = True,
    remeasure_seeds: int = 3,
) -> dict[str, Any]:
    """Run the bench and write ``bench.json`` (+ plots) into ``run_dir``; returns the result.

    Args:
        task: task name, instance or ``_target_`` mapping.
        agents: agent names (``conf/agent/<name>.yaml`` via ``agent_cfgs``, or built-ins).
        run_dir: output folder.
        budget: K experiments per campaign.
        seeds: campaigns per agent (seed ``i`` on instance ``i % n``).
        instances: number of held-out instances (the task's first ones), an explicit list of
            seeds, or None for one per seed.
        budget_seconds: optional seconds cap per campaign (same for every agent).
        agent_cfgs: Hydra configs of agents by name.
        env_kwargs: extra :class:`~rsi_rl.env.ResearchEnv` arguments.
        oracle_budget: if > 0, a greedy search of this many experiments per instance adds to
            the best known metric (not an agent of the comparison). It runs under the same
            ``env_kwargs`` as the campaigns, without the ``budget_seconds`` cap.
        plots: write the PNG plots.
        remeasure_seeds: rerun each campaign's start and final incumbent on this many fresh
            seeds (the same for every agent) for ``regret_fresh``; 0 = off.

    Raises:
        UnknownAgentError: an agent name that is neither configured nor built in.
        ConfigError: bad budget or seeds.
    """
    from rsi_rl.agents import AGENTS
    from rsi_rl.env import ResearchEnv
    from rsi_rl.registry import make_task

    agents = list(agents)
    agent_cfgs = dict(agent_cfgs or {})
    known = sorted(set(AGENTS) | set(agent_cfgs))
    for a in agents:
        if a not in known:
            raise UnknownAgentError(
                f"unknown agent {a!r} in agents; known agents: {', '.join(known)}"
            )
    if not agents:
        raise ConfigError(f"agents is empty; name some of: {', '.join(known)}")
    if int(budget) < 1 or int(seeds) < 1:
        raise ConfigError(f"budget and seeds must be positive, got budget={budget} seeds={seeds}")
    task_obj = make_task(task)
    heldout = list(task_obj.heldout_seeds)
    if instances is None:
        pool = heldout[: int(seeds)]
    elif isinstance(instances, int):
        pool = heldout[: max(1, int(instances))]
    else:
        pool = [int(s) for s in instances]
    if not pool:
        raise ConfigError("instances selects no held-out instance")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    maximize = task_obj.direction == "maximize"
    env = ResearchEnv(
        task=task_obj,
        budget=int(budget),
        budget_seconds=budget_seconds,
        instances=pool,
        **(env_kwargs or {}),
    )
    for name in agents:  # a bad agent setting fails here, before any campaign runs
        _agent(name, agent_cfgs, seed=0)
    from rsi_rl.tracking import progress_bar

    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        with (
            open(run_dir / "campaigns.jsonl", "w") as fh,
            progress_bar(int(seeds) * len(agents), "bench", "campaign") as bar,
        ):
            for i in range(int(seeds)):
                inst = pool[i % len(pool)]
                for name in agents:
                    try:
                        agent = _agent(name, agent_cfgs, seed=i)
                        row = run_one(
                            env, agent, seed=i, instance=inst, remeasure_seeds=remeasure_seeds
                        )
                        row["agent"] = name
                    except (UnknownAgentError, ConfigError):
                        raise
                    except Exception as exc:  # noqa: BLE001 - one crash must not stop the bench
                        row = {
                            "agent": name,
                            "instance": inst,
                            "seed": i,
                            "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc()[-2000:],
                        }
                        log.warning(
                            f"campaign {name} seed {i} instance {inst} failed: {row['error']}"
                        )
                    rows.append(row)
                    fh.write(json.dumps(row, default=str) + "\n")
                    fh.flush()
                    bar.update(1)
                    if "error" not in row:
                        log.info(
                            f"[{i + 1}/{seeds}] {name:<8} instance {inst}: {row['start']:.4f} -> "
                            f"{row['best']:.4f} in {row['experiments']} experiments "
                            f"({row['wall_seconds']:.1f}s)"
                        )
            if oracle_budget > 0:
                for inst in pool:
                    oracle_env = ResearchEnv(  # the campaigns' settings, its own budget
                        task=task_obj,
                        budget=int(oracle_budget),
                        instances=[inst],
                        **(env_kwargs or {}),
                    )
                    try:
                        from rsi_rl.agents import GreedyAgent

                        r = run_one(oracle_env, GreedyAgent(seed=0), seed=0, instance=inst)
                        r["agent"] = "_oracle"
                        rows.append(r)
                    finally:
                        oracle_env.close()
    finally:
        env.close()
    result = summarise(rows, agents, int(budget), maximize)
    result["setup"] = {
        "task": task_obj.name,
        "metric": task_obj.metric,
        "direction": task_obj.direction,
        "agents": agents,
        "budget": int(budget),
        "budget_seconds": budget_seconds,
        "seeds": int(seeds),
        "instances": pool,
        "oracle_budget": int(oracle_budget),
        "remeasure_seeds": int(remeasure_seeds),
        "regret_fresh": "the same with the start and final incumbent re-measured on fresh seeds (mean)",
        "regret": "(best_known - best) / (best_known - start) on the validation metric, clipped to [0, 1]",
        "wall_seconds": round(time.monotonic() - t0, 1),
    }
    if plots:
        result["plots"] = [
            str(p) for p in plot(rows, agents, int(budget), run_dir, task_obj.metric)
        ]
    (run_dir / "bench.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def format_table(result: dict[str, Any]) -> str:
    """The per-agent table and paired p-values of a bench result, as text."""
    lines = [f"{'agent':<10} {'regret@K':>9} {'95% CI':>17} {'AUC':>7} {'best':>7} {'n':>4}"]
    for a, e in result["agents"].items():
        if e["regret_mean"] is None:
            lines.append(f"{a:<10} (no campaign finished; {e['errors']} errors)")
            continue
        lo, hi = e["regret_ci95"]
        lines.append(
            f"{a:<10} {e['regret_mean']:9.3f} [{lo:6.3f}, {hi:6.3f}] {e['auc_mean']:7.3f} "
            f"{e['best_mean']:7.4f} {e['campaigns']:4d}"
        )
        if e.get("gap_mean") is not None:
            lines.append(
                f"{'':<10} absolute gap to the best known: {e['gap_mean']:.4f}"
                + (
                    f" (median {e['gap_in_noise_sd_median']:.2f} seed-noise sd)"
                    if "gap_in_noise_sd_median" in e
                    else ""
                )
            )
        if "regret_fresh_mean" in e:
            flo, fhi = e["regret_fresh_ci95"]
            lines.append(
                f"{'':<10} re-measured on fresh seeds: regret {e['regret_fresh_mean']:.3f} "
                f"[{flo:.3f}, {fhi:.3f}], final metric {e['final_fresh_mean']:.4f}"
            )
        if "cotra" in e:
            c = e["cotra"]
            lines.append(
                f"{'':<10} cotra adequacy {c['adequacy']:.2f} parity {c['parity']:.2f} "
                f"supremacy {c['supremacy']:.2f}; median experiments to reference "
                f"{e['experiments_to_reference_median']} among hits, "
                f"{e['experiments_to_reference_censored_median']} with a miss as K+1"
            )
    noise = result.get("noise_sd") or {}
    if noise:
        sd = float(np.median(list(noise.values())))
        lines.append(
            f"seed noise of a final incumbent (sd over fresh seeds), median over instances: "
            f"{sd:.4f}"
            + (
                f" (= normalised regret {result['noise_regret_median']:.3f})"
                if "noise_regret_median" in result
                else ""
            )
        )
    from rsi_rl.report import unordered_pairs

    for key, p in unordered_pairs(result["paired"]).items():  # older files hold both a_vs_b, b_vs_a
        if isinstance(p, dict) and "wins" in p:
            lines.append(
                f"{key}: wins {p['wins']} ties {p['ties']} losses {p['losses']} "
                f"(p = {p['p_value']:.3g}, Wilcoxon signed-rank)"
                + (f"; absolute gap p = {p['gap']['p_value']:.3g}" if "gap" in p else "")
                + (
                    f"; AUC {p['auc']['wins']}/{p['auc']['ties']}/{p['auc']['losses']} "
                    f"(p = {p['auc']['p_value']:.3g})"
                    if "auc" in p
                    else ""
                )
                + (
                    f"; fresh seeds: {p['fresh']['wins']}/{p['fresh']['ties']}/"
                    f"{p['fresh']['losses']} (p = {p['fresh']['p_value']:.3g})"
                    if "fresh" in p
                    else ""
                )
            )
    return "\n".join(lines)


def _search_dirs() -> list[Path]:
    """The folders of Hydra's config search path, in its order (``--config-dir`` first)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [
        Path(source.path)
        for source in HydraConfig.get().runtime.config_sources
        if source.schema == "file"
    ]


def _agent_config_file(name: str, dirs: Sequence[Path]) -> Path | None:
    """``<dir>/agent/<name>.yaml`` of the first of ``dirs`` that has it (None: none has)."""
    for d in dirs:
        path = Path(d) / "agent" / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def bench_job(cfg: Any) -> dict[str, Any]:
    """``rsi-rl bench``: the Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from rsi_rl.cli import conf_dir, executor_spec

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    agents = [str(a) for a in cfg.agents]
    agent_cfgs: dict[str, Any] = {}
    for name in agents:
        path = _agent_config_file(name, [*_search_dirs(), conf_dir()])
        if path is not None:
            agent_cfgs[name] = OmegaConf.load(path)
    batch_size = int(cfg.get("batch_size") or 1)
    for name in agent_cfgs:  # agents that batch (their config has the key): random, tpe
        if batch_size > 1 and "batch_size" in agent_cfgs[name]:
            agent_cfgs[name].batch_size = batch_size
    overrides = cfg.get("agent_overrides") or {}
    for name, extra in overrides.items():
        if name in agent_cfgs:
            agent_cfgs[name] = OmegaConf.merge(agent_cfgs[name], extra)
    sandbox_cfg: dict[str, Any] = OmegaConf.to_container(cfg.sandbox, resolve=True)  # type: ignore[assignment]
    sandbox = {k: v for k, v in sandbox_cfg.items() if v is not None}
    instances = cfg.instances
    if instances is not None and not isinstance(instances, int):
        instances = [int(s) for s in instances]
    from rsi_rl.tracking import log_bench, tracked

    with tracked(cfg, run_dir) as tracker:
        result = bench(
            task=OmegaConf.to_container(cfg.task, resolve=True),
            agents=agents,
            run_dir=run_dir,
            budget=int(cfg.budget),
            seeds=int(cfg.seeds),
            instances=instances,
            budget_seconds=cfg.budget_seconds,
            agent_cfgs=agent_cfgs,
            env_kwargs={
                "keep_threshold": float(cfg.env.keep_threshold),
                "cost_per_second": float(cfg.env.cost_per_second),
                "invalid_penalty": float(cfg.env.invalid_penalty),
                "sandbox": sandbox,
                "executor": executor_spec(cfg),
            },
            oracle_budget=int(cfg.oracle_budget),
            plots=bool(cfg.plots),
            remeasure_seeds=int(cfg.get("remeasure_seeds", 3)),
        )
        log_bench(tracker, run_dir, result)
    log.info(format_table(result))
    log.info(f"bench.json and plots in {run_dir}")
    return result


__all__ = [
    "bench",
    "bench_job",
    "bootstrap_ci",
    "format_table",
    "normalised_regret",
    "paired_test",
    "summarise",
]
