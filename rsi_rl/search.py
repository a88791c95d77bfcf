"""One campaign of an agent on a task: the loop behind ``rsi-rl search``.

:func:`run_campaign` runs an :class:`~rsi_rl.agents.Agent` on a
:class:`~rsi_rl.env.ResearchEnv` through the ask/tell protocol until the budget is spent
or the agent stops, evaluates the best candidate once on the test split, and
:func:`save_best` writes it to the run directory (config YAML, source files, diff from the
start). An agent with ``batch_size`` > 1 asks for several experiments at once; the env's
executor trains them together (``executor=local executor.workers=N``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rsi_rl.agents.base import Agent, ask
from rsi_rl.agents.view import CampaignView
from rsi_rl.env import ResearchEnv

log = logging.getLogger("rsi_rl")


def _shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: cut at a space or comma with an ellipsis,
    never inside a word or number (``n_embd=64`` never shows as ``n_embd=6``)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    head = text[: width - 1]
    cut = max(head.rfind(" "), head.rfind(","))
    if cut > 0:
        head = head[: cut + 1] if head[cut] == "," else head[:cut]
    else:  # one long word: drop a number cut in two at its end
        head = re.sub(r"[\d.]+$", "", head) or head
    return head.rstrip() + "…"


def format_progress(
    env: ResearchEnv, record: dict[str, Any], info: dict[str, Any] | None = None
) -> str:
    """One progress line: step, edit, metric, status, seconds, kept/reverted, best.

    ``info`` (the step's) dates the line to its own experiment, e.g. within a batch.
    """
    metric = record.get("metric")
    m = f"{env.task.metric}={metric:.4f}" if metric is not None else f"{env.task.metric}=  -   "
    verdict = (
        "kept" if record.get("kept") else ("reverted" if record.get("status") == "ok" else "-")
    )
    if record.get("kind") == "reevaluate":
        verdict = "rerun"
    desc = _shorten(str(record.get("description", "")), 38)
    width = len(str(env.budget))
    used = (info or {}).get("experiments_used", env.experiments_used)
    best = record.get("incumbent_metric", env.incumbent_metric)
    return (
        f"[{used:>{width}}/{env.budget}] {record.get('kind', ''):<16} {desc:<38} "
        f"{m}  {record.get('status', ''):<7} {record.get('seconds', 0.0):6.2f}s  {verdict:<8} "
        f"best={best:.4f}"
    )


def run_campaign(
    env: ResearchEnv,
    agent: Agent,
    seed: int = 0,
    instance: int | None = None,
    test: bool = True,
    on_experiment: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    campaign: int | None = None,
) -> dict[str, Any]:
    """Run one campaign; returns its summary (start, best and test metrics, statuses...).

    The loop: ``agent.reset(view)``, then until the budget is spent ``agent.ask(view, n)``
    (``n`` = the agent's ``batch_size``, cut to the experiments left; ``[]`` ends the
    campaign), :meth:`~rsi_rl.env.ResearchEnv.run_proposals`, ``agent.tell(records)``,
    and ``on_experiment(record, info)`` per record. ``campaign`` replays into an existing
    campaign of the ledger (see :mod:`rsi_rl.store.resume`).
    """
    options: dict[str, Any] = {"instance": int(instance)} if instance is not None else {}
    if campaign is not None:
        options["campaign"] = int(campaign)
    obs, info = env.reset(seed=seed, options=options)
    view = CampaignView(env, obs)
    agent.reset(view)
    if on_experiment:
        on_experiment(env.last, info)
    rewards = 0.0
    while view.experiments_left > 0:
        proposals = ask(agent, view, min(agent.batch_size, view.experiments_left))
        if not proposals:  # the agent stops
            break
        steps = env.run_proposals(proposals)
        if not steps:  # nothing ran: the seconds cap is spent
            break
        records = env.log[len(env.log) - len(steps) :]
        view.update(steps[-1][0], proposals)
        agent.tell(records)
        for (_, reward, _, _, step_info), record in zip(steps, records, strict=True):
            rewards += reward
            if on_experiment:
                on_experiment(record, step_info)
    # a task without a test split (a script task without split_flag) reports none, rather
    # than a rerun of the validation measurement dressed as a test score
    test_record = env.evaluate_test() if test and env.task.has_test_split else None
    statuses: dict[str, int] = {}
    for rec in env.log:
        if rec.get("split") == "val" and rec.get("kind") != "baseline":
            statuses[rec["status"]] = statuses.get(rec["status"], 0) + 1
    summary = {
        "task": env.task.name,
        "instance": env.instance.id if env.instance else None,
        "agent": agent.name,
        "seed": seed,
        "metric": env.task.metric,
        "direction": env.task.direction,
        "start_metric": env.start_metric,
        "best_metric": env.incumbent_metric,
        "test_metric": test_record.get("metric") if test_record else None,
        "test_status": (
            test_record.get("status")
            if test_record
            else (None if env.task.has_test_split else "no test split")
        ),
        "experiments": env.experiments_used,
        "budget": env.budget,
        "seconds": env.seconds_used,
        "return": rewards,
        "statuses": statuses,
        "best_candidate": env.incumbent.hash,
        "best_config": env.incumbent.config,
        "best_edits": sorted(env.incumbent.toggles),
        "self_reported": env.task.self_reported,
        "cache_hits": env.runner.cache_hits,
    }
    if env.instance is not None and env.instance.reference_config is not None:
        summary["reference_config"] = env.instance.reference_config
    return summary


def save_best(env: ResearchEnv, run_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``best/`` (config.yaml, the program's files, diff.patch, and ``artifacts/``:
    the files the task declares as ``artifacts`` from the best candidate's last successful
    run) and ``summary.json`` (its ``artifacts`` key lists what ``best/artifacts/`` holds)."""
    run_dir = Path(run_dir)
    best = run_dir / "best"
    best.mkdir(parents=True, exist_ok=True)
    cand = env.incumbent
    (best / "config.yaml").write_text(yaml.safe_dump(dict(cand.config), sort_keys=False))
    for name, text in cand.source.items():
        path = best / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    start = env.log[0] if env.log else None
    if env.instance is not None and start is not None:
        from rsi_rl.core.edits import start_candidate

        first = start_candidate(env.task, env.instance.start_config)
        (best / "diff.patch").write_text(cand.diff(first))
        (best / "config_changes.json").write_text(
            json.dumps(cand.config_changes(first), indent=2, default=str)
        )
    if env.task.artifacts:
        summary["artifacts"] = _copy_artifacts(env, cand.hash, best / "artifacts")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return best


def _copy_artifacts(env: ResearchEnv, cand_hash: str, dest: Path) -> list[str]:
    """Copy the artifacts kept from candidate ``cand_hash``'s runs to ``dest``; returns
    their paths relative to it (none: a warning says why)."""
    kept = env.runner.artifacts_of(cand_hash)
    if kept is None:
        log.warning(
            f"no artifacts of the best candidate {cand_hash[:12]} to keep: its runs did not "
            f"write {', '.join(env.task.artifacts)}, or were all served from the result cache"
        )
        return []
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(kept, dest)
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


__all__ = ["format_progress", "run_campaign", "save_best"]
