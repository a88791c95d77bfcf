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
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsi_rl.config_checks import (
    check_env_settings,
    check_instance,
    check_instances,
    check_seed,
)
from rsi_rl.confpaths import conf_dir, executor_spec
from rsi_rl.errors import ConfigError, RsiRlError, RunDirError, user_message

log = logging.getLogger("rsi_rl")


def _fail(message: str) -> None:
    print(f"rsi-rl: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _group_options(group: str, extra_dirs: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    dirs = [conf_dir(), *extra_dirs]
    stems = {p.stem for d in dirs for p in (d / group).glob("*.yaml")}
    return sorted(stem for stem in stems if not stem.startswith("_"))


#: Hydra flags that take a value in the next argument
_VALUE_FLAGS = (
    "--config-dir",
    "-cd",
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--experimental-rerun",
)


def _hydra_args(argv: list[str]) -> list[str]:
    """The key=value overrides among ``argv`` (without Hydra's flags and their values)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in _VALUE_FLAGS:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def _extra_config_dirs(argv: list[str]) -> list[Path]:
    """Config folders a user adds with ``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``."""
    dirs: list[str] = []
    for i, a in enumerate(argv):
        if a in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif a.startswith("--config-dir="):
            dirs.append(a.split("=", 1)[1])
        elif a.startswith("hydra.searchpath="):
            for item in a.split("=", 1)[1].strip("[]").split(","):
                item = item.strip().strip("'\"")
                if item.startswith("file://"):
                    dirs.append(item[len("file://") :])
    return [Path(d).expanduser().resolve() for d in dirs]


def _compose_check(config_name: str, overrides: list[str]) -> Any:
    """Compose the config once so that a bad key or value fails in one line, not in Hydra's.

    Returns the composed config (with its ``hydra`` node, for the group choices).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    args = [a for a in _hydra_args(overrides) if not a.startswith("hydra.")]
    extra = _extra_config_dirs(overrides)
    if extra:
        args.append("hydra.searchpath=[" + ",".join(f"file://{d}" for d in extra) + "]")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return compose(config_name=config_name, overrides=args, return_hydra_config=True)
    except Exception as exc:  # hydra.errors.* and omegaconf.errors.*
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        msg = lines[0] if lines else type(exc).__name__
        if "not in struct" in str(exc) or "Could not override" in msg:
            key = msg.split("'")[1] if "'" in msg else "?"
            msg = f"unknown config key {key!r} (see `rsi-rl {config_name} --cfg job` for the keys; use +{key}=... to add one)"
        _fail(msg)
        return None
    finally:
        GlobalHydra.instance().clear()


#: Hydra launchers that come from a plugin, and the rsi-rl extra that installs it
LAUNCHER_EXTRAS = {
    "joblib": "launchers",
    "submitit_local": "slurm",
    "submitit_slurm": "slurm",
    "slurm": "slurm",  # conf/hydra/launcher/slurm.yaml, on top of submitit_slurm
}


def launcher_options(extra_dirs: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    """The ``hydra/launcher`` options Hydra can find: its own, installed plugins', ours."""
    found = set(_group_options("hydra/launcher", extra_dirs))
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.utils import create_config_search_path
        from hydra.core.plugins import Plugins

        Plugins.instance()  # imports hydra_plugins.*, which register their launcher configs
        loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(conf_dir())))
        found.update(loader.get_group_options("hydra/launcher"))
    except Exception:  # noqa: BLE001 - Hydra internals moved: let Hydra report it
        found.add("basic")
    return sorted(found)


def _check_launcher(value: str, extra_dirs: list[Path], multirun: bool) -> None:
    """A ``hydra/launcher=...`` whose plugin is missing fails in one line naming the extra."""
    options = launcher_options(extra_dirs)
    needs = {"slurm": "submitit_slurm"}.get(value, value)
    if value in options and needs in options:
        if multirun and needs == "submitit_slurm" and shutil.which("srun") is None:
            _fail(
                f"hydra/launcher={value} submits SLURM jobs, but there is no `srun` on this "
                "machine; run the sweep on a SLURM login node (hydra/launcher=submitit_local "
                "runs the same jobs here)"
            )
        return
    if value in LAUNCHER_EXTRAS:
        extra = LAUNCHER_EXTRAS[value]
        _fail(
            f"hydra/launcher={value} needs a Hydra launcher plugin that is not installed: "
            f"pip install 'rsi-rl[{extra}]'"
        )
    _fail(
        f"unknown hydra/launcher {value!r}; known: {', '.join(options)} "
        "(fix the override hydra/launcher=...)"
    )


