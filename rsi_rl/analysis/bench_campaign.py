"""One campaign of ``rsi-rl bench``: its agent, its records and its truth curve.

:func:`run_one` runs an agent's campaign on one held-out instance and records a
:class:`~rsi_rl.analysis.results.Campaign`: the start, the best-so-far curve per experiment
and per second, the test metric, and a ``trace`` of one line per experiment holding the
incumbent after it and its ``truth`` (what :mod:`rsi_rl.analysis.headline` scores): the
task's ``true_value`` of that incumbent where the task has one, else its mean over fresh
seeds at the endpoints. :func:`fresh_seeds` are the re-measurement seeds of a campaign, the
same for every agent of an (instance, seed) pair. :func:`guarded_campaign` is the bench's
call: a crash of one campaign becomes a
:class:`~rsi_rl.analysis.results.FailedCampaign` row.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rsi_rl.analysis.results import Campaign, FailedCampaign, Row
from rsi_rl.analysis.yardstick import true_value
from rsi_rl.core.errors import ConfigError, UnknownAgentError

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
    from rsi_rl.core.edits import start_candidate

    assert env.instance is not None
    start = start_candidate(env.task, env.instance.start_config)
    return _fresh_values(env, start, seed, n), _fresh_values(env, env.incumbent, seed, n)


def _fresh_values(env: Any, candidate: Any, seed: int, n: int) -> list[float]:
    """Validation metrics of ``candidate`` on the ``n`` fresh seeds of campaign (the env's
    instance, ``seed``); failed reruns are left out."""
    vals = []
    for s in fresh_seeds(env.instance.seed, seed, n):
        res = env.runner.run(env.instance, candidate, s)
        if res.status == "ok":
            vals.append(float(res.metrics[env.task.metric]))
    return vals


def run_one(
    env: Any,
    agent: Any,
    seed: int,
    instance: int,
    reference: bool = True,
    remeasure_seeds: int = 0,
    label: str | None = None,
    endpoints: Sequence[int] = (),
) -> Campaign:
    """One campaign of ``agent`` (recorded under ``label``, default its name): the start,
    the best-so-far curve per experiment and per second, and with ``remeasure_seeds`` > 0
    the start and final incumbent on fresh seeds.

    The campaign's ``trace`` holds one line per experiment (and a ``k = 0`` line for the
    start) with the incumbent after it and its ``truth``: the task's ``true_value`` of that
    incumbent where the task has one (``truth`` is then the whole curve, and ``truth_run``
    the true value of the candidate the experiment ran, kept or not), else, with
    ``remeasure_seeds`` > 0, its mean over the fresh seeds at each of ``endpoints`` (and
    at the start).
    """
    from rsi_rl.core.edits import start_candidate
    from rsi_rl.search import run_campaign

    name = label or agent.name or type(agent).__name__
    curve: list[float] = []
    seconds: list[float] = []
    trace: list[dict[str, Any]] = []
    incumbents: list[Any] = []  # the incumbent candidate after k experiments, k = 0..
    seen: dict[str, Any] = {}  # candidate hash -> candidate, of every proposal run

    def on_exp(record: dict[str, Any], info: dict[str, Any]) -> None:
        if record.get("split") != "val" or record.get("kind") == "stop":
            return
        baseline = record.get("kind") == "baseline"
        if baseline:
            inc = env.incumbent
        else:
            # this experiment's own values: a batch is recorded one experiment at a time, but
            # the callbacks run after the whole batch, when the env holds the batch's last
            curve.append(float(record["incumbent_metric"]))
            seconds.append(float(record["seconds_used"]))
            inc = incumbents[-1]
            if record.get("kept"):
                inc = seen.get(str(record.get("candidate")), env.incumbent)
        incumbents.append(inc)
        truth = true_value(env.task, env.instance, inc)
        truth_run = truth if baseline or record.get("kept") else None
        if truth_run is None and truth is not None:  # a reverted run: look its truth up
            ran = _ran(record, seen, env.task)
            truth_run = true_value(env.task, env.instance, ran) if ran is not None else None
        trace.append(
            {
                "agent": name,
                "instance": int(instance),
                "seed": int(seed),
                "k": len(curve),
                "kind": record.get("kind"),
                "candidate": record.get("candidate"),
                "config": record.get("config"),
                "status": record.get("status"),
                "metric": record.get("metric"),
                "kept": bool(record.get("kept")) if not baseline else None,
                "incumbent": inc.hash,
                "incumbent_metric": record.get("incumbent_metric"),
                "seconds_used": record.get("seconds_used", 0.0 if baseline else None),
                "truth": truth,
                "truth_run": truth_run,
            }
        )

    def recording(proposals: Any) -> Any:
        for prop in proposals:
            if getattr(prop, "candidate", None) is not None:
                seen[prop.candidate.hash] = prop.candidate
        return run_proposals(proposals)

    t0 = time.monotonic()
    own = "run_proposals" in vars(env)
    run_proposals = env.run_proposals
    env.run_proposals = recording
    try:
        summary = run_campaign(
            env, agent, seed=seed, instance=instance, test=True, on_experiment=on_exp
        )
    finally:
        if own:
            env.run_proposals = run_proposals
        else:
            del env.run_proposals  # the class's method again
    test = summary.get("test_metric")
    has_truth = bool(trace) and all(t["truth"] is not None for t in trace)
    row = Campaign(
        agent=name,
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
        truth_start=trace[0]["truth"] if has_truth else None,
        truth=[t["truth"] for t in trace[1:]] if has_truth else None,
        trace=trace,
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
        if not has_truth and trace:
            _remeasure_endpoints(env, seed, remeasure_seeds, endpoints, trace, incumbents)
    ref_cfg = env.instance.reference_config if env.instance is not None else None
    if reference and ref_cfg is not None:
        res = env.runner.run(env.instance, start_candidate(env.task, ref_cfg), env.eval_seed)
        if res.status == "ok":
            row = replace(row, reference=float(res.metrics[env.task.metric]))
    return row


def _ran(record: dict[str, Any], seen: dict[str, Any], task: Any) -> Any:
    """The candidate an experiment's record ran: one proposed whole, or rebuilt from the
    record's config (None where that is not the same candidate, e.g. a code edit)."""
    from rsi_rl.core.edits import start_candidate

    key = str(record.get("candidate"))
    if key in seen:
        return seen[key]
    config = record.get("config")
    if not isinstance(config, dict):
        return None
    cand = start_candidate(task, config)
    return cand if cand.hash == key else None


