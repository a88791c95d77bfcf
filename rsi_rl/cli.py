"""``rsi-rl``: one console command, one Hydra app per subcommand.

    rsi-rl search task=digits_mlp agent=greedy budget=20 seed=0
    rsi-rl search -m agent=random,greedy seed=0,1
    rsi-rl tasks

Every subcommand takes Hydra overrides (and ``-m`` for multirun). User errors (a bad
override, an unknown task or agent, an invalid value) print one line,
``rsi-rl: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsi_rl.errors import ConfigError, RsiRlError

log = logging.getLogger("rsi_rl")


def conf_dir() -> Path:
    """The folder of Hydra configs (``conf/``, installed as ``rsi_rl.conf``)."""
    import rsi_rl.conf

    return Path(next(iter(rsi_rl.conf.__path__)))


def _fail(message: str) -> None:
    print(f"rsi-rl: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml") if not p.stem.startswith("_"))


def _preflight(overrides: list[str]) -> list[str]:
    """Check overrides before Hydra sees them; map plugin task names. Returns new overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rsi_rl.registry import plugin_tasks

    args = [a for a in overrides if not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except Exception as exc:  # hydra.errors.OverrideParseException
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _fail(f"malformed override ({first}); write key=value, e.g. budget=20")
    out = list(overrides)
    for ov in parsed:
        key = ov.key_or_group
        if key not in ("task", "agent", "env", "sandbox", "logger") or ov.is_sweep_override():
            continue
        value = str(ov.value())
        options = _group_options(key)
        if value in options:
            continue
        if key == "task" and value in plugin_tasks():
            i = out.index(ov.input_line)
            out[i : i + 1] = ["task=_plugin", f"task.spec={value}"]
            continue
        known = options + (sorted(plugin_tasks()) if key == "task" else [])
        _fail(f"unknown {key} {value!r}; known: {', '.join(known)} (fix the override {key}=...)")
    return out


def _guard(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Turn user errors raised inside a Hydra job into one line and exit status 2."""

    def wrapped(cfg: Any) -> Any:
        try:
            return fn(cfg)
        except RsiRlError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            print("rsi-rl: interrupted; the ledger keeps every finished experiment", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapped


def _run_hydra(config_name: str, fn: Callable[[Any], Any], argv: list[str]) -> None:
    import hydra

    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(_guard(fn))
    old = sys.argv
    sys.argv = [f"rsi-rl {config_name}", *argv]
    try:
        app()
    finally:
        sys.argv = old


# ---------------------------------------------------------------------------- search
def search_job(cfg: Any) -> dict[str, Any]:
    """``rsi-rl search``: one campaign; writes the run directory and prints progress."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from rsi_rl.agents.base import Agent
    from rsi_rl.env import ResearchEnv
    from rsi_rl.registry import make_task
    from rsi_rl.search import format_progress, run_campaign, save_best
    from rsi_rl.tracking import Tracker

    if not isinstance(cfg.budget, int) or cfg.budget < 1:
        raise ConfigError(f"budget must be a positive integer number of experiments, got {cfg.budget!r}")
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    task = make_task(cfg.task)
    instance = cfg.instance if cfg.instance is not None else task.heldout_seeds[0]
    sandbox = {k: v for k, v in OmegaConf.to_container(cfg.sandbox, resolve=True).items() if v is not None}  # type: ignore[union-attr]
    try:
        agent = instantiate(cfg.agent, seed=cfg.seed)
    except Exception as exc:
        raise ConfigError(f"agent config failed: {str(exc).splitlines()[0]}") from exc
    if not isinstance(agent, Agent):
        raise ConfigError(f"agent._target_ {cfg.agent.get('_target_')!r} is not an rsi_rl Agent")
    tracker: Tracker = instantiate(cfg.logger)
    env = ResearchEnv(
        task=task,
        budget=cfg.budget,
        budget_seconds=cfg.budget_seconds,
        instances=[int(instance)],
        keep_threshold=cfg.env.keep_threshold,
        cost_per_second=cfg.env.cost_per_second,
        invalid_penalty=cfg.env.invalid_penalty,
        sandbox=sandbox,
        run_dir=run_dir,
    )
    tracker.start(run_dir, OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]

    def progress(record: dict[str, Any], info: dict[str, Any]) -> None:
        tracker.log_experiment(record, info)
        if cfg.quiet:
            return
        if record.get("kind") == "baseline":
            log.info(
                f"{task.name} instance {env.instance.id if env.instance else '?'}: start {task.metric}="
                f"{record.get('metric'):.4f} ({record.get('seconds', 0.0):.2f}s); agent {agent.name}, "
                f"budget {env.budget} experiments"
            )
        elif record.get("kind") != "stop":
            log.info(format_progress(env, record))

    try:
        summary = run_campaign(env, agent, seed=cfg.seed, instance=int(instance), test=cfg.test, on_experiment=progress)
        summary["run_dir"] = str(run_dir)
        save_best(env, run_dir, summary)
        tracker.log_summary(summary)
    finally:
        tracker.finish()
        env.close()
    trust = " (self-reported)" if summary["self_reported"] else ""
    test = summary["test_metric"]
    log.info(
        f"done: start {summary['metric']}={summary['start_metric']:.4f} -> best {summary['best_metric']:.4f}"
        f"{trust}; test {task.metric_for('test')}="
        + (f"{test:.4f}" if test is not None else "n/a")
        + f"; {summary['experiments']} experiments in {summary['seconds']:.1f}s; "
        f"statuses {summary['statuses']}"
    )
    log.info(f"run directory: {run_dir}  (ledger.sqlite, results.tsv, best/, summary.json)")
    return summary


# ---------------------------------------------------------------------------- tasks
def tasks_job(cfg: Any) -> None:
    """``rsi-rl tasks``: built-in and plugin tasks; a task that fails to load is reported."""
    from rsi_rl.registry import BUILTIN_TASKS, make_task, task_names

    for name in task_names():
        origin = "built-in" if name in BUILTIN_TASKS else "plugin"
        try:
            d = make_task(name).describe()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the rest
            print(f"{name:<14} {origin:<9} FAILED TO LOAD: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            continue
        print(
            f"{name:<14} {origin:<9} {d['metric']} ({d['direction']}), {d['trust']}; "
            f"{len(d['edits'])} edits: {' '.join(d['edits'])}"
        )


COMMANDS: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "search": ("search", search_job, "run a research campaign of an agent on one task"),
    "tasks": ("tasks", tasks_job, "list built-in and plugin tasks"),
}


def usage() -> str:
    lines = ["usage: rsi-rl <command> [hydra overrides] [-m]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "e.g. rsi-rl search task=digits_mlp agent=greedy budget=20", "docs: docs/cli.md"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rsi-rl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        _fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)} (see rsi-rl --help)")
    config_name, fn, _ = COMMANDS[command]
    if not any(a in ("--help", "-h", "--hydra-help", "--info") for a in rest):
        rest = _preflight(rest)
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    _run_hydra(config_name, fn, rest)


if __name__ == "__main__":
    main()
