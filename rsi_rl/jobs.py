"""The Hydra jobs of ``rsi-rl search``, ``tasks`` and ``check-task`` (built by
:mod:`rsi_rl.builder`; ``train``, ``bench``, ``try``, ``report`` and ``export`` have theirs
in their own modules)."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

from rsi_rl import builder
from rsi_rl.config_checks import check_instance, check_seed

log = logging.getLogger("rsi_rl")


def start_sandbox_ahead(cfg: Any) -> None:
    """Start the fork server of a search's sandbox before Hydra sets up the job, so that its
    imports (torch) overlap that set-up and the instance's data loading; the job's sandbox
    adopts it (:func:`rsi_rl.exec.sandbox.start_ahead`). A bad task or sandbox setting is left
    for the job to report in its one line."""
    from rsi_rl.exec.sandbox import SandboxLimits, start_ahead

    try:
        task = builder.make_task(cfg)
        if task.in_process:  # a landscape task runs no program: no fork server
            return
        start_ahead(task.preload, SandboxLimits(**builder.sandbox_settings(cfg)))
    except Exception:  # noqa: BLE001 - the job fails on it with a clear message
        return


def search_job(cfg: Any) -> dict[str, Any]:
    """``rsi-rl search``: one campaign; writes the run directory and prints progress."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from rsi_rl.search import format_progress, run_campaign, save_best

    s = builder.settings(cfg, "search")
    run_dir = builder.run_dir()
    task = builder.make_task(cfg)
    instance = check_instance(s.instance, task)
    if instance is None:
        instance = task.heldout_seeds[0]
    agent = builder.build_agent(cfg.agent, s.seed, HydraConfig.get().runtime.choices.get("agent"))
    tracker = builder.make_tracker(cfg)
    env = builder.make_env(
        task,
        s.budget,
        [int(instance)],
        builder.env_kwargs(cfg),
        budget_seconds=s.budget_seconds,
        run_dir=run_dir,
    )
    # the fork server (started ahead by main, else now) imports the task's modules (torch)
    # while this process loads the instance's data; the first experiment waits for the rest
    env.runner.sandbox.spawn()
    if env.executor.workers > agent.batch_size:
        log.warning(
            f"executor={env.executor.name} has {env.executor.workers} workers but agent "
            f"{agent.name} proposes {agent.batch_size} experiment(s) at a time; set "
            "agent.batch_size (random, tpe) to use them"
        )
    campaign = None
    if s.resume:
        from rsi_rl.store.resume import ledger_rows, prefill

        campaign, replayed = prefill(env.runner, ledger_rows(s.resume))
        log.info(f"resuming {s.resume}: {replayed} finished experiments replay from the ledger")
    tracker.start(run_dir, OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]

    def progress(record: dict[str, Any], info: dict[str, Any]) -> None:
        tracker.log_experiment(record, info)
        if s.quiet:
            return
        if record.get("kind") == "baseline":
            log.info(
                f"{task.name} instance {env.instance.id if env.instance else '?'}: start "
                f"{task.metric}={record.get('metric'):.4f} ({record.get('seconds', 0.0):.2f}s); "
                f"agent {agent.name}, budget {env.budget} experiments"
            )
        elif record.get("kind") != "stop":
            log.info(format_progress(env, record, info))

    try:
        summary = run_campaign(
            env,
            agent,
            seed=s.seed,
            instance=int(instance),
            test=s.test,
            on_experiment=progress,
            campaign=campaign,
        )
        summary["run_dir"] = str(run_dir)
        save_best(env, run_dir, summary)
        tracker.log_summary(summary)
    finally:
        tracker.finish()
        env.close()
    trust = " (self-reported)" if summary["self_reported"] else ""
    test = summary["test_metric"]
    log.info(
        f"done: start {summary['metric']}={summary['start_metric']:.4f} -> best "
        f"{summary['best_metric']:.4f}{trust}; "
        + (
            f"test {task.metric_for('test')}={test:.4f}"
            if test is not None
            else f"test: {summary.get('test_status') or 'n/a'}"
        )
        + f"; {summary['experiments']} experiments in {summary['seconds']:.1f}s; "
        f"statuses {summary['statuses']}"
    )
    log.info(f"run directory: {run_dir}  (ledger.sqlite, results.tsv, best/, summary.json)")
    return summary


def wrapped(first: str, words: list[str], width: int = 100, sep: str = ", ") -> list[str]:
    """``first`` then ``words`` joined by ``sep``, wrapped at ``width`` columns; later lines
    indented under the first word, and a word never split."""
    lines = textwrap.wrap(
        sep.join(w.replace(" ", "\xa0") for w in words),
        width=width,
        initial_indent=first,
        subsequent_indent=" " * len(first),
        break_on_hyphens=False,
        break_long_words=False,
    )
    return [line.replace("\xa0", " ") for line in lines]


def tasks_job(cfg: Any) -> None:
    """``rsi-rl tasks``: built-in, plugin and config-file tasks; one that fails to load is
    reported.

    Config-file tasks are ``task/*.yaml`` files (with a ``_target_``) in the config search
    path, e.g. a script task, or a folder added with ``--config-dir``.
    """
    from omegaconf import OmegaConf

    from rsi_rl.confpaths import search_dirs
    from rsi_rl.core.registry import BUILTIN_TASKS, make_task, task_names

    entries: list[tuple[str, str, Any]] = [
        (name, "built-in" if name in BUILTIN_TASKS else "plugin", name) for name in task_names()
    ]
    seen = set(task_names()) | {"_plugin"}
    for folder in search_dirs():
        for path in sorted((folder / "task").glob("*.yaml")):
            if path.stem not in seen:
                seen.add(path.stem)
                entries.append((path.stem, "config", path))
    for name, origin, spec in entries:
        try:
            if isinstance(spec, Path):
                spec = OmegaConf.load(spec)
            d = make_task(spec).describe()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the rest
            where = f" ({spec})" if origin == "config" else ""
            reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
            print(f"{name:<14} {origin:<9} FAILED TO LOAD{where}: {reason}")
            continue
        print(f"{name:<14} {origin:<9} {d['metric']} ({d['direction']}), {d['trust']}")
        print("\n".join(wrapped(f"    {d['edits']} edits. knobs: ", d["knobs"])))
        if d["patches"]:
            print("\n".join(wrapped("    patches: ", d["patches"])))


def check_task_job(cfg: Any) -> Any:
    """``rsi-rl check-task``: print :func:`rsi_rl.checker.check_task`'s report; exit 1 on
    failure."""
    from rsi_rl.checker import check_task

    s = builder.settings(cfg, "check_task")
    config: Any = builder.to_plain(s.config) or None
    raw = [s.seeds] if isinstance(s.seeds, (int, str)) else list(s.seeds)
    seeds = [check_seed(seed, "seeds") for seed in raw]

    def live(item: Any) -> None:
        print(f"  {item.verdict.upper():<5} {item.name:<12} {item.detail}", flush=True)

    report = check_task(
        cfg.task,
        instance=check_instance(s.instance),
        seeds=seeds,
        run_edits=s.run_edits,
        config=config,
        sandbox=builder.sandbox_settings(cfg),
        on_item=live,
    )
    print(report.format().splitlines()[-1])
    if not report.ok:
        raise SystemExit(1)
    return report