def _remeasure_endpoints(
    env: Any,
    seed: int,
    n: int,
    endpoints: Sequence[int],
    trace: list[dict[str, Any]],
    incumbents: list[Any],
) -> None:
    """Set ``truth`` on the trace lines of the start and of each endpoint (a campaign that
    stopped early: its last line) to the incumbent's mean over the ``n`` fresh seeds of
    :func:`fresh_seeds` (the same reruns as :func:`remeasure`'s, so served by the cache)."""
    last = len(trace) - 1
    for k in sorted({0, *(min(int(e), last) for e in endpoints)}):
        vals = _fresh_values(env, incumbents[k], seed, n)
        if vals:
            trace[k]["truth"] = float(np.mean(vals))
            trace[k]["truth_values"] = vals


def guarded_campaign(
    env: Any,
    name: str,
    agent_cfgs: dict[str, Any],
    seed: int,
    inst: int,
    remeasure_seeds: int,
    endpoints: Sequence[int] = (),
) -> Row:
    """Agent ``name``'s campaign on (inst, seed); a crash is recorded, not raised (a bad
    agent setting is)."""
    try:
        agent = make_bench_agent(name, agent_cfgs, seed=seed)
        return run_one(
            env, agent, seed, inst, remeasure_seeds=remeasure_seeds, label=name, endpoints=endpoints
        )
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


__all__ = ["fresh_seeds", "guarded_campaign", "make_bench_agent", "remeasure", "run_one"]
