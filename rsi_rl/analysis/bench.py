"""``rsi-rl bench``: agents side by side on held-out instances, equal budget, many seeds.

Protocol (DESIGN.md, "Evaluation protocol"): every agent runs one campaign per
*(instance, seed)* pair, the same pairs for every agent, each with the same budget of K
experiments (and the optional seconds cap). Campaign ``i`` (``i < seeds``) uses seed ``i``
on held-out instance ``instances[i % n]``; with ``instances=null`` every seed gets its own
held-out instance (the task's first ``seeds`` held-out seeds).

Each campaign's row records its start, best-so-far curve (per experiment and per second),
test metric, the configuration found and, with ``remeasure_seeds`` > 0, the start and
final incumbent re-measured on fresh seeds (the same seeds for every agent of a pair: the
campaign compared candidates on one evaluation seed, so its best carries selection bias;
the reruns remove it, and their spread is the instance's seed noise). An optional
``oracle`` greedy search per instance adds to the best known metric. A crash of one
campaign is recorded (``error`` in its row) and the bench goes on.

Writes into the run directory ``campaigns.jsonl`` (as campaigns finish),
``oracle.jsonl``, ``bench.json`` (the measures of :mod:`rsi_rl.analysis.results`) and
``best_so_far_experiments.png`` / ``best_so_far_seconds.png``.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.analysis.folders import (
    BENCH_JSON,
    CAMPAIGNS,
    ORACLE,
    ORACLE_AGENT,
    write_bench_json,
    write_campaigns,
)
from rsi_rl.analysis.results import (
    REGRET_FRESH_TEXT,
    REGRET_TEXT,
    BenchResult,
    Campaign,
    FailedCampaign,
    Row,
    summarise,
)
from rsi_rl.errors import ConfigError, UnknownAgentError

log = logging.getLogger("rsi_rl")


def make_bench_agent(name: str, agent_cfgs: dict[str, Any], seed: int) -> Any:
    """Agent ``name`` from its config in ``agent_cfgs`` (:func:`rsi_rl.builder.build_agent`),
    else the built-in of that name."""
    from rsi_rl.agents import AGENTS, make_agent
    from rsi_rl.builder import build_agent

    cfg = agent_cfgs.get(name)
    if cfg is not None:
        return build_agent(cfg, seed, name)
    if name in AGENTS:
        return make_agent(name, seed=seed)
    raise UnknownAgentError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")


def fresh_seeds(instance: int, seed: int, n: int) -> list[int]:
    """The ``n`` re-measurement seeds of campaign (instance, seed): the same for every agent."""
    rng = np.random.default_rng([int(instance), int(seed), 7919])
    return [int(s) for s in rng.integers(1, 2**31 - 1, size=int(n))]


def remeasure(env: Any, seed: int, n: int) -> tuple[list[float], list[float]]:
    """Validation metrics of the start and of the final incumbent on ``n`` fresh seeds.

    The start's reruns are shared by all agents (served from the cache). Failed reruns
    are left out.
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
    label: str | None = None,
) -> Campaign:
    """One campaign of ``agent`` (recorded under ``label``, default its name): the start,
    the best-so-far curve per experiment and per second, and with ``remeasure_seeds`` > 0
    the start and final incumbent on fresh seeds."""
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
    test = summary.get("test_metric")
    row = Campaign(
        agent=label or agent.name or type(agent).__name__,
        instance=int(instance),
        seed=int(seed),
        start=float(summary["start_metric"]),
        best=float(summary["best_metric"]),
        test=float(test) if test is not None else None,
        curve=curve,
        seconds=seconds,
        experiments=int(summary["experiments"]),
        wall_seconds=round(time.monotonic() - t0, 2),
        statuses=summary["statuses"],
        best_edits=summary["best_edits"],
        best_config=summary.get("best_config"),  # the configuration found, to rerun it
    )
    if remeasure_seeds > 0:
        start_vals, final_vals = remeasure(env, seed, remeasure_seeds)
        row = replace(
            row,
            start_fresh=float(np.mean(start_vals)) if start_vals else None,
            final_fresh=float(np.mean(final_vals)) if final_vals else None,
            start_fresh_values=start_vals,
            final_fresh_values=final_vals,
        )
    ref_cfg = env.instance.reference_config if env.instance is not None else None
    if reference and ref_cfg is not None:
        res = env.runner.run(env.instance, start_candidate(env.task, ref_cfg), env.eval_seed)
        if res.status == "ok":
            row = replace(row, reference=float(res.metrics[env.task.metric]))
    return row


