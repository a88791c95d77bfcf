"""``rsi-rl bench``: agents side by side on held-out instances, equal budget, many seeds.

Protocol (DESIGN.md, "Evaluation protocol"): every agent runs one campaign per
*(instance, seed)* pair, the same pairs for every agent, each with the same budget of K
experiments (and the optional seconds cap). Campaign ``i`` (``i < seeds``) uses seed ``i``
on held-out instance ``instances[i % n]``; with ``instances=null`` every seed gets its own
held-out instance (the task's first ``seeds`` held-out seeds).

Each campaign's row (:mod:`rsi_rl.analysis.bench_campaign`) records its start, best-so-far
curve (per experiment and per second), test metric, the configuration found and, with
``remeasure_seeds`` > 0, the start and final incumbent re-measured on fresh seeds (the same
seeds for every agent of a pair: the campaign compared candidates on one evaluation seed,
so its best carries selection bias; the reruns remove it, and their spread is the
instance's seed noise). An optional ``oracle`` greedy search per instance adds to the
best known metric. A crash of one campaign is recorded (``error`` in its row) and the
bench goes on.

With a family (``family=``, :mod:`rsi_rl.core.families`) the instances come from its
``split`` (``val`` by default; ``test`` for the headline only). With a yardstick (read
from ``yardstick=``, or computed when the task knows its true values:
:mod:`rsi_rl.analysis.yardstick`) the bench also reports the headline of
:mod:`rsi_rl.analysis.headline`: the regret of the incumbent's *true* value at the
``endpoints`` and its AUC, per agent, and the declared ``comparisons`` (paired Wilcoxon,
Holm over all of them and every measure, the smallest effect each resolves). ``tpe_b``,
TPE with another sampler seed stream, runs beside ``tpe`` as an A/A arm (``aa_arm``).

Writes into the run directory ``protocol.json`` (before the first campaign),
``campaigns.jsonl`` and ``records.jsonl.gz`` (one line per experiment, with the true value
of the incumbent after it; as campaigns finish), ``yardstick.json``, ``oracle.jsonl``,
``bench.json`` (the measures of :mod:`rsi_rl.analysis.results`, the headline, the git
commit and the machine) and ``best_so_far_experiments.png`` / ``best_so_far_seconds.png``.
``python -m rsi_rl.analysis.rederive <run dir>`` recomputes the headline from the
protocol, records and yardstick alone.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rsi_rl.analysis.bench_campaign import guarded_campaign, make_bench_agent, run_one
from rsi_rl.analysis.folders import (
    BENCH_JSON,
    CAMPAIGNS,
    ORACLE,
    ORACLE_AGENT,
    write_bench_json,
    write_campaigns,
)
from rsi_rl.analysis.headline import (
    PROTOCOL,
    RECORDS,
    Protocol,
    check_endpoints,
    declared_comparisons,
    headline,
    read_records,
    write_records,
)
from rsi_rl.analysis.results import (
    HEADLINE_REGRET_TEXT,
    REGRET_FRESH_TEXT,
    REGRET_TEXT,
    BenchResult,
    Campaign,
    Row,
    summarise,
)
from rsi_rl.analysis.yardstick import YARDSTICK_JSON, bench_yardstick, has_truth
from rsi_rl.core.errors import ConfigError, UnknownAgentError
from rsi_rl.core.families import Family
from rsi_rl.core.families import family as get_family

log = logging.getLogger("rsi_rl")


def _pool(
    task: Any,
    seeds: int,
    instances: int | Sequence[int] | None,
    fam: Family | None = None,
    split: str = "val",
) -> list[int]:
    """The instances the campaigns cycle through: the task's held-out ones, or with a
    family, those of its ``split``."""
    source = list(fam.split(split)) if fam is not None else list(task.heldout_seeds)
    where = f"family {fam.name} split {split}" if fam is not None else "the held-out instances"
    if instances is None:
        pool = source[: int(seeds)]
    elif isinstance(instances, int):
        pool = source[: max(1, int(instances))]
    else:
        pool = [int(s) for s in instances]
        if fam is not None:
            allowed = fam.split(split)
            outside = [s for s in pool if s not in allowed]
            retired = [s for s in outside if any(s in r for r in fam.retired)]
            if outside:
                what = f"instances {outside[:5]} are not in {where} ({_span(allowed)})"
                if retired:
                    blocks = ", ".join(_span(r) for r in fam.retired)
                    what += f"; {retired[:5]} are in its retired test blocks ({blocks})"
                raise ConfigError(f"{what}; pick instances of the split, or another split")
    if not pool:
        raise ConfigError(f"instances selects no instance of {where}")
    return pool


def _span(seeds: range) -> str:
    return f"{seeds.start}-{seeds.stop - 1}" if len(seeds) else "none"


def provenance() -> dict[str, Any]:
    """The code and machine a bench ran on: git commit (and whether the tree was dirty),
    platform, Python, CPU count."""
    import os
    import platform
    import subprocess

    out: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    repo = Path(__file__).resolve().parents[2]
    try:
        git = ["git", "-C", str(repo)]
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode == 0:
            out["commit"] = head.stdout.strip()
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            out["dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


#: the A/A arm: TPE with another sampler seed stream (conf/agent/tpe_b.yaml)
AA_ARM = "tpe_b"
AA_SEED_OFFSET = 1_000_003


def _with_aa_arm(agents: list[str], agent_cfgs: dict[str, Any]) -> list[str]:
    """``agents`` with the A/A arm after ``tpe`` (when tpe runs): tpe's own config with
    another ``seed_offset``, unless ``tpe_b`` is configured already."""
    from rsi_rl.builder import to_plain

    if "tpe" not in agents:
        return agents
    if AA_ARM not in agents:
        agents = [*agents[: agents.index("tpe") + 1], AA_ARM, *agents[agents.index("tpe") + 1 :]]
    if AA_ARM not in agent_cfgs:
        base = dict(to_plain(agent_cfgs.get("tpe")) or {"_target_": "rsi_rl.agents.TPEAgent"})
        agent_cfgs[AA_ARM] = {**base, "seed_offset": AA_SEED_OFFSET}
    return agents


def _shipped_agent_configs(agents: Sequence[str], agent_cfgs: dict[str, Any]) -> None:
    """Add ``conf/agent/<name>.yaml`` for agents neither configured nor built in."""
    from omegaconf import OmegaConf

    from rsi_rl.agents import AGENTS
    from rsi_rl.confpaths import agent_config_file, conf_dir

    for name in agents:
        if name not in agent_cfgs and name not in AGENTS:
            path = agent_config_file(name, [conf_dir()])
            if path is not None:
                agent_cfgs[name] = OmegaConf.load(path)


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
    family: str | None = None,
    split: str = "val",
    yardstick: str | Path | None = None,
    endpoints: Sequence[int] | None = None,
    comparisons: Sequence[Sequence[str]] | None = None,
    aa_arm: bool = True,
    alpha: float = 0.05,
    power: float = 0.8,
) -> BenchResult:
    """Run the bench and write its files (see the module docstring) into ``run_dir``.

    Args:
        task: task name, instance or ``_target_`` mapping.
        agents: agent names (``conf/agent/<name>.yaml`` via ``agent_cfgs``, or built-ins).
        run_dir: output folder.
        budget: K experiments per campaign.
        seeds: campaigns per agent (seed ``i`` on instance ``i % n``).
        instances: number of instances (the first ones of the held-out seeds, or of the
            family's split), an explicit list of seeds, or None for one per seed.
        budget_seconds: optional seconds cap per campaign (same for every agent).
        agent_cfgs: Hydra configs of agents by name.
        env_kwargs: extra :class:`~rsi_rl.env.ResearchEnv` arguments.
        oracle_budget: if > 0, a greedy search of this many experiments per instance adds to
            the best known metric (not an agent of the comparison). It runs under the same
            ``env_kwargs`` as the campaigns, without the ``budget_seconds`` cap.
        plots: write the PNG plots.
        remeasure_seeds: rerun each campaign's start and final incumbent on this many fresh
            seeds (the same for every agent) for ``regret_fresh``; 0 = off.
        family: take instances from this family's ``split`` (:mod:`rsi_rl.core.families`); the
            task must be the family's.
        split: ``train``, ``val`` (default) or ``test`` (the headline only).
        yardstick: a yardstick JSON file (:mod:`rsi_rl.analysis.yardstick`); None or a
            missing file: computed when the task has true values. With one, the bench
            reports the headline (regret at ``endpoints``, AUC, declared comparisons).
        endpoints: experiment counts k at which regret is reported (default ``[budget]``).
        comparisons: declared comparisons, ``[a, b]`` or ``[a, b, less|greater|two-sided]``;
            None: every pair of agents, two-sided.
        aa_arm: add ``tpe_b`` (TPE, another sampler seed stream) beside ``tpe``, and its
            comparison with ``tpe``.
        alpha: the test level (Holm's correction over comparisons x measures).
        power: the power at which the resolvable effect of each comparison is reported.

    Returns:
        The :class:`~rsi_rl.analysis.results.BenchResult` that bench.json holds.

    Raises:
        UnknownAgentError: an agent name that is neither configured nor built in.
        ConfigError: bad budget, seeds, family, split, endpoints or comparisons, or an
            instance missing from the yardstick.
    """
    from rsi_rl.agents import AGENTS
    from rsi_rl.builder import make_env
    from rsi_rl.core.registry import make_task
    from rsi_rl.tracking import progress_bar

    agents = list(agents)
    agent_cfgs = dict(agent_cfgs or {})
    _shipped_agent_configs(agents, agent_cfgs)
    if aa_arm:
        agents = _with_aa_arm(agents, agent_cfgs)
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
    fam = get_family(family) if family is not None else None
    if fam is not None:
        fam.split(split)  # a bad split name fails here
        if split == "test":
            log.warning(
                f"split=test: {fam.name}'s headline instances; run them once, with the "
                "protocol committed, and choose nothing on these numbers"
            )
    task_obj = make_task(task)
    if fam is not None and task_obj.name != fam.task:
        raise ConfigError(
            f"family {fam.name} runs task {fam.task}, not {task_obj.name}; set task={fam.task}"
        )
    ends = check_endpoints(endpoints if endpoints is not None else [budget], budget)
    declared = declared_comparisons(comparisons, agents, ("tpe", AA_ARM) if aa_arm else None)
    pool = _pool(task_obj, seeds, instances, fam, split)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ys = bench_yardstick(task_obj, pool, yardstick, run_dir, fam.name if fam else None, split)
    truth_curve = callable(getattr(task_obj, "true_value", None)) and has_truth(task_obj)
    if ys is not None and not truth_curve and int(remeasure_seeds) < 1:
        raise ConfigError(
            f"task {task_obj.name} has no true values: its regret needs remeasure_seeds >= 1"
        )
    env_kwargs = dict(env_kwargs or {})
    if getattr(task_obj, "in_process", False):
        env_kwargs["executor"] = "serial"  # nothing to gain from workers: no sandbox runs
    env = make_env(task_obj, budget, pool, env_kwargs, budget_seconds=budget_seconds)
    for name in agents:  # a bad agent setting fails here, before any campaign runs
        make_bench_agent(name, agent_cfgs, seed=0)
    protocol = Protocol(
        task=task_obj.name,
        agents=agents,
        budget=int(budget),
        endpoints=ends,
        comparisons=declared,
        alpha=float(alpha),
        power=float(power),
        maximize=task_obj.direction == "maximize",
        family=fam.name if fam else None,
        split=split if fam else None,
        instances=pool,
        seeds=int(seeds),
        auc=truth_curve,
    )
    (run_dir / PROTOCOL).write_text(json.dumps(protocol.to_dict(), indent=2) + "\n")
    prov = provenance()  # the code the campaigns run, not what HEAD is when they end

    rows: list[Row] = []
    oracle: list[Row] = []
    t0 = time.monotonic()
    try:
        with (
            open(run_dir / CAMPAIGNS, "w") as fh,
            gzip.open(run_dir / RECORDS, "wt") as rec,
            progress_bar(int(seeds) * len(agents), "bench", "campaign") as bar,
        ):
            for i in range(int(seeds)):
                inst = pool[i % len(pool)]
                for name in agents:
                    row = guarded_campaign(env, name, agent_cfgs, i, inst, remeasure_seeds, ends)
                    rows.append(row)
                    fh.write(json.dumps(row.to_dict(), default=str) + "\n")
                    fh.flush()
                    bar.update(1)
                    if isinstance(row, Campaign):
                        write_records(rec, row.trace)
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
    if ys is not None:  # from the records as written: what rederive reads
        result = replace(result, headline=headline(read_records(run_dir / RECORDS), ys, protocol))
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
            "family": protocol.family,
            "split": protocol.split,
            "endpoints": ends,
            "comparisons": [list(c) for c in declared],
            "yardstick": YARDSTICK_JSON if ys is not None else None,
            "oracle_budget": int(oracle_budget),
            "remeasure_seeds": int(remeasure_seeds),
            "regret_fresh": REGRET_FRESH_TEXT,
            "regret": REGRET_TEXT,
            "headline_regret": HEADLINE_REGRET_TEXT if ys is not None else None,
            "wall_seconds": round(time.monotonic() - t0, 1),
            **prov,
        },
    )
    if plots:
        from rsi_rl.analysis.plots import plot_bench

        result = replace(result, plots=[str(p) for p in plot_bench(result, run_dir)])
    write_bench_json(run_dir / BENCH_JSON, result)
    return result


def bench_job(cfg: Any) -> BenchResult:
    """``rsi-rl bench``: the Hydra job."""

    from rsi_rl import builder
    from rsi_rl.analysis.tables import format_headline, format_table
    from rsi_rl.config_checks import check_instances
    from rsi_rl.core.registry import make_task
    from rsi_rl.tracking import log_bench, tracked

    s = builder.settings(cfg, "bench")
    run_dir = builder.run_dir()
    agents = [str(a) for a in s.agents]
    instances = check_instances(builder.to_plain(s.instances))
    task: Any = builder.to_plain(cfg.task)
    if s.family is not None:  # the family's task, with the task group's settings if it is it
        fam = get_family(s.family)
        if make_task(task).name != fam.task:
            task = fam.task
    with tracked(cfg, run_dir) as tracker:
        result = bench(
            task=task,
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
            family=s.family,
            split=s.split,
            yardstick=s.yardstick,
            endpoints=builder.to_plain(s.endpoints),
            comparisons=builder.to_plain(s.comparisons),
            aa_arm=s.aa_arm,
            alpha=s.alpha,
            power=s.power,
        )
        log_bench(tracker, run_dir, result.to_dict())
    log.info(format_table(result))
    if result.headline is not None:
        log.info(format_headline(result.headline))
    log.info(f"bench.json and plots in {run_dir}")
    return result


__all__ = ["bench", "bench_job"]
