"""``rsi-rl``: one console command, one Hydra app per subcommand.

    rsi-rl search task=digits_mlp agent=greedy budget=20 seed=0
    rsi-rl search -m agent=random,greedy seed=0,1
    rsi-rl tasks

Every subcommand takes Hydra overrides (and ``-m`` for multirun). User errors (a bad
override, an unknown task or agent, an invalid value) print one line,
``rsi-rl: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsi_rl.confpaths import conf_dir, executor_spec
from rsi_rl.core.errors import RsiRlError, user_message
from rsi_rl.overrides import check_run_dir, extra_config_dirs, hydra_args, resume_overrides


def _fail(message: str) -> None:
    print(f"rsi-rl: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _group_options(group: str, extra_dirs: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    dirs = [conf_dir(), *extra_dirs]
    stems = {p.stem for d in dirs for p in (d / group).glob("*.yaml")}
    return sorted(stem for stem in stems if not stem.startswith("_"))


def _compose_check(config_name: str, overrides: list[str]) -> Any:
    """Compose the config once so that a bad key or value fails in one line, not in Hydra's.

    Returns the composed config (with its ``hydra`` node, for the group choices).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    args = [a for a in hydra_args(overrides) if not a.startswith("hydra.")]
    extra = extra_config_dirs(overrides)
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


#: config groups whose choice the preflight checks, by command (``trainer``: train's)
GROUPS = ("task", "agent", "trainer", "env", "sandbox", "logger", "proposer", "executor")


def _check_group_key(command: str, key: str, value: str, extra: list[Path]) -> None:
    """``agent`` overrides of ``rsi-rl train`` (its SB3 algorithms are ``trainer``), and a
    trainer given to search or bench as an agent: one line naming the override to write."""
    trainers = _group_options("trainer", extra)
    if command == "train" and key == "agent":
        _fail(
            f"rsi-rl train takes its SB3 algorithm as trainer=..., not agent={value}; "
            f"e.g. trainer={value if value in trainers else 'maskable_ppo'} "
            f"(trainers: {', '.join(trainers)})"
        )
    if command == "train" and key.startswith("agent."):
        _fail(
            f"rsi-rl train's settings of the SB3 algorithm are trainer.*: write "
            f"trainer.{key.split('.', 1)[1]}=... instead of {key}=..."
        )
    if key == "agent" and value in trainers and value not in _group_options("agent", extra):
        _fail(
            f"unknown agent {value!r}; known: {', '.join(_group_options('agent', extra))} "
            f"({value} is an SB3 trainer: rsi-rl train trainer={value}; to search with a "
            "trained policy use agent=policy agent.path=<policy.zip>)"
        )


def _check_composed(command: str, composed: Any) -> None:
    """Settings types and ranges of the composed config, and a search's agent keys."""
    if composed is None:
        return
    from rsi_rl import builder

    builder.settings(composed, COMMANDS[command][0])
    if command == "search":
        choice = composed.hydra.runtime.choices.get("agent")
        builder.check_agent_config(composed.agent, choice)