def _pool(task: Any, seeds: int, instances: int | Sequence[int] | None) -> list[int]:
    """The held-out instances the campaigns cycle through."""
    heldout = list(task.heldout_seeds)
    if instances is None:
        pool = heldout[: int(seeds)]
    elif isinstance(instances, int):
        pool = heldout[: max(1, int(instances))]
    else:
        pool = [int(s) for s in instances]
    if not pool:
        raise ConfigError("instances selects no held-out instance")
    return pool


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
) -> BenchResult:
    """Run the bench and write its files (see the module docstring) into ``run_dir``.

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

    Returns:
        The :class:`~rsi_rl.analysis.results.BenchResult` that bench.json holds.

    Raises:
        UnknownAgentError: an agent name that is neither configured nor built in.
        ConfigError: bad budget or seeds.
    """
    from rsi_rl.agents import AGENTS
    from rsi_rl.builder import make_env
    from rsi_rl.registry import make_task
    from rsi_rl.tracking import progress_bar

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
    pool = _pool(task_obj, seeds, instances)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    env_kwargs = dict(env_kwargs or {})
    env = make_env(task_obj, budget, pool, env_kwargs, budget_seconds=budget_seconds)
    for name in agents:  # a bad agent setting fails here, before any campaign runs
        make_bench_agent(name, agent_cfgs, seed=0)

    rows: list[Row] = []
    oracle: list[Row] = []
    t0 = time.monotonic()
    try:
        with (
            open(run_dir / CAMPAIGNS, "w") as fh,
            progress_bar(int(seeds) * len(agents), "bench", "campaign") as bar,
        ):
            for i in range(int(seeds)):
                inst = pool[i % len(pool)]
                for name in agents:
                    row = _campaign(env, name, agent_cfgs, i, inst, remeasure_seeds)
                    rows.append(row)
                    fh.write(json.dumps(row.to_dict(), default=str) + "\n")
                    fh.flush()
                    bar.update(1)
                    if isinstance(row, Campaign):
                        log.info(
                            f"[{i + 1}/{seeds}] {name:<8} instance {inst}: {row.start:.4f} -> "
                            f"{row.best:.4f} in {row.experiments} experiments "
                            f"({row.wall_seconds:.1f}s)"
                        )
    finally:
        env.close()
    if oracle_budget > 0:
        from rsi_rl.agents import GreedyAgent

        for inst in pool:
            # the campaigns' settings, its own budget, no seconds cap
            oracle_env = make_env(task_obj, oracle_budget, [inst], env_kwargs)
            try:
                oracle.append(run_one(oracle_env, GreedyAgent(seed=0), 0, inst, label=ORACLE_AGENT))
            finally:
                oracle_env.close()
        write_campaigns(run_dir / ORACLE, oracle)
    result = summarise([*rows, *oracle], agents, int(budget), task_obj.direction == "maximize")
    result = replace(
        result,
        setup={
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
            "regret_fresh": REGRET_FRESH_TEXT,
            "regret": REGRET_TEXT,
            "wall_seconds": round(time.monotonic() - t0, 1),
        },
    )
    if plots:
        from rsi_rl.analysis.plots import plot_bench

        result = replace(result, plots=[str(p) for p in plot_bench(result, run_dir)])
    write_bench_json(run_dir / BENCH_JSON, result)
    return result


def _campaign(
    env: Any, name: str, agent_cfgs: dict[str, Any], seed: int, inst: int, remeasure_seeds: int
) -> Row:
    """Agent ``name``'s campaign on (inst, seed); a crash is recorded, not raised (a bad
    agent setting is)."""
    try:
        agent = make_bench_agent(name, agent_cfgs, seed=seed)
        return run_one(env, agent, seed, inst, remeasure_seeds=remeasure_seeds, label=name)
    except (UnknownAgentError, ConfigError):
        raise
    except Exception as exc:  # noqa: BLE001 - one crash must not stop the bench
        row = FailedCampaign(
            agent=name,
            instance=inst,
            seed=seed,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc()[-2000:],
        )
        log.warning(f"campaign {name} seed {seed} instance {inst} failed: {row.error}")
        return row


def bench_job(cfg: Any) -> BenchResult:
    """``rsi-rl bench``: the Hydra job."""

    from rsi_rl import builder
    from rsi_rl.analysis.tables import format_table
    from rsi_rl.config_checks import check_instances
    from rsi_rl.tracking import log_bench, tracked

    s = builder.settings(cfg, "bench")
    run_dir = builder.run_dir()
    agents = [str(a) for a in s.agents]
    instances = check_instances(builder.to_plain(s.instances))
    with tracked(cfg, run_dir) as tracker:
        result = bench(
            task=builder.to_plain(cfg.task),
            agents=agents,
            run_dir=run_dir,
            budget=s.budget,
            seeds=s.seeds,
            instances=instances,
            budget_seconds=s.budget_seconds,
            agent_cfgs=builder.agent_configs(agents, cfg),
            env_kwargs=builder.env_kwargs(cfg),
            oracle_budget=s.oracle_budget,
            plots=s.plots,
            remeasure_seeds=s.remeasure_seeds,
        )
        log_bench(tracker, run_dir, result.to_dict())
    log.info(format_table(result))
    log.info(f"bench.json and plots in {run_dir}")
    return result


__all__ = ["bench", "bench_job", "fresh_seeds", "remeasure", "run_one"]