def _preflight(overrides: list[str]) -> list[str]:
    """Check overrides before Hydra sees them; map plugin task names. Returns new overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rsi_rl.registry import plugin_tasks

    args = _hydra_args(overrides)
    extra = _extra_config_dirs(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except Exception as exc:  # hydra.errors.OverrideParseException
        _fail(f"malformed override ({user_message(exc)}); write key=value, e.g. budget=20")
    out = list(overrides)
    for ov in parsed:
        key = ov.key_or_group
        if key == "hydra/launcher" and not ov.is_sweep_override():
            _check_launcher(str(ov.value()), extra, "-m" in overrides or "--multirun" in overrides)
            continue
        if (
            key not in ("task", "agent", "env", "sandbox", "logger", "proposer", "executor")
            or ov.is_sweep_override()
        ):
            continue
        value = str(ov.value())
        options = _group_options(key, extra)
        if value in options:
            continue
        if key == "task" and value in plugin_tasks():
            i = out.index(str(ov.input_line))
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
            print(
                "rsi-rl: interrupted; the ledger keeps every finished experiment", file=sys.stderr
            )
            raise SystemExit(130) from None

    return wrapped


def _run_hydra(
    config_name: str, fn: Callable[[Any], Any], argv: list[str], prog: str | None = None
) -> None:
    import hydra

    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(
        _guard(fn)
    )
    old = sys.argv
    sys.argv = [prog or f"rsi-rl {config_name}", *argv]
    try:
        app()
    finally:
        sys.argv = old


# ---------------------------------------------------------------------------- search
def _proposer(cfg: Any) -> Any:
    """The proposer config as a plain mapping; ``python`` runs this interpreter."""
    if cfg is None or cfg.get("command") is None:
        return None
    from omegaconf import OmegaConf

    spec: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    cmd = spec["command"]
    if isinstance(cmd, list) and cmd and cmd[0] == "python":
        spec["command"] = [sys.executable, *cmd[1:]]
    return spec


#: the ``_target_`` of the SB3 trainer configs (``rsi-rl train``'s agents)
TRAINER_TARGET = "rsi_rl.agents.sb3.build_algorithm"


def _locate(target: str) -> Any:
    """The object a ``_target_`` names (``package.module.Name``), or None if it cannot be
    imported."""
    import importlib

    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def agent_role(target: str | None) -> str:
    """``search`` for an rsi_rl Agent (``rsi-rl search``, ``bench``), ``train`` for an SB3
    trainer (``rsi-rl train``), ``?`` for a target that cannot be imported."""
    from rsi_rl.agents.base import Agent

    if target == TRAINER_TARGET:
        return "train"
    obj = _locate(target) if target else None
    if isinstance(obj, type) and issubclass(obj, Agent):
        return "search"
    return "?" if obj is None else "train"


def agent_roles(extra_dirs: list[Path] | tuple[Path, ...] = ()) -> dict[str, str]:
    """``conf/agent/<name>.yaml`` preset -> its :func:`agent_role` (read without Hydra)."""
    import yaml

    roles: dict[str, str] = {}
    for d in (conf_dir(), *extra_dirs):
        for path in sorted((d / "agent").glob("*.yaml")):
            if path.stem.startswith("_"):
                continue
            try:
                target = (yaml.safe_load(path.read_text()) or {}).get("_target_")
            except (OSError, yaml.YAMLError, AttributeError):
                target = None
            roles[path.stem] = agent_role(target)
    return roles


def _trainer_message(choice: str | None) -> str:
    return (
        f"agent={choice or '...'} is a trainer for `rsi-rl train`; to search with a trained "
        "policy use agent=policy agent.path=<policy.zip>"
    )


def agent_parameters(cls: Any) -> list[str] | None:
    """The keyword arguments an agent class takes (``seed`` aside); None: any (``**kwargs``)."""
    import inspect

    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "seed"
    ]


def check_agent_config(agent_cfg: Any, choice: str | None = None) -> None:
    """Fail with a :class:`ConfigError` naming the fix when ``agent_cfg`` cannot make a
    search agent: an SB3 trainer config, or a key the agent class does not take.

    Args:
        agent_cfg: the ``agent`` config group (with ``_target_``).
        choice: the preset it came from (``agent=<choice>``), for the message.
    """
    from rsi_rl.agents.base import Agent

    target = agent_cfg.get("_target_")
    if target is None:
        return
    if agent_role(str(target)) == "train":
        raise ConfigError(_trainer_message(choice))
    cls = _locate(str(target))
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        return  # instantiate reports it
    takes = agent_parameters(cls)
    if takes is None:
        return
    name = choice or cls.name or cls.__name__
    for key in agent_cfg:
        key = str(key)
        if key.startswith("_") or key == "seed" or key in takes:
            continue
        raise ConfigError(
            f"agent {name} does not take {key!r} (it takes: {', '.join(takes)}); fix or drop "
            f"the override agent.{key}"
        )


def _cause(exc: BaseException) -> str:
    """One line: the rsi_rl error in ``exc``'s chain, else the wrapped cause (Hydra puts
    ``Error in call to target ...:`` first and the reason after it)."""
    from rsi_rl.errors import fixable_cause

    if fixable_cause(exc) is not None or exc.__cause__ is None:
        return user_message(exc)
    cause = exc.__cause__
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__


#: Hydra flags that show the config instead of running the job
SHOW_FLAGS = frozenset({"--cfg", "-c", "--resolve", "--package", "-p"})


def _start_sandbox_ahead(cfg: Any) -> None:
    """Start the fork server of a search's sandbox before Hydra sets up the job, so that its
    imports (torch) overlap that set-up and the instance's data loading; the job's sandbox
    adopts it (:func:`rsi_rl.sandbox.start_ahead`). A bad task or sandbox setting is left
    for the job to report in its one line."""
    from omegaconf import OmegaConf

    from rsi_rl.registry import make_task
    from rsi_rl.sandbox import SandboxLimits, start_ahead

    try:
        task = make_task(cfg.task)
        sandbox: dict[str, Any] = OmegaConf.to_container(cfg.sandbox, resolve=True)  # type: ignore[assignment]
        start_ahead(
            task.preload, SandboxLimits(**{k: v for k, v in sandbox.items() if v is not None})
        )
    except Exception:  # noqa: BLE001 - the job fails on it with a clear message
        return


def search_job(cfg: Any) -> dict[str, Any]:
    """``rsi-rl search``: one campaign; writes the run directory and prints progress."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from rsi_rl.agents.base import Agent
    from rsi_rl.env import ResearchEnv
    from rsi_rl.registry import make_task
    from rsi_rl.search import format_progress, run_campaign, save_best
    from rsi_rl.tracking import Tracker, make_tracker

    if not isinstance(cfg.budget, int) or cfg.budget < 1:
        raise ConfigError(
            f"budget must be a positive integer number of experiments, got {cfg.budget!r}"
        )
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    seed = check_seed(cfg.seed)
    env_settings = check_env_settings(cfg.env)
    task = make_task(cfg.task)
    instance = check_instance(cfg.instance, task)
    if instance is None:
        instance = task.heldout_seeds[0]
    sandbox_cfg: dict[str, Any] = OmegaConf.to_container(cfg.sandbox, resolve=True)  # type: ignore[assignment]
    sandbox = {str(k): v for k, v in sandbox_cfg.items() if v is not None}
    check_agent_config(cfg.agent, HydraConfig.get().runtime.choices.get("agent"))
    try:
        agent = instantiate(cfg.agent, seed=seed)
    except Exception as exc:
        raise ConfigError(f"agent config failed: {_cause(exc)}") from exc
    if not isinstance(agent, Agent):
        raise ConfigError(f"agent._target_ {cfg.agent.get('_target_')!r} is not an rsi_rl Agent")
    tracker: Tracker = make_tracker(cfg.logger)
    env = ResearchEnv(
        task=task,
        budget=cfg.budget,
        budget_seconds=cfg.budget_seconds,
        instances=[int(instance)],
        keep_threshold=env_settings.get("keep_threshold", 1.0),
        cost_per_second=env_settings.get("cost_per_second", 0.0),
        invalid_penalty=env_settings.get("invalid_penalty", 0.0),
        sandbox=sandbox,
        run_dir=run_dir,
        cache_path=cfg.get("cache"),
        proposer=_proposer(cfg.get("proposer")),
        executor=executor_spec(cfg),
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
    if cfg.get("resume"):
        from rsi_rl.resume import ledger_rows, prefill

        campaign, replayed = prefill(env.runner, ledger_rows(cfg.resume))
        log.info(f"resuming {cfg.resume}: {replayed} finished experiments replay from the ledger")
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
            log.info(format_progress(env, record, info))

    try:
        summary = run_campaign(
            env,
            agent,
            seed=seed,
            instance=int(instance),
            test=cfg.test,
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
        f"done: start {summary['metric']}={summary['start_metric']:.4f} -> best {summary['best_metric']:.4f}"
        f"{trust}; "
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


# ---------------------------------------------------------------------------- tasks
def tasks_job(cfg: Any) -> None:
    """``rsi-rl tasks``: built-in, plugin and config-file tasks; one that fails to load is reported.

    Config-file tasks are ``task/*.yaml`` files (with a ``_target_``) in the config search
    path, e.g. a script task, or a folder added with ``--config-dir``.
    """
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from rsi_rl.registry import BUILTIN_TASKS, make_task, task_names

    entries: list[tuple[str, str, Any]] = [
        (name, "built-in" if name in BUILTIN_TASKS else "plugin", name) for name in task_names()
    ]
    seen = set(task_names()) | {"_plugin"}
    for source in HydraConfig.get().runtime.config_sources:
        if source.schema != "file":
            continue
        for path in sorted((Path(source.path) / "task").glob("*.yaml")):
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
            print(
                f"{name:<14} {origin:<9} FAILED TO LOAD{where}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            )
            continue
        print(f"{name:<14} {origin:<9} {d['metric']} ({d['direction']}), {d['trust']}")
        print("\n".join(_wrapped(f"    {d['edits']} edits. knobs: ", d["knobs"])))
        if d["patches"]:
            print("\n".join(_wrapped("    patches: ", d["patches"])))


def check_task_job(cfg: Any) -> Any:
    """``rsi-rl check-task``: print :func:`rsi_rl.checker.check_task`'s report; exit 1 on failure."""
    from omegaconf import OmegaConf

    from rsi_rl.checker import check_task

    limits: dict[str, Any] = OmegaConf.to_container(cfg.sandbox, resolve=True)  # type: ignore[assignment]
    sandbox = {k: v for k, v in limits.items() if v is not None}
    config: Any = OmegaConf.to_container(cfg.config, resolve=True) if cfg.config else None
    raw = [cfg.seeds] if isinstance(cfg.seeds, (int, str)) else list(cfg.seeds)
    seeds = [check_seed(s, "seeds") for s in raw]

    def live(item: Any) -> None:
        print(f"  {item.verdict.upper():<5} {item.name:<12} {item.detail}", flush=True)

    report = check_task(
        cfg.task,
        instance=check_instance(cfg.instance),
        seeds=seeds,
        run_edits=cfg.run_edits,
        config=config,
        sandbox=sandbox,
        on_item=live,
    )
    print(report.format().splitlines()[-1])
    if not report.ok:
        raise SystemExit(1)
    return report


# ---------------------------------------------------------------------------- train, bench
def train_job(cfg: Any) -> Any:
    """``rsi-rl train``: meta-train an SB3 agent (see :mod:`rsi_rl.train`)."""
    from rsi_rl.train import train_job as job

    check_seed(cfg.seed)
    check_env_settings(cfg.env)
    return job(cfg)


def bench_job(cfg: Any) -> Any:
    """``rsi-rl bench``: agents side by side on held-out instances (:mod:`rsi_rl.analysis.bench`)."""
    from rsi_rl.analysis.bench import bench_job as job

    check_env_settings(cfg.env)
    check_instances(cfg.instances)
    if not isinstance(cfg.seeds, int) or isinstance(cfg.seeds, bool) or cfg.seeds < 1:
        raise ConfigError(
            f"seeds={cfg.seeds!r}: the number of campaigns per agent, an integer >= 1"
        )
    return job(cfg)


# ---------------------------------------------------------------------------- report, export
def report_job(cfg: Any) -> Any:
    """``rsi-rl report RUN_DIR``: HTML page and PNGs from a ledger (:mod:`rsi_rl.analysis.report`)."""
    from rsi_rl.analysis.report import report_job as job

    return job(cfg)


def export_job(cfg: Any) -> Any:
    """``rsi-rl export RUN_DIR``: the best candidate as a runnable program (:mod:`rsi_rl.export`)."""
    from rsi_rl.export import export_job as job

    return job(cfg)


#: commands whose first argument may be a run directory (``rsi-rl report RUN_DIR``)
RUN_DIR_COMMANDS = ("report", "export")


def _run_dir_override(path: str) -> str:
    """``run_dir='<path>'``, quoted for Hydra's override parser."""
    return "run_dir='" + path.replace("'", "\\'") + "'"


def try_job(cfg: Any) -> dict[str, Any]:
    """``rsi-rl try``: one edit against a task; prints the experiment record as JSON."""
    from rsi_rl.try_edit import try_job as job

    return job(cfg)


COMMANDS: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "search": ("search", search_job, "run a research campaign of an agent on one task"),
    "train": ("train", train_job, "meta-train an SB3 agent on a task family (writes policy.zip)"),
    "bench": ("bench", bench_job, "compare agents on held-out instances, equal budget, many seeds"),
    "tasks": ("tasks", tasks_job, "list built-in and plugin tasks"),
    "check-task": (
        "check_task",
        check_task_job,
        "check that a task works: baseline, metric, edits, noise, timing",
    ),
    "try": ("try", try_job, "run one edit (kind, .diff or file) against a task; print the record"),
    "report": ("report", report_job, "HTML page and plots of a run: rsi-rl report RUN_DIR"),
    "export": ("export", export_job, "best candidate as a runnable program: rsi-rl export RUN_DIR"),
}


def _wrapped(first: str, words: list[str], width: int = 100, sep: str = ", ") -> list[str]:
    """``first`` then ``words`` joined by ``sep``, wrapped at ``width`` columns; later lines
    indented under the first word."""
    import textwrap

    lines = textwrap.wrap(
        sep.join(w.replace(" ", "\xa0") for w in words),  # a word is never split
        width=width,
        initial_indent=first,
        subsequent_indent=" " * len(first),
        break_on_hyphens=False,
        break_long_words=False,
    )
    return [line.replace("\xa0", " ") for line in lines]


def usage() -> str:
    """The text of ``rsi-rl --help``: commands, and which agents each command takes."""
    lines = ["usage: rsi-rl <command> [hydra overrides] [-m]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    roles = agent_roles()
    lines += [
        "",
        "agents (agent=...):",
        *_wrapped("  search, bench: ", [n for n, r in roles.items() if r == "search"]),
        *_wrapped("  train:         ", [n for n, r in roles.items() if r == "train"]),
        "",
        "e.g. rsi-rl search task=digits_mlp agent=greedy budget=20",
        "     rsi-rl train task=tabular agent=maskable_ppo  (writes policy.zip)",
        "     rsi-rl search task=tabular agent=policy agent.path=<policy.zip>",
        "",
        "options: -V/--version; rsi-rl <command> --hydra-help",
        'shell completion: eval "$(rsi-rl search -sc install=bash)"',
        "docs: docs/cli.md",
    ]
    return "\n".join(lines)


def version() -> str:
    """The installed version of the ``rsi-rl`` distribution (else ``rsi_rl.__version__``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("rsi-rl")
    except PackageNotFoundError:
        from rsi_rl import __version__

        return __version__


#: Hydra's shell-completion flag (``rsi-rl search -sc install=bash``)
COMPLETION_FLAGS = ("-sc", "--shell-completion")


def _completion_query(argv: list[str]) -> None:
    """Answer the installed completion function (``rsi-rl -sc query=<shell>``, ``COMP_LINE``
    set): command names after ``rsi-rl``, Hydra's own completion after a command."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        prefix = words[1] if len(words) == 2 else ""
        print(" ".join(c for c in COMMANDS if c.startswith(prefix)))
        return
    if words[1] not in COMMANDS:
        return
    rest = line.split(None, 2)[2] if len(line.split(None, 2)) > 2 else ""
    os.environ["COMP_LINE"] = f"{words[0]} {rest}"
    _run_hydra(COMMANDS[words[1]][0], COMMANDS[words[1]][1], argv, prog="rsi-rl")


def _shell_completion(command: str | None, argv: list[str]) -> None:
    """``-sc install=bash`` (and uninstall, query) handed to Hydra untouched: the script it
    prints completes ``rsi-rl <command> <overrides>``."""
    if any(a.startswith("query=") for a in argv):
        _completion_query(argv)
        return
    config_name, fn, _ = COMMANDS[command or "search"]
    _run_hydra(config_name, fn, argv, prog="rsi-rl")


def _resume_overrides(args: list[str]) -> list[str]:
    """``resume=RUN_DIR``: reuse the run's own overrides and write into the same directory."""
    resume = [a for a in args if a.startswith("resume=")]
    if not resume:
        return args
    run_dir = Path(resume[-1].split("=", 1)[1]).resolve()
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.exists():
        _fail(f"resume={run_dir}: not a search run directory (no .hydra/overrides.yaml)")
    import yaml

    previous = [
        o
        for o in (yaml.safe_load(saved.read_text()) or [])
        if not o.startswith(("resume=", "hydra."))
    ]
    keys = {a.split("=", 1)[0] for a in args if "=" in a}
    merged = [o for o in previous if o.split("=", 1)[0] not in keys]
    rest = [a for a in args if not a.startswith("resume=")]
    return [*merged, *rest, f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def _override_value(args: list[str], key: str) -> str | None:
    """The value of the last ``key=value`` override among ``args`` (quotes removed)."""
    values = [a.split("=", 1)[1] for a in _hydra_args(args) if a.startswith(f"{key}=")]
    if not values:
        return None
    value = values[-1].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def check_run_dir(args: list[str]) -> None:
    """Fail in one line, before Hydra writes its logs there, if the run directory of a
    ``hydra.run.dir=`` (or ``resume=``) override cannot be written or another run writes it.
    """
    from rsi_rl.ledger import check_not_in_use

    value = _override_value(args, "hydra.run.dir")
    if not value or "${" in value:
        return
    run_dir = Path(value).expanduser().absolute()
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirError(
            f"hydra.run.dir={value}: {existing} is not a directory; pick another hydra.run.dir=..."
        )
    try:
        import tempfile

        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        where = "" if existing == run_dir else f" ({existing}, where it would be made)"
        raise RunDirError(
            f"run directory {run_dir} is not writable{where}: {exc.strerror or exc}; make it "
            "writable or pick another directory (hydra.run.dir=...)"
        ) from None
    if run_dir.is_dir():
        check_not_in_use(run_dir)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rsi-rl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[0] in ("-V", "--version"):
        print(f"rsi-rl {version()}")
        return
    if argv[0] in COMPLETION_FLAGS:
        _shell_completion(None, argv)
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        _fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)} (see rsi-rl --help)")
    config_name, fn, _ = COMMANDS[command]
    if any(a in COMPLETION_FLAGS for a in rest):
        _shell_completion(command, rest)
        return
    if command in RUN_DIR_COMMANDS and rest and not rest[0].startswith("-") and "=" not in rest[0]:
        rest = [_run_dir_override(rest[0]), *rest[1:]]
    if command == "search":
        rest = _resume_overrides(rest)
    if not any(a in ("--help", "-h", "--hydra-help", "--info") for a in rest):
        rest = _preflight(rest)
        if not any(a in ("-m", "--multirun") for a in rest):
            composed = _compose_check(config_name, rest)
            try:
                if command == "search" and composed is not None:
                    check_agent_config(composed.agent, composed.hydra.runtime.choices.get("agent"))
                check_run_dir(rest)
            except RsiRlError as exc:
                _fail(str(exc))
            if command == "search" and composed is not None and not set(rest) & SHOW_FLAGS:
                _start_sandbox_ahead(composed)
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    _run_hydra(config_name, fn, rest)


if __name__ == "__main__":
    main()