def _preflight(command: str, overrides: list[str]) -> list[str]:
    """Check overrides before Hydra sees them; map plugin task names. Returns new overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rsi_rl.core.registry import plugin_tasks

    args = hydra_args(overrides)
    extra = extra_config_dirs(overrides)
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
        if key.split(".")[0] == "agent":
            sweep = ov.is_sweep_override() and not ov.is_interval_sweep()
            for value in ov.sweep_string_iterator() if sweep else [str(ov.value())]:
                _check_group_key(command, key, str(value), extra)
        if key not in GROUPS or ov.is_sweep_override():
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


def _first_set(*values: Any) -> Any:
    """The first value that is set (not None or empty): ``${rsi_rl.first:${family},...}``
    in a run directory names a family bench after its family, not the default task."""
    return next((v for v in values if v not in (None, "", "None")), "")


def _run_hydra(
    config_name: str, fn: Callable[[Any], Any], argv: list[str], prog: str | None = None
) -> None:
    import hydra
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("rsi_rl.first", _first_set, replace=True)

    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(
        _guard(fn)
    )
    old = sys.argv
    sys.argv = [prog or f"rsi-rl {config_name}", *argv]
    try:
        app()
    finally:
        sys.argv = old


# ---------------------------------------------------------------------------- jobs
def _job(module: str, name: str) -> Callable[[Any], Any]:
    """The Hydra job ``module.name``, imported when the command runs."""

    def job(cfg: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(cfg)

    job.__name__ = job.__qualname__ = name
    return job


#: command -> (config name, job, help line)
COMMANDS: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "search": (
        "search",
        _job("rsi_rl.jobs", "search_job"),
        "run a research campaign of an agent on one task",
    ),
    "train": (
        "train",
        _job("rsi_rl.meta.train", "train_job"),
        "meta-train an SB3 trainer on a task family (writes policy.zip)",
    ),
    "bench": (
        "bench",
        _job("rsi_rl.analysis.bench", "bench_job"),
        "compare agents on held-out instances, equal budget, many seeds",
    ),
    "tasks": ("tasks", _job("rsi_rl.jobs", "tasks_job"), "list built-in and plugin tasks"),
    "check-task": (
        "check_task",
        _job("rsi_rl.jobs", "check_task_job"),
        "check that a task works: baseline, metric, edits, noise, timing",
    ),
    "try": (
        "try",
        _job("rsi_rl.try_edit", "try_job"),
        "run one edit (kind, .diff or file) against a task; print the record",
    ),
    "report": (
        "report",
        _job("rsi_rl.analysis.report", "report_job"),
        "HTML page and plots of a run: rsi-rl report RUN_DIR",
    ),
    "export": (
        "export",
        _job("rsi_rl.export", "export_job"),
        "best candidate as a runnable program: rsi-rl export RUN_DIR",
    ),
}

#: commands whose first argument may be a run directory (``rsi-rl report RUN_DIR``)
RUN_DIR_COMMANDS = ("report", "export")

#: Hydra flags that show the config instead of running the job
SHOW_FLAGS = frozenset({"--cfg", "-c", "--resolve", "--package", "-p"})


def _run_dir_override(path: str) -> str:
    """``run_dir='<path>'``, quoted for Hydra's override parser."""
    return "run_dir='" + path.replace("'", "\\'") + "'"


def usage() -> str:
    """The text of ``rsi-rl --help``: commands, the agents of search and bench, the
    trainers of train."""
    lines = ["usage: rsi-rl <command> [hydra overrides] [-m]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    from rsi_rl.jobs import wrapped

    lines += [
        "",
        *wrapped("agents (search, bench: agent=...): ", _group_options("agent")),
        *wrapped("trainers (train: trainer=...):     ", _group_options("trainer")),
        "",
        "e.g. rsi-rl search task=digits_mlp agent=greedy budget=20",
        "     rsi-rl train task=tabular trainer=maskable_ppo  (writes policy.zip)",
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
    try:
        rest = resume_overrides(rest) if command == "search" else rest
    except RsiRlError as exc:
        _fail(str(exc))
    if not any(a in ("--help", "-h", "--hydra-help", "--info") for a in rest):
        rest = _preflight(command, rest)
        if not any(a in ("-m", "--multirun") for a in rest):
            composed = _compose_check(config_name, rest)
            try:
                _check_composed(command, composed)
                check_run_dir(rest)
            except RsiRlError as exc:
                _fail(str(exc))
            if command == "search" and composed is not None and not set(rest) & SHOW_FLAGS:
                from rsi_rl.jobs import start_sandbox_ahead

                start_sandbox_ahead(composed)
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    _run_hydra(config_name, fn, rest)


__all__ = ["COMMANDS", "conf_dir", "executor_spec", "launcher_options", "main", "usage", "version"]


if __name__ == "__main__":
    main()
